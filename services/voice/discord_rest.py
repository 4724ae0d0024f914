"""Discord REST calls sent concurrently within Discord's rate limits, beside py-cord's bucket lock.

py-cord's `HTTPClient.request` holds one lock per bucket for a whole request, so the ten moves
of a match (`PATCH /guilds/{guild_id}/members/{user_id}`, one bucket per guild) and the two team
channel creates (`POST /guilds/{guild_id}/channels`) would each go out one after the other. This
client lets as many requests of a bucket be in flight as its `X-RateLimit-Remaining` allows,
waits for `X-RateLimit-Reset-After` when it is spent, keeps its own requests within Discord's
global limit (50 a second) instead of learning it from 429s, honours 429s (`retry_after`,
global or not) with a bounded number of retries, and raises py-cord's own HTTPException family
so callers treat errors as before. Its requests go through `HttpTransport` (not py-cord's
aiohttp session): less than half aiohttp's CPU per request, and each request is written to the
socket by the coroutine that builds it (bench/findings.md, Round 8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import discord
import discord.http
import orjson

from services.voice.global_limit import GlobalLimit
from services.voice.http_transport import HttpResponse, HttpTransport
from services.voice.learned_limits import LearnedLimit
from services.voice.metrics import VoiceMetrics

logger = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
REPEATABLE_METHODS = frozenset({"GET", "PATCH"})
"""What may be sent again when a kept-alive connection fails before any answer: a GET, and this
client's PATCHes, which set a member's channel to a given value (twice is as once). Not a POST:
a create the server received before the connection failed would leave a second channel."""


@dataclass
class _Bucket:
    """What the last responses of one bucket said, and what is in flight now."""

    key: str
    """The route's key: method, major parameters and path."""
    limit: int | None = None
    name: str = ""
    """Discord's X-RateLimit-Bucket for it, once an answer (or an earlier run) told it."""
    remaining: int = 1
    reset_at: float = 0.0
    in_flight: int = 0
    window: int = 0
    """How many windows this process has started; an answer to a request sent in an earlier
    one describes a window that is over and must not reset the current one."""

    def may_send(self, now: float) -> bool:
        if self.limit is None:
            return self.in_flight == 0  # learn the limits from one request first
        if now >= self.reset_at:
            self.remaining = self.limit
            self.window += 1
            self.reset_at = float("inf")  # until a response says when this window ends
        return self.remaining > 0


@dataclass(frozen=True)
class _Done:
    """A successful answer's decoded body."""

    data: Any


