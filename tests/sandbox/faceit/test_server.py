"""Tests of running the sandbox in-process: start on port 0, stop, isolation."""

from __future__ import annotations

import aiohttp
import pytest

from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.deliverer import WebhookOptions
from sandbox.faceit.server import FaceitSandbox
from tests.sandbox.faceit.conftest import API_KEY


async def test_two_sandboxes_run_side_by_side_on_free_ports() -> None:
    """Each sandbox gets its own free port and its own state."""
    async with FaceitSandbox(api_key=API_KEY) as one, FaceitSandbox(api_key=API_KEY) as two:
        assert one.url != two.url and not one.url.endswith(":0")
        assert one.api_base == one.url + "/data/v4"
        one.world.add_player("OnlyInOne", player_id="p1")
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(one.api_base + "/players/p1") as response:
                assert response.status == 200
            async with http.get(two.api_base + "/players/p1") as response:
                assert response.status == 404


async def test_stop_closes_the_port() -> None:
    """After stop the sandbox no longer accepts connections and has no URL."""
    sandbox = FaceitSandbox(api_key=API_KEY)
    url = await sandbox.start()
    await sandbox.stop()
    with pytest.raises(RuntimeError):
        _ = sandbox.url
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(url + "/_sandbox/faults")


def test_empty_api_key_is_refused() -> None:
    """The sandbox refuses to start without an API key to check."""
    with pytest.raises(ValueError):
        FaceitSandbox(api_key="")


async def test_fixed_hub_and_organizer_ids_are_used() -> None:
    """Given hub and organizer ids become the default hub's."""
    async with FaceitSandbox(api_key=API_KEY, hub_id="hub-x", organizer_id="org-x") as sandbox:
        assert (sandbox.default_hub.hub_id, sandbox.default_hub.organizer_id) == (
            "hub-x",
            "org-x",
        )


async def test_clearing_faults_restores_the_start_settings() -> None:
    """DELETE faults goes back to the latency and webhook options given at start."""
    options = WebhookOptions(duplicate=2, reorder="reverse")
    async with (
        FaceitSandbox(api_key=API_KEY, webhook_options=options, latency_s=0.01) as sandbox,
        FaceitSandboxClient(sandbox.url) as control,
    ):
        await control.set_faults(latency_ms=500, webhooks={"duplicate": 5, "reorder": "none"})
        cleared = await control.clear_faults()
        assert cleared["latency_ms"] == 10
        assert (cleared["webhooks"]["duplicate"], cleared["webhooks"]["reorder"]) == (2, "reverse")


async def test_fill_rosters_at_start_applies_to_every_new_match() -> None:
    """`FaceitSandbox(fill_rosters=True)` makes matches start with their captains only."""
    async with (
        FaceitSandbox(api_key=API_KEY, fill_rosters=True) as sandbox,
        FaceitSandboxClient(sandbox.url) as control,
    ):
        ids = [(await control.create_player(name))["player_id"] for name in ("s1", "s2", "s3")]
        created = await control.create_match([ids[:2], ids[2:]])
    assert (created["fill_rosters"], created["rosters"]) == (True, [ids[:1], ids[2:]])
