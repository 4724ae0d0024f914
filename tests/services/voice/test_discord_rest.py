"""DiscordRest's requests on the wire: when each one leaves, against a real local HTTP server."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import discord
import discord.http
import pytest

from services.voice.discord_rest import DiscordRest
from services.voice.metrics import VoiceMetrics
from tests.services.voice.http_servers import read_request

GUILD_ID = 81
MOVED = (
    b"HTTP/1.1 204 No Content\r\nX-RateLimit-Limit: 50\r\nX-RateLimit-Remaining: 49\r\n"
    b"X-RateLimit-Reset-After: 1.0\r\nX-RateLimit-Bucket: members\r\n\r\n"
)


class WireWatch:
    """A Discord stand-in answering every move 204, that can tell what has reached it unread."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        """Duplicates of the server's side of each connection, to peek at without reading."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fd = writer.get_extra_info("socket").fileno()
        self.sockets.append(socket.socket(fileno=os.dup(fd)))
        try:
            while True:
                await read_request(reader)
                writer.write(MOVED)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def bodies_arrived_unread(self) -> int:
        """How many whole move bodies sit in the server's sockets, not yet read by it."""
        count = 0
        for peer in self.sockets:
            try:
                waiting = peer.recv(1 << 16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except (BlockingIOError, OSError):
                continue
            count += waiting.count(b'{"channel_id":')
        return count

    def close(self) -> None:
        for peer in self.sockets:
            peer.close()


@asynccontextmanager
async def discord_stand_in(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WireWatch]:
    """A WireWatch server on a free port that py-cord's routes point at."""
    watch = WireWatch()
    server = await asyncio.start_server(watch.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(
        discord.http.Route, "API_BASE_URL", f"http://127.0.0.1:{port}/api/v{{API_VERSION}}"
    )
    try:
        yield watch
    finally:
        server.close()
        await server.wait_closed()
        watch.close()


async def test_each_move_is_on_the_wire_before_the_next_one_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten moves sent side by side: each one's whole body has reached Discord when the next is
    built (aiohttp on 3.11 wrote every body from a task of its own, after all ten were built)."""
    built_with: list[int] = []
    measuring = False

    def guard() -> None:  # DiscordRest calls it last before sending each request
        if measuring:
            built_with.append(watch.bodies_arrived_unread())

    async with discord_stand_in(monkeypatch) as watch:
        http = discord.http.HTTPClient()
        http.token = "bot-token"
        rest = DiscordRest(http, VoiceMetrics(), guard=guard)
        players = range(1, 11)
        await rest.edit_member(GUILD_ID, 1, {"channel_id": 7}, "warm")  # learns the bucket
        await asyncio.gather(  # opens one connection for each
            *(rest.edit_member(GUILD_ID, user, {"channel_id": 7}, "warm") for user in players)
        )
        measuring = True
        await asyncio.gather(
            *(rest.edit_member(GUILD_ID, user, {"channel_id": 8}, "moved") for user in players)
        )
        await rest.close()
    assert built_with == list(range(10))
