"""The delivery worker against the VoiceService double: once, in order, with retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
import grpc
import pytest
from faceitvoice.v1 import ingest_service_pb2, voice_service_pb2_grpc

from services.ingest.delivery import DeliveryWorker
from services.ingest.metrics import IngestMetrics
from services.ingest.rosters import RosterCompleter
from services.ingest.voice_client import VoiceClient
from services.kit.logging import ContextFilter
from tests.services.ingest.harness import IngestHarness, real_delivery, running_ingest, simple_event
from tests.services.ingest.voice_double import VoiceDouble, VoiceDoubleServer
from tests.support import eventually

PENDING = ingest_service_pb2.EVENT_STATUS_PENDING
DELIVERED = ingest_service_pb2.EVENT_STATUS_DELIVERED
FAILED = ingest_service_pb2.EVENT_STATUS_FAILED
IGNORED = ingest_service_pb2.EVENT_STATUS_IGNORED
SUPERSEDED = ingest_service_pb2.EVENT_STATUS_SUPERSEDED


async def settled(ingest: IngestHarness, match_id: str = "", count: int = 1) -> bool:
    """Whether at least `count` events exist and none is pending."""
    events = await ingest.events(match_id)
    return len(events) >= count and all(e.status != PENDING for e in events)


async def statuses(ingest: IngestHarness, match_id: str) -> list[int]:
    """The statuses of a match's events, oldest first."""
    return [event.status for event in await ingest.events(match_id)]


async def test_ten_repeats_give_one_delivery(ingest: IngestHarness, voice: VoiceDouble) -> None:
    """Ten copies of one event (same id, or FACEIT retries with another id) reach voice once."""
    copies = [real_delivery() for _ in range(5)] + [
        real_delivery(event_id=f"retry-{n}", retry_count=n) for n in range(5)
    ]
    responses = await asyncio.gather(*(ingest.post(body) for body in copies))
    assert all(response.status_code == 200 for response in responses)
    assert sum(1 for response in responses if response.json().get("duplicate")) == 9
    await eventually(lambda: settled(ingest), what="the event delivered")
    assert [(call.rpc, call.version) for call in voice.calls] == [("OpenMatch", 16)]
    (event,) = await ingest.events()
    assert (event.status, event.attempts) == (DELIVERED, 1)


async def test_open_match_carries_the_normalised_match(
    ingest: IngestHarness, voice: VoiceDouble
) -> None:
    """OpenMatch gets the match id, version, organizer, entity and both rosters of the payload."""
    await ingest.post(real_delivery())
    await eventually(lambda: settled(ingest), what="the event delivered")
    (call,) = voice.calls
    match = call.request.match  # type: ignore[attr-defined]
    assert (match.match_id, match.version, match.organizer_id) == (
        "1-d785567a-fd28-42a4-af99-6b3cec21c6a9",
        16,
        "faceit",
    )
    assert match.entity.id == "42e160fc-2651-4fa5-9a9b-829199e27adb"
    assert [len(team.roster) for team in match.teams] == [5, 5]


async def test_finished_before_ready_opens_nothing(
    ingest: IngestHarness, voice: VoiceDouble
) -> None:
    """A close applied first makes the older ready SUPERSEDED: voice only sees CloseMatch."""
    await ingest.post(simple_event("match_status_finished", "m-late", version=5))
    await eventually(lambda: settled(ingest, "m-late"), what="the close delivered")
    await ingest.post(simple_event("match_status_ready", "m-late", version=3))
    await eventually(lambda: settled(ingest, "m-late", 2), what="the ready handled")
    assert [(c.rpc, c.version) for c in voice.calls] == [("CloseMatch", 5)]
    assert await statuses(ingest, "m-late") == [DELIVERED, SUPERSEDED]


