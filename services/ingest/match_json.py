"""The stored (jsonb) form of a Match: protobuf's JSON mapping, built and read by hand."""

from __future__ import annotations

from typing import Any

from faceitvoice.v1 import match_pb2
from google.protobuf import json_format

MatchJson = dict[str, Any]
"""A Match as `json_format.MessageToDict(match, preserving_proto_field_name=True)` gives it."""

STATUS_NAMES: dict[int, str] = {number: name for name, number in match_pb2.MatchStatus.items()}


def present(**fields: object) -> dict[str, Any]:
    """`fields` without the ones at their proto3 default (empty, zero), as JSON mapping omits."""
    return {key: value for key, value in fields.items() if value}


def match_to_json(match: match_pb2.Match) -> MatchJson:
    """The jsonb form of a Match: what protobuf's JSON mapping gives, built by hand.

    Same keys and values as `json_format.MessageToDict(match, preserving_proto_field_name=True)`
    (int64 as a string, the status by name, defaults left out) at a fraction of its cost.
    """
    value = present(
        match_id=match.match_id,
        version=str(match.version) if match.version else "",
        organizer_id=match.organizer_id,
    )
    if match.HasField("entity"):
        entity = match.entity
        value["entity"] = present(id=entity.id, name=entity.name, type=entity.type)
    value.update(present(game=match.game, region=match.region))
    if match.status:
        value["status"] = STATUS_NAMES.get(match.status, match.status)
    if match.teams:
        value["teams"] = [
            present(
                faction=team.faction,
                name=team.name,
                roster=[
                    present(faceit_player_id=player.faceit_player_id, nickname=player.nickname)
                    for player in team.roster
                ],
                team_id=team.team_id,
            )
            for team in match.teams
        ]
    return value


def match_from_json(value: MatchJson | None) -> match_pb2.Match | None:
    """A Match back from its jsonb form."""
    if value is None:
        return None
    return json_format.ParseDict(value, match_pb2.Match())
