"""Ingest's tables as SQL: the inbox (events stored once, listed, re-queued), the poll cursor."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson
from faceitvoice.v1 import match_pb2

from services.ingest.events import Action, InboundEvent, Source
from services.ingest.group_commit import GroupCommit
from services.kit.database import session_untouched
from services.kit.errors import FailedPrecondition, NotFound
from services.kit.log_throttle import LogThrottle
from services.kit.match_json import match_from_json

NOTIFY_CHANNEL = "ingest_events"

EVENT_COLUMNS = (
    "id, event_id, event, match_id, version, action, status, source, attempts, last_error,"
    " match, received_at, processed_at, next_attempt_at"
)


# A batch of events inserted, and the new pending ones' wake-up, in one autocommitted statement:
# no BEGIN/COMMIT round trips. A repeat (of a stored event, or of one earlier in the batch)
# inserts nothing, so it returns no row and notifies nobody; Postgres sends one notification
# per match and transaction however many rows ask for it.
_STORE_BATCH = """
WITH stored AS (
    INSERT INTO ingest.events (event_id, event, match_id, version, action, status, source,
        last_error, match, body, processed_at, next_attempt_at)
    SELECT event_id, event, match_id, version, action, status, source, last_error,
        match::jsonb, body, CASE WHEN status = 'IGNORED' THEN now() END,
        CASE WHEN status = 'PENDING' THEN now() END
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::text[], $10::bytea[]) WITH ORDINALITY
        AS batch (event_id, event, match_id, version, action, status, source, last_error,
            match, body, position)
    ORDER BY position
    ON CONFLICT DO NOTHING
    RETURNING id, event_id, status, match_id
)
SELECT id, event_id, CASE WHEN status = 'PENDING' THEN pg_notify($11, match_id) END
FROM stored
"""


async def create_store_pool(dsn: str, *, size: int, command_timeout: float = 10.0) -> asyncpg.Pool:
    """The connections `Inbox.store` uses, apart from everything else in the process.

    Apart, so that delivery, the poller and the ops routes never leave a webhook waiting for a
    connection; and without asyncpg's reset query on release (UNLISTEN, RESET ALL, ...), which
    would be a second round trip per batch for state the one statement never creates. Every
    connection is opened with the pool and kept, as `create_pool` does.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=size,
        max_size=size,
        command_timeout=command_timeout,
        reset=session_untouched,
    )


class StoreBusy(TimeoutError):
    """No database connection was free in time to store an event (the caller may retry).

    `report` is how many refusals to log now (this one included), None when not to log it.
    """

    def __init__(self, message: str, report: int | None) -> None:
        super().__init__(message)
        self.report = report


