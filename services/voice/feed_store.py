"""SQL for `voice.feed_messages`: the match feed's message of each match and what it shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from services.voice.feed_render import FeedFacts
from services.voice.model import MatchRecord, MatchResults
from services.voice.store import teams_from_json, teams_to_json

_RECORD = """
INSERT INTO voice.feed_messages AS f
    (match_id, channel_id, nonce, competition, game, winner, score, teams)
VALUES ($1, $2, $3, $4, $5, $6, $7, $9)
ON CONFLICT (match_id) DO UPDATE SET
    teams = CASE WHEN EXCLUDED.teams <> '[]'::jsonb THEN EXCLUDED.teams ELSE f.teams END,
    competition = CASE WHEN EXCLUDED.competition <> '' THEN EXCLUDED.competition
        ELSE f.competition END,
    game = CASE WHEN EXCLUDED.game <> '' THEN EXCLUDED.game ELSE f.game END,
    winner = CASE WHEN $8 THEN EXCLUDED.winner ELSE f.winner END,
    score = CASE WHEN $8 THEN EXCLUDED.score ELSE f.score END,
    updated_at = now()
RETURNING match_id, channel_id, nonce, posting, message_id, competition, game, winner, score,
    teams, shown
"""

# Matches whose feed message is missing or shows an older state than voice holds: after a
# restart, the changes the feed had not shown yet (its queue lived in memory). A match the feed
# never saw is posted only while open: turning the feed on does not post the past.
_UNSHOWN = """
SELECT m.match_id
FROM voice.active_matches m
LEFT JOIN voice.feed_messages f USING (match_id)
WHERE m.opened_at IS NOT NULL AND CASE
    WHEN f.match_id IS NULL THEN m.state = 'open'
    ELSE f.message_id IS NULL
        OR f.shown_key <> m.state || ':' || m.version || ':' || m.close_reason || ':' || f.winner
END
ORDER BY m.opened_at
"""


def shown_key(record: MatchRecord, winner: str) -> str:
    """What a shown message reflects; `_UNSHOWN` compares it with the match as it now is."""
    return f"{record.state.value}:{record.version}:{record.close_reason}:{winner}"


@dataclass(frozen=True)
class FeedRow:
    """A match's feed message as stored."""

    match_id: str
    channel_id: int
    nonce: str
    posting: bool
    """A post was sent (or about to be) whose answer may have been lost."""
    message_id: int | None
    facts: FeedFacts
    shown: dict[str, Any] | None
    """The embed the message last showed."""


def _row(row: asyncpg.Record) -> FeedRow:
    results = (
        MatchResults(row["winner"], tuple((f, s) for f, s in row["score"]))
        if row["winner"] or row["score"]
        else None
    )
    return FeedRow(
        match_id=row["match_id"],
        channel_id=row["channel_id"],
        nonce=row["nonce"],
        posting=row["posting"],
        message_id=row["message_id"],
        facts=FeedFacts(row["competition"], row["game"], results, teams_from_json(row["teams"])),
        shown=row["shown"],
    )


class FeedStore:
    """The feed's table; every method is one statement."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self, match_id: str, channel_id: int, nonce: str, facts: FeedFacts, has_results: bool
    ) -> FeedRow:
        """Add what an event said (non-empty names; results when `has_results`); the row."""
        results = facts.results
        row = await self._pool.fetchrow(
            _RECORD,
            match_id,
            channel_id,
            nonce,
            facts.competition,
            facts.game,
            results.winner if results else "",
            [list(pair) for pair in results.score] if results else [],
            has_results,
            teams_to_json(facts.teams),
        )
        assert row is not None
        return _row(row)

    async def unshown(self) -> list[str]:
        """The matches whose feed message is missing or behind, oldest first."""
        return [r["match_id"] for r in await self._pool.fetch(_UNSHOWN)]

    async def posting(self, match_id: str) -> None:
        """Mark that a post is being sent (before it is)."""
        await self._pool.execute(
            "UPDATE voice.feed_messages SET posting = true, updated_at = now() WHERE match_id = $1",
            match_id,
        )

    async def shown(self, match_id: str, message_id: int, embed: dict[str, Any], key: str) -> None:
        """The message that shows the match, and what it shows."""
        await self._pool.execute(
            "UPDATE voice.feed_messages SET message_id = $2, shown = $3, shown_key = $4,"
            " posting = false, updated_at = now() WHERE match_id = $1",
            match_id,
            message_id,
            embed,
            key,
        )

    async def lost(self, match_id: str, nonce: str) -> None:
        """The message is gone (deleted in Discord): the next sync posts a new one."""
        await self._pool.execute(
            "UPDATE voice.feed_messages SET message_id = NULL, shown = NULL, shown_key = '',"
            " posting = false, nonce = $2, updated_at = now() WHERE match_id = $1",
            match_id,
            nonce,
        )
