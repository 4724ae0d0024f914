"""The HTTP/1.1 client of voice's Discord REST path, against real local HTTP servers on port 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from services.voice.http_transport import (
    MAX_HEAD_BYTES,
    BadResponse,
    HttpTransport,
    ServerDisconnected,
)
from tests.services.voice.http_servers import read_request
from tests.support import eventually

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


@asynccontextmanager
async def app_serving(
    app: web.Application, *, keepalive_timeout: float = 75.0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """An aiohttp.web server on a free loopback port; its port."""
    runner = web.AppRunner(app, keepalive_timeout=keepalive_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_serving(handle: Handler) -> AsyncIterator[str]:
    """A server whose every connection `handle` answers byte by byte; its base URL."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


def peer_app() -> web.Application:
    """Answers every request with the client's port and what it received."""

    async def echo(request: web.Request) -> web.Response:
        assert request.transport is not None
        return web.json_response(
            {
                "port": request.transport.get_extra_info("peername")[1],
                "host": request.headers.get("Host"),
                "reason": request.headers.get("X-Audit-Log-Reason"),
                "body": (await request.read()).decode(),
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def test_requests_in_turn_share_one_kept_alive_connection() -> None:
    """A second request goes over the first one's connection, with its head and body intact."""
    transport = HttpTransport()
    async with app_serving(peer_app()) as port:
        url = f"http://127.0.0.1:{port}/api/x?y=1"
        first = await transport.request(
            "PATCH", url, {"X-Audit-Log-Reason": "moved"}, b'{"channel_id":1}'
        )
        second = await transport.request("GET", url, {})
        await transport.close()
    assert first.status == 200
    assert first.headers["content-type"].startswith("application/json")
    seen = [json.loads(answer.body) for answer in (first, second)]
    assert seen[0]["port"] == seen[1]["port"]
    assert seen[0]["host"] == f"127.0.0.1:{port}"
    assert (seen[0]["reason"], seen[0]["body"]) == ("moved", '{"channel_id":1}')
    assert seen[1]["body"] == ""


async def test_a_chunked_answer_is_read_whole() -> None:
    """An answer sent in chunks comes back as one body, and its connection is kept."""

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"id": ', b'"1", ', b'"name": "x"}'):
            await response.write(part)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", chunked)
    transport = HttpTransport()
    async with app_serving(app) as port:
        answer = await transport.request("GET", f"http://127.0.0.1:{port}/", {})
        assert answer.headers["transfer-encoding"] == "chunked"
        assert answer.body == b'{"id": "1", "name": "x"}'
        assert transport.connections() == 1
        await transport.close()


async def test_an_answer_without_a_length_ends_with_its_connection_which_is_not_reused() -> None:
    """`Connection: close`, no length: the body runs to the close; the next request reconnects."""
    connections = 0

    async def close_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    transport = HttpTransport()
    async with raw_serving(close_after) as base:
        for _ in range(2):
            answer = await transport.request("GET", f"{base}/", {})
            assert (answer.status, answer.body) == (200, b"all of it")
        await transport.close()
    assert connections == 2


async def test_a_connection_the_server_closed_while_idle_is_dropped_and_replaced() -> None:
    """A kept-alive connection the server times out leaves the pool; the next request reconnects."""
    transport = HttpTransport()
    async with app_serving(peer_app(), keepalive_timeout=0.05) as port:
        url = f"http://127.0.0.1:{port}/"
        first = await transport.request("GET", url, {})

        async def dropped() -> bool:
            return transport.connections() == 0

        await eventually(dropped, what="the idle connection to be dropped")
        second = await transport.request("POST", url, {}, b"{}")
        await transport.close()
    ports = [json.loads(answer.body)["port"] for answer in (first, second)]
    assert ports[0] != ports[1]


def _closing_on_the_second_request(seen: list[bytes]) -> Handler:
    """A server whose first connection answers one request, then reads the next and closes."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first_connection = connections == 1
        try:
            while True:
                seen.append(await read_request(reader))
                if first_connection and len(seen) == 2:
                    return  # closes without a byte of an answer
                writer.write(NO_CONTENT)
                await writer.drain()
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()

    return handle


async def test_a_repeatable_request_goes_again_when_its_reused_connection_closes_unanswered() -> (
    None
):
    """A PATCH whose reused connection closes before any answer byte goes once more, freshly."""
    seen: list[bytes] = []
    transport = HttpTransport()
    async with raw_serving(_closing_on_the_second_request(seen)) as base:
        await transport.request("GET", f"{base}/", {})
        answer = await transport.request("PATCH", f"{base}/m", {}, b"{}", repeatable=True)
        await transport.close()
    assert answer.status == 204
    assert [request.split(b" ", 1)[0] for request in seen] == [b"GET", b"PATCH", b"PATCH"]


async def test_a_post_is_not_sent_again_when_its_kept_alive_connection_closes_unanswered() -> None:
    """A create whose connection closes unanswered may have been acted on: it fails, sent once."""
    seen: list[bytes] = []
    transport = HttpTransport()
    async with raw_serving(_closing_on_the_second_request(seen)) as base:
        await transport.request("GET", f"{base}/", {})
        with pytest.raises(ServerDisconnected):
            await transport.request("POST", f"{base}/c", {}, b"{}")
        await transport.close()
    assert [request.split(b" ", 1)[0] for request in seen] == [b"GET", b"POST"]


async def test_an_answer_cut_off_midway_fails_and_is_not_sent_again() -> None:
    """Once any byte of an answer arrived, a lost connection fails even a repeatable request."""
    seen: list[bytes] = []

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        writer.close()

    transport = HttpTransport()
    async with raw_serving(cut) as base:
        with pytest.raises(ServerDisconnected):
            await transport.request("GET", f"{base}/", {}, repeatable=True)
        await transport.close()
    assert len(seen) == 1


async def test_an_answer_whose_head_is_over_the_bound_fails_as_a_bad_response() -> None:
    """A head past 64 KiB is refused and its connection dropped, not held in memory."""

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * (MAX_HEAD_BYTES + 1) + b"\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    transport = HttpTransport()
    async with raw_serving(huge) as base:
        with pytest.raises(BadResponse, match="head over"):
            await transport.request("GET", f"{base}/", {})
        assert transport.connections() == 0


async def test_a_request_past_its_deadline_raises_timeout_error_and_closes_its_connection() -> None:
    """An answer that does not come within the timeout fails the request and drops the socket."""
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", stall)
    transport = HttpTransport(timeout_s=0.2)
    async with app_serving(app) as port:
        try:
            with pytest.raises(TimeoutError):
                await transport.request("GET", f"http://127.0.0.1:{port}/", {})
            assert transport.connections() == 0
        finally:
            release.set()  # or the server's shutdown waits for the handler


async def test_a_refused_connection_raises_an_os_error() -> None:
    """Nothing listening on the port: ConnectionRefusedError, which the Discord paths catch."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    transport = HttpTransport()
    with pytest.raises(ConnectionRefusedError):
        await transport.request("GET", f"http://127.0.0.1:{port}/", {})
    assert transport.connections() == 0


async def test_rate_limits_and_server_errors_come_back_with_status_reason_and_headers() -> None:
    """A 429's body and X-RateLimit headers, and a 503, are answers for the caller to judge."""

    async def limited(request: web.Request) -> web.Response:
        if request.path == "/busy":
            return web.Response(status=503, text="upstream")
        return web.json_response(
            {"retry_after": 0.5, "global": False},
            status=429,
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.5"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", limited)
    transport = HttpTransport()
    async with app_serving(app) as port:
        limit = await transport.request("PATCH", f"http://127.0.0.1:{port}/m", {}, b"{}")
        busy = await transport.request("GET", f"http://127.0.0.1:{port}/busy", {})
        await transport.close()
    assert (limit.status, limit.reason) == (429, "Too Many Requests")
    assert limit.headers["x-ratelimit-remaining"] == "0"
    assert limit.body == b'{"retry_after": 0.5, "global": false}'
    assert (busy.status, busy.reason, busy.body) == (503, "Service Unavailable", b"upstream")


async def test_past_the_bound_a_request_waits_for_a_free_connection() -> None:
    """With one connection allowed, concurrent requests go out one after another over it."""
    in_flight = 0
    most = 0

    async def counted(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return web.Response(text=str(request.transport.get_extra_info("peername")[1]))  # type: ignore[union-attr]

    app = web.Application()
    app.router.add_get("/", counted)
    transport = HttpTransport(max_per_origin=1)
    async with app_serving(app) as port:
        answers = await asyncio.gather(
            *(transport.request("GET", f"http://127.0.0.1:{port}/", {}) for _ in range(4))
        )
        await transport.close()
    assert most == 1
    assert len({answer.body for answer in answers}) == 1


async def test_close_drops_every_connection_and_a_later_request_opens_a_new_one() -> None:
    """After close, no connection is open; the transport still serves the next request."""
    transport = HttpTransport()
    async with app_serving(peer_app()) as port:
        url = f"http://127.0.0.1:{port}/"
        await asyncio.gather(*(transport.request("GET", url, {}) for _ in range(3)))
        await transport.close()

        async def closed() -> bool:
            return transport.connections() == 0

        await eventually(closed, what="the connections to close")
        assert (await transport.request("GET", url, {})).status == 200
        await transport.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_an_https_url_is_spoken_over_tls_naming_the_host(tmp_path: Path) -> None:
    """https: TLS verified against the trust given, with the URL's host name sent as SNI."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
    command += ["-addext", "subjectAltName=DNS:localhost"]
    await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True)
    names: list[str | None] = []
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server_tls.sni_callback = lambda _sock, name, _context: names.append(name)
    transport = HttpTransport(ssl_context=ssl.create_default_context(cafile=str(cert)))
    async with app_serving(peer_app(), tls=server_tls) as port:
        answer = await transport.request("GET", f"https://localhost:{port}/", {})
        await transport.close()
    assert answer.status == 200
    assert names == ["localhost"]
