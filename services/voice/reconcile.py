"""Reconciliation at start and after every gateway (re)connect: Discord follows the database."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.logging import log_context
from services.voice.cache import ActiveMatchCache
from services.voice.matches import MatchesToReconcile, MatchService

logger = logging.getLogger(__name__)

RECONCILE_LANES = 16
"""Matches reconciled at once; the Discord client keeps their calls within the rate limits."""


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconciliation pass saw and did."""

    open_matches: int
    closing_matches: int
    failed: tuple[str, ...] = ()
    """Matches whose reconciliation failed (logged)."""
    changes: dict[str, list[str]] = field(default_factory=dict)
    """Match id -> what was changed, for the matches where something was."""


class Reconciler:
    """Rebuilds the cache, recreates missing channels of open matches, deletes those of over ones.

    Only channels the database knows (or an unfinished intent's namesake made by the bot) are
    touched; nothing else in the guild is.
    """

    def __init__(
        self,
        cache: ActiveMatchCache,
        matches: MatchService,
        *,
        min_retry_s: float = 0.25,
        max_retry_s: float = 5.0,
    ) -> None:
        self._min_retry_s = min_retry_s
        self._max_retry_s = max_retry_s
        self._cache = cache
        self._matches = matches
        self._lock = asyncio.Lock()
        self._ahead: MatchesToReconcile | None = None
        self.runs = 0
        """Completed runs (tests wait on it)."""

    async def run(self) -> ReconcileReport:
        """One full pass, repeated with backoff while the database is unreachable."""
        backoff = self._min_retry_s
        async with self._lock:
            while True:
                try:
                    return await self._pass()
                except DATABASE_UNAVAILABLE as error:
                    logger.warning(
                        "database unavailable for reconciliation (%r); retrying in %.2fs",
                        error,
                        backoff,
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_retry_s)

    async def read_ahead(self) -> None:
        """Read the matches before the gateway is ready (the lease is held), so that the pass
        at ready begins with its Discord calls; a failure leaves the read to the pass."""
        try:
            self._ahead = await self._matches.read_to_reconcile()
        except DATABASE_UNAVAILABLE as error:
            logger.warning("database unavailable for reading ahead of reconciliation (%r)", error)

    async def _read(self) -> MatchesToReconcile:
        """What was read ahead, unless a match changed since; else a read now."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if ahead.untouched:
                return ahead
            ahead.close()
        return await self._matches.read_to_reconcile()

    async def _pass(self) -> ReconcileReport:
        read = await self._read()
        try:
            return await self._reconcile(read)
        finally:
            read.close()

    async def _reconcile(self, read: MatchesToReconcile) -> ReconcileReport:
        """Failures of one match are logged and do not stop the others."""
        open_matches, pending = read.open_matches, read.closing
        self._cache.replace_all(open_matches)
        failed: list[str] = []
        changes: dict[str, list[str]] = {}
        queue = iter([*open_matches, *pending])

        async def lane() -> None:
            for record in queue:
                with log_context(match_id=record.match_id):
                    try:
                        changed = await self._matches.reconcile_match(record.match_id, read)
                    except DATABASE_UNAVAILABLE:
                        raise
                    except Exception:
                        failed.append(record.match_id)
                        logger.exception("reconciliation of the match failed")
                        continue
                    if changed:
                        changes[record.match_id] = changed

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
            len(failed),
        )
        return ReconcileReport(len(open_matches), len(pending), tuple(failed), changes)
