"""Reconciliation after a restart: the matches are repaired side by side, not one by one,
from one read of them all."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence

import asyncpg
import pytest

from services.kit.errors import Unavailable
from services.voice.matches import MatchService
from services.voice.model import MatchRecord
from services.voice.reconcile import Reconciler
from services.voice.store import VoiceStore
from tests.services.voice.test_matches import GUILD, LOBBY, MATCH, World, build, spec
from tests.support import eventually


async def test_matches_are_reconciled_side_by_side(voice_pool: asyncpg.Pool) -> None:
    """Three open matches that lost their channels are recreated at once, each then complete."""
    world = build(voice_pool)
    world.resolver.links = {"p1": 1, "p2": 2}
    world.discord.guild_members = {1, 2}
    ids = [f"{n}-reconcile-{n}" for n in range(3)]
    for match_id in ids:
        await world.service.open_match(dataclasses.replace(spec(), match_id=match_id))
    for channel_id in list(world.discord.channels):
        await world.discord.delete_channel(channel_id)
    gate = world.discord.create_gate = asyncio.Event()
    reconciler = Reconciler(world.cache, world.service)
    task = asyncio.create_task(reconciler.run())

    async def all_three_creating() -> bool:
        return world.discord.creating >= 3

    await eventually(all_three_creating, what="the three matches' creates under way together")
    gate.set()
    await task
    for match_id in ids:
        record = await world.service.get_match(match_id)
        assert all(c.channel_id in world.discord.channels for c in record.channels)
        assert len(record.channels) == 2


class CountingStore(VoiceStore):
    """The voice tables, counting the reads reconciliation makes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.reads: Counter[str] = Counter()
        self.completing: asyncio.Event | None = None
        """When set, a channel's completion waits for it (that of `gated` only, if set)."""
        self.gated: str | None = None
        self.completions_fail = False
        """When set, recording created channels fails as if the database went away."""

    async def complete_channel(
        self, match_id: str, faction: str, channel_id: int, members: Iterable[int]
    ) -> None:
        if self.completing is not None and self.gated in (None, faction):
            await self.completing.wait()
        await super().complete_channel(match_id, faction, channel_id, members)

    async def complete_channels(
        self, match_id: str, channels: Sequence[tuple[str, int, Iterable[int]]]
    ) -> None:
        if self.completions_fail:
            raise OSError("the database went away")
        factions = {faction for faction, _, _ in channels}
        if self.completing is not None and (self.gated is None or self.gated in factions):
            await self.completing.wait()
        await super().complete_channels(match_id, channels)

    async def complete_recreates(
        self, match_id: str, channels: Sequence[tuple[str, int, int, Iterable[int]]]
    ) -> None:
        if self.completions_fail:
            raise OSError("the database went away")
        factions = {faction for faction, _, _, _ in channels}
        if self.completing is not None and (self.gated is None or self.gated in factions):
            await self.completing.wait()
        await super().complete_recreates(match_id, channels)

    async def get_match(self, match_id: str) -> MatchRecord | None:
        self.reads["get_match"] += 1
        return await super().get_match(match_id)

    async def matches_to_reconcile(self) -> tuple[list[MatchRecord], list[MatchRecord]]:
        self.reads["matches_to_reconcile"] += 1
        return await super().matches_to_reconcile()


def counted(pool: asyncpg.Pool) -> tuple[World, CountingStore]:
    """The world of test_matches over a store that counts its reads; p1 and p2 linked."""
    world = build(pool)
    store = CountingStore(pool)
    world = World(
        MatchService(
            store=store,
            cache=world.cache,
            discord=world.discord,
            resolver=world.resolver,
            guild_id=GUILD,
            lobby_channel_id=LOBBY,
        ),
        store,
        world.cache,
        world.discord,
        world.resolver,
    )
    world.resolver.links = {"p1": 1, "p2": 2}
    world.discord.guild_members = {1, 2}
    return world, store


async def open_three(world: World) -> list[str]:
    ids = [f"{n}-reconcile-{n}" for n in range(3)]
    for match_id in ids:
        await world.service.open_match(dataclasses.replace(spec(), match_id=match_id))
    return ids


async def test_matches_nobody_touched_since_the_passs_read_are_not_read_again(
    voice_pool: asyncpg.Pool,
) -> None:
    """One statement reads every match of a pass: a match whose lock nobody took since is
    reconciled from it, with no read of its own."""
    world, store = counted(voice_pool)
    await open_three(world)
    store.reads.clear()

    report = await Reconciler(world.cache, world.service).run()

    assert report.open_matches == 3
    assert store.reads == {"matches_to_reconcile": 1}


