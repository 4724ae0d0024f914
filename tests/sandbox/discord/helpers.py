"""Test helpers for the Discord sandbox: raw REST, a bare gateway client, a py-cord bot, a clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
from multidict import CIMultiDictProxy

from sandbox.discord import point_pycord_at

TOKEN = "sandbox-bot-token"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    """Plain HTTP calls to the sandbox's Discord REST API, as a bot would make them."""

    http: aiohttp.ClientSession
    base: str

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, CIMultiDictProxy[str]]:
        """Send one request; return status, parsed JSON (or None) and headers."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bot {token}"
        data = None
        if body is not None:
            all_headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        async with self.http.request(
            method, f"{self.base}/api/v10{path}", data=data, headers=all_headers
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None, response.headers


class GatewayClient:
    """A bare gateway client: reads frames in order, as a bot library would."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session_id: str | None = None
        self.seq = 0

    async def frame(self) -> dict[str, Any]:
        """The next frame (raises when the socket closes; fails after 5 s)."""
        msg = await self.ws.receive(timeout=5.0)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"gateway closed: {msg.type} {self.ws.close_code}")
        frame = json.loads(msg.data)
        if frame.get("s"):
            self.seq = frame["s"]
        return frame

    async def dispatch(self, event: str) -> dict[str, Any]:
        """Skip frames until the dispatch `event` arrives; return its data."""
        while True:
            frame = await self.frame()
            if frame["op"] == 0 and frame["t"] == event:
                return frame["d"]

    async def send_identify(self, **fields: Any) -> None:
        """Read HELLO and send IDENTIFY with the bot token and these fields, without waiting."""
        hello = await self.frame()
        assert hello["op"] == 10
        await self.ws.send_json({"op": 2, "d": {"token": TOKEN, "properties": {}, **fields}})

    async def identify(
        self, token: str = TOKEN, intents: int = (1 << 0) | (1 << 7)
    ) -> dict[str, Any]:
        """HELLO, IDENTIFY, READY; returns READY's data."""
        hello = await self.frame()
        assert hello["op"] == 10
        await self.ws.send_json(
            {"op": 2, "d": {"token": token, "intents": intents, "properties": {}}}
        )
        ready = await self.dispatch("READY")
        self.session_id = ready["session_id"]
        return ready


@asynccontextmanager
async def running_bot(
    base_url: str,
    *,
    guild_ids: list[int],
    token: str = TOKEN,
    setup: Callable[[discord.Bot], None] | None = None,
    intents: discord.Intents | None = None,
    **options: Any,
) -> AsyncIterator[discord.Bot]:
    """An unmodified py-cord bot connected to the sandbox, closed cleanly afterwards."""
    point_pycord_at(base_url)
    bot = discord.Bot(
        intents=intents or discord.Intents.default(),
        debug_guilds=guild_ids,
        guild_ready_timeout=0.05,
        **options,
    )
    ready = asyncio.Event()

    async def on_ready() -> None:
        ready.set()

    bot.add_listener(on_ready, "on_ready")
    if setup is not None:
        setup(bot)
    start = asyncio.create_task(bot.start(token))
    waiter = asyncio.create_task(ready.wait())
    try:
        done, _ = await asyncio.wait(
            {start, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED
        )
        if start in done:
            start.result()
        assert waiter in done, "py-cord did not become ready within 10 s"
        yield bot
    finally:
        waiter.cancel()
        await bot.close()
        with contextlib.suppress(RuntimeError):  # py-cord: 'Session is closed' after close()
            await start
