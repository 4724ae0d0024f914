"""Parsing webhook bodies (the real envelope and the simplified shape) into inbox events."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from faceitvoice.v1 import match_pb2

from services.ingest.events import (
    Action,
    NotAFaceitEvent,
    Source,
    parse_webhook,
    simple_event_id,
)
from services.ingest.faceit_matches import poll_event_id
from services.kit.match_json import MatchJson, match_from_json, match_to_json
from tests.services.ingest.harness import real_delivery, simple_event

MATCH_ID = "1-d785567a-fd28-42a4-af99-6b3cec21c6a9"
FIRST_PLAYER = "6ed6bccc-6f1d-44c4-a9ba-c1107370d976"
SECOND_TEAM_FIRST_PLAYER = "a075e3a5-afc7-4ee4-9cc7-ccb2fe8b1e7d"


def _real(event: str, **payload: Any) -> dict[str, Any]:
    return real_delivery(event=event, event_id=f"id-{event}", payload=payload)


def _without_teams(event: str) -> dict[str, Any]:
    body = _real(event)
    del body["payload"]["teams"]
    return body


def _stored_match(match_json: MatchJson | None) -> match_pb2.Match:
    """The Match a parsed event stores, checked to be in protobuf's own JSON mapping form."""
    match = match_from_json(match_json)
    assert match is not None
    assert match_to_json(match) == match_json
    return match


REAL_CASES = [
    ("match_object_created", _without_teams("match_object_created"), Action.OPEN,
     match_pb2.MATCH_STATUS_CREATED, 0),
    ("match_status_configuring", _real("match_status_configuring"), Action.OPEN,
     match_pb2.MATCH_STATUS_CONFIGURING, 2),
    ("match_status_ready", _real("match_status_ready"), Action.OPEN,
     match_pb2.MATCH_STATUS_READY, 2),
    ("match_status_finished", _real("match_status_finished", started_at="1970-01-01T00:00:00Z"),
     Action.CLOSE, match_pb2.MATCH_STATUS_FINISHED, 2),
    ("match_status_cancelled", _real("match_status_cancelled", reason="AFK", afk=[FIRST_PLAYER]),
     Action.CLOSE, match_pb2.MATCH_STATUS_CANCELLED, 2),
    ("match_status_aborted", _real("match_status_aborted"), Action.CLOSE,
     match_pb2.MATCH_STATUS_ABORTED, 2),
    ("match_demo_ready", _real("match_demo_ready", demo_url=["https://demo"]), Action.NONE,
     match_pb2.MATCH_STATUS_UNSPECIFIED, 2),
]  # fmt: skip


@pytest.mark.parametrize(
    ("event", "body", "action", "status", "teams"), REAL_CASES, ids=[c[0] for c in REAL_CASES]
)
def test_real_envelope_parses_to_the_normalised_event(
    event: str, body: dict[str, Any], action: Action, status: int, teams: int
) -> None:
    """Every match event of the real envelope becomes the right action, status and teams."""
    parsed = parse_webhook(body)
    assert parsed.event == event
    assert parsed.event_id == f"id-{event}"
    assert parsed.action is action
    assert parsed.source is Source.WEBHOOK
    assert (parsed.match_id, parsed.version) == (MATCH_ID, 16)
    assert (parsed.organizer_id, parsed.hub_id) == (
        "faceit",
        "42e160fc-2651-4fa5-9a9b-829199e27adb",
    )
    match = _stored_match(parsed.match_json)
    assert match.status == status
    assert len(match.teams) == teams
    assert match.entity.name == "5v5 RANKED"
    if teams:
        first, second = match.teams
        assert (first.faction, second.faction) == ("faction1", "faction2")
        assert first.name == "team__deffolt"
        assert first.roster[0].faceit_player_id == FIRST_PLAYER
        assert first.roster[0].nickname == "_deffolt"
        assert second.roster[0].faceit_player_id == SECOND_TEAM_FIRST_PLAYER
        assert len(first.roster) == len(second.roster) == 5


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("hub_user_added", {"id": "hub-1", "user_id": "u-1"}),
        ("championship_started", {"id": "c-1", "game": "cs2", "organizer_id": "o-1"}),
    ],
)
def test_non_match_events_need_no_action(event: str, payload: dict[str, Any]) -> None:
    """Hub and championship events parse, carry no match and ask nothing of voice."""
    body = real_delivery(event=event)
    body["payload"] = payload
    parsed = parse_webhook(body)
    assert (parsed.event, parsed.action, parsed.match_id, parsed.match_json) == (
        event,
        Action.NONE,
        "",
        None,
    )


