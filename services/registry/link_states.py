"""SQL for `registry.link_states`: the one-time `state` of each link flow, shared by replicas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

_COLUMNS = """state, discord_user_id, discord_display_name, discord_username, expires_at,
    code_verifier, browser_hash, expires_at <= clock_timestamp() AS expired"""

# A user has one flow at a time: a new one ends the previous; expired ones go on the way.
_CREATE = """
WITH cleared AS (
    DELETE FROM registry.link_states
    WHERE discord_user_id = $2 OR expires_at <= clock_timestamp()
)
INSERT INTO registry.link_states (
    state, discord_user_id, discord_display_name, discord_username, expires_at)
VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5))
RETURNING expires_at
"""

_FIND = f"SELECT {_COLUMNS} FROM registry.link_states WHERE state = $1"

_DEPART = f"""
UPDATE registry.link_states SET code_verifier = $2, browser_hash = $3
WHERE state = $1 AND expires_at > clock_timestamp()
RETURNING {_COLUMNS}
"""

# One statement: of two replicas finishing the same state, exactly one gets the row.
_FINISH = f"""
DELETE FROM registry.link_states
WHERE state = $1 AND browser_hash = $2 AND code_verifier IS NOT NULL
    AND expires_at > clock_timestamp()
RETURNING {_COLUMNS}
"""


@dataclass(frozen=True)
class LinkState:
    """A started link flow: who asked, until when, and (once they left for FACEIT) the PKCE
    verifier and the hash of the browser's cookie."""

    state: str
    discord_user_id: int
    discord_display_name: str
    discord_username: str
    expires_at: datetime
    expired: bool
    code_verifier: str | None
    browser_hash: str | None


def _state(row: asyncpg.Record) -> LinkState:
    # _COLUMNS names exactly LinkState's fields.
    return LinkState(**dict(row.items()))


class LinkStateRepository:
    """Creates, reads and consumes link states through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self,
        state: str,
        discord_user_id: int,
        display_name: str,
        username: str,
        ttl_s: float,
    ) -> datetime:
        """Store a new state for the user (ending their previous one); when it expires."""
        expires_at: datetime = await self._pool.fetchval(
            _CREATE, state, discord_user_id, display_name, username, float(ttl_s)
        )
        return expires_at

    async def find(self, state: str) -> LinkState | None:
        """The state, expired or not, if it exists (it is gone once used)."""
        row = await self._pool.fetchrow(_FIND, state)
        return _state(row) if row is not None else None

    async def depart(self, state: str, code_verifier: str, browser_hash: str) -> LinkState | None:
        """Record the verifier and browser of a trip to FACEIT; None if expired or gone.

        Leaving again (the continue button pressed twice) replaces both, so only the latest
        trip can come back.
        """
        row = await self._pool.fetchrow(_DEPART, state, code_verifier, browser_hash)
        return _state(row) if row is not None else None

    async def finish(self, state: str, browser_hash: str) -> LinkState | None:
        """Consume the state if it is live, left for FACEIT, and comes back in that browser."""
        row = await self._pool.fetchrow(_FINISH, state, browser_hash)
        return _state(row) if row is not None else None
