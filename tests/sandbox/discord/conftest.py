"""Fixtures: an in-process Discord sandbox, its control client, raw HTTP and gateway helpers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from sandbox.discord import DiscordSandbox, DiscordSandboxClient, SandboxConfig

TOKEN = "sandbox-bot-token"


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
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
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


@pytest.fixture
def config() -> SandboxConfig:
    """Default limits; tests override fields before the sandbox starts."""
    return SandboxConfig()


@pytest.fixture
async def sandbox(config: SandboxConfig) -> AsyncIterator[DiscordSandbox]:
    """A running sandbox on a free port."""
    server = DiscordSandbox(bot_token=TOKEN, config=config)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def control(sandbox: DiscordSandbox) -> AsyncIterator[DiscordSandboxClient]:
    """The control API client."""
    async with DiscordSandboxClient(sandbox.url) as client:
        yield client


@pytest.fixture
async def api(sandbox: DiscordSandbox) -> AsyncIterator[Api]:
    """Raw REST access."""
    async with aiohttp.ClientSession() as http:
        yield Api(http=http, base=sandbox.url)


@pytest.fixture
async def guild(control: DiscordSandboxClient) -> dict[str, Any]:
    """A guild with the bot in it."""
    return await control.create_guild("Test Guild")


class GatewayClient:
    """A bare gateway client: reads frames in order, as a bot library would."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session_id: str | None = None
        self.seq = 0

    async def frame(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame (raises when the socket closes)."""
        msg = await self.ws.receive(timeout=timeout)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"gateway closed: {msg.type} {self.ws.close_code}")
        frame = json.loads(msg.data)
        if frame.get("s"):
            self.seq = frame["s"]
        return frame

    async def dispatch(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        """Skip frames until the dispatch `event` arrives; return its data."""
        while True:
            frame = await self.frame(timeout)
            if frame["op"] == 0 and frame["t"] == event:
                return frame["d"]

    async def identify(self, token: str = TOKEN, intents: int = (1 << 0) | (1 << 7)) -> dict[str, Any]:
        """HELLO, IDENTIFY, READY; returns READY's data."""
        hello = await self.frame()
        assert hello["op"] == 10
        await self.ws.send_json({"op": 2, "d": {"token": token, "intents": intents, "properties": {}}})
        ready = await self.dispatch("READY")
        self.session_id = ready["session_id"]
        return ready


@pytest.fixture
async def gateway_connect(
    sandbox: DiscordSandbox,
) -> AsyncIterator[Any]:
    """Open raw gateway connections (closed at the end of the test)."""
    opened: list[aiohttp.ClientSession] = []

    async def connect() -> GatewayClient:
        http = aiohttp.ClientSession()
        opened.append(http)
        ws = await http.ws_connect(sandbox.url.replace("http", "ws", 1) + "/gateway?v=10&encoding=json")
        return GatewayClient(ws)

    yield connect
    for http in opened:
        await http.close()
