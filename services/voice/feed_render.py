"""The match feed's message: one Discord embed built from a match as voice holds it (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from services.voice.model import MatchRecord, MatchResults, MatchState, Team

ROOM_URL = "https://www.faceit.com/en/{game}/room/{match_id}"
DEFAULT_GAME = "cs2"
TITLE_MAX = 256
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
LIVE_COLOR = 0xFF5500
FINISHED_COLOR = 0x2ECC71
ENDED_COLOR = 0x95A5A6
_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()<@])")


@dataclass(frozen=True)
class FeedFacts:
    """What the feed knows of a match beyond what voice holds: from the events."""

    competition: str = ""
    game: str = ""
    results: MatchResults | None = None
    teams: tuple[Team, ...] = ()
    """The teams as the last open said (a closed match holds none)."""


def room_url(match_id: str, game: str) -> str:
    """The FACEIT match room of `match_id` (the game's segment defaults to cs2)."""
    return ROOM_URL.format(
        game=quote(game or DEFAULT_GAME, safe=""), match_id=quote(match_id, safe="")
    )


def escape(text: str) -> str:
    """`text` with Discord markdown and mention syntax escaped (nicknames are user input)."""
    return _MARKDOWN.sub(r"\\\1", text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _team_name(team: Team) -> str:
    return team.name or team.faction


def _roster(team: Team, links: Mapping[str, int]) -> str:
    """One line per player: a mention when linked, else the escaped nickname."""
    lines = []
    for player in team.roster:
        user_id = links.get(player.faceit_player_id)
        lines.append(f"<@{user_id}>" if user_id else escape(player.nickname or "?"))
    text = "\n".join(lines) or "-"
    if len(text) > FIELD_VALUE_MAX:
        text = text[: FIELD_VALUE_MAX - 2].rsplit("\n", 1)[0] + "\n…"
    return text


def outcome(record: MatchRecord, facts: FeedFacts) -> str:
    """The status line: live, or how it ended (winner and score when known)."""
    results = facts.results
    if record.state is MatchState.OPEN:
        return "Live"
    reason = record.close_reason
    if "cancel" in reason:
        return "Cancelled"
    if "abort" in reason:
        return "Aborted"
    if "finish" not in reason:
        return "Closed"
    if results is None or not results.winner:
        return "Finished"
    teams = record.teams or facts.teams
    names = {team.faction: _team_name(team) for team in teams}
    winner = escape(names.get(results.winner, results.winner))
    scores = dict(results.score)
    order = [t.faction for t in teams if t.faction in scores] or sorted(scores)
    score = " - ".join(str(scores[f]) for f in order)
    return f"Finished: **{winner}** won" + (f" {score}" if score else "")


def render(record: MatchRecord, facts: FeedFacts, links: Mapping[str, int]) -> dict[str, Any]:
    """The embed of the match's feed message (Discord's limits hold for any input)."""
    teams = record.teams or facts.teams
    title = " vs ".join(_team_name(t) for t in teams) or f"Match {record.match_id}"
    status = outcome(record, facts)
    lines = [f"**{escape(facts.competition)}**"] if facts.competition else []
    lines.append(status)
    winner = facts.results.winner if facts.results and status.startswith("Finished:") else ""
    fields = [
        {
            "name": _cut(("🏆 " if t.faction == winner else "") + _team_name(t), FIELD_NAME_MAX),
            "value": _roster(t, links),
            "inline": True,
        }
        for t in teams
    ]
    if record.state is MatchState.OPEN:
        names = {t.faction: _team_name(t) for t in teams}
        voice = [
            f"{escape(names.get(c.faction, c.faction))}: <#{c.channel_id}>"
            for c in record.channels
            if c.channel_id is not None
        ]
        if voice:
            fields.append(
                {"name": "Voice", "value": _cut("\n".join(voice), FIELD_VALUE_MAX), "inline": False}
            )
    if status == "Live":
        color = LIVE_COLOR
    else:
        color = FINISHED_COLOR if status.startswith("Finished") else ENDED_COLOR
    return {
        "type": "rich",
        "title": _cut(title, TITLE_MAX),
        "url": room_url(record.match_id, facts.game),
        "description": "\n".join(lines),
        "color": color,
        "fields": fields,
        "footer": {"text": f"Match {record.match_id}"},
    }


def shows_match(embeds: list[dict[str, Any]], match_id: str) -> bool:
    """Whether a message's embeds are the feed message of `match_id` (found by its footer)."""
    return any((e.get("footer") or {}).get("text") == f"Match {match_id}" for e in embeds)
