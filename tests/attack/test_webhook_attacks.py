"""Attacks on POST /faceit-webhook over real HTTP: forged secrets, hostile bodies, slow clients.

Each runs against ingest served as production serves it (its uvicorn config, with the guarded
httptools protocol) on a free port, with a real Postgres and the VoiceService double.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.http_server import MAX_HEAD_BYTES
from tests.services.ingest.harness import HEADER, SECRET, ServedIngest, real_delivery, served_ingest
from tests.services.ingest.voice_double import VoiceDoubleServer
from tests.support import eventually

FOUR_BYTES = "\U0001f600"


async def _stored(target: ServedIngest) -> int:
    """How many events the inbox holds."""
    count: int = await target.runtime.pool.fetchval("SELECT count(*) FROM ingest.events")
    return count


async def _connect(target: ServedIngest) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TCP connection to the server."""
    return await asyncio.open_connection("127.0.0.1", target.port)


@asynccontextmanager
async def attacked_ingest(database_url: str, **overrides: Any) -> AsyncIterator[ServedIngest]:
    """ingest with its production uvicorn configuration on a free port, and a voice double."""
    voice = VoiceDoubleServer()
    await voice.start()
    try:
        async with served_ingest(database_url, voice.address, **overrides) as target:
            yield target
    finally:
        await voice.stop()


def _body() -> bytes:
    return json.dumps(real_delivery()).encode()


# (what is tried, request headers, query string): each must be refused with 401, except
# a value HTTP itself forbids (NUL), which uvicorn's parser refuses with 400.
AUTH_VARIANTS: list[tuple[str, dict[str, str | bytes], str, int]] = [
    ("no secret", {}, "", 401),
    ("empty header", {HEADER: ""}, "", 401),
    ("wrong secret", {HEADER: "wrong"}, "", 401),
    ("secret plus a character", {HEADER: SECRET + "x"}, "", 401),
    ("secret minus its last character", {HEADER: SECRET[:-1]}, "", 401),
    ("secret in upper case", {HEADER: SECRET.upper()}, "", 401),
    ("secret with its case swapped", {HEADER: SECRET.swapcase()}, "", 401),
    ("secret twice", {HEADER: SECRET * 2}, "", 401),
    ("secret with a NUL appended", {HEADER: SECRET.encode() + b"\x00"}, "", 400),
    ("secret with a Cyrillic lookalike", {HEADER: SECRET.replace("e", "\u0435").encode()}, "", 401),
    ("secret after a byte over 127", {HEADER: b"\xe9" + SECRET.encode()}, "", 401),
    ("8 KiB of secret-like value", {HEADER: (SECRET * 400)[:8192]}, "", 401),
    ("100 KB header value", {HEADER: "x" * 100_000}, "", 401),
    ("secret in Authorization", {"Authorization": f"Bearer {SECRET}"}, "", 401),
    ("secret as basic auth", {"Authorization": "Basic czNjcjN0LXdlYmhvb2stdmFsdWU6"}, "", 401),
    ("secret in another header", {"X-Faceit-Secret": SECRET}, "", 401),
    ("secret in a cookie", {"Cookie": f"{HEADER}={SECRET}"}, "", 401),
    ("secret in the query (none configured)", {}, f"?token={SECRET}", 401),
    ("secret in a query named as the header", {}, f"?{HEADER}={SECRET}", 401),
    ("secret in the query, wrong header", {HEADER: "wrong"}, f"?secret={SECRET}", 401),
    ("header name with a suffix", {HEADER + "-X": SECRET}, "", 401),
    ("header name misspelt", {"X-Faceit-Signatur": SECRET}, "", 401),
]


