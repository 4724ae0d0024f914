"""Delivery claims a match with a lease: nothing is held open across the voice call."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC

import asyncpg
from faceitvoice.v1 import ingest_service_pb2

from services.ingest.delivery import DeliveryWorker
from services.ingest.delivery_sql import CLAIM
from services.ingest.metrics import IngestMetrics
from services.ingest.rosters import RosterCompleter
from tests.services.ingest.harness import lock_waits, running_ingest, simple_event
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


_EVENT = (
    "INSERT INTO ingest.events (event_id, event, match_id, version, action, status, source,"
    " match, next_attempt_at) VALUES ($1, $2, $3, $4, $5, 'PENDING', 'WEBHOOK', $6, now())"
)


async def test_one_statement_leases_a_match_and_reads_its_oldest_due_event(
    pool: asyncpg.Pool,
) -> None:
    """One statement leases the oldest due event's match and returns that event to deliver."""
    match = {"match_id": "m-a", "version": 1}
    await pool.execute(_EVENT, "a-1", "match_status_ready", "m-a", 1, "OPEN", match)
    await pool.execute(_EVENT, "a-2", "match_status_finished", "m-a", 2, "CLOSE", None)
    await pool.execute(_EVENT, "b-1", "match_status_ready", "m-b", 1, "OPEN", None)
    token = uuid.uuid4()
    claimed = await pool.fetchrow(CLAIM, [], token, 60.0)
    assert claimed is not None
    assert (claimed["match_id"], claimed["leased"], claimed["more"]) == ("m-a", True, True)
    assert (claimed["event_id"], claimed["version"], claimed["due"]) == ("a-1", 1, True)
    assert claimed["newer"] == 2
    assert claimed["earlier"] is None
    holder = await pool.fetchval(
        "SELECT claim_token FROM ingest.match_leases WHERE match_id = 'm-a'"
    )
    assert holder == token
    # Another claim skips the leased match; with both matches held, nothing is due.
    other = await pool.fetchrow(CLAIM, [], uuid.uuid4(), 60.0)
    assert other is not None
    assert (other["match_id"], other["leased"], other["event_id"]) == ("m-b", True, "b-1")
    assert await pool.fetchrow(CLAIM, [], uuid.uuid4(), 60.0) is None


async def test_a_claim_of_a_match_another_worker_holds_returns_it_as_busy(
    pool: asyncpg.Pool, fresh_database: str
) -> None:
    """A match leased while the claim chose it (a lease still running) comes back not leased."""
    await pool.execute(_EVENT, "c-1", "match_status_ready", "m-c", 1, "OPEN", None)
    other = await asyncpg.connect(fresh_database)
    try:
        async with other.transaction():
            # Another worker's lease, not committed when this claim chose the match: the
            # claim's insert waits for it, then finds it running.
            await other.execute(
                "INSERT INTO ingest.match_leases (match_id, claim_token, claimed_until)"
                " VALUES ('m-c', gen_random_uuid(), now() + interval '1 minute')"
            )
            claim = asyncio.create_task(pool.fetchrow(CLAIM, [], uuid.uuid4(), 60.0))
            await eventually(
                lambda: lock_waits(other), what="the claim waiting for the other lease"
            )
    finally:
        await other.close()
    claimed = await claim
    assert claimed is not None
    assert (claimed["match_id"], claimed["leased"], claimed["event_id"]) == ("m-c", False, None)


async def test_a_claim_under_way_leaves_the_next_claim_the_next_match(
    pool: asyncpg.Pool, fresh_database: str
) -> None:
    """Two claims at once lease two matches: the second does not wait for the first's match."""
    await pool.execute(_EVENT, "d-1", "match_status_ready", "m-d", 1, "OPEN", None)
    await pool.execute(_EVENT, "e-1", "match_status_ready", "m-e", 1, "OPEN", None)
    other = await asyncpg.connect(fresh_database)
    try:
        async with other.transaction():
            # Another worker's claim of the oldest due event, not committed yet.
            first = await other.fetchrow(CLAIM, [], uuid.uuid4(), 60.0)
            async with asyncio.timeout(5):
                second = await pool.fetchrow(CLAIM, [], uuid.uuid4(), 60.0)
    finally:
        await other.close()
    assert first is not None
    assert (first["match_id"], first["leased"]) == ("m-d", True)
    assert second is not None
    assert (second["match_id"], second["leased"], second["event_id"]) == ("m-e", True, "e-1")


async def test_a_claim_waiting_for_a_lease_being_settled_never_holds_the_settle_up(
    pool: asyncpg.Pool, fresh_database: str
) -> None:
    """A claim of a match whose run-out lease is being settled waits for the settle, not the
    other way round: the settle removes its lease, then updates the event (no deadlock)."""
    event_id = await pool.fetchval(
        _EVENT + " RETURNING id", "f-1", "match_status_ready", "m-f", 1, "OPEN", None
    )
    holder = uuid.uuid4()
    await pool.execute(
        "INSERT INTO ingest.match_leases (match_id, claim_token, claimed_until)"
        " VALUES ('m-f', $1, now() - interval '1 second')",
        holder,
    )
    settle = await asyncpg.connect(fresh_database)
    try:
        async with settle.transaction():
            # The settle's first step (SETTLE's CTE): the holder's lease removed.
            await settle.execute(
                "DELETE FROM ingest.match_leases WHERE match_id = 'm-f' AND claim_token = $1",
                holder,
            )
            claim = asyncio.create_task(pool.fetchrow(CLAIM, [], uuid.uuid4(), 60.0))
            await eventually(
                lambda: lock_waits(settle),
                what="the claim waiting for the settle's lease",
            )
            # Its second step, while the claim waits: the event updated.
            async with asyncio.timeout(5):
                await settle.execute(
                    "UPDATE ingest.events SET status = 'DELIVERED' WHERE id = $1", event_id
                )
    finally:
        await settle.close()
    claimed = await claim
    assert claimed is not None
    assert (claimed["match_id"], claimed["leased"], claimed["event_id"]) == ("m-f", False, None)
