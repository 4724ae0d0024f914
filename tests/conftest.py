"""Project-wide fixtures: a Postgres server for the session and a fresh database per test.

Set TEST_DATABASE_URL (a role that may CREATE DATABASE) to use an existing server; otherwise
an embedded Postgres is started in a private temp dir (outside pytest's basetemp, which
concurrent pytest runs prune) and stopped and removed when the session ends.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.databases import session_server, temporary_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """DSN of the session's Postgres server (its `postgres` database)."""
    with (
        tempfile.TemporaryDirectory(prefix="faceit-voice-test-pg-") as data_dir,
        session_server(os.environ.get("TEST_DATABASE_URL"), Path(data_dir)) as url,
    ):
        yield url


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """DSN of a new empty database on the session's server, dropped after the test."""
    async with temporary_database(database_url) as dsn:
        yield dsn
