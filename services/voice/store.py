"""SQL for schema `voice`: matches, their rosters and channels, and who left on purpose."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.kit.match_json import MatchJson, player_json, team_fields, team_json
from services.voice.model import (
    MatchRecord,
    MatchState,
    Player,
    Team,
    TeamChannel,
)

_MATCH_COLUMNS = (
    "match_id, guild_id, state, version, teams, opened_at, closed_at, close_reason, delete_after"
)

# Matches with their channels (as JSON, in faction order) and who left on purpose: each read
# is one statement, so one round trip and one snapshot. Channel and user ids are below 2^63:
# exact in JSON. Every reader adds its WHERE and ORDER BY on `m`.
_MATCHES = f"""
SELECT {_MATCH_COLUMNS},
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
            'faction', c.faction, 'team_name', c.team_name, 'channel_name', c.channel_name,
            'channel_id', c.channel_id, 'member_ids', c.member_ids,
            'previous_channel_id', c.previous_channel_id) ORDER BY c.faction), '[]')
        FROM voice.match_channels c WHERE c.match_id = m.match_id) AS channels,
    ARRAY(SELECT l.discord_user_id FROM voice.left_on_purpose l WHERE l.match_id = m.match_id)
        AS left_on_purpose
FROM voice.active_matches m
"""

_ON_OPEN_CONFLICT = (
    " ON CONFLICT (match_id) DO UPDATE SET"
    "  state = 'open', version = EXCLUDED.version, teams = EXCLUDED.teams,"
    "  guild_id = EXCLUDED.guild_id,"
    "  opened_at = CASE WHEN active_matches.state = 'open'"
    "   THEN active_matches.opened_at ELSE now() END,"
    "  closed_at = NULL, close_reason = '', delete_after = NULL, updated_at = now()"
)
_OPEN = (
    "INSERT INTO voice.active_matches"
    " (match_id, guild_id, state, version, teams, opened_at)"
    " VALUES ($1, $2, 'open', $3, $4, now())" + _ON_OPEN_CONFLICT
)


_BEGIN_REPLACEMENT = (
    "UPDATE voice.match_channels SET previous_channel_id = channel_id,"
    " channel_id = NULL, member_ids = $3"
    " WHERE match_id = $1 AND faction = $2 AND channel_id IS NOT NULL"
)
# Channels made again for lost ones, in one statement (one round trip, one commit): their
# columns as factions, lost ids, new ids and members (as '{1,2}' text, as for the intents).
_COMPLETE_RECREATES = """
UPDATE voice.match_channels c
SET channel_id = made.channel_id, member_ids = made.members::bigint[],
    previous_channel_id = NULLIF(c.previous_channel_id, made.lost)
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[])
    AS made (faction, lost, channel_id, members)
WHERE c.match_id = $1 AND c.faction = made.faction"""


async def prepare_repairs(connection: asyncpg.Connection) -> None:
    """Run the writes that recreate lost channels once, for no row, on a connection opened
    ahead of a restart's repairs: its server process has then planned them and compiled the
    fencing trigger, and asyncpg has prepared them, before the repairs all need them at once.
    Fenced like any write: the lease must be held."""
    await connection.execute(_BEGIN_REPLACEMENT, "", "", [])
    await connection.execute(_COMPLETE_RECREATES, "", [], [], [], [])


# Match $1's channel intents: factions, team names, channel names and members (as '{1,2}'
# text: an array of arrays cannot be unnested row by row). A team that already has a row keeps it.
_ADD_INTENTS = """
INSERT INTO voice.match_channels
    (match_id, faction, team_name, channel_name, channel_id, member_ids)
SELECT $1, faction, team_name, channel_name, NULL, members::bigint[]
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
    AS intent (faction, team_name, channel_name, members)
