"""DeletionWorker against real Postgres reached through a proxy that can cut the database off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.kit.database import create_pool
from services.voice.deletions import DeletionWorker
from services.voice.model import CloseOutcome
from tests.services.voice.tcp_proxy import TcpProxy
from tests.services.voice.test_matches import build, spec
from tests.support import eventually


@pytest.fixture
async def proxy(fresh_database: str) -> AsyncIterator[TcpProxy]:
    """A running proxy to the fresh database's server."""
    async with TcpProxy.serving(fresh_database) as tcp:
        yield tcp


async def test_worker_survives_a_database_outage_and_deletes_afterwards(
    voice_pool: asyncpg.Pool, fresh_database: str, proxy: TcpProxy
) -> None:
    """With the database cut off the worker backs off and retries; once back it deletes."""
    pool = await create_pool(proxy.dsn(fresh_database), min_size=1, max_size=3)
    world = build(pool, delay=0.3)
    world.resolver.links = {"p1": 1, "p2": 2}
    world.discord.guild_members = {1, 2}
    worker = DeletionWorker(world.store, world.service, retry_s=0.2, min_retry_s=0.02)
    task = asyncio.create_task(worker.run())
    try:
        await world.service.open_match(spec())
        closed = await world.service.close_match(spec().match_id, 2, "finished")
        assert closed.outcome is CloseOutcome.SCHEDULED

        await proxy.down()
        world.service.deletions_changed.set()

        async def retried_twice() -> bool:
            return worker.outages >= 2 and not task.done()

        await eventually(retried_twice, what="the worker to retry during the outage")
        assert world.discord.deleted == []

        await proxy.up()

        async def deleted() -> bool:
            assert not task.done(), task
            return len(world.discord.deleted) == 2

        await eventually(deleted, what="the channels deleted once the database is back")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()
