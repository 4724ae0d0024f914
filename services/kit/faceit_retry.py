"""How FACEIT Data API calls retry and how many requests they may send: the backoff policy,
`Retry-After`, and the per-task request budget."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class RequestBudgetExhausted(Exception):
    """A call would send more HTTP requests than the caller's `request_budget` allows."""


class RequestBudget:
    """At most `limit` HTTP requests: each attempt a call makes counts, retries included."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0

    def spend(self) -> None:
        """Count one request about to be sent; RequestBudgetExhausted when none is left."""
        if self.sent >= self.limit:
            raise RequestBudgetExhausted(f"budget of {self.limit} requests used")
        self.sent += 1


# Per task, so that a budget bounds the calls of its holder only, not those of other tasks
# (the delivery worker's roster completion) sharing the client.
_BUDGET: ContextVar[RequestBudget | None] = ContextVar("faceit_request_budget", default=None)


@contextlib.contextmanager
def request_budget(limit: int) -> Iterator[RequestBudget]:
    """Bound the requests that calls made inside the block (in this task) send to `limit`."""
    budget = RequestBudget(limit)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def current_budget() -> RequestBudget | None:
    """The budget of the `request_budget` block this task is in, if any."""
    return _BUDGET.get()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to back off on 429/5xx, timeouts and connection errors.

    Delay before retry n (1-based) is uniform in [0, min(max_delay, base_delay * 2**(n-1))]
    ("full jitter"); a `Retry-After` header replaces it, capped at `max_retry_after`.
    """

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 5.0
    max_retry_after: float = 30.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The jittered delay before retry number `retry` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return rng.uniform(0, ceiling)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)
