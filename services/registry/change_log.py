"""The link change log: written in each link's own transaction, read by WatchLinkChanges.

Every writer of links takes one transaction advisory lock first (`lock_links`), so link writes
are serialized and change sequences become visible in increasing order: a reader that has seen
sequence N never later finds a smaller one committed. Each transaction's changes are sent at
its commit in a NOTIFY that carries them (when they fit in a payload); `ChangeNotifier` keeps
the latest it heard and wakes the waiting streams, which take their changes from it when it
holds every one since the last they sent, and read the log otherwise. They also poll, so a lost
notification (the listening connection dropped) delays a change by at most the poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.kit.database import DATABASE_UNAVAILABLE
from services.registry.links import (
    ChangeKind,
    LinkChange,
    PlayerLink,
    link_from_row,
    profile_columns,
)

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "registry_link_changes"
"""The channel `registry.record_link_changes` (migration 0003) notifies on."""
RECENT_CHANGES = 500
"""How many of the changes heard in notifications are kept for the streams."""
DEFAULT_RETENTION = timedelta(days=30)
"""How long changes are kept: a watcher away longer rereads every link (ListPlayerLinks)."""

_LOCK = "SELECT registry.lock_link_writes()"

_CHANGE_COLUMNS = """sequence, kind, changed_at, discord_user_id, faceit_player_id, faceit_nickname,
    avatar_url, country, game, skill_level, faceit_elo, faceit_url, linked_at, verified_at"""

# The changes in their order, the prune and the notification that carries them, in one
# statement (migration 0003's function).
_RECORD = """
SELECT registry.record_link_changes($1::text[], $2::bigint[], $3::text[], $4::text[],
    $5::text[], $6::text[], $7::text[], $8::integer[], $9::integer[], $10::text[],
    $11::timestamptz[], $12::timestamptz[], $13::interval)
"""

_AFTER = f"""
SELECT {_CHANGE_COLUMNS}
FROM registry.link_changes
WHERE sequence > $1
ORDER BY sequence
LIMIT $2
"""

_BOUNDS = """
SELECT h.pruned_through,
    greatest(h.pruned_through, (SELECT max(sequence) FROM registry.link_changes)) AS latest
FROM registry.link_changes_horizon h
"""


async def lock_links(connection: asyncpg.Connection) -> None:
    """Serialize link writes until this transaction ends (see the module docstring)."""
    await connection.execute(_LOCK)


async def record_changes(
    connection: asyncpg.Connection,
    changes: list[tuple[ChangeKind, PlayerLink]],
    retention: timedelta = DEFAULT_RETENTION,
) -> None:
    """Append `changes` in order, prune what is older than `retention`, notify at commit.

    Call inside the transaction that changed the links, after `lock_links`.
    """
    if not changes:
        return
    rows = [
        (
            kind.value,
            link.discord_user_id,
            link.account.player_id,
            *profile_columns(link.account),
            link.linked_at,
            link.verified_at,
        )
        for kind, link in changes
    ]
    await connection.execute(
        _RECORD, *(list(column) for column in zip(*rows, strict=True)), retention
    )


def _change(row: Mapping[str, Any]) -> LinkChange:
    return LinkChange(
        sequence=row["sequence"],
        kind=ChangeKind(row["kind"]),
        link=link_from_row(row),
        changed_at=row["changed_at"],
    )


def _pushed(payload: str) -> list[LinkChange]:
    """The changes a notification carries (none when it carries none, or garbage)."""
    try:
        rows = json.loads(payload) if payload else []
        return [
            _change(
                {
                    **row,
                    "changed_at": datetime.fromisoformat(row["changed_at"]),
                    "linked_at": datetime.fromisoformat(row["linked_at"]),
                    "verified_at": row["verified_at"]
                    and datetime.fromisoformat(row["verified_at"]),
                }
            )
            for row in rows
        ]
    except (ValueError, TypeError, KeyError) as error:
        logger.warning("unreadable link change notification: %r", error)
        return []


class ChangeLogReader:
    """Reads the change log through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def after(self, sequence: int, limit: int) -> list[LinkChange]:
        """Up to `limit` changes with a sequence above `sequence`, oldest first."""
        rows = await self._pool.fetch(_AFTER, sequence, limit)
        return [_change(row) for row in rows]

    async def bounds(self) -> tuple[int, int]:
        """(the highest sequence pruned, the highest sequence issued or pruned)."""
        row = await self._pool.fetchrow(_BOUNDS)
        assert row is not None  # the migration inserts the one row
        return row["pruned_through"], row["latest"]


def _alive(connection: asyncpg.pool.PoolConnectionProxy) -> bool:
    """Whether `connection` still listens: when the server ends it, the pool takes the proxy
    back, and asking it anything then raises InterfaceError."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:
        return False


class ChangeNotifier:
    """Wakes waiting streams when another transaction commits a change (LISTEN/NOTIFY).

    Listens on one pooled connection, taken on first use; `close()` gives it back.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._connection: asyncpg.pool.PoolConnectionProxy | None = None
        self._started = asyncio.Lock()
        self._event = asyncio.Event()
        self._recent: deque[LinkChange] = deque(maxlen=RECENT_CHANGES)

    async def next_notification(self) -> asyncio.Event:
        """An event set by the next notification. Take it before reading the log, then wait on
        it: a change committed in between sets it, so no wake-up is missed."""
        await self._listen()
        return self._event

    async def _listen(self) -> None:
        async with self._started:
            if self._connection is not None:
                if _alive(self._connection):
                    return
                stale, self._connection = self._connection, None
                with contextlib.suppress(asyncpg.InterfaceError, *DATABASE_UNAVAILABLE):
                    await self._pool.release(stale)
            try:
                connection = await self._pool.acquire()
                await connection.add_listener(NOTIFY_CHANNEL, self._notified)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, *DATABASE_UNAVAILABLE) as error:
                # Polling still finds every change; the next wait tries to listen again.
                logger.warning("cannot listen for link changes, polling only: %r", error)
                return
            self._connection = connection

    def pushed_after(self, sequence: int) -> list[LinkChange] | None:
        """Every change after `sequence`, from the notifications heard; None unless they hold
        each one up to the latest heard, without a gap (then the log must be read)."""
        changes = [change for change in self._recent if change.sequence > sequence]
        expected = range(sequence + 1, sequence + 1 + len(changes))
        if not changes or [change.sequence for change in changes] != list(expected):
            return None
        return changes

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self._recent.extend(_pushed(payload))
        self._event.set()
        self._event = asyncio.Event()

    async def close(self) -> None:
        """Stop listening and give the connection back to the pool."""
        async with self._started:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            # A connection that is gone already has nothing to stop: releasing it is all.
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await connection.remove_listener(NOTIFY_CHANNEL, self._notified)
            await self._pool.release(connection)
