"""OpenMatch / CloseMatch orchestration: version rules, per-match locks, channels and moves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from services.kit.errors import DomainError, InvalidArgument, NotFound
from services.kit.logging import log_context
from services.voice.cache import ActiveMatchCache
from services.voice.discord_port import DiscordPort, NotInVoice
from services.voice.locks import KeyedLocks
from services.voice.model import (
    FACTIONS,
    ChannelState,
    CloseOutcome,
    CloseResult,
    MatchRecord,
    MatchSpec,
    MatchState,
    OpenOutcome,
    OpenResult,
    Placement,
    PlacementOutcome,
    Team,
    TeamChannel,
    allowed_members,
    players_on_both_teams,
)
from services.voice.naming import channel_name
from services.voice.store import VoiceStore, decode_page_token, encode_page_token

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


class PlayerResolver(Protocol):
    """Resolves FACEIT players to the Discord users they are linked to (the registry)."""

    async def resolve_players(self, faceit_player_ids: Sequence[str]) -> dict[str, int]:
        """FACEIT player id -> Discord user id, for the linked players only."""
        ...


def validate_spec(spec: MatchSpec) -> None:
    """Raise InvalidArgument when the match cannot be acted on."""
    if not spec.match_id.strip():
        raise InvalidArgument("match.match_id is required")
    if spec.version < 0:
        raise InvalidArgument("match.version must be >= 0")
    seen: set[str] = set()
    for team in spec.teams:
        if team.faction not in FACTIONS:
            raise InvalidArgument(
                f"unknown faction {team.faction!r}: expected one of {', '.join(FACTIONS)}"
            )
        if team.faction in seen:
            raise InvalidArgument(f"faction {team.faction!r} appears twice")
        seen.add(team.faction)
        for player in team.roster:
            if not player.faceit_player_id.strip():
                raise InvalidArgument(f"a player of {team.faction} has no faceit_player_id")


def _player_ids(teams: Sequence[Team]) -> list[str]:
    return sorted({p.faceit_player_id for team in teams for p in team.roster})


class MatchService:
    """Applies match events to Discord and the database, one match at a time."""

    def __init__(
        self,
        *,
        store: VoiceStore,
        cache: ActiveMatchCache,
        discord: DiscordPort,
        resolver: PlayerResolver,
        guild_id: int,
        lobby_channel_id: int | None = None,
        close_delay_s: float = 0.0,
    ) -> None:
        self._store = store
        self._cache = cache
        self._discord = discord
        self._resolver = resolver
        self._guild_id = guild_id
        self._lobby_channel_id = lobby_channel_id
        self._close_delay_s = close_delay_s
        self._locks = KeyedLocks()
        self.deletions_changed = asyncio.Event()
        """Set whenever a delayed deletion was scheduled or might be due."""

    # ---- reads ---------------------------------------------------------------------------

    async def get_match(self, match_id: str) -> MatchRecord:
        """The match from the cache, else the database; NotFound when unknown."""
        if not match_id.strip():
            raise InvalidArgument("match_id is required")
        record = self._cache.get(match_id) or await self._store.get_match(match_id)
        if record is None:
            raise NotFound(f"match {match_id} is not known to the voice service")
        return record

    async def list_matches(self, page_size: int, page_token: str) -> tuple[list[MatchRecord], str]:
        """One page of open matches, oldest first, and the next page's token ('' at the end)."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be between 0 and {MAX_PAGE_SIZE}")
        after = decode_page_token(page_token) if page_token else None
        records, next_key = await self._store.list_open(page_size or DEFAULT_PAGE_SIZE, after)
        return records, encode_page_token(*next_key) if next_key else ""

    # ---- OpenMatch -----------------------------------------------------------------------

    async def open_match(self, spec: MatchSpec) -> OpenResult:
        """Make sure each team with linked guild members has its channel; move those in voice."""
        validate_spec(spec)
        with log_context(match_id=spec.match_id):
            async with self._locks.hold(spec.match_id):
                # The registry lookup overlaps the read that decides whether the event is stale.
                current, links = await asyncio.gather(
                    self._store.get_match(spec.match_id),
                    self._resolver.resolve_players(_player_ids(spec.teams)),
                    return_exceptions=True,
                )
                if isinstance(current, BaseException):
                    raise current
                if current is not None and (
                    (current.state is MatchState.CLOSED and spec.version <= current.version)
                    or (current.state is MatchState.OPEN and spec.version < current.version)
                ):
                    logger.info(
                        "open version %s is stale (match %s at version %s)",
                        spec.version,
                        current.state,
                        current.version,
                    )
                    return OpenResult(OpenOutcome.STALE, current)
                if isinstance(links, BaseException):
                    raise links
                opened = current is None or current.state is MatchState.CLOSED
                if current is None or not (current.channels or current.left_on_purpose):
                    record, placements = await self._open_without_channels(spec, links)
                else:
                    await self._store.record_open(
                        spec.match_id, self._guild_id, spec.version, spec.teams
                    )
                    record = await self._sync(spec.match_id, spec.teams, links)
                    placements = await self._place(record, spec.teams, links)
                outcome = OpenOutcome.OPENED if opened else OpenOutcome.UPDATED
                logger.info(
                    "match %s: %s channels, %s moved",
                    outcome.name.lower(),
                    len(record.channels),
                    sum(p.outcome is PlacementOutcome.MOVED for p in placements),
                )
                return OpenResult(outcome, record, placements)

    async def player_linked(self, discord_user_id: int, faceit_player_id: str) -> list[MatchRecord]:
        """Give a newly linked player access to their open matches and move them in."""

        async def link(record: MatchRecord, links: dict[str, int]) -> MatchRecord:
            links[faceit_player_id] = discord_user_id
            record = await self._sync(record.match_id, record.teams, links)
            await self._place(record, record.teams, {faceit_player_id: discord_user_id})
            logger.info("player %s linked during the match: access given", discord_user_id)
            return record

        return await self._resync_open_matches_of(faceit_player_id, link)

    async def player_unlinked(self, faceit_player_id: str) -> list[MatchRecord]:
        """Take an unlinked player's access to their open matches' channels away."""

        async def unlink(record: MatchRecord, links: dict[str, int]) -> MatchRecord:
            links.pop(faceit_player_id, None)
            record = await self._sync(record.match_id, record.teams, links)
            logger.info("player %s unlinked during the match: access taken", faceit_player_id)
            return record

        return await self._resync_open_matches_of(faceit_player_id, unlink)

    async def _resync_open_matches_of(
        self,
        faceit_player_id: str,
        change: Callable[[MatchRecord, dict[str, int]], Awaitable[MatchRecord]],
    ) -> list[MatchRecord]:
        """Apply `change` (given the match and its current links) to each open match of a player."""
        updated = []
        for match_id in await self._store.open_matches_with_player(faceit_player_id):
            with log_context(match_id=match_id):
                async with self._locks.hold(match_id):
                    record = await self._store.get_match(match_id)
                    if record is None or record.state is not MatchState.OPEN:
                        continue
                    links = dict(await self._resolver.resolve_players(_player_ids(record.teams)))
                    updated.append(await change(record, links))
        return updated

    async def _open_without_channels(
        self, spec: MatchSpec, links: Mapping[str, int]
    ) -> tuple[MatchRecord, tuple[Placement, ...]]:
        """Open a match that has no channel yet: one transaction, then creates, then moves.

        The open and the channel intents are written together before any channel is created;
        the moves start as soon as the channels exist, while their completion is written.
        """
        in_guild = await self._in_guild(spec.teams, links)
        new = [
            (team, name, members)
            for team, name, members in self._planned(spec.match_id, spec.teams, links, in_guild)
            if members
        ]
        opened_at = await self._store.open_with_intents(
            spec.match_id,
            self._guild_id,
            spec.version,
            spec.teams,
            [(team.faction, team.name, name, members) for team, name, members in new],
        )
        results = await asyncio.gather(
            *(self._discord.create_private_channel(name, members) for _, name, members in new),
            return_exceptions=True,
        )
        created = [
            (team.faction, result, members)
            for (team, _, members), result in zip(new, results, strict=True)
            if isinstance(result, int)
        ]
        for faction, channel_id, _ in created:
            logger.info("created channel %s for %s", channel_id, faction)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            if created:
                await self._store.complete_channels(spec.match_id, created)
            raise failure
        channels = tuple(
            TeamChannel(team.faction, team.name, name, channel_id, ChannelState.READY, frozenset(m))
            for (team, name, m), channel_id in zip(new, results, strict=True)
            if isinstance(channel_id, int)
        )
        record = MatchRecord(
            match_id=spec.match_id,
            guild_id=self._guild_id,
            state=MatchState.OPEN,
            version=spec.version,
            teams=spec.teams,
            channels=tuple(sorted(channels, key=lambda c: c.faction)),
            opened_at=opened_at,
        )
        self._cache.put(record)
        placements = await self._place_while(
            self._store.complete_channels(spec.match_id, created) if created else None,
            record,
            spec.teams,
            links,
        )
        stored = await self._must(spec.match_id)
        self._cache.put(stored)
        return stored, placements

    async def _place_while(
        self,
        write: Awaitable[None] | None,
        record: MatchRecord,
        teams: Sequence[Team],
        links: Mapping[str, int],
    ) -> tuple[Placement, ...]:
        """Place the players while `write` runs; both are finished when this returns."""
        if write is None:
            return await self._place(record, teams, links)
        _, placements = await asyncio.gather(write, self._place(record, teams, links))
        return placements

    async def _in_guild(self, teams: Sequence[Team], links: Mapping[str, int]) -> set[int]:
        linked = sorted({links[p] for p in _player_ids(teams) if p in links})
        found = await asyncio.gather(*(self._discord.is_member(uid) for uid in linked))
        return {uid for uid, present in zip(linked, found, strict=True) if present}

    @staticmethod
    def _planned(
        match_id: str, teams: Sequence[Team], links: Mapping[str, int], in_guild: set[int]
    ) -> list[tuple[Team, str, set[int]]]:
        """Each team with its channel's name and the linked guild members allowed in it."""
        on_both = players_on_both_teams(teams)
        if on_both:
            logger.warning(
                "players on both teams' rosters get access to neither channel: %s",
                ", ".join(sorted(on_both)),
            )
        names = {team.faction: team.name for team in teams}
        allowed = allowed_members(teams, links, in_guild)
        planned = []
        for team in teams:
            other = next((n for f, n in names.items() if f != team.faction), "")
            name = channel_name(match_id, team.name, other)
            planned.append((team, name, set(allowed[team.faction])))
        return planned

    async def _sync(
        self, match_id: str, teams: Sequence[Team], links: Mapping[str, int]
    ) -> MatchRecord:
        in_guild = await self._in_guild(teams, links)
        record = await self._store.get_match(match_id)
        assert record is not None
        new: list[tuple[Team, str, set[int]]] = []
        for team, name, members in self._planned(match_id, teams, links, in_guild):
            if record.channel(team.faction) is None:
                if members:
                    new.append((team, name, members))
            else:
                await self._ensure_channel(record, team, members)
        await self._create_channels(match_id, new)
        record = await self._store.get_match(match_id)
        assert record is not None
        self._cache.put(record)
        return record

    async def _create_channels(
        self, match_id: str, new: Sequence[tuple[Team, str, set[int]]]
    ) -> None:
        """Create the teams' new channels concurrently: intents first, completions after."""
        if not new:
            return
        await self._store.add_channel_intents(
            match_id, [(team.faction, team.name, name, members) for team, name, members in new]
        )
        results = await asyncio.gather(
            *(self._discord.create_private_channel(name, members) for _, name, members in new),
            return_exceptions=True,
        )
        created = [
            (team.faction, result, members)
            for (team, _, members), result in zip(new, results, strict=True)
            if isinstance(result, int)
        ]
        if created:
            await self._store.complete_channels(match_id, created)
        for faction, channel_id, _ in created:
            logger.info("created channel %s for %s", channel_id, faction)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _ensure_channel(self, record: MatchRecord, team: Team, members: set[int]) -> None:
        existing = record.channel(team.faction)
        assert existing is not None
        if existing.channel_id is None:
            kept = members or set(existing.member_ids)
            await self._finish_intent(record.match_id, existing, kept)
        elif not await self._discord.channel_exists(existing.channel_id):
            await self._recreate(record.match_id, existing, members)
        elif members != existing.member_ids:
            if await self._discord.set_members(existing.channel_id, members):
                await self._store.set_channel_members(record.match_id, team.faction, members)
                await self._cache_from_store(record.match_id)
                await self._move_out(existing.channel_id, existing.member_ids - members)
            else:
                await self._replace(record.match_id, existing, members)
            logger.info("channel of %s now allows %s players", team.faction, len(members))

    async def _finish_intent(
        self, match_id: str, intent: TeamChannel, members: Collection[int]
    ) -> None:
        """Complete an intent whose channel may or may not exist: adopt it, or create it."""
        tracked = await self._store.tracked_channel_ids()
        leftovers = [
            c for c in self._discord.bot_channels_named(intent.channel_name) if c not in tracked
        ]
        channel_id = None
        lost: Collection[int] = ()
        if leftovers:
            if set(members) == intent.member_ids or await self._discord.set_members(
                leftovers[0], members
            ):
                channel_id = leftovers[0]
                lost = intent.member_ids - set(members)
                logger.warning("adopted channel %s left by an interrupted create", channel_id)
            else:
                await self._discord.delete_channel(leftovers[0])
        if channel_id is None:
            channel_id = await self._discord.create_private_channel(intent.channel_name, members)
            logger.info("created channel %s for an unfinished intent", channel_id)
        await self._store.complete_channel(match_id, intent.faction, channel_id, members)
        await self._cache_from_store(match_id)
        await self._move_out(channel_id, lost)
        if intent.previous_channel_id is not None:
            await self._finish_replacement(
                match_id, intent.faction, intent.previous_channel_id, channel_id, members
            )

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
        """Move the allowed occupants of `previous` into `current`, the others out; delete it.

        Only players allowed in a channel are ever moved into it: whoever sits in the old
        channel without access to the new one (they just lost it, or never had it) leaves.
        """
        occupants = self._discord.occupants(previous)
        await self._moves(
            [(uid, current if uid in allowed else self._lobby_channel_id) for uid in occupants]
        )
        await self._discord.delete_channel(previous)
        await self._store.end_replacement(match_id, faction)

    async def _move_out(self, channel_id: int, lost: Collection[int]) -> None:
        """Move those of `lost` who sit in the channel to the lobby, or disconnect them.

        Discord leaves a member connected to a channel they can no longer see, so taking an
        overwrite away is not enough to take them out.
        """
        inside = [uid for uid in self._discord.occupants(channel_id) if uid in lost]
        moved = await self._moves([(uid, self._lobby_channel_id) for uid in inside])
        if inside:
            logger.info(
                "moved %s of %s players out of channel %s: access taken",
                moved,
                len(inside),
                channel_id,
            )

    async def _moves(self, moves: Sequence[tuple[int, int | None]]) -> int:
        """Make the moves concurrently (to None: disconnect); how many succeeded. Logs failures."""
        results = await asyncio.gather(
            *(self._discord.move(uid, target) for uid, target in moves), return_exceptions=True
        )
        for (uid, target), result in zip(moves, results, strict=True):
            if isinstance(result, NotInVoice):
                continue  # left voice meanwhile: nothing to move
            if isinstance(result, BaseException):
                logger.warning("could not move %s to %s: %r", uid, target, result)
        return sum(not isinstance(result, BaseException) for result in results)

    async def _cache_from_store(self, match_id: str) -> None:
        # The live handler must see who is allowed where before anyone is moved in or out.
        record = await self._store.get_match(match_id)
        if record is not None:
            self._cache.put(record)

    async def _recreate(self, match_id: str, lost: TeamChannel, members: Collection[int]) -> None:
        logger.warning("channel %s of %s is gone from Discord", lost.channel_id, lost.faction)
        if not members:
            await self._store.remove_channel(match_id, lost.faction)
            return
        channel_id = await self._discord.create_private_channel(lost.channel_name, members)
        await self._store.complete_channel(match_id, lost.faction, channel_id, members)
        logger.info("recreated channel %s for %s", channel_id, lost.faction)

    async def _place(
        self, record: MatchRecord, teams: Sequence[Team], links: Mapping[str, int]
    ) -> tuple[Placement, ...]:
        on_both = players_on_both_teams(teams)
        jobs = []
        for team in teams:
            channel = record.channel(team.faction)
            for player in team.roster:
                jobs.append(self._place_one(record, channel, team.faction, player, links, on_both))
        return tuple(await asyncio.gather(*jobs))

    async def _place_one(
        self,
        record: MatchRecord,
        channel: TeamChannel | None,
        faction: str,
        player: object,
        links: Mapping[str, int],
        on_both: Collection[str],
    ) -> Placement:
        faceit_id = getattr(player, "faceit_player_id", "")
        nickname = getattr(player, "nickname", "")
        uid = links.get(faceit_id)

        def placed(outcome: PlacementOutcome, reason: str = "") -> Placement:
            return Placement(faceit_id, nickname, faction, uid or 0, outcome, reason)

        if faceit_id in on_both:
            return placed(
                PlacementOutcome.FAILED, "listed on both teams' rosters: access to neither channel"
            )
        if uid is None:
            return placed(PlacementOutcome.SKIPPED_NOT_LINKED, "no Discord account is linked")
        if channel is None or channel.channel_id is None or uid not in channel.member_ids:
            return placed(
                PlacementOutcome.SKIPPED_NOT_IN_GUILD, "the linked user is not in the guild"
            )
        current = self._discord.voice_channel_of(uid)
        if current is None:
            return placed(
                PlacementOutcome.SKIPPED_NOT_IN_VOICE, "not connected to voice; has access"
            )
        if current == channel.channel_id:
            return placed(PlacementOutcome.ALREADY_THERE)
        if uid in record.left_on_purpose:
            return placed(
                PlacementOutcome.SKIPPED_LEFT_ON_PURPOSE, "left the team channel on purpose"
            )
        try:
            await self._discord.move(uid, channel.channel_id)
        except NotInVoice:
            return placed(
                PlacementOutcome.SKIPPED_NOT_IN_VOICE, "not connected to voice; has access"
            )
        except DomainError as error:
            logger.warning("could not move %s: %s", uid, error.message)
            return placed(PlacementOutcome.FAILED, error.message)
        return placed(PlacementOutcome.MOVED)

    # ---- CloseMatch ----------------------------------------------------------------------

    async def close_match(self, match_id: str, version: int, reason: str) -> CloseResult:
        """Close the match: occupants to the lobby, channels deleted now or after the grace."""
        if not match_id.strip():
            raise InvalidArgument("match_id is required")
        if version < 0:
            raise InvalidArgument("version must be >= 0")
        with log_context(match_id=match_id):
            async with self._locks.hold(match_id):
                current = await self._store.get_match(match_id)
                if current is None:
                    await self._store.record_close(match_id, self._guild_id, version, reason, 0)
                    logger.info("close of an unknown match recorded (version %s)", version)
                    return CloseResult(CloseOutcome.ALREADY_CLOSED, await self._must(match_id))
                if current.state is MatchState.CLOSED:
                    outcome = (
                        CloseOutcome.STALE
                        if version < current.version
                        else CloseOutcome.ALREADY_CLOSED
                    )
                    if outcome is CloseOutcome.ALREADY_CLOSED and self._due(current):
                        deleted, moved = await self._delete_channels(match_id)
                        return CloseResult(outcome, await self._must(match_id), deleted, moved)
                    return CloseResult(outcome, current)
                if version < current.version:
                    logger.info("close version %s older than open %s", version, current.version)
                    return CloseResult(CloseOutcome.STALE, current)
                await self._store.record_close(
                    match_id, self._guild_id, version, reason, self._close_delay_s
                )
                self._cache.remove(match_id)
                if self._close_delay_s > 0:
                    self.deletions_changed.set()
                    logger.info("match closed; channels go in %ss", self._close_delay_s)
                    return CloseResult(CloseOutcome.SCHEDULED, await self._must(match_id))
                try:
                    deleted, moved = await self._delete_channels(match_id)
                finally:
                    self.deletions_changed.set()
                logger.info("match closed: %s channels deleted", len(deleted))
                return CloseResult(CloseOutcome.CLOSED, await self._must(match_id), deleted, moved)

    async def finish_close(self, match_id: str) -> tuple[int, ...]:
        """Delete the channels of a closed match whose grace period is over; returns their ids."""
        with log_context(match_id=match_id):
            async with self._locks.hold(match_id):
                record = await self._store.get_match(match_id)
                if record is None or record.state is not MatchState.CLOSED or not self._due(record):
                    return ()
                deleted, _ = await self._delete_channels(match_id)
                logger.info("grace period over: %s channels deleted", len(deleted))
                return deleted

    @staticmethod
    def _due(record: MatchRecord) -> bool:
        if not record.channels:
            return False
        return record.delete_after is None or record.delete_after <= datetime.now(UTC)

    async def _must(self, match_id: str) -> MatchRecord:
        record = await self._store.get_match(match_id)
        assert record is not None
        return record

    async def _delete_channels(self, match_id: str) -> tuple[tuple[int, ...], int]:
        record = await self._must(match_id)
        deleted: list[int] = []
        moved = 0
        for channel in record.channels:
            if channel.previous_channel_id is not None:
                moved += await self._to_lobby(channel.previous_channel_id)
                if await self._discord.delete_channel(channel.previous_channel_id):
                    deleted.append(channel.previous_channel_id)
            if channel.channel_id is None:
                tracked = await self._store.tracked_channel_ids()
                for leftover in self._discord.bot_channels_named(channel.channel_name):
                    if leftover not in tracked and await self._discord.delete_channel(leftover):
                        deleted.append(leftover)
                await self._store.remove_channel(match_id, channel.faction)
                continue
            moved += await self._to_lobby(channel.channel_id)
            if await self._discord.delete_channel(channel.channel_id):
                deleted.append(channel.channel_id)
            else:
                logger.info("channel %s was already gone", channel.channel_id)
            await self._store.remove_channel(match_id, channel.faction)
        return tuple(deleted), moved

    async def _to_lobby(self, channel_id: int) -> int:
        """Move a closing channel's occupants to the lobby (deleting it disconnects them else)."""
        lobby = self._lobby_channel_id
        if lobby is None:
            return 0
        return await self._moves([(uid, lobby) for uid in self._discord.occupants(channel_id)])

    # ---- reconciliation and live events -------------------------------------------------

    async def reconcile_match(self, match_id: str) -> None:
        """Bring one match's channels in line with the database (no registry call)."""
        with log_context(match_id=match_id):
            async with self._locks.hold(match_id):
                record = await self._store.get_match(match_id)
                if record is None:
                    return
                if record.state is MatchState.CLOSED:
                    if self._due(record):
                        await self._delete_channels(match_id)
                    return
                for channel in record.channels:
                    if channel.channel_id is None:
                        await self._finish_intent(match_id, channel, channel.member_ids)
                    elif not await self._discord.channel_exists(channel.channel_id):
                        await self._recreate(match_id, channel, channel.member_ids)
                    elif channel.previous_channel_id is not None:
                        await self._finish_replacement(
                            match_id,
                            channel.faction,
                            channel.previous_channel_id,
                            channel.channel_id,
                            channel.member_ids,
                        )
                record = await self._must(match_id)
                self._cache.put(record)
                await self._place_waiting(record)

    async def _place_waiting(self, record: MatchRecord) -> None:
        """Move the match's players who are in voice outside their team channel into it.

        Heals placements judged while voice states were stale (before the gateway was ready,
        or during a disconnect). Players who left on purpose, and those whose seat is in a more
        recent match, stay where they are.
        """
        moves = []
        for channel in record.channels:
            if channel.channel_id is None:
                continue
            for uid in sorted(channel.member_ids - record.left_on_purpose):
                current = self._discord.voice_channel_of(uid)
                seat = self._cache.seat_of(uid)
                if current is None or current == channel.channel_id:
                    continue
                if seat is None or seat.match_id != record.match_id:
                    continue
                moves.append((uid, channel.channel_id))
        results = await asyncio.gather(
            *(self._discord.move(uid, target) for uid, target in moves), return_exceptions=True
        )
        for (uid, _), result in zip(moves, results, strict=True):
            if isinstance(result, NotInVoice | DomainError):
                logger.warning("could not move %s into the team channel: %r", uid, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                logger.info("moved player %s into the team channel on reconciliation", uid)

    async def voice_changed(self, user_id: int, before: int | None, after: int | None) -> None:
        """React to a member's voice move: bring match players into their team channel.

        Whoever arrives in a team channel they may not join is moved out: the gateway may
        report a move into the channel only after the member's access was taken, too late
        for the change itself to see them inside.
        """
        if after is None or before == after:
            return
        arrived_in = self._cache.team_channel(after)
        if arrived_in is not None:
            record, team = arrived_in
            if user_id not in team.member_ids and not self._discord.may_join(user_id, after):
                with log_context(match_id=record.match_id):
                    if await self._moves([(user_id, self._lobby_channel_id)]):
                        logger.info("moved %s out of team channel %s: no access", user_id, after)
                return
        seat = self._cache.seat_of(user_id)
        if seat is None:
            return
        with log_context(match_id=seat.match_id):
            if before == seat.channel_id:
                await self._set_left(seat.match_id, user_id, left=True)
                logger.info("player %s switched away from the team channel", user_id)
                return
            if after == seat.channel_id:
                if self._cache.left_on_purpose(seat.match_id, user_id):
                    await self._set_left(seat.match_id, user_id, left=False)
                return
            if before is not None and after != self._lobby_channel_id:
                return
            if self._cache.left_on_purpose(seat.match_id, user_id):
                return
            try:
                await self._discord.move(user_id, seat.channel_id)
            except (NotInVoice, DomainError) as error:
                logger.warning("could not move %s into the team channel: %r", user_id, error)
                return
            logger.info("moved player %s into the team channel", user_id)

    async def _set_left(self, match_id: str, user_id: int, *, left: bool) -> None:
        async with self._locks.hold(match_id):
            await self._store.set_left_on_purpose(match_id, user_id, left)
            record = self._cache.get(match_id)
            if record is not None:
                users = (
                    record.left_on_purpose | {user_id}
                    if left
                    else record.left_on_purpose - {user_id}
                )
                self._cache.put(replace(record, left_on_purpose=users))
