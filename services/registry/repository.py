"""SQL for `registry.player_links`; the database's constraints enforce the linking rules."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.registry.links import FaceitAccount, PlayerLink
from services.registry.paging import Cursor

_COLUMNS = """discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country, game,
    skill_level, faceit_elo, faceit_url, linked_at"""

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
SELECT {_COLUMNS} FROM registry.player_links WHERE faceit_player_id = ANY($1::text[])
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


def _link(row: asyncpg.Record) -> PlayerLink:
    return PlayerLink(
        discord_user_id=row["discord_user_id"],
        account=FaceitAccount(
            player_id=row["faceit_player_id"],
            nickname=row["faceit_nickname"],
            avatar_url=row["avatar_url"],
            country=row["country"],
            game=row["game"],
            skill_level=row["skill_level"],
            faceit_elo=row["faceit_elo"],
            faceit_url=row["faceit_url"],
        ),
        linked_at=row["linked_at"],
    )


class PlayerLinkRepository:
    """Reads and writes player links through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, discord_user_id: int, account: FaceitAccount) -> PlayerLink | None:
        """Insert a link; None when the Discord user already has one (of any account).

        Raises AccountTaken when another Discord user holds the FACEIT account.
        """
        try:
            row = await self._pool.fetchrow(
                _INSERT,
                discord_user_id,
                account.player_id,
                account.nickname,
                account.avatar_url,
                account.country,
                account.game,
                account.skill_level,
                account.faceit_elo,
                account.faceit_url,
            )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == ACCOUNT_UNIQUE_CONSTRAINT:
                raise AccountTaken(account.player_id) from error
            raise
        return _link(row) if row is not None else None

    async def by_discord_user(self, discord_user_id: int) -> PlayerLink | None:
        """The Discord user's link, if any."""
        row = await self._pool.fetchrow(_BY_DISCORD_USER, discord_user_id)
        return _link(row) if row is not None else None

    async def by_faceit_player(self, faceit_player_id: str) -> PlayerLink | None:
        """The link of a FACEIT player, if any."""
        row = await self._pool.fetchrow(_BY_FACEIT_PLAYER, faceit_player_id)
        return _link(row) if row is not None else None

    async def resolve(self, faceit_player_ids: Sequence[str]) -> list[PlayerLink]:
        """The links of these FACEIT players, in one statement; unlinked players are absent."""
        if not faceit_player_ids:
            return []
        rows = await self._pool.fetch(_BY_FACEIT_PLAYERS, list(faceit_player_ids))
        return [_link(row) for row in rows]

    async def delete(self, discord_user_id: int) -> PlayerLink | None:
        """Remove the Discord user's link and return it; None when there was none."""
        row = await self._pool.fetchrow(_DELETE, discord_user_id)
        return _link(row) if row is not None else None

    async def page(self, after: Cursor | None, limit: int) -> list[PlayerLink]:
        """Up to `limit` links, oldest first, strictly after `after` (from the start if None)."""
        if after is None:
            rows = await self._pool.fetch(_FIRST_PAGE, limit)
        else:
            rows = await self._pool.fetch(_NEXT_PAGE, after.linked_at, after.discord_user_id, limit)
        return [_link(row) for row in rows]
