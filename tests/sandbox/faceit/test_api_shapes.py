"""Unit tests of the pure Data API body builders."""

from __future__ import annotations

import random

from sandbox.faceit.api_shapes import (
    match_json,
    not_found_json,
    page_json,
    player_json,
    search_item_json,
)
from sandbox.faceit.model import Hub
from sandbox.faceit.world import World

NOW = 1_700_000_000.0


def make_world() -> tuple[World, Hub]:
    """A world with a fixed clock."""
    hub = Hub(hub_id="hub-1", name="Hub One", organizer_id="org-1", game="cs2", region="EU")
    return World(clock=lambda: NOW, rng=random.Random(5), default_hub=hub), hub


def test_not_found_body_is_faceits() -> None:
    """The 404 body is FACEIT's `err_nf0` error list."""
    assert not_found_json() == {
        "errors": [{"message": "The resource was not found.", "code": "err_nf0"}]
    }


def test_page_reports_start_and_end() -> None:
    """A page has items, start = offset and end = offset + items."""
    assert page_json([{"a": 1}, {"a": 2}], 10) == {
        "items": [{"a": 1}, {"a": 2}],
        "start": 10,
        "end": 12,
    }


def test_player_has_cs2_game_with_int_skill_level() -> None:
    """A Player has `games.cs2` with int `skill_level` and `faceit_elo`."""
    world, _ = make_world()
    player = world.add_player("Alice", faceit_elo=1600)
    body = player_json(player)
    cs2 = body["games"]["cs2"]
    assert (cs2["faceit_elo"], cs2["skill_level"]) == (1600, 8)
    assert cs2["game_player_id"] == body["steam_id_64"]
    assert body["player_id"] == player.player_id and body["nickname"] == "Alice"


def test_search_item_has_games_list_with_string_skill_level() -> None:
    """A search item lists games, each with `skill_level` as a string."""
    world, _ = make_world()
    item = search_item_json(world.add_player("Alice", skill_level=9))
    assert item["games"] == [{"name": "cs2", "skill_level": "9"}]
    assert set(item) >= {"player_id", "nickname", "avatar", "country", "status", "verified"}


def test_match_has_factions_unix_times_and_upper_status() -> None:
    """A Match has faction1/faction2 with rosters, Unix-second times and an upper status."""
    world, hub = make_world()
    a, b = world.add_player("a"), world.add_player("b")
    match = world.create_match([[a.player_id], [b.player_id]])
    world.set_status(match, "CONFIGURING")
    body = match_json(match, {p.player_id: p for p in world.players()}, hub)
    assert set(body["teams"]) == {"faction1", "faction2"}
    faction = body["teams"]["faction2"]
    assert set(faction) >= {"faction_id", "leader", "avatar", "name", "type", "roster"}
    assert set(faction["roster"][0]) == {
        "player_id",
        "nickname",
        "avatar",
        "membership",
        "game_player_id",
        "game_player_name",
        "game_skill_level",
        "anticheat_required",
    }
    assert faction["roster"][0]["player_id"] == b.player_id
    assert (body["status"], body["configured_at"]) == ("CONFIGURING", int(NOW))
    assert "started_at" not in body and body["competition_id"] == "hub-1"


def test_check_in_match_has_empty_rosters() -> None:
    """While CHECK_IN, rosters are empty, as real hub listings show them."""
    world, hub = make_world()
    a, b = world.add_player("a"), world.add_player("b")
    match = world.create_match([[a.player_id], [b.player_id]])
    body = match_json(match, {p.player_id: p for p in world.players()}, hub)
    assert [body["teams"][f]["roster"] for f in ("faction1", "faction2")] == [[], []]
    assert body["teams"]["faction1"]["leader"] == a.player_id


def test_finished_match_has_results() -> None:
    """A finished match says who won."""
    world, hub = make_world()
    a, b = world.add_player("a"), world.add_player("b")
    match = world.create_match([[a.player_id], [b.player_id]])
    world.set_status(match, "FINISHED", winner="faction2")
    body = match_json(match, {p.player_id: p for p in world.players()}, hub)
    assert body["results"]["winner"] == "faction2"
    assert body["finished_at"] == int(NOW)
