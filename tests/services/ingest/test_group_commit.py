"""Group commit on a real pool: batching, one bad item failing alone, cancellation, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from services.ingest.events import Action, InboundEvent, Source
from services.ingest.group_commit import GroupCommit
from services.ingest.store import Inbox
from tests.support import eventually


class Refused(Exception):
    """The refusal the group commits under test raise."""


class Doubler:
    """A write that doubles integers in one statement and records each batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, connection: asyncpg.Connection, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        rows = await connection.fetch("SELECT 2 * n AS doubled FROM unnest($1::int[]) AS n", items)
        return [row["doubled"] for row in rows]


@pytest.fixture
async def raw_pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """Two connections to a fresh database."""
    opened = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    try:
        yield opened
    finally:
        await opened.close()


class Stalling(Doubler):
    """A Doubler whose first batch stalls (before its statement) until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def __call__(self, connection: asyncpg.Connection, items: Sequence[int]) -> list[int]:
        if not self.batches:
            self.batches.append(list(items))
            await self.release.wait()
            self.batches.pop(0)
        return await super().__call__(connection, items)


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


STALL_S = 1.0


def _commit(
    pool: asyncpg.Pool,
    write: Doubler,
    *,
    writers: int = 1,
    max_batch: int = 100,
    clock: Clock | None = None,
) -> GroupCommit[int, int, Refused]:
    return GroupCommit(
        pool,
        write,
        refuse=Refused,
        writers=writers,
        max_batch=max_batch,
        max_waiting=1000,
        acquire_timeout_s=5.0,
        stall_s=STALL_S,
        clock=clock or Clock(),
    )


async def test_items_submitted_together_share_one_statement(raw_pool: asyncpg.Pool) -> None:
    """Fifty concurrent submissions with one writer: one batch, each gets its own result."""
    write = Doubler()
    commit = _commit(raw_pool, write)
    results = await asyncio.gather(*(commit.submit(n) for n in range(50)))
    assert results == [2 * n for n in range(50)]
    assert write.batches == [list(range(50))]


async def test_batches_are_capped_and_the_rest_follows(raw_pool: asyncpg.Pool) -> None:
    """Past max_batch the waiting items go out in further batches, in the order they came."""
    write = Doubler()
    commit = _commit(raw_pool, write, max_batch=20)
    results = await asyncio.gather(*(commit.submit(n) for n in range(50)))
    assert results == [2 * n for n in range(50)]
    assert [len(batch) for batch in write.batches] == [20, 20, 10]


class CountingPool:
    """A pool that counts the connections asked of it (what a batch costs beside its write)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.acquired = 0

    async def acquire(self, *, timeout: float | None = None) -> asyncpg.Connection:
        self.acquired += 1
        return await self.pool.acquire(timeout=timeout)

    async def release(self, connection: asyncpg.Connection) -> None:
        await self.pool.release(connection)


async def test_batches_one_after_another_share_their_writers_connection(
    raw_pool: asyncpg.Pool,
) -> None:
    """Three batches waiting one after another: one connection taken from the pool, not three."""
    write = Doubler()
    pool = CountingPool(raw_pool)
    commit = _commit(pool, write, max_batch=20)
    results = await asyncio.gather(*(commit.submit(n) for n in range(50)))
    assert results == [2 * n for n in range(50)]
    assert [len(batch) for batch in write.batches] == [20, 20, 10]
    assert pool.acquired == 1


async def test_a_lone_item_goes_out_alone_without_waiting(raw_pool: asyncpg.Pool) -> None:
    """One submission after another: each is written on its own, none waits for company."""
    write = Doubler()
    commit = _commit(raw_pool, write, writers=2)
    assert [await commit.submit(n) for n in range(3)] == [0, 2, 4]
    assert write.batches == [[0], [1], [2]]


async def test_items_coming_during_a_quick_batch_wait_for_it_and_go_out_together(
    raw_pool: asyncpg.Pool,
) -> None:
    """With two writers allowed, a batch in flight for less than stall_s gets no second writer."""
    write = Stalling()
    commit = _commit(raw_pool, write, writers=2)
    first = asyncio.create_task(commit.submit(1))
    try:
        await eventually(lambda: _batches(write, [[1]]), what="the first batch in flight")
        others = [asyncio.create_task(commit.submit(n)) for n in (2, 3)]
        await eventually(lambda: _waiting(commit, 2), what="two submissions waiting")
    finally:
        write.release.set()
    assert await asyncio.gather(first, *others) == [2, 4, 6]
    assert write.batches == [[1], [2, 3]]


async def test_a_batch_stalled_past_stall_s_lets_a_second_writer_take_the_rest(
    raw_pool: asyncpg.Pool,
) -> None:
    """Once the batch in flight has taken stall_s, a new submission starts another writer."""
    write = Stalling()
    clock = Clock()
    commit = _commit(raw_pool, write, writers=2, clock=clock)
    first = asyncio.create_task(commit.submit(1))
    try:
        await eventually(lambda: _batches(write, [[1]]), what="the first batch in flight")
        waiting = asyncio.create_task(commit.submit(2))
        await eventually(lambda: _waiting(commit, 1), what="a submission waiting")
        clock.now += STALL_S
        assert await commit.submit(3) == 6
        assert await waiting == 4
        assert not first.done()
    finally:
        write.release.set()
    assert await first == 2
    assert write.batches == [[2, 3], [1]]


