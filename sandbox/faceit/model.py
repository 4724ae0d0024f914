"""The FACEIT sandbox's records (players, hubs, teams, matches, subscriptions) and status rules."""

from __future__ import annotations

from dataclasses import dataclass, field

OVER_STATUSES = frozenset({"FINISHED", "CANCELLED", "ABORTED"})
UPCOMING_STATUSES = frozenset({"SCHEDULED"})
KNOWN_STATUSES = frozenset(
    {
        "SCHEDULED",
        "CHECK_IN",
        "CAPTAIN_PICK",
        "VOTING",
        "CONFIGURING",
        "READY",
        "ONGOING",
        "PAUSED",
        "MANUAL_RESULT",
        "FINISHED",
        "CANCELLED",
        "ABORTED",
    }
)
HUB_MATCH_TYPES = ("all", "upcoming", "ongoing", "past")
_STATUS_EVENT_PREFIX = "match_status_"
_CREATED_EVENT = "match_object_created"
# FACEIT CS2 skill levels 1..10 and the lowest elo of each level.
_LEVEL_FLOORS = (100, 501, 751, 901, 1051, 1201, 1351, 1531, 1751, 2001)


class SandboxError(ValueError):
    """A control request the sandbox cannot honour (answered with 400 or 409)."""


class ConflictError(SandboxError):
    """The thing to create already exists."""


def skill_level_for_elo(elo: int) -> int:
    """The FACEIT CS2 skill level (1..10) of an elo rating."""
    level = 1
    for index, floor in enumerate(_LEVEL_FLOORS):
        if elo >= floor:
            level = index + 1
    return level


def elo_for_skill_level(level: int) -> int:
    """A typical elo inside a skill level's band (its floor plus 50)."""
    if not 1 <= level <= len(_LEVEL_FLOORS):
        raise SandboxError(f"skill_level must be 1..10, got {level}")
    return _LEVEL_FLOORS[level - 1] + 50


def normalise_status(value: str) -> str:
    """Turn `READY`, `ready` or `match_status_ready` into the FACEIT status `READY`."""
    text = value.strip()
    if text.lower() == _CREATED_EVENT:
        return "CHECK_IN"
    if text.lower().startswith(_STATUS_EVENT_PREFIX):
        text = text[len(_STATUS_EVENT_PREFIX) :]
    status = text.upper()
    if status not in KNOWN_STATUSES:
        raise SandboxError(f"not a FACEIT status: {value!r}")
    return status


def is_hub_match_of_type(status: str, kind: str) -> bool:
    """Whether a match with `status` is listed by `GET /hubs/{id}/matches?type=kind`."""
    if kind == "all":
        return True
    if kind == "past":
        return status in OVER_STATUSES
    if kind == "upcoming":
        return status in UPCOMING_STATUSES
    # FACEIT lists CHECK_IN (and other pre-game states) as "ongoing".
    return status not in OVER_STATUSES and status not in UPCOMING_STATUSES


@dataclass
class Player:
    """One FACEIT account with a CS2 profile."""

    player_id: str
    nickname: str
    avatar: str
    country: str
    skill_level: int
    faceit_elo: int
    game_player_id: str
    game_player_name: str
    region: str
    created_at: float


@dataclass
class Hub:
    """A FACEIT hub (the competition a match belongs to)."""

    hub_id: str
    name: str
    organizer_id: str
    game: str
    region: str


@dataclass
class Team:
    """One side of a match; the id is the leader's player id, as in FACEIT matchmaking.

    `player_ids` is the final roster; the first `seated` of them are in the team so far.
    """

    faction_id: str
    name: str
    leader_id: str
    avatar: str
    player_ids: list[str]
    seated: int

    @property
    def roster(self) -> list[str]:
        """The players in the team so far (all of them unless the rosters are filling)."""
        return self.player_ids[: self.seated]


@dataclass
class Match:
    """A match and everything the Data API and the webhooks say about it."""

    match_id: str
    hub_id: str
    organizer_id: str
    game: str
    region: str
    status: str
    webhook_version: int
    api_version: int
    teams: list[Team]
    created_at: float
    updated_at: float
    fill_rosters: bool = False
    configured_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancel_reason: str | None = None
    afk_player_ids: list[str] = field(default_factory=list)
    winner: str | None = None

    @property
    def is_over(self) -> bool:
        """Whether the match is finished, cancelled or aborted."""
        return self.status in OVER_STATUSES

    def player_ids(self) -> list[str]:
        """Every player of both teams so far, faction1 first."""
        return [player_id for team in self.teams for player_id in team.roster]


@dataclass
class Subscription:
    """A webhook receiver and the static secret FACEIT sends it (header or query string)."""

    subscription_id: str
    url: str
    third_party_id: str
    header_name: str | None = None
    header_value: str | None = None
    query_param: str | None = None
    query_value: str | None = None
