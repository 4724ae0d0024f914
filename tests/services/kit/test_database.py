"""Tests of the asyncpg pool helper and the bounded wait for Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.kit.database import (
    DATABASE_UNAVAILABLE,
    DatabaseUnavailable,
    create_pool,
    describe_dsn,
    open_connections,
    session_untouched,
    wait_for_database,
    with_database,
)
from tests.support import eventually


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


async def _logged_pool(dsn: str, sent: list[str]) -> asyncpg.Pool:
    """A pool without the reset query whose connections append every query they send to `sent`
    once the pool is open (not those setting a new connection up)."""

    opened: list[asyncpg.Connection] = []

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
        opened.append(connection)
        return connection

    pool = await create_pool(
        dsn, min_size=1, max_size=1, command_timeout=5, connect=connect, reset=session_untouched
    )
    (connection,) = opened  # min_size: opened with the pool, and set up
    connection.add_query_logger(lambda record: sent.append(record.query))
    return pool


async def test_a_released_connection_costs_no_reset_round_trip(fresh_database: str) -> None:
    """Giving a pooled connection back sends nothing: one statement is one round trip."""
    sent: list[str] = []
    pool = await _logged_pool(fresh_database, sent)
    try:
        assert await pool.fetchval("SELECT 1") == 1
        assert await pool.fetchval("SELECT 2") == 2
    finally:
        await pool.close()
    assert sent == ["SELECT 1", "SELECT 2"]


async def test_a_transaction_left_open_is_rolled_back_before_the_next_use(
    fresh_database: str,
) -> None:
    """A connection given back inside a transaction is rolled back before anyone reuses it."""
    sent: list[str] = []
    pool = await _logged_pool(fresh_database, sent)
    try:
        await pool.execute("CREATE TABLE notes (body text)")
        async with pool.acquire() as connection:
            await connection.execute("BEGIN")
            await connection.execute("INSERT INTO notes VALUES ('uncommitted')")
        async with pool.acquire() as connection:
            assert not connection.is_in_transaction()
            assert await connection.fetchval("SELECT count(*) FROM notes") == 0
    finally:
        await pool.close()
    assert "ROLLBACK" in sent


async def test_a_release_returns_before_the_reset_which_the_next_user_still_waits_for(
    fresh_database: str,
) -> None:
    """With asyncpg's reset query, giving a connection back does not wait for it, yet the next
    user of the connection only gets it reset: a session setting left behind is gone."""
    resetting = asyncio.Event()
    may_reset = asyncio.Event()

    class HeldReset(asyncpg.Connection):
        async def reset(self, *, timeout: float | None = None) -> None:
            resetting.set()
            await may_reset.wait()
            await super().reset(timeout=timeout)

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            *args, **{**kwargs, "connection_class": HeldReset}
        )
        return connection

    pool = await create_pool(
        fresh_database, min_size=1, max_size=1, command_timeout=5, connect=connect
    )
    try:

        async def use_and_give_back() -> None:
            async with pool.acquire() as connection:
                await connection.execute("SET application_name = 'left behind'")

        await asyncio.wait_for(use_and_give_back(), timeout=10)
        await asyncio.wait_for(resetting.wait(), timeout=10)
        next_use = asyncio.create_task(pool.fetchval("SELECT current_setting('application_name')"))
        may_reset.set()
        assert await asyncio.wait_for(next_use, timeout=10) == ""
    finally:
        may_reset.set()
        await pool.close()


async def test_a_new_connections_first_array_statement_asks_postgres_nothing_else(
    fresh_database: str,
) -> None:
    """A connection of a pool that looks arrays up ahead knows the array types: its first
    statement with bigint[], integer[], float8[], timestamptz[] or uuid[] values runs no type
    lookup of its own (on a fresh connection that lookup is a statement or three more)."""
    pool = await create_pool(
        fresh_database, min_size=1, max_size=1, command_timeout=5, arrays_ahead=True
    )
    try:
        async with pool.acquire() as connection:
            sent: list[str] = []
            connection.add_query_logger(lambda record: sent.append(record.query))
            row = await connection.fetchrow(
                "SELECT $1::bigint[] AS a, $2::integer[] AS b, $3::float8[] AS c,"
                " $4::timestamptz[] AS d, $5::uuid[] AS e",
                [2**62],
                [1],
                [0.5],
                [],
                [],
            )

            async def logged() -> bool:  # query loggers are called soon, not at once
                return any(q.startswith("SELECT $1::bigint[]") for q in sent)

            await eventually(logged, what="the statement to be logged")
            asked = list(sent)  # before the release, whose reset is logged too
    finally:
        await pool.close()
    assert row is not None and row["a"] == [2**62]
    assert len(asked) == 1, asked


async def test_open_connections_replaces_expired_connections_before_they_are_needed(
    fresh_database: str,
) -> None:
    """After `expire_connections`, every connection of the pool is open again and new, and a
    burst of statements then opens none of its own."""
    pool = await create_pool(fresh_database, min_size=1, max_size=4, command_timeout=5)
    try:
        before = await pool.fetchval("SELECT pg_backend_pid()")
        await pool.expire_connections()

        await open_connections(pool)

        rows = await pool.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        opened = {row["pid"] for row in rows}
        assert len(opened) == 4  # the pool's four (one of them asking)
        assert before not in opened
        pids = await asyncio.gather(*(pool.fetchval("SELECT pg_backend_pid()") for _ in range(4)))
        # None of its own: a connection still being reset behind its release may serve twice.
        assert set(pids) <= opened
    finally:
        await pool.close()


async def test_open_connections_prepares_every_connection_once(fresh_database: str) -> None:
    """`prepare` runs once on each connection of the pool, each a different one."""
    pool = await create_pool(fresh_database, min_size=1, max_size=4, command_timeout=5)
    prepared: list[int] = []

    async def prepare(connection: asyncpg.Connection) -> None:
        prepared.append(await connection.fetchval("SELECT pg_backend_pid()"))

    try:
        await open_connections(pool, prepare=prepare)
    finally:
        await pool.close()
    assert len(prepared) == len(set(prepared)) == 4


async def test_a_pool_opens_every_connection_when_it_is_created(fresh_database: str) -> None:
    """A service's pool opens all its connections at once: a burst that needs them opens none."""
    opened: list[asyncpg.Connection] = []

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
        opened.append(connection)
        return connection

    pool = await create_pool(fresh_database, max_size=4, command_timeout=5, connect=connect)
    try:
        with_the_pool = len(opened)
        async with contextlib.AsyncExitStack() as held:
            burst = [await held.enter_async_context(pool.acquire()) for _ in range(4)]
            pids = {await connection.fetchval("SELECT pg_backend_pid()") for connection in burst}
    finally:
        await pool.close()
    assert with_the_pool == 4
    assert len(opened) == 4
    assert len(pids) == 4


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