class Status(enum.StrEnum):
    """Where an inbox event is in its delivery (the proto's EventStatus)."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    IGNORED = "IGNORED"
    SUPERSEDED = "SUPERSEDED"


@dataclass(frozen=True)
class InboxRow:
    """One stored event."""

    id: int
    event_id: str
    event: str
    match_id: str
    version: int
    action: Action
    status: Status
    source: Source
    attempts: int
    last_error: str
    match: match_pb2.Match | None
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class StoreResult:
    """What storing an event did: `duplicate` when the inbox had it already."""

    duplicate: bool
    row_id: int | None


def row_from_record(record: asyncpg.Record) -> InboxRow:
    """An InboxRow from a `SELECT {EVENT_COLUMNS}` record."""
    return InboxRow(
        id=record["id"],
        event_id=record["event_id"],
        event=record["event"],
        match_id=record["match_id"],
        version=record["version"],
        action=Action(record["action"]),
        status=Status(record["status"]),
        source=Source(record["source"]),
        attempts=record["attempts"],
        last_error=record["last_error"],
        match=match_from_json(record["match"]),
        received_at=record["received_at"],
        processed_at=record["processed_at"],
        next_attempt_at=record["next_attempt_at"],
    )


@dataclass(frozen=True)
class _Store:
    """One event to store, with the status and reason it is stored with."""

    event: InboundEvent
    status: Status
    ignored: str
    body: bytes | None


async def _store_batch(
    connection: asyncpg.Connection, batch: Sequence[_Store]
) -> list[StoreResult]:
    """Insert `batch` in one statement; a result per store, duplicates without a row id."""
    records = await connection.fetch(
        _STORE_BATCH,
        [s.event.event_id for s in batch],
        [s.event.event for s in batch],
        [s.event.match_id for s in batch],
        [s.event.version for s in batch],
        [s.event.action.value for s in batch],
        [s.status.value for s in batch],
        [s.event.source.value for s in batch],
        [s.ignored for s in batch],
        # orjson: the standard library's encoder was 7% of ingest's CPU per webhook.
        [None if s.event.match_json is None else _json_text(s.event.match_json) for s in batch],
        [s.body for s in batch],
        NOTIFY_CHANNEL,
    )
    inserted = {record["event_id"]: record["id"] for record in records}
    results = []
    for store in batch:
        # Two stores of one event_id in a batch: the first one inserted it, the second repeats.
        row_id = inserted.pop(store.event.event_id, None)
        results.append(StoreResult(duplicate=row_id is None, row_id=row_id))
    return results


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


class Inbox:
    """The `ingest.events` table behind the webhook, the poller and IngestService.

    Stores go through a group commit on the store pool: while a batch is in flight, the events
    that arrive wait and go out together in the next one (at most `max_batch`); a further
    writer (up to `writers`) joins once the batches in flight have taken `stall_s`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        store_pool: asyncpg.Pool | None = None,
        acquire_timeout_s: float = 2.0,
        max_waiting: int = 128,
        writers: int = 2,
        max_batch: int = 100,
        stall_s: float = 0.1,
    ) -> None:
        self._pool = pool
        self._refusals = LogThrottle()
        self._stores: GroupCommit[_Store, StoreResult, StoreBusy] = GroupCommit(
            store_pool or pool,
            _store_batch,
            refuse=self._refuse,
            writers=writers,
            max_batch=max_batch,
            max_waiting=max_waiting,
            acquire_timeout_s=acquire_timeout_s,
            stall_s=stall_s,
            row_errors=(asyncpg.DataError, asyncpg.IntegrityConstraintViolationError),
        )

    def _refuse(self, message: str) -> StoreBusy:
        return StoreBusy(message, self._refusals.count())

    @property
    def waiting(self) -> int:
        """How many stores wait for a connection right now."""
        return self._stores.waiting

    def busy(self) -> StoreBusy | None:
        """The refusal a store would raise at once now (too many wait already), or None."""
        return self._stores.refusal()

    async def store(
        self, event: InboundEvent, *, ignored: str | None = None, body: bytes | None = None
    ) -> StoreResult:
        """Commit `event` (PENDING, or IGNORED with the reason); a repeat changes nothing.

        A repeat is the same event_id, or for a webhook the same match, event and version. The
        event is committed when this returns (with the others of its batch), and a new pending event
        wakes the delivery workers (NOTIFY, sent on commit). Raises StoreBusy at once when
        `max_waiting` stores already wait for a connection (the database is not keeping up),
        and when no connection is free within the acquire timeout.
        """
        status = Status.IGNORED if ignored is not None else Status.PENDING
        return await self._stores.submit(_Store(event, status, ignored or "", body))

    async def close(self) -> None:
        """Finish the stores under way (call before the store pool closes)."""
        await self._stores.close()

    async def get(self, row_id: int) -> InboxRow:
        """The event with inbox id `row_id`; NotFound if there is none."""
        record = await self._pool.fetchrow(
            f"SELECT {EVENT_COLUMNS} FROM ingest.events WHERE id = $1", row_id
        )
        if record is None:
            raise NotFound(f"no inbox event with id {row_id}")
        return row_from_record(record)

    async def list_events(
        self,
        *,
        status: Status | None = None,
        match_id: str = "",
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[InboxRow]:
        """Up to `limit` events, newest first, with an id below `before_id` when given."""
        records = await self._pool.fetch(
            f"SELECT {EVENT_COLUMNS} FROM ingest.events"
            " WHERE ($1::text IS NULL OR status = $1)"
            " AND ($2 = '' OR match_id = $2)"
            " AND ($3::bigint IS NULL OR id < $3)"
            " ORDER BY id DESC LIMIT $4",
            status.value if status is not None else None,
            match_id,
            before_id,
            limit,
        )
        return [row_from_record(record) for record in records]

    async def last_open(self, match_id: str) -> match_pb2.Match | None:
        """The Match of the match's latest open event delivered or on its way to voice."""
        value = await self._pool.fetchval(
            "SELECT match FROM ingest.events"
            " WHERE match_id = $1 AND action = 'OPEN' AND status IN ('PENDING', 'DELIVERED')"
            " AND match IS NOT NULL ORDER BY id DESC LIMIT 1",
            match_id,
        )
        return match_from_json(value)

    async def retry(self, row_id: int) -> InboxRow:
        """Put a FAILED event back in the queue; FailedPrecondition for any other status."""
        async with self._pool.acquire() as connection, connection.transaction():
            record = await connection.fetchrow(
                "SELECT status, match_id FROM ingest.events WHERE id = $1 FOR UPDATE", row_id
            )
            if record is None:
                raise NotFound(f"no inbox event with id {row_id}")
            if record["status"] != Status.FAILED:
                raise FailedPrecondition(
                    f"inbox event {row_id} is {record['status']}, only FAILED events can be retried"
                )
            updated = await connection.fetchrow(
                "UPDATE ingest.events SET status = 'PENDING', attempts = 0, last_error = '',"
                " processed_at = NULL, next_attempt_at = now()"
                f" WHERE id = $1 RETURNING {EVENT_COLUMNS}",
                row_id,
            )
            await connection.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, record["match_id"])
        return row_from_record(updated)

    async def depth(self) -> dict[Status, int]:
        """How many events the inbox holds, by status."""
        records = await self._pool.fetch(
            "SELECT status, count(*) AS n FROM ingest.events GROUP BY status"
        )
        counts = dict.fromkeys(Status, 0)
        for record in records:
            counts[Status(record["status"])] = record["n"]
        return counts


class PollCursor:
    """The last open match a poll checked (`ingest.poll_cursor`): where the next one starts."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self) -> str:
        """The match id the last poll checked last ("" before the first)."""
        value: str | None = await self._pool.fetchval(
            "SELECT last_checked_match_id FROM ingest.poll_cursor"
        )
        return value or ""

    async def save(self, match_id: str) -> None:
        """Remember `match_id` as the last one checked."""
        await self._pool.execute(
            "INSERT INTO ingest.poll_cursor (last_checked_match_id) VALUES ($1)"
            " ON CONFLICT (singleton)"
            " DO UPDATE SET last_checked_match_id = excluded.last_checked_match_id",
            match_id,
        )
