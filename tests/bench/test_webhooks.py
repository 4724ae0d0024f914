"""The benchmarks' webhook sender against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from bench.webhooks import WebhookSender

ANSWER = b'{"status": "stored"}'


async def test_a_post_crossing_the_close_of_its_idle_connection_is_sent_again() -> None:
    """The server closes a kept-alive connection as the next post arrives on it (as uvicorn
    does after its keep-alive timeout): the post goes out again on a new connection."""
    bodies: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            if answered == 1:  # the second request on this connection: closed unanswered
                writer.close()
                return
            bodies.append(body)
            answered += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
            )
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            sender = WebhookSender(session, f"http://127.0.0.1:{port}/hook", "X-Secret", "s")
            assert await sender.send({"n": 1}) == {"status": "stored"}
            assert await sender.send({"n": 2}) == {"status": "stored"}
    finally:
        server.close()
        await server.wait_closed()
    assert [json.loads(b) for b in bodies] == [{"n": 1}, {"n": 2}]
