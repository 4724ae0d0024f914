"""SQL for `registry.player_links`; the database's constraints enforce the linking rules, and
every write appends its changes to the change log in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.registry.change_log import DEFAULT_RETENTION, lock_links, record_changes
from services.registry.links import (
    ChangeKind,
    FaceitAccount,
    PlayerLink,
    link_from_row,
    profile_columns,
)

_COLUMNS = """discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country, game,
    skill_level, faceit_elo, faceit_url, linked_at, verified_at"""

# ON CONFLICT covers only the Discord user's own row: another user's link to the same FACEIT
# account is a unique violation of player_links_faceit_player_id_key, raised to the caller.
_INSERT = f"""
INSERT INTO registry.player_links (
    discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country, game,
    skill_level, faceit_elo, faceit_url)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (discord_user_id) DO NOTHING
RETURNING {_COLUMNS}
"""

_BY_DISCORD_USER = f"""
SELECT {_COLUMNS} FROM registry.player_links WHERE discord_user_id = $1
"""

_BY_FACEIT_PLAYER = f"""
SELECT {_COLUMNS} FROM registry.player_links WHERE faceit_player_id = $1
"""

_BY_FACEIT_PLAYERS = f"""
SELECT {_COLUMNS} FROM registry.player_links
WHERE faceit_player_id = ANY($1::text[]) AND (verified_at IS NOT NULL OR NOT $2)
"""

# Migration 0003's function: the lock, the links it replaces, the write and the change log.
_LINK_VERIFIED = """
SELECT kind, discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country, game,
    skill_level, faceit_elo, faceit_url, linked_at, verified_at
FROM registry.link_verified($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""

_DELETE = f"""
DELETE FROM registry.player_links WHERE discord_user_id = $1 RETURNING {_COLUMNS}
"""

_FIRST_PAGE = f"""
SELECT {_COLUMNS} FROM registry.player_links
ORDER BY linked_at, discord_user_id
LIMIT $1
"""

_NEXT_PAGE = f"""
SELECT {_COLUMNS} FROM registry.player_links
WHERE (linked_at, discord_user_id) > ($1, $2)
ORDER BY linked_at, discord_user_id
LIMIT $3
"""

ACCOUNT_UNIQUE_CONSTRAINT = "player_links_faceit_player_id_key"


class AccountTaken(Exception):
    """The FACEIT account is linked to another Discord user (the unique constraint said so)."""


@dataclass(frozen=True)
class Cursor:
    """The last link of a page; the next page starts strictly after it."""

    linked_at: datetime
    discord_user_id: int


@dataclass(frozen=True)
class VerifiedOutcome:
    """A verified link as it now stands, and the links it removed (the user's previous link
    of another account, another user's unverified claim of this one)."""

    link: PlayerLink
    removed: tuple[PlayerLink, ...]


class PlayerLinkRepository:
    """Reads and writes player links through an asyncpg pool; every write logs its changes."""

    def __init__(self, pool: asyncpg.Pool, *, retention: timedelta = DEFAULT_RETENTION) -> None:
        self._pool = pool
        self._retention = retention

    async def insert(self, discord_user_id: int, account: FaceitAccount) -> PlayerLink | None:
        """Insert a link; None when the Discord user already has one (of any account).

        Raises AccountTaken when another Discord user holds the FACEIT account.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            await lock_links(connection)
            try:
                row = await connection.fetchrow(
                    _INSERT, discord_user_id, account.player_id, *profile_columns(account)
                )
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name == ACCOUNT_UNIQUE_CONSTRAINT:
                    raise AccountTaken(account.player_id) from error
                raise
            if row is None:
                return None
            link = link_from_row(row)
            await record_changes(connection, [(ChangeKind.LINKED, link)], self._retention)
            return link

    async def link_verified(self, discord_user_id: int, account: FaceitAccount) -> VerifiedOutcome:
        """Link the user to the account they proved is theirs, in one transaction.

        Replaces the user's link of another account and another user's unverified claim of
        this one; raises AccountTaken when another user holds this account verified.
        """
        rows = await self._pool.fetch(
            _LINK_VERIFIED,
            discord_user_id,
            account.player_id,
            *profile_columns(account),
            self._retention,
        )
        if rows[0]["kind"] == "taken":
            raise AccountTaken(account.player_id)
        links = [link_from_row(row) for row in rows]
        return VerifiedOutcome(links[-1], tuple(links[:-1]))

    async def by_discord_user(self, discord_user_id: int) -> PlayerLink | None:
        """The Discord user's link, if any."""
        row = await self._pool.fetchrow(_BY_DISCORD_USER, discord_user_id)
        return link_from_row(row) if row is not None else None

    async def by_faceit_player(self, faceit_player_id: str) -> PlayerLink | None:
        """The link of a FACEIT player, if any."""
        row = await self._pool.fetchrow(_BY_FACEIT_PLAYER, faceit_player_id)
        return link_from_row(row) if row is not None else None

    async def resolve(
        self, faceit_player_ids: Sequence[str], *, verified_only: bool = False
    ) -> list[PlayerLink]:
        """The links of these FACEIT players, in one statement; unlinked players are absent,
        and so are unverified links when `verified_only`."""
        if not faceit_player_ids:
            return []
        rows = await self._pool.fetch(_BY_FACEIT_PLAYERS, list(faceit_player_ids), verified_only)
        return [link_from_row(row) for row in rows]

    async def delete(self, discord_user_id: int) -> PlayerLink | None:
        """Remove the Discord user's link and return it; None when there was none."""
        async with self._pool.acquire() as connection, connection.transaction():
            await lock_links(connection)
            row = await connection.fetchrow(_DELETE, discord_user_id)
            if row is None:
                return None
            link = link_from_row(row)
            await record_changes(connection, [(ChangeKind.UNLINKED, link)], self._retention)
            return link

    async def page(self, after: Cursor | None, limit: int) -> list[PlayerLink]:
        """Up to `limit` links, oldest first, strictly after `after` (from the start if None)."""
        if after is None:
            rows = await self._pool.fetch(_FIRST_PAGE, limit)
        else:
            rows = await self._pool.fetch(_NEXT_PAGE, after.linked_at, after.discord_user_id, limit)
        return [link_from_row(row) for row in rows]
