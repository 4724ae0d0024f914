"""MatchService against real Postgres with fakes of the Discord and registry seams."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from services.kit.database import create_pool
from services.kit.errors import InvalidArgument, NotFound, Unavailable
from services.kit.logging import ContextFilter
from services.voice.cache import ActiveMatchCache, TeamSeat
from services.voice.lease import FencingToken, is_fenced_out
from services.voice.matches import MatchService
from services.voice.model import (
    CloseOutcome,
    MatchRecord,
    MatchSpec,
    MatchState,
    OpenOutcome,
    PlacementOutcome,
    Player,
    Team,
)
from services.voice.server import migrate
from services.voice.store import VoiceStore
from tests.services.voice.fakes import FakeDiscord, FakeResolver
from tests.support import eventually

GUILD = 900
LOBBY = 42
MATCH = "1-d785567a-fd28-42a4-af99-6b3cec21c6a9"
OTHER = "1-5e0c3b2a-77d1-4c52-9a0e-0f6e2d9b1c30"


@dataclass
class World:
    """The service under test and its collaborators."""

    service: MatchService
    store: VoiceStore
    cache: ActiveMatchCache
    discord: FakeDiscord
    resolver: FakeResolver
    guesses: list[str] = field(default_factory=list)
    """What became of each open's creates sent on the registry's last answers."""


def build(
    pool: asyncpg.Pool,
    discord: FakeDiscord | None = None,
    delay: float = 0.0,
    *,
    lobby: int | None = LOBBY,
    store: VoiceStore | None = None,
    resolver: FakeResolver | None = None,
) -> World:
    store = store or VoiceStore(pool)
    cache = ActiveMatchCache()
    fake = discord or FakeDiscord()
    resolver = resolver or FakeResolver()
    guesses: list[str] = []
    service = MatchService(
        store=store,
        cache=cache,
        discord=fake,
        resolver=resolver,
        guild_id=GUILD,
        lobby_channel_id=lobby,
        close_delay_s=delay,
        guessed=guesses.append,
    )
    return World(service, store, cache, fake, resolver, guesses)


@pytest.fixture
def world(voice_pool: asyncpg.Pool) -> World:
    """A service whose players p1 (user 1) and p2 (user 2) are linked members of the guild."""
    w = build(voice_pool)
    w.resolver.links = {"p1": 1, "p2": 2, "p3": 3}
    w.discord.guild_members = {1, 2}
    return w


def spec(version: int = 1, *, names: tuple[str, str] = ("", "")) -> MatchSpec:
    return MatchSpec(
        MATCH,
        version,
        (
            Team("faction1", names[0], (Player("p1", "one"), Player("p3", "three"))),
            Team("faction2", names[1], (Player("p2", "two"), Player("p4", "four"))),
        ),
    )


async def test_open_creates_one_channel_per_team_and_moves_players_in_voice(world: World) -> None:
    """OpenMatch makes a channel per team with its members and moves linked players in voice."""
    world.discord.voice[1] = LOBBY
    result = await world.service.open_match(spec())
    assert result.outcome is OpenOutcome.OPENED
    assert [c.faction for c in result.match.channels] == ["faction1", "faction2"]
    first, second = result.match.channels
    assert world.discord.channels[first.channel_id].members == {1}  # type: ignore[index]
    assert world.discord.channels[second.channel_id].members == {2}  # type: ignore[index]
    assert first.channel_name == "Match 1-d78556"
    outcomes = {p.faceit_player_id: p.outcome for p in result.placements}
    assert outcomes == {
        "p1": PlacementOutcome.MOVED,
        "p3": PlacementOutcome.SKIPPED_NOT_IN_GUILD,
        "p2": PlacementOutcome.SKIPPED_NOT_IN_VOICE,
        "p4": PlacementOutcome.SKIPPED_NOT_LINKED,
    }
    assert world.discord.voice[1] == first.channel_id
    assert world.resolver.calls == [["p1", "p2", "p3", "p4"]]
    assert world.cache.get(MATCH) == result.match


async def test_channel_names_carry_team_names_when_both_teams_have_one(world: World) -> None:
    """With both team names the channel name is `Match <id8> · <team>`."""
    result = await world.service.open_match(spec(names=("Alpha", "Bravo")))
    assert [c.channel_name for c in result.match.channels] == [
        "Match 1-d78556 · Alpha",
        "Match 1-d78556 · Bravo",
    ]


async def test_repeated_open_is_idempotent(world: World) -> None:
    """A second OpenMatch with the same event creates nothing and reports UPDATED."""
    await world.service.open_match(spec())
    again = await world.service.open_match(spec())
    assert again.outcome is OpenOutcome.UPDATED
    assert len(world.discord.created) == 2


async def test_concurrent_opens_make_one_channel_per_team(world: World) -> None:
    """Concurrent OpenMatch calls for one match create exactly one channel per team."""
    gate = asyncio.Event()
    world.discord.create_gate = gate
    calls = [asyncio.create_task(world.service.open_match(spec())) for _ in range(5)]
    await asyncio.sleep(0)  # let every call reach the lock before Discord answers
    gate.set()
    results = await asyncio.gather(*calls)
    assert len(world.discord.created) == 2
    assert sorted(r.outcome.name for r in results) == ["OPENED"] + ["UPDATED"] * 4


async def test_new_links_and_rosters_update_channel_access(world: World) -> None:
    """A later OpenMatch with a newly linked member adds them to the team channel's access."""
    first = await world.service.open_match(spec())
    world.discord.guild_members.add(3)
    second = await world.service.open_match(spec(2))
    channel = second.match.channel("faction1")
    assert channel is not None and channel.member_ids == {1, 3}
    assert world.discord.channels[channel.channel_id].members == {1, 3}  # type: ignore[index]
    assert first.match.channel("faction1").channel_id == channel.channel_id  # type: ignore[union-attr]


async def test_team_without_linked_members_gets_no_channel(world: World) -> None:
    """A team with no linked guild member gets no channel."""
    world.discord.guild_members = {1}
    result = await world.service.open_match(spec())
    assert [c.faction for c in result.match.channels] == ["faction1"]


async def test_older_open_is_stale(world: World) -> None:
    """An OpenMatch older than the applied one changes nothing."""
    await world.service.open_match(spec(5))
    stale = await world.service.open_match(spec(4))
    assert stale.outcome is OpenOutcome.STALE
    assert stale.match.version == 5


