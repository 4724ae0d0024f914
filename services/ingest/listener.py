"""LISTEN on the inbox channel: the delivery worker woken as soon as an event is stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from services.ingest.store import NOTIFY_CHANNEL
from services.kit.database import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)


class NotifyListener:
    """Calls `on_notify` on every NOTIFY of the inbox channel, for as long as `run()` runs.

    `on_listening` is called each time LISTEN starts. A lost connection is listened on again
    after `pause_s` (the worker sweeps meanwhile); `unexpected(error, message)` is told of a
    failure that is not the database being unavailable.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        on_notify: Callable[[], None],
        on_listening: Callable[[], None],
        pause_s: float,
        unexpected: Callable[[Exception, str], None],
    ) -> None:
        self._pool = pool
        self._on_notify = on_notify
        self._on_listening = on_listening
        self._pause_s = pause_s
        self._unexpected = unexpected
        self._listening = True
        """False while LISTEN is down (after its first failure was logged as a warning)."""

    async def run(self) -> None:
        """Listen, and listen again after each loss, until cancelled."""
        while True:
            problem: str | None
            try:
                async with self._pool.acquire() as connection:
                    await self._listen_on(connection)
                problem = "the connection was lost"
            except DATABASE_UNAVAILABLE as error:
                problem = repr(error)
            except Exception as error:
                self._unexpected(error, "LISTEN for new inbox events failed; sweeping meanwhile")
                problem = None
            # One warning when listening stops, not one per attempt: during an outage the
            # sweep says once per interval that the database is unavailable.
            if problem is not None:
                log = logger.warning if self._listening else logger.debug
                log("cannot LISTEN for new inbox events (%s); sweeping meanwhile", problem)
            self._listening = False
            await asyncio.sleep(self._pause_s)  # pause before reconnecting

    async def _listen_on(self, connection: asyncpg.Connection) -> None:
        """Call `on_notify` on every NOTIFY until the connection is lost."""
        lost = asyncio.Event()

        def on_notify(*_: object) -> None:
            self._on_notify()

        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(NOTIFY_CHANNEL, on_notify)
        self._listening = True
        self._on_listening()
        try:
            # Once lost, the pool has taken the connection back: no method may be called on it.
            while not lost.is_set():
                try:
                    # Not asyncio.wait_for: see DeliveryWorker._deliver_loop.
                    async with asyncio.timeout(self._pause_s):
                        await lost.wait()
                except TimeoutError:
                    await connection.execute("SELECT 1")  # notices a dead connection
        finally:
            if not lost.is_set():
                await connection.remove_listener(NOTIFY_CHANNEL, on_notify)
