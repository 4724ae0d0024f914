"""Fixtures of the voice service tests: a migrated `voice` schema on a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.kit.database import create_pool
from services.voice.server import migrate


@pytest.fixture
async def voice_pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database whose `voice` schema is migrated."""
    pool = await create_pool(fresh_database, min_size=1, max_size=5)
    await migrate(pool)
    try:
        yield pool
    finally:
        await pool.close()