async def test_close_deletes_channels_moves_occupants_to_lobby_and_keeps_the_row(
    world: World,
) -> None:
    """CloseMatch moves occupants to the lobby, deletes the channels and keeps the closed row."""
    world.discord.voice[1] = LOBBY
    opened = await world.service.open_match(spec())
    closed = await world.service.close_match(MATCH, 2, "match_status_finished")
    assert closed.outcome is CloseOutcome.CLOSED
    assert set(closed.deleted_channel_ids) == {c.channel_id for c in opened.match.channels}
    assert closed.moved_to_lobby == 1
    assert world.discord.voice[1] == LOBBY
    assert world.discord.channels == {}
    assert closed.match.state is MatchState.CLOSED and closed.match.channels == ()
    assert closed.match.close_reason == "match_status_finished"
    assert world.cache.get(MATCH) is None


async def test_stale_open_after_close_stays_closed(world: World) -> None:
    """After a close, an open with a version not newer than the close changes nothing."""
    await world.service.open_match(spec(1))
    await world.service.close_match(MATCH, 3, "match_status_finished")
    stale = await world.service.open_match(spec(3))
    assert stale.outcome is OpenOutcome.STALE
    assert stale.match.state is MatchState.CLOSED
    assert world.discord.channels == {}


async def test_strictly_newer_open_reopens(world: World) -> None:
    """An open strictly newer than the close reopens the match with new channels."""
    await world.service.open_match(spec(1))
    await world.service.close_match(MATCH, 3, "match_status_cancelled")
    reopened = await world.service.open_match(spec(4))
    assert reopened.outcome is OpenOutcome.OPENED
    assert reopened.match.state is MatchState.OPEN
    assert len(world.discord.channels) == 2


async def test_close_older_than_open_is_stale(world: World) -> None:
    """A close older than the applied open leaves the match open."""
    await world.service.open_match(spec(5))
    stale = await world.service.close_match(MATCH, 4, "match_status_finished")
    assert stale.outcome is CloseOutcome.STALE
    assert len(world.discord.channels) == 2


async def test_close_of_unknown_match_is_recorded(world: World) -> None:
    """Closing a match never opened records it closed, so a stale open is recognised later."""
    result = await world.service.close_match(MATCH, 2, "match_status_aborted")
    assert result.outcome is CloseOutcome.ALREADY_CLOSED
    assert (await world.service.open_match(spec(2))).outcome is OpenOutcome.STALE
    assert world.discord.created == []


async def test_delayed_close_is_scheduled_and_finished_later(voice_pool: asyncpg.Pool) -> None:
    """With a grace period the close is recorded at once and the channels go when it is over."""
    w = build(voice_pool, delay=0.2)
    w.resolver.links = {"p1": 1}
    w.discord.guild_members = {1}
    await w.service.open_match(spec())
    result = await w.service.close_match(MATCH, 2, "match_status_finished")
    assert result.outcome is CloseOutcome.SCHEDULED
    assert len(w.discord.channels) == 1
    assert await w.service.finish_close(MATCH) == ()
    wait = await w.store.seconds_to_next_deletion()
    assert wait is not None and wait <= 0.2
    await eventually(w.store.due_deletions, what="the grace period to end")
    assert len(await w.service.finish_close(MATCH)) == 1
    assert w.discord.channels == {}


async def test_no_deletion_is_due_while_no_closed_match_has_channels(world: World) -> None:
    """With nothing closed, or closed and gone, the deletion worker has nothing to wait for."""
    assert await world.store.seconds_to_next_deletion() is None
    await world.service.open_match(spec())
    assert await world.store.seconds_to_next_deletion() is None
    await world.service.close_match(MATCH, 2, "match_status_finished")
    assert world.discord.channels == {}
    assert await world.store.seconds_to_next_deletion() is None
    assert await world.store.due_deletions() == []


async def test_registry_down_changes_nothing_for_players_never_answered(world: World) -> None:
    """When the registry is unreachable OpenMatch of players it never answered for fails
    UNAVAILABLE before touching anything."""
    world.resolver.down = True
    with pytest.raises(Unavailable):
        await world.service.open_match(spec())
    assert world.discord.created == []
    with pytest.raises(NotFound):
        await world.service.get_match(MATCH)


async def test_bad_input_is_rejected(world: World) -> None:
    """Missing match ids, negative versions and unknown factions are INVALID_ARGUMENT."""
    with pytest.raises(InvalidArgument):
        await world.service.open_match(MatchSpec("", 1, ()))
    with pytest.raises(InvalidArgument):
        await world.service.open_match(MatchSpec(MATCH, -1, ()))
    with pytest.raises(InvalidArgument, match="faction3"):
        await world.service.open_match(MatchSpec(MATCH, 1, (Team("faction3", "", ()),)))
    with pytest.raises(InvalidArgument):
        await world.service.close_match(MATCH, -1, "")


async def test_interrupted_create_is_adopted_on_reconcile(world: World) -> None:
    """An intent without channel id adopts the bot-made channel with the expected name."""
    await world.store.record_open(MATCH, GUILD, 1, spec().teams)
    await world.store.add_channel_intents(MATCH, [("faction1", "", "Match 1-d78556", {1})])
    leftover = world.discord.add_voice_channel("Match 1-d78556", by_bot=True)
    await world.service.reconcile_match(MATCH)
    record = await world.service.get_match(MATCH)
    assert [c.channel_id for c in record.channels] == [leftover]
    assert world.discord.created == []


async def test_interrupted_create_without_channel_is_recreated(world: World) -> None:
    """An intent whose channel never got made is created on reconcile."""
    await world.store.record_open(MATCH, GUILD, 1, spec().teams)
    await world.store.add_channel_intents(MATCH, [("faction1", "", "Match 1-d78556", {1})])
    world.discord.add_voice_channel("Match 1-d78556", by_bot=False)
    await world.service.reconcile_match(MATCH)
    record = await world.service.get_match(MATCH)
    assert [c.channel_id for c in record.channels] == world.discord.created


async def test_missing_channel_of_open_match_is_recreated(world: World) -> None:
    """A channel of an open match deleted behind the bot's back is recreated on reconcile."""
    opened = await world.service.open_match(spec())
    gone = opened.match.channels[0].channel_id
    assert gone is not None
    await world.discord.delete_channel(gone)
    await world.service.reconcile_match(MATCH)
    record = await world.service.get_match(MATCH)
    assert gone not in {c.channel_id for c in record.channels}
    assert len(world.discord.channels) == 2


async def test_live_connect_moves_player_and_switch_away_is_remembered(world: World) -> None:
    """A player who connects is moved in; one who switches away is left alone afterwards."""
    opened = await world.service.open_match(spec())
    team = opened.match.channel("faction1")
    assert team is not None and team.channel_id is not None
    world.discord.voice[1] = 77
    await world.service.voice_changed(1, None, 77)
    assert world.discord.voice[1] == team.channel_id
    world.discord.voice[1] = 78
    await world.service.voice_changed(1, team.channel_id, 78)
    await world.service.voice_changed(1, 78, LOBBY)
    assert world.discord.moves == [(1, team.channel_id)]
    again = await world.service.open_match(spec(2))
    placement = next(p for p in again.placements if p.faceit_player_id == "p1")
    assert placement.outcome is PlacementOutcome.SKIPPED_LEFT_ON_PURPOSE


