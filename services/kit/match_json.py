"""The one JSON form of a match, as ingest's inbox and voice's active matches store it (jsonb).

It is protobuf's JSON mapping of `faceitvoice.v1.Match` with the proto field names: the same
keys and values as `json_format.MessageToDict(match, preserving_proto_field_name=True)` (int64
as a string, the status by name, fields at their default left out), built by hand at a
fraction of its cost. A webhook's match is built straight in this form, never as a message.
Readers take a missing key as the field's default, so rows written before this module (voice
wrote every team and player key, empty or not) read the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faceitvoice.v1 import match_pb2
from google.protobuf import json_format

MatchJson = dict[str, Any]
"""A Match, a team or a player in the stored JSON form."""

STATUS_NAMES: dict[int, str] = {number: name for name, number in match_pb2.MatchStatus.items()}


def present(**fields: object) -> MatchJson:
    """`fields` without the ones at their proto3 default (empty, zero), as JSON mapping omits."""
    return {key: value for key, value in fields.items() if value}


def player_json(faceit_player_id: str, nickname: str | None) -> MatchJson:
    """A roster entry."""
    # The common case written out, not present(): this runs for every player of every webhook.
    if faceit_player_id and nickname:
        return {"faceit_player_id": faceit_player_id, "nickname": nickname}
    return present(faceit_player_id=faceit_player_id, nickname=nickname)


def team_json(
    faction: str, name: str | None, roster: list[MatchJson], team_id: str | None = None
) -> MatchJson:
    """A team, its roster made of `player_json` entries."""
    return present(faction=faction, name=name, roster=roster, team_id=team_id)


def match_json(
    *,
    match_id: str,
    version: int,
    organizer_id: str | None,
    entity: MatchJson | None,
    game: str | None,
    region: str | None,
    status: str | int | None,
    teams: list[MatchJson],
    results: MatchJson | None = None,
) -> MatchJson:
    """A match; `entity` None leaves the field unset, `{}` sets it empty; `results` (winner and
    score) only when they hold something."""
    value = present(
        match_id=match_id,
        version=str(version) if version else "",
        organizer_id=organizer_id,
        game=game,
        region=region,
        status=status,
        teams=teams,
    )
    if entity is not None:
        value["entity"] = entity
    if results:
        value["results"] = results
    return value


def results_json(winner: str | None, score: dict[str, int] | None) -> MatchJson:
    """A match's results from FACEIT's `{winner, score: {faction: n}}` (empty when neither)."""
    scores = [present(faction=faction, score=n) for faction, n in (score or {}).items()]
    return present(winner=winner, scores=scores)


def match_to_json(match: match_pb2.Match) -> MatchJson:
    """The stored form of a Match message."""
    entity = None
    if match.HasField("entity"):
        entity = present(id=match.entity.id, name=match.entity.name, type=match.entity.type)
    return match_json(
        match_id=match.match_id,
        version=match.version,
        organizer_id=match.organizer_id,
        entity=entity,
        game=match.game,
        region=match.region,
        status=STATUS_NAMES.get(match.status, match.status) if match.status else None,
        teams=[
            team_json(
                team.faction,
                team.name,
                [player_json(p.faceit_player_id, p.nickname) for p in team.roster],
                team.team_id,
            )
            for team in match.teams
        ],
        results=results_json(
            match.results.winner, {s.faction: s.score for s in match.results.scores}
        ),
    )


def match_from_json(value: MatchJson | None) -> match_pb2.Match | None:
    """A Match message back from its stored form."""
    if value is None:
        return None
    return json_format.ParseDict(value, match_pb2.Match())


def team_fields(value: MatchJson) -> tuple[str, str, list[tuple[str, str]]]:
    """A stored team's faction, name and (faceit_player_id, nickname) pairs."""
    roster: Sequence[MatchJson] = value.get("roster", ())
    players = [(p["faceit_player_id"], p.get("nickname", "")) for p in roster]
    return value["faction"], value.get("name", ""), players
