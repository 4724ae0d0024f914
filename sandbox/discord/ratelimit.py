"""Discord-like rate limiting: per-route buckets keyed by major parameters, plus a global limit."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

VIA = "1.1 google"


@dataclass(frozen=True)
class RouteLimit:
    """`limit` requests every `per` seconds."""

    limit: int
    per: float


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass
class Decision:
    """The outcome of one request: allowed or not, and the headers to send either way."""

    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    is_global: bool = False
    body: dict[str, object] = field(default_factory=dict)


def bucket_hash(method: str, route: str) -> str:
    """A stable opaque bucket id for a route template, like Discord's X-RateLimit-Bucket."""
    return hashlib.sha1(f"{method} {route}".encode()).hexdigest()[:32]


def limited_body(retry_after: float, *, is_global: bool) -> dict[str, object]:
    """Discord's 429 JSON body."""
    return {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
    }


def limited_headers(retry_after: float, *, scope: str) -> dict[str, str]:
    """The headers every 429 carries (py-cord retries only when `Via` is present)."""
    headers = {
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "Via": VIA,
        "X-RateLimit-Scope": scope,
    }
    if scope == "global":
        headers["X-RateLimit-Global"] = "true"
    return headers


class RateLimiter:
    """Fixed-window buckets per (method, route, major parameters) and one global window."""

    def __init__(
        self,
        *,
        global_limit: int,
        default: RouteLimit,
        routes: dict[tuple[str, str], RouteLimit] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.global_limit = global_limit
        self.default = default
        self.routes: dict[tuple[str, str], RouteLimit] = dict(routes or {})
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[tuple[str, str, str], _Window] = {}
        self._global = _Window(start=clock())

    def set_route(self, method: str, route: str, limit: RouteLimit) -> None:
        """Change one route's limit; its current windows start over."""
        self.routes[(method.upper(), route)] = limit
        for key in [k for k in self._buckets if k[:2] == (method.upper(), route)]:
            del self._buckets[key]

    def limit_for(self, method: str, route: str) -> RouteLimit:
        """The limit that applies to a route."""
        return self.routes.get((method, route), self.default)

    def check(self, method: str, route: str, majors: str, *, counts_globally: bool) -> Decision:
        """Count one request; say whether it may proceed and which headers describe its bucket."""
        now = self._clock()
        if counts_globally and self.global_limit > 0:
            if now >= self._global.start + 1.0:
                self._global = _Window(start=now)
            if self._global.count >= self.global_limit:
                retry = self._global.start + 1.0 - now
                headers = limited_headers(retry, scope="global")
                return Decision(
                    allowed=False,
                    headers=headers,
                    retry_after=retry,
                    is_global=True,
                    body=limited_body(retry, is_global=True),
                )
        limit = self.limit_for(method, route)
        key = (method, route, majors)
        window = self._buckets.get(key)
        if window is None or now >= window.start + limit.per:
            window = self._buckets[key] = _Window(start=now)
        reset_after = max(0.0, window.start + limit.per - now)
        if window.count >= limit.limit:
            headers = self._bucket_headers(method, route, limit, 0, reset_after)
            headers.update(limited_headers(reset_after, scope="user"))
            return Decision(
                allowed=False,
                headers=headers,
                retry_after=reset_after,
                body=limited_body(reset_after, is_global=False),
            )
        window.count += 1
        if counts_globally:
            self._global.count += 1
        remaining = limit.limit - window.count
        return Decision(
            allowed=True,
            headers=self._bucket_headers(method, route, limit, remaining, reset_after),
        )

    def _bucket_headers(
        self, method: str, route: str, limit: RouteLimit, remaining: int, reset_after: float
    ) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{self._wall_clock() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash(method, route),
        }