async def test_joining_the_lobby_moves_player_in(world: World) -> None:
    """A linked player of a running match who joins the lobby is moved to the team channel."""
    opened = await world.service.open_match(spec())
    team = opened.match.channel("faction2")
    assert team is not None
    world.discord.voice[2] = LOBBY
    await world.service.voice_changed(2, 55, LOBBY)
    assert world.discord.voice[2] == team.channel_id


async def test_player_linked_during_match_gets_access_and_is_moved(world: World) -> None:
    """A player linking during their match gets access to the team channel and is moved in."""
    await world.service.open_match(spec())
    world.discord.guild_members.add(4)
    world.discord.voice[4] = LOBBY
    world.resolver.links["p4"] = 4
    updated = await world.service.player_linked(4, "p4")
    assert [r.match_id for r in updated] == [MATCH]
    channel = updated[0].channel("faction2")
    assert channel is not None and channel.member_ids == {2, 4}
    assert world.discord.voice[4] == channel.channel_id


class JournalStore(VoiceStore):
    """The real store, noting in `journal` when a match read or a completion starts and ends."""

    def __init__(self, pool: asyncpg.Pool, journal: list[str]) -> None:
        super().__init__(pool)
        self.journal = journal

    async def open_matches_with_player(self, faceit_player_id: str) -> list[MatchRecord]:
        self.journal.append("matches sent")
        found = await super().open_matches_with_player(faceit_player_id)
        self.journal.append("matches answered")
        return found

    async def get_match(self, match_id: str) -> MatchRecord | None:
        self.journal.append("read sent")
        record = await super().get_match(match_id)
        self.journal.append("read answered")
        return record

    async def complete_channels(
        self, match_id: str, channels: Sequence[tuple[str, int, Iterable[int]]]
    ) -> None:
        self.journal.append("completion sent")
        await super().complete_channels(match_id, channels)
        self.journal.append("completion answered")


@dataclass
class JournalDiscord(FakeDiscord):
    """The fake Discord, noting creates and moves in `journal` and the mover's seat in the cache."""

    journal: list[str] = field(default_factory=list)
    cache: ActiveMatchCache | None = None
    seats_at_move: list[TeamSeat | None] = field(default_factory=list)

    async def create_private_channel(self, name: str, member_ids: Collection[int]) -> int:
        channel_id = await super().create_private_channel(name, member_ids)
        self.journal.append("created")
        return channel_id

    async def move(self, user_id: int, channel_id: int | None) -> None:
        assert self.cache is not None
        self.seats_at_move.append(self.cache.seat_of(user_id))
        self.journal.append("moved")
        await super().move(user_id, channel_id)


async def test_a_player_linked_into_a_new_channel_is_moved_without_waiting_for_the_database(
    voice_pool: asyncpg.Pool,
) -> None:
    """Linking makes the team's first channel and moves the player as soon as Discord answers
    the create: the match is reread beside the create, the completion written beside the move."""
    journal: list[str] = []
    discord = JournalDiscord(guild_members={1, 4}, journal=journal)
    w = build(voice_pool, discord, store=JournalStore(voice_pool, journal))
    discord.cache = w.cache
    w.resolver.links = {"p1": 1}
    teams = (
        Team("faction1", "", (Player("p1", "one"),)),
        Team("faction2", "", (Player("p4", "four"),)),
    )
    await w.service.open_match(MatchSpec(MATCH, 1, teams))
    discord.voice[4] = LOBBY
    w.resolver.links["p4"] = 4
    journal.clear()

    (updated,) = await w.service.player_linked(4, "p4")

    channel = updated.channel("faction2")
    assert channel is not None and channel.channel_id is not None
    assert discord.voice[4] == channel.channel_id
    between = journal[journal.index("created") + 1 : journal.index("moved")]
    assert "completion answered" not in between and "read sent" not in between, journal
    assert discord.seats_at_move == [TeamSeat(MATCH, "faction2", channel.channel_id)]
    assert await w.store.get_match(MATCH) == updated
    assert w.cache.get(MATCH) == updated


@dataclass
class JournalResolver(FakeResolver):
    """The fake registry, noting each lookup in `journal`."""

    journal: list[str] = field(default_factory=list)

    async def resolve_players(self, faceit_player_ids: Sequence[str]) -> dict[str, int]:
        self.journal.append("resolve")
        return await super().resolve_players(faceit_player_ids)


async def test_a_link_change_applies_to_the_match_as_read_when_nobody_touched_it(
    voice_pool: asyncpg.Pool,
) -> None:
    """Applying a link to a match nobody took the lock of since the player's matches were
    read, the match is not read again under its lock."""
    journal: list[str] = []
    resolver = JournalResolver(links={"p1": 1, "p2": 2, "p3": 3}, journal=journal)
    w = build(voice_pool, store=JournalStore(voice_pool, journal), resolver=resolver)
    w.discord.guild_members = {1, 2, 3}
    await w.service.open_match(spec())
    journal.clear()

    (updated,) = await w.service.player_linked(3, "p3")

    assert journal.count("read sent") == 1, journal  # the one after the access was edited
    assert updated.channel("faction1").member_ids == {1, 3}  # type: ignore[union-attr]
    assert updated == await w.store.get_match(MATCH)


class TouchingJournalStore(JournalStore):
    """The journal store, where a reconcile takes and leaves the match's lock right after a
    player's matches are read; the journal starts after it."""

    def __init__(self, pool: asyncpg.Pool, journal: list[str]) -> None:
        super().__init__(pool, journal)
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    async def open_matches_with_player(self, faceit_player_id: str) -> list[MatchRecord]:
        found = await super().open_matches_with_player(faceit_player_id)
        if self.meanwhile is not None:
            await self.meanwhile()
            self.journal.clear()
        return found


async def test_a_link_change_asks_the_registry_beside_the_read_of_a_touched_match(
    voice_pool: asyncpg.Pool,
) -> None:
    """Applying a link to a match whose lock was taken since the player's matches were read,
    the registry is asked for the links of its roster while the match is read again under
    its lock, not after."""
    journal: list[str] = []
    resolver = JournalResolver(links={"p1": 1, "p2": 2}, journal=journal)
    store = TouchingJournalStore(voice_pool, journal)
    w = build(voice_pool, store=store, resolver=resolver)
    w.discord.guild_members = {1, 2, 3}
    await w.service.open_match(spec())
    w.cache.remove(MATCH)
    store.meanwhile = lambda: w.service.reconcile_match(MATCH)

    await w.service.player_linked(3, "p3")

    assert journal[:3] == ["read sent", "resolve", "read answered"], journal


