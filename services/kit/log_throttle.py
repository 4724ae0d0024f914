"""Log throttling: the first occurrence gets a line, then at most one per interval, with a count."""

from __future__ import annotations

import time
from collections.abc import Callable


class LogThrottle:
    """Says which occurrences (refused or ignored requests) to log, so a flood of requests does
    not also become a flood of log lines.

    Writing one line per request is work done exactly when there is no time for it: a line is
    a record, a format and a write to a pipe, as much CPU as a third of storing the webhook.
    """

    def __init__(self, every_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last: float | None = None
        self._unlogged = 0

    def count(self) -> int | None:
        """Count one; how many to report (this one included) when it is time to, else None."""
        self._unlogged += 1
        now = self._clock()
        if self._last is not None and now - self._last < self._every_s:
            return None
        self._last = now
        count, self._unlogged = self._unlogged, 0
        return count
