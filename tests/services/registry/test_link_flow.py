"""The verified-link flow over real HTTP: registry link pages, FACEIT Connect sandbox, Postgres."""

from __future__ import annotations

from faceitvoice.v1 import registry_service_pb2 as pb

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
