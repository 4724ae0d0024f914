"""The /match admin commands end to end: real py-cord on the Discord sandbox, the real registry,
Postgres; members run them and press their buttons through the sandbox's control API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from faceitvoice.v1 import voice_service_pb2 as voice_pb

from sandbox.discord import SandboxError
from sandbox.discord import permissions as perm
from services.kit.logging import ContextFilter
from services.voice.admin_commands import NOT_ALLOWED_TEXT
from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

MATCH = "1-d785567a-fd28-42a4-af99-6b3cec21c6a9"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def _with_role(system: VoiceSystem, name: str, permissions: int) -> int:
    """A member holding a new role (named `{name}-role`) with these guild permissions."""
    role = await system.control.create_role(system.guild_id, f"{name}-role", permissions)
    user_id = await system.member(name)
    await system.control.add_member_role(system.guild_id, user_id, role["role_id"])
    return user_id


async def _moderator(system: VoiceSystem, name: str = "mod") -> int:
    return await _with_role(system, name, perm.MANAGE_CHANNELS)


async def _commands_synced(system: VoiceSystem) -> None:
    async def synced() -> bool:
        names = {c["name"] for c in await system.control.commands(system.guild_id)}
        return "match" in names

    await eventually(synced, what="the /match commands registered")


async def test_match_list_shows_open_matches_their_channels_and_linked_players(
    system: VoiceSystem,
) -> None:
    """/match list answers ephemerally with each open match, its channels as links and its
    linked players; Discord offers /match only to members with Manage Channels."""
    await system.start_voice()
    assert system.stub is not None
    mod = await _moderator(system)
    plain = await system.member("plain")
    ada = await system.member("ada", faceit_id="p-ada")
    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-ada"], ["p-nobody"]))
    team = opened.match.channels[0].channel_id
    await _commands_synced(system)

    reply = await system.control.run_command(system.guild_id, mod, "match list")

    assert reply["ephemeral"] is True
    assert MATCH in reply["content"]
    assert f"<#{team}>" in reply["content"] and f"<@{ada}>" in reply["content"]
    assert "faction2: no channel" in reply["content"]
    offered = await system.control.commands(system.guild_id, user_id=plain)
    assert "match" not in {c["name"] for c in offered}
    with pytest.raises(SandboxError) as hidden:
        await system.control.run_command(system.guild_id, plain, "match list")
    assert hidden.value.status == 403


async def test_members_let_in_by_a_guild_override_are_still_refused_by_the_bot(
    system: VoiceSystem,
) -> None:
    """A guild admin may open /match to a role without Manage Channels (Integrations settings);
    the bot checks the member's permissions itself and refuses, closing nothing."""
    await system.start_voice()
    assert system.stub is not None
    helper = await _with_role(system, "helper", 0)
    await system.member("ada", faceit_id="p-ada")
    await system.stub.OpenMatch(match(MATCH, 1, ["p-ada"]))
    await _commands_synced(system)
    await system.control.set_command_permissions(
        system.guild_id, "match", [{"id": helper, "type": 2, "permission": True}]
    )

    for command, options in (
        ("match close", {"match_id": MATCH}),
        ("match list", {}),
        ("match sync", {}),
    ):
        reply = await system.control.run_command(system.guild_id, helper, command, options)
        assert reply["content"] == NOT_ALLOWED_TEXT and reply["ephemeral"] is True

    still = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    assert still.match.state == voice_pb.VOICE_MATCH_STATE_OPEN


async def test_match_close_closes_after_the_admins_confirmation_and_logs_who(
    system: VoiceSystem, caplog: pytest.LogCaptureFixture
) -> None:
    """/match close asks first (Confirm / Cancel buttons, seen only by the admin); Confirm does
    what CloseMatch does: players to the lobby, channels deleted; logged with admin and match."""
    caplog.set_level(logging.INFO, logger="services.voice.admin")
    caplog.handler.addFilter(ContextFilter())
    await system.start_voice()
    mod = await _moderator(system)
    other_mod = await _moderator(system, "othermod")
    ada, _, team = await system.pair_in_team_channel(MATCH)
    await _commands_synced(system)

    asked = await system.control.run_command(
        system.guild_id, mod, "match close", {"match_id": MATCH}
    )

    buttons = asked["components"][0]["components"]
    assert [b["custom_id"] for b in buttons] == ["match-close:confirm", "match-close:cancel"]
    assert f"<#{team}>" in asked["content"]
    assert await system.voice_of(ada) == team  # nothing happens before the confirmation
    with pytest.raises(SandboxError) as unseen:
        await system.control.click(other_mod, asked["message_id"], "match-close:confirm")
    assert unseen.value.status == 403

    done = await system.control.click(mod, asked["message_id"], "match-close:confirm")

    assert done["message_id"] == asked["message_id"] and done["components"] == []
    assert "closed: 1 channel deleted, 2 players moved to the lobby" in done["content"]
    assert await system.voice_of(ada) == system.lobby_id
    assert await system.match_channel_names() == []
    closed = [r for r in caplog.records if r.getMessage().startswith(f"admin {mod} closed")]
    assert closed and getattr(closed[0], "match_id", None) == MATCH


