"""MatchService: each match event applied under the match's lock, in one readable sequence."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.kit.errors import InvalidArgument, NotFound
from services.kit.logging import log_context
from services.kit.paging import decode_page_token, encode_page_token
from services.voice.cache import ActiveMatchCache
from services.voice.channels import ChannelLifecycle
from services.voice.discord_port import DiscordPort
from services.voice.known_links import KnownLinks, PlayerResolver
from services.voice.live_moves import LiveMoves
from services.voice.locks import KeyedLocks, LockWatch
from services.voice.model import (
    CloseOutcome,
    CloseResult,
    MatchRecord,
    MatchResults,
    MatchSpec,
    MatchState,
    OpenOutcome,
    OpenResult,
    Placement,
    PlacementOutcome,
    Team,
)
from services.voice.naming import ChannelNaming
from services.voice.placement import PlayerPlacement
from services.voice.planning import (
    open_intents,
    open_is_stale,
    opened_record,
    plan_channels,
    player_ids,
    validate_spec,
)
from services.voice.store import VoiceStore

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


class MatchFeed(Protocol):
    """Told of every change a match feed may show; it must return at once (it posts later)."""

    def changed(
        self,
        match_id: str,
        *,
        spec: MatchSpec | None = None,
        results: MatchResults | None = None,
    ) -> None:
        """The match changed (opened, updated or closed), with what the event said of it."""
        ...


class MatchesToReconcile:
    """Every open match and every closed one with channels, as one statement read them.

    A match's record stays current while nobody takes its lock: reconciling it then needs
    no read of its own. Close it when done.
    """

    def __init__(
        self,
        open_matches: list[MatchRecord],
        closing: list[MatchRecord],
        watch: LockWatch,
        unwatch: Callable[[LockWatch], None],
    ) -> None:
        self.open_matches = open_matches
        self.closing = closing
        self._watch = watch
        self._unwatch = unwatch
        self._records = {r.match_id: r for r in [*open_matches, *closing]}

    @property
    def untouched(self) -> bool:
        """Whether every match read is still as read (no match lock was taken since)."""
        return self._watch.untouched

    def current(self, match_id: str) -> MatchRecord | None:
        """The match as read, unless its lock was taken since (or it was not read)."""
        return None if self._watch.touched(match_id) else self._records.get(match_id)

    def close(self) -> None:
        """Stop watching the matches' locks."""
        self._unwatch(self._watch)