SIMPLE_CASES = [
    ("match_status_ready", 7, Action.OPEN, 7),
    ("match_object_created", None, Action.OPEN, 0),
    ("match_status_configuring", 3, Action.OPEN, 3),
    ("match_status_finished", None, Action.CLOSE, 0),
    ("match_status_cancelled", 9, Action.CLOSE, 9),
    ("match_status_aborted", 2, Action.CLOSE, 2),
    ("match_demo_ready", 4, Action.NONE, 4),
]


@pytest.mark.parametrize(("event", "version", "action", "expected_version"), SIMPLE_CASES)
def test_simplified_shape_parses_to_the_normalised_event(
    event: str, version: int | None, action: Action, expected_version: int
) -> None:
    """The simplified shape maps factions to teams in order and player_id to faceit_player_id."""
    body = simple_event(event, "m-simple", version=version, players=3)
    parsed = parse_webhook(body)
    assert (parsed.event, parsed.action, parsed.match_id) == (event, action, "m-simple")
    assert parsed.version == expected_version
    assert parsed.organizer_id == "org-1"
    assert parsed.event_id == simple_event_id(body)
    match = _stored_match(parsed.match_json)
    assert (match.match_id, match.version) == ("m-simple", expected_version)
    assert [team.faction for team in match.teams] == ["faction1", "faction2"]
    assert [p.faceit_player_id for p in match.teams[1].roster] == [
        "m-simple-faction2-p0",
        "m-simple-faction2-p1",
        "m-simple-faction2-p2",
    ]
    assert match.teams[0].roster[2].nickname == "faction1-2"


def test_simplified_event_id_is_a_deterministic_hash_unless_given() -> None:
    """The same simplified body gets the same event id whatever its key order; a given id wins."""
    body = simple_event("match_status_ready", "m-1", version=1)
    reordered = dict(reversed(list(body.items())))
    assert parse_webhook(body).event_id == parse_webhook(reordered).event_id
    assert parse_webhook({**body, "version": 2}).event_id != parse_webhook(body).event_id
    assert parse_webhook({**body, "event_id": "given"}).event_id == "given"


def test_poll_event_ids_are_deterministic() -> None:
    """Same status, rosters and held version: same id; a roster change alone makes another."""
    picked = (("faction1", ("a", "b")), ("faction2", ("c",)))
    more = (("faction1", ("a", "b")), ("faction2", ("c", "d")))
    first = poll_event_id("m", "match_status_captain_pick", 0, picked)
    assert first == poll_event_id("m", "match_status_captain_pick", 0, picked)
    assert first != poll_event_id("m", "match_status_captain_pick", 0, more)
    assert first != poll_event_id("m", "match_status_voting", 0, picked)
    assert first != poll_event_id("m", "match_status_captain_pick", 12, picked)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hello": "world"},
        {"event": "match_status_ready"},
        {"event": "match_status_ready", "match_id": ""},
        {"event": "match_status_ready", "match_id": 12},
        {"event": "bad name!", "match_id": "m"},
        {"event": "match_status_ready", "match_id": "m\x00"},
        {"event": "match_status_ready", "match_id": "m\ud800"},
        {"event": "match_status_ready", "event_id": "e", "payload": {"id": "m", "game": "\x00"}},
        {"event": "match_status_ready", "match_id": "m", "version": -1},
        {"event": "match_status_ready", "match_id": "m", "version": "3"},
        {"event": "match_status_ready", "match_id": "m", "entity": {"teams": []}},
        {"event": "match_status_ready", "event_id": "e", "payload": {"teams": []}},
        {"event": "match_status_ready", "event_id": "e", "payload": []},
        {"event": "match_status_ready", "payload": {"id": "m"}},
        {"event": "match_status_ready", "event_id": "e", "payload": {"id": "m", "teams": {}}},
    ],
)
def test_bodies_that_are_no_faceit_event_are_refused(body: dict[str, Any]) -> None:
    """Objects fitting neither shape (or unstorable in Postgres) raise NotAFaceitEvent."""
    with pytest.raises(NotAFaceitEvent):
        parse_webhook(body)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"id": "m", "region": "E\x00U"}, "payload: region: must not contain NUL characters"),
        ({"id": "m\udc80"}, "payload: id: must be valid unicode (no lone surrogates)"),
    ],
)
def test_unstorable_strings_are_refused_saying_why(payload: dict[str, Any], message: str) -> None:
    """A NUL or a lone surrogate in a stored field is refused with a message naming the field."""
    body = real_delivery(event_id="e-unstorable", payload={})
    body["payload"] = payload
    with pytest.raises(NotAFaceitEvent, match=re.escape(message)):
        parse_webhook(body)


