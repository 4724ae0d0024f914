"""Group commit: items submitted while the database is busy are written together, in one batch.

Every submitter still waits for its own result, so nothing is answered before it is committed;
what the batch saves is the per-statement work (a round trip, a socket write and wake-up on
both sides, a commit and its WAL flush) that one statement per item pays again and again.
Nothing waits to fill a batch: an item goes out as soon as a writer and a connection are free,
alone when the service is idle; the batches grow only while earlier ones are in flight. A
further writer (up to `writers`) starts only when the batches in flight have taken `stall_s`:
while they finish quickly, what waits goes out together in the next batch, one statement
instead of several (the statement, not the row, is most of the cost: bench/findings.md); a
stalled batch still does not hold everything behind it for long.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import asyncpg

T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E", bound=BaseException)

logger = logging.getLogger(__name__)

# How many batches a writer writes on one connection before it gives it back to the pool (which
# then applies its own rules, such as replacing a connection that served too many queries).
MAX_BATCHES_PER_CONNECTION = 100

Write = Callable[[asyncpg.Connection, Sequence[T]], Awaitable[Sequence[R]]]
"""Writes a batch on a connection and returns one result per item, in the items' order."""


@dataclass(frozen=True)
class _Submission(Generic[T, R]):
    item: T
    result: asyncio.Future[R]


class GroupCommit(Generic[T, R, E]):
    """Writes submitted items in batches, at most `writers` batches (connections) at once.

    `refuse(message)` builds the error a submitter gets when `max_waiting` items already wait
    (raised at once) or when no connection is free within `acquire_timeout_s` (every waiting
    item gets it). When a batch fails with one of `row_errors` (a value one item brought),
    its items are written again one by one, so one bad item fails alone.

    At most one writer runs while its batch has been in flight for less than `stall_s`
    (`clock` tells the time); another starts with the first submission after that.

    The pool's connections must not need a reset between uses (the batches leave no session
    state); a connection a failed batch may have left broken is terminated, not reused.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        write: Write[T, R],
        *,
        refuse: Callable[[str], E],
        writers: int,
        max_batch: int,
        max_waiting: int,
        acquire_timeout_s: float,
        stall_s: float,
        row_errors: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._write = write
        self._refuse = refuse
        self._max_writers = writers
        self._max_batch = max_batch
        self._max_waiting = max_waiting
        self._acquire_timeout_s = acquire_timeout_s
        self._row_errors = row_errors
        self._stall_s = stall_s
        self._clock = clock
        self._queue: collections.deque[_Submission[T, R]] = collections.deque()
        self._writers: set[asyncio.Task[None]] = set()
        # The connection of each batch in flight (a writer's own), and when the batch began.
        self._in_flight: dict[asyncpg.Connection, float] = {}

    @property
    def waiting(self) -> int:
        """How many items wait for a writer and a connection right now."""
        return len(self._queue)

    def refusal(self) -> E | None:
        """The error a submission would get at once now (too many wait already), or None."""
        if len(self._queue) < self._max_waiting:
            return None
        return self._refuse(f"{len(self._queue)} events already wait for the database")

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is waiting; its result once the batch is committed."""
        refusal = self.refusal()
        if refusal is not None:
            raise refusal
        result: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Submission(item, result))
        if self._another_writer_due():
            writer = asyncio.create_task(self._write_waiting(), name="group-commit-writer")
            self._writers.add(writer)
        return await result

    def _another_writer_due(self) -> bool:
        """No writer runs, or every one has had its batch in flight for stall_s (room allowing)."""
        if not self._writers:
            return True
        if len(self._writers) >= self._max_writers or len(self._in_flight) < len(self._writers):
            return False
        now = self._clock()
        return all(now - began >= self._stall_s for began in self._in_flight.values())

    async def close(self) -> None:
        """Wait until the writers have written what was submitted (call before the pool closes)."""
        while self._writers:
            await asyncio.gather(*self._writers, return_exceptions=True)

    async def _write_waiting(self) -> None:
        # A writer leaves the set in the same step in which it sees the queue empty, so every
        # queued item always has a writer that will still look at the queue.
        writer = asyncio.current_task()
        try:
            while self._queue:
                try:
                    connection = await self._pool.acquire(timeout=self._acquire_timeout_s)
                except TimeoutError:
                    message = f"no database connection free within {self._acquire_timeout_s:g}s"
                    for submission in self._take(len(self._queue)):
                        self._fail([submission], self._refuse(message))
                    continue
                except Exception as error:  # the database refuses or is gone: tell every waiter
                    self._fail(self._take(len(self._queue)), error)
                    continue
                try:
                    await self._write_batches(connection)
                finally:
                    await self._release(connection)
        finally:
            self._writers.discard(writer)
            if not self._writers:  # only when cancelled: nobody is left to write the rest
                self._fail(self._take(len(self._queue)), asyncio.CancelledError())

    async def _write_batches(self, connection: asyncpg.Connection) -> None:
        """Write what waits, batch after batch, on `connection` while it stays usable (at most
        MAX_BATCHES_PER_CONNECTION): a pool's acquire and release cost ingest ~30 us of CPU,
        about as much as a small batch's own work (bench/findings.md)."""
        for _ in range(MAX_BATCHES_PER_CONNECTION):
            if not self._queue or connection.is_closed():
                return
            batch: list[_Submission[T, R]] = []
            try:
                batch = self._take(self._max_batch)
                if batch:
                    self._in_flight[connection] = self._clock()
                    await self._write_batch(connection, batch)
            except BaseException as error:
                self._fail(batch, error)  # whatever went wrong, nobody waits forever
                if not isinstance(error, Exception):
                    raise
                return  # back to the pool: it may be the connection that failed
            finally:
                self._in_flight.pop(connection, None)

    async def _release(self, connection: asyncpg.Connection) -> None:
        try:
            await self._pool.release(connection)
        except Exception as error:  # asyncpg has closed it already; the pool opens a new one
            logger.warning("could not return a connection to the pool: %r", error)

    def _take(self, limit: int) -> list[_Submission[T, R]]:
        """Up to `limit` waiting submissions whose submitter still waits for them."""
        batch: list[_Submission[T, R]] = []
        while self._queue and len(batch) < limit:
            submission = self._queue.popleft()
            if not submission.result.done():  # a submitter cancelled before its write began
                batch.append(submission)
        return batch

    async def _write_batch(
        self, connection: asyncpg.Connection, batch: list[_Submission[T, R]]
    ) -> None:
        try:
            results = await self._write(connection, [s.item for s in batch])
        except self._row_errors as error:
            # The server refused a value, and the connection is fine: find whose it was.
            if len(batch) > 1:
                for submission in batch:
                    await self._write_batch(connection, [submission])
            else:
                self._fail(batch, error)
            return
        except BaseException as error:
            # Gone, timed out or cancelled mid-statement: the connection may be unusable.
            self._fail(batch, error)
            # A connection the server closed is already back in the pool, closed by asyncpg.
            with contextlib.suppress(asyncpg.InterfaceError):
                connection.terminate()
            if not isinstance(error, Exception):
                raise
            return
        for submission, result in zip(batch, results, strict=True):
            if not submission.result.done():
                submission.result.set_result(result)

    @staticmethod
    def _fail(batch: Sequence[_Submission[T, R]], error: BaseException) -> None:
        for submission in batch:
            if submission.result.done():
                continue
            if isinstance(error, asyncio.CancelledError):
                submission.result.cancel()
            else:
                submission.result.set_exception(error)
