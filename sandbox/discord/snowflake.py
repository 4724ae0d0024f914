"""Realistic, strictly increasing Discord snowflakes (ms since the Discord epoch << 22)."""

from __future__ import annotations

import time
from collections.abc import Callable

DISCORD_EPOCH_MS = 1_420_070_400_000


class SnowflakeGenerator:
    """Makes snowflakes from a wall clock, a worker id and an increment, never repeating."""

    def __init__(self, *, wall_clock: Callable[[], float] = time.time, worker_id: int = 1) -> None:
        self._wall_clock = wall_clock
        self._worker_id = worker_id & 0x1F
        self._last = 0

    def next(self) -> int:
        """Return a new snowflake greater than every earlier one."""
        ms = int(self._wall_clock() * 1000) - DISCORD_EPOCH_MS
        candidate = (ms << 22) | (self._worker_id << 17)
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


def snowflake_time(snowflake: int) -> float:
    """The Unix time (seconds) a snowflake was made at."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000
