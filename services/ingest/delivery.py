"""The delivery worker: pending inbox events to the voice service, one match at a time, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
import grpc
from faceitvoice.v1 import match_pb2

from services.ingest.events import Action
from services.ingest.faceit_matches import has_roster
from services.ingest.inbox import (
    DATABASE_ERRORS,
    EVENT_COLUMNS,
    NOTIFY_CHANNEL,
    InboxRow,
    Status,
    row_from_record,
)
from services.ingest.match_json import match_from_json
from services.ingest.metrics import IngestMetrics
from services.ingest.rosters import RosterCompleter
from services.ingest.voice_client import TRANSIENT_CODES, VoiceClient
from services.kit.faceit_api import FaceitUnavailable
from services.kit.logging import log_context

logger = logging.getLogger(__name__)

# The oldest due pending event of a match that no other worker holds; a match whose older
# event waits for a retry is not touched, so events of one match apply in version order.
# The claim and the match's advisory lock in one round trip: the lock is taken only for the
# row the claim returned. `more` says whether another match has a due event too.
_CLAIM = """
SELECT c.id, c.match_id,
  pg_try_advisory_xact_lock(hashtextextended('ingest.match:' || c.match_id, 0)) AS locked,
  EXISTS (SELECT 1 FROM ingest.events m
          WHERE m.status = 'PENDING' AND m.next_attempt_at <= now()
            AND m.match_id <> c.match_id) AS more
FROM (
SELECT e.id, e.match_id FROM ingest.events e
WHERE e.status = 'PENDING' AND e.next_attempt_at <= now()
  AND NOT (e.match_id = ANY($1::text[]))
  AND NOT EXISTS (
    SELECT 1 FROM ingest.events o
    WHERE o.match_id = e.match_id AND o.status = 'PENDING'
      AND (o.version, o.id) < (e.version, e.id))
ORDER BY e.next_attempt_at, e.id
LIMIT 1
FOR UPDATE SKIP LOCKED
) c
"""

# Under the match's lock: its oldest pending event, with the newest version of its other
# open/close events (a newer one supersedes it) and the match objects of its 20 latest other
# events (to complete a roster), in one round trip.
_OLDEST_OF_MATCH = f"""
SELECT {EVENT_COLUMNS}, next_attempt_at <= now() AS due,
  (SELECT max(n.version) FROM ingest.events n
   WHERE n.match_id = e.match_id AND n.id <> e.id AND n.action IN ('OPEN', 'CLOSE')
     AND n.status IN ('PENDING', 'DELIVERED')) AS newer,
  (SELECT jsonb_agg(m.match ORDER BY m.version DESC, m.id DESC) FROM (
     SELECT o.match, o.version, o.id FROM ingest.events o
     WHERE o.match_id = e.match_id AND o.id <> e.id AND o.match IS NOT NULL
     ORDER BY o.version DESC, o.id DESC
     LIMIT 20) m) AS earlier
