"""The voice lease: of the replicas sharing a database, only its holder acts (active/standby).

A row in `voice.lease` (holder, fencing token, expires_at by the database's clock), renewed by
heartbeat. A standby takes it over once it has run out, with the token incremented; the
holder stops acting on its own, by its own monotonic clock, once its last renewal is older
than the timeout less one renewal period, so a holder paused past its lease stops before it
acts again. Every voice write to the database is fenced by the token (see
migrations/0006_voice_lease.sql), and every Discord write is preceded by `check()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg

from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.errors import Unavailable

logger = logging.getLogger(__name__)

FENCED_OUT = "FV001"
"""The SQLSTATE of a write whose fencing token is no longer the lease's (the migration's)."""

Listener = Callable[[bool], Awaitable[None]]
"""Told whether this replica holds the lease, on every change."""

_ACQUIRE = (
    "INSERT INTO voice.lease (holder, token, expires_at)"
    " VALUES ($1, 1, now() + make_interval(secs => $2))"
    " ON CONFLICT (singleton) DO UPDATE SET holder = EXCLUDED.holder,"
    "  token = voice.lease.token + 1, acquired_at = now(), expires_at = EXCLUDED.expires_at"
    " WHERE voice.lease.expires_at <= now()"
    " RETURNING token"
)
_REMAINING = "SELECT extract(epoch FROM expires_at - now())::float8 FROM voice.lease"
_RENEW = (
    "UPDATE voice.lease SET expires_at = now() + make_interval(secs => $3)"
    " WHERE holder = $1 AND token = $2 RETURNING token"
)
_RELEASE = "UPDATE voice.lease SET expires_at = now() WHERE holder = $1 AND token = $2"


class LeaseLost(Exception):
    """Another replica took the lease over: this process must stop acting, and stops."""


def replica_name() -> str:
    """This process as a lease holder: host (the pod's name), pid and a random suffix."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def is_fenced_out(error: BaseException) -> bool:
    """Whether a database error is the fence refusing a stale holder's write."""
    return isinstance(error, asyncpg.PostgresError) and error.sqlstate == FENCED_OUT


@contextlib.contextmanager
def fenced_as_unavailable() -> Iterator[None]:
    """A write refused by the fence becomes Unavailable: the caller retries on the holder."""
    try:
        yield
    except asyncpg.PostgresError as error:
        if not is_fenced_out(error):
            raise
        raise Unavailable("this voice replica lost the lease; retry on the active one") from error


class FencingToken:
    """The token this process's connections present; 0 until it holds the lease.

    `connect` opens the pool's connections: each one says which token it writes under, and
    gives up a transaction left idle (a paused process's) so that its row locks cannot hold a
    takeover back. Both are startup parameters of the connection, not SETs: the pool's
    `RESET ALL` on every release puts a setting back to its value at connection time.
    """

    def __init__(self, *, idle_in_transaction_s: float) -> None:
        self.value = 0
        self._idle_ms = max(1, int(idle_in_transaction_s * 1000))

    async def connect(self, *args: Any, **kwargs: Any) -> asyncpg.Connection:
        """`asyncpg.connect` with the token and the idle-in-transaction timeout."""
        settings = {
            **(kwargs.pop("server_settings", None) or {}),
            "voice.fencing_token": str(self.value),
            "idle_in_transaction_session_timeout": str(self._idle_ms),
        }
        connection: asyncpg.Connection = await asyncpg.connect(
            *args, server_settings=settings, **kwargs
        )
        return connection


class VoiceLease:
    """Acquires, renews and releases the lease; `held` says whether this replica may act."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        timeout_s: float,
        renew_s: float,
        fencing: FencingToken | None = None,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self._renew_s = renew_s
        self._fencing = fencing or FencingToken(idle_in_transaction_s=renew_s)
        self.holder = holder or replica_name()
        self._clock = clock
        self._token = 0
        self._acting_until = float("-inf")
        self._reported = False
        self._acquired = asyncio.Event()
        self._listeners: list[Listener] = []

    @property
    def token(self) -> int:
        """The fencing token this replica holds (0 when it never held the lease)."""
        return self._token

    @property
    def held(self) -> bool:
        """Whether this replica holds the lease and may act now (by its own clock)."""
        return self._token > 0 and self._clock() < self._acting_until

    def check(self) -> None:
        """Raise Unavailable unless this replica may act now; before every Discord write."""
        if not self.held:
            raise Unavailable("this voice replica is not the active one (it holds no lease)")

    def add_listener(self, listener: Listener) -> None:
        """Tell `listener` whether the lease is held, on every change (gauges, health)."""
        self._listeners.append(listener)

    async def acquired(self) -> None:
        """Return once this replica took the lease."""
        await self._acquired.wait()

    async def run(self) -> None:
        """Wait for the lease as a standby, then hold it until cancelled (released then).

        Raises LeaseLost when a renewal finds another holder's token.
        """
        try:
            await self._wait_for_lease()
            await self._hold()
        except asyncio.CancelledError:
            await self._release()
            raise

    async def _wait_for_lease(self) -> None:
        while True:
            try:
                remaining = await self._try_acquire()
            except DATABASE_UNAVAILABLE as error:
                logger.warning("database unavailable for the voice lease (%r)", error)
                remaining = self._renew_s
            if remaining is None:
                return
            # Wake at the lease's end if it comes before the next look; the holder may renew.
            await asyncio.sleep(min(max(remaining, 0.0), self._renew_s))

    async def _try_acquire(self) -> float | None:
        """Take the lease if it ran out (None); else the seconds it still runs."""
        sent = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            # A paused holder's open transaction may hold the row: wait a bounded time only.
            await conn.execute("SET LOCAL lock_timeout = 1000")
            try:
                token = await conn.fetchval(_ACQUIRE, self.holder, self._timeout_s)
            except asyncpg.LockNotAvailableError:
                return self._renew_s
            if token is None:
                remaining = await conn.fetchval(_REMAINING)
                return float(remaining)
        self._token = self._fencing.value = int(token)
        self._acting_until = sent + self._acting_s
        # Connections opened as a standby present token 0: replace them all.
        await self._pool.expire_connections()
        logger.info(
            "voice lease taken (token %s, holder %s): this replica acts", token, self.holder
        )
        self._acquired.set()
        await self._report()
        return None

    @property
    def _acting_s(self) -> float:
        """How long after a renewal was sent this replica acts: the timeout less a margin."""
        return self._timeout_s - self._renew_s

    async def _hold(self) -> None:
        while True:
            await asyncio.sleep(self._renew_s)
            sent = self._clock()
            try:
                renewed = await self._pool.fetchval(
                    _RENEW, self.holder, self._token, self._timeout_s
                )
            except DATABASE_UNAVAILABLE as error:
                logger.warning("voice lease not renewed: database unavailable (%r)", error)
                await self._report()
                continue
            if renewed is None:
                self._acting_until = float("-inf")
                await self._report()
                raise LeaseLost(
                    f"another voice replica took the lease over (token {self._token} is stale)"
                )
            self._acting_until = sent + self._acting_s
            await self._report()

    async def _report(self) -> None:
        held = self.held
        if held == self._reported:
            return
        self._reported = held
        if held:
            logger.info("voice lease held (token %s)", self._token)
        else:
            logger.warning("voice lease not renewed in time: this replica stops acting")
        for listener in self._listeners:
            await listener(held)

    async def _release(self) -> None:
        """Let a standby take over at once after a normal stop."""
        if self._token == 0:
            return
        self._acting_until = float("-inf")
        with contextlib.suppress(
            *DATABASE_UNAVAILABLE, asyncpg.PostgresError, asyncpg.InterfaceError
        ):
            async with asyncio.timeout(self._renew_s):
                await self._pool.execute(_RELEASE, self.holder, self._token)
                logger.info("voice lease released (token %s)", self._token)
