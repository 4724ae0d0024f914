"""Tests of the control API client's own helpers (errors, fail_next, waiting)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from sandbox.faceit.client import FaceitSandboxClient, SandboxControlError
from sandbox.faceit.server import FaceitSandbox
from tests.sandbox.faceit.conftest import Receiver, make_match


async def test_fail_next_scopes_failures_to_a_route(
    faceit: FaceitSandbox, control: FaceitSandboxClient, auth: dict
) -> None:
    """`fail_next(503, 1, route="match")` fails one match lookup and nothing else."""
    created = await make_match(control)
    await control.fail_next(503, 1, route="match")
    async with aiohttp.ClientSession(headers=auth) as http:
        statuses = []
        for _ in range(2):
            async with http.get(f"{faceit.api_base}/matches/{created['match_id']}") as response:
                statuses.append(response.status)
    assert statuses == [503, 200]
    assert (await control.get_faults())["failures"] == []


async def test_wait_for_deliveries_times_out_while_a_receiver_hangs(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """Waiting gives up with TimeoutError while a delivery is still in flight."""
    receiver.gate = asyncio.Event()
    await control.subscribe(receiver.url)
    await make_match(control)
    with pytest.raises(TimeoutError, match="1 webhook deliveries still pending"):
        await control.wait_for_deliveries(within=0.2)
    receiver.gate.set()
    assert (await control.wait_for_deliveries())["pending"] == 0


async def test_errors_carry_status_and_body(control: FaceitSandboxClient) -> None:
    """A control error raises SandboxControlError with the HTTP status and JSON body."""
    with pytest.raises(SandboxControlError) as error:
        await control.get_match("1-none")
    assert (error.value.status, error.value.body) == (404, {"error": "no such match"})


async def test_plain_text_errors_are_reported_too(faceit: FaceitSandbox) -> None:
    """An aiohttp plain-text error (unknown control route) still raises with its status."""
    async with FaceitSandboxClient(faceit.url) as client:
        with pytest.raises(SandboxControlError) as error:
            await client.unsubscribe("x/y")
    assert error.value.status == 404 and "Not Found" in str(error.value.body)


async def test_client_can_share_a_session(faceit: FaceitSandbox) -> None:
    """A client given a session uses it and leaves it open on close."""
    async with aiohttp.ClientSession() as session:
        client = FaceitSandboxClient(faceit.url + "/", session=session)
        player = await client.create_player("Shared")
        await client.close()
        assert not session.closed
        assert [p["nickname"] for p in await client.list_players()] == [player["nickname"]]