ON CONFLICT (match_id, faction) DO NOTHING"""


# An open read and, when it is fresh, written with its teams' intents, in one statement (one
# round trip, one commit), before the links are known. Fresh: the match is unknown, or has no
# channel (nor intent) and nobody who left on purpose, and is not stale (closed at an older
# version, or open at this one or an older one), as `MatchService.open_match` decides. The
# intents' members are unknown (NULL) until `_SETTLE_INTENTS`. The match is returned as it was
# before (no row when unknown; every CTE sees the statement's snapshot), with `fresh_opened_at`
# set when this statement opened it. The intents' foreign key is checked at the statement's
# end, when the match row exists. A stale or not fresh open writes no row, but its INSERTs'
# fencing triggers still run: a replica without the lease is refused here as for any write.
_OPEN_FRESH = f"""
WITH stored AS ({_MATCHES} WHERE m.match_id = $1::text),
fresh AS (
    SELECT NOT EXISTS (SELECT 1 FROM stored) OR EXISTS (
        SELECT 1 FROM stored s
        WHERE s.channels = '[]'::jsonb AND cardinality(s.left_on_purpose) = 0
            AND (s.version < $3::bigint OR (s.version = $3::bigint AND s.state = 'open'))
    ) AS yes
),
opened AS (
    INSERT INTO voice.active_matches (match_id, guild_id, state, version, teams, opened_at)
    SELECT $1::text, $2::bigint, 'open', $3::bigint, $4::jsonb, now() FROM fresh WHERE fresh.yes
    {_ON_OPEN_CONFLICT}
    RETURNING opened_at
),
intents AS (
    INSERT INTO voice.match_channels
        (match_id, faction, team_name, channel_name, channel_id, member_ids)
    SELECT $1::text, faction, team_name, channel_name, NULL, NULL
    FROM unnest($5::text[], $6::text[], $7::text[]) AS intent (faction, team_name, channel_name)
    WHERE EXISTS (SELECT 1 FROM opened)
    ON CONFLICT (match_id, faction) DO NOTHING
)
SELECT s.*, (SELECT opened_at FROM opened) AS fresh_opened_at
FROM (VALUES (true)) AS one (x) LEFT JOIN stored s ON true
"""
# The open's intents settled in one statement: the teams given get their channel id (NULL when
# its create failed: an intent as any other) and members; an intent of unknown members of any
# other team (no linked guild member: no channel) is dropped.
_SETTLE_INTENTS = """
WITH settled AS (
    UPDATE voice.match_channels c
    SET channel_id = s.channel_id, member_ids = s.members::bigint[]
    FROM unnest($2::text[], $3::bigint[], $4::text[]) AS s (faction, channel_id, members)
    WHERE c.match_id = $1 AND c.faction = s.faction
)
DELETE FROM voice.match_channels c
WHERE c.match_id = $1 AND c.member_ids IS NULL AND c.faction <> ALL ($2::text[])"""
# An open that created nothing given back: the match as it was before (the unknown intents with
# it), or no match at all when it was unknown.
_RESTORE_MATCH = """
WITH dropped AS (
    DELETE FROM voice.match_channels WHERE match_id = $1 AND member_ids IS NULL
)
UPDATE voice.active_matches SET guild_id = $2, state = $3, version = $4, teams = $5,
    opened_at = $6, closed_at = $7, close_reason = $8, delete_after = $9, updated_at = now()
WHERE match_id = $1"""


def teams_to_json(teams: Iterable[Team]) -> list[MatchJson]:
    """`active_matches.teams`: the teams in the stored form of a match (kit.match_json)."""
    return [
        team_json(
            team.faction,
            team.name,
            [player_json(p.faceit_player_id, p.nickname) for p in team.roster],
        )
        for team in teams
    ]


def teams_from_json(data: Sequence[MatchJson]) -> tuple[Team, ...]:
    """Teams read back from `active_matches.teams`."""
    teams = []
    for item in data:
        faction, name, players = team_fields(item)
        teams.append(Team(faction, name, tuple(Player(*player) for player in players)))
    return tuple(teams)


def _members_text(members: Iterable[int]) -> str:
    """Members as a `bigint[]` literal ('{1,2}'): a text[] column of those unnests into rows
    where an array of arrays could not (its inner arrays would have to be of equal length)."""
    return "{" + ",".join(map(str, sorted(members))) + "}"


def _intent_columns(
    intents: Sequence[tuple[str, str, str, Iterable[int]]],
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Intents (faction, team name, channel name, members) as the columns `unnest` reads."""
    return (
        [faction for faction, _, _, _ in intents],
        [team for _, team, _, _ in intents],
        [name for _, _, name, _ in intents],
        [_members_text(members) for _, _, _, members in intents],
    )


def _channel(row: dict[str, Any]) -> TeamChannel:
    return TeamChannel(
        faction=row["faction"],
        team_name=row["team_name"],
        channel_name=row["channel_name"],
        channel_id=row["channel_id"],
        member_ids=frozenset(row["member_ids"] or ()),
        previous_channel_id=row["previous_channel_id"],
        members_known=row["member_ids"] is not None,
    )