async def test_a_link_change_asks_the_registry_as_soon_as_it_arrives(
    voice_pool: asyncpg.Pool,
) -> None:
    """With the player's match in the cache and its lock free, the registry is asked for its
    roster's links before the player's matches are read, and asked once."""
    journal: list[str] = []
    resolver = JournalResolver(links={"p1": 1, "p2": 2}, journal=journal)
    w = build(voice_pool, store=JournalStore(voice_pool, journal), resolver=resolver)
    w.discord.guild_members = {1, 2, 3}
    await w.service.open_match(spec())
    resolver.links["p3"] = 3
    journal.clear()

    (updated,) = await w.service.player_linked(3, "p3")

    assert journal.index("resolve") < journal.index("matches answered"), journal
    assert journal.count("resolve") == 1
    assert updated.channel("faction1").member_ids == {1, 3}  # type: ignore[union-attr]


class LockTakingStore(VoiceStore):
    """The real store, where another task takes and leaves a match's lock (a live move, say)
    while a player's matches are read."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    async def open_matches_with_player(self, faceit_player_id: str) -> list[MatchRecord]:
        found = await super().open_matches_with_player(faceit_player_id)
        if self.meanwhile is not None:
            await self.meanwhile()
        return found


async def test_links_asked_early_are_asked_again_when_a_lock_was_taken_meanwhile(
    voice_pool: asyncpg.Pool,
) -> None:
    """When another holder took a lock after the early question (it may have applied newer
    links), the registry is asked again under the match's lock, and that answer is applied."""
    store = LockTakingStore(voice_pool)
    w = build(voice_pool, store=store)
    w.resolver.links = {"p1": 1, "p2": 2}
    w.discord.guild_members = {1, 2, 3}
    await w.service.open_match(spec())
    w.resolver.links["p3"] = 3

    async def reconcile_then_unlink_p1() -> None:
        await w.service.reconcile_match(MATCH)
        del w.resolver.links["p1"]

    store.meanwhile = reconcile_then_unlink_p1
    (updated,) = await w.service.player_linked(3, "p3")

    assert w.resolver.calls[1:] == [["p1", "p2", "p3", "p4"]] * 2
    assert updated.channel("faction1").member_ids == {3}  # type: ignore[union-attr]


async def test_a_roster_changed_before_the_lock_is_resolved_again(voice_pool: asyncpg.Pool) -> None:
    """When an update changed the roster between the read of a linking player's matches and
    the lock, the registry is asked for the roster read under the lock, whose players get
    their access."""
    teams = (
        Team("faction1", "", (Player("p1", "one"), Player("p3", "three"))),
        Team("faction2", "", (Player("p2", "two"), Player("p5", "five"))),
    )
    store = LockTakingStore(voice_pool)
    w = build(voice_pool, store=store)
    w.resolver.links = {"p1": 1, "p2": 2}
    w.discord.guild_members = {1, 2, 3, 5}
    await w.service.open_match(spec())

    async def update_then_link() -> None:
        await w.service.open_match(MatchSpec(MATCH, 2, teams))
        w.resolver.links.update({"p3": 3, "p5": 5})

    store.meanwhile = update_then_link
    (updated,) = await w.service.player_linked(3, "p3")

    # After the open, the early question and the update's own: the roster read before the
    # lock (the early answer not used: the update took the lock), then the roster read under it.
    assert w.resolver.calls[3:] == [["p1", "p2", "p3", "p4"], ["p1", "p2", "p3", "p5"]]
    assert [c.member_ids for c in updated.channels] == [{1, 3}, {2, 5}]


async def test_list_matches_pages_oldest_first(world: World) -> None:
    """ListMatches pages through open matches with a token."""
    for n in range(3):
        await world.service.open_match(MatchSpec(f"m{n}", 1, ()))
    first, token = await world.service.list_matches(2, "")
    second, last = await world.service.list_matches(2, token)
    assert [r.match_id for r in first + second] == ["m0", "m1", "m2"]
    assert token and last == ""
    with pytest.raises(InvalidArgument):
        await world.service.list_matches(2, "garbage!")


async def test_access_change_without_manage_roles_replaces_the_channel(world: World) -> None:
    """When overwrites cannot be edited the channel is replaced and its occupants moved over."""
    world.discord.can_edit_overwrites = False
    world.discord.voice[1] = LOBBY
    first = await world.service.open_match(spec())
    old = first.match.channel("faction1")
    assert old is not None and old.channel_id is not None
    world.discord.guild_members.add(3)
    second = await world.service.open_match(spec(2))
    new = second.match.channel("faction1")
    assert new is not None and new.channel_id not in (None, old.channel_id)
    assert new.previous_channel_id is None
    assert world.discord.channels[new.channel_id].members == {1, 3}
    assert old.channel_id not in world.discord.channels
    assert world.discord.voice[1] == new.channel_id
    assert world.cache.seat_of(1).channel_id == new.channel_id  # type: ignore[union-attr]


async def test_interrupted_replacement_is_finished_on_reconcile(world: World) -> None:
    """A replacement cut short after its intent is completed on reconcile: old channel gone."""
    opened = await world.service.open_match(spec())
    old = opened.match.channel("faction1")
    assert old is not None and old.channel_id is not None
    world.discord.voice[1] = old.channel_id
    await world.store.begin_replacement(MATCH, "faction1", {1})
    await world.service.reconcile_match(MATCH)
    record = await world.service.get_match(MATCH)
    new = record.channel("faction1")
    assert new is not None and new.channel_id not in (None, old.channel_id)
    assert new.previous_channel_id is None
    assert old.channel_id not in world.discord.channels
    assert world.discord.voice[1] == new.channel_id


async def test_reconcile_moves_players_waiting_in_voice_but_not_those_who_left(
    world: World,
) -> None:
    """Reconciliation moves players judged not in voice into their team channel, except leavers."""
    world.resolver.links = {"p1": 1, "p2": 2, "p3": 3}
    world.discord.guild_members = {1, 2, 3}
    opened = await world.service.open_match(spec())
    assert {p.outcome for p in opened.placements if p.discord_user_id} == {
        PlacementOutcome.SKIPPED_NOT_IN_VOICE
    }
    first = opened.match.channel("faction1")
    second = opened.match.channel("faction2")
    assert first is not None and second is not None
    world.discord.voice.update({1: LOBBY, 2: 77, 3: first.channel_id})  # type: ignore[dict-item]
    await world.store.set_left_on_purpose(MATCH, 2, True)

    await world.service.reconcile_match(MATCH)

    assert world.discord.moves == [(1, first.channel_id)]
    assert world.discord.voice[2] == 77


