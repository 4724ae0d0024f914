"""The verified-link flow over real HTTP: registry link pages, FACEIT Connect sandbox, Postgres."""

from __future__ import annotations

import time

from faceitvoice.v1 import registry_service_pb2 as pb

from sandbox.faceit.client import FaceitSandboxClient
from tests.services.registry.conftest import LinkingRegistry
from tests.services.registry.link_browser import browser


async def test_a_verified_link_is_made_by_signing_in_with_faceit(linking: LinkingRegistry) -> None:
    """StartLink, the link page, FACEIT sign-in and the callback make a verified link."""
    player = linking.sandbox.world.add_player("s1mple", skill_level=10)
    started = await linking.start_link(42, "Alice")

    async with browser() as alice:
        result = await alice.link(started.url, player.player_id)

    assert result.status == 200, result.html
    assert result.heading == "FACEIT account linked"
    assert "Alice" in result.html and "s1mple" in result.html
    found = await linking.stub.GetPlayerLink(pb.GetPlayerLinkRequest(discord_user_id=42))
    assert found.link.verified is True
    assert found.link.faceit_player_id == player.player_id
    assert found.link.faceit_nickname == "s1mple"
    assert found.link.profile.skill_level == 10
    assert found.link.verified_at.seconds > 0


async def test_the_profile_is_read_while_faceit_says_who_signed_in(
    linking: LinkingRegistry,
) -> None:
    """The Data API profile of the player the token's id_token names is read beside userinfo:
    with userinfo slow, the profile is answered before it, and the link carries it."""
    player = linking.sandbox.world.add_player("s1mple", skill_level=10)
    linking.sandbox.connect.faults.add("userinfo", "delay", delay_ms=1000)
    started = await linking.start_link(42, "Alice")

    async with browser() as alice:
        result = await alice.link(started.url, player.player_id)

    assert result.status == 200, result.html
    async with FaceitSandboxClient(linking.sandbox.url) as sandbox:
        (answer,) = await sandbox.userinfo_answers()
    wall_minus_monotonic = time.time() - time.monotonic()
    (profile,) = [
        entry
        for entry in linking.sandbox.request_log.entries()
        if entry.path.endswith(f"/players/{player.player_id}")
    ]
    assert profile.at < answer["answered_at"] + wall_minus_monotonic - 0.5
    found = await linking.stub.GetPlayerLink(pb.GetPlayerLinkRequest(discord_user_id=42))
    assert found.link.profile.skill_level == 10