def _record(row: asyncpg.Record) -> MatchRecord:
    """A match read by `_MATCHES`."""
    return MatchRecord(
        match_id=row["match_id"],
        guild_id=row["guild_id"],
        state=MatchState(row["state"]),
        version=row["version"],
        teams=teams_from_json(row["teams"]),
        channels=tuple(_channel(c) for c in row["channels"]),
        left_on_purpose=frozenset(row["left_on_purpose"]),
        opened_at=row["opened_at"],
        closed_at=row["closed_at"],
        close_reason=row["close_reason"],
        delete_after=row["delete_after"],
    )


class VoiceStore:
    """The voice service's tables; every method is one unit of work on the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_match(self, match_id: str) -> MatchRecord | None:
        """The match with its channels and left-on-purpose players, or None."""
        row = await self._pool.fetchrow(f"{_MATCHES} WHERE m.match_id = $1", match_id)
        return None if row is None else _record(row)

    async def open_matches(self) -> list[MatchRecord]:
        """Every open match, oldest first."""
        rows = await self._pool.fetch(
            f"{_MATCHES} WHERE m.state = 'open' ORDER BY m.opened_at, m.match_id"
        )
        return [_record(row) for row in rows]

    async def list_open(
        self, page_size: int, after: tuple[datetime, str] | None
    ) -> tuple[list[MatchRecord], tuple[datetime, str] | None]:
        """One page of open matches, oldest first, and the next page's key (None at the end)."""
        if after is None:
            rows = await self._pool.fetch(
                f"{_MATCHES} WHERE m.state = 'open' ORDER BY m.opened_at, m.match_id LIMIT $1",
                page_size + 1,
            )
        else:
            rows = await self._pool.fetch(
                f"{_MATCHES} WHERE m.state = 'open' AND (m.opened_at, m.match_id) > ($1, $2)"
                " ORDER BY m.opened_at, m.match_id LIMIT $3",
                after[0],
                after[1],
                page_size + 1,
            )
        records = [_record(row) for row in rows[:page_size]]
        if len(rows) > page_size:
            last = records[-1]
            assert last.opened_at is not None
            return records, (last.opened_at, last.match_id)
        return records, None

    async def matches_to_reconcile(self) -> tuple[list[MatchRecord], list[MatchRecord]]:
        """Every open match (oldest first) and every closed one whose channels are still to
        be deleted, in one statement."""
        rows = await self._pool.fetch(
            f"{_MATCHES} WHERE m.state = 'open'"
            " OR EXISTS (SELECT 1 FROM voice.match_channels c WHERE c.match_id = m.match_id)"
            " ORDER BY m.state = 'closed', CASE WHEN m.state = 'open' THEN m.opened_at END,"
            " m.delete_after NULLS FIRST, m.match_id"
        )
        records = [_record(row) for row in rows]
        return (
            [r for r in records if r.state is MatchState.OPEN],
            [r for r in records if r.state is MatchState.CLOSED],
        )

    async def due_deletions(self) -> list[str]:
        """Closed matches whose grace period is over and that still have channels."""
        return [
            row["match_id"]
            for row in await self._pool.fetch(
                "SELECT match_id FROM voice.active_matches m WHERE state = 'closed'"
                " AND (delete_after IS NULL OR delete_after <= now())"
                " AND EXISTS (SELECT 1 FROM voice.match_channels c WHERE c.match_id = m.match_id)"
                " ORDER BY delete_after NULLS FIRST, match_id"
            )
        ]

    async def seconds_to_next_deletion(self) -> float | None:
        """Seconds until the next pending channel deletion is due (0 if overdue); None if none."""
        # Not greatest(0, ...) in SQL: greatest ignores NULL, so "nothing pending" became 0 and
        # the deletion worker looped without waiting, using most of a core.
        value = await self._pool.fetchval(
            "SELECT extract(epoch FROM min(coalesce(delete_after, now())) - now())::float8"
            " FROM voice.active_matches m WHERE state = 'closed'"
            " AND EXISTS (SELECT 1 FROM voice.match_channels c WHERE c.match_id = m.match_id)"
        )
        return None if value is None else max(0.0, float(value))

    async def record_open(
        self, match_id: str, guild_id: int, version: int, teams: Sequence[Team]
    ) -> None:
        """Mark the match open at `version` with these rosters (its channels are kept)."""
        await self._pool.execute(_OPEN, match_id, guild_id, version, teams_to_json(teams))

    async def open_fresh(
        self,
        match_id: str,
        guild_id: int,
        version: int,
        teams: Sequence[Team],
        intents: Sequence[tuple[str, str, str]],
    ) -> tuple[MatchRecord | None, datetime | None]:
        """The match as it was (None when unknown) and, when the open is fresh, its
        `opened_at`: then the open and the intents (faction, team name, channel name; members
        unknown) are written by the same statement. Otherwise nothing is written."""
        row = await self._pool.fetchrow(
            _OPEN_FRESH,
            match_id,
            guild_id,
            version,
            teams_to_json(teams),
            [faction for faction, _, _ in intents],
            [team for _, team, _ in intents],
            [name for _, _, name in intents],
        )
        assert row is not None
        previous = None if row["match_id"] is None else _record(row)
        return previous, row["fresh_opened_at"]

    async def settle_intents(
        self, match_id: str, channels: Sequence[tuple[str, int | None, Iterable[int]]]
    ) -> None:
        """Give an open's intents their channel (faction, channel id or None when not made,
        members) in one statement; drop its other intents of unknown members."""
        await self._pool.execute(
            _SETTLE_INTENTS,
            match_id,
            [faction for faction, _, _ in channels],
            [channel_id for _, channel_id, _ in channels],
            [_members_text(members) for _, _, members in channels],
        )

    async def restore_match(self, match_id: str, previous: MatchRecord | None) -> None:
        """Put back the match as it was before an open that created nothing (`open_fresh`):
        forgotten when it was unknown, else its row as read and no intent of unknown members."""
        if previous is None:
            await self._pool.execute(
                "DELETE FROM voice.active_matches WHERE match_id = $1", match_id
            )
            return
        await self._pool.execute(
            _RESTORE_MATCH,
            match_id,
            previous.guild_id,
            previous.state.value,
            previous.version,
            teams_to_json(previous.teams),
            previous.opened_at,
            previous.closed_at,
            previous.close_reason,
            previous.delete_after,
        )

    async def record_close(
        self, match_id: str, guild_id: int, version: int, reason: str, delay_s: float
    ) -> None:
        """Mark the match closed at `version`; its channels are due for deletion after `delay_s`."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO voice.active_matches"
                " (match_id, guild_id, state, version, closed_at, close_reason, delete_after)"
                " VALUES ($1, $2, 'closed', $3, now(), $4, now() + make_interval(secs => $5))"
                " ON CONFLICT (match_id) DO UPDATE SET"
                "  state = 'closed', version = EXCLUDED.version, teams = '[]'::jsonb,"
                "  closed_at = now(), close_reason = EXCLUDED.close_reason,"
                "  delete_after = EXCLUDED.delete_after, updated_at = now()",
                match_id,
                guild_id,
                version,
                reason,
                delay_s,
            )
            # Nobody is kept out of a closed match's channels; a reopen starts with no one
            # having left on purpose.
            await conn.execute("DELETE FROM voice.left_on_purpose WHERE match_id = $1", match_id)

    async def add_channel_intents(
        self, match_id: str, intents: Sequence[tuple[str, str, str, Iterable[int]]]
    ) -> None:
        """Write the intents (faction, team name, channel name, members) in one statement.

        A team that already has a row keeps it.
        """
        await self._pool.execute(_ADD_INTENTS, match_id, *_intent_columns(intents))

    async def complete_channels(
        self, match_id: str, channels: Sequence[tuple[str, int, Iterable[int]]]
    ) -> None:
        """Record the channels (faction, channel id, members) created for intents, in one go."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "UPDATE voice.match_channels SET channel_id = $3, member_ids = $4"
                " WHERE match_id = $1 AND faction = $2",
                [(match_id, faction, cid, sorted(members)) for faction, cid, members in channels],
            )

    async def complete_recreates(
        self, match_id: str, channels: Sequence[tuple[str, int, int, Iterable[int]]]
    ) -> None:
        """Record the channels (faction, lost channel id, channel id, members) made again for
        lost ones, in one statement; a lost id kept as the channel replaced is forgotten."""
        await self._pool.execute(
            _COMPLETE_RECREATES,
            match_id,
            [faction for faction, _, _, _ in channels],
            [lost for _, lost, _, _ in channels],
            [channel_id for _, _, channel_id, _ in channels],
            [_members_text(members) for _, _, _, members in channels],
        )

    async def complete_channel(
        self, match_id: str, faction: str, channel_id: int, members: Iterable[int]
    ) -> None:
        """Record the channel created (or adopted) for an intent, with its members."""
        await self._pool.execute(
            "UPDATE voice.match_channels SET channel_id = $3, member_ids = $4"
            " WHERE match_id = $1 AND faction = $2",
            match_id,
            faction,
            channel_id,
            sorted(members),
        )

    async def set_channel_members(
        self, match_id: str, faction: str, members: Iterable[int]
    ) -> None:
        """Record who now has access to the team's channel."""
        await self._pool.execute(
            "UPDATE voice.match_channels SET member_ids = $3 WHERE match_id = $1 AND faction = $2",
            match_id,
            faction,
            sorted(members),
        )

    async def remove_channel(self, match_id: str, faction: str) -> None:
        """Forget a team channel (deleted, or an intent abandoned)."""
        await self._pool.execute(
            "DELETE FROM voice.match_channels WHERE match_id = $1 AND faction = $2",
            match_id,
            faction,
        )

    async def tracked_channel_ids(self) -> set[int]:
        """Every Discord channel id the database knows (current and being replaced)."""
        rows = await self._pool.fetch(
            "SELECT channel_id AS id FROM voice.match_channels WHERE channel_id IS NOT NULL"
            " UNION SELECT previous_channel_id FROM voice.match_channels"
            " WHERE previous_channel_id IS NOT NULL"
        )
        return {row["id"] for row in rows}

    async def begin_recreate(self, match_id: str, faction: str, members: Iterable[int]) -> None:
        """Turn a team's lost channel into an intent for its recreation, with `members`."""
        await self._pool.execute(
            "UPDATE voice.match_channels SET channel_id = NULL, member_ids = $3"
            " WHERE match_id = $1 AND faction = $2",
            match_id,
            faction,
            sorted(members),
        )

    async def begin_replacement(self, match_id: str, faction: str, members: Iterable[int]) -> None:
        """Turn a team's channel into an intent for its replacement, keeping the old id."""
        await self._pool.execute(_BEGIN_REPLACEMENT, match_id, faction, sorted(members))

    async def keep_as_replaced(self, match_id: str, faction: str, channel_id: int) -> None:
        """Note a namesake channel an intent replaces (one it could not adopt)."""
        await self._pool.execute(
            "UPDATE voice.match_channels SET previous_channel_id = $3"
            " WHERE match_id = $1 AND faction = $2 AND channel_id IS NULL",
            match_id,
            faction,
            channel_id,
        )

    async def cancel_replacement(self, match_id: str, faction: str, members: Iterable[int]) -> None:
        """Give an intent for a replacement its channel back (the old id, with `members`)."""
        await self._pool.execute(
            "UPDATE voice.match_channels SET channel_id = previous_channel_id,"
            " previous_channel_id = NULL, member_ids = $3"
            " WHERE match_id = $1 AND faction = $2 AND channel_id IS NULL",
            match_id,
            faction,
            sorted(members),
        )

    async def end_replacement(self, match_id: str, faction: str) -> None:
        """Forget the replaced channel (deleted)."""
        await self._pool.execute(
            "UPDATE voice.match_channels SET previous_channel_id = NULL"
            " WHERE match_id = $1 AND faction = $2",
            match_id,
            faction,
        )

    async def open_matches_with_player(self, faceit_player_id: str) -> list[MatchRecord]:
        """The open matches whose rosters contain the FACEIT player, oldest first."""
        rows = await self._pool.fetch(
            f"{_MATCHES} WHERE m.state = 'open' AND m.teams @> $1 ORDER BY m.opened_at, m.match_id",
            [{"roster": [{"faceit_player_id": faceit_player_id}]}],
        )
        return [_record(row) for row in rows]

    async def link_sequence(self) -> int:
        """The sequence of the last link change applied (0 before the first)."""
        value = await self._pool.fetchval("SELECT after_sequence FROM voice.link_watch")
        return int(value or 0)

    async def save_link_sequence(self, sequence: int) -> None:
        """Remember that the link changes up to `sequence` are applied."""
        await self._pool.execute(
            "INSERT INTO voice.link_watch (after_sequence) VALUES ($1)"
            " ON CONFLICT (singleton) DO UPDATE SET after_sequence = EXCLUDED.after_sequence",
            sequence,
        )

    async def set_left_on_purpose(self, match_id: str, discord_user_id: int, left: bool) -> None:
        """Remember (or forget) that a player switched away from their team channel."""
        if left:
            await self._pool.execute(
                "INSERT INTO voice.left_on_purpose (match_id, discord_user_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                match_id,
                discord_user_id,
            )
        else:
            await self._pool.execute(
                "DELETE FROM voice.left_on_purpose WHERE match_id = $1 AND discord_user_id = $2",
                match_id,
                discord_user_id,
            )
