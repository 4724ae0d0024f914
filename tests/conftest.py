"""Project-wide fixtures: a Postgres server for the session and a fresh database per test.

Set TEST_DATABASE_URL (a role that may CREATE DATABASE) to use an existing server; otherwise
an embedded Postgres is started in the session's tmp dir and stopped when the session ends.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.databases import session_server, temporary_database


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of the session's Postgres server (its `postgres` database)."""
    with session_server(
        os.environ.get("TEST_DATABASE_URL"), tmp_path_factory.mktemp("postgres")
    ) as url:
        yield url


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """DSN of a new empty database on the session's server, dropped after the test."""
    async with temporary_database(database_url) as dsn:
        yield dsn
