"""Data API matches normalised into the proto Match, and which FACEIT statuses mean what."""

from __future__ import annotations

from faceitvoice.v1 import match_pb2

from services.kit.faceit_api import FaceitMatch

# Statuses in which a match has final rosters and is about to be or being played.
LIVE_STATUSES = frozenset({"CONFIGURING", "READY", "ONGOING"})
# Statuses after which a match is over (everything else counts as "not started").
OVER_STATUSES = frozenset({"FINISHED", "CANCELLED", "ABORTED"})

_STATUS = {
    "CONFIGURING": match_pb2.MATCH_STATUS_CONFIGURING,
    "READY": match_pb2.MATCH_STATUS_READY,
    "ONGOING": match_pb2.MATCH_STATUS_ONGOING,
    "FINISHED": match_pb2.MATCH_STATUS_FINISHED,
    "CANCELLED": match_pb2.MATCH_STATUS_CANCELLED,
    "ABORTED": match_pb2.MATCH_STATUS_ABORTED,
}


def event_for_status(status: str) -> str:
    """The webhook event name a Data API status corresponds to (`READY` -> `match_status_ready`)."""
    return f"match_status_{status.strip().lower()}"


def teams_from_api(match: FaceitMatch) -> list[match_pb2.Team]:
    """The factions of a Data API match as Teams, faction1 first."""
    return [
        match_pb2.Team(
            faction=faction,
            name=team.name,
            team_id=team.faction_id,
            roster=[
                match_pb2.Player(faceit_player_id=player.player_id, nickname=player.nickname)
                for player in team.roster
            ],
        )
        for faction, team in sorted(match.teams.items())
    ]


def has_roster(teams: list[match_pb2.Team]) -> bool:
    """Whether any team has at least one player."""
    return any(team.roster for team in teams)


def match_from_api(match: FaceitMatch, *, hub_id: str = "") -> match_pb2.Match:
    """A Data API match as the normalised Match (the entity is the hub it was listed in)."""
    status = match.status.strip().upper()
    return match_pb2.Match(
        match_id=match.match_id,
        version=match.version,
        organizer_id=match.organizer_id,
        entity=match_pb2.Entity(
            id=hub_id or match.competition_id,
            name=match.competition_name,
            type=match.competition_type,
        ),
        game=match.game,
        region=match.region,
        status=_STATUS.get(status, match_pb2.MATCH_STATUS_UNSPECIFIED),
        teams=teams_from_api(match),
    )