class DiscordRest:
    """Sends Discord REST requests through a bucket-aware concurrent path."""

    def __init__(
        self,
        http: discord.http.HTTPClient,
        metrics: VoiceMetrics,
        *,
        max_attempts: int = 5,
        clock: Callable[[], float] = time.monotonic,
        guard: Callable[[], None] | None = None,
        global_limit: GlobalLimit | None = None,
        learned: Callable[[LearnedLimit], None] | None = None,
    ) -> None:
        self._http = http
        self._learned = learned
        """Told what each answer taught about its bucket (kept for the next start)."""
        self._metrics = metrics
        self._guard = guard
        self._max_attempts = max_attempts
        self._clock = clock
        self._global = global_limit if global_limit is not None else GlobalLimit(clock)
        """Shared with py-cord's client (the feed, deletes): one count for the bot."""
        self._buckets: dict[str, _Bucket] = {}
        self._changed = asyncio.Condition()
        self._global_over = asyncio.Event()
        self._global_over.set()
        self._transport = HttpTransport()

    def seed(self, limits: Iterable[LearnedLimit]) -> None:
        """Start the buckets no answer has described yet from what an earlier run learned."""
        for learned in limits:
            if learned.route_key not in self._buckets:
                self._buckets[learned.route_key] = _Bucket(
                    learned.route_key,
                    limit=learned.limit,
                    name=learned.bucket,
                    remaining=learned.remaining,
                    reset_at=learned.reset_at,
                )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._transport.close()

    async def edit_member(
        self, guild_id: int, user_id: int, payload: dict[str, Any], reason: str
    ) -> None:
        """PATCH the member; raises discord.HTTPException (Forbidden, NotFound...) on failure."""
        route = discord.http.Route(
            "PATCH", "/guilds/{guild_id}/members/{user_id}", guild_id=guild_id, user_id=user_id
        )
        await self.request(route, payload, reason)

    async def create_channel(
        self, guild_id: int, payload: dict[str, Any], reason: str
    ) -> dict[str, Any]:
        """POST a new guild channel; its JSON. Raises discord.HTTPException on failure."""
        route = discord.http.Route("POST", "/guilds/{guild_id}/channels", guild_id=guild_id)
        data = await self.request(route, payload, reason)
        if not isinstance(data, dict):
            raise discord.DiscordException(f"Discord answered a channel create with {data!r}")
        return data

    async def fetch_channel(self, channel_id: int) -> dict[str, Any] | None:
        """GET the channel's JSON; None when Discord says it does not exist (404)."""
        route = discord.http.Route("GET", "/channels/{channel_id}", channel_id=channel_id)
        try:
            data = await self.request(route, None, reason="")
        except discord.NotFound:
            return None
        if not isinstance(data, dict):
            raise discord.DiscordException(f"Discord answered a channel lookup with {data!r}")
        return data

    async def request(
        self, route: discord.http.Route, payload: dict[str, Any] | None, reason: str
    ) -> Any:
        """Send one JSON request, retrying rate limits and server errors; the decoded answer."""
        headers = {"User-Agent": self._http.user_agent, "Authorization": f"Bot {self._http.token}"}
        if reason:
            headers["X-Audit-Log-Reason"] = quote(reason, safe="/ ")
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = orjson.dumps(payload)
        # py-cord's bucket key leaves the method out; two methods on one path are two limits.
        key = f"{route.method} {route.bucket}"
        bucket = self._buckets.get(key) or self._buckets.setdefault(key, _Bucket(key))
        for attempt in range(1, self._max_attempts + 1):
            window = await self._acquire(bucket)
            try:
                outcome = await self._send(route, headers, body, bucket, window, attempt)
            finally:
                bucket.in_flight -= 1
                async with self._changed:
                    self._changed.notify_all()
            if isinstance(outcome, _Done):
                return outcome.data
            await asyncio.sleep(outcome)
        raise AssertionError("the last attempt either returns or raises")

    async def _acquire(self, bucket: _Bucket) -> int:
        """Wait for room in the bucket and in the global limit and take it; the window the
        request goes out in."""
        began = self._clock()
        waited = False
        while True:
            waited = waited or not self._global_over.is_set()
            await self._global_over.wait()
            now = self._clock()
            timeout: float | None = self._global.wait_s(now)
            if not timeout:
                if bucket.may_send(now):
                    bucket.remaining -= 1
                    bucket.in_flight += 1
                    self._global.record(now)
                    if waited:
                        self._metrics.rate_limit_waits.observe(now - began)
                    return bucket.window
                timeout = None if bucket.reset_at == float("inf") else bucket.reset_at - now
            waited = True
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):  # wait_for may eat a cancel (3.11)
                        await self._changed.wait()

    async def _send(
        self,
        route: discord.http.Route,
        headers: dict[str, str],
        body: bytes | None,
        bucket: _Bucket,
        window: int,
        attempt: int,
    ) -> _Done | float:
        """One attempt: the answer when done, else the seconds to wait before retrying.

        The guard goes last before the request: a rate-limit wait may have outlasted the lease.
        """
        if self._guard is not None:
            self._guard()
        began = time.perf_counter()
        try:
            response = await self._transport.request(
                route.method,
                route.url,
                headers,
                body,
                repeatable=route.method in REPEATABLE_METHODS,
            )
            data = _decoded(response)
        except BaseException:
            self._metrics.discord_answer(
                route.method, route.path, "error", time.perf_counter() - began
            )
            raise
        self._metrics.discord_answer(
            route.method, route.path, response.status, time.perf_counter() - began
        )
        self._learn(bucket, response, window)
        if response.status == 429:
            scope = "global" if isinstance(data, dict) and data.get("global") else "bucket"
            self._metrics.discord_rate_limited.labels(scope=scope).inc()
        if 200 <= response.status < 300:
            return _Done(data)
        last = attempt >= self._max_attempts
        if response.status == 429 and isinstance(data, dict) and not last:
            retry_after = float(data.get("retry_after", 1.0))
            logger.warning(
                "%s %s rate limited (%s); retrying in %.2fs",
                route.method,
                route.path,
                "global" if data.get("global") else "bucket",
                retry_after,
            )
            if data.get("global"):
                self._global_over.clear()
                asyncio.get_running_loop().call_later(retry_after, self._global_over.set)
            else:
                bucket.remaining = 0
                bucket.reset_at = self._clock() + retry_after
            self._metrics.rate_limit_waits.observe(retry_after)
            return retry_after
        if response.status in RETRIED_STATUSES and not last:
            return 0.5 * attempt
        if response.status == 403:
            raise discord.Forbidden(response, data)
        if response.status == 404:
            raise discord.NotFound(response, data)
        if response.status >= 500:
            raise discord.DiscordServerError(response, data)
        raise discord.HTTPException(response, data)

    def _learn(self, bucket: _Bucket, response: HttpResponse, window: int) -> None:
        limit = response.headers.get("x-ratelimit-limit")
        remaining = response.headers.get("x-ratelimit-remaining")
        reset_after = response.headers.get("x-ratelimit-reset-after")
        if limit is None or remaining is None or reset_after is None:
            if bucket.limit is None:
                bucket.limit = 1  # no headers: stay serial
            if bucket.reset_at == float("inf") and window == bucket.window:
                # No answer in this window said when it ends (a proxy's 5xx has no headers):
                # it ends now, or the bucket's next request would wait for ever.
                bucket.reset_at = self._clock()
            return
        if bucket.limit is not None and window != bucket.window:
            return  # sent in a window that has ended since: its counts are not this window's
        # Requests still in flight may not be counted in this answer yet: keep room for them.
        left = int(remaining) - bucket.in_flight + 1
        named = response.headers.get("x-ratelimit-bucket", "")
        if bucket.limit == int(limit) and bucket.name == named:
            bucket.remaining = min(bucket.remaining, left)  # an earlier answer may come late
        else:
            bucket.remaining = left  # unknown, or a seeded limit Discord has changed since
        bucket.limit = int(limit)
        bucket.name = named
        bucket.reset_at = self._clock() + float(reset_after)
        if self._learned is not None:
            self._learned(
                LearnedLimit(bucket.key, named, bucket.limit, bucket.remaining, bucket.reset_at)
            )


def _decoded(response: HttpResponse) -> Any:
    """The body as py-cord's `parse_response` gives it: JSON decoded when it says it is JSON
    (any parameters, such as a charset, allowed), else text."""
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media == "application/json":
        return orjson.loads(response.body)
    return response.body.decode("utf-8", "replace")
