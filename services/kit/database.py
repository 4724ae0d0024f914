"""asyncpg pool creation and a bounded wait for Postgres to accept connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg

logger = logging.getLogger(__name__)

# Errors that mean "not up yet": nothing listening, socket file missing, server starting.
_RETRYABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
)


class DatabaseUnavailable(Exception):
    """Postgres did not accept connections within the allowed time."""


def describe_dsn(dsn: str) -> str:
    """Where `dsn` points, as `host:port/database`, without credentials."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", ["localhost"])[0]
    port = parts.port or int(query.get("port", ["5432"])[0])
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return f"{host}:{port}/{database}"


# Errors that mean "the database cannot be reached right now", not "this statement failed":
# a refused or dropped connection, a server starting up or shutting down, no connection slot
# left, no pooled connection in time. Callers answer UNAVAILABLE (gRPC) or 503 (HTTP) so that
# the caller retries; anything else a statement raises (a cancelled statement, a bad value, a
# constraint, a full disk) is a failure of its own: INTERNAL / 500, logged as an error.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,  # refused, reset; includes TimeoutError: no connection from the pool in time
    asyncpg.PostgresConnectionError,  # class 08, and a connection closed mid-statement
    asyncpg.exceptions.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,  # the server terminated the session
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.IdleSessionTimeoutError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InternalClientError,  # seen when the server restarts mid-query
)