async def test_after_a_read_ahead_the_pass_starts_with_discords_calls(
    voice_pool: asyncpg.Pool,
) -> None:
    """Read ahead (the lease held, the gateway not ready), the pass reads nothing before it
    looks the channels up, and still recreates every lost one."""
    world, store = counted(voice_pool)
    ids = await open_three(world)
    reconciler = Reconciler(world.cache, world.service)
    await reconciler.read_ahead()
    for channel_id in list(world.discord.channels):
        await world.discord.delete_channel(channel_id)
    store.reads.clear()

    report = await reconciler.run()

    assert set(report.changes) == set(ids)
    assert store.reads == {"get_match": 3}  # each repaired match, read back once it is
    for match_id in ids:
        record = await world.service.get_match(match_id)
        assert all(c.channel_id in world.discord.channels for c in record.channels)


async def test_a_read_ahead_that_a_change_overtook_is_read_again(
    voice_pool: asyncpg.Pool,
) -> None:
    """A match closed after the read ahead: the pass reads the matches again, so the closed
    one is neither cached as open nor given channels back."""
    world, store = counted(voice_pool)
    closed, *others = await open_three(world)
    reconciler = Reconciler(world.cache, world.service)
    await reconciler.read_ahead()
    await world.service.close_match(closed, 2, "FINISHED")
    created = len(world.discord.created)
    store.reads.clear()

    report = await reconciler.run()

    assert store.reads["matches_to_reconcile"] == 1
    assert report.open_matches == 2
    assert world.cache.get(closed) is None
    assert [world.cache.get(m) is not None for m in others] == [True, True]
    assert len(world.discord.created) == created


async def test_a_match_whose_lock_was_held_during_the_read_is_read_again_under_it(
    voice_pool: asyncpg.Pool,
) -> None:
    """An update creating a channel holds the match's lock while the pass reads (its intent
    stored, its channel not yet made): the match is read again once the update is done, and
    its new channel is not made twice."""
    world, _ = counted(voice_pool)
    world.resolver.links = {"p1": 1}
    await world.service.open_match(spec())
    world.resolver.links = {"p1": 1, "p2": 2}
    gate = world.discord.create_gate = asyncio.Event()
    update = asyncio.create_task(world.service.open_match(spec(version=2)))

    async def creating() -> bool:
        return world.discord.creating == 1

    await eventually(creating, what="the update's channel create under way")
    read = await world.service.read_to_reconcile()
    (during,) = read.open_matches
    assert [c.channel_id is None for c in during.channels] == [False, True]
    gate.set()
    await update
    created = len(world.discord.created)
    try:
        assert await world.service.reconcile_match(MATCH, read) == []
    finally:
        read.close()
    assert len(world.discord.created) == created == 2


async def test_players_wait_for_no_database_write_to_enter_a_recreated_channel(
    voice_pool: asyncpg.Pool,
) -> None:
    """A lost channel is made again and its player, waiting in the lobby, moved into it while
    the new channel is recorded (as a match's first channels are); cache and database then
    both hold it."""
    world, store = counted(voice_pool)
    world.resolver.links = {"p1": 1}
    world.discord.voice[1] = LOBBY
    (lost,) = (await world.service.open_match(spec())).match.channels
    await world.discord.delete_channel(lost.channel_id)  # type: ignore[arg-type]
    world.discord.voice[1] = LOBBY
    store.completing = asyncio.Event()
    task = asyncio.create_task(Reconciler(world.cache, world.service).run())

    async def moved_in() -> bool:
        return world.discord.voice.get(1) not in (None, LOBBY)

    await eventually(moved_in, what="the player moved into the recreated channel")
    assert not task.done()
    store.completing.set()
    report = await task
    new = world.discord.voice[1]
    assert report.changes[MATCH][0] == f"faction1: recreated lost channel {lost.channel_id}"
    assert (await world.store.get_match(MATCH)).channel("faction1").channel_id == new  # type: ignore[union-attr]
    assert world.cache.seat_of(1).channel_id == new  # type: ignore[union-attr]


async def test_a_recreated_channel_enters_the_cache_beside_an_intent_finished_before_it(
    voice_pool: asyncpg.Pool,
) -> None:
    """One match with an interrupted create (faction1) and a lost channel (faction2): while
    the lost one is recorded and its player moved in, the cache holds both new channels."""
    world, store = counted(voice_pool)
    world.discord.voice[2] = LOBBY
    first, second = (await world.service.open_match(spec())).match.channels
    await voice_pool.execute(
        "UPDATE voice.match_channels SET channel_id = NULL WHERE faction = 'faction1'"
    )
    await world.discord.delete_channel(first.channel_id)  # type: ignore[arg-type]
    await world.discord.delete_channel(second.channel_id)  # type: ignore[arg-type]
    world.discord.voice[2] = LOBBY
    store.completing, store.gated = asyncio.Event(), "faction2"
    task = asyncio.create_task(Reconciler(world.cache, world.service).run())

    async def moved_in() -> bool:
        return world.discord.voice.get(2) not in (None, LOBBY)

    await eventually(moved_in, what="player 2 moved into the recreated channel")
    cached = world.cache.get(MATCH)
    assert cached is not None
    assert [c.channel_id in world.discord.channels for c in cached.channels] == [True, True]
    store.completing.set()
    await task


