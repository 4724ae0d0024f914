"""The reconciliation poller: FACEIT Data API state into inbox events that webhooks missed."""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import grpc
from faceitvoice.v1 import voice_service_pb2

from services.ingest.events import Action, InboundEvent, Source, poll_event_id
from services.ingest.faceit_matches import (
    LIVE_STATUSES,
    OVER_STATUSES,
    event_for_status,
    has_roster,
    match_from_api,
)
from services.ingest.inbox import Inbox
from services.ingest.match_json import match_to_json
from services.ingest.metrics import IngestMetrics
from services.ingest.voice_client import VoiceClient
from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.faceit_api import MAX_PAGE_SIZE, FaceitApiClient, FaceitApiError, FaceitMatch
from services.kit.logging import log_context

logger = logging.getLogger(__name__)


class BudgetExhausted(Exception):
    """The poll used every FACEIT request it may make in one run."""


class PollCursor:
    """The last open match a poll checked (`ingest.poll_cursor`): where the next one starts."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self) -> str:
        """The match id the last poll checked last ("" before the first)."""
        value: str | None = await self._pool.fetchval(
            "SELECT last_checked_match_id FROM ingest.poll_cursor"
        )
        return value or ""

    async def save(self, match_id: str) -> None:
        """Remember `match_id` as the last one checked."""
        await self._pool.execute(
            "INSERT INTO ingest.poll_cursor (last_checked_match_id) VALUES ($1)"
            " ON CONFLICT (singleton)"
            " DO UPDATE SET last_checked_match_id = excluded.last_checked_match_id",
            match_id,
        )


def rotation(match_ids: Iterable[str], after: str) -> list[str]:
    """`match_ids` in id order, starting after `after` and wrapping around to the ones before."""
    ordered = sorted(set(match_ids))
    start = bisect.bisect_right(ordered, after)
    return ordered[start:] + ordered[:start]


@dataclass
class PollReport:
    """What one poll did (the fields of RunPollResponse)."""

    started_at: datetime
    hubs_polled: int = 0
    live_matches_seen: int = 0
    open_events_queued: int = 0
    open_matches_checked: int = 0
    close_events_queued: int = 0
    api_requests: int = 0
    errors: list[str] = field(default_factory=list)
    duration_ms: int = 0


class Poller:
    """Queues open events for live hub matches voice lacks and close events for ended ones.

    One poll runs at a time (the scheduler and RunPoll share a lock); each makes at most
    `max_requests` Data API requests and reports when that budget ran out. The open matches
    are checked in a rotation kept by `cursor`: each poll goes on where the last one stopped.
    """

    def __init__(
        self,
        faceit: FaceitApiClient | None,
        voice: VoiceClient,
        inbox: Inbox,
        metrics: IngestMetrics,
        cursor: PollCursor,
        *,
        hub_ids: Sequence[str],
        max_requests: int,
    ) -> None:
        self._faceit = faceit
        self._voice = voice
        self._inbox = inbox
        self._metrics = metrics
        self._cursor = cursor
        self._hub_ids = tuple(hub_ids)
        self._max_requests = max_requests
        self._lock = asyncio.Lock()

    async def run(self) -> PollReport:
        """Poll now (after any poll in progress) and report what was done."""
        async with self._lock:
            report = PollReport(started_at=datetime.now(UTC))
            started = time.perf_counter()
            await self._poll(report)
            report.duration_ms = int((time.perf_counter() - started) * 1000)
        self._metrics.poll_runs.labels(outcome="errors" if report.errors else "ok").inc()
        logger.info(
            "poll done: %s hubs, %s live matches, %s opens and %s closes queued, "
            "%s open matches checked, %s API requests, %s errors",
            report.hubs_polled,
            report.live_matches_seen,
            report.open_events_queued,
            report.close_events_queued,
            report.open_matches_checked,
            report.api_requests,
            len(report.errors),
        )
        return report

    async def run_scheduled(self) -> None:
        """The scheduler's job: a poll whose failures are logged, never raised into APScheduler."""
        try:
            await self.run()
        except Exception:
            logger.exception("scheduled poll failed")

    async def _poll(self, report: PollReport) -> None:
        if self._faceit is None:
            report.errors.append("FACEIT_API_KEY is not set: the Data API cannot be polled")
            return
        open_in_voice: dict[str, voice_service_pb2.VoiceMatch] | None
        try:
            open_in_voice = {m.match_id: m for m in await self._voice.list_open_matches()}
        except grpc.aio.AioRpcError as error:
            report.errors.append(f"voice ListMatches failed: {error.code().name} {error.details()}")
            open_in_voice = None
        checked = ""
        try:
            for hub_id in self._hub_ids:
                await self._poll_hub(self._faceit, hub_id, open_in_voice or {}, report)
            if open_in_voice is not None:
                for match_id in rotation(open_in_voice, await self._cursor.load()):
                    await self._check_open(self._faceit, match_id, report)
                    checked = match_id
        except BudgetExhausted:
            message = (
                f"request budget of {self._max_requests} FACEIT requests "
                "(FACEIT_POLL_MAX_REQUESTS) exhausted; the rest waits for the next poll"
            )
            logger.warning("%s", message)
            report.errors.append(message)
        except Exception as error:
            self._failed(error, report)
            return
        if checked:
            try:
                await self._cursor.save(checked)
            except Exception as error:
                self._failed(error, report)

    def _failed(self, error: Exception, report: PollReport) -> None:
        """Report why the poll stopped; unless the database is down, log it once and count it."""
        if isinstance(error, DATABASE_UNAVAILABLE):
            report.errors.append(f"the database is unavailable: {error!r}")
            return
        logger.error("poll failed unexpectedly", exc_info=error)
        self._metrics.internal_errors.labels(component="poll").inc()
        report.errors.append(f"poll failed: {error!r}")

    def _spend(self, report: PollReport) -> None:
        if report.api_requests >= self._max_requests:
            raise BudgetExhausted
        report.api_requests += 1

    async def _poll_hub(
        self,
        faceit: FaceitApiClient,
        hub_id: str,
        open_in_voice: dict[str, voice_service_pb2.VoiceMatch],
        report: PollReport,
    ) -> None:
        report.hubs_polled += 1
        offset = 0
        while True:
            self._spend(report)
            try:
                page = await faceit.list_hub_matches(hub_id, "ongoing", offset, MAX_PAGE_SIZE)
            except FaceitApiError as error:
                report.errors.append(f"hub {hub_id}: {error.message}")
                return
            for match in page.items:
                await self._consider_live(match, hub_id, open_in_voice, report)
            if len(page.items) < MAX_PAGE_SIZE:
                return
            offset += len(page.items)

    async def _consider_live(
        self,
        match: FaceitMatch,
        hub_id: str,
        open_in_voice: dict[str, voice_service_pb2.VoiceMatch],
        report: PollReport,
    ) -> None:
        status = match.status.strip().upper()
        normalised = match_from_api(match, hub_id=hub_id)
        if status not in LIVE_STATUSES or not has_roster(list(normalised.teams)):
            return
        report.live_matches_seen += 1
        known = open_in_voice.get(match.match_id)
        if known is not None and known.version >= match.version:
            return
        event = InboundEvent(
            event_id=poll_event_id(match.match_id, event_for_status(status), match.version),
            event=event_for_status(status),
            action=Action.OPEN,
            source=Source.POLL,
            match_id=match.match_id,
            version=match.version,
            organizer_id=match.organizer_id,
            hub_id=hub_id,
            match_json=match_to_json(normalised),
        )
        if await self._queue(event, report):
            report.open_events_queued += 1

    async def _check_open(self, faceit: FaceitApiClient, match_id: str, report: PollReport) -> None:
        report.open_matches_checked += 1
        self._spend(report)
        try:
            match = await faceit.get_match(match_id)
        except FaceitApiError as error:
            report.errors.append(f"match {match_id}: {error.message}")
            return
        status = match.status.strip().upper()
        if status not in OVER_STATUSES:
            return
        event = InboundEvent(
            event_id=poll_event_id(match_id, event_for_status(status), match.version),
            event=event_for_status(status),
            action=Action.CLOSE,
            source=Source.POLL,
            match_id=match_id,
            version=match.version,
            organizer_id=match.organizer_id,
            match_json=match_to_json(match_from_api(match)),
        )
        if await self._queue(event, report):
            report.close_events_queued += 1

    async def _queue(self, event: InboundEvent, report: PollReport) -> bool:
        """Store `event`; whether it is new. Only the database being unavailable ends the poll."""
        with log_context(match_id=event.match_id, event_id=event.event_id):
            try:
                result = await self._inbox.store(event)
            except DATABASE_UNAVAILABLE:
                raise
            except Exception as error:
                logger.exception("poll could not queue %s (version %s)", event.event, event.version)
                self._metrics.internal_errors.labels(component="poll").inc()
                report.errors.append(f"match {event.match_id}: not queued: {error!r}")
                return False
            if not result.duplicate:
                logger.info("poll queued %s (version %s)", event.event, event.version)
        return not result.duplicate
