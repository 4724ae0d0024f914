"""The reconciliation poller: FACEIT Data API state into inbox events that webhooks missed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
from services.ingest.inbox import DATABASE_ERRORS, Inbox
from services.ingest.match_json import match_to_json
from services.ingest.metrics import IngestMetrics
from services.ingest.voice_client import VoiceClient
from services.kit.faceit_api import MAX_PAGE_SIZE, FaceitApiClient, FaceitApiError, FaceitMatch
from services.kit.logging import log_context

logger = logging.getLogger(__name__)


class BudgetExhausted(Exception):
    """The poll used every FACEIT request it may make in one run."""


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
    `max_requests` Data API requests and reports when that budget ran out.
    """

    def __init__(
        self,
        faceit: FaceitApiClient | None,
        voice: VoiceClient,
        inbox: Inbox,
        metrics: IngestMetrics,
        *,
        hub_ids: Sequence[str],
        max_requests: int,
    ) -> None:
        self._faceit = faceit
        self._voice = voice
        self._inbox = inbox
        self._metrics = metrics
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
        try:
            for hub_id in self._hub_ids:
                await self._poll_hub(self._faceit, hub_id, open_in_voice or {}, report)
            if open_in_voice is not None:
                for match_id in open_in_voice:
                    await self._check_open(self._faceit, match_id, report)
        except BudgetExhausted:
            message = (
                f"request budget of {self._max_requests} FACEIT requests "
                "(FACEIT_POLL_MAX_REQUESTS) exhausted; the rest waits for the next poll"
            )
            logger.warning("%s", message)
            report.errors.append(message)
        except DATABASE_ERRORS as error:
            report.errors.append(f"the inbox could not store poll events: {error!r}")

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
        if await self._queue(event):
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
        if await self._queue(event):
            report.close_events_queued += 1

    async def _queue(self, event: InboundEvent) -> bool:
        with log_context(match_id=event.match_id, event_id=event.event_id):
            result = await self._inbox.store(event)
            if not result.duplicate:
                logger.info("poll queued %s (version %s)", event.event, event.version)
        return not result.duplicate
