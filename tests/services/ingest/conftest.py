"""Fixtures of the ingest tests: the VoiceService double, a running ingest app, a pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.ingest.server import MIGRATIONS, SCHEMA
from services.kit.database import create_pool
from services.kit.migrations import apply_migrations
from tests.services.ingest.harness import IngestHarness, running_ingest
from tests.services.ingest.voice_double import VoiceDouble, VoiceDoubleServer, served_voice_double


@pytest.fixture
async def voice_server() -> AsyncIterator[VoiceDoubleServer]:
    """The VoiceService double, served on a free port."""
    async with served_voice_double() as server:
        yield server


@pytest.fixture
def voice(voice_server: VoiceDoubleServer) -> VoiceDouble:
    """The double's recorded calls and state."""
    return voice_server.double


@pytest.fixture
async def ingest(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> AsyncIterator[IngestHarness]:
    """The ingest app with its worker and gRPC server, on a fresh database."""
    async with running_ingest(fresh_database, voice_server.address) as harness:
        yield harness


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on a fresh database with the ingest schema migrated."""
    opened = await create_pool(fresh_database, min_size=1, max_size=2)
    try:
        await apply_migrations(opened, SCHEMA, MIGRATIONS)
        yield opened
    finally:
        await opened.close()
