"""Discord's rate-limit buckets as voice learned them, kept in `voice.rate_limit_buckets` so that
a restart starts from them (migrations/0007_rate_limit_buckets.sql).

Without them, `DiscordRest` sends each bucket's first request alone after a start until an
answer tells the bucket's limit: the creates and the moves are one bucket per guild each, so a
restart paid about two Discord latencies before it could repair side by side. What an answer
teaches is handed over in memory (`learned`, no I/O) and written in the background, at most
once every `interval_s`, all pending buckets in one statement; a failed write is only logged
(stale or missing limits cost a 429 or a first request sent alone, nothing else). Times are
kept by the database's clock, so another replica reads them right whatever its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from services.kit.database import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

RETENTION_DAYS = 7
"""A bucket not answered for this long is forgotten (the channel lookups' buckets are one per
channel: the table would otherwise grow for ever)."""

_LOAD = f"""
WITH pruned AS (
    DELETE FROM voice.rate_limit_buckets
    WHERE updated_at < now() - make_interval(days => {RETENTION_DAYS})
)
SELECT route_key, bucket, request_limit, remaining,
    extract(epoch FROM resets_at - now())::float8 AS reset_in_s
FROM voice.rate_limit_buckets
WHERE updated_at >= now() - make_interval(days => {RETENTION_DAYS})
"""
_SAVE = """
INSERT INTO voice.rate_limit_buckets
    (route_key, bucket, request_limit, remaining, resets_at, updated_at)
SELECT route_key, bucket, request_limit, remaining, now() + make_interval(secs => reset_in_s),
    now()
FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::float8[])
    AS learned (route_key, bucket, request_limit, remaining, reset_in_s)
ON CONFLICT (route_key) DO UPDATE SET
    bucket = EXCLUDED.bucket, request_limit = EXCLUDED.request_limit,
    remaining = EXCLUDED.remaining, resets_at = EXCLUDED.resets_at, updated_at = now()
"""


@dataclass(frozen=True)
class LearnedLimit:
    """One bucket as the last answer described it."""

    route_key: str
    bucket: str
    """Discord's X-RateLimit-Bucket ('' when not sent): another hash, another bucket."""
    limit: int
    remaining: int
    """Requests left in the window that ends at `reset_at`."""
    reset_at: float
    """When that window ends, on the store's monotonic clock."""


class LearnedLimitStore:
    """Loads the learned buckets at a start and writes what answers teach in the background."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._interval_s = interval_s
        self._clock = clock
        self._pending: dict[str, LearnedLimit] = {}
        self._wake = asyncio.Event()

    async def load(self) -> list[LearnedLimit]:
        """The buckets stored by earlier runs (none when the database cannot say)."""
        try:
            rows = await self._pool.fetch(_LOAD)
        except (*DATABASE_UNAVAILABLE, asyncpg.PostgresError) as error:
            logger.warning("learned Discord rate limits not loaded (%r): learning anew", error)
            return []
        now = self._clock()
        return [
            LearnedLimit(
                row["route_key"],
                row["bucket"],
                row["request_limit"],
                min(row["remaining"], row["request_limit"]),
                now + row["reset_in_s"],
            )
            for row in rows
        ]

    def learned(self, limit: LearnedLimit) -> None:
        """Keep `limit` for the next write; called on Discord's answers, so no I/O here."""
        self._pending[limit.route_key] = limit
        self._wake.set()

    async def run(self) -> None:
        """Write what is pending, at most once every `interval_s`, until cancelled; then once
        more, so that a normal stop keeps the last answers."""
        try:
            while True:
                await self._wake.wait()
                await self.flush()
                await asyncio.sleep(self._interval_s)  # pacing: one write per interval at most
        except asyncio.CancelledError:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s * 4):
                    await self.flush()
            raise

    async def flush(self) -> None:
        """Write every pending bucket in one statement; a failure is logged and dropped."""
        self._wake.clear()
        pending, self._pending = list(self._pending.values()), {}
        if not pending:
            return
        now = self._clock()
        try:
            await self._pool.execute(
                _SAVE,
                [p.route_key for p in pending],
                [p.bucket for p in pending],
                [p.limit for p in pending],
                [max(p.remaining, 0) for p in pending],
                [max(p.reset_at - now, 0.0) for p in pending],
            )
        except (*DATABASE_UNAVAILABLE, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            logger.warning("%d learned Discord rate limits not stored (%r)", len(pending), error)