class MatchService:
    """Applies match events to Discord and the database, one match at a time.

    It holds the per-match lock and decides; `ChannelLifecycle` does the channel work and
    `PlayerPlacement` the moves, `LiveMoves` answers the gateway's voice events.
    """

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
        naming: ChannelNaming | None = None,
        feed: MatchFeed | None = None,
        guessed: Callable[[str], None] | None = None,
    ) -> None:
        self._feed = feed
        self._guessed = guessed or (lambda outcome: None)
        self._store = store
        self._naming = naming if naming is not None else ChannelNaming()
        self._cache = cache
        self._links = KnownLinks(resolver)
        self._guild_id = guild_id
        self._close_delay_s = close_delay_s
        self._locks = KeyedLocks()
        self._placement = PlayerPlacement(discord, cache, lobby_channel_id)
        self._channels = ChannelLifecycle(store, cache, discord, self._placement, self._naming)
        self._live = LiveMoves(store, cache, discord, self._placement, self._locks)
        self.deletions_changed = asyncio.Event()
        """Set whenever a delayed deletion was scheduled or might be due."""

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
        after = decode_page_token(page_token, datetime, str) if page_token else None
        records, next_key = await self._store.list_open(page_size or DEFAULT_PAGE_SIZE, after)
        return records, encode_page_token(*next_key) if next_key else ""

    async def open_match(self, spec: MatchSpec) -> OpenResult:
        """Make sure each team with linked guild members has its channel; move those in voice.

        The registry lookup overlaps the statement that reads the match (which decides whether
        the event is stale) and, when the open is fresh, already records it with its intents
        (`_open_fresh`).
        """
        validate_spec(spec)
        with log_context(match_id=spec.match_id):
            async with self._locks.hold(spec.match_id):
                lookup = asyncio.ensure_future(self._links.resolve_players(player_ids(spec.teams)))
                lookup.add_done_callback(_retrieved)  # raised again where it is awaited
                try:
                    current, opened_at = await self._store.open_fresh(
                        spec.match_id,
                        self._guild_id,
                        spec.version,
                        spec.teams,
                        open_intents(spec.match_id, spec.teams, self._naming),
                    )
                    if open_is_stale(current, spec.version):
                        assert current is not None
                        logger.info(
                            "open version %s is stale (match %s at version %s)",
                            spec.version,
                            current.state,
                            current.version,
                        )
                        return OpenResult(OpenOutcome.STALE, current)
                    opened = current is None or current.state is MatchState.CLOSED
                    if opened_at is not None:
                        record, placements = await self._open_fresh(
                            spec, current, opened_at, lookup
                        )
                    else:
                        links = await lookup
                        await self._store.record_open(
                            spec.match_id, self._guild_id, spec.version, spec.teams
                        )
                        assert current is not None
                        record, placements = await self._in_line(current, spec.teams, links)
                finally:
                    lookup.cancel()  # when the open ended without its answer
                outcome = OpenOutcome.OPENED if opened else OpenOutcome.UPDATED
                if self._feed is not None:
                    self._feed.changed(spec.match_id, spec=spec)
                logger.info(
                    "match %s: %s channels, %s moved",
                    outcome.name.lower(),
                    len(record.channels),
                    sum(p.outcome is PlacementOutcome.MOVED for p in placements),
                )
                return OpenResult(outcome, record, placements)

    async def _in_line(
        self, current: MatchRecord, teams: Sequence[Team], links: dict[str, int]
    ) -> tuple[MatchRecord, tuple[Placement, ...]]:
        """Bring the channels a match has (or intends) in line with its teams and links, then
        move whoever waits in voice."""
        record = await self._channels.sync(current, teams, links)
        return record, await self._placement.place(record, teams, links)

    async def _open_fresh(
        self,
        spec: MatchSpec,
        previous: MatchRecord | None,
        opened_at: datetime,
        lookup: asyncio.Future[dict[str, int]],
    ) -> tuple[MatchRecord, tuple[Placement, ...]]:
        """Create the channels of a match opened fresh (no channel yet), then settle its
        intents beside the moves.

        The open and an intent per team, of unknown members, were written by the statement
        that read the match, while the registry was asked (`VoiceStore.open_fresh`). When
        every player has an answer remembered (`KnownLinks`) and the registry's answer is not
        here yet, the creates go out on those answers; otherwise once the answer is here. The
        answer decides all the same: when it differs from the guess, the channels made are
        settled as made and then brought in line with it (access rewritten, whoever lost it
        moved out, a team's missing channel made) before anyone is moved, as an open of a
        match with channels does. Every create still follows its intent's commit. Where a
        crash leaves things (reconciliation at the next start, or the event's retry, takes
        over; both ask the registry for the links the intents lack):

        - after the statement, before any create (the lookup, `in_guild`, the plan): an open
          match with intents of unknown members and no channel. The links resolved then
          decide: each team with linked guild members gets its channel made
          (`ChannelLifecycle._settle_unknown`), the others' intents go. As an interrupted open
          with known members, but with the links of that moment.
        - after a create was sent, before the settling statement committed: the same rows, and
          channels Discord may have made with the members planned here. Such a namesake is
          adopted only with its overwrites rewritten to the members resolved then (who the
          crashed create let in is not known; a rewrite replaces every member overwrite), and
          whoever sits in it without access is moved out; without MANAGE_ROLES it is replaced
          (noted as the channel replaced, a new one made, its occupants moved over, then
          deleted); a team with nobody now has its namesake deleted. So every channel made
          ends up tracked with its exact members, and a later unlink or roster change takes
          access away as for any channel. The registry failing after creates made on a guess
          leaves this case too (nothing settled on a guess the registry did not confirm).
        - after the settling statement: as a completed open.

        A stale open's statement writes nothing. A replica without the lease has the
        statement refused by the fencing trigger, before any create; one that loses the lease
        later has its Discord calls refused by the lease check and its settling by the
        trigger, and the new holder's reconciliation finds one of the cases above.

        The lookup or `in_guild` failing (nothing created) puts the match back as it was read
        (`VoiceStore.restore_match`), so a failed open changes nothing, as before; a crash or
        a failed restore leaves the first case above. A create failing settles the others as
        made and its own intent with its members (reconciliation creates it), then raises;
        after a wrong guess, bringing the match in line with the answer creates it instead.
        """
        guess = None if lookup.done() else self._links.guess(player_ids(spec.teams))
        if guess is None:
            await asyncio.wait([lookup])  # its answer or its error, raised below
        try:
            links = guess if guess is not None else lookup.result()
            in_guild = await self._channels.in_guild(spec.teams, links)
        except BaseException:
            await self._restore(spec.match_id, previous)
            raise
        plans = [
            p
            for p in plan_channels(spec.match_id, spec.teams, links, in_guild, self._naming)
            if p.members
        ]
        created, failure = await self._channels.create_all(plans)
        if guess is not None:
            try:
                links = await lookup
            except BaseException:
                self._guessed("unconfirmed")
                raise
            self._guessed("confirmed" if links == guess else "corrected")
            if links != guess:
                logger.info("links changed since last resolved: access follows the answer")
                await self._channels.settle(spec.match_id, plans, created)
                return await self._in_line(await self._must(spec.match_id), spec.teams, links)
        if failure is not None:
            await self._channels.settle(spec.match_id, plans, created)
            raise failure
        record = opened_record(spec, self._guild_id, opened_at, created)
        self._cache.put(record)
        # The moves go out before the settling statement is built and sent, which goes beside.
        placements, _ = await asyncio.gather(
            self._placement.start_placing(record, spec.teams, links),
            self._channels.settle(spec.match_id, plans, created),
        )
        return record, tuple(placements)

    async def _restore(self, match_id: str, previous: MatchRecord | None) -> None:
        """Undo an open that created nothing; on failure its intents stay for reconciliation."""
        try:
            await self._store.restore_match(match_id, previous)
        except Exception:
            logger.exception("the open failed and could not be undone; reconciliation finishes it")

    async def _members_now(self, record: MatchRecord) -> dict[str, frozenset[int]]:
        """Who may join each team's channel by the links the registry resolves now."""
        links = await self._links.resolve_players(player_ids(record.teams))
        in_guild = await self._channels.in_guild(record.teams, links)
        plans = plan_channels(record.match_id, record.teams, links, in_guild, self._naming)
        return {p.faction: p.members for p in plans}

    async def player_linked(self, discord_user_id: int, faceit_player_id: str) -> list[MatchRecord]:
        """Give a newly linked player access to their open matches and move them in.

        Access follows what the registry resolves now, not the link given: a link it does not
        resolve (unverified while links must be verified, or replaced since) gives nothing, so
        applying an old or repeated change is harmless.
        """
        self._links.changed(faceit_player_id)

        async def link(record: MatchRecord, links: dict[str, int]) -> MatchRecord:
            linked = links.get(faceit_player_id) == discord_user_id
            moving = {faceit_player_id: discord_user_id} if linked else None
            record = await self._channels.sync(record, record.teams, links, moving=moving)
            if linked:
                logger.info("player %s linked during the match: access given", discord_user_id)
            return record

        return await self._resync_open_matches_of(faceit_player_id, link)

    async def player_unlinked(self, faceit_player_id: str) -> list[MatchRecord]:
        """Take an unlinked player's access to their open matches' channels away.

        The links resolved now decide: the account may already be linked to someone else (a
        verified link that replaced an unverified claim), who keeps the access.
        """
        self._links.changed(faceit_player_id)

        async def unlink(record: MatchRecord, links: dict[str, int]) -> MatchRecord:
            record = await self._channels.sync(record, record.teams, links)
            logger.info("player %s unlinked during the match: access taken", faceit_player_id)
            return record

        return await self._resync_open_matches_of(faceit_player_id, unlink)

    async def resync_open_matches(self) -> list[MatchRecord]:
        """Bring every open match's access in line with the links the registry resolves now
        (after link changes were missed), moving in who waits in voice."""
        self._links.forget_all()

        async def resync(record: MatchRecord, links: dict[str, int]) -> MatchRecord:
            record = await self._channels.sync(record, record.teams, links, moving=links)
            logger.info("match access resynchronised with the registry's links")
            return record

        return await self._resync(self._store.open_matches, resync)

    async def _resync_open_matches_of(
        self,
        faceit_player_id: str,
        change: Callable[[MatchRecord, dict[str, int]], Awaitable[MatchRecord]],
    ) -> list[MatchRecord]:
        """Apply `change` (given the match and its current links) to each open match of a player.

        When the cache holds one open match of the player and nobody holds its lock, the
        registry is asked for the links of its roster at once, beside the read of the player's
        matches (see `_EarlyLinks`).
        """
        return await self._resync(
            lambda: self._store.open_matches_with_player(faceit_player_id),
            change,
            early_for=faceit_player_id,
        )

    def _ask_early(self, faceit_player_id: str) -> _EarlyLinks | None:
        cached = self._cache.with_player(faceit_player_id)
        if len(cached) != 1 or self._locks.in_use(cached[0].match_id):
            return None
        asked = player_ids(cached[0].teams)
        answer = asyncio.create_task(self._links.resolve_players(asked))
        answer.add_done_callback(_retrieved)  # an answer not used is dropped, its error too
        return _EarlyLinks(cached[0].match_id, asked, answer)

    async def _resync(
        self,
        read: Callable[[], Awaitable[Sequence[MatchRecord]]],
        change: Callable[[MatchRecord, dict[str, int]], Awaitable[MatchRecord]],
        *,
        early_for: str | None = None,
    ) -> list[MatchRecord]:
        """Apply `change` to each match `read` gives that is still open, under its lock.

        A match whose lock nobody took since the read is changed as read (every writer of a
        match holds its lock); another is read again under its lock, beside the registry's
        answer for the roster read before (or the early answer), and the registry is asked
        again when the roster changed in between.
        """
        updated = []
        with self._locks.watching() as watch:
            early = self._ask_early(early_for) if early_for is not None else None
            try:
                for candidate in await read():
                    with log_context(match_id=candidate.match_id):
                        async with self._locks.hold(candidate.match_id):
                            record = await self._resync_one(candidate, change, watch, early)
                    if record is not None:
                        updated.append(record)
            finally:
                if early is not None:
                    early.answer.cancel()  # when it was not used
        return updated

    async def _resync_one(
        self,
        candidate: MatchRecord,
        change: Callable[[MatchRecord, dict[str, int]], Awaitable[MatchRecord]],
        watch: LockWatch,
        early: _EarlyLinks | None,
    ) -> MatchRecord | None:
        match_id = candidate.match_id
        asked = player_ids(candidate.teams)
        as_read = not watch.touched(match_id)
        answer: Awaitable[dict[str, int]] = (
            early.answer
            if early is not None and as_read and early.serves(match_id, asked)
            else self._links.resolve_players(asked)
        )
        if as_read:
            record, links = candidate, await answer
        else:
            read, answered = await asyncio.gather(
                self._store.get_match(match_id), answer, return_exceptions=True
            )
            if isinstance(read, BaseException):
                raise read
            if read is None or read.state is not MatchState.OPEN:
                return None
            if isinstance(answered, BaseException):
                raise answered
            record, links = read, answered
        if player_ids(record.teams) != asked:
            links = await self._links.resolve_players(player_ids(record.teams))
        changed = await change(record, dict(links))
        if self._feed is not None:  # who is linked, or a replaced channel
            self._feed.changed(match_id)
        return changed

    async def close_match(
        self, match_id: str, version: int, reason: str, results: MatchResults | None = None
    ) -> CloseResult:
        """Close the match: occupants to the lobby, channels deleted now or after the grace;
        then the feed is told (with the results, which a repeated close may bring)."""
        result = await self._close(match_id, version, reason)
        if self._feed is not None and result.outcome is not CloseOutcome.STALE:
            self._feed.changed(match_id, results=results)
        return result

    async def _close(self, match_id: str, version: int, reason: str) -> CloseResult:
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
                    if outcome is CloseOutcome.ALREADY_CLOSED and _due(current):
                        deleted, moved = await self._channels.delete_all(current)
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
                    deleted, moved = await self._channels.delete_all(current)
                finally:
                    self.deletions_changed.set()
                logger.info("match closed: %s channels deleted", len(deleted))
                return CloseResult(CloseOutcome.CLOSED, await self._must(match_id), deleted, moved)

    async def finish_close(self, match_id: str) -> tuple[int, ...]:
        """Delete the channels of a closed match whose grace period is over; returns their ids."""
        with log_context(match_id=match_id):
            async with self._locks.hold(match_id):
                record = await self._store.get_match(match_id)
                if record is None or record.state is not MatchState.CLOSED or not _due(record):
                    return ()
                deleted, _ = await self._channels.delete_all(record)
                logger.info("grace period over: %s channels deleted", len(deleted))
                return deleted

    async def _must(self, match_id: str) -> MatchRecord:
        record = await self._store.get_match(match_id)
        assert record is not None
        return record

    async def read_to_reconcile(self) -> MatchesToReconcile:
        """The matches reconciliation looks at, in one statement, with a watch of their locks."""
        watch = self._locks.watch()
        try:
            open_matches, closing = await self._store.matches_to_reconcile()
        except BaseException:
            self._locks.unwatch(watch)
            raise
        return MatchesToReconcile(open_matches, closing, watch, self._locks.unwatch)

    async def reconcile_match(
        self, match_id: str, read: MatchesToReconcile | None = None
    ) -> list[str]:
        """Bring one match's channels in line with the database (no registry call unless an
        open was interrupted before its intents got their members); what was changed, one line
        each. The match is read under its lock unless `read` still holds it as it is."""
        with log_context(match_id=match_id):
            async with self._locks.hold(match_id):
                record = read.current(match_id) if read is not None else None
                if record is None:
                    record = await self._store.get_match(match_id)
                if record is None:
                    return []
                if record.state is MatchState.CLOSED:
                    if not _due(record):
                        return []
                    deleted, _ = await self._channels.delete_all(record)
                    return (
                        [f"deleted {len(deleted)} channels of the closed match"] if deleted else []
                    )
                # An open interrupted before its intents got their members: the registry says
                # who may join now (a lookup only then: a restart asks nothing else of it).
                unknown = any(not c.members_known for c in record.channels)
                planned = await self._members_now(record) if unknown else None
                changes = await self._channels.repair(record, planned)
                repaired = await self._must(match_id) if changes else record
                if self._feed is not None and repaired.channels != record.channels:
                    self._feed.changed(match_id)
                record = repaired
                self._cache.put(record)
                moved = await self._placement.place_waiting(record)
                if moved:
                    changes.append(f"moved {moved} waiting players into their team channel")
                return changes

    async def voice_changed(self, user_id: int, before: int | None, after: int | None) -> None:
        """A member's voice move, seen by the gateway (see `LiveMoves`)."""
        await self._live.voice_changed(user_id, before, after)


@dataclass(frozen=True)
class _EarlyLinks:
    """The registry asked for a match's roster's links before the match's lock was taken.

    It was asked after the link change arrived, so it knows of that change. Its answer serves
    only the roster it was asked for, and only while nobody took the match's lock since the
    watch it was asked under began: a holder in between may have applied links newer than
    this answer, which must not overwrite them.
    """

    match_id: str
    asked: list[str]
    answer: asyncio.Task[dict[str, int]]

    def serves(self, match_id: str, asked: list[str]) -> bool:
        """Whether the answer is for this match's roster as read."""
        return self.match_id == match_id and self.asked == asked


def _retrieved(answer: asyncio.Future[dict[str, int]]) -> None:
    """Mark an answer's error as seen (it is raised again where the answer is used)."""
    if not answer.cancelled():
        answer.exception()


def _due(record: MatchRecord) -> bool:
    """Whether a closed match has channels whose grace period is over."""
    if not record.channels:
        return False
    return record.delete_after is None or record.delete_after <= datetime.now(UTC)
