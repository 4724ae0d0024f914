"""Fixtures: an in-process Discord sandbox, its control client, raw HTTP and gateway access."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sandbox.discord import DiscordSandbox, DiscordSandboxClient, SandboxConfig
from tests.sandbox.discord.helpers import TOKEN, Api, GatewayClient


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


@pytest.fixture
async def gateway_connect(sandbox: DiscordSandbox) -> AsyncIterator[Any]:
    """Open raw gateway connections to the `sandbox` fixture or a given server."""
    opened: list[aiohttp.ClientSession] = []

    async def connect(server: DiscordSandbox | None = None) -> GatewayClient:
        target = server or sandbox
        http = aiohttp.ClientSession()
        opened.append(http)
        url = target.url.replace("http", "ws", 1) + "/gateway?v=10&encoding=json"
        return GatewayClient(await http.ws_connect(url))

    yield connect
    for http in opened:
        await http.close()