async def test_the_teams_channels_are_created_concurrently(world: World) -> None:
    """Both teams' channel creates are under way at the same time, not one after the other."""
    world.discord.create_gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec()))

    async def both_waiting() -> bool:
        return world.discord.creating == 2

    await eventually(both_waiting, what="both creates in flight together")
    world.discord.create_gate.set()
    result = await opening
    assert all(c.channel_id is not None for c in result.match.channels)
    assert len(world.discord.created) == 2


async def test_a_matchs_lost_channels_are_recreated_side_by_side(world: World) -> None:
    """Both teams' channels gone: reconcile has both creates under way at the same time (a
    two-team match pays one create's wait, not two), and records both."""
    opened = await world.service.open_match(spec())
    gone = {c.channel_id for c in opened.match.channels}
    for channel_id in gone:
        await world.discord.delete_channel(channel_id)  # type: ignore[arg-type]
    world.discord.create_gate = asyncio.Event()
    repairing = asyncio.create_task(world.service.reconcile_match(MATCH))

    async def both_waiting() -> bool:
        return world.discord.creating == 2

    await eventually(both_waiting, what="both recreates in flight together")
    world.discord.create_gate.set()
    await repairing
    record = await world.service.get_match(MATCH)
    now = {c.channel_id for c in record.channels}
    assert len(now) == 2 and not now & gone and now <= set(world.discord.channels)


async def test_player_unlinked_during_match_loses_access(world: World) -> None:
    """Unlinking a player during a match takes them off their team channel's access."""
    opened = await world.service.open_match(spec())
    team = opened.match.channel("faction1")
    assert team is not None and team.channel_id is not None
    assert world.discord.channels[team.channel_id].members == {1}
    del world.resolver.links["p1"]

    (updated,) = await world.service.player_unlinked("p1")

    assert world.discord.channels[team.channel_id].members == set()
    assert updated.channel("faction1").member_ids == frozenset()  # type: ignore[union-attr]


async def test_open_records_the_match_and_intents_before_any_channel_is_created(
    world: World,
) -> None:
    """While the creates are under way, the open match and both intents are already stored."""
    world.discord.create_gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec()))

    async def both_waiting() -> bool:
        return world.discord.creating == 2

    await eventually(both_waiting, what="both creates in flight")
    stored = await world.store.get_match(MATCH)
    world.discord.create_gate.set()
    await opening
    assert stored is not None and stored.state is MatchState.OPEN and stored.version == 1
    assert [(c.faction, c.channel_id) for c in stored.channels] == [
        ("faction1", None),
        ("faction2", None),
    ]


async def test_failed_create_on_open_completes_the_other_and_moves_nobody(world: World) -> None:
    """A create failing on open raises; the created channel is recorded; a retry finishes."""
    world.discord.voice[1] = LOBBY
    world.discord.fail_creates = 1
    with pytest.raises(Unavailable):
        await world.service.open_match(spec())
    stored = await world.store.get_match(MATCH)
    assert stored is not None
    assert sorted(c.channel_id is None for c in stored.channels) == [False, True]
    assert world.discord.moves == []

    result = await world.service.open_match(spec())

    assert all(c.channel_id is not None for c in result.match.channels)
    assert world.discord.voice[1] == result.match.channel("faction1").channel_id  # type: ignore[union-attr]
    assert len(world.discord.channels) == 2


def without_p3(version: int) -> MatchSpec:
    """The match of `spec()` at `version` whose faction1 lost p3."""
    first, second = spec(version).teams
    return MatchSpec(MATCH, version, (Team("faction1", "", first.roster[:1]), second))


async def _p1_and_p3_in_their_channel(world: World) -> int:
    world.discord.guild_members.add(3)
    world.discord.voice.update({1: LOBBY, 3: LOBBY})
    opened = await world.service.open_match(spec())
    team = opened.match.channel("faction1")
    assert team is not None and team.channel_id is not None
    assert world.discord.voice[1] == world.discord.voice[3] == team.channel_id
    return team.channel_id


async def test_who_loses_access_in_place_is_moved_to_the_lobby(world: World) -> None:
    """With overwrites edited in place, a player dropped from the roster is moved out."""
    team = await _p1_and_p3_in_their_channel(world)

    result = await world.service.open_match(without_p3(2))

    assert result.match.channel("faction1").channel_id == team  # type: ignore[union-attr]
    assert world.discord.channels[team].members == {1}
    assert world.discord.voice[1] == team
    assert world.discord.voice[3] == LOBBY


async def test_who_loses_access_on_replacement_goes_to_the_lobby_not_the_new_channel(
    world: World,
) -> None:
    """On replacement only allowed players follow; the dropped one and a stranger go out."""
    world.discord.can_edit_overwrites = False
    old = await _p1_and_p3_in_their_channel(world)
    world.discord.voice[99] = old  # never had access (an admin, or a forced join)

    result = await world.service.open_match(without_p3(2))

    new = result.match.channel("faction1").channel_id  # type: ignore[union-attr]
    assert new not in (None, old) and old not in world.discord.channels
    assert world.discord.channels[new].members == {1}
    assert world.discord.voice == {1: new, 3: LOBBY, 99: LOBBY}
    assert (3, new) not in world.discord.moves and (99, new) not in world.discord.moves


@pytest.mark.parametrize("can_edit", [True, False], ids=["in_place", "replaced"])
async def test_without_a_lobby_who_loses_access_is_disconnected(
    voice_pool: asyncpg.Pool, can_edit: bool
) -> None:
    """Without DISCORD_LOBBY_CHANNEL_ID the player who lost access is disconnected."""
    w = build(voice_pool, lobby=None)
    w.resolver.links = {"p1": 1, "p2": 2, "p3": 3}
    w.discord.guild_members = {1, 2, 3}
    w.discord.can_edit_overwrites = can_edit
    w.discord.voice.update({1: LOBBY, 3: LOBBY})
    await w.service.open_match(spec())

    result = await w.service.open_match(without_p3(2))

    assert w.discord.voice == {1: result.match.channel("faction1").channel_id}  # type: ignore[union-attr]
    assert (3, None) in w.discord.moves


async def test_unlinked_player_inside_is_moved_out(world: World) -> None:
    """A player who unlinks while sitting in the team channel is moved to the lobby."""
    team = await _p1_and_p3_in_their_channel(world)
    del world.resolver.links["p3"]

    await world.service.player_unlinked("p3")

    assert world.discord.voice[3] == LOBBY and world.discord.voice[1] == team
    assert world.discord.channels[team].members == {1}