async def test_pending_close_supersedes_a_pending_ready(
    ingest: IngestHarness, voice_server: VoiceDoubleServer
) -> None:
    """When ready and finished both wait (voice down), only the close is delivered."""
    await voice_server.stop()
    await ingest.post(simple_event("match_status_ready", "m-both", version=3))

    async def ready_failed_once() -> bool:
        events = await ingest.events("m-both")
        return bool(events) and events[0].attempts >= 1

    # Until its first try failed, the ready may still be on its way to voice, which could be
    # back by then: only a ready that waits for its retry is sure to meet the close.
    await eventually(ready_failed_once, timeout=15, what="the ready's first try failed")
    await ingest.post(simple_event("match_status_finished", "m-both", version=5))
    await voice_server.start()
    await eventually(lambda: settled(ingest, "m-both", 2), timeout=15, what="both handled")
    assert [(c.rpc, c.version) for c in voice_server.double.calls] == [("CloseMatch", 5)]
    assert await statuses(ingest, "m-both") == [SUPERSEDED, DELIVERED]


async def test_newer_open_after_close_reopens(ingest: IngestHarness, voice: VoiceDouble) -> None:
    """A close is final unless a strictly newer open arrives, which is delivered."""
    for event, version in [
        ("match_status_ready", 1),
        ("match_status_cancelled", 2),
        ("match_status_configuring", 3),
    ]:
        await ingest.post(simple_event(event, "m-re", version=version))
        await eventually(lambda: settled(ingest, "m-re"), what=f"{event} handled")
    assert [(c.rpc, c.version) for c in voice.calls] == [
        ("OpenMatch", 1),
        ("CloseMatch", 2),
        ("OpenMatch", 3),
    ]