def _roster_ids(match: match_pb2.Match) -> list[list[str]]:
    return [[player.faceit_player_id for player in team.roster] for team in match.teams]


def test_blank_and_repeated_players_of_the_real_delivery_are_dropped() -> None:
    """Empty, whitespace, null and missing ids are left out, a repeat kept once, the rest kept."""
    body = real_delivery()
    first, second = body["payload"]["teams"]
    first["roster"][1]["id"] = ""
    first["roster"][2]["id"] = " \t"
    first["roster"][3]["id"] = None
    del second["roster"][1]["id"]
    second["roster"].append(dict(second["roster"][0], nickname="again"))
    parsed = parse_webhook(body)
    match = _stored_match(parsed.match_json)
    assert _roster_ids(match) == [
        [FIRST_PLAYER, "8961f0be-54ef-4815-9f05-87a95c13b47c"],
        [
            SECOND_TEAM_FIRST_PLAYER,
            "284091f7-2e87-449a-9190-afc5a21f862a",
            "dc5427a4-e279-4f69-94e9-383bbc8ebcba",
            "5dbc3ca1-baf4-4a5a-992d-a22486fc2505",
        ],
    ]
    assert match.teams[1].roster[0].nickname == "Ragged-"
    assert parsed.dropped == (
        "faction1 player 2: blank id",
        "faction1 player 3: blank id",
        "faction1 player 4: blank id",
        "faction2 player 2: blank id",
        f"faction2 player 6: {SECOND_TEAM_FIRST_PLAYER} again",
    )


def test_a_third_team_of_the_real_delivery_is_dropped() -> None:
    """A team listed after faction1 and faction2 is left out; the two factions are kept whole."""
    body = real_delivery()
    third = copy.deepcopy(body["payload"]["teams"][0])
    third["id"] = "team-three"
    body["payload"]["teams"].append(third)
    parsed = parse_webhook(body)
    match = _stored_match(parsed.match_json)
    assert [team.faction for team in match.teams] == ["faction1", "faction2"]
    assert [len(team.roster) for team in match.teams] == [5, 5]
    assert parsed.dropped == ("team 3 (id team-three, 5 players)",)


def test_the_simplified_shape_drops_other_factions_and_blank_players() -> None:
    """Only faction1 and faction2 are kept, blank player ids and repeats are left out."""
    body = simple_event("match_status_ready", "m-odd", players=2)
    teams = body["entity"]["teams"]
    teams["faction3"] = {"roster": [{"player_id": "p-three"}]}
    teams["faction1"]["roster"].append({"player_id": "  "})
    teams["faction2"]["roster"].append({"player_id": "m-odd-faction2-p0"})
    parsed = parse_webhook(body)
    match = _stored_match(parsed.match_json)
    assert _roster_ids(match) == [
        ["m-odd-faction1-p0", "m-odd-faction1-p1"],
        ["m-odd-faction2-p0", "m-odd-faction2-p1"],
    ]
    assert parsed.dropped == (
        "team 'faction3'",
        "faction1 player 3: blank id",
        "faction2 player 3: m-odd-faction2-p0 again",
    )


def test_a_clean_delivery_drops_nothing() -> None:
    """The real delivery as FACEIT sent it is kept whole."""
    assert parse_webhook(real_delivery()).dropped == ()


FOUR_BYTES = "\U0001f600"


def _real_with(**payload: Any) -> dict[str, Any]:
    return real_delivery(event_id="e-limits", payload=payload)


