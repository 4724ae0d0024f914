"""Fixtures of the registry tests: a migrated database and its pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.kit.database import create_pool
from services.registry.repository import PlayerLinkRepository
from services.registry.schema import migrate


@pytest.fixture
async def registry_database(fresh_database: str) -> str:
    """DSN of a fresh database with the registry schema migrated."""
    connection = await asyncpg.connect(fresh_database)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    return fresh_database


@pytest.fixture
async def pool(registry_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the migrated database."""
    opened = await create_pool(registry_database, max_size=20)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def repository(pool: asyncpg.Pool) -> PlayerLinkRepository:
    """The repository over the pool."""
    return PlayerLinkRepository(pool)
