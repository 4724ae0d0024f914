"""Tests of driving matches in-process through `FaceitSandbox.lifecycle`."""

from __future__ import annotations

from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.server import FaceitSandbox
from tests.sandbox.faceit.conftest import Receiver


async def test_in_process_lifecycle_sends_webhooks(
    faceit: FaceitSandbox, control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """Creating and moving a match in-process publishes the same webhooks as the control API."""
    faceit.world.add_subscription(receiver.url, header_name="X-Secret", header_value="v")
    a = faceit.world.add_player("inproc_a").player_id
    b = faceit.world.add_player("inproc_b").player_id
    match, created = faceit.lifecycle.create_match([[a], [b]])
    step = faceit.lifecycle.set_status(match, "READY")
    assert [w["event"] for w in created] == ["match_object_created"]
    assert (step["event"], step["version"]) == ("match_status_ready", match.webhook_version)
    assert step["api_version"] == match.api_version == 2
    await control.wait_for_deliveries()
    assert receiver.events() == ["match_object_created", "match_status_ready"]
    assert receiver.received[1].body["payload"]["teams"][1]["roster"][0]["id"] == b


async def test_in_process_status_without_webhook_is_silent(
    faceit: FaceitSandbox, control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """`webhook=False` changes the match for the Data API but sends nothing."""
    faceit.world.add_subscription(receiver.url)
    a = faceit.world.add_player("quiet_a").player_id
    b = faceit.world.add_player("quiet_b").player_id
    match, created = faceit.lifecycle.create_match([[a], [b]], webhook=False)
    step = faceit.lifecycle.set_status(match, "CANCELLED", reason="AFK", webhook=False)
    assert (created, step["webhooks"]) == ([], [])
    assert (await control.get_match(match.match_id))["status"] == "CANCELLED"
    assert (await control.wait_for_deliveries())["attempts"] == []
