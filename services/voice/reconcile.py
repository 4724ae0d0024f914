"""Reconciliation at start and after every gateway (re)connect: Discord follows the database."""

from __future__ import annotations

import asyncio
import logging

from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.logging import log_context
from services.voice.cache import ActiveMatchCache
from services.voice.matches import MatchService
from services.voice.store import VoiceStore

logger = logging.getLogger(__name__)

RECONCILE_LANES = 16
"""Matches reconciled at once; the Discord client keeps their calls within the rate limits."""


class Reconciler:
    """Rebuilds the cache, recreates missing channels of open matches, deletes those of over ones.

    Only channels the database knows (or an unfinished intent's namesake made by the bot) are
    touched; nothing else in the guild is.
    """

    def __init__(
        self,
        store: VoiceStore,
        cache: ActiveMatchCache,
        matches: MatchService,
        *,
        min_retry_s: float = 0.25,
        max_retry_s: float = 5.0,
    ) -> None:
        self._store = store
        self._min_retry_s = min_retry_s
        self._max_retry_s = max_retry_s
        self._cache = cache
        self._matches = matches
        self._lock = asyncio.Lock()
        self.runs = 0
        """Completed runs (tests wait on it)."""

    async def run(self) -> None:
        """One full pass, repeated with backoff while the database is unreachable."""
        backoff = self._min_retry_s
        async with self._lock:
            while True:
                try:
                    await self._pass()
                    return
                except DATABASE_UNAVAILABLE as error:
                    logger.warning(
                        "database unavailable for reconciliation (%r); retrying in %.2fs",
                        error,
                        backoff,
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_retry_s)

    async def _pass(self) -> None:
        """Failures of one match are logged and do not stop the others."""
        open_matches = await self._store.open_matches()
        self._cache.replace_all(open_matches)
        pending = await self._store.closed_with_channels()
        failures = 0
        queue = iter([*open_matches, *pending])

        async def lane() -> None:
            nonlocal failures
            for record in queue:
                with log_context(match_id=record.match_id):
                    try:
                        await self._matches.reconcile_match(record.match_id)
                    except DATABASE_UNAVAILABLE:
                        raise
                    except Exception:
                        failures += 1
                        logger.exception("reconciliation of the match failed")

        # Matches side by side (each under its own lock): one after the other, every match's
        # create and move latencies added up, and a restart with 500 open matches took minutes
        # where Discord's rate limits allow half of one (bench/findings.md).
        try:
            async with asyncio.TaskGroup() as lanes:
                for _ in range(RECONCILE_LANES):
                    lanes.create_task(lane())
        except* DATABASE_UNAVAILABLE as lost:
            raise lost.exceptions[0] from None  # run() retries the whole pass
        self._matches.deletions_changed.set()
        self.runs += 1
        logger.info(
            "reconciled %s open and %s closing matches (%s failed)",
            len(open_matches),
            len(pending),
            failures,
        )