async def test_interrupted_replacement_moves_only_allowed_players_over(world: World) -> None:
    """Reconciling a cut-short replacement moves only the new channel's players into it."""
    old = await _p1_and_p3_in_their_channel(world)
    await world.store.begin_replacement(MATCH, "faction1", {1})

    await world.service.reconcile_match(MATCH)

    record = await world.service.get_match(MATCH)
    new = record.channel("faction1").channel_id  # type: ignore[union-attr]
    assert new not in (None, old)
    assert world.discord.voice[1] == new and world.discord.voice[3] == LOBBY


async def test_player_on_both_rosters_gets_neither_channel_and_a_warning(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A player listed on both teams gets access to neither; the rest of the match is applied."""
    caplog.set_level(logging.WARNING, logger="services.voice.matches")
    caplog.handler.addFilter(ContextFilter())
    world.discord.guild_members.add(3)
    world.discord.voice.update({1: LOBBY, 2: LOBBY, 3: LOBBY})
    both = MatchSpec(
        MATCH,
        1,
        (
            Team("faction1", "", (Player("p1", "one"), Player("p3", "three"))),
            Team("faction2", "", (Player("p2", "two"), Player("p3", "three"))),
        ),
    )

    result = await world.service.open_match(both)

    first, second = result.match.channel("faction1"), result.match.channel("faction2")
    assert first is not None and second is not None
    assert first.member_ids == {1} and second.member_ids == {2}
    assert world.discord.voice == {1: first.channel_id, 2: second.channel_id, 3: LOBBY}
    skipped = [p for p in result.placements if p.faceit_player_id == "p3"]
    assert [p.outcome for p in skipped] == [PlacementOutcome.FAILED] * 2
    assert all("both teams" in p.reason for p in skipped)
    (warning,) = [r for r in caplog.records if "both teams" in r.getMessage()]
    assert warning.levelno == logging.WARNING and getattr(warning, "match_id", None) == MATCH
    await world.service.reconcile_match(MATCH)
    await world.service.voice_changed(3, None, LOBBY)
    assert world.discord.voice[3] == LOBBY  # neither reconciliation nor a live join seats them


async def test_player_on_both_rosters_gets_no_seat_when_linking_during_the_match(
    world: World,
) -> None:
    """Linking during the match does not give a player on both rosters a channel or a seat."""
    both = MatchSpec(
        MATCH,
        1,
        (
            Team("faction1", "", (Player("p1", "one"), Player("p4", "four"))),
            Team("faction2", "", (Player("p2", "two"), Player("p4", "four"))),
        ),
    )
    await world.service.open_match(both)
    world.discord.guild_members.add(4)
    world.discord.voice[4] = LOBBY
    world.resolver.links["p4"] = 4

    (updated,) = await world.service.player_linked(4, "p4")

    assert all(4 not in c.member_ids for c in updated.channels)
    assert world.cache.seat_of(4) is None and world.discord.voice[4] == LOBBY


async def test_arriving_in_a_team_channel_without_access_means_being_moved_out(
    world: World,
) -> None:
    """Whoever turns up in a team channel they may not join (a late gateway event) goes out."""
    opened = await world.service.open_match(spec())
    team = opened.match.channel("faction1").channel_id  # type: ignore[union-attr]
    assert team is not None
    world.discord.voice[3] = team

    await world.service.voice_changed(3, LOBBY, team)

    assert world.discord.voice[3] == LOBBY


async def test_one_who_may_see_every_channel_is_left_in_a_team_channel(world: World) -> None:
    """A member whose roles let them join the team channel (an admin) is not moved out."""
    opened = await world.service.open_match(spec())
    team = opened.match.channel("faction1").channel_id  # type: ignore[union-attr]
    assert team is not None
    world.discord.admins.add(7)
    world.discord.voice[7] = team

    await world.service.voice_changed(7, None, team)

    assert world.discord.voice[7] == team and world.discord.moves == []


class SettleGatedStore(VoiceStore):
    """The real store whose settling of an open's intents waits for `settling`, when set."""

    settling: asyncio.Event | None = None

    async def settle_intents(
        self, match_id: str, channels: Sequence[tuple[str, int | None, Iterable[int]]]
    ) -> None:
        if self.settling is not None:
            await self.settling.wait()
        await super().settle_intents(match_id, channels)


async def _stored(world: World) -> MatchRecord | None:
    return await world.store.get_match(MATCH)


async def _cut_off(task: asyncio.Task[object]) -> None:
    """End an open where it waits, as a crash there would: nothing after that point runs."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_fresh_open_is_stored_with_its_intents_while_the_registry_is_asked(
    world: World,
) -> None:
    """The open and an intent per team (members not yet known) are durable before the registry
    answers; once it has, the channels are made and the intents get their ids and members."""
    world.resolver.gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec()))

    stored = await eventually(
        functools.partial(_stored, world), what="the open stored before the registry answers"
    )

    assert world.resolver.calls and not world.resolver.gate.is_set()
    assert stored.state is MatchState.OPEN and stored.version == 1
    assert [(c.faction, c.channel_id, c.members_known) for c in stored.channels] == [
        ("faction1", None, False),
        ("faction2", None, False),
    ]
    assert world.discord.created == []
    world.resolver.gate.set()
    result = await opening
    settled = await world.store.get_match(MATCH)
    assert settled is not None and settled.channels == result.match.channels
    assert [(c.member_ids, c.members_known) for c in settled.channels] == [
        ({1}, True),
        ({2}, True),
    ]


async def test_one_statement_reaches_the_database_before_an_opens_first_create(
    fresh_database: str,
) -> None:
    """Before the first channel create of a fresh open, the database has seen one statement of
    voice's (the read that records the open and its intents), not a read and then a write."""
    sent: list[str] = []

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
        connection.add_query_logger(lambda record: sent.append(record.query))
        return connection

    pool = await create_pool(fresh_database, min_size=1, max_size=3, connect=connect)
    try:
        await migrate(pool)
        seen_at_create: list[list[str]] = []

        @dataclass
        class Noting(FakeDiscord):
            async def create_private_channel(self, name: str, member_ids: Collection[int]) -> int:
                seen_at_create.append([q for q in sent if "voice." in q])
                return await super().create_private_channel(name, member_ids)

        w = build(pool, Noting(guild_members={1, 2}))
        w.resolver.links = {"p1": 1, "p2": 2}
        sent.clear()
        await w.service.open_match(spec())
    finally:
        await pool.close()

    first = seen_at_create[0]
    assert len(first) == 1, first
    assert "INSERT INTO voice.active_matches" in first[0]
    assert "INSERT INTO voice.match_channels" in first[0]


async def test_an_open_cut_off_while_the_registry_was_asked_is_finished_on_reconcile(
    world: World, voice_pool: asyncpg.Pool
) -> None:
    """A voice gone after the open's statement, before any create: the restarted service asks
    the registry and makes each team's channel with who may join now; a team with nobody
    linked loses its intent."""
    world.resolver.gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec()))
    await eventually(functools.partial(_stored, world), what="the open stored")
    await _cut_off(opening)
    del world.resolver.links["p2"]  # faction2 has nobody linked by the restart
    restarted = build(voice_pool, world.discord, resolver=FakeResolver(dict(world.resolver.links)))

    changes = await restarted.service.reconcile_match(MATCH)

    record = await restarted.store.get_match(MATCH)
    assert record is not None and changes
    (channel,) = record.channels
    assert channel.faction == "faction1" and channel.members_known
    assert channel.channel_id == world.discord.created[0] and channel.member_ids == {1}
    assert world.discord.channels[channel.channel_id].members == {1}
    assert restarted.cache.get(MATCH) == record


