"""The durable inbox in schema `ingest`: storing events once, listing and re-queueing them."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from faceitvoice.v1 import match_pb2
from google.protobuf import json_format

from services.ingest.events import Action, InboundEvent, Source
from services.ingest.refusals import RefusalLog
from services.kit.errors import FailedPrecondition, InvalidArgument, NotFound

NOTIFY_CHANNEL = "ingest_events"

# What a database that is down, refusing or restarting raises through asyncpg; an idle
# connection whose server process was terminated can surface as an InternalClientError
# ("another operation is in progress") on its next use.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

EVENT_COLUMNS = (
    "id, event_id, event, match_id, version, action, status, source, attempts, last_error,"
    " match, received_at, processed_at, next_attempt_at"
)


# The insert and its wake-up in one autocommitted statement: no BEGIN/COMMIT round trips. A
# repeat inserts nothing, so it returns no row and notifies nobody.
_STORE = """
WITH stored AS (
    INSERT INTO ingest.events (event_id, event, match_id, version, action, status, source,
        last_error, match, body, processed_at, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10,
        CASE WHEN $6 = 'IGNORED' THEN now() END, CASE WHEN $6 = 'PENDING' THEN now() END)
    ON CONFLICT DO NOTHING
    RETURNING id, status, match_id
)
SELECT id, CASE WHEN status = 'PENDING' THEN pg_notify($11, match_id)::text END AS notified
FROM stored
"""

_STATUS_NAMES: dict[int, str] = {number: name for name, number in match_pb2.MatchStatus.items()}


async def _session_untouched(connection: asyncpg.Connection) -> None:
    """The store pool's reset: `_STORE` in autocommit leaves no session state to undo."""


async def create_store_pool(dsn: str, *, size: int, command_timeout: float = 10.0) -> asyncpg.Pool:
    """The connections `Inbox.store` uses, apart from everything else in the process.

    Apart, so that delivery, the poller and the ops routes never leave a webhook waiting for a
    connection; and without asyncpg's reset query on release (UNLISTEN, RESET ALL, ...), which
    would be a second round trip per event for state the one statement never creates.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        command_timeout=command_timeout,
        reset=_session_untouched,
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


def _present(**fields: object) -> dict[str, Any]:
    """`fields` without the ones at their proto3 default (empty, zero), as JSON mapping omits."""
    return {key: value for key, value in fields.items() if value}


def match_to_json(match: match_pb2.Match | None) -> dict[str, Any] | None:
    """The jsonb form of a Match: what protobuf's JSON mapping gives, built by hand.

    Same keys and values as `json_format.MessageToDict(match, preserving_proto_field_name=True)`
    (int64 as a string, the status by name, defaults left out) at a fraction of its cost.
    """
    if match is None:
        return None
    value = _present(
        match_id=match.match_id,
        version=str(match.version) if match.version else "",
        organizer_id=match.organizer_id,
    )
    if match.HasField("entity"):
        entity = match.entity
        value["entity"] = _present(id=entity.id, name=entity.name, type=entity.type)
    value.update(_present(game=match.game, region=match.region))
    if match.status:
        value["status"] = _STATUS_NAMES.get(match.status, match.status)
    if match.teams:
        value["teams"] = [
            _present(
                faction=team.faction,
                name=team.name,
                roster=[
                    _present(faceit_player_id=player.faceit_player_id, nickname=player.nickname)
                    for player in team.roster
                ],
                team_id=team.team_id,
            )
            for team in match.teams
        ]
    return value


def match_from_json(value: dict[str, Any] | None) -> match_pb2.Match | None:
    """A Match back from its jsonb form."""
    if value is None:
        return None
    return json_format.ParseDict(value, match_pb2.Match())


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


class Inbox:
    """The `ingest.events` table behind the webhook, the poller and IngestService."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        store_pool: asyncpg.Pool | None = None,
        acquire_timeout_s: float = 2.0,
        max_waiting: int = 128,
    ) -> None:
        self._pool = pool
        self._store_pool = store_pool or pool
        self._acquire_timeout_s = acquire_timeout_s
        self._max_waiting = max_waiting
        self._waiting = 0
        self._refusals = RefusalLog()

    @property
    def waiting(self) -> int:
        """How many stores wait for a connection right now."""
        return self._waiting

    def busy(self) -> StoreBusy | None:
        """The refusal a store would raise at once now (too many wait already), or None."""
        if self._waiting < self._max_waiting:
            return None
        message = f"{self._waiting} events already wait for the database"
        return StoreBusy(message, self._refusals.refused())

    async def store(
        self, event: InboundEvent, *, ignored: str | None = None, body: bytes | None = None
    ) -> StoreResult:
        """Commit `event` (PENDING, or IGNORED with the reason); a repeat changes nothing.

        A repeat is the same event_id, or the same match, event and version. One statement in
        autocommit: it is committed when this returns, and a new pending event wakes the
        delivery workers (NOTIFY, sent on commit). Raises StoreBusy at once when `max_waiting`
        stores already wait for a connection (the database is not keeping up), and when no
        connection is free within the acquire timeout.
        """
        status = Status.IGNORED if ignored is not None else Status.PENDING
        refusal = self.busy()
        if refusal is not None:
            raise refusal
        self._waiting += 1
        try:
            connection = await self._store_pool.acquire(timeout=self._acquire_timeout_s)
        except TimeoutError:
            message = f"no database connection free within {self._acquire_timeout_s:g}s"
            raise StoreBusy(message, self._refusals.refused()) from None
        finally:
            self._waiting -= 1
        try:
            row_id: int | None = await connection.fetchval(
                _STORE,
                event.event_id,
                event.event,
                event.match_id,
                event.version,
                event.action.value,
                status.value,
                event.source.value,
                ignored or "",
                None if event.match is None else json.dumps(match_to_json(event.match)),
                body,
                NOTIFY_CHANNEL,
            )
        except BaseException:
            # The store pool skips the reset query that would notice a connection left broken
            # (server gone, cancelled mid-statement): close it, the pool opens a fresh one.
            connection.terminate()
            raise
        finally:
            await self._store_pool.release(connection)
        return StoreResult(duplicate=row_id is None, row_id=row_id)

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


def parse_page_token(token: str) -> int | None:
    """The `before_id` a ListEvents page token stands for."""
    if not token:
        return None
    if not token.isdigit():
        raise InvalidArgument(f"page_token {token!r} is not one this service gave out")
    return int(token)
