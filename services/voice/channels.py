"""The team channels' lifecycle: created from intents, kept in line with rosters, deleted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from services.voice.cache import ActiveMatchCache
from services.voice.discord_port import DiscordPort
from services.voice.model import MatchRecord, Team, TeamChannel
from services.voice.naming import ChannelNaming
from services.voice.placement import PlayerPlacement
from services.voice.planning import ChannelPlan, completed_record, plan_channels, player_ids
from services.voice.store import VoiceStore

logger = logging.getLogger(__name__)


class ChannelLifecycle:
    """Creates, repairs and deletes a match's channels; the caller holds the match's lock.

    Every channel is written as an intent before Discord creates it and completed after, so
    a crash in between leaves something reconciliation can finish.
    """

    def __init__(
        self,
        store: VoiceStore,
        cache: ActiveMatchCache,
        discord: DiscordPort,
        placement: PlayerPlacement,
        naming: ChannelNaming,
    ) -> None:
        self._store = store
        self._naming = naming
        self._cache = cache
        self._discord = discord
        self._placement = placement

    async def in_guild(self, teams: Sequence[Team], links: Mapping[str, int]) -> set[int]:
        """The linked players of the teams who are members of the guild."""
        linked = sorted({links[p] for p in player_ids(teams) if p in links})
        found = await asyncio.gather(*(self._discord.is_member(uid) for uid in linked))
        return {uid for uid, present in zip(linked, found, strict=True) if present}

    async def create(
        self, match_id: str, plans: Sequence[ChannelPlan]
    ) -> list[tuple[ChannelPlan, int]]:
        """Create the planned channels (their intents stored) concurrently; the ids made.

        When one create fails, the channels made are stored as complete, then it is raised.
        """
        created, failure = await self.create_all(plans)
        if failure is not None:
            if created:
                await self.complete(match_id, created)
            raise failure
        return created

    async def create_all(
        self, plans: Sequence[ChannelPlan]
    ) -> tuple[list[tuple[ChannelPlan, int]], BaseException | None]:
        """Create the planned channels (their intents stored) concurrently: the ids made, and
        the first failure (None when every create succeeded)."""
        results = await asyncio.gather(
            *(self._discord.create_private_channel(p.name, p.members) for p in plans),
            return_exceptions=True,
        )
        created = [
            (plan, result)
            for plan, result in zip(plans, results, strict=True)
            if isinstance(result, int)
        ]
        for plan, channel_id in created:
            logger.info("created channel %s for %s", channel_id, plan.faction)
        return created, next((r for r in results if isinstance(r, BaseException)), None)

    async def complete(self, match_id: str, created: Sequence[tuple[ChannelPlan, int]]) -> None:
        """Store the channels created for intents."""
        await self._store.complete_channels(
            match_id, [(plan.faction, channel_id, plan.members) for plan, channel_id in created]
        )

    async def settle(
        self,
        match_id: str,
        plans: Sequence[ChannelPlan],
        created: Sequence[tuple[ChannelPlan, int]],
    ) -> None:
        """Settle an open's intents of unknown members (`MatchService.open_match`): the planned
        teams get their members and the channel made (none when its create failed: an intent
        reconciliation finishes); the other teams' intents go."""
        made = {plan.faction: channel_id for plan, channel_id in created}
        await self._store.settle_intents(
            match_id, [(p.faction, made.get(p.faction), p.members) for p in plans]
        )

    async def sync(
        self,
        stored: MatchRecord,
        teams: Sequence[Team],
        links: Mapping[str, int],
        *,
        moving: Mapping[str, int] | None = None,
    ) -> MatchRecord:
        """Bring the channels of an open match in line with `teams` and `links`; the new record.

        `stored` is the match as read under its lock: its channels are those that exist.
        The players of `moving` (FACEIT id -> Discord user) who wait in voice are then moved
        into their team channel; when channels were created, beside their completion's write,
        as an open does (the intents were written before the creates).
        """
        match_id = stored.match_id
        in_guild = await self.in_guild(teams, links)
        new: list[ChannelPlan] = []
        for plan in plan_channels(match_id, teams, links, in_guild, self._naming):
            existing = stored.channel(plan.faction)
            if existing is None:
                if plan.members:
                    new.append(plan)
            else:
                await self._ensure(match_id, existing, plan.members)
        if not new:
            record = await self._store.get_match(match_id)
            assert record is not None
            self._cache.put(record)
            await self._move(record, teams, moving)
            return record
        await self._store.add_channel_intents(match_id, [p.intent for p in new])
        # The reread sees what was done above and the intents: it goes beside the creates.
        read, created = await asyncio.gather(
            self._store.get_match(match_id), self.create(match_id, new), return_exceptions=True
        )
        if isinstance(created, BaseException):
            raise created
        if isinstance(read, BaseException):
            raise read  # the intents are there: reconciliation completes the channels made
        assert read is not None
        record = completed_record(read, {p.faction: (cid, p.members) for p, cid in created})
        self._cache.put(record)
        await asyncio.gather(self.complete(match_id, created), self._move(record, teams, moving))
        return record

    async def _move(
        self, record: MatchRecord, teams: Sequence[Team], moving: Mapping[str, int] | None
    ) -> None:
        if moving:
            await self._placement.place(record, teams, moving)

    async def _ensure(self, match_id: str, existing: TeamChannel, members: frozenset[int]) -> None:
        if existing.channel_id is None:
            if not existing.members_known:
                await self._settle_unknown(match_id, existing, members)
                return
            kept = members or set(existing.member_ids)
            await self._finish_intent(match_id, existing, kept)
        elif await self._gone(match_id, existing, members):
            await self._recreate(match_id, [(existing, members)])
        elif members != existing.member_ids:
            if await self._discord.set_members(existing.channel_id, members):
                await self._store.set_channel_members(match_id, existing.faction, members)
                await self._cache_from_store(match_id)
                await self._placement.move_out(existing.channel_id, existing.member_ids - members)
            else:
                await self._replace(match_id, existing, members)
            logger.info("channel of %s now allows %s players", existing.faction, len(members))

    async def repair(
        self, record: MatchRecord, planned: Mapping[str, frozenset[int]] | None = None
    ) -> list[str]:
        """Finish intents, recreate lost channels, end replacements and bring staff access in
        line with the settings, for an open match; what was changed, one line each.

        `planned` (faction -> who may join now) is needed when an intent's members are unknown
        (an open interrupted before it settled them, `MatchService.open_match`)."""
        match_id = record.match_id
        changes = []
        standing = [c for c in record.channels if c.channel_id is not None]
        gone = await asyncio.gather(*(self._gone(match_id, c, c.member_ids) for c in standing))
        lost = [c for c, is_gone in zip(standing, gone, strict=True) if is_gone]
        for channel in record.channels:
            if channel.channel_id is None and not channel.members_known:
                assert planned is not None
                members = planned.get(channel.faction, frozenset())
                await self._settle_unknown(match_id, channel, members)
                changes.append(
                    f"{channel.faction}: finished an interrupted open ({len(members)} members)"
                )
                continue
            if channel.channel_id is None:
                await self._finish_intent(match_id, channel, channel.member_ids)
                changes.append(f"{channel.faction}: finished an interrupted channel create")
                continue
            if channel in lost:
                continue
            if channel.previous_channel_id is not None:
                await self._finish_replacement(
                    match_id,
                    channel.faction,
                    channel.previous_channel_id,
                    channel.channel_id,
                    channel.member_ids,
                )
                changes.append(f"{channel.faction}: finished replacing a channel")
            if self._discord.staff_access_outdated(channel.channel_id):
                await self._update_staff(match_id, channel)
                changes.append(f"{channel.faction}: staff access updated")
        if lost:
            # The match as it now is: a step above refreshed the cache.
            now = (self._cache.get(match_id) if changes else None) or record
            moved = await self._recreate(match_id, [(c, c.member_ids) for c in lost], waiting=now)
            changes += [f"{c.faction}: recreated lost channel {c.channel_id}" for c in lost]
            if moved:
                changes.append(f"moved {moved} waiting players into the recreated channels")
        return changes

    async def _gone(self, match_id: str, channel: TeamChannel, members: Collection[int]) -> bool:
        """Whether the team's channel is gone from Discord; if so, it is now an intent for its
        recreation with `members`.

        A channel the cache lacks is looked up, and while the lookup travels the intent is
        written, the channel's id kept as the one it replaces: the create then follows the
        answer at once. A crash from there on leaves a replacement the next pass finishes (the
        channel made or adopted, then the old one deleted, were it there after all). A channel
        found after all gets its id back. One already replacing another keeps that one's id,
        so its intent waits for the answer.
        """
        assert channel.channel_id is not None
        if self._discord.channel_cached(channel.channel_id):
            return False
        if channel.previous_channel_id is not None:
            if await self._discord.channel_exists(channel.channel_id):
                return False
            await self._store.begin_recreate(match_id, channel.faction, members)
            return True
        intent, exists = await asyncio.gather(
            self._store.begin_replacement(match_id, channel.faction, members),
            self._discord.channel_exists(channel.channel_id),
            return_exceptions=True,
        )
        if isinstance(intent, BaseException):
            raise intent
        if exists is False:
            return True
        await self._store.cancel_replacement(match_id, channel.faction, channel.member_ids)
        if isinstance(exists, BaseException):
            raise exists
        return False

    async def _update_staff(self, match_id: str, channel: TeamChannel) -> None:
        """Rewrite a channel's overwrites (staff roles as configured now), or replace it."""
        assert channel.channel_id is not None
        if await self._discord.set_members(channel.channel_id, channel.member_ids):
            await self._placement.move_out(
                channel.channel_id, self._without_access(channel.channel_id, channel.member_ids)
            )
        else:
            await self._replace(match_id, channel, channel.member_ids)
        logger.info("staff access of channel %s now follows the settings", channel.channel_id)

    def _without_access(self, channel_id: int, members: Collection[int]) -> set[int]:
        """Who sits in the channel though neither a member nor staff who sees every channel."""
        return {
            u
            for u in self._discord.occupants(channel_id)
            if u not in members and not self._discord.sees_every_channel(u)
        }

    async def _settle_unknown(
        self, match_id: str, intent: TeamChannel, members: frozenset[int]
    ) -> None:
        """Finish an open's intent of unknown members with `members` (who may join now): its
        channel made or adopted with exactly them, or, with nobody, the intent and any channel
        made for it gone."""
        if members:
            await self._finish_intent(match_id, intent, members)
            return
        made = await self._untracked_named(intent.channel_name)
        if intent.previous_channel_id is not None:
            made.append(intent.previous_channel_id)
        for leftover in made:
            await self._placement.to_lobby(leftover)
            await self._discord.delete_channel(leftover)
        await self._store.remove_channel(match_id, intent.faction)
        await self._cache_from_store(match_id)
        logger.info("dropped the intent of %s: no linked guild member", intent.faction)

    async def _finish_intent(
        self, match_id: str, intent: TeamChannel, members: Collection[int]
    ) -> None:
        """Complete an intent whose channel may or may not exist: adopt it, or create it.

        A channel made for an intent of unknown members is adopted only once its overwrites
        are rewritten to `members` (whoever the create let in is not known), and whoever sits
        in it without access then is moved out. A namesake that cannot be adopted (its
        overwrites differ and may not be edited) is replaced: its occupants go over to the new
        channel (or out, without access), then it is deleted.
        """
        leftovers = await self._untracked_named(intent.channel_name)
        channel_id = None
        lost: Collection[int] = ()
        if leftovers:
            same = intent.members_known and set(members) == intent.member_ids
            if same or await self._discord.set_members(leftovers[0], members):
                channel_id = leftovers[0]
                lost = (
                    intent.member_ids - set(members)
                    if intent.members_known
                    else self._without_access(channel_id, members)
                )
                logger.warning("adopted channel %s left by an interrupted create", channel_id)
            elif intent.previous_channel_id is None:
                # Replaced, not deleted at once: whoever sits in it (the interrupted open may
                # have moved its players in) is moved over once its successor exists. Stored
                # first, so a crash from here on leaves a replacement the next pass finishes.
                await self._store.keep_as_replaced(match_id, intent.faction, leftovers[0])
                intent = replace(intent, previous_channel_id=leftovers[0])
            else:
                await self._discord.delete_channel(leftovers[0])
        if channel_id is None:
            channel_id = await self._discord.create_private_channel(intent.channel_name, members)
            logger.info("created channel %s for an unfinished intent", channel_id)
        await self._store.complete_channel(match_id, intent.faction, channel_id, members)
        await self._cache_from_store(match_id)
        await self._placement.move_out(channel_id, lost)
        if intent.previous_channel_id is not None:
            await self._finish_replacement(
                match_id, intent.faction, intent.previous_channel_id, channel_id, members
            )

    async def _untracked_named(self, name: str) -> list[int]:
        """The bot's channels with this name that the database does not know."""
        tracked = await self._store.tracked_channel_ids()
        return [c for c in self._discord.bot_channels_named(name) if c not in tracked]

    async def _replace(self, match_id: str, channel: TeamChannel, members: Collection[int]) -> None:
        """Swap a channel whose overwrites the bot may not edit for a new one with `members`."""
        assert channel.channel_id is not None
        await self._store.begin_replacement(match_id, channel.faction, members)
        new_id = await self._discord.create_private_channel(channel.channel_name, members)
        await self._store.complete_channel(match_id, channel.faction, new_id, members)
        await self._cache_from_store(match_id)
        await self._finish_replacement(
            match_id, channel.faction, channel.channel_id, new_id, members
        )
        logger.info("replaced channel %s by %s to change access", channel.channel_id, new_id)

    async def _finish_replacement(
        self, match_id: str, faction: str, previous: int, current: int, allowed: Collection[int]
    ) -> None:
        """Move the occupants of `previous` on (into `current` if allowed there); delete it."""
        await self._placement.replace_occupants(previous, current, allowed)
        await self._discord.delete_channel(previous)
        await self._store.end_replacement(match_id, faction)

    async def _cache_from_store(self, match_id: str) -> None:
        # The live handler must see who is allowed where before anyone is moved in or out.
        record = await self._store.get_match(match_id)
        if record is not None:
            self._cache.put(record)

    async def _recreate(
        self,
        match_id: str,
        lost: Sequence[tuple[TeamChannel, Collection[int]]],
        *,
        waiting: MatchRecord | None = None,
    ) -> int:
        """Create lost channels again (each with its members), side by side, and record them.
        With `waiting` (the match as read), the players waiting in voice are moved into them
        while they are recorded: how many. When a create fails, those made are recorded and
        the failure raised.

        Each lost channel is already an intent (`_gone`), so a crash after its create leaves
        what the next pass adopts (as for any interrupted create), not a channel nobody knows.
        """
        wanted = []
        for channel, members in lost:
            assert channel.channel_id is not None
            logger.warning(
                "channel %s of %s is gone from Discord", channel.channel_id, channel.faction
            )
            if members:
                wanted.append((channel.faction, channel.channel_id, channel.channel_name, members))
            else:
                await self._store.remove_channel(match_id, channel.faction)
        results = await asyncio.gather(
            *(
                self._discord.create_private_channel(name, members)
                for _, _, name, members in wanted
            ),
            return_exceptions=True,
        )
        made = [
            (faction, gone, result, members)
            for (faction, gone, _, members), result in zip(wanted, results, strict=True)
            if isinstance(result, int)
        ]
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        recorded = self._store.complete_recreates(match_id, made)
        moved = 0
        if waiting is None or failure is not None:
            await recorded
        else:
            record = completed_record(
                waiting, {faction: (made_id, members) for faction, _, made_id, members in made}
            )
            # The live handler must see who is allowed where before anyone is moved in. The
            # moves go first: their requests leave before the record's statements start.
            self._cache.put(record)
            moved, _ = await asyncio.gather(self._placement.place_waiting(record), recorded)
        for faction, _, made_id, _ in made:
            logger.info("recreated channel %s for %s", made_id, faction)
        if failure is not None:
            raise failure
        return moved

    async def delete_all(self, record: MatchRecord) -> tuple[tuple[int, ...], int]:
        """Occupants to the lobby, then delete every channel of the match (and any replaced
        or orphaned namesake); the ids deleted and how many players were moved."""
        match_id = record.match_id
        deleted: list[int] = []
        moved = 0
        for channel in record.channels:
            if channel.previous_channel_id is not None:
                moved += await self._placement.to_lobby(channel.previous_channel_id)
                if await self._discord.delete_channel(channel.previous_channel_id):
                    deleted.append(channel.previous_channel_id)
            if channel.channel_id is None:
                for leftover in await self._untracked_named(channel.channel_name):
                    if await self._discord.delete_channel(leftover):
                        deleted.append(leftover)
                await self._store.remove_channel(match_id, channel.faction)
                continue
            moved += await self._placement.to_lobby(channel.channel_id)
            if await self._discord.delete_channel(channel.channel_id):
                deleted.append(channel.channel_id)
            else:
                logger.info("channel %s was already gone", channel.channel_id)
            await self._store.remove_channel(match_id, channel.faction)
        return tuple(deleted), moved
