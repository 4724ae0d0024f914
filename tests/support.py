"""Helpers shared by the tests: waiting for a condition with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Await `probe()` until it returns a truthy value, or fail after `timeout` seconds.

    Exceptions raised by the probe count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            last_value = await probe()
            if last_value:
                return last_value
        except Exception as exc:  # the probe may fail until the system is ready
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; "
                f"last value {last_value!r}, last error {last_error!r}"
            )
        await asyncio.sleep(interval)  # polling interval, not a wait for readiness
