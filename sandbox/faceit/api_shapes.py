"""Pure builders of FACEIT Data API v4 JSON bodies (players, search items, matches, pages)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.faceit.model import Hub, Match, Player

NOT_FOUND_CODE = "err_nf0"
NOT_FOUND_MESSAGE = "The resource was not found."


def error_json(message: str, code: str) -> dict[str, Any]:
    """The FACEIT error body `{"errors": [{"message", "code"}]}`."""
    return {"errors": [{"message": message, "code": code}]}


def not_found_json() -> dict[str, Any]:
    """The body FACEIT answers 404 with."""
    return error_json(NOT_FOUND_MESSAGE, NOT_FOUND_CODE)


def page_json(items: Sequence[Mapping[str, Any]], offset: int) -> dict[str, Any]:
    """A list page: `{"items", "start", "end"}` with no total, as FACEIT sends it."""
    return {"items": list(items), "start": offset, "end": offset + len(items)}


def player_json(player: Player) -> dict[str, Any]:
    """`GET /players/{id}` and `GET /players?nickname=`: one Player with `games.cs2`."""
    return {
        "player_id": player.player_id,
        "nickname": player.nickname,
        "avatar": player.avatar,
        "country": player.country,
        "cover_image": "",
        "platforms": {"steam": player.game_player_id},
        "games": {
            "cs2": {
                "region": player.region,
                "game_player_id": player.game_player_id,
                "skill_level": player.skill_level,
                "faceit_elo": player.faceit_elo,
                "game_player_name": player.game_player_name,
                "skill_level_label": str(player.skill_level),
                "regions": {},
                "game_profile_id": player.player_id,
            }
        },
        "settings": {"language": "en"},
        "friends_ids": [],
        "new_steam_id": f"[U:1:{int(player.game_player_id) - 76561197960265728}]",
        "steam_id_64": player.game_player_id,
        "steam_nickname": player.game_player_name,
        "memberships": ["free"],
        "faceit_url": f"https://www.faceit.com/{{lang}}/players/{player.nickname}",
        "membership_type": "",
        "cover_featured_image": "",
        "infractions": {},
        "verified": True,
    }


def search_item_json(player: Player) -> dict[str, Any]:
    """One `GET /search/players` item: `games` is a list and `skill_level` a string."""
    return {
        "player_id": player.player_id,
        "nickname": player.nickname,
        "status": "AVAILABLE",
        "games": [{"name": "cs2", "skill_level": str(player.skill_level)}],
        "country": player.country,
        "verified": True,
        "avatar": player.avatar,
    }


def _roster_entry_json(player: Player) -> dict[str, Any]:
    return {
        "player_id": player.player_id,
        "nickname": player.nickname,
        "avatar": player.avatar,
        "membership": "free",
        "game_player_id": player.game_player_id,
        "game_player_name": player.game_player_name,
        "game_skill_level": player.skill_level,
        "anticheat_required": True,
    }


def match_json(match: Match, players: Mapping[str, Player], hub: Hub) -> dict[str, Any]:
    """`GET /matches/{id}`: teams as `{faction1, faction2}`, Unix-second times, upper status.

    Rosters are empty while the match is in CHECK_IN, as the real hub listings show them;
    `version` is the Data API's own, not the webhooks' `payload.version`.
    """
    show_rosters = match.status != "CHECK_IN"
    teams = {}
    for index, team in enumerate(match.teams):
        roster = [_roster_entry_json(players[pid]) for pid in team.roster]
        teams[f"faction{index + 1}"] = {
            "faction_id": team.faction_id,
            "leader": team.leader_id,
            "avatar": team.avatar,
            "roster": roster if show_rosters else [],
            "substituted": False,
            "name": team.name,
            "type": "",
        }
    body: dict[str, Any] = {
        "match_id": match.match_id,
        "version": match.api_version,
        "game": match.game,
        "region": match.region,
        "competition_id": hub.hub_id,
        "competition_type": "hub",
        "competition_name": hub.name,
        "organizer_id": match.organizer_id,
        "teams": teams,
        "calculate_elo": True,
        "chat_room_id": f"match-{match.match_id}",
        "best_of": 1,
        "status": match.status,
        "faceit_url": f"https://www.faceit.com/{{lang}}/cs2/room/{match.match_id}",
    }
    for key, stamp in (
        ("configured_at", match.configured_at),
        ("started_at", match.started_at),
        ("finished_at", match.finished_at),
    ):
        if stamp is not None:
            body[key] = int(stamp)
    if match.status == "FINISHED" and match.winner:
        loser = "faction2" if match.winner == "faction1" else "faction1"
        body["results"] = {"winner": match.winner, "score": {match.winner: 1, loser: 0}}
    return body
