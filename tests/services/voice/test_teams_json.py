"""The teams voice stores for an open match, in the one stored form of a match."""

from __future__ import annotations

from services.kit.match_json import match_from_json, match_to_json
from services.voice.model import Player, Team
from services.voice.store import teams_from_json, teams_to_json

_TEAMS = (
    Team("faction1", "Team A", (Player("p-1", "alpha"), Player("p-2", ""))),
    Team("faction2", "", ()),
)


def test_stored_teams_are_a_matchs_teams_in_its_json_mapping() -> None:
    """What voice stores is what ingest stores for the same teams (proto JSON mapping)."""
    match = match_from_json({"teams": teams_to_json(_TEAMS)})

    assert match is not None
    assert match_to_json(match)["teams"] == teams_to_json(_TEAMS)
    assert [(t.faction, t.name, [p.nickname for p in t.roster]) for t in match.teams] == [
        ("faction1", "Team A", ["alpha", ""]),
        ("faction2", "", []),
    ]


def test_teams_read_back_as_stored() -> None:
    """Teams survive being stored, empty names and nicknames included."""
    assert teams_from_json(teams_to_json(_TEAMS)) == _TEAMS


def test_rows_stored_before_the_shared_form_still_read() -> None:
    """Teams written with every key present, empty or not, read as the same teams."""
    old_form = [
        {
            "faction": "faction1",
            "name": "Team A",
            "roster": [
                {"faceit_player_id": "p-1", "nickname": "alpha"},
                {"faceit_player_id": "p-2", "nickname": ""},
            ],
        },
        {"faction": "faction2", "name": "", "roster": []},
    ]

    assert teams_from_json(old_form) == _TEAMS