async def test_voice_down_during_a_burst_then_up_delivers_each_once_in_order(
    ingest: IngestHarness, voice_server: VoiceDoubleServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Events queued while voice is down are retried (logged) and delivered once, in order."""
    caplog.set_level(logging.WARNING, logger="services.ingest.delivery")
    caplog.handler.addFilter(ContextFilter())
    await voice_server.stop()
    closing = {f"burst-{n}" for n in range(0, 8, 3)}
    for n in range(8):
        await ingest.post(simple_event("match_status_ready", f"burst-{n}", version=10))
    for match_id in sorted(closing):
        await ingest.post(simple_event("match_status_finished", match_id, version=20))

    async def retried() -> bool:
        return any(e.attempts >= 2 and e.status == PENDING for e in await ingest.events())

    await eventually(retried, timeout=15, what="a retried delivery")
    warning = next(r for r in caplog.records if getattr(r, "attempt", 0) >= 2)
    assert warning.match_id.startswith("burst-")  # type: ignore[attr-defined]
    assert warning.next_delay_s > 0  # type: ignore[attr-defined]
    assert "UNAVAILABLE" in warning.getMessage()

    await voice_server.start()
    await eventually(lambda: settled(ingest, count=11), timeout=20, what="the burst delivered")
    voice = voice_server.double
    for n in range(8):
        match_id = f"burst-{n}"
        calls = [(c.rpc, c.version) for c in voice.calls_of(match_id)]
        if match_id in closing:
            assert calls == [("CloseMatch", 20)]
            assert await statuses(ingest, match_id) == [SUPERSEDED, DELIVERED]
        else:
            assert calls == [("OpenMatch", 10)]
            assert await statuses(ingest, match_id) == [DELIVERED]


async def test_permanent_error_fails_the_event_until_retried(
    ingest: IngestHarness, voice: VoiceDouble
) -> None:
    """INVALID_ARGUMENT marks the event FAILED with the reason; RetryEvent queues it again."""
    voice.fail_with = grpc.StatusCode.INVALID_ARGUMENT
    await ingest.post(simple_event("match_status_ready", "m-bad", version=1))
    await eventually(lambda: settled(ingest, "m-bad"), what="the event failed")
    (event,) = await ingest.events("m-bad")
    assert event.status == FAILED
    assert "INVALID_ARGUMENT" in event.last_error
    assert event.attempts == 1

    voice.fail_with = None
    response = await ingest.ingest.RetryEvent(ingest_service_pb2.RetryEventRequest(id=event.id))
    assert response.event.status == PENDING
    await eventually(lambda: settled(ingest, "m-bad"), what="the retried event delivered")
    assert await statuses(ingest, "m-bad") == [DELIVERED]
    assert [c.rpc for c in voice.calls] == ["OpenMatch"]


async def test_a_voice_stopping_mid_call_is_retried_not_failed(
    ingest: IngestHarness, voice: VoiceDouble
) -> None:
    """CANCELLED (what a voice shutting down answers in-flight calls) is retried, then delivered."""
    voice.fail_with = grpc.StatusCode.CANCELLED
    await ingest.post(simple_event("match_status_ready", "m-stopping", version=1))

    async def retried() -> bool:
        return any(e.attempts >= 2 and e.status == PENDING for e in await ingest.events())

    await eventually(retried, timeout=15, what="a retried delivery")
    voice.fail_with = None
    await eventually(lambda: settled(ingest, "m-stopping"), timeout=20, what="the delivery")
    assert await statuses(ingest, "m-stopping") == [DELIVERED]


async def test_retry_event_refuses_events_that_have_not_failed(
    ingest: IngestHarness, voice: VoiceDouble
) -> None:
    """RetryEvent on a delivered event is FAILED_PRECONDITION; an unknown id is NOT_FOUND."""
    await ingest.post(simple_event("match_status_ready", "m-ok", version=1))
    await eventually(lambda: settled(ingest, "m-ok"), what="the event delivered")
    (event,) = await ingest.events("m-ok")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ingest.ingest.RetryEvent(ingest_service_pb2.RetryEventRequest(id=event.id))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await ingest.ingest.RetryEvent(ingest_service_pb2.RetryEventRequest(id=event.id + 100))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_events_filters_and_pages(ingest: IngestHarness, voice: VoiceDouble) -> None:
    """ListEvents pages newest first and filters by status and by match."""
    for n in range(5):
        await ingest.post(simple_event("match_status_ready", f"m-list-{n}", version=1))
    await ingest.post(real_delivery(event="match_demo_ready", event_id="demo"))
    await eventually(lambda: settled(ingest, count=6), what="all handled")
    seen: list[int] = []
    token = ""
    while True:
        page = await ingest.ingest.ListEvents(
            ingest_service_pb2.ListEventsRequest(page_size=2, page_token=token)
        )
        seen.extend(event.id for event in page.events)
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == 6
    ignored = await ingest.ingest.ListEvents(ingest_service_pb2.ListEventsRequest(status=IGNORED))
    assert [event.event for event in ignored.events] == ["match_demo_ready"]
    one = await ingest.ingest.ListEvents(ingest_service_pb2.ListEventsRequest(match_id="m-list-3"))
    assert [(e.match_id, e.status) for e in one.events] == [("m-list-3", DELIVERED)]
    for bad in (
        ingest_service_pb2.ListEventsRequest(page_size=501),
        ingest_service_pb2.ListEventsRequest(page_token="garbage"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ingest.ingest.ListEvents(bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_open_without_roster_is_held_until_rosters_arrive(
    ingest: IngestHarness, voice: VoiceDouble
) -> None:
    """Without an API key, match_object_created is not sent empty; the ready with rosters is."""
    created = real_delivery(
        event="match_object_created", event_id="created", payload={"version": 1}
    )
    del created["payload"]["teams"]
    await ingest.post(created)
    await eventually(lambda: settled(ingest), what="the created event handled")
    (event,) = await ingest.events()
    assert event.status == IGNORED
    assert "no roster" in event.last_error
    assert voice.calls == []
    await ingest.post(real_delivery())
    await eventually(lambda: settled(ingest, count=2), what="the ready delivered")
    assert [(c.rpc, c.version) for c in voice.calls] == [("OpenMatch", 16)]


async def test_notify_wakes_the_worker_without_waiting_for_the_sweep(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """With a 60 s sweep, a new event is still delivered at once (LISTEN/NOTIFY)."""
    async with running_ingest(
        fresh_database, voice_server.address, INGEST_SWEEP_INTERVAL_S=60
    ) as harness:
        await harness.post(simple_event("match_status_ready", "m-fast", version=1))
        await eventually(lambda: settled(harness, "m-fast"), timeout=5, what="prompt delivery")
    assert [c.match_id for c in voice_server.double.calls] == ["m-fast"]


async def test_two_replicas_deliver_each_event_once(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """Two ingest apps on one inbox never deliver the same event twice."""
    async with (
        running_ingest(fresh_database, voice_server.address) as first,
        running_ingest(fresh_database, voice_server.address) as second,
    ):
        posts = [
            (first if n % 2 else second).post(
                simple_event("match_status_ready", f"m-rep-{n}", version=1)
            )
            for n in range(20)
        ]
        await asyncio.gather(*posts)
        await eventually(lambda: settled(first, count=20), timeout=15, what="all delivered")
    matches = [call.match_id for call in voice_server.double.calls]
    assert sorted(matches) == sorted(f"m-rep-{n}" for n in range(20))


async def test_a_burst_of_matches_is_delivered_concurrently(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """Matches reach voice side by side (up to the concurrency), also those that arrive later."""
    double = voice_server.double
    double.gate = asyncio.Event()
    async with running_ingest(
        fresh_database, voice_server.address, INGEST_DELIVERY_CONCURRENCY=3, VOICE_DEADLINE_S=30
    ) as harness:
        # One after the other: each arrives while the ones before are still being delivered.
        for n in range(6):
            await harness.post(simple_event("match_status_ready", f"m-par-{n}", version=1))

        async def three_at_once() -> bool:
            return double.in_flight == 3

        await eventually(three_at_once, what="three OpenMatch calls in flight together")
        double.gate.set()
        await eventually(lambda: settled(harness, count=6), what="all six delivered")
    assert sorted(c.match_id for c in double.calls) == sorted(f"m-par-{n}" for n in range(6))


async def test_a_database_outage_logs_one_warning_per_sweep(
    voice_server: VoiceDoubleServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With the database unreachable the worker logs a WARNING per sweep, never an ERROR."""
    caplog.set_level(logging.DEBUG, logger="services.ingest.delivery")
    # A socket directory that does not exist: every connection attempt fails at once.
    pool = await asyncpg.create_pool(
        "postgresql://ingest@/ingest?host=/nonexistent-faceit-voice-socket-dir", min_size=0
    )
    interval = 0.1
    async with grpc.aio.insecure_channel(voice_server.address) as channel:
        worker = DeliveryWorker(
            pool,
            VoiceClient(voice_service_pb2_grpc.VoiceServiceStub(channel), deadline_s=1),
            RosterCompleter(None),
            IngestMetrics(),
            sweep_interval_s=interval,
        )
        started = time.monotonic()
        task = asyncio.create_task(worker.run())

        async def five_sweeps() -> bool:
            return sum("delivery sweep failed" in r.getMessage() for r in caplog.records) >= 5

        try:
            await eventually(five_sweeps, what="five failed sweeps")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elapsed = time.monotonic() - started
    await pool.close()
    records = [r for r in caplog.records if r.name == "services.ingest.delivery"]
    assert [r for r in records if r.levelno >= logging.ERROR or r.exc_info] == []
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(warnings) <= elapsed / interval + 2


async def test_a_failing_statement_is_an_error_not_an_outage(
    ingest: IngestHarness, voice: VoiceDouble, caplog: pytest.LogCaptureFixture
) -> None:
    """A delivery whose statement Postgres refuses is logged once with its traceback and counted."""
    caplog.set_level(logging.WARNING, logger="services.ingest.delivery")
    caplog.handler.addFilter(ContextFilter())
    await ingest.runtime.pool.execute(
        "ALTER TABLE ingest.events ADD CONSTRAINT no_delivery"
        " CHECK (status <> 'DELIVERED') NOT VALID"
    )
    await ingest.post(simple_event("match_status_ready", "m-refused", version=1))
    await eventually(lambda: _opened(voice, "m-refused"), what="the OpenMatch call")

    async def counted() -> bool:
        text = (await ingest.http.get("/metrics")).text
        return 'ingest_internal_errors_total{component="delivery"} 1.0' in text

    await eventually(counted, what="the error counted")
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is not None
    assert "no_delivery" in str(error.exc_info[1])
    assert error.match_id == "m-refused"  # type: ignore[attr-defined]
    assert not any("sweep failed" in r.getMessage() for r in caplog.records)


async def _opened(voice: VoiceDouble, match_id: str) -> bool:
    return any(call.rpc == "OpenMatch" for call in voice.calls_of(match_id))