async def test_a_recreate_cut_off_before_its_channel_was_recorded_is_adopted_next_pass(
    voice_pool: asyncpg.Pool,
) -> None:
    """The database going away between a lost channel's create and its record leaves an
    intent: the next pass adopts the channel made instead of making another."""
    world, store = counted(voice_pool)
    (lost, _) = (await world.service.open_match(spec())).match.channels
    await world.discord.delete_channel(lost.channel_id)  # type: ignore[arg-type]
    store.completions_fail = True
    with pytest.raises(OSError):
        await world.service.reconcile_match(MATCH)
    (made,) = world.discord.created[2:]
    store.completions_fail = False

    await world.service.reconcile_match(MATCH)

    assert world.discord.created[2:] == [made]
    record = await world.service.get_match(MATCH)
    assert record.channel(lost.faction).channel_id == made  # type: ignore[union-attr]


async def test_a_lost_channel_is_an_intent_before_its_lookup_answers(
    voice_pool: asyncpg.Pool,
) -> None:
    """While the lookup of a channel the cache lacks travels, the database already holds its
    recreation's intent (the lost id kept as the channel it replaces), so the create follows
    the answer with no write in between; once recorded, the lost id is forgotten."""
    world, _ = counted(voice_pool)
    (lost, _) = (await world.service.open_match(spec())).match.channels
    assert lost.channel_id is not None
    await world.discord.delete_channel(lost.channel_id)
    gate = world.discord.lookup_gate = asyncio.Event()
    repairing = asyncio.create_task(world.service.reconcile_match(MATCH))

    async def intent_written() -> bool:
        during = (await world.store.get_match(MATCH)).channel(lost.faction)  # type: ignore[union-attr]
        return (during.channel_id, during.previous_channel_id) == (None, lost.channel_id)  # type: ignore[union-attr]

    await eventually(intent_written, what="the intent written, the lookup held")
    assert world.discord.lookups == [lost.channel_id]
    assert world.discord.created[2:] == []
    gate.set()
    await repairing
    (made,) = world.discord.created[2:]
    after = (await world.store.get_match(MATCH)).channel(lost.faction)  # type: ignore[union-attr]
    assert (after.channel_id, after.previous_channel_id) == (made, None)  # type: ignore[union-attr]


async def test_a_channel_the_cache_lacked_but_discord_has_gets_its_id_back(
    voice_pool: asyncpg.Pool,
) -> None:
    """The lookup finds the channel after all: its intent is called off, nothing is made,
    and the match reads as it did."""
    world, _ = counted(voice_pool)
    before = (await world.service.open_match(spec())).match
    world.discord.uncached = {c.channel_id for c in before.channels if c.channel_id is not None}

    assert await world.service.reconcile_match(MATCH) == []

    assert sorted(world.discord.lookups) == sorted(world.discord.uncached)
    assert len(world.discord.created) == 2
    assert (await world.store.get_match(MATCH)).channels == before.channels  # type: ignore[union-attr]


async def test_a_failed_lookup_leaves_the_channel_as_it_was(voice_pool: asyncpg.Pool) -> None:
    """Discord failing the lookup fails the repair; the intent written beside it is called
    off, so the next pass looks the channel up again instead of replacing it."""
    world, _ = counted(voice_pool)
    before = (await world.service.open_match(spec())).match
    world.discord.uncached = {c.channel_id for c in before.channels if c.channel_id is not None}
    world.discord.fail_lookups = 1

    with pytest.raises(Unavailable):
        await world.service.reconcile_match(MATCH)

    assert len(world.discord.created) == 2
    assert (await world.store.get_match(MATCH)).channels == before.channels  # type: ignore[union-attr]


async def test_a_crash_during_the_lookup_of_a_channel_discord_still_has_replaces_it(
    voice_pool: asyncpg.Pool,
) -> None:
    """A process that ended while it looked up a channel the cache lacked left an intent that
    keeps the channel's id: the next pass makes the channel anew, moves its occupant over and
    deletes the old one (a replacement), so no channel is left that the database forgets."""
    world, _ = counted(voice_pool)
    (kept, _) = (await world.service.open_match(spec())).match.channels
    assert kept.channel_id is not None
    world.discord.voice[1] = kept.channel_id
    await world.store.begin_replacement(MATCH, kept.faction, kept.member_ids)

    await Reconciler(world.cache, world.service).run()

    (made,) = world.discord.created[2:]
    assert world.discord.deleted == [kept.channel_id]
    assert world.discord.voice[1] == made
    after = (await world.store.get_match(MATCH)).channel(kept.faction)  # type: ignore[union-attr]
    assert (after.channel_id, after.previous_channel_id) == (made, None)  # type: ignore[union-attr]
