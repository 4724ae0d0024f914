"""The voice service's domain types: matches as asked for, and matches as held."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

FACTIONS = ("faction1", "faction2")


@dataclass(frozen=True)
class Player:
    """One FACEIT player of a roster."""

    faceit_player_id: str
    nickname: str


@dataclass(frozen=True)
class Team:
    """One side of a match with its roster as last known."""

    faction: str
    name: str
    roster: tuple[Player, ...]


@dataclass(frozen=True)
class MatchSpec:
    """A match as an OpenMatch call describes it."""

    match_id: str
    version: int
    teams: tuple[Team, ...]
    competition: str = ""
    """The competition's name (hub, championship or queue), shown in the match feed."""
    game: str = ""
    """The FACEIT game ("cs2"), part of the match room's address in the match feed."""


@dataclass(frozen=True)
class MatchResults:
    """How a finished match ended, as FACEIT reported it."""

    winner: str
    """The winning faction, or "" when FACEIT names none."""
    score: tuple[tuple[str, int], ...] = ()
    """(faction, score) pairs, faction1 first."""


def players_on_both_teams(teams: Sequence[Team]) -> frozenset[str]:
    """The FACEIT player ids listed on more than one team's roster."""
    counts = Counter(pid for team in teams for pid in {p.faceit_player_id for p in team.roster})
    return frozenset(player_id for player_id, count in counts.items() if count > 1)


def allowed_members(
    teams: Sequence[Team], links: Mapping[str, int], in_guild: Collection[int]
) -> dict[str, frozenset[int]]:
    """Who may join each team's channel: the team's linked guild members, by faction.

    A Discord user who would be allowed in more than one team's channel (a player on both
    rosters) is allowed in none: they could otherwise hear both teams.
    """
    members = {
        team.faction: frozenset(
            links[p.faceit_player_id]
            for p in team.roster
            if links.get(p.faceit_player_id) in in_guild
        )
        for team in teams
    }
    counts = Counter(uid for allowed in members.values() for uid in allowed)
    return {
        faction: frozenset(uid for uid in allowed if counts[uid] == 1)
        for faction, allowed in members.items()
    }


class MatchState(enum.StrEnum):
    """Whether a match holds channels."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class TeamChannel:
    """The private voice channel of one team; channel_id is None while being created."""

    faction: str
    team_name: str
    channel_name: str
    channel_id: int | None
    member_ids: frozenset[int]
    previous_channel_id: int | None = None
    """A channel this one replaces, deleted once its occupants are moved over."""
    members_known: bool = True
    """False for an open's intent written before the registry answered (`member_ids` is then
    empty, not the members): whoever Discord was told may join is unknown until it settles."""


@dataclass(frozen=True)
class MatchRecord:
    """A match as the voice service holds it."""

    match_id: str
    guild_id: int
    state: MatchState
    version: int
    teams: tuple[Team, ...] = ()
    channels: tuple[TeamChannel, ...] = ()
    left_on_purpose: frozenset[int] = frozenset()
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str = ""
    delete_after: datetime | None = None

    def channel(self, faction: str) -> TeamChannel | None:
        """The channel of `faction`, if the match has one."""
        return next((c for c in self.channels if c.faction == faction), None)


class OpenOutcome(enum.Enum):
    """What an OpenMatch call changed."""

    OPENED = 1
    UPDATED = 2
    STALE = 3


class CloseOutcome(enum.Enum):
    """What a CloseMatch call changed."""

    CLOSED = 1
    ALREADY_CLOSED = 2
    STALE = 3
    SCHEDULED = 4


class PlacementOutcome(enum.Enum):
    """What OpenMatch did with one player (values match the proto enum)."""

    MOVED = 1
    ALREADY_THERE = 2
    SKIPPED_NOT_LINKED = 3
    SKIPPED_NOT_IN_GUILD = 4
    SKIPPED_NOT_IN_VOICE = 5
    SKIPPED_LEFT_ON_PURPOSE = 6
    FAILED = 7


@dataclass(frozen=True)
class Placement:
    """What happened to one roster player."""

    faceit_player_id: str
    nickname: str
    faction: str
    discord_user_id: int
    outcome: PlacementOutcome
    reason: str = ""


@dataclass(frozen=True)
class OpenResult:
    """The answer to OpenMatch."""

    outcome: OpenOutcome
    match: MatchRecord
    placements: tuple[Placement, ...] = ()


@dataclass(frozen=True)
class CloseResult:
    """The answer to CloseMatch."""

    outcome: CloseOutcome
    match: MatchRecord
    deleted_channel_ids: tuple[int, ...] = field(default_factory=tuple)
    moved_to_lobby: int = 0
