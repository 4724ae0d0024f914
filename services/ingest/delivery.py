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

from services.ingest.delivery_sql import (
    CLAIM,
    NEXT_DUE,
    RELEASE_TOKENS,
    RETRY,
    SETTLE,
)
from services.ingest.events import Action
from services.ingest.faceit_matches import has_roster
from services.ingest.listener import NotifyListener
from services.ingest.metrics import IngestMetrics
from services.ingest.results import ResultsFinder, results_of
from services.ingest.rosters import RosterCompleter
from services.ingest.store import (
    Claimed,
    InboxRow,
    LeaseOffer,
    Status,
    StoreResult,
    row_from_record,
)
from services.ingest.voice_client import VoiceClient
from services.kit.call_errors import Failure, classify
from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.faceit_api import FaceitUnavailable
from services.kit.logging import log_context
from services.kit.match_json import MatchJson, match_from_json

logger = logging.getLogger(__name__)

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

    A webhook may take the lease itself, in the statement that stores its event, when the
    worker offers one (`offer_lease`: a delivery slot is free and held for it); the event is
    then handed over (`hand_over`) and delivered in that slot, with no NOTIFY and no claim
    in between. At most `concurrency` events are delivered at once, handed over or claimed.
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
        results: ResultsFinder | None = None,
    ) -> None:
        self._pool = pool
        self._results = results
        self._voice = voice
        self._rosters = rosters
        self._metrics = metrics
        self._sweep_interval_s = sweep_interval_s
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._free_slots = concurrency
        """Deliveries that may start now: `concurrency` less the claimers and handed-over events."""
        self._lease_s = lease_s
        self._wake = asyncio.Event()
        self._stopped: BaseException | None = None
        self._unreleased: set[uuid.UUID] = set()
        """Claim tokens whose lease may be held: the database went away during the delivery."""
        self._listener = NotifyListener(
            pool,
            on_notify=self.wake,
            on_listening=self._wake.set,  # events may have arrived while nobody listened
            pause_s=sweep_interval_s,
            unexpected=self._unexpected,
        )
        self._join: Callable[[], None] | None = None
        """While a drain runs: adds a claimer to it (while a slot is free)."""
        self._closed = False
        """Set once `run()` has ended: no more leases are offered."""
        self._handed_over: set[asyncio.Task[None]] = set()

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
                group.create_task(self._listener.run())
                group.create_task(self._deliver_loop())
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self._stopped = error
            raise
        finally:
            self._closed = True
            for task in self._handed_over:
                task.cancel()
            await asyncio.gather(*self._handed_over, return_exceptions=True)

    def offer_lease(self) -> LeaseOffer | None:
        """A lease for a webhook's store to take on its event's match, with a delivery slot
        held for the event; None when no slot is free or the worker has stopped.

        Every offer is given back with `hand_over`, whatever the store did. The lease is as
        long as a claim's: the event's delivery starts as soon as the store returns, in the
        slot held for it, so it never waits for a slot while its lease runs.
        """
        if self._closed or not self._take_slot():
            return None
        return LeaseOffer(uuid.uuid4(), self._lease_s)

    def hand_over(self, offer: LeaseOffer, result: StoreResult | None) -> None:
        """Deliver the event the store claimed with `offer`, in the slot held for it.

        When it claimed nothing the slot is free again; with no result (the store failed, and
        whether its statement took the lease is unknown) the lease is released as well.
        """
        claimed = None if result is None else result.claimed
        if claimed is None or self._closed:
            self._free_slots += 1
            if result is None:
                self._unreleased.add(offer.token)
                self._wake.set()
            elif claimed is not None:
                logger.warning(
                    "%s (version %s) stored while the delivery worker stops: delivered once its"
                    " lease runs out in %gs",
                    claimed.event.event,
                    claimed.event.version,
                    offer.seconds,
                )
            return
        task = asyncio.create_task(self._deliver_handed_over(offer.token, claimed))
        self._handed_over.add(task)
        task.add_done_callback(self._handed_over.discard)

    async def _deliver_handed_over(self, token: uuid.UUID, claimed: Claimed) -> None:
        try:
            await self._handle_claimed(token, claimed.row(), claimed.newer, claimed.earlier())
        except DATABASE_UNAVAILABLE as error:
            self._unreleased.add(token)
            logger.warning(
                "delivery of %s (version %s) stopped, the database is unavailable: %r",
                claimed.event.event,
                claimed.event.version,
                error,
            )
        except Exception as error:
            self._unexpected(error, "a handed-over delivery failed")
        finally:
            self._free_slots += 1
            # What arrived for the match meanwhile, or found no free slot, is claimed now.
            self.wake()

    def _take_slot(self) -> bool:
        if self._free_slots == 0:
            return False
        self._free_slots -= 1
        return True

    def _unexpected(self, error: Exception, what: str, *args: object) -> None:
        """Log `error` once, with its traceback, and count it."""
        logger.error(what, *args, exc_info=error)
        self._metrics.internal_errors.labels(component="delivery").inc()

    async def _deliver_loop(self) -> None:
        while True:
            self._wake.clear()
            wait = self._sweep_interval_s
            try:
                await self._release_unreleased()
                await self.drain()
                due_in = await self._pool.fetchval(NEXT_DUE)
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
            RELEASE_TOKENS,
            tokens,
        )
        self._unreleased.difference_update(tokens)
        if released:
            logger.info("released %s leases taken while the database went away", released)

    async def drain(self) -> int:
        """Deliver every due event that no other worker holds; return how many were handled.

        One claimer starts (if a delivery slot is free). Another joins, while a slot is free,
        for each event a claimer finds while another match has a due event too, and for each
        event notified while claimers run: a lone event meets no other claimer's queries on its
        way to voice, and the events of a burst do not wait for the slow delivery of the one
        before. A claimer that fails stops alone (the others finish their deliveries); the
        database being unavailable is raised once they have, anything else is logged and
        counted.
        """
        busy: set[str] = set()
        handled = 0
        running = 0
        joinable = True
        unavailable: Exception | None = None
        if not self._take_slot():
            return 0  # a handed-over delivery that ends wakes the worker

        try:
            async with asyncio.TaskGroup() as group:

                def join() -> None:
                    nonlocal running
                    # Not once the last claimer has ended (the group is finishing then), nor
                    # once one has failed (the next would most likely fail the same way).
                    if joinable and running > 0 and self._take_slot():
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
                        self._free_slots += 1

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
        record = await self._pool.fetchrow(CLAIM, list(busy), token, self._lease_s)
        if record is None:
            return None
        match_id = record["match_id"]
        if not record["leased"]:
            busy.add(match_id)
            return 0
        if record["more"]:
            found()
        await self._handle_claimed(
            token, row_from_record(record), record["newer"], record["earlier"] or []
        )
        return 1

    async def _handle_claimed(
        self, token: uuid.UUID, row: InboxRow, newer: int | None, earlier: list[MatchJson]
    ) -> None:
        """Deliver `row`, whose match `token` leases; a failure other than the database being
        unavailable is logged and counted, and leaves the lease to run out."""
        with log_context(match_id=row.match_id, event_id=row.event_id):
            try:
                await self._handle(_Lease(row.match_id, token), row, newer, earlier)
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

    async def _handle(
        self,
        lease: _Lease,
        row: InboxRow,
        newer: int | None,
        earlier: list[MatchJson],
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
                    await self._close(row)
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
            if classify(error) is Failure.TRANSIENT:
                await self._retry(lease, row, reason)
            else:
                logger.error("delivery of %s failed for good: %s", row.event, reason)
                await self._settle(lease, row, Status.FAILED, reason, attempted=True)
            return
        await self._settle(lease, row, Status.DELIVERED, "", attempted=True)

    async def _close(self, row: InboxRow) -> None:
        """CloseMatch at once; for a finish without results, those of the Data API follow in
        a second CloseMatch (the close never waits for them; voice adds them to the feed)."""
        results = results_of(row.match)
        await self._voice.close_match(row.match_id, row.version, row.event, results)
        if self._results is None or not self._results.needed(row.event, results):
            return
        found = await self._results.find(row.match_id)
        if found is not None:
            await self._voice.close_match(row.match_id, row.version, row.event, found)

    async def _complete(self, row: InboxRow, earlier: list[MatchJson]) -> match_pb2.Match:
        match = row.match or match_pb2.Match(match_id=row.match_id, version=row.version)
        # Parsed only as far as the rosters need them (a match with its rosters needs none).
        previous = (m for m in map(match_from_json, earlier) if m is not None)
        return await self._rosters.complete(match, previous)

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
            SETTLE,
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
            RETRY, row.id, attempt, reason, delay, lease.match_id, lease.token
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
