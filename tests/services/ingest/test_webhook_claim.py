"""A webhook's store takes its match's delivery lease and hands the event to the worker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC

import asyncpg
import pytest
from faceitvoice.v1 import ingest_service_pb2, match_pb2

from services.ingest.events import Action, InboundEvent, Source
from services.ingest.store import NOTIFY_CHANNEL, Inbox, LeaseOffer
from services.kit.match_json import match_to_json
from tests.services.ingest.harness import lock_waits, running_ingest, simple_event
from tests.services.ingest.test_delivery import settled
from tests.services.ingest.voice_double import VoiceDoubleServer
from tests.support import eventually

DELIVERED = ingest_service_pb2.EVENT_STATUS_DELIVERED

_EVENT = (
    "INSERT INTO ingest.events (event_id, event, match_id, version, action, status, source,"
    " match, next_attempt_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, 'WEBHOOK', $7, now() + make_interval(secs => $8))"
)


def _event(match_id: str, version: int, event: str = "match_status_ready") -> InboundEvent:
    return InboundEvent(
        event_id=f"{match_id}-{event}-{version}",
        event=event,
        action=Action.OPEN if event == "match_status_ready" else Action.CLOSE,
        source=Source.WEBHOOK,
        match_id=match_id,
        version=version,
        match_json=match_to_json(_match(match_id, version)),
    )


def _match(match_id: str, version: int) -> match_pb2.Match:
    """A match with a player in each team (a roster to open channels for)."""
    teams = [
        match_pb2.Team(faction=faction, roster=[match_pb2.Player(faceit_player_id=faction)])
        for faction in ("faction1", "faction2")
    ]
    return match_pb2.Match(match_id=match_id, version=version, teams=teams)


def _offer(seconds: float = 60.0) -> LeaseOffer:
    return LeaseOffer(uuid.uuid4(), seconds)


async def _holder(pool: asyncpg.Pool, match_id: str) -> uuid.UUID | None:
    token: uuid.UUID | None = await pool.fetchval(
        "SELECT claim_token FROM ingest.match_leases WHERE match_id = $1", match_id
    )
    return token


async def test_a_store_offered_a_lease_leases_the_match_and_notifies_nobody(
    pool: asyncpg.Pool, fresh_database: str
) -> None:
    """The claimed event's match is leased with the offered token, and no NOTIFY goes out."""
    received: list[str] = []
    listener = await asyncpg.connect(fresh_database)
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: received.append(args[3]))
    try:
        inbox = Inbox(pool)
        offer = _offer()
        result = await inbox.store(_event("m-claimed", 1), lease=offer)
        await inbox.store(_event("m-after", 1))

        async def one() -> bool:
            return len(received) >= 1

        await eventually(one, what="the notification of the unclaimed event")
    finally:
        await listener.close()
    # Notifications come in commit order: one of the claimed event would be first.
    assert received == ["m-after"]
    assert result.claimed is not None
    row = result.claimed.row()
    assert (row.id, row.match_id, row.version, row.attempts) == (result.row_id, "m-claimed", 1, 0)
    assert row.match == _match("m-claimed", 1)
    assert (result.claimed.newer, result.claimed.earlier()) == (None, [])
    assert await _holder(pool, "m-claimed") == offer.token
    left = await pool.fetchval(
        "SELECT extract(epoch FROM claimed_until - now()) FROM ingest.match_leases"
    )
    assert 55 < left <= 60


@pytest.mark.parametrize("due_in_s", [0.0, 60.0], ids=["due", "waiting-for-retry"])
async def test_an_earlier_pending_event_keeps_the_store_from_leasing_the_match(
    pool: asyncpg.Pool, due_in_s: float
) -> None:
    """With an older event of the match pending (due or not), the new one is left to the claim."""
    await pool.execute(
        _EVENT, "e-1", "match_status_ready", "m-older", 1, "OPEN", "PENDING", None, due_in_s
    )
    result = await Inbox(pool).store(_event("m-older", 2, "match_status_finished"), lease=_offer())
    assert result.row_id is not None and result.claimed is None
    assert await _holder(pool, "m-older") is None


