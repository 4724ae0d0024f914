"""The supervised task that deletes channels of closed matches once their grace period is over."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.logging import log_context
from services.voice.matches import MatchService
from services.voice.store import VoiceStore

logger = logging.getLogger(__name__)


class DeletionWorker:
    """Waits for the next due deletion (or a wake-up) and carries it out; runs until cancelled.

    A database outage is waited out (warning, backoff from `min_retry_s` doubling up to
    `retry_s`, retry): only a bug may end the loop and with it the service's TaskGroup.
    """

    def __init__(
        self,
        store: VoiceStore,
        matches: MatchService,
        *,
        retry_s: float = 5.0,
        min_retry_s: float = 0.25,
    ) -> None:
        self._store = store
        self._matches = matches
        self._retry_s = retry_s
        self._min_retry_s = min(min_retry_s, retry_s)
        self.outages = 0
        """Passes cut short by an unreachable database (tests wait on it)."""

    async def run_once(self) -> bool:
        """Delete every due match's channels; False when one of them failed."""
        ok = True
        for match_id in await self._store.due_deletions():
            with log_context(match_id=match_id):
                try:
                    await self._matches.finish_close(match_id)
                except Exception:
                    ok = False
                    logger.exception("deleting the closed match's channels failed; will retry")
        return ok

    async def run(self) -> None:
        """Loop forever: delete what is due, then wait until the next one is due or woken."""
        changed = self._matches.deletions_changed
        backoff = self._min_retry_s
        while True:
            changed.clear()
            wait: float | None
            try:
                ok = await self.run_once()
                wait = await self._store.seconds_to_next_deletion()
            except DATABASE_UNAVAILABLE as error:
                self.outages += 1
                logger.warning(
                    "database unavailable for channel deletions (%r); retrying in %.2fs",
                    error,
                    backoff,
                )
                wait, backoff = backoff, min(backoff * 2, self._retry_s)
            else:
                backoff = self._min_retry_s
                if not ok:
                    wait = self._retry_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # wait_for may eat a cancel (3.11)
                    await changed.wait()
