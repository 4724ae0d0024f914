"""Tests of the asyncpg pool helper and the bounded wait for Postgres."""

from __future__ import annotations

import socket
import time

import pytest

from services.kit.database import (
    DatabaseUnavailable,
    create_pool,
    describe_dsn,
    wait_for_database,
    with_database,
)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_pool_round_trips_jsonb_as_python_objects(fresh_database: str) -> None:
    """json and jsonb values are encoded from and decoded to Python objects by the pool."""
    pool = await create_pool(fresh_database, min_size=1, max_size=2, command_timeout=5)
    try:
        async with pool.acquire() as connection:
            await connection.execute("CREATE TABLE docs (body jsonb, raw json)")
            await connection.execute(
                "INSERT INTO docs VALUES ($1, $2)", {"teams": [1, 2]}, ["a", {"b": None}]
            )
            row = await connection.fetchrow("SELECT body, raw FROM docs")
    finally:
        await pool.close()
    assert row["body"] == {"teams": [1, 2]}
    assert row["raw"] == ["a", {"b": None}]


async def test_wait_for_database_returns_when_server_is_up(database_url: str) -> None:
    """Waiting for a running server returns promptly."""
    started = time.monotonic()
    await wait_for_database(database_url, timeout=10)
    assert time.monotonic() - started < 5


async def test_wait_for_database_times_out_naming_the_host() -> None:
    """Against a closed port the wait gives up after its timeout, naming host and port."""
    port = _closed_port()
    dsn = f"postgresql://user:hunter2@127.0.0.1:{port}/app"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as raised:
        await wait_for_database(dsn, timeout=1.0)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    assert f"127.0.0.1:{port}/app" in str(raised.value)
    assert "within 1s" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_describe_dsn_hides_credentials_and_reads_socket_host() -> None:
    """DSNs are described as host:port/db, for TCP and unix-socket forms, without passwords."""
    assert describe_dsn("postgresql://u:secret@db.example:6543/app") == "db.example:6543/app"
    assert describe_dsn("postgresql://postgres@/postgres?host=/tmp/pg") == "/tmp/pg:5432/postgres"


def test_with_database_swaps_only_the_database() -> None:
    """with_database keeps credentials, host and query and replaces the database name."""
    assert (
        with_database("postgresql://postgres@/postgres?host=/tmp/pg", "test_1")
        == "postgresql://postgres@/test_1?host=/tmp/pg"
    )
    assert with_database("postgresql://u:p@h:1/a", "b") == "postgresql://u:p@h:1/b"
