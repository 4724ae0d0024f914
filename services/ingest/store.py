"""Ingest's tables as SQL: the inbox (events stored once, listed, re-queued), the poll cursor."""

from __future__ import annotations

import enum
import uuid
from collections import Counter
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
from services.kit.match_json import MatchJson, match_from_json

NOTIFY_CHANNEL = "ingest_events"

EVENT_COLUMNS = (
    "id, event_id, event, match_id, version, action, status, source, attempts, last_error,"
    " match, received_at, processed_at, next_attempt_at"
)


# A batch of events inserted, and the new pending ones' wake-up, in one autocommitted statement:
# no BEGIN/COMMIT round trips. A repeat (of a stored event, or of one earlier in the batch)
# inserts nothing, so it returns no row and notifies nobody; Postgres sends one notification
# per match and transaction however many rows ask for it.
_INSERT_BATCH = """
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
    RETURNING id, event_id, status, match_id, received_at
"""
_STORE_BATCH = f"""
WITH stored AS ({_INSERT_BATCH})
SELECT id, event_id, CASE WHEN status = 'PENDING' THEN pg_notify($11, match_id) END
FROM stored
"""

# The same, for a batch in which some events come with a lease offered by this process's
# delivery worker ($12 their match ids, $13 the claim tokens, $14 the leases' seconds; only
# events whose match is in the batch once): such an event's match is leased in the same
# statement, as `ingest.claim_due_event` would lease it, when the event is new and pending,
# the statement sees no other pending event of the match (an earlier one goes first: the
# event is left to the worker's claim), and no lease on the match runs. A claimed event
# notifies nobody (its delivery is handed to the worker) and comes back with what decides its
# delivery, as the claim returns it: the newest version of the match's other open/close
# events, and the match objects of its 20 latest other events (the statement does not see
# its own rows). The leases are taken once every event is inserted (the array of the stored
# matches is made first) and in match order, so two batches never wait for each other in a
# cycle.
_STORE_BATCH_CLAIMING = f"""
WITH stored AS ({_INSERT_BATCH}), offered AS (
    SELECT o.match_id, o.token, o.lease_s
    FROM unnest($12::text[], $13::uuid[], $14::float8[]) AS o (match_id, token, lease_s)
    WHERE o.match_id = ANY (ARRAY(SELECT match_id FROM stored WHERE status = 'PENDING'))
      AND (SELECT 1 FROM ingest.events e
           WHERE e.match_id = o.match_id AND e.status = 'PENDING' LIMIT 1) IS NULL
    ORDER BY o.match_id
), taken AS (
    INSERT INTO ingest.match_leases AS l (match_id, claim_token, claimed_until)
    SELECT match_id, token, now() + make_interval(secs => lease_s) FROM offered
    ON CONFLICT (match_id) DO UPDATE
        SET claim_token = excluded.claim_token, claimed_until = excluded.claimed_until
        WHERE l.claimed_until <= now()
    RETURNING l.match_id
)
SELECT s.id, s.event_id,
    CASE WHEN s.status = 'PENDING' AND t.match_id IS NULL THEN pg_notify($11, s.match_id) END,
    t.match_id IS NOT NULL AS claimed, s.received_at,
    CASE WHEN t.match_id IS NOT NULL THEN
      (SELECT max(n.version) FROM ingest.events n
       WHERE n.match_id = s.match_id AND n.action IN ('OPEN', 'CLOSE')
         AND n.status IN ('PENDING', 'DELIVERED')) END AS newer,
    CASE WHEN t.match_id IS NOT NULL THEN
      (SELECT jsonb_agg(p.match ORDER BY p.version DESC, p.id DESC)::text FROM (
         SELECT o.match, o.version, o.id FROM ingest.events o
         WHERE o.match_id = s.match_id AND o.match IS NOT NULL
         ORDER BY o.version DESC, o.id DESC
         LIMIT 20) p) END AS earlier
FROM stored s LEFT JOIN taken t ON t.match_id = s.match_id
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
class LeaseOffer:
    """A lease the store may take on the match of the event it stores, with `token` as its
    claim token, for `seconds` (a delivery slot of this process's worker is held for it)."""

    token: uuid.UUID
    seconds: float


@dataclass(frozen=True)
class Claimed:
    """A stored event whose match the store leased: what the worker's claim would return.

    Its row and the earlier matches are decoded by `row()` and `earlier()` when the delivery
    starts, not while the stores of its batch wait for their answers.
    """

    event: InboundEvent
    row_id: int
    received_at: datetime
    newer: int | None
    """The newest version of the match's other open/close events, pending or delivered."""
    earlier_json: str | None
    """The match objects of the match's 20 latest other events, newest first, as JSON."""

    def row(self) -> InboxRow:
        """The event as the worker's claim would have read it: new, pending, due."""
        event = self.event
        return InboxRow(
            id=self.row_id,
            event_id=event.event_id,
            event=event.event,
            attempts=0,
            match_id=event.match_id,
            version=event.version,
            action=event.action,
            last_error="",
            status=Status.PENDING,
            source=event.source,
            match=match_from_json(event.match_json),
            received_at=self.received_at,
            processed_at=None,
            next_attempt_at=self.received_at,  # both the statement's now()
        )

    def earlier(self) -> list[MatchJson]:
        """The match objects of the match's latest other events, newest first."""
        matches: list[MatchJson] = orjson.loads(self.earlier_json) if self.earlier_json else []
        return matches


@dataclass(frozen=True)
class StoreResult:
    """What storing an event did: `duplicate` when the inbox had it already; `claimed` when
    its match was leased as offered."""

    duplicate: bool
    row_id: int | None
    claimed: Claimed | None = None


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
    lease: LeaseOffer | None


async def _store_batch(
    connection: asyncpg.Connection, batch: Sequence[_Store]
) -> list[StoreResult]:
    """Insert `batch` in one statement; a result per store, duplicates without a row id."""
    offered = _offered(batch)
    leases = (
        [
            [match_id for match_id, _ in offered],
            [lease.token for _, lease in offered],
            [lease.seconds for _, lease in offered],
        ]
        if offered
        else []
    )
    records = await connection.fetch(
        _STORE_BATCH_CLAIMING if offered else _STORE_BATCH,
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
        *leases,
    )
    inserted = {record["event_id"]: record for record in records}
    results = []
    for store in batch:
        # Two stores of one event_id in a batch: the first one inserted it, the second repeats.
        record = inserted.pop(store.event.event_id, None)
        if record is None:
            results.append(StoreResult(duplicate=True, row_id=None))
            continue
        claimed = None
        if offered and record["claimed"]:
            claimed = Claimed(
                store.event, record["id"], record["received_at"], record["newer"], record["earlier"]
            )
        results.append(StoreResult(duplicate=False, row_id=record["id"], claimed=claimed))
    return results


def _offered(batch: Sequence[_Store]) -> list[tuple[str, LeaseOffer]]:
    """The (match id, lease) of each store in `batch` that comes with an offer the statement
    may take. An event that shares its match with another of the batch takes no lease: which
    of them goes first is the worker's claim to decide, once both are stored."""
    offers = [(s.event.match_id, s.lease) for s in batch if s.lease is not None]
    if not offers:  # the common batch (ignored events, or no slot free): nothing to count
        return []
    of_match = Counter(s.event.match_id for s in batch)
    return [(match_id, lease) for match_id, lease in offers if of_match[match_id] == 1]


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
        self,
        event: InboundEvent,
        *,
        ignored: str | None = None,
        body: bytes | None = None,
        lease: LeaseOffer | None = None,
    ) -> StoreResult:
        """Commit `event` (PENDING, or IGNORED with the reason); a repeat changes nothing.

        With `lease`, the event's match is leased in the same statement when the worker's
        claim could take it now (`claimed` in the result: its delivery is the caller's to
        hand on); otherwise the event is stored as without.

        A repeat is the same event_id, or for a webhook the same match, event and version. The
        event is committed when this returns (with the others of its batch), and a new pending event
        wakes the delivery workers (NOTIFY, sent on commit). Raises StoreBusy at once when
        `max_waiting` stores already wait for a connection (the database is not keeping up),
        and when no connection is free within the acquire timeout.
        """
        status = Status.IGNORED if ignored is not None else Status.PENDING
        return await self._stores.submit(_Store(event, status, ignored or "", body, lease))

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
