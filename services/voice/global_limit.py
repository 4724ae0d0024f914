"""Discord's global request limit, one count shared by voice's two HTTP paths: its own
concurrent client for creates and moves (`discord_rest.py`) and py-cord's (the match feed,
deletes, fetches, `metered_http.py`). Counted apart, the two together overran the limit: a
restart with 100 open matches, each feed message edited beside its channel's repair, drew
~100 global 429s."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

GLOBAL_LIMIT = 50
"""Requests a second Discord lets a bot send over all routes (interactions aside)."""
GLOBAL_SPAN_S = 1.02
"""The span in which at most GLOBAL_LIMIT requests are sent: a second, and a margin for the
requests' own latency to differ (Discord counts them when they arrive)."""
PYCORD_SHARE = 40
"""py-cord's path sends only while the span holds fewer requests than this: the rest of the
limit is kept for channel creates and moves, which the feed must never delay."""


class GlobalLimit:
    """When the requests of the last GLOBAL_SPAN_S were sent, oldest first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sent: collections.deque[float] = collections.deque()

    def wait_s(self, now: float, limit: int = GLOBAL_LIMIT) -> float:
        """Seconds until the span holds fewer than `limit` requests (0: it does now)."""
        while self._sent and self._sent[0] <= now - GLOBAL_SPAN_S:
            self._sent.popleft()
        if len(self._sent) < limit:
            return 0.0
        return self._sent[len(self._sent) - limit] + GLOBAL_SPAN_S - now

    def record(self, now: float) -> None:
        """Count a request sent at `now`."""
        self._sent.append(now)

    async def take(self, limit: int = PYCORD_SHARE) -> None:
        """Wait until the span holds fewer than `limit` requests, then count one."""
        while True:
            now = self._clock()
            wait = self.wait_s(now, limit)
            if not wait:
                self.record(now)
                return
            await asyncio.sleep(wait)  # pacing: the span frees a slot at a known time
