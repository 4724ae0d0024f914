"""Unit tests of the sandbox's in-memory FACEIT model."""

from __future__ import annotations

import random

import pytest

from sandbox.faceit.model import (
    ConflictError,
    Hub,
    Match,
    SandboxError,
    elo_for_skill_level,
    is_hub_match_of_type,
    normalise_status,
    skill_level_for_elo,
)
from sandbox.faceit.world import World


def make_world(now: float = 1_700_000_000.0) -> World:
    """A world with a fixed clock and seed."""
    hub = Hub(hub_id="hub-1", name="Hub", organizer_id="org-1", game="cs2", region="EU")
    return World(clock=lambda: now, rng=random.Random(1), default_hub=hub)


def test_skill_levels_follow_faceit_elo_bands() -> None:
    """Elo maps to FACEIT's CS2 levels and a level's typical elo maps back to it."""
    assert skill_level_for_elo(100) == 1
    assert skill_level_for_elo(1000) == 4
    assert skill_level_for_elo(2001) == 10
    assert all(skill_level_for_elo(elo_for_skill_level(lvl)) == lvl for lvl in range(1, 11))


def test_skill_level_out_of_range_is_refused() -> None:
    """A skill level outside 1..10 is an error."""
    with pytest.raises(SandboxError):
        elo_for_skill_level(11)


def test_normalise_status_accepts_status_and_event_names() -> None:
    """Statuses in any case and `match_status_*` event names give the upper-case status."""
    assert normalise_status("ready") == "READY"
    assert normalise_status("match_status_finished") == "FINISHED"
    assert normalise_status("match_object_created") == "CHECK_IN"
    with pytest.raises(SandboxError):
        normalise_status("WARMING_UP")


def test_ongoing_hub_listing_includes_check_in_but_not_over_matches() -> None:
    """`type=ongoing` covers CHECK_IN and live states; `past` covers the over states."""
    assert is_hub_match_of_type("CHECK_IN", "ongoing")
    assert is_hub_match_of_type("READY", "ongoing")
    assert not is_hub_match_of_type("FINISHED", "ongoing")
    assert is_hub_match_of_type("CANCELLED", "past")
    assert is_hub_match_of_type("SCHEDULED", "upcoming")
    assert not is_hub_match_of_type("SCHEDULED", "ongoing")


def test_nickname_lookup_is_exact_and_search_is_fuzzy() -> None:
    """Exact lookup is case-sensitive; search ignores case and ranks prefixes first."""
    world = make_world()
    world.add_player("xAlice")
    world.add_player("Alice")
    world.add_player("bob")
    assert world.player_by_nickname("alice") is None
    assert world.player_by_nickname("Alice") is not None
    assert [p.nickname for p in world.search_players("ALI")] == ["Alice", "xAlice"]


def test_duplicate_nickname_is_a_conflict() -> None:
    """Two players cannot share a nickname."""
    world = make_world()
    world.add_player("Alice")
    with pytest.raises(ConflictError):
        world.add_player("Alice")


def test_create_match_starts_in_check_in_with_version_one() -> None:
    """A new match is CHECK_IN, both versions 1, id `1-<uuid>`, teams led by their first player."""
    world = make_world()
    a, b = world.add_player("a"), world.add_player("b")
    match = world.create_match([[a.player_id], [b.player_id]])
    assert (match.status, match.webhook_version, match.api_version) == ("CHECK_IN", 1, 1)
    assert match.match_id.startswith("1-") and len(match.match_id) == 38
    assert match.teams[0].leader_id == a.player_id
    assert match.teams[1].name == "team_b"
    assert match.hub_id == "hub-1"


def test_create_match_refuses_unknown_players() -> None:
    """A team with an unknown player id is refused."""
    world = make_world()
    a = world.add_player("a")
    with pytest.raises(SandboxError, match="unknown player ids: nope"):
        world.create_match([[a.player_id], ["nope"]])


def test_create_match_refuses_a_player_twice() -> None:
    """A player cannot play for both teams."""
    world = make_world()
    a, b = world.add_player("a"), world.add_player("b")
    with pytest.raises(SandboxError, match="only one team"):
        world.create_match([[a.player_id, b.player_id], [b.player_id]])


def test_set_status_grows_version_and_stamps_times() -> None:
    """Each status change grows the webhook version and sets configured/started/finished times."""
    world = make_world()
    a, b = world.add_player("a"), world.add_player("b")
    match = world.create_match([[a.player_id], [b.player_id]])
    versions = [match.webhook_version]
    for status in ("CONFIGURING", "READY", "FINISHED"):
        world.set_status(match, status)
        versions.append(match.webhook_version)
    assert versions == sorted(set(versions))
    assert match.configured_at and match.started_at and match.finished_at
    assert match.winner == "faction1"


