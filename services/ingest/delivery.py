"""The delivery worker: pending inbox events to the voice service, one match at a time, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import grpc
from faceitvoice.v1 import match_pb2

from services.ingest.events import Action
from services.ingest.faceit_matches import has_roster
from services.ingest.inbox import EVENT_COLUMNS, NOTIFY_CHANNEL, InboxRow, Status, row_from_record
from services.ingest.match_json import match_from_json
from services.ingest.metrics import IngestMetrics
from services.ingest.rosters import RosterCompleter
from services.ingest.voice_client import TRANSIENT_CODES, VoiceClient
from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.faceit_api import FaceitUnavailable
from services.kit.logging import log_context

logger = logging.getLogger(__name__)

# The oldest due pending event of a match that nobody leases (a match whose older event waits
# for a retry is not touched, so events of one match apply in version order), and a lease on
# its match, in one autocommitted statement. The lease's primary key makes two claims of one
# match wait for each other, and the loser (its ON CONFLICT finding a lease still running)
# returns `leased` false. `more` says whether another match has a due event too.
_CLAIM = """
WITH candidate AS (
    SELECT e.match_id FROM ingest.events e
    WHERE e.status = 'PENDING' AND e.next_attempt_at <= now()
      AND NOT (e.match_id = ANY($1::text[]))
      AND NOT EXISTS (
        SELECT 1 FROM ingest.events o
        WHERE o.match_id = e.match_id AND o.status = 'PENDING'
          AND (o.version, o.id) < (e.version, e.id))
      AND NOT EXISTS (
        SELECT 1 FROM ingest.match_leases l
        WHERE l.match_id = e.match_id AND l.claimed_until > now())
    ORDER BY e.next_attempt_at, e.id
    LIMIT 1
), leased AS (
    INSERT INTO ingest.match_leases AS l (match_id, claim_token, claimed_until)
    SELECT match_id, $2, now() + make_interval(secs => $3) FROM candidate
    ON CONFLICT (match_id) DO UPDATE
        SET claim_token = excluded.claim_token, claimed_until = excluded.claimed_until
        WHERE l.claimed_until <= now()
    RETURNING match_id
)
SELECT c.match_id, EXISTS (SELECT 1 FROM leased) AS leased,
  EXISTS (SELECT 1 FROM ingest.events m
          WHERE m.status = 'PENDING' AND m.next_attempt_at <= now()
            AND m.match_id <> c.match_id) AS more
FROM candidate c
"""

# Once the match is leased, in a statement of its own (so it sees every event committed
# before the lease): its oldest pending event, with the newest version of its other
# open/close events (a newer one supersedes it) and the match objects of its 20 latest other
# events (to complete a roster).
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
"""

# An outcome is recorded only by the holder of the lease, and releases it, in one statement;
# a worker whose lease was taken over records nothing (the new holder handles the event).
_RELEASE = "DELETE FROM ingest.match_leases WHERE match_id = $1 AND claim_token = $2"

_SETTLE = """
WITH lease AS (
    DELETE FROM ingest.match_leases WHERE match_id = $5 AND claim_token = $6 RETURNING 1
)
UPDATE ingest.events SET status = $2, last_error = $3, processed_at = now(),
    next_attempt_at = NULL, attempts = attempts + $4
WHERE id = $1 AND EXISTS (SELECT 1 FROM lease)
RETURNING id
"""

_RETRY = """
WITH lease AS (
    DELETE FROM ingest.match_leases WHERE match_id = $5 AND claim_token = $6 RETURNING 1
)
UPDATE ingest.events SET attempts = $2, last_error = $3,
    next_attempt_at = now() + make_interval(secs => $4)
WHERE id = $1 AND EXISTS (SELECT 1 FROM lease)
RETURNING id
"""

# When the next pending event becomes deliverable: its retry time, or the end of a lease
# (another replica's, or a dead worker's) that holds its match.
_NEXT_DUE = """
SELECT EXTRACT(EPOCH FROM min(GREATEST(e.next_attempt_at, l.claimed_until)) - now())::float8
FROM ingest.events e LEFT JOIN ingest.match_leases l ON l.match_id = e.match_id
WHERE e.status = 'PENDING' AND (e.next_attempt_at > now() OR l.claimed_until > now())
"""

# The share of a lease the calls to FACEIT and voice may take: the rest is left for the
# statements around them, so a lease never runs out while its holder may still reach voice
# (which would let another worker deliver the same event at the same time).
_CALLS_SHARE_OF_LEASE = 0.8


@dataclass(frozen=True)
class _Lease:
    """A worker's hold on one match's delivery, until Postgres' clock passes its end."""

    match_id: str
    token: uuid.UUID