async def test_a_cancelled_submission_is_not_written(raw_pool: asyncpg.Pool) -> None:
    """A submitter that gives up before its batch begins is left out of it."""
    write = Doubler()
    commit = _commit(raw_pool, write)
    held = [await raw_pool.acquire() for _ in range(raw_pool.get_max_size())]
    try:
        first = asyncio.create_task(commit.submit(1))
        second = asyncio.create_task(commit.submit(2))
        await eventually(lambda: _waiting(commit, 2), what="two submissions waiting")
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
    finally:
        for connection in held:
            await raw_pool.release(connection)
    assert await second == 4
    assert write.batches == [[2]]


async def test_close_waits_for_the_writes_under_way(raw_pool: asyncpg.Pool) -> None:
    """close() returns once what was submitted is written, so the pool may close after it."""
    write = Doubler()
    commit = _commit(raw_pool, write)
    held = [await raw_pool.acquire() for _ in range(raw_pool.get_max_size())]
    submitted = [asyncio.create_task(commit.submit(n)) for n in range(5)]
    await eventually(lambda: _waiting(commit, 5), what="five submissions waiting")
    closing = asyncio.create_task(commit.close())
    for _ in range(10):
        await asyncio.sleep(0)  # let close() run as far as it can without a connection
    assert not closing.done()
    for connection in held:
        await raw_pool.release(connection)
    await closing
    assert [task.result() for task in submitted] == [0, 2, 4, 6, 8]


async def test_no_connection_refuses_every_waiting_item(raw_pool: asyncpg.Pool) -> None:
    """With no connection free within the acquire timeout, each waiting item is refused."""
    commit = GroupCommit(
        raw_pool,
        Doubler(),
        refuse=Refused,
        writers=1,
        max_batch=100,
        max_waiting=1000,
        acquire_timeout_s=0.1,
        stall_s=STALL_S,
    )
    held = [await raw_pool.acquire() for _ in range(raw_pool.get_max_size())]
    try:
        submitted = (commit.submit(n) for n in range(3))
        results = await asyncio.gather(*submitted, return_exceptions=True)
    finally:
        for connection in held:
            await raw_pool.release(connection)
    assert [type(r) for r in results] == [Refused] * 3
    assert "no database connection free within 0.1s" in str(results[0])
    assert await commit.submit(4) == 8


async def test_a_connection_closed_mid_batch_fails_its_items(
    raw_pool: asyncpg.Pool, fresh_database: str
) -> None:
    """When the server ends the connection during a batch, its items fail; none waits forever."""

    async def stuck(connection: asyncpg.Connection, items: Sequence[int]) -> list[int]:
        await connection.execute("SELECT pg_sleep(60)")
        return list(items)

    commit: GroupCommit[int, int, Refused] = GroupCommit(
        raw_pool,
        stuck,
        refuse=Refused,
        writers=1,
        max_batch=100,
        max_waiting=1000,
        acquire_timeout_s=5.0,
        stall_s=STALL_S,
    )
    submitted = asyncio.gather(*(commit.submit(n) for n in range(3)), return_exceptions=True)
    admin = await asyncpg.connect(fresh_database)
    try:

        async def sleeping() -> bool:
            return bool(
                await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'"
                )
            )

        await eventually(sleeping, what="the batch running")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query = 'SELECT pg_sleep(60)'"
        )
        async with asyncio.timeout(10):
            results = await submitted
    finally:
        await admin.close()
    assert all(isinstance(r, asyncpg.PostgresError | asyncpg.InterfaceError) for r in results)
    await commit.close()


async def _batches(write: Doubler, expected: list[list[int]]) -> bool:
    return write.batches == expected


async def _waiting(commit: GroupCommit[int, int, Refused], count: int) -> bool:
    return commit.waiting == count


def _event(event_id: str) -> InboundEvent:
    return InboundEvent(
        event_id=event_id,
        event="match_status_ready",
        action=Action.OPEN,
        source=Source.WEBHOOK,
        match_id=f"m-{event_id}",
        version=1,
    )


async def test_one_unstorable_event_fails_alone(pool: asyncpg.Pool) -> None:
    """An event Postgres refuses (a NUL in its id) fails; the others of its batch are stored."""
    inbox = Inbox(pool, writers=1)
    events = [_event("good-1"), _event("bad-\x00"), _event("good-2")]
    results = await asyncio.gather(*(inbox.store(e) for e in events), return_exceptions=True)
    assert isinstance(results[1], asyncpg.DataError)
    assert [getattr(r, "duplicate", None) for r in (results[0], results[2])] == [False, False]
    stored = await pool.fetch("SELECT event_id FROM ingest.events ORDER BY id")
    assert [r["event_id"] for r in stored] == ["good-1", "good-2"]


async def test_repeats_within_one_batch_store_one_row(pool: asyncpg.Pool) -> None:
    """The same event twice, and another id for the same match event, in one batch: one row."""
    inbox = Inbox(pool, writers=1)
    same_match_event = InboundEvent(
        event_id="other-id",
        event="match_status_ready",
        action=Action.OPEN,
        source=Source.WEBHOOK,
        match_id="m-e1",
        version=1,
    )
    results = await asyncio.gather(
        inbox.store(_event("e1")), inbox.store(_event("e1")), inbox.store(same_match_event)
    )
    assert [r.duplicate for r in results] == [False, True, True]
    assert await pool.fetchval("SELECT count(*) FROM ingest.events") == 1
