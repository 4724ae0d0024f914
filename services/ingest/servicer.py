"""IngestServiceServicer: the inbox and the poller over gRPC."""

from __future__ import annotations

import grpc
from faceitvoice.v1 import ingest_service_pb2, ingest_service_pb2_grpc

from services.ingest.delivery import DeliveryWorker
from services.ingest.poller import Poller, PollReport
from services.ingest.store import Inbox, InboxRow, Status
from services.kit.errors import InvalidArgument
from services.kit.limits import MAX_PAGE_TOKEN_BYTES
from services.kit.paging import decode_page_token, encode_page_token
from services.kit.timestamps import to_timestamp
from services.kit.validation import check_id

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


def event_to_pb(row: InboxRow) -> ingest_service_pb2.InboxEvent:
    """The proto form of an inbox row."""
    return ingest_service_pb2.InboxEvent(
        id=row.id,
        event_id=row.event_id,
        event=row.event,
        match_id=row.match_id,
        version=row.version,
        status=ingest_service_pb2.EventStatus.Value(f"EVENT_STATUS_{row.status.value}"),
        source=ingest_service_pb2.EventSource.Value(f"EVENT_SOURCE_{row.source.value}"),
        attempts=row.attempts,
        last_error=row.last_error,
        received_at=to_timestamp(row.received_at),
        processed_at=to_timestamp(row.processed_at),
        next_attempt_at=to_timestamp(row.next_attempt_at if row.status is Status.PENDING else None),
    )


def report_to_pb(report: PollReport) -> ingest_service_pb2.RunPollResponse:
    """The proto form of a poll report."""
    return ingest_service_pb2.RunPollResponse(
        hubs_polled=report.hubs_polled,
        live_matches_seen=report.live_matches_seen,
        open_events_queued=report.open_events_queued,
        open_matches_checked=report.open_matches_checked,
        close_events_queued=report.close_events_queued,
        api_requests=report.api_requests,
        errors=report.errors,
        started_at=to_timestamp(report.started_at),
        duration_ms=report.duration_ms,
    )


def _status_filter(value: ingest_service_pb2.EventStatus.ValueType) -> Status | None:
    if value == ingest_service_pb2.EVENT_STATUS_UNSPECIFIED:
        return None
    try:
        name = ingest_service_pb2.EventStatus.Name(value)
    except ValueError:
        raise InvalidArgument(f"unknown status {value}") from None
    return Status(name.removeprefix("EVENT_STATUS_"))


class IngestServiceServicer(ingest_service_pb2_grpc.IngestServiceServicer):
    """ListEvents, RetryEvent and RunPoll; domain errors are mapped by the kit."""

    def __init__(self, inbox: Inbox, poller: Poller, worker: DeliveryWorker) -> None:
        self._inbox = inbox
        self._poller = poller
        self._worker = worker

    async def ListEvents(
        self, request: ingest_service_pb2.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> ingest_service_pb2.ListEventsResponse:
        """One page of inbox events, newest first."""
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be 1..{MAX_PAGE_SIZE}, got {request.page_size}")
        page_token = check_id(request.page_token, "page_token", max_bytes=MAX_PAGE_TOKEN_BYTES)
        rows = await self._inbox.list_events(
            status=_status_filter(request.status),
            match_id=check_id(request.match_id, "match_id"),
            limit=size + 1,
            before_id=decode_page_token(page_token, int)[0] if page_token else None,
        )
        page = rows[:size]
        token = encode_page_token(page[-1].id) if len(rows) > size else ""
        return ingest_service_pb2.ListEventsResponse(
            events=[event_to_pb(row) for row in page], next_page_token=token
        )

    async def RetryEvent(
        self, request: ingest_service_pb2.RetryEventRequest, context: grpc.aio.ServicerContext
    ) -> ingest_service_pb2.RetryEventResponse:
        """Put a FAILED event back in the queue."""
        if request.id <= 0:
            raise InvalidArgument("id is required")
        row = await self._inbox.retry(request.id)
        self._worker.wake()
        return ingest_service_pb2.RetryEventResponse(event=event_to_pb(row))

    async def RunPoll(
        self, request: ingest_service_pb2.RunPollRequest, context: grpc.aio.ServicerContext
    ) -> ingest_service_pb2.RunPollResponse:
        """Run the reconciliation poll now and report it."""
        return report_to_pb(await self._poller.run())