class DeliveryWorker:
    """Delivers pending events; woken by NOTIFY, sweeping every `sweep_interval_s` as a fallback.

    Several workers (in one process or many replicas) may run against one inbox: a worker
    leases a match (`ingest.match_leases`) for `lease_s` before it delivers, so one match is
    only ever handled by one worker at a time, and holds no transaction, lock or connection
    while it waits for FACEIT or voice. A lease whose worker died runs out and the match's
    event is delivered again.
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
        lease_s: float = 60.0,
    ) -> None:
        self._pool = pool
        self._voice = voice
        self._rosters = rosters
        self._metrics = metrics
        self._sweep_interval_s = sweep_interval_s
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._concurrency = concurrency
        self._lease_s = lease_s
        self._wake = asyncio.Event()
        self._stopped: BaseException | None = None
        self._unreleased: set[uuid.UUID] = set()
        """Claim tokens whose lease may be held: the database went away during the delivery."""
        self._listening = True
        """False while LISTEN is down (after its first failure was logged as a warning)."""
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

    @property
    def stopped(self) -> BaseException | None:
        """Why `run()` ended other than by being cancelled (None while it runs, or never ran)."""
        return self._stopped

    async def run(self) -> None:
        """Listen and deliver until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._listen())
                group.create_task(self._deliver_loop())
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self._stopped = error
            raise

    def _unexpected(self, error: Exception, what: str, *args: object) -> None:
        """Log `error` once, with its traceback, and count it."""
        logger.error(what, *args, exc_info=error)
        self._metrics.internal_errors.labels(component="delivery").inc()

    async def _listen(self) -> None:
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
            await asyncio.sleep(self._sweep_interval_s)  # pause before reconnecting

    async def _listen_on(self, connection: asyncpg.Connection) -> None:
        """Wake the worker on every NOTIFY until the connection is lost."""
        lost = asyncio.Event()

        def on_notify(*_: object) -> None:
            self.wake()

        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(NOTIFY_CHANNEL, on_notify)
        self._listening = True
        self._wake.set()  # events may have arrived while nobody listened
        try:
            # Once lost, the pool has taken the connection back: no method may be called on it.
            while not lost.is_set():
                try:
                    async with asyncio.timeout(self._sweep_interval_s):  # see _deliver_loop
                        await lost.wait()
                except TimeoutError:
                    await connection.execute("SELECT 1")  # notices a dead connection
        finally:
            if not lost.is_set():
                await connection.remove_listener(NOTIFY_CHANNEL, on_notify)

    async def _deliver_loop(self) -> None:
        while True:
            self._wake.clear()
            wait = self._sweep_interval_s
            try:
                await self._release_unreleased()
                await self.drain()
                due_in = await self._pool.fetchval(_NEXT_DUE)
                if due_in is not None:
                    wait = min(wait, max(due_in, 0.0))
            except DATABASE_UNAVAILABLE as error:
                logger.warning("delivery sweep failed, next in %.1fs: %r", wait, error)
            except Exception as error:
                self._unexpected(error, "delivery sweep failed unexpectedly, next in %.1fs", wait)
            # Not asyncio.wait_for: on Python 3.11 a cancel arriving as the event is set is
            # swallowed, and the worker then never stops (it hung the app's shutdown).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _release_unreleased(self) -> None:
        """Give up the leases whose claim or outcome the database may have missed.

        Their events are still pending: delivered again now (voice applies a version once),
        not only when the leases would have run out.
        """
        if not self._unreleased:
            return
        tokens = list(self._unreleased)
        released = await self._pool.fetchval(
            "WITH gone AS (DELETE FROM ingest.match_leases"
            " WHERE claim_token = ANY($1::uuid[]) RETURNING 1) SELECT count(*) FROM gone",
            tokens,
        )
        self._unreleased.difference_update(tokens)
        if released:
            logger.info("released %s leases taken while the database went away", released)

    async def drain(self) -> int:
        """Deliver every due event that no other worker holds; return how many were handled.

        One claimer starts. Another joins, up to `concurrency`, for each event a claimer finds
        while another match has a due event too, and for each event notified while claimers
        run: a lone event meets no other claimer's queries on its way to voice, and the events
        of a burst do not wait for the slow delivery of the one before. A claimer that fails
        stops alone (the others finish their deliveries); the database being unavailable is
        raised once they have, anything else is logged and counted.
        """
        busy: set[str] = set()
        handled = 0
        running = 0
        joinable = True
        unavailable: Exception | None = None

        try:
            async with asyncio.TaskGroup() as group:

                def join() -> None:
                    nonlocal running
                    # Not once the last claimer has ended (the group is finishing then), nor
                    # once one has failed (the next would most likely fail the same way).
                    if joinable and 0 < running < self._concurrency:
                        running += 1
                        group.create_task(claimer())

                async def claimer() -> None:
                    nonlocal handled, running, joinable, unavailable
                    try:
                        while (outcome := await self._deliver_one(busy, found=join)) is not None:
                            handled += outcome
                    except DATABASE_UNAVAILABLE as error:
                        joinable = False
                        unavailable = error
                    except Exception as error:
                        joinable = False
                        self._unexpected(error, "a delivery claimer failed")
                    finally:
                        running -= 1

                running = 1
                group.create_task(claimer())
                self._join = join
        finally:
            self._join = None
        if unavailable is not None:
            raise unavailable
        return handled

    async def _deliver_one(self, busy: set[str], found: Callable[[], None]) -> int | None:
        """Handle one event: 1 if one was handled, 0 if a match was busy, None if none is due.

        `found()` is called once the match is leased, before voice is called, when other
        matches have due events too.
        """
        token = uuid.uuid4()
        try:
            return await self._claim_and_handle(token, busy, found)
        except DATABASE_UNAVAILABLE:
            # Whether the lease was taken, or its outcome recorded, is unknown: whatever
            # the token holds is released once the database is back.
            self._unreleased.add(token)
            raise

    async def _claim_and_handle(
        self, token: uuid.UUID, busy: set[str], found: Callable[[], None]
    ) -> int | None:
        # One connection for the claim and the read (one pool reset, not two), given back
        # before FACEIT or voice is called.
        async with self._pool.acquire() as connection:
            candidate = await connection.fetchrow(_CLAIM, list(busy), token, self._lease_s)
            if candidate is None:
                return None
            match_id = candidate["match_id"]
            if not candidate["leased"]:
                busy.add(match_id)
                return 0
            record = await connection.fetchrow(_OLDEST_OF_MATCH, match_id)
            if record is None or not record["due"]:
                await connection.execute(_RELEASE, match_id, token)
                busy.add(match_id)
                return 0
        if candidate["more"]:
            found()
        row = row_from_record(record)
        earlier = [m for m in map(match_from_json, record["earlier"] or []) if m is not None]
        with log_context(match_id=row.match_id, event_id=row.event_id):
            try:
                await self._handle(_Lease(match_id, token), row, record["newer"], earlier)
            except DATABASE_UNAVAILABLE:
                raise
            except Exception as error:
                # The lease stays until it runs out: the event is tried again then, not in
                # a loop as fast as it fails.
                self._unexpected(
                    error,
                    "delivery of %s failed unexpectedly; retried once its lease runs out in %gs",
                    row.event,
                    self._lease_s,
                )
        return 1

    async def _handle(
        self,
        lease: _Lease,
        row: InboxRow,
        newer: int | None,
        earlier: list[match_pb2.Match],
    ) -> None:
        if newer is not None and newer > row.version:
            await self._settle(
                lease, row, Status.SUPERSEDED, f"superseded by version {newer} of the match"
            )
            return
        limit_s = self._lease_s * _CALLS_SHARE_OF_LEASE
        try:
            async with asyncio.timeout(limit_s) as calls:
                if row.action is Action.OPEN:
                    match = await self._complete(row, earlier)
                    if not has_roster(list(match.teams)):
                        await self._settle(
                            lease,
                            row,
                            Status.IGNORED,
                            "no roster known yet: held until an event with rosters arrives",
                            outcome="held",
                        )
                        return
                    await self._voice.open_match(match)
                else:
                    await self._voice.close_match(row.match_id, row.version, row.event)
        except TimeoutError:
            if not calls.expired():
                raise
            reason = f"FACEIT and voice took over {limit_s:g}s (INGEST_DELIVERY_LEASE_S)"
            await self._retry(lease, row, reason)
            return
        except FaceitUnavailable as error:
            await self._retry(lease, row, f"FACEIT Data API unavailable: {error.message}")
            return
        except grpc.aio.AioRpcError as error:
            code = error.code()
            self._metrics.delivery_failures.labels(code=code.name).inc()
            reason = f"voice answered {code.name}: {error.details()}"
            if code in TRANSIENT_CODES:
                await self._retry(lease, row, reason)
            else:
                logger.error("delivery of %s failed for good: %s", row.event, reason)
                await self._settle(lease, row, Status.FAILED, reason, attempted=True)
            return
        await self._settle(lease, row, Status.DELIVERED, "", attempted=True)

    async def _complete(self, row: InboxRow, earlier: list[match_pb2.Match]) -> match_pb2.Match:
        match = row.match or match_pb2.Match(match_id=row.match_id, version=row.version)
        return await self._rosters.complete(match, earlier)

    @staticmethod
    def _lease_lost(row: InboxRow) -> None:
        logger.warning(
            "the lease on the match ran out and another worker took it over before the outcome"
            " of %s (version %s) was recorded; that worker handles it",
            row.event,
            row.version,
        )

    async def _settle(
        self,
        lease: _Lease,
        row: InboxRow,
        status: Status,
        reason: str,
        *,
        attempted: bool = False,
        outcome: str | None = None,
    ) -> None:
        recorded = await self._pool.fetchval(
            _SETTLE,
            row.id,
            status.value,
            reason,
            1 if attempted else 0,
            lease.match_id,
            lease.token,
        )
        if recorded is None:
            self._lease_lost(row)
            return
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

    async def _retry(self, lease: _Lease, row: InboxRow, reason: str) -> None:
        attempt = row.attempts + 1
        delay = self.retry_delay(attempt)
        recorded = await self._pool.fetchval(
            _RETRY, row.id, attempt, reason, delay, lease.match_id, lease.token
        )
        if recorded is None:
            self._lease_lost(row)
            return
        self._metrics.delivery_attempts.labels(action=row.action.value, outcome="retry").inc()
        logger.warning(
            "delivery of %s attempt %s failed (%s); retrying in %.2fs",
            row.event,
            attempt,
            reason,
            delay,
            extra={"attempt": attempt, "next_delay_s": delay},
        )