def _with_roster(size: int) -> dict[str, Any]:
    body = real_delivery(event_id="e-roster")
    body["payload"]["teams"][0]["roster"] = [{"id": f"p-{n}"} for n in range(size)]
    return body


def _with_teams(count: int) -> dict[str, Any]:
    body = real_delivery(event_id="e-teams")
    body["payload"]["teams"] = [{"id": f"t-{n}"} for n in range(count)]
    return body


def _with_player(**entry: Any) -> dict[str, Any]:
    body = real_delivery(event_id="e-player")
    body["payload"]["teams"][1]["roster"][0].update(entry)
    return body


OVER_LIMITS = {
    "match id of 1,000 four-byte characters": _real_with(id=FOUR_BYTES * 1000),
    "match id of 33 four-byte characters": _real_with(id=FOUR_BYTES * 33),
    "match id of 129 bytes": _real_with(id="m" * 129),
    "blank match id": _real_with(id=" \t "),
    "simplified blank match id": {"event": "match_status_ready", "match_id": "  "},
    "event id of 129 bytes": real_delivery(event_id="e" * 129),
    "event name of 129 bytes": real_delivery(event="m" * 129),
    "organizer id of 129 bytes": _real_with(organizer_id="o" * 129),
    "hub id of 33 four-byte characters": _real_with(entity={"id": FOUR_BYTES * 33}),
    "competition name of 101 characters": _real_with(entity={"name": "n" * 101}),
    "competition type of 1,001 characters": _real_with(entity={"type": "t" * 1001}),
    "region of 1,001 characters": _real_with(region="r" * 1001),
    "player id of 129 bytes": _with_player(id="p" * 129),
    "player id of 33 four-byte characters": _with_player(id=FOUR_BYTES * 33),
    "nickname of 101 characters": _with_player(nickname="n" * 101),
    "team id of 129 bytes": _real_with(teams=[{"id": "t" * 129}]),
    "team name of 101 characters": _real_with(teams=[{"name": "n" * 101}]),
    "roster of 100 players": _with_roster(100),
    "roster of 12,000 players": _with_roster(12_000),
    "9 teams": _with_teams(9),
    "simplified roster of 100 players": simple_event("match_status_ready", "m", players=100),
    "simplified faction key of 101 characters": {
        "event": "match_status_ready",
        "match_id": "m",
        "entity": {"teams": {"f" * 101: {"roster": []}}},
    },
    "simplified player id of 129 bytes": {
        "event": "match_status_ready",
        "match_id": "m",
        "entity": {"teams": {"faction1": {"roster": [{"player_id": "p" * 129}]}}},
    },
}


@pytest.mark.parametrize("body", OVER_LIMITS.values(), ids=OVER_LIMITS.keys())
def test_values_beyond_the_input_limits_are_refused_without_echoing_them(
    body: dict[str, Any],
) -> None:
    """Ids over 128 UTF-8 bytes, names over 100, text over 1,000, rosters over 99 are refused."""
    with pytest.raises(NotAFaceitEvent) as refused:
        parse_webhook(body)
    message = str(refused.value)
    assert len(message) < 300
    for echoed in (FOUR_BYTES * 2, "x" * 41, "p" * 41, "n" * 41, "r" * 41, "t" * 41, "f" * 41):
        assert echoed not in message


def test_values_at_the_input_limits_are_accepted() -> None:
    """Ids of exactly 128 bytes (ASCII or four-byte), names of 100, 99 players and 8 teams pass."""
    body = _with_roster(99)
    payload = body["payload"]
    payload["id"] = FOUR_BYTES * 32
    payload["organizer_id"] = "o" * 128
    payload["region"] = "r" * 1000
    payload["entity"]["name"] = "n" * 100
    payload["teams"][1]["name"] = "n" * 100
    payload["teams"][1]["roster"][0]["id"] = "é" * 64
    payload["teams"].extend({"id": f"t-{n}"} for n in range(6))
    parsed = parse_webhook(body)
    match = _stored_match(parsed.match_json)
    assert match.match_id == FOUR_BYTES * 32
    assert [len(team.roster) for team in match.teams] == [99, 5]
    assert match.teams[1].roster[0].faceit_player_id == "é" * 64
    assert len(parsed.dropped) == 6
