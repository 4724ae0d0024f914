"""Squatting a FACEIT account's seat: a nickname claim loses to the owner's verified link."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.services.voice.linking import register_and_sign_in
from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

MATCH = "1-0c4e2a61-7b3d-4f5e-8a9b-1c2d3e4f5a6b"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, a registry in nickname mode (before the switch) and database."""
    async with voice_system(fresh_database) as running:
        yield running


async def test_the_owners_verified_link_moves_the_squatter_out_at_once(system: VoiceSystem) -> None:
    """Mallory /registers the owner's nickname (nickname mode) and sits in the owner's team
    channel; after the switch to faceit_oauth, the owner's sign-in removes her claim and she
    loses access and is moved to the lobby at once, while the owner is moved in."""
    await system.start_voice()
    assert system.stub is not None
    await system.faceit.create_player("owner_fc", player_id="p-owner", skill_level=7)
    mallory = await system.member("mallory")
    owner = await system.member("owner")
    squat = await system.control.run_command(
        system.guild_id, mallory, "register", {"faceit_nickname": "owner_fc"}
    )
    assert squat["embeds"], squat
    await system.join_lobby(mallory, owner)
    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-owner"]))
    team = opened.match.channels[0].channel_id
    await system.wait_in(mallory, team)

    await system.stop_voice()
    system.running_registry.link_verification = "faceit_oauth"
    await system.running_registry.restart()
    await system.start_voice()
    await register_and_sign_in(system, owner, "p-owner")

    await system.wait_in(mallory, system.lobby_id)

    async def owners_channel() -> int | None:
        assert system.voice is not None
        seat = system.voice.cache.seat_of(owner)
        return seat.channel_id if seat is not None and seat.match_id == MATCH else None

    channel = await eventually(owners_channel, what="the owner's seat")
    assert channel is not None
    await system.wait_in(owner, channel)
    access = await system.control.channel_access(channel)
    assert str(mallory) not in access["view"] and str(mallory) not in access["connect"]
    assert str(owner) in access["connect"]
    assert await system.trespassers() == []
