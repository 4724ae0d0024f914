"""Access revoked mid-match: whoever loses a team channel leaves it, and nobody is moved in
without access. Real py-cord against the Discord sandbox, the real registry, Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import discord
import pytest
from faceitvoice.v1 import registry_service_pb2 as registry_pb
from faceitvoice.v1 import voice_service_pb2 as voice_pb

from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

MATCH = "1-3f0d1c52-6a57-4a8e-9d0c-5b1f2e7a9c41"
EARLIER = "1-8b2e4f61-0c3d-4e7a-b5f9-2d6a1c8e0b47"
RACERS = 20


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


class Moves:
    """Every voice move the bot sees on the gateway, in order: (member, channel or None)."""

    def __init__(self, bot: discord.Bot) -> None:
        self.seen: list[tuple[int, int | None, bool]] = []
        """(member, channel or None, whether the member could view that channel then)."""
        bot.add_listener(self._record, "on_voice_state_update")

    async def _record(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        channel = after.channel
        if channel is None:
            self.seen.append((member.id, None, True))
        else:
            self.seen.append((member.id, channel.id, channel.permissions_for(member).view_channel))


async def unregister(system: VoiceSystem, loser: int) -> None:
    """The player runs /unregister while sitting in the team channel."""
    await system.control.run_command(system.guild_id, loser, "unregister")


async def newer_event_drops(system: VoiceSystem, loser: int) -> None:
    """A newer event's roster no longer lists the player."""
    assert system.stub is not None
    await system.stub.OpenMatch(match(MATCH, 2, ["p-ada"]))


async def link_replaced(system: VoiceSystem, loser: int) -> None:
    """The player's FACEIT account is unlinked (voice hears of it from the registry) and
    /register-ed by another."""
    await system.registry.UnlinkPlayer(registry_pb.UnlinkPlayerRequest(discord_user_id=loser))
    taker = await system.member("taker")
    await system.join_lobby(taker)
    await system.control.run_command(system.guild_id, taker, "register", {"faceit_nickname": "ben"})


Revocation = Callable[[VoiceSystem, int], Awaitable[None]]


def no_trespassers(system: VoiceSystem) -> Callable[[], Awaitable[bool]]:
    """A probe: whether every member in voice may view the channel they are in."""

    async def probe() -> bool:
        return await system.trespassers() == []

    return probe


@pytest.mark.parametrize("revoke", [unregister, newer_event_drops, link_replaced])
@pytest.mark.parametrize("manage_roles", [True, False], ids=["edited_in_place", "replaced"])
async def test_who_loses_access_is_in_no_channel_they_cannot_view(
    system: VoiceSystem, revoke: Revocation, manage_roles: bool
) -> None:
    """After access is revoked mid-match nobody sits where they cannot see, nor was moved in."""
    if manage_roles:
        await system.grant_manage_roles()
    await system.start_voice()
    assert system.stub is not None and system.voice is not None
    ada, ben, before = await system.pair_in_team_channel(MATCH)
    stranger = await system.member("stranger")
    moves = Moves(system.voice.bot)
    # One who never had access is put in by force (as a moderator could) just before.
    await system.control.set_voice(system.guild_id, stranger, before, force=True)

    await revoke(system, ben)

    assert ben not in [user_id for user_id, _ in await system.trespassers()]
    await eventually(no_trespassers(system), what="nobody in a channel they cannot view")
    now = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    team = now.match.channels[0].channel_id
    assert (team == before) is manage_roles
    assert await system.voice_of(ben) == system.lobby_id
    assert await system.voice_of(ada) == team
    access = (await system.control.channel_access(team))["view"]
    assert str(ben) not in access and str(stranger) not in access
    for user_id in (ada, ben, stranger):
        await system.bot_sees(user_id, await system.voice_of(user_id))
    forced = (stranger, before)  # the attack's own move, not voice's
    # A channel replaced on the way (each change of access replaces it without MANAGE_ROLES)
    # is fine for whom it allowed: what matters is that nobody was moved where they could not
    # view at that moment.
    wrong = [
        (user_id, channel_id)
        for user_id, channel_id, could_view in moves.seen
        if channel_id not in (system.lobby_id, None)
        and not could_view
        and (user_id, channel_id) != forced
    ]
    assert wrong == []


async def test_many_users_registering_one_nickname_at_once_one_wins(system: VoiceSystem) -> None:
    """Concurrent /register of one FACEIT nickname by many Discord users links exactly one."""
    await system.start_voice()
    await system.faceit.create_player("contested", player_id="p-contested")
    racers = [await system.member(f"racer{n}") for n in range(RACERS)]

    replies = await asyncio.gather(
        *(
            system.control.run_command(
                system.guild_id, racer, "register", {"faceit_nickname": "contested"}
            )
            for racer in racers
        )
    )

    winners = [r for r, reply in zip(racers, replies, strict=True) if reply["embeds"]]
    assert len(winners) == 1
    losers = [reply["content"] for reply in replies if not reply["embeds"]]
    assert all("already registered by another Discord user" in text for text in losers)
    link = await system.registry.GetPlayerLink(
        registry_pb.GetPlayerLinkRequest(faceit_player_id="p-contested")
    )
    assert link.link.discord_user_id == winners[0]


async def test_a_link_gone_unheard_gives_no_access_in_the_players_next_match(
    system: VoiceSystem,
) -> None:
    """A link the registry no longer resolves, whose change voice never heard, gives no lasting
    access in that player's next match: the creates may go out on the registry's last answer,
    but the access ends as the registry's answer says, and nobody is moved in without it."""
    await system.start_voice()
    assert system.stub is not None and system.voice is not None
    carl = await system.member("carl", faceit_id="p-carl")
    dave = await system.member("dave", faceit_id="p-dave")
    await system.stub.OpenMatch(match(EARLIER, 1, ["p-carl", "p-dave"]))  # answered once
    await system.stub.CloseMatch(
        voice_pb.CloseMatchRequest(match_id=EARLIER, version=2, reason="finished")
    )
    await system.join_lobby(carl, dave)
    moves = Moves(system.voice.bot)
    # Gone from the registry with no change logged: voice never hears of it.
    await system.pool.execute("DELETE FROM registry.player_links WHERE discord_user_id = $1", dave)

    async with system.pool.acquire() as holder, holder.transaction():
        # The registry's answer to the next open waits until the creates went out.
        await holder.execute("LOCK TABLE registry.player_links IN ACCESS EXCLUSIVE MODE")
        next_match = match(MATCH, 1, ["p-carl", "p-dave"])
        opening = asyncio.ensure_future(system.stub.OpenMatch(next_match))

        async def made() -> list[str]:
            channels = (await system.guild_state())["channels"]
            return [c["id"] for c in channels if c["name"] == f"Match {MATCH[:8]}"]

        (guessed,) = await eventually(made, what="the channel created on the last answer")
        assert str(dave) in (await system.control.channel_access(guessed))["view"]
    opened = await opening

    team = opened.match.channels[0].channel_id
    access = (await system.control.channel_access(team))["view"]
    assert str(dave) not in access and str(carl) in access
    assert list(opened.match.channels[0].member_discord_user_ids) == [carl]
    await system.bot_sees(carl, team)
    assert await system.voice_of(dave) == system.lobby_id
    assert [seen for seen in moves.seen if seen[0] == dave] == []
