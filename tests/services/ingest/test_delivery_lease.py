"""Delivery claims a match with a lease: nothing is held open across the voice call."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC

import asyncpg
from faceitvoice.v1 import ingest_service_pb2

from services.ingest.delivery import DeliveryWorker
from services.ingest.metrics import IngestMetrics
from services.ingest.rosters import RosterCompleter
from tests.services.ingest.harness import running_ingest, simple_event
from tests.services.ingest.test_delivery import settled
from tests.services.ingest.voice_double import VoiceDoubleServer
from tests.support import eventually

# More deliveries at once than the process's pool has connections (10): with a connection
# held across each voice call, the twelfth would wait for one, and so would /readyz.
CONCURRENCY = 12


async def _open_transactions(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
        )
        return count
    finally:
        await connection.close()


async def test_slow_voice_pins_nothing_and_webhooks_are_acknowledged_promptly(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """Voice taking 5 s a call with many matches pending: acks stay fast, no transaction waits."""
    double = voice_server.double
    double.delay_s = 5.0
    async with running_ingest(
        fresh_database,
        voice_server.address,
        INGEST_DELIVERY_CONCURRENCY=CONCURRENCY,
        VOICE_DEADLINE_S=30,
    ) as harness:
        for n in range(2 * CONCURRENCY):
            await harness.post(simple_event("match_status_ready", f"m-slow-{n}", version=1))

        async def all_claimers_in_voice() -> bool:
            return double.in_flight == CONCURRENCY

        await eventually(all_claimers_in_voice, what=f"{CONCURRENCY} OpenMatch calls in flight")
        acks = []
        for n in range(50):
            started = time.perf_counter()
            response = await harness.post(simple_event("match_status_ready", f"m-new-{n}"))
            acks.append(time.perf_counter() - started)
            assert response.status_code == 200
        ready = await harness.http.get("/readyz")
        listed = await harness.ingest.ListEvents(
            ingest_service_pb2.ListEventsRequest(page_size=5), timeout=1
        )
        open_transactions = await _open_transactions(fresh_database)
        assert double.in_flight == CONCURRENCY  # still all inside the slow voice calls
    acks.sort()
    assert acks[int(len(acks) * 0.99) - 1] < 1.0, acks
    assert ready.status_code == 200, ready.json()
    assert len(listed.events) == 5
    assert open_transactions == 0


async def test_a_lease_left_by_a_dead_worker_expires_and_the_event_is_delivered(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """An event whose match a dead worker still leases is delivered once that lease runs out."""
    async with running_ingest(
        fresh_database, voice_server.address, INGEST_SWEEP_INTERVAL_S=0.2
    ) as harness:
        # What a worker that died while delivering leaves behind: its lease on the match.
        expires = await harness.runtime.pool.fetchval(
            "INSERT INTO ingest.match_leases (match_id, claim_token, claimed_until)"
            " VALUES ('m-dead', gen_random_uuid(), now() + interval '2 seconds')"
            " RETURNING claimed_until"
        )
        await harness.post(simple_event("match_status_ready", "m-dead", version=1))
        await eventually(lambda: settled(harness, "m-dead"), what="the event delivered")
        (event,) = await harness.events("m-dead")
        assert event.status == ingest_service_pb2.EVENT_STATUS_DELIVERED
        assert event.processed_at.ToDatetime(tzinfo=UTC) >= expires
    assert [call.match_id for call in voice_server.double.calls] == ["m-dead"]


async def test_an_older_event_arriving_mid_delivery_waits_for_the_match(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """While a match's event is at voice, an older event of it that arrives then is not sent."""
    double = voice_server.double
    double.gate = asyncio.Event()
    async with running_ingest(fresh_database, voice_server.address, VOICE_DEADLINE_S=30) as harness:
        await harness.post(simple_event("match_status_ready", "m-order", version=5))

        async def at_voice() -> bool:
            return double.in_flight == 1

        await eventually(at_voice, what="the first event at voice")
        await harness.post(simple_event("match_status_configuring", "m-order", version=3))
        # Another replica's worker finds nothing it may deliver: the match is leased.
        runtime = harness.runtime
        other = DeliveryWorker(runtime.pool, runtime.voice, RosterCompleter(None), IngestMetrics())
        assert await other.drain() == 0
        assert double.in_flight == 1
        double.gate.set()
        await eventually(lambda: settled(harness, "m-order", 2), what="both handled")
    assert [(c.rpc, c.version) for c in double.calls] == [("OpenMatch", 5)]