async def test_events_of_one_match_in_one_batch_lease_nothing(
    pool: asyncpg.Pool, fresh_database: str
) -> None:
    """Two events of a match stored in one statement: neither leases it (the claim orders them)."""
    store_pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=1)
    try:
        inbox = Inbox(pool, store_pool=store_pool)
        held = await store_pool.acquire()
        stores = [
            asyncio.create_task(
                inbox.store(_event("m-batch", 2, "match_status_finished"), lease=_offer())
            ),
            asyncio.create_task(inbox.store(_event("m-batch", 1), lease=_offer())),
        ]

        async def both_wait() -> bool:
            return inbox.waiting == 2

        await eventually(both_wait, what="both stores waiting for the one connection")
        await store_pool.release(held)
        results = await asyncio.gather(*stores)
    finally:
        await store_pool.close()
    assert [(r.duplicate, r.claimed) for r in results] == [(False, None), (False, None)]
    assert await _holder(pool, "m-batch") is None


async def test_a_store_does_not_take_a_lease_another_worker_is_taking(
    pool: asyncpg.Pool, fresh_database: str
) -> None:
    """A lease another worker is taking (uncommitted) wins: the store waits, then claims nothing."""
    other = await asyncpg.connect(fresh_database)
    theirs = uuid.uuid4()
    try:
        async with other.transaction():
            await other.execute(
                "INSERT INTO ingest.match_leases (match_id, claim_token, claimed_until)"
                " VALUES ('m-race', $1, now() + interval '1 minute')",
                theirs,
            )
            store = asyncio.create_task(Inbox(pool).store(_event("m-race", 1), lease=_offer()))

            await eventually(
                lambda: lock_waits(other), what="the store waiting for the other lease"
            )
    finally:
        await other.close()
    result = await store
    assert result.row_id is not None and result.claimed is None
    assert await _holder(pool, "m-race") == theirs


async def test_a_claim_comes_back_with_what_decides_its_delivery(pool: asyncpg.Pool) -> None:
    """A claimed event comes with the newest other version (to supersede it) and earlier matches."""
    earlier = match_to_json(match_pb2.Match(match_id="m-late", version=3))
    await pool.execute(
        _EVENT, "l-3", "match_status_finished", "m-late", 3, "CLOSE", "DELIVERED", earlier, 0.0
    )
    result = await Inbox(pool).store(_event("m-late", 2), lease=_offer())
    assert result.claimed is not None
    assert (result.claimed.newer, result.claimed.earlier()) == (3, [earlier])


