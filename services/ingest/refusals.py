"""Refusal counting for logs: the first refusal, then at most one line per interval with a count."""

from __future__ import annotations

import time
from collections.abc import Callable


class RefusalLog:
    """Says which refusals to log, so an overload does not also become a flood of log lines.

    Writing one WARNING per refused request is work done exactly when there is no time for it.
    """

    def __init__(self, every_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last: float | None = None
        self._unlogged = 0

    def refused(self) -> int | None:
        """Count one refusal; how many to report (this one included) when it is time, else None."""
        self._unlogged += 1
        now = self._clock()
        if self._last is not None and now - self._last < self._every_s:
            return None
        self._last = now
        count, self._unlogged = self._unlogged, 0
        return count
