"""The reconciliation poller: FACEIT Data API state into inbox events that webhooks missed."""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from faceitvoice.v1 import match_pb2, voice_service_pb2

from services.ingest.events import Action, InboundEvent, Source
from services.ingest.faceit_matches import (
    OVER_STATUSES,
    event_for_status,
    has_roster,
    match_from_api,
    poll_event_id,
    rosters_of,
)
from services.ingest.metrics import IngestMetrics
from services.ingest.store import Inbox, PollCursor
from services.ingest.voice_client import VoiceClient
from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.faceit_api import FaceitApiClient, FaceitApiError
from services.kit.faceit_models import FaceitMatch
from services.kit.faceit_retry import RequestBudget, RequestBudgetExhausted, request_budget
from services.kit.logging import log_context
from services.kit.match_json import match_to_json

logger = logging.getLogger(__name__)


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

    One poll runs at a time (the scheduler and RunPoll share a lock); each sends at most
    `max_requests` HTTP requests to the Data API (retries included) and reports when that
    budget ran out. The open matches are checked in a rotation kept by `cursor`: each poll
    goes on where the last one stopped.

    The Data API's match `version` is a counter of its own (2 from the first status change
    on), not the webhooks' `payload.version`: the two are never compared. A poll decides from
    the status and rosters it reads, and its events carry the version voice holds for the
    match (0 for one voice lacks), so that nothing downstream compares across the sources.
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
            with request_budget(self._max_requests) as budget:
                await self._poll(report, budget)
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

    async def _poll(self, report: PollReport, budget: RequestBudget) -> None:
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
                    await self._check_open(self._faceit, open_in_voice[match_id], report)
                    checked = match_id
        except RequestBudgetExhausted:
            message = (
                f"request budget of {self._max_requests} FACEIT requests "
                "(FACEIT_POLL_MAX_REQUESTS) exhausted; the rest waits for the next poll"
            )
            logger.warning("%s", message)
            report.errors.append(message)
        except Exception as error:
            self._failed(error, report)
            return
        finally:
            report.api_requests = budget.sent
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

    async def _poll_hub(
        self,
        faceit: FaceitApiClient,
        hub_id: str,
        open_in_voice: dict[str, voice_service_pb2.VoiceMatch],
        report: PollReport,
    ) -> None:
        report.hubs_polled += 1
        try:
            async for match in faceit.iter_hub_matches(hub_id, "ongoing"):
                await self._consider_live(match, hub_id, open_in_voice, report)
        except FaceitApiError as error:
            report.errors.append(f"hub {hub_id}: {error.message}")

    async def _consider_live(
        self,
        match: FaceitMatch,
        hub_id: str,
        open_in_voice: dict[str, voice_service_pb2.VoiceMatch],
        report: PollReport,
    ) -> None:
        status = match.status.strip().upper()
        known = open_in_voice.get(match.match_id)
        held = known.version if known is not None else 0
        normalised = match_from_api(match, version=held, hub_id=hub_id)
        if status in OVER_STATUSES or not has_roster(list(normalised.teams)):
            return
        report.live_matches_seen += 1
        if known is not None and await self._sent_to_voice(normalised):
            return
        await self._queue(_poll_event(Action.OPEN, status, normalised, hub_id=hub_id), report)

    async def _sent_to_voice(self, match: match_pb2.Match) -> bool:
        """Whether the match's latest open on its way to voice has the rosters of `match`."""
        sent = await self._inbox.last_open(match.match_id)
        return sent is not None and rosters_of(sent.teams) == rosters_of(match.teams)

    async def _check_open(
        self, faceit: FaceitApiClient, known: voice_service_pb2.VoiceMatch, report: PollReport
    ) -> None:
        report.open_matches_checked += 1
        try:
            match = await faceit.get_match(known.match_id)
        except FaceitApiError as error:
            report.errors.append(f"match {known.match_id}: {error.message}")
            return
        status = match.status.strip().upper()
        if status not in OVER_STATUSES:
            return
        # The ending closes the match whatever version either source gives: the close carries
        # the version voice holds, so neither the inbox nor voice finds it older than the open.
        normalised = match_from_api(match, version=known.version)
        await self._queue(_poll_event(Action.CLOSE, status, normalised), report)

    async def _queue(self, event: InboundEvent, report: PollReport) -> None:
        """Store `event`, counted when new; only the database being unavailable ends the poll."""
        with log_context(match_id=event.match_id, event_id=event.event_id):
            try:
                result = await self._inbox.store(event)
            except DATABASE_UNAVAILABLE:
                raise
            except Exception as error:
                logger.exception("poll could not queue %s (version %s)", event.event, event.version)
                self._metrics.internal_errors.labels(component="poll").inc()
                report.errors.append(f"match {event.match_id}: not queued: {error!r}")
                return
            if result.duplicate:
                return
            logger.info("poll queued %s (version %s)", event.event, event.version)
        if event.action is Action.OPEN:
            report.open_events_queued += 1
        else:
            report.close_events_queued += 1


def _poll_event(
    action: Action, status: str, match: match_pb2.Match, *, hub_id: str = ""
) -> InboundEvent:
    """The inbox event of what a poll read: `match` at the version voice holds."""
    event = event_for_status(status)
    return InboundEvent(
        event_id=poll_event_id(match.match_id, event, match.version, rosters_of(match.teams)),
        event=event,
        action=action,
        source=Source.POLL,
        match_id=match.match_id,
        version=match.version,
        organizer_id=match.organizer_id,
        hub_id=hub_id,
        match_json=match_to_json(match),
    )