async def test_a_webhook_event_is_leased_before_its_answer_and_delivered(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """With a slot free, the webhook's store leases the match: the lease exists at the 200."""
    voice_server.double.gate = gate = asyncio.Event()
    async with running_ingest(fresh_database, voice_server.address, VOICE_DEADLINE_S=30) as harness:
        await harness.post(simple_event("match_status_ready", "m-early", version=1))
        assert await _holder(harness.runtime.pool, "m-early") is not None
        gate.set()
        await eventually(lambda: settled(harness, "m-early"), what="the event delivered")
    assert [c.match_id for c in voice_server.double.calls] == ["m-early"]


async def test_a_claimed_event_is_delivered_and_later_ones_wait_for_free_slots(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """With every slot delivering, a new event is not leased by its store; all go out in turn."""
    settings = {"INGEST_DELIVERY_CONCURRENCY": 2, "VOICE_DEADLINE_S": 30}
    double = voice_server.double
    double.gate = gate = asyncio.Event()
    async with running_ingest(fresh_database, voice_server.address, **settings) as harness:
        pool = harness.runtime.pool
        # Handed over or claimed: a startup drain's claimer may hold a slot for a moment.
        for n in range(2):
            await harness.post(simple_event("match_status_ready", f"m-slot-{n}", version=1))

        async def two_at_voice() -> bool:
            return double.in_flight == 2

        await eventually(two_at_voice, what="both events at voice")
        await harness.post(simple_event("match_status_ready", "m-slot-2", version=1))
        assert await _holder(pool, "m-slot-2") is None
        gate.set()
        await eventually(lambda: settled(harness, count=3), what="all three delivered")
    assert double.peak_in_flight == 2
    assert sorted(c.match_id for c in double.calls) == [f"m-slot-{n}" for n in range(3)]


async def test_offers_the_store_did_not_use_give_their_slot_back(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """Duplicates and events left to the claim free their slot: the one slot keeps delivering."""
    async with running_ingest(
        fresh_database, voice_server.address, INGEST_DELIVERY_CONCURRENCY=1
    ) as harness:
        ready = simple_event("match_status_ready", "m-once", version=1)
        await harness.post(ready)
        await eventually(lambda: settled(harness, "m-once"), what="the first event delivered")
        for _ in range(3):
            assert (await harness.post(ready)).json().get("duplicate") is True
        await harness.post(simple_event("match_status_ready", "m-next", version=1))
        await eventually(lambda: settled(harness, "m-next"), what="the next event delivered")
    assert [c.match_id for c in voice_server.double.calls] == ["m-once", "m-next"]


async def test_an_event_claimed_by_a_process_that_died_is_delivered_once_its_lease_ends(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """A store's lease whose process died right after the commit runs out; another delivers."""
    async with running_ingest(
        fresh_database, voice_server.address, INGEST_SWEEP_INTERVAL_S=0.2
    ) as harness:
        pool = harness.runtime.pool
        # Another replica's store, whose process dies before it hands the event over.
        result = await Inbox(pool).store(_event("m-died", 1), lease=_offer(seconds=1.0))
        assert result.claimed is not None
        ends = await pool.fetchval(
            "SELECT claimed_until FROM ingest.match_leases WHERE match_id = 'm-died'"
        )
        await eventually(lambda: settled(harness, "m-died"), what="the event delivered")
        (event,) = await harness.events("m-died")
        assert event.status == DELIVERED
        assert event.processed_at.ToDatetime(tzinfo=UTC) >= ends
    assert [c.match_id for c in voice_server.double.calls] == ["m-died"]


async def test_a_store_whose_answer_was_lost_releases_its_lease(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """A store that may have leased the match (its answer lost) releases it: delivered at once."""
    async with running_ingest(fresh_database, voice_server.address) as harness:
        runtime = harness.runtime
        offer = runtime.worker.offer_lease()
        assert offer is not None
        result = await runtime.inbox.store(_event("m-lost", 1), lease=offer)
        assert result.claimed is not None
        runtime.worker.hand_over(offer, None)  # as if the connection broke before the answer
        await eventually(lambda: settled(harness, "m-lost"), what="the event delivered")
        assert await _holder(runtime.pool, "m-lost") is None
    assert [c.match_id for c in voice_server.double.calls] == ["m-lost"]


async def test_a_later_event_at_another_replica_waits_for_the_match(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """While one replica delivers a handed-over event, another's newer event of it waits."""
    double = voice_server.double
    double.gate = gate = asyncio.Event()
    async with (
        running_ingest(fresh_database, voice_server.address, VOICE_DEADLINE_S=30) as first,
        running_ingest(fresh_database, voice_server.address, VOICE_DEADLINE_S=30) as second,
    ):
        await first.post(simple_event("match_status_ready", "m-two", version=1))

        async def at_voice() -> bool:
            return double.in_flight == 1

        await eventually(at_voice, what="the first event at voice")
        await second.post(simple_event("match_status_finished", "m-two", version=2))
        assert await second.runtime.worker.drain() == 0
        assert double.in_flight == 1
        gate.set()
        await eventually(lambda: settled(first, "m-two", 2), what="both delivered")
    assert [(c.rpc, c.version) for c in double.calls] == [("OpenMatch", 1), ("CloseMatch", 2)]
