"""Pure builders of FACEIT webhook bodies: the envelope and the match event payloads."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sandbox.faceit.model import Hub, Match, Player

CREATED_EVENT = "match_object_created"
_EVENT_FOR_STATUS = {
    "CONFIGURING": "match_status_configuring",
    "READY": "match_status_ready",
    "FINISHED": "match_status_finished",
    "CANCELLED": "match_status_cancelled",
    "ABORTED": "match_status_aborted",
}
LIFECYCLE_END_EVENTS = frozenset(
    {"match_status_finished", "match_status_cancelled", "match_status_aborted"}
)


def event_for_status(status: str) -> str | None:
    """The webhook FACEIT sends when a match reaches `status`, or None (no confirmed event)."""
    return _EVENT_FOR_STATUS.get(status)


def iso(timestamp: float) -> str:
    """A Unix time as FACEIT's webhook timestamp string, e.g. `2022-12-09T18:55:38Z`."""
    return datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(
    *,
    event: str,
    payload: Mapping[str, Any],
    event_id: str,
    transaction_id: str,
    third_party_id: str,
    app_id: str,
    timestamp: float,
    retry_count: int,
) -> dict[str, Any]:
    """The delivery body with exactly the keys of a real FACEIT webhook."""
    return {
        "transaction_id": transaction_id,
        "event": event,
        "event_id": event_id,
        "third_party_id": third_party_id,
        "app_id": app_id,
        "timestamp": iso(timestamp),
        "retry_count": retry_count,
        "version": 1,
        "payload": dict(payload),
    }


def _roster_entry(player: Player) -> dict[str, Any]:
    return {
        "id": player.player_id,
        "nickname": player.nickname,
        "avatar": player.avatar,
        "game_id": player.game_player_id,
        "game_name": player.game_player_name,
        "game_skill_level": player.skill_level,
        "membership": "",
        "anticheat_required": True,
    }


def _teams(match: Match, players: Mapping[str, Player]) -> list[dict[str, Any]]:
    return [
        {
            "id": team.faction_id,
            "name": team.name,
            "type": "",
            "avatar": team.avatar,
            "leader_id": team.leader_id,
            "co_leader_id": "",
            "roster": [_roster_entry(players[pid]) for pid in team.roster],
            "substitutions": 0,
            "substitutes": None,
        }
        for team in match.teams
    ]


def match_payload(
    event: str, match: Match, players: Mapping[str, Player], hub: Hub
) -> dict[str, Any]:
    """The `payload` of a match event as FACEIT shapes it for `event`.

    `match_object_created` carries no teams; finished adds `started_at`/`finished_at`
    (`started_at` is the epoch when the match never started, as for real forfeits);
    cancelled adds `reason`, `afk` and `players`.
    """
    payload: dict[str, Any] = {
        "id": match.match_id,
        "organizer_id": match.organizer_id,
        "region": match.region,
        "game": match.game,
        "version": match.webhook_version,
        "entity": {"id": hub.hub_id, "name": hub.name, "type": "hub"},
    }
    if event != CREATED_EVENT:
        payload["teams"] = _teams(match, players)
    payload["created_at"] = iso(match.created_at)
    payload["updated_at"] = iso(match.updated_at)
    if event == "match_status_finished":
        payload["started_at"] = iso(match.started_at or 0)
        payload["finished_at"] = iso(match.finished_at or match.updated_at)
    if event == "match_status_cancelled":
        payload["reason"] = match.cancel_reason or "MANUAL"
        payload["afk"] = list(match.afk_player_ids)
        payload["players"] = match.player_ids()
    return payload
