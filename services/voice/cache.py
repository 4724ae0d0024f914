"""active_match_cache: the open matches and their channels in memory, asked before the database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.voice.model import MatchRecord, MatchState, TeamChannel


@dataclass(frozen=True)
class TeamSeat:
    """Where a Discord user belongs while a match runs."""

    match_id: str
    faction: str
    channel_id: int


class ActiveMatchCache:
    """Open matches by id and each linked player's team channel; updated on open and close."""

    def __init__(self) -> None:
        self._matches: dict[str, MatchRecord] = {}

    def get(self, match_id: str) -> MatchRecord | None:
        """The open match, or None when it is not cached."""
        return self._matches.get(match_id)

    def put(self, record: MatchRecord) -> None:
        """Cache an open match (a closed one is dropped instead)."""
        if record.state is MatchState.OPEN:
            self._matches[record.match_id] = record
        else:
            self._matches.pop(record.match_id, None)

    def remove(self, match_id: str) -> None:
        """Forget a match."""
        self._matches.pop(match_id, None)

    def replace_all(self, records: Iterable[MatchRecord]) -> None:
        """Rebuild the cache from the database's open matches."""
        self._matches = {r.match_id: r for r in records if r.state is MatchState.OPEN}

    def with_player(self, faceit_player_id: str) -> list[MatchRecord]:
        """The cached open matches whose rosters list the FACEIT player."""
        return [
            record
            for record in self._matches.values()
            if any(p.faceit_player_id == faceit_player_id for t in record.teams for p in t.roster)
        ]

    def counts(self) -> tuple[int, int]:
        """How many matches are open, and how many team channels they have."""
        channels = sum(
            1 for r in self._matches.values() for c in r.channels if c.channel_id is not None
        )
        return len(self._matches), channels

    def seat_of(self, discord_user_id: int) -> TeamSeat | None:
        """The team channel the user belongs in, in the most recently opened match that has one."""
        found: list[tuple[MatchRecord, TeamSeat]] = []
        for record in self._matches.values():
            for channel in record.channels:
                if channel.channel_id is not None and discord_user_id in channel.member_ids:
                    found.append(
                        (record, TeamSeat(record.match_id, channel.faction, channel.channel_id))
                    )
        if not found:
            return None
        found.sort(key=lambda item: (item[0].opened_at is not None, item[0].opened_at))
        return found[-1][1]

    def team_channel(self, channel_id: int) -> tuple[MatchRecord, TeamChannel] | None:
        """The open match and its team channel with this id, if it is one."""
        for record in self._matches.values():
            for channel in record.channels:
                if channel.channel_id == channel_id:
                    return record, channel
        return None

    def left_on_purpose(self, match_id: str, discord_user_id: int) -> bool:
        """Whether the user switched away from their team channel in this match."""
        record = self._matches.get(match_id)
        return record is not None and discord_user_id in record.left_on_purpose
