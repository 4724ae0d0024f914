"""The voice lease against real Postgres: one holder, takeover with a higher token, fencing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from services.kit.database import create_pool
from services.kit.errors import Unavailable
from services.voice.lease import (
    FencingToken,
    LeaseLost,
    VoiceLease,
    fenced_as_unavailable,
    is_fenced_out,
)
from tests.services.voice.tcp_proxy import TcpProxy
from tests.support import eventually

TIMEOUT_S = 1.2
RENEW_S = 0.3


@dataclass
class Replica:
    """One replica's pool (fenced by its token) and lease, running in a task."""

    pool: asyncpg.Pool
    lease: VoiceLease
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def replica(dsn: str, name: str) -> AsyncIterator[Replica]:
    """A replica on `dsn` whose lease runs until the block ends (or the test cancels it)."""
    fencing = FencingToken(idle_in_transaction_s=RENEW_S)
    pool = await create_pool(dsn, min_size=1, max_size=3, connect=fencing.connect)
    lease = VoiceLease(pool, timeout_s=TIMEOUT_S, renew_s=RENEW_S, fencing=fencing, holder=name)
    task = asyncio.create_task(lease.run())
    try:
        yield Replica(pool, lease, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, LeaseLost):
            await task
        pool.terminate()


@contextlib.asynccontextmanager
async def holder_and_standby(dsn: str) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replica `a`, holding the lease, and replica `b`, started after it."""
    async with replica(dsn, "a") as first:
        await until_held(first.lease)
        async with replica(dsn, "b") as second:
            yield first, second


async def lease_row(pool: asyncpg.Pool) -> asyncpg.Record:
    """The lease row as the database has it (from an unfenced connection)."""
    return await pool.fetchrow("SELECT holder, token, expires_at FROM voice.lease")


async def write(pool: asyncpg.Pool) -> None:
    """One voice write: the link watch's sequence."""
    await pool.execute(
        "INSERT INTO voice.link_watch AS w (after_sequence) VALUES (1)"
        " ON CONFLICT (singleton) DO UPDATE SET after_sequence = w.after_sequence + 1"
    )


async def test_one_replica_takes_the_lease_and_the_other_waits_while_it_renews(
    voice_pool: asyncpg.Pool, fresh_database: str
) -> None:
    """The first replica holds (token 1); the second stays standby across renewals."""
    async with holder_and_standby(fresh_database) as (first, second):
        for _ in range(2):
            before = (await lease_row(voice_pool))["expires_at"]
            await eventually(
                functools.partial(_later, voice_pool, before), timeout=5, what="a renewal"
            )
        assert first.lease.held and not second.lease.held
        assert second.lease.token == 0
        row = await lease_row(voice_pool)
        assert (row["holder"], row["token"]) == ("a", 1)


async def test_a_partitioned_holder_is_taken_over_fenced_out_and_told_it_lost(
    voice_pool: asyncpg.Pool, fresh_database: str
) -> None:
    """Cut off from the database, the holder stops acting; the standby takes over with token 2;
    the old holder's writes fail on the fence once it is back, and its lease run ends LeaseLost."""
    async with (
        TcpProxy.serving(fresh_database) as proxy,
        replica(proxy.dsn(fresh_database), "a") as first,
    ):
        await until_held(first.lease)
        await write(first.pool)
        async with replica(fresh_database, "b") as second:
            await proxy.down()
            await eventually(_not_held(first.lease), timeout=5, what="the holder to stop")
            with pytest.raises(Unavailable):
                first.lease.check()
            await until_held(second.lease)
            assert second.lease.token == 2
            await write(second.pool)

            await proxy.up()
            with pytest.raises(asyncpg.PostgresError) as refused:
                await write(first.pool)
            assert is_fenced_out(refused.value)
            with pytest.raises(Unavailable), fenced_as_unavailable():  # what gRPC callers get
                await write(first.pool)
            with pytest.raises(LeaseLost):
                await asyncio.wait_for(asyncio.shield(first.task), timeout=10)
            await write(voice_pool)  # an operator's session is not fenced
            assert await voice_pool.fetchval("SELECT after_sequence FROM voice.link_watch") == 3


async def test_a_stopped_holder_releases_the_lease_and_the_standby_takes_it_at_once(
    voice_pool: asyncpg.Pool, fresh_database: str
) -> None:
    """Cancelling the holder's lease (a SIGTERM) lets the standby act well before the timeout."""
    async with holder_and_standby(fresh_database) as (first, second):
        first.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first.task
        assert not first.lease.held
        await until_held(second.lease, timeout=RENEW_S * 3)
        assert second.lease.token == 2


async def test_the_holder_stops_acting_by_its_own_clock_without_asking_the_database(
    voice_pool: asyncpg.Pool,
) -> None:
    """Past (timeout - renew) since its last renewal by its monotonic clock, `held` is False."""
    now = [100.0]
    lease = VoiceLease(voice_pool, timeout_s=TIMEOUT_S, renew_s=RENEW_S, clock=lambda: now[0])
    seen: list[bool] = []

    async def listen(held: bool) -> None:
        seen.append(held)

    lease.add_listener(listen)
    task = asyncio.create_task(lease.run())
    try:
        await until_held(lease)
        assert seen == [True]
        now[0] += TIMEOUT_S - RENEW_S - 0.01
        assert lease.held
        now[0] += 0.02  # a pause: no renewal ran meanwhile
        assert not lease.held
        with pytest.raises(Unavailable):
            lease.check()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until_held(lease: VoiceLease, timeout: float = 5.0) -> None:
    """Wait until `lease` is held by its replica."""

    async def held() -> bool:
        return lease.held

    await eventually(held, timeout=timeout, what=f"{lease.holder} to hold the lease")


async def _later(pool: asyncpg.Pool, than: object) -> bool:
    return bool((await lease_row(pool))["expires_at"] > than)


def _not_held(lease: VoiceLease) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return not lease.held

    return probe


async def test_the_fencing_settings_survive_the_pools_reset_of_each_connection(
    voice_pool: asyncpg.Pool, fresh_database: str
) -> None:
    """A connection given back to the pool (RESET ALL) still presents the token, and still
    gives up an idle transaction, when it is taken again."""
    fencing = FencingToken(idle_in_transaction_s=0.3)
    fencing.value = 7
    pool = await create_pool(fresh_database, min_size=1, max_size=1, connect=fencing.connect)
    try:
        seen = []
        for _ in range(3):
            async with pool.acquire() as conn:
                seen.append(tuple(await conn.fetchrow(_SETTINGS)))
                await conn.execute("SET idle_in_transaction_session_timeout = 0")  # reset after
                await conn.execute("SELECT set_config('voice.fencing_token', '1', false)")
    finally:
        await pool.close()
    assert seen == [("7", "300ms")] * 3


_SETTINGS = (
    "SELECT current_setting('voice.fencing_token'),"
    " current_setting('idle_in_transaction_session_timeout')"
)