async def _refused(dsn: str) -> None:
    await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", timeout=5)


async def _too_many_connections(dsn: str) -> None:
    role = f"limited_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
        parts = urlsplit(dsn)
        netloc = f"{role}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        await asyncpg.connect(urlunsplit(parts._replace(netloc=netloc)))
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def _terminated_mid_statement(dsn: str) -> None:
    victim, admin = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    pid = victim.get_server_pid()
    try:
        sleeping = asyncio.ensure_future(victim.execute("SELECT pg_sleep(30)"))

        async def active() -> bool:
            state = await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
            return bool(state == "active")

        await eventually(active, what="the victim's statement to run")
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        await sleeping
    finally:
        await admin.close()
        victim.terminate()


async def _pool_exhausted(dsn: str) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire():
            await pool.acquire(timeout=0.05)
    finally:
        await pool.close()


async def _statement(dsn: str, *statements: str, args: tuple[object, ...] = ()) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements[:-1]:
            await connection.execute(statement)
        await connection.execute(statements[-1], *args)
    finally:
        await connection.close()


async def _statement_timeout(dsn: str) -> None:
    await _statement(dsn, "SET statement_timeout = '20ms'", "SELECT pg_sleep(5)")


async def _nul_in_text(dsn: str) -> None:
    await _statement(dsn, "SELECT $1::text", args=("a\x00b",))


async def _index_row_too_large(dsn: str) -> None:
    await _statement(
        dsn,
        "CREATE TABLE keys (key text PRIMARY KEY)",
        "INSERT INTO keys SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i",
    )


async def _unique_violation(dsn: str) -> None:
    await _statement(
        dsn, "CREATE TABLE keys (key int PRIMARY KEY)", "INSERT INTO keys VALUES (1), (1)"
    )


@pytest.mark.parametrize(
    "outage", [_refused, _too_many_connections, _terminated_mid_statement, _pool_exhausted]
)
async def test_connection_level_failures_are_database_unavailable(
    fresh_database: str, outage: Callable[[str], Awaitable[None]]
) -> None:
    """Refused, over the connection limit, terminated, no pooled connection: "retry later"."""
    with pytest.raises(Exception) as raised:
        await outage(fresh_database)
    assert isinstance(raised.value, DATABASE_UNAVAILABLE), repr(raised.value)


@pytest.mark.parametrize(
    "statement", [_statement_timeout, _nul_in_text, _index_row_too_large, _unique_violation]
)
async def test_failed_statements_are_not_database_unavailable(
    fresh_database: str, statement: Callable[[str], Awaitable[None]]
) -> None:
    """A statement that fails (cancelled, bad value, too large, constraint) is not an outage."""
    with pytest.raises(asyncpg.PostgresError) as raised:
        await statement(fresh_database)
    assert not isinstance(raised.value, DATABASE_UNAVAILABLE), repr(raised.value)