async def test_cancel_leaves_the_match_open_and_an_unanswered_question_expires(
    system: VoiceSystem,
) -> None:
    """Cancel keeps the match; unanswered, the buttons go away after the timeout."""
    await system.start_voice(confirm_timeout_s=0.5)
    ada, _, team = await system.pair_in_team_channel(MATCH)
    mod = await _moderator(system)
    await _commands_synced(system)
    ask = {"match_id": MATCH}

    first = await system.control.run_command(system.guild_id, mod, "match close", ask)
    cancelled = await system.control.click(mod, first["message_id"], "match-close:cancel")
    assert cancelled["content"].startswith("Cancelled") and cancelled["components"] == []

    second = await system.control.run_command(system.guild_id, mod, "match close", ask)

    async def expired() -> bool:
        found = system.discord.state.interaction_message(int(second["message_id"]))
        assert found is not None
        return found[1]["content"].startswith("Expired") and found[1]["components"] == []

    await eventually(expired, what="the close question to expire")
    with pytest.raises(SandboxError) as gone:
        await system.control.click(mod, second["message_id"], "match-close:confirm")
    assert gone.value.status == 404
    assert await system.voice_of(ada) == team


async def test_an_admin_who_lost_manage_channels_cannot_confirm_a_close(
    system: VoiceSystem,
) -> None:
    """The bot checks the permissions sent with the click too: an admin whose role lost Manage
    Channels after asking is refused, and the match stays open."""
    await system.start_voice()
    ada, _, team = await system.pair_in_team_channel(MATCH)
    mod = await _moderator(system)
    await _commands_synced(system)
    asked = await system.control.run_command(
        system.guild_id, mod, "match close", {"match_id": MATCH}
    )
    roles = (await system.guild_state())["roles"]
    (role,) = [r for r in roles if r["name"] == "mod-role"]
    await system.control.edit_role(system.guild_id, role["id"], permissions=0)

    refused = await system.control.click(mod, asked["message_id"], "match-close:confirm")

    assert refused["content"].startswith("Only the admin who ran /match close")
    assert refused["message_id"] != asked["message_id"]  # a new ephemeral message
    assert await system.voice_of(ada) == team
    still = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    assert still.match.state == voice_pb.VOICE_MATCH_STATE_OPEN


@pytest.mark.parametrize(
    ("match_id", "says"),
    [
        ("1-unknown", "No match '1-unknown' is known"),
        ("x" * 200, "That is not a match id: match_id is longer than 128 bytes"),
        ("   ", "That is not a match id: match_id is required"),
    ],
)
async def test_a_bad_match_id_gets_a_clear_error(
    system: VoiceSystem, match_id: str, says: str
) -> None:
    """An unknown, too long or blank match id is answered with why, and no buttons."""
    await system.start_voice()
    mod = await _moderator(system)
    await _commands_synced(system)

    reply = await system.control.run_command(
        system.guild_id, mod, "match close", {"match_id": match_id}
    )

    assert reply["content"].startswith(says) and reply["components"] == []


async def test_match_sync_reconciles_now_and_says_what_changed(system: VoiceSystem) -> None:
    """A team channel deleted by hand is recreated by /match sync, which says so; a second
    sync has nothing to change."""
    await system.start_voice()
    _, _, team = await system.pair_in_team_channel(MATCH)
    mod = await _moderator(system)
    await _commands_synced(system)
    await system.control.delete_channel(team)

    fixed = await system.control.run_command(system.guild_id, mod, "match sync")

    assert f"{MATCH}: faction1: recreated lost channel {team}" in fixed["content"]
    assert await system.match_channel_names() == ["Match 1-d78556"]
    again = await system.control.run_command(system.guild_id, mod, "match sync")
    assert "Nothing to change" in again["content"]
