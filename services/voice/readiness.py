"""Whether the gateway session is ready: voice states are only current while it is."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from services.kit.errors import Unavailable

logger = logging.getLogger(__name__)

HealthSetter = Callable[[bool], Awaitable[None]]
"""Reports the service SERVING (True) or NOT_SERVING (False)."""


class GatewayReadiness:
    """Ready from the bot's `on_ready`/`on_resumed` until a disconnect.

    Before the first ready the guild cache is empty, and while disconnected voice moves go
    unseen: a match judged then would skip players who are waiting in voice. So health says
    NOT_SERVING and OpenMatch/CloseMatch wait (at most `wait_s`) for the session, answering
    UNAVAILABLE (retried by ingest) if it does not come back in time.
    """

    def __init__(self, *, wait_s: float = 10.0) -> None:
        self._ready = asyncio.Event()
        self._wait_s = wait_s
        self._health: HealthSetter | None = None

    @property
    def is_ready(self) -> bool:
        """Whether the gateway session is ready now."""
        return self._ready.is_set()

    async def report_to(self, health: HealthSetter) -> None:
        """Report the current state through `health` now and on every change."""
        self._health = health
        await health(self.is_ready)

    async def ready(self) -> None:
        """The session is (re)established and the guild cache current."""
        if not self._ready.is_set():
            logger.info("gateway ready: serving")
        self._ready.set()
        if self._health is not None:
            await self._health(True)

    async def lost(self) -> None:
        """The gateway connection dropped: voice-state knowledge is stale until ready again."""
        if self._ready.is_set():
            logger.warning("gateway disconnected: not serving until it is ready again")
        self._ready.clear()
        if self._health is not None:
            await self._health(False)

    async def wait(self) -> None:
        """Return once ready; Unavailable when the session is not ready within the deadline."""
        if self._ready.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._wait_s):  # wait_for may eat a cancel (3.11)
                await self._ready.wait()
        if not self._ready.is_set():
            raise Unavailable(
                f"the Discord gateway session has not been ready for {self._wait_s:g}s; retry later"
            )
