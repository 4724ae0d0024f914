"""Staff access (DISCORD_STAFF_ROLE_IDS) and channel names from the template, end to end:
real py-cord on the Discord sandbox, the real registry and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faceitvoice.v1 import voice_service_pb2 as voice_pb

from sandbox.discord import SandboxError
from services.voice.startup import StartupError
from tests.services.voice.system import VoiceSystem, match, voice_system

MATCH = "1-d785567a-fd28-42a4-af99-6b3cec21c6a9"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def _role_member(system: VoiceSystem, name: str, role: str) -> tuple[int, int]:
    """A member holding a new role without permissions: (user id, role id)."""
    role_id = int((await system.control.create_role(system.guild_id, role))["role_id"])
    user_id = await system.member(name)
    await system.control.add_member_role(system.guild_id, user_id, role_id)
    return user_id, role_id


async def _access(system: VoiceSystem, channel_id: int, user_id: int) -> bool:
    access = await system.control.channel_access(channel_id)
    return str(user_id) in access["view"] and str(user_id) in access["connect"]


async def test_staff_may_view_and_join_every_match_channel_and_are_not_moved_out(
    system: VoiceSystem,
) -> None:
    """A staff role's members see and join both teams' channels and stay there; a member of
    another role does not get in, and one forced in is moved out."""
    staff, staff_role = await _role_member(system, "anticheat", "staff")
    other, _ = await _role_member(system, "fan", "fans")
    await system.start_voice(discord_staff_role_ids=(staff_role,))
    assert system.stub is not None
    await system.member("ada", faceit_id="p-ada")
    await system.member("ben", faceit_id="p-ben")

    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-ada"], ["p-ben"]))

    team1, team2 = (c.channel_id for c in opened.match.channels)
    for team in (team1, team2):
        assert await _access(system, team, staff)
        assert not await _access(system, team, other)
    await system.put_in_voice(staff, team1)  # refused by the sandbox without access
    with pytest.raises(SandboxError) as refused:
        await system.control.set_voice(system.guild_id, other, team1)
    assert refused.value.status == 403
    await system.control.set_voice(system.guild_id, other, team1, force=True)
    await system.wait_in(other, system.lobby_id)
    assert await system.voice_of(staff) == team1
    assert await system.trespassers() == []


async def test_staff_access_survives_roster_edits_and_channel_replacement(
    system: VoiceSystem,
) -> None:
    """A roster change that replaces the channel (no MANAGE_ROLES) keeps the staff overwrite,
    and takes staff sitting in the old channel along into the new one."""
    staff, staff_role = await _role_member(system, "anticheat", "staff")
    await system.start_voice(discord_staff_role_ids=(staff_role,))
    assert system.stub is not None
    ada, ben, old = await system.pair_in_team_channel(MATCH)
    await system.put_in_voice(staff, old)

    again = await system.stub.OpenMatch(match(MATCH, 2, ["p-ada"]))

    new = again.match.channels[0].channel_id
    assert new != old
    assert await _access(system, new, staff)
    assert await system.voice_of(staff) == new
    assert await system.voice_of(ben) == system.lobby_id
    assert await system.voice_of(ada) == new


async def test_a_role_taken_out_of_the_staff_setting_loses_access_at_restart(
    system: VoiceSystem,
) -> None:
    """Restarted without the role in DISCORD_STAFF_ROLE_IDS, reconciliation removes its overwrite
    from the running match's channel (edited in place) and moves its member out."""
    await system.grant_manage_roles()
    staff, staff_role = await _role_member(system, "anticheat", "staff")
    await system.start_voice(discord_staff_role_ids=(staff_role,))
    _, _, team = await system.pair_in_team_channel(MATCH)
    await system.put_in_voice(staff, team)
    await system.stop_voice()

    await system.start_voice(discord_staff_role_ids=())

    assert not await _access(system, team, staff)
    await system.wait_in(staff, system.lobby_id)
    assert await system.trespassers() == []


async def test_a_role_added_to_the_staff_setting_gets_access_at_restart(
    system: VoiceSystem,
) -> None:
    """Restarted with a new staff role (no MANAGE_ROLES: the channel is replaced), the running
    match's channel admits the role; the players are taken into the new channel."""
    staff, staff_role = await _role_member(system, "anticheat", "staff")
    await system.start_voice()
    ada, _, team = await system.pair_in_team_channel(MATCH)
    assert not await _access(system, team, staff)
    await system.stop_voice()

    await system.start_voice(discord_staff_role_ids=(staff_role,))

    assert system.stub is not None
    now = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    new = now.match.channels[0].channel_id
    assert await _access(system, new, staff)
    await system.wait_in(ada, new)


@pytest.mark.parametrize("which", ["unknown", "everyone"])
async def test_start_is_refused_for_a_staff_role_that_is_not_a_staff_role(
    system: VoiceSystem, which: str
) -> None:
    """A role id the guild lacks, or @everyone's (the guild id), stops the start, named."""
    role_id = 424242 if which == "unknown" else system.guild_id
    service = system.build(discord_staff_role_ids=(role_id,))
    with pytest.raises(StartupError, match=f"DISCORD_STAFF_ROLE_IDS.*{role_id}"):
        await service.check_discord()
    await service.bot.close()


async def test_channels_are_named_by_the_template(system: VoiceSystem) -> None:
    """VOICE_CHANNEL_NAME_TEMPLATE names each team's channel with its fields."""
    await system.start_voice(voice_channel_name_template="{team} vs {opponent} · {match_short}")
    assert system.stub is not None
    await system.member("ada", faceit_id="p-ada")
    await system.member("ben", faceit_id="p-ben")

    opened = await system.stub.OpenMatch(
        match(MATCH, 1, ["p-ada"], ["p-ben"], names=("Red", "Blue"))
    )

    names = sorted(c["name"] for c in (await system.guild_state())["channels"])
    assert [c.channel_name for c in opened.match.channels] == [
        "Red vs Blue · 1-d78556",
        "Blue vs Red · 1-d78556",
    ]
    assert "Red vs Blue · 1-d78556" in names and "Blue vs Red · 1-d78556" in names