def with_database(dsn: str, database: str) -> str:
    """`dsn` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


# Array types asyncpg has no built-in codec for (text[] has one): it looks each one up on a
# connection's first statement that uses it (with JIT on, three statements, the lookup a
# recursive query of 2-30 ms under load). A pool whose connections are all opened ahead of
# need looks them up as each opens instead (voice: a takeover replaces every connection and
# reopens them while the gateway connects; its first repairs paid the lookup). Elsewhere it
# would be paid by every connection a burst opens, needed or not.
_ARRAYS_LOOKED_UP_AHEAD = (
    "SELECT NULL::bigint[], NULL::integer[], NULL::float8[], NULL::timestamptz[], NULL::uuid[]"
)


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _init_connection_with_arrays(connection: asyncpg.Connection) -> None:
    await _init_connection(connection)
    await connection.fetchrow(_ARRAYS_LOOKED_UP_AHEAD)


async def session_untouched(connection: asyncpg.Connection) -> None:
    """A pool's reset on release instead of asyncpg's reset query, where no user of the pool
    leaves session state behind.

    asyncpg rolls back a transaction left open before it calls this. Its reset query (advisory
    unlock, CLOSE ALL, UNLISTEN *, RESET ALL) is one more round trip per pool use, on the path
    of every statement, for state such a pool never holds: settings are SET LOCAL, advisory
    locks are transaction locks or unlocked by their taker, a LISTEN is removed (UNLISTEN)
    before its connection goes back. A pool whose session settings must hold whatever a user
    did (voice's fencing token) keeps asyncpg's reset.
    """


class ResetBehindPool(asyncpg.Pool):
    """An asyncpg pool whose `release` returns at once and resets the connection behind.

    asyncpg's reset query (`RESET ALL`, `UNLISTEN *`...) is a round trip that `release`, and so
    the end of every `async with pool.acquire()` and every `pool.fetchval`, awaits. Here it
    runs in a task of its own: the connection goes back to the pool's queue only once it is
    reset, so whoever acquires it next still finds it reset, exactly as before; only its last
    user no longer waits. A reset that fails terminates the connection (asyncpg's own
    handling) and is logged; the statements that ran on it had already answered. `close()`
    waits for the resets under way, as it waits for every connection in use.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resets: set[asyncio.Task[None]] = set()

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        """Give `connection` back: its reset, then its return to the queue, run behind."""
        reset = asyncio.create_task(super().release(connection, timeout=timeout))
        self._resets.add(reset)
        reset.add_done_callback(self._reset_done)

    def _reset_done(self, reset: asyncio.Task[None]) -> None:
        self._resets.discard(reset)
        if not reset.cancelled() and reset.exception() is not None:
            logger.warning(
                "a pooled connection failed its reset and was closed: %r", reset.exception()
            )


async def create_pool(
    dsn: str,
    *,
    min_size: int | None = None,
    max_size: int = 10,
    command_timeout: float = 30.0,
    connect: Callable[..., Awaitable[asyncpg.Connection]] | None = None,
    reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    arrays_ahead: bool = False,
) -> asyncpg.Pool:
    """Open the process's asyncpg pool; json/jsonb columns come and go as Python objects.

    Every connection is opened with the pool and kept (`min_size` is asyncpg's floor: idle
    connections above it close after 5 minutes), unless `min_size` asks for fewer. Postgres
    starts a process for each connection, and a burst that opened its own paid for that on
    its first statements: the first ten matches opened at once waited for the connections
    their claims, reads and registry lookups opened (bench/findings.md, Round 7).

    `arrays_ahead`: each connection looks up the array types as it opens, not on its first
    statement using one (for a pool whose connections are opened ahead, `open_connections`).

    `connect`, when given, opens each new connection instead of `asyncpg.connect` (with the
    same arguments), e.g. to add session settings that must survive the pool's `RESET ALL`;
    `reset`, when given, replaces asyncpg's reset query on release (`session_untouched`).
    Without it the pool keeps asyncpg's reset query, run behind each release
    (`ResetBehindPool`).
    """
    pool_class = asyncpg.Pool if reset is not None else ResetBehindPool
    # asyncpg.create_pool's own construction, with the class chosen above.
    pool: asyncpg.Pool = await pool_class(
        dsn,
        min_size=max_size if min_size is None else min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        command_timeout=command_timeout,
        init=_init_connection_with_arrays if arrays_ahead else _init_connection,
        connect=connect,
        reset=reset,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
    )
    logger.info(
        "database pool open to %s (%s of %s connections)",
        describe_dsn(dsn),
        pool.get_size(),
        max_size,
    )
    return pool


async def open_connections(
    pool: asyncpg.Pool,
    *,
    hold_s: float = 0.5,
    prepare: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> None:
    """Have every connection of the pool open now (one replaced since, by
    `expire_connections` say, reconnects here), so that a burst of statements later finds
    them ready instead of each opening its own; `prepare`, when given, runs on each first
    (the statements that burst will make, say).

    Each connection is held until all are, at most `hold_s` after its own is ready, so that
    the pool hands out a different one each time; whoever needs one meanwhile waits no
    longer than that.
    """
    count = pool.get_max_size()
    held = 0
    all_held = asyncio.Event()

    async def hold() -> None:
        nonlocal held
        async with pool.acquire() as connection:
            if prepare is not None:
                await prepare(connection)
            held += 1
            if held == count:
                all_held.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(hold_s):  # wait_for may eat a cancel (3.11)
                    await all_held.wait()

    # Every one ends (bounded by `hold_s`) before the first failure is raised.
    results = await asyncio.gather(*(hold() for _ in range(count)), return_exceptions=True)
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is not None:
        raise failure


async def wait_for_database(dsn: str, timeout: float = 30.0) -> None:
    """Return once Postgres at `dsn` accepts a connection; DatabaseUnavailable after `timeout`.

    Retries refused connections, missing sockets and "starting up" with capped backoff; other
    errors (bad password, missing database) are raised at once.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        try:
            connection = await asyncpg.connect(dsn, timeout=max(remaining, 0.1))
        except _RETRYABLE as error:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailable(
                    f"database at {describe_dsn(dsn)} did not accept connections within "
                    f"{timeout:g}s ({attempts} attempts); last error: {error!r}"
                ) from error
            logger.debug("database at %s not ready yet: %r", describe_dsn(dsn), error)
            await asyncio.sleep(min(delay, remaining))  # backoff between connection attempts
            delay = min(delay * 2, 1.0)
            continue
        await connection.close()
        if attempts > 1:
            logger.info("database at %s is up after %s attempts", describe_dsn(dsn), attempts)
        return