async def test_an_open_cut_off_before_its_intents_settled_adopts_its_channels_with_exact_access(
    voice_pool: asyncpg.Pool,
) -> None:
    """A voice gone after the creates, before their settling: the restarted service adopts each
    channel made, its access rewritten to who may join now (who the lost create let in is not
    known), moves out whoever sits in it without access; a later unlink takes access away."""
    store = SettleGatedStore(voice_pool)
    store.settling = asyncio.Event()
    world = build(voice_pool, store=store)
    world.resolver.links = {"p1": 1, "p2": 2, "p3": 3}
    world.discord.guild_members = {1, 2}
    world.discord.voice[1] = LOBBY
    opening = asyncio.create_task(world.service.open_match(spec()))

    async def moved_in() -> bool:
        return world.discord.voice[1] in world.discord.created

    await eventually(moved_in, what="p1 moved into the channel made")
    await _cut_off(opening)
    made = world.discord.voice[1]
    assert {c.channel_id for c in (await world.store.get_match(MATCH)).channels} == {None}  # type: ignore[union-attr]
    # By the restart p1 is unlinked and p3 has joined the guild.
    world.discord.guild_members.add(3)
    restarted = build(voice_pool, world.discord, resolver=FakeResolver({"p2": 2, "p3": 3}))

    await restarted.service.reconcile_match(MATCH)

    record = await restarted.store.get_match(MATCH)
    assert record is not None
    assert sorted(world.discord.channels) == sorted(world.discord.created)  # nothing made again
    first = record.channel("faction1")
    assert first is not None and first.channel_id == made and first.member_ids == {3}
    assert world.discord.channels[made].members == {3}
    assert world.discord.voice[1] == LOBBY
    second = record.channel("faction2")
    assert second is not None and world.discord.channels[second.channel_id].members == {2}  # type: ignore[index]
    assert all(c.members_known for c in record.channels)

    del restarted.resolver.links["p3"]
    await restarted.service.player_unlinked("p3")

    assert world.discord.channels[made].members == set()


async def test_a_stale_open_writes_nothing(world: World) -> None:
    """An open older than the match's close is STALE and leaves the match as it was."""
    await world.service.open_match(spec(1))
    await world.service.close_match(MATCH, 3, "match_status_finished")
    closed = await world.store.get_match(MATCH)

    result = await world.service.open_match(spec(2))

    assert result.outcome is OpenOutcome.STALE
    assert await world.store.get_match(MATCH) == closed


async def test_a_reopen_the_registry_could_not_serve_leaves_the_match_closed(
    world: World,
) -> None:
    """A reopen whose lookup fails after its statement recorded it puts the closed match back as
    it was read (its version, reason and times), with no intent."""
    await world.service.open_match(spec(1))
    await world.service.close_match(MATCH, 2, "match_status_cancelled")
    closed = await world.store.get_match(MATCH)
    world.resolver.down = True

    with pytest.raises(Unavailable):
        await world.service.open_match(spec(3))

    assert await world.store.get_match(MATCH) == closed
    assert len(world.discord.created) == 2


async def test_a_fenced_off_replicas_open_writes_nothing_and_creates_nothing(
    fresh_database: str, voice_pool: asyncpg.Pool
) -> None:
    """A replica whose lease was taken over (its token no longer current) fails the open's
    statement: no match, no intent, no channel."""
    await voice_pool.execute(
        "INSERT INTO voice.lease (holder, token, expires_at) VALUES ('b', 2, now() + '1 min')"
    )
    fencing = FencingToken(idle_in_transaction_s=5)
    fencing.value = 1  # the token this replica held before the takeover
    pool = await create_pool(fresh_database, min_size=1, max_size=2, connect=fencing.connect)
    try:
        world = build(pool)
        world.resolver.links = {"p1": 1, "p2": 2}
        world.discord.guild_members = {1, 2}

        with pytest.raises(asyncpg.PostgresError) as refused:
            await world.service.open_match(spec())
    finally:
        await pool.close()

    assert is_fenced_out(refused.value)
    assert world.discord.created == []
    assert await VoiceStore(voice_pool).get_match(MATCH) is None


async def test_an_open_whose_settling_failed_moves_its_players_over_when_retried(
    voice_pool: asyncpg.Pool,
) -> None:
    """Channels made and players moved in, then the settling failed: the event's retry, with
    overwrites the bot may not edit, replaces each channel and moves its players over into
    the new one, never out of voice."""
    store = SettleGatedStore(voice_pool)
    store.settling = asyncio.Event()
    world = build(voice_pool, store=store)
    world.resolver.links = {"p1": 1, "p2": 2}
    world.discord.guild_members = {1, 2}
    world.discord.can_edit_overwrites = False
    world.discord.voice.update({1: LOBBY, 2: LOBBY})
    opening = asyncio.create_task(world.service.open_match(spec()))

    async def both_moved() -> bool:
        return all(world.discord.voice[u] in world.discord.created for u in (1, 2))

    await eventually(both_moved, what="both players moved into the channels made")
    await _cut_off(opening)  # as if the settling's statement had failed
    first_made = set(world.discord.created)
    store.settling = None

    retried = await world.service.open_match(spec())

    now = {c.faction: c.channel_id for c in retried.match.channels}
    assert set(now.values()).isdisjoint(first_made)
    assert world.discord.voice[1] == now["faction1"] and world.discord.voice[2] == now["faction2"]
    assert first_made <= set(world.discord.deleted)
    stored = await world.store.get_match(MATCH)
    assert stored is not None and all(c.previous_channel_id is None for c in stored.channels)
    assert [c.member_ids for c in stored.channels] == [{1}, {2}]


async def _answered_once(world: World) -> None:
    """The registry answered for the roster of spec() once already (an earlier match of the
    same players, opened and closed), so an open of them has a guess."""
    earlier = dataclasses.replace(spec(), match_id=OTHER)
    await world.service.open_match(earlier)
    await world.service.close_match(OTHER, 2, "finished")