def _raw(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def _raw_post(target: ServedIngest, headers: dict[str, str | bytes], query: str) -> int:
    """POST the real delivery over a raw socket (no client-side checks); the status answered."""
    body = _body()
    lines = [f"POST /faceit-webhook{query} HTTP/1.1".encode(), b"Host: ingest"]
    lines += [key.encode() + b": " + _raw(value) for key, value in headers.items()]
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close", b"", body]
    reader, writer = await _connect(target)
    writer.write(b"\r\n".join(lines))
    received, _ = await _closed_within(reader, 10.0)
    writer.close()
    return int(received.split(b" ", 2)[1])


async def test_forged_secrets_are_refused_and_nothing_is_stored(fresh_database: str) -> None:
    """Every variant of a missing, wrong or misplaced secret is refused and stores nothing."""
    async with attacked_ingest(fresh_database) as target:
        answers = {
            name: (await _raw_post(target, headers, query), expected)
            for name, headers, query, expected in AUTH_VARIANTS
        }
        stored = await _stored(target)
        right = await _raw_post(target, {HEADER: SECRET}, "")
    assert {name: got for name, got in answers.items() if got[0] != got[1]} == {}
    assert stored == 0
    assert right == 200


def _with_payload(**payload: Any) -> bytes:
    return json.dumps(real_delivery(event_id="hostile", payload=payload)).encode()


def _with_roster(players: list[Any]) -> bytes:
    body = real_delivery(event_id="hostile")
    body["payload"]["teams"][0]["roster"] = players
    return json.dumps(body).encode()


HOSTILE_BODIES: dict[str, bytes] = {
    "not JSON": b"<xml/>",
    "invalid UTF-8": b'{"event": "\xff\xfe"}',
    "JSON array": b"[" + _body() + b"]",
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "object nested 100,000 deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "payload nested 10,000 deep": _body().replace(
        b'"region": "EU"', b'"region": ' + b"[" * 10_000 + b"]" * 10_000
    ),
    "match id of 1,000 four-byte characters": _with_payload(id=FOUR_BYTES * 1000),
    "match id of 200 KiB": _with_payload(id="m" * 200_000),
    "match id with NUL": _with_payload(id="1-\x00"),
    "match id a lone surrogate": _with_payload(id="\ud800"),
    "match id blank": _with_payload(id="   "),
    "match id a number": _with_payload(id=12),
    "match id an object": _with_payload(id={"$ne": ""}),
    "version over int64": _with_payload(version=2**63),
    "version negative": _with_payload(version=-1),
    "version a float": _with_payload(version=1.5),
    "version a string": _with_payload(version="16"),
    "event id of 1 MiB less a bit": json.dumps(real_delivery(event_id="e" * 1_000_000)).encode(),
    "event name with spaces": json.dumps(real_delivery(event="match status ready")).encode(),
    "teams an object": _with_payload(teams={"faction1": {}}),
    "teams 1,000 entries": _with_payload(teams=[{}] * 1000),
    "roster of 12,000 players": _with_roster([{"id": f"p-{n}"} for n in range(12_000)]),
    "roster of 100 players": _with_roster([{"id": f"p-{n}"} for n in range(100)]),
    "roster entries of the wrong type": _with_roster(["p-1", 2, None]),
    "player id of 129 bytes": _with_roster([{"id": "p" * 129}]),
    "player id with NUL": _with_roster([{"id": "p\x00"}]),
    "nickname of 10,000 four-byte characters": _with_roster(
        [{"id": "p", "nickname": FOUR_BYTES * 10_000}]
    ),
    "hub id of 33 four-byte characters": _with_payload(entity={"id": FOUR_BYTES * 33}),
    "organizer id a list": _with_payload(organizer_id=["faceit"]),
    "simplified with 1,000 factions": json.dumps(
        {
            "event": "match_status_ready",
            "match_id": "m",
            "entity": {"teams": {f"f{n}": {} for n in range(1000)}},
        }
    ).encode(),
    "simplified faction key of 100 KiB": json.dumps(
        {"event": "match_status_ready", "match_id": "m", "entity": {"teams": {"f" * 100_000: {}}}}
    ).encode(),
}


async def test_hostile_bodies_are_refused_without_a_5xx_or_an_echo(fresh_database: str) -> None:
    """Oversized, nested, mistyped and unstorable bodies get 4xx, short errors, nothing stored."""
    async with (
        attacked_ingest(fresh_database) as target,
        httpx.AsyncClient(base_url=target.url, timeout=30.0) as client,
    ):
        answers = {}
        for name, content in HOSTILE_BODIES.items():
            response = await client.post(
                "/faceit-webhook", content=content, headers={HEADER: SECRET}
            )
            answers[name] = (response.status_code, len(response.content))
        stored = await _stored(target)
    assert {n: a for n, a in answers.items() if a[0] not in (400, 413, 422)} == {}
    assert {n: a for n, a in answers.items() if a[1] > 400} == {}
    assert stored == 0


_hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["", "   ", "\x00", "\ud800", FOUR_BYTES * 40, "x" * 2000]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `value` (dict keys and list positions)."""
    found = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*path, index))
    return found


def _mutate(body: Any, path: tuple[Any, ...], kind: str, value: Any) -> Any:
    """`body` with the value at `path` replaced, removed or repeated."""
    if not path:
        return value
    parent = body
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if kind == "replace":
        parent[last] = value
    elif kind == "remove":
        del parent[last]
    elif isinstance(parent, list):
        parent.extend([parent[last]] * 200)
    else:
        parent[last] = [parent[last]] * 200
    return body


_numbers = itertools.count()


@st.composite
def _mutated_deliveries(draw: Callable[..., Any]) -> Any:
    # A fresh event and match id, so that what is accepted is stored, not a duplicate.
    unique = f"mutation-{next(_numbers)}"
    body: Any = real_delivery(event_id=unique, payload={"id": f"1-{unique}"})
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(body)
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "remove", "repeat"]))
        body = _mutate(body, path, kind, draw(_hostile_values))
    return body


MUTATIONS = 300


@pytest.fixture
async def target(fresh_database: str) -> AsyncIterator[ServedIngest]:
    """ingest served for a whole test; its events are stored IGNORED (no hub matches)."""
    async with attacked_ingest(fresh_database, FACEIT_HUB_IDS="no-hub") as served:
        yield served


@settings(
    max_examples=MUTATIONS,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_mutated_deliveries())
async def test_mutations_of_the_real_delivery_never_get_a_5xx(
    target: ServedIngest, body: Any
) -> None:
    """Mutations of the real FACEIT delivery are stored (200) or refused (4xx) and not stored."""
    before = await _stored(target)
    content = json.dumps(body).encode("utf-8", "surrogatepass")
    async with httpx.AsyncClient(base_url=target.url, timeout=30.0) as client:
        response = await client.post("/faceit-webhook", content=content, headers={HEADER: SECRET})
    assert response.status_code in (200, 400, 413, 422), response.text[:300]
    assert len(response.content) <= 400
    if response.status_code != 200:
        assert await _stored(target) == before


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bytes, float]:
    """What the server sent before closing the connection, and when (time.monotonic) it did."""
    received = b""
    async with asyncio.timeout(seconds):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received, time.monotonic()


async def test_half_sent_headers_are_dropped_at_the_header_timeout(fresh_database: str) -> None:
    """300 clients that send half their headers (or nothing) are dropped after 1 s, fds freed."""
    process = psutil.Process()
    async with attacked_ingest(fresh_database, INGEST_HTTP_HEADER_TIMEOUT_S=1.0) as target:
        baseline = process.num_fds()
        attackers = []
        connected_at = []
        for _ in range(300):
            connected_at.append(time.monotonic())  # before: the server's clock starts later
            attackers.append(await _connect(target))
        for number, (_, writer) in enumerate(attackers):
            if number % 2:
                writer.write(b"POST /faceit-webhook HTTP/1.1\r\nHost: ingest\r\nX-Faceit-")
        assert len(target.server.server_state.connections) == 300
        closes = await asyncio.gather(*(_closed_within(r, 5.0) for r, _ in attackers))
        for _, writer in attackers:
            writer.close()
        await eventually(
            lambda: _true(not target.server.server_state.connections), what="connections gone"
        )
        await eventually(
            lambda: _true(process.num_fds() <= baseline + 5), what="file descriptors released"
        )
        async with httpx.AsyncClient(base_url=target.url) as client:
            response = await client.post(
                "/faceit-webhook", content=_body(), headers={HEADER: SECRET}
            )
    waited = [closed - began for (_, closed), began in zip(closes, connected_at, strict=True)]
    assert all(received == b"" for received, _ in closes)
    assert min(waited) >= 0.9 and max(waited) <= 3.0, (min(waited), max(waited))
    assert response.status_code == 200


async def _true(value: bool) -> bool:
    return value


async def test_a_dribbled_body_is_dropped_at_the_body_timeout(fresh_database: str) -> None:
    """A client that sends its headers and then its body a byte at a time is dropped, unstored."""
    async with attacked_ingest(
        fresh_database, INGEST_HTTP_HEADER_TIMEOUT_S=30.0, INGEST_HTTP_BODY_TIMEOUT_S=1.0
    ) as target:
        reader, writer = await _connect(target)
        body = _body()
        writer.write(
            b"POST /faceit-webhook HTTP/1.1\r\nHost: ingest\r\n"
            + f"{HEADER}: {SECRET}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        began = time.monotonic()
        closed = asyncio.create_task(_closed_within(reader, 10.0))
        for byte in body:
            if closed.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)  # the attack itself: one byte every 50 ms
        received, closed_at = await closed
        waited = closed_at - began
        writer.close()
        stored = await _stored(target)
    assert received == b""
    assert 0.9 <= waited <= 3.0, waited
    assert stored == 0


async def test_connections_past_the_bound_are_closed_at_once(fresh_database: str) -> None:
    """Past INGEST_HTTP_MAX_CONNECTIONS a new connection is closed at once; later ones work."""
    async with attacked_ingest(
        fresh_database, INGEST_HTTP_MAX_CONNECTIONS=20, INGEST_HTTP_HEADER_TIMEOUT_S=30.0
    ) as target:
        holders = [await _connect(target) for _ in range(20)]
        await eventually(
            lambda: _true(len(target.server.server_state.connections) == 20),
            what="20 connections held",
        )
        surplus = [await _connect(target) for _ in range(50)]
        began = time.monotonic()
        refusals = await asyncio.gather(*(_closed_within(r, 5.0) for r, _ in surplus))
        for _, writer in holders + surplus:
            writer.close()

        async def webhook_accepted() -> bool:
            async with httpx.AsyncClient(base_url=target.url) as client:
                response = await client.post(
                    "/faceit-webhook", content=_body(), headers={HEADER: SECRET}
                )
            return response.status_code == 200

        await eventually(webhook_accepted, what="a webhook accepted after the attackers left")
    assert all(received == b"" for received, _ in refusals)
    assert max(closed for _, closed in refusals) - began < 1.0


async def test_a_kept_alive_connection_has_the_header_deadline_again(fresh_database: str) -> None:
    """After a response, a connection that sends nothing more is dropped at the header timeout."""
    async with attacked_ingest(fresh_database, INGEST_HTTP_HEADER_TIMEOUT_S=1.0) as target:
        reader, writer = await _connect(target)
        body = _body()
        writer.write(
            b"POST /faceit-webhook HTTP/1.1\r\nHost: ingest\r\n"
            + f"{HEADER}: {SECRET}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        answered = time.monotonic()
        received, closed_at = await _closed_within(reader, 5.0)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert received == b""
    assert 0.5 <= closed_at - answered <= 3.0, closed_at - answered  # keep-alive: 5 s


async def test_an_endless_request_head_is_refused_at_its_bound(fresh_database: str) -> None:
    """A header that never ends is answered 431 once the head passes MAX_HEAD_BYTES, unstored."""
    async with attacked_ingest(fresh_database, INGEST_HTTP_HEADER_TIMEOUT_S=30.0) as target:
        reader, writer = await _connect(target)
        writer.write(b"POST /faceit-webhook HTTP/1.1\r\nHost: ingest\r\nX-Filler: ")
        closed = asyncio.create_task(_closed_within(reader, 10.0))
        sent = 0
        while not closed.done() and sent < 4 * MAX_HEAD_BYTES:
            try:
                writer.write(b"x" * 4096)
                await writer.drain()
            except ConnectionError:
                break  # closed by the server while more was on its way
            sent += 4096
        received, _ = await closed
        writer.close()
        stored = await _stored(target)
    assert received.startswith(b"HTTP/1.1 431 ")
    assert MAX_HEAD_BYTES <= sent <= 4 * MAX_HEAD_BYTES
    assert stored == 0
