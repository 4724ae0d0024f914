"""Fixtures of the ingest tests: the VoiceService double and a running ingest app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.services.ingest.harness import IngestHarness, running_ingest
from tests.services.ingest.voice_double import VoiceDouble, VoiceDoubleServer


@pytest.fixture
async def voice_server() -> AsyncIterator[VoiceDoubleServer]:
    """The VoiceService double, served on a free port."""
    server = VoiceDoubleServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


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