FROM ingest.events e
WHERE match_id = $1 AND status = 'PENDING'
ORDER BY version, id
LIMIT 1
FOR UPDATE OF e
"""

_NEXT_DUE = """
SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8 FROM ingest.events
WHERE status = 'PENDING' AND next_attempt_at > now()
"""


class DeliveryWorker:
    """Delivers pending events; woken by NOTIFY, sweeping every `sweep_interval_s` as a fallback.

    Several workers (in one process or many replicas) may run against one inbox: a claim locks
    the event row (`FOR UPDATE SKIP LOCKED`) and the match (a transaction advisory lock), so
    one match is only ever handled by one worker at a time.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        voice: VoiceClient,
        rosters: RosterCompleter,
        metrics: IngestMetrics,
        *,
        sweep_interval_s: float = 5.0,
        retry_base_s: float = 0.5,
        retry_cap_s: float = 60.0,
        concurrency: int = 4,
    ) -> None:
        self._pool = pool
        self._voice = voice
        self._rosters = rosters
        self._metrics = metrics
        self._sweep_interval_s = sweep_interval_s
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._concurrency = concurrency
        self._wake = asyncio.Event()
        self._join: Callable[[], None] | None = None
        """While a drain runs: adds a claimer to it (up to `concurrency`)."""

    def wake(self) -> None:
        """Look for due events now."""
        self._wake.set()
        if self._join is not None:
            self._join()

    def retry_delay(self, attempts: int) -> float:
        """The capped exponential delay after the `attempts`-th failed attempt."""
        return min(self._retry_cap_s, self._retry_base_s * 2 ** max(attempts - 1, 0))

    async def run(self) -> None:
        """Listen and deliver until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._listen())
            group.create_task(self._deliver_loop())

    async def _listen(self) -> None:
        while True:
            try:
                async with self._pool.acquire() as connection:
                    await self._listen_on(connection)
            except DATABASE_ERRORS as error:
                logger.warning("cannot LISTEN for new inbox events (%r); sweeping meanwhile", error)
            await asyncio.sleep(self._sweep_interval_s)  # pause before reconnecting

    async def _listen_on(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()

        def on_notify(*_: object) -> None:
            self.wake()

        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(NOTIFY_CHANNEL, on_notify)
        self._wake.set()  # events may have arrived while nobody listened
        try:
            while not connection.is_closed():
                try:
                    async with asyncio.timeout(self._sweep_interval_s):  # see _deliver_loop
                        await lost.wait()
                except TimeoutError:
                    await connection.execute("SELECT 1")  # notices a dead connection
        finally:
            if not connection.is_closed():
                await connection.remove_listener(NOTIFY_CHANNEL, on_notify)

    async def _deliver_loop(self) -> None:
        while True:
            self._wake.clear()
            wait = self._sweep_interval_s
            try:
                await self.drain()
                due_in = await self._pool.fetchval(_NEXT_DUE)
                if due_in is not None:
                    wait = min(wait, max(due_in, 0.0))
            except DATABASE_ERRORS as error:
                logger.warning("delivery sweep failed, next in %.1fs: %r", wait, error)
            except Exception:
                logger.exception("delivery sweep failed unexpectedly, next in %.1fs", wait)
            # Not asyncio.wait_for: on Python 3.11 a cancel arriving as the event is set is
            # swallowed, and the worker then never stops (it hung the app's shutdown).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def drain(self) -> int:
        """Deliver every due event that no other worker holds; return how many were handled.

        One claimer starts. Another joins, up to `concurrency`, for each event a claimer finds
        while another match has a due event too, and for each event notified while claimers
        run: a lone event meets no other claimer's queries on its way to voice, and the events
        of a burst do not wait for the slow delivery of the one before.
        """
        busy: set[str] = set()
        handled = 0
        running = 0
        joinable = True

        try:
            async with asyncio.TaskGroup() as group:

                def join() -> None:
                    nonlocal running
                    # Not once the last claimer has ended (the group is finishing then), nor
                    # once one has failed (the group is cancelling the others).
                    if joinable and 0 < running < self._concurrency:
                        running += 1
                        group.create_task(claimer())

                async def claimer() -> None:
                    nonlocal handled, running, joinable
                    try:
                        while (outcome := await self._deliver_one(busy, found=join)) is not None:
                            handled += outcome
                    except BaseException:
                        joinable = False
                        raise
                    finally:
                        running -= 1

                running = 1
                group.create_task(claimer())
                self._join = join
        finally:
            self._join = None
        return handled

    async def _deliver_one(self, busy: set[str], found: Callable[[], None]) -> int | None:
        """Handle one event: 1 if one was handled, 0 if a match was busy, None if none is due.

        `found()` is called once the event is held, before voice is called, when other
        matches have due events too.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            candidate = await connection.fetchrow(_CLAIM, list(busy))
            if candidate is None:
                return None
            match_id = candidate["match_id"]
            if not candidate["locked"]:
                busy.add(match_id)
                return 0
            record = await connection.fetchrow(_OLDEST_OF_MATCH, match_id)
            if record is None or not record["due"]:
                busy.add(match_id)
                return 0
            if candidate["more"]:
                found()
            row = row_from_record(record)
            earlier = [m for m in map(match_from_json, record["earlier"] or []) if m is not None]
            with log_context(match_id=row.match_id, event_id=row.event_id):
                await self._handle(connection, row, record["newer"], earlier)
            return 1

    async def _handle(
        self,
        connection: asyncpg.Connection,
        row: InboxRow,
        newer: int | None,
        earlier: list[match_pb2.Match],
    ) -> None:
        if newer is not None and newer > row.version:
            await self._settle(
                connection, row, Status.SUPERSEDED, f"superseded by version {newer} of the match"
            )
            return
        try:
            if row.action is Action.OPEN:
                match = await self._complete(row, earlier)
                if not has_roster(list(match.teams)):
                    await self._settle(
                        connection,
                        row,
                        Status.IGNORED,
                        "no roster known yet: held until an event with rosters arrives",
                        outcome="held",
                    )
                    return
                await self._voice.open_match(match)
            else:
                await self._voice.close_match(row.match_id, row.version, row.event)
        except FaceitUnavailable as error:
            await self._retry(connection, row, f"FACEIT Data API unavailable: {error.message}")
            return
        except grpc.aio.AioRpcError as error:
            code = error.code()
            self._metrics.delivery_failures.labels(code=code.name).inc()
            reason = f"voice answered {code.name}: {error.details()}"
            if code in TRANSIENT_CODES:
                await self._retry(connection, row, reason)
            else:
                logger.error("delivery of %s failed for good: %s", row.event, reason)
                await self._settle(connection, row, Status.FAILED, reason, attempted=True)
            return
        await self._settle(connection, row, Status.DELIVERED, "", attempted=True)

    async def _complete(self, row: InboxRow, earlier: list[match_pb2.Match]) -> match_pb2.Match:
        match = row.match or match_pb2.Match(match_id=row.match_id, version=row.version)
        return await self._rosters.complete(match, earlier)

    async def _settle(
        self,
        connection: asyncpg.Connection,
        row: InboxRow,
        status: Status,
        reason: str,
        *,
        attempted: bool = False,
        outcome: str | None = None,
    ) -> None:
        await connection.execute(
            "UPDATE ingest.events SET status = $2, last_error = $3, processed_at = now(),"
            " next_attempt_at = NULL, attempts = attempts + $4 WHERE id = $1",
            row.id,
            status.value,
            reason,
            1 if attempted else 0,
        )
        label = outcome or status.value.lower()
        self._metrics.delivery_attempts.labels(action=row.action.value, outcome=label).inc()
        logger.info(
            "%s (version %s) %s%s",
            row.event,
            row.version,
            label,
            f": {reason}" if reason else "",
            extra={"attempt": row.attempts + (1 if attempted else 0)},
        )

    async def _retry(self, connection: asyncpg.Connection, row: InboxRow, reason: str) -> None:
        attempt = row.attempts + 1
        delay = self.retry_delay(attempt)
        await connection.execute(
            "UPDATE ingest.events SET attempts = $2, last_error = $3,"
            " next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1",
            row.id,
            attempt,
            reason,
            delay,
        )
        self._metrics.delivery_attempts.labels(action=row.action.value, outcome="retry").inc()
        logger.warning(
            "delivery of %s attempt %s failed (%s); retrying in %.2fs",
            row.event,
            attempt,
            reason,
            delay,
            extra={"attempt": attempt, "next_delay_s": delay},
        )
