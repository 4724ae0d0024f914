"""End to end over the running system: sandboxes and the three services as separate processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from sandbox.system import SystemOptions
from services.kit.embedded_postgres import EmbeddedPostgres
from tests.sandbox.system_support import FAST_RETRIES, Harness, grpcurl, status_name
from tests.support import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

NO_POLL_S = 3600.0
"""A poll interval that never comes during a test: only RunPoll polls."""


def options(log_dir: Path, **overrides: object) -> SystemOptions:
    """Options of a test system: quick delivery retries, no scheduled poll."""
    settings: dict[str, object] = {
        "log_dir": log_dir,
        "poll_interval_s": NO_POLL_S,
        "extra_env": {"ingest": FAST_RETRIES},
        **overrides,
    }
    return SystemOptions(**settings)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    """One running system for the tests that do not break it (each uses its own matches)."""
    log_dir = tmp_path_factory.mktemp("shared-system")
    async with Harness.running(options(log_dir, database_url=database_url)) as harness:
        yield harness


@pytest_asyncio.fixture(loop_scope="module")
async def own_system(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """A system of its own, for a test that kills one of its services."""
    async with Harness.running(options(tmp_path / "logs", database_url=database_url)) as harness:
        yield harness


async def test_a_match_gets_private_team_channels_and_loses_them_when_finished(
    shared: Harness,
) -> None:
    """READY: one channel per team, private to it, players moved in; FINISHED: gone, to lobby."""
    match = await shared.new_match(team_size=3, in_voice=2, register_command=True)

    await shared.faceit.play(match.match_id, ["CONFIGURING", "READY"])
    await shared.wait_until_open([match])
    await shared.faceit.set_status(match.match_id, "FINISHED")
    await shared.wait_until_closed([match])

    assert await shared.match_channel_names() == []
    statuses = {e.event: status_name(e) for e in await shared.events(match.match_id)}
    assert statuses["match_status_ready"] == "DELIVERED"
    assert statuses["match_status_finished"] == "DELIVERED"
