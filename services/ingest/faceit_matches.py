"""Data API matches normalised into the proto Match, and which FACEIT statuses mean what."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from faceitvoice.v1 import match_pb2

from services.kit.faceit_models import FaceitMatch

# Statuses after which a match is over; in any other, a match with players has channels for
# the players picked so far (rosters fill up during captain pick and voting).
OVER_STATUSES = frozenset({"FINISHED", "CANCELLED", "ABORTED"})

Rosters = tuple[tuple[str, tuple[str, ...]], ...]
"""Each team's faction with its players' FACEIT ids, both sorted: what channels are made of."""

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


def rosters_of(teams: Iterable[match_pb2.Team]) -> Rosters:
    """The rosters of `teams`, in an order-free form two reads of a match can be compared by."""
    return tuple(
        sorted(
            (team.faction, tuple(sorted(player.faceit_player_id for player in team.roster)))
            for team in teams
        )
    )


def poll_event_id(match_id: str, event: str, held_version: int, rosters: Rosters) -> str:
    """The deterministic id of a poller event, so two polls that read the same insert it once.

    It is what the poll read (status and rosters) and the version voice held: never the Data
    API's version, which stays 2 while the status and rosters change.
    """
    teams = ";".join(f"{faction}={','.join(ids)}" for faction, ids in rosters)
    name = f"faceit-voice:poll:{match_id}:{event}:{held_version}:{teams}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def match_from_api(match: FaceitMatch, *, version: int, hub_id: str = "") -> match_pb2.Match:
    """A Data API match as the normalised Match at `version` (the entity is its hub when given).

    `version` is the event's, never the Data API's: that one counts apart from the webhooks'
    `payload.version`, so the two cannot be compared.
    """
    status = match.status.strip().upper()
    return match_pb2.Match(
        match_id=match.match_id,
        version=version,
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
        results=results_from_api(match),
    )


def results_from_api(match: FaceitMatch) -> match_pb2.MatchResults | None:
    """The winner and score of a Data API match, None when it has none (not finished)."""
    if match.results is None or not (match.results.winner or match.results.score):
        return None
    return match_pb2.MatchResults(
        winner=match.results.winner,
        scores=[
            match_pb2.FactionScore(faction=faction, score=score)
            for faction, score in sorted(match.results.score.items())
        ],
    )
