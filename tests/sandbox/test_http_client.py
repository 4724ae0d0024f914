"""The sandboxes' control clients share one HTTP base: JSON in and out, errors with the body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from sandbox.discord.client import DiscordSandboxClient, SandboxError
from sandbox.faceit.client import FaceitSandboxClient, SandboxControlError
from sandbox.http_client import SandboxHttpClient, SandboxHttpError


@pytest.fixture
async def plain_server() -> AsyncIterator[str]:
    """A real aiohttp server on port 0 without routes: every path is aiohttp's plain 404."""
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_plain_text_error_reaches_the_discord_client_as_its_error(
    plain_server: str,
) -> None:
    """A non-JSON error answer is a SandboxError with status and text, not a decode error."""
    async with DiscordSandboxClient(plain_server) as client:
        with pytest.raises(SandboxError) as raised:
            await client.info()
    assert raised.value.status == 404 and "Not Found" in str(raised.value.body)
    assert isinstance(raised.value, SandboxHttpError)


async def test_a_plain_text_error_reaches_the_faceit_client_as_its_error(plain_server: str) -> None:
    """The FACEIT client answers the same way, with its own error type."""
    async with FaceitSandboxClient(plain_server) as client:
        with pytest.raises(SandboxControlError) as raised:
            await client.list_players()
    assert raised.value.status == 404 and "Not Found" in str(raised.value.body)
    assert isinstance(raised.value, SandboxHttpError)


def test_both_clients_are_built_on_the_one_base() -> None:
    """Neither client carries its own session handling or request code."""
    for client in (DiscordSandboxClient, FaceitSandboxClient):
        assert issubclass(client, SandboxHttpClient)
        assert not {"_call", "close", "__aenter__", "__aexit__"} & set(vars(client))
