"""Unit tests of the pure webhook builders, checked against a real FACEIT delivery."""

from __future__ import annotations

import random

from sandbox.faceit.model import Hub, Match, Player
from sandbox.faceit.webhook_payloads import envelope, event_for_status, iso, match_payload
from sandbox.faceit.world import World
from tests.sandbox.faceit.conftest import load_fixture

NOW = 1_670_612_138.0  # 2022-12-09T18:55:38Z


def world_with_match() -> tuple[World, Match, dict[str, Player], Hub]:
    """A world holding one 2v2 match."""
    hub = Hub(hub_id="hub-1", name="Hub One", organizer_id="org-1", game="cs2", region="EU")
    world = World(clock=lambda: NOW, rng=random.Random(3), default_hub=hub)
    ids = [world.add_player(name, skill_level=5).player_id for name in "abcd"]
    match = world.create_match([ids[:2], ids[2:]])
    players = {p.player_id: p for p in world.players()}
    return world, match, players, hub


def build(event: str, match: Match, players: dict[str, Player], hub: Hub) -> dict:
    """A complete delivery body for `event`."""
    return envelope(
        event=event,
        payload=match_payload(event, match, players, hub),
        event_id="e",
        transaction_id="t",
        third_party_id="p",
        app_id="a",
        timestamp=NOW,
        retry_count=0,
    )


def test_iso_matches_faceit_timestamp_format() -> None:
    """Timestamps are whole-second UTC ISO strings ending in Z."""
    assert iso(NOW) == "2022-12-09T18:55:38Z"
    assert iso(0) == "1970-01-01T00:00:00Z"


def test_events_exist_only_for_confirmed_statuses() -> None:
    """Only statuses with a confirmed webhook map to an event."""
    assert event_for_status("READY") == "match_status_ready"
    assert event_for_status("ABORTED") == "match_status_aborted"
    assert event_for_status("ONGOING") is None


def test_ready_delivery_has_exactly_the_fixture_keys() -> None:
    """Envelope, payload, team and roster entry keys equal the real delivery's."""
    fixture = load_fixture()
    world, match, players, hub = world_with_match()
    world.set_status(match, "READY")
    body = build("match_status_ready", match, players, hub)
    assert body.keys() == fixture.keys()
    assert body["payload"].keys() == fixture["payload"].keys()
    assert body["payload"]["entity"].keys() == fixture["payload"]["entity"].keys()
    team, real_team = body["payload"]["teams"][0], fixture["payload"]["teams"][0]
    assert team.keys() == real_team.keys()
    assert team["roster"][0].keys() == real_team["roster"][0].keys()
    assert isinstance(body["payload"]["teams"], list) and body["version"] == 1


def test_value_types_match_the_fixture() -> None:
    """Each payload field has the JSON type the real delivery has."""
    fixture = load_fixture()
    world, match, players, hub = world_with_match()
    world.set_status(match, "READY")
    body = build("match_status_ready", match, players, hub)
    entry, real_entry = (
        body["payload"]["teams"][0]["roster"][0],
        fixture["payload"]["teams"][0]["roster"][0],
    )
    assert {k: type(v) for k, v in entry.items()} == {k: type(v) for k, v in real_entry.items()}
    assert type(body["payload"]["version"]) is type(fixture["payload"]["version"])
    assert type(body["timestamp"]) is type(fixture["timestamp"])


def test_created_payload_has_no_teams() -> None:
    """`match_object_created` carries id, version, entity and times but no teams."""
    _, match, players, hub = world_with_match()
    payload = match_payload("match_object_created", match, players, hub)
    assert "teams" not in payload
    assert set(payload) == {
        "id",
        "organizer_id",
        "region",
        "game",
        "version",
        "entity",
        "created_at",
        "updated_at",
    }


def test_finished_payload_adds_start_and_finish_times() -> None:
    """A finished match's payload has ISO `started_at` and `finished_at`."""
    world, match, players, hub = world_with_match()
    world.set_status(match, "READY")
    world.set_status(match, "FINISHED")
    payload = match_payload("match_status_finished", match, players, hub)
    assert payload["started_at"] == payload["finished_at"] == iso(NOW)


def test_finished_without_start_uses_the_epoch_like_real_forfeits() -> None:
    """A match finished without ever starting reports `started_at` as 1970."""
    world, match, players, hub = world_with_match()
    world.set_status(match, "FINISHED")
    payload = match_payload("match_status_finished", match, players, hub)
    assert payload["started_at"] == "1970-01-01T00:00:00Z"


def test_cancelled_payload_adds_reason_afk_and_players() -> None:
    """A cancellation says why, who was AFK and who played."""
    world, match, players, hub = world_with_match()
    afk = match.teams[1].player_ids[0]
    world.set_status(match, "CANCELLED", reason="AFK", afk_player_ids=[afk])
    payload = match_payload("match_status_cancelled", match, players, hub)
    assert (payload["reason"], payload["afk"]) == ("AFK", [afk])
    assert payload["players"] == match.player_ids()
    assert len(payload["teams"]) == 2


def test_teams_follow_faction_order_with_leader_as_id() -> None:
    """Teams are a list, faction1 first, each id being its leader's player id."""
    world, match, players, hub = world_with_match()
    world.set_status(match, "CONFIGURING")
    teams = match_payload("match_status_configuring", match, players, hub)["teams"]
    assert [t["id"] for t in teams] == [t.leader_id for t in match.teams]
    assert [r["id"] for r in teams[1]["roster"]] == match.teams[1].player_ids
    assert teams[0]["roster"][0]["game_skill_level"] == 5


def test_a_filling_match_sends_only_the_players_seated_so_far() -> None:
    """Cancelled during captain pick: teams and `players` list only the players picked so far."""
    hub = Hub(hub_id="hub-1", name="Hub One", organizer_id="org-1", game="cs2", region="EU")
    world = World(clock=lambda: NOW, rng=random.Random(3), default_hub=hub, fill_rosters=True)
    ids = [world.add_player(name).player_id for name in "abcdef"]
    match = world.create_match([ids[:3], ids[3:]])
    world.set_status(match, "CAPTAIN_PICK")
    world.set_status(match, "CANCELLED", reason="AFK")
    players = {p.player_id: p for p in world.players()}
    payload = match_payload("match_status_cancelled", match, players, hub)
    rosters = [[entry["id"] for entry in team["roster"]] for team in payload["teams"]]
    assert rosters == [ids[:2], ids[3:5]]
    assert payload["players"] == [*ids[:2], *ids[3:5]]