def test_cancel_records_reason_and_afk_players() -> None:
    """A cancellation keeps its reason and the AFK player ids."""
    world = make_world()
    a, b = world.add_player("a"), world.add_player("b")
    match = world.create_match([[a.player_id], [b.player_id]])
    world.set_status(match, "CANCELLED", reason="AFK", afk_player_ids=[b.player_id])
    assert (match.cancel_reason, match.afk_player_ids) == ("AFK", [b.player_id])
    assert match.is_over


def test_hub_matches_filter_by_hub_and_type() -> None:
    """Hub listings hold only that hub's matches of the asked type."""
    world = make_world()
    a, b = world.add_player("a"), world.add_player("b")
    first = world.create_match([[a.player_id], [b.player_id]])
    other = world.create_match([[a.player_id], [b.player_id]], hub_id="hub-2")
    world.set_status(first, "FINISHED")
    assert world.hub_matches("hub-1", "past") == [first]
    assert world.hub_matches("hub-1", "ongoing") == []
    assert world.hub_matches("hub-2", "ongoing") == [other]


def test_subscription_secret_parts_go_together() -> None:
    """A header name needs a value (and a query param needs a value)."""
    world = make_world()
    with pytest.raises(SandboxError):
        world.add_subscription("http://x/hook", header_name="X-Secret")
    sub = world.add_subscription("http://x/hook", query_param="token", query_value="s")
    assert world.subscriptions() == [sub]
    assert world.remove_subscription(sub.subscription_id)


@pytest.mark.parametrize("seed", range(20))
def test_the_data_api_version_is_its_own_small_counter(seed: int) -> None:
    """Data API version: 1 in CHECK_IN, then 2 for good; the webhook's never equals it again.

    Real captures of one match: `GET /matches/{id}` says 2 where its webhooks say 71 (READY)
    and 12 (CANCELLED); a FINISHED match from the Data API says 2 as well.
    """
    hub = Hub(hub_id="hub-1", name="Hub", organizer_id="org-1", game="cs2", region="EU")
    world = World(clock=lambda: 0.0, rng=random.Random(seed), default_hub=hub)
    a, b = world.add_player("a"), world.add_player("b")
    match = world.create_match([[a.player_id], [b.player_id]])
    api_versions = [match.api_version]
    for status in ("CAPTAIN_PICK", "CONFIGURING", "READY", "ONGOING", "FINISHED", "CANCELLED"):
        world.set_status(match, status)
        api_versions.append(match.api_version)
        assert match.webhook_version > match.api_version
    assert api_versions == [1, 2, 2, 2, 2, 2, 2]


def filling_match(world: World, size: int = 4) -> Match:
    """A match of two teams of `size` new players whose rosters fill step by step."""
    teams = [[world.add_player(f"{side}{n}").player_id for n in range(size)] for side in ("x", "y")]
    return world.create_match(teams, fill_rosters=True)


def test_filling_rosters_start_with_the_captains_and_grow_each_step() -> None:
    """Filling rosters: captains first, one more pick per team per step, full at CONFIGURING."""
    world = make_world()
    match = filling_match(world)
    seen = [[len(team.roster) for team in match.teams]]
    for status in ("CAPTAIN_PICK", "CAPTAIN_PICK", "CONFIGURING", "READY"):
        world.set_status(match, status)
        seen.append([len(team.roster) for team in match.teams])
    assert seen == [[1, 1], [2, 2], [3, 3], [4, 4], [4, 4]]
    assert match.teams[0].player_ids[:1] == [match.teams[0].leader_id]


def test_a_match_cancelled_during_captain_pick_keeps_its_partial_rosters() -> None:
    """An over status does not fill the rosters; `player_ids()` lists only the seated players."""
    world = make_world()
    match = filling_match(world)
    world.set_status(match, "VOTING")
    world.set_status(match, "CANCELLED")
    assert [len(team.roster) for team in match.teams] == [2, 2]
    assert match.player_ids() == [*match.teams[0].roster, *match.teams[1].roster]


def test_rosters_are_full_from_the_start_without_fill() -> None:
    """By default every player is seated at creation, as before."""
    world = make_world()
    teams = [[world.add_player(f"{side}{n}").player_id for n in range(3)] for side in "pq"]
    match = world.create_match(teams)
    assert [team.roster for team in match.teams] == teams


def test_the_world_default_decides_whether_rosters_fill() -> None:
    """`World(fill_rosters=True)` fills every match not told otherwise."""
    hub = Hub(hub_id="hub-1", name="Hub", organizer_id="org-1", game="cs2", region="EU")
    world = World(clock=lambda: 0.0, rng=random.Random(1), default_hub=hub, fill_rosters=True)
    teams = [[world.add_player(f"{side}{n}").player_id for n in range(3)] for side in "pq"]
    filling = world.create_match(teams)
    assert [len(team.roster) for team in filling.teams] == [1, 1]
    assert world.create_match(teams, fill_rosters=False).player_ids() == [*teams[0], *teams[1]]