async def _created(world: World, count: int) -> None:
    async def made() -> bool:
        return len(world.discord.created) >= count

    await eventually(made, what=f"{count} channels created")


async def test_an_open_of_players_answered_before_creates_before_the_registry_answers(
    world: World,
) -> None:
    """With every player's last answer remembered, the creates go out while the registry is
    still asked; nobody is moved before its answer is here."""
    await _answered_once(world)
    world.discord.voice[1] = LOBBY
    world.resolver.gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec()))

    await _created(world, 4)
    assert world.discord.voice[1] == LOBBY
    world.resolver.gate.set()
    result = await opening

    first, second = result.match.channels
    assert world.discord.voice[1] == first.channel_id
    assert (first.member_ids, second.member_ids) == ({1}, {2})
    assert len(world.discord.created) == 4  # nothing made again
    assert world.guesses == ["confirmed"]


async def test_a_guess_the_registry_contradicts_gives_no_access_and_moves_nobody_in(
    world: World,
) -> None:
    """A player unlinked since the last answer (the change not heard yet) is in the channel
    the guess created only until the answer: then access is rewritten without them, they are
    never moved in, and the stored members are the answer's."""
    await _answered_once(world)
    world.discord.voice[1] = LOBBY
    del world.resolver.links["p1"]  # the registry's change, not yet heard by voice
    world.resolver.gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec()))

    await _created(world, 4)
    guessed = world.discord.created[2:]
    assert {1} in [world.discord.channels[c].members for c in guessed]
    world.resolver.gate.set()
    result = await opening

    assert all(1 not in world.discord.channels[c].members for c in world.discord.channels)
    assert world.discord.voice[1] == LOBBY
    assert all(user != 1 for user, _ in world.discord.moves)
    record = await world.store.get_match(MATCH)
    assert record == result.match and record is not None
    assert [c.member_ids for c in record.channels] == [set(), {2}]
    outcomes = {p.faceit_player_id: p.outcome for p in result.placements}
    assert outcomes["p1"] is PlacementOutcome.SKIPPED_NOT_LINKED
    assert world.guesses == ["corrected"]


async def test_a_player_linked_since_the_last_answer_gets_access_and_is_moved_in(
    world: World,
) -> None:
    """A player the guess took as unlinked whom the registry now links gets their team's
    channel access and is moved in once the answer is here."""
    await _answered_once(world)
    world.resolver.links["p4"] = 4
    world.discord.guild_members.add(4)
    world.discord.voice[4] = LOBBY
    world.resolver.gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec()))

    await _created(world, 4)
    world.resolver.gate.set()
    result = await opening

    second = result.match.channel("faction2")
    assert second is not None and second.member_ids == {2, 4}
    assert world.discord.channels[second.channel_id].members == {2, 4}  # type: ignore[index]
    assert world.discord.voice[4] == second.channel_id
    assert world.guesses == ["corrected"]


async def test_a_link_change_heard_makes_the_next_open_wait_for_the_registry(
    world: World,
) -> None:
    """After a change of a player's link is applied, an open of that player creates nothing
    before the registry's answer."""
    await _answered_once(world)
    del world.resolver.links["p1"]
    await world.service.player_unlinked("p1")
    world.resolver.gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec()))

    await eventually(functools.partial(_stored, world), what="the open stored")
    assert len(world.discord.created) == 2
    world.resolver.gate.set()
    await opening

    assert len(world.discord.created) == 3  # only faction2 has a linked member
    assert world.guesses == []
    assert all(1 not in c.members for c in world.discord.channels.values())


async def test_a_guessed_open_the_registry_cannot_confirm_is_finished_with_exact_access(
    world: World, voice_pool: asyncpg.Pool
) -> None:
    """The registry failing after creates made on a guess settles nothing the guess said: the
    open fails, and reconciliation adopts the channels with access rewritten to who may join
    by the registry's answer then."""
    await _answered_once(world)
    world.resolver.gate = asyncio.Event()
    opening = asyncio.create_task(world.service.open_match(spec(names=("Ants", "Bees"))))
    await _created(world, 4)
    world.resolver.down = True
    world.resolver.gate.set()
    with pytest.raises(Unavailable):
        await opening
    stored = await world.store.get_match(MATCH)
    assert stored is not None and not any(c.members_known for c in stored.channels)
    assert world.guesses == ["unconfirmed"]

    restarted = build(voice_pool, world.discord, resolver=FakeResolver({"p2": 2}))
    await restarted.service.reconcile_match(MATCH)

    record = await restarted.store.get_match(MATCH)
    assert record is not None
    assert [c.channel_id for c in record.channels] == [world.discord.created[3]]
    assert world.discord.channels[world.discord.created[3]].members == {2}
    assert world.discord.created[2] not in world.discord.channels  # p1's team: nobody now


async def test_an_opens_moves_go_out_before_its_settling_statement(
    voice_pool: asyncpg.Pool,
) -> None:
    """Once the channels are made, every move is sent before the intents' settling is begun."""
    order: list[str] = []

    class NotingStore(VoiceStore):
        async def settle_intents(
            self, match_id: str, channels: Sequence[tuple[str, int | None, Iterable[int]]]
        ) -> None:
            order.append("settle")
            await super().settle_intents(match_id, channels)

    @dataclass
    class NotingDiscord(FakeDiscord):
        async def move(self, user_id: int, channel_id: int | None) -> None:
            order.append(f"move {user_id}")
            await super().move(user_id, channel_id)

    world = build(voice_pool, NotingDiscord(guild_members={1, 2}), store=NotingStore(voice_pool))
    world.resolver.links = {"p1": 1, "p2": 2}
    world.discord.voice.update({1: LOBBY, 2: LOBBY})

    await world.service.open_match(spec())

    assert order == ["move 1", "move 2", "settle"]


async def test_a_guessed_open_retried_once_the_registry_is_back_moves_players_in(
    world: World,
) -> None:
    """An open whose registry failed after its guessed creates is finished by the event's
    retry: the channels made are adopted with the registry's members, then players moved in."""
    await _answered_once(world)
    world.discord.voice[1] = LOBBY
    world.resolver.gate = asyncio.Event()
    named = spec(names=("Ants", "Bees"))
    opening = asyncio.create_task(world.service.open_match(named))
    await _created(world, 4)
    world.resolver.down = True
    world.resolver.gate.set()
    with pytest.raises(Unavailable):
        await opening
    assert world.discord.voice[1] == LOBBY

    world.resolver.down = False
    result = await world.service.open_match(named)

    first, second = result.match.channels
    assert [first.channel_id, second.channel_id] == world.discord.created[2:]
    assert (first.member_ids, second.member_ids) == ({1}, {2})
    assert world.discord.voice[1] == first.channel_id
