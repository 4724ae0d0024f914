"""HTTP tests of the `/_sandbox/` control routes: validation, lifecycle script, faults."""

from __future__ import annotations

import aiohttp
import pytest

from sandbox.faceit.client import FaceitSandboxClient, SandboxControlError
from sandbox.faceit.server import FaceitSandbox
from tests.sandbox.faceit.conftest import fast_options, make_match


async def test_create_player_returns_the_data_api_player(control: FaceitSandboxClient) -> None:
    """Creating a player answers with the Data API Player, honouring given fields."""
    player = await control.create_player(
        "Eve", player_id="eve-id", faceit_elo=2100, avatar="https://a/x.png"
    )
    assert (player["player_id"], player["nickname"], player["avatar"]) == (
        "eve-id",
        "Eve",
        "https://a/x.png",
    )
    assert player["games"]["cs2"]["skill_level"] == 10
    assert [p["player_id"] for p in await control.list_players()] == ["eve-id"]


async def test_create_player_errors(control: FaceitSandboxClient) -> None:
    """A missing nickname is 400 and a taken nickname is 409."""
    await control.create_player("Frank")
    with pytest.raises(SandboxControlError) as missing:
        await control.create_player("")
    assert missing.value.status == 400
    with pytest.raises(SandboxControlError) as taken:
        await control.create_player("Frank")
    assert taken.value.status == 409


async def test_create_match_answer(faceit: FaceitSandbox, control: FaceitSandboxClient) -> None:
    """A new match has an id like `1-<uuid>`, CHECK_IN, version 1 and the default hub."""
    created = await make_match(control, team_names=["Red", "Blue"])
    assert created["match_id"].startswith("1-") and len(created["match_id"]) == 38
    assert (created["status"], created["version"], created["api_version"]) == ("CHECK_IN", 1, 1)
    assert created["fill_rosters"] is False
    assert created["rosters"] == [t["player_ids"] for t in created["teams"]]
    assert created["hub_id"] == faceit.default_hub.hub_id
    assert created["organizer_id"] == faceit.default_hub.organizer_id
    assert [t["name"] for t in created["teams"]] == ["Red", "Blue"]
    assert created["event"] == "match_object_created"


async def test_create_match_errors(control: FaceitSandboxClient) -> None:
    """Unknown players and bad teams are 400; a reused match id is 409."""
    created = await make_match(control, match_id="1-fixed")
    with pytest.raises(SandboxControlError) as unknown:
        await control.create_match([["nobody"], ["else"]])
    assert unknown.value.status == 400 and "nobody" in unknown.value.body["error"]
    player_ids = created["teams"][0]["player_ids"]
    with pytest.raises(SandboxControlError) as one_team:
        await control.create_match([player_ids])
    assert one_team.value.status == 400
    other_ids = created["teams"][1]["player_ids"]
    with pytest.raises(SandboxControlError) as reused:
        await control.create_match([player_ids, other_ids], match_id="1-fixed")
    assert reused.value.status == 409


async def test_status_accepts_event_names_and_rejects_unknown(
    control: FaceitSandboxClient,
) -> None:
    """`match_status_ready` works as a status; unknown statuses are 400, unknown matches 404."""
    created = await make_match(control)
    step = await control.set_status(created["match_id"], "match_status_ready")
    assert (step["status"], step["event"]) == ("READY", "match_status_ready")
    assert step["version"] > 1
    with pytest.raises(SandboxControlError) as bad:
        await control.set_status(created["match_id"], "EXPLODED")
    assert bad.value.status == 400
    with pytest.raises(SandboxControlError) as missing:
        await control.set_status("1-missing", "READY")
    assert missing.value.status == 404


async def test_play_walks_steps_in_order_with_growing_versions(
    control: FaceitSandboxClient,
) -> None:
    """The play script applies each step in order; webhook versions only grow."""
    created = await make_match(control)
    steps = await control.play(
        created["match_id"],
        ["CONFIGURING", "READY", {"status": "FINISHED", "winner": "faction2"}],
    )
    assert [s["status"] for s in steps] == ["CONFIGURING", "READY", "FINISHED"]
    versions = [1] + [s["version"] for s in steps]
    assert versions == sorted(set(versions))
    match = await control.get_match(created["match_id"])
    assert (match["status"], match["version"]) == ("FINISHED", steps[-1]["api_version"])
    assert match["results"]["winner"] == "faction2"


async def test_play_with_a_bad_step_changes_nothing(control: FaceitSandboxClient) -> None:
    """A script with an unknown status is refused before any step is applied."""
    created = await make_match(control)
    with pytest.raises(SandboxControlError) as bad:
        await control.play(created["match_id"], ["CONFIGURING", "BOGUS"])
    assert bad.value.status == 400
    assert (await control.get_match(created["match_id"]))["status"] == "CHECK_IN"


async def test_faults_round_trip_and_reset(control: FaceitSandboxClient) -> None:
    """Faults set through the API are shown back, and DELETE restores the defaults."""
    shown = await control.set_faults(
        latency_ms=120,
        fail=[{"status": 503, "count": 2, "route": "match"}],
        webhooks={"duplicate": 2, "reorder": "shuffle", "backoff_ms": 5, "retries": 0},
    )
    assert shown["latency_ms"] == 120
    assert shown["failures"] == [
        {"status": 503, "remaining": 2, "route": "match", "retry_after": None}
    ]
    assert (shown["webhooks"]["duplicate"], shown["webhooks"]["reorder"]) == (2, "shuffle")
    assert (shown["webhooks"]["backoff_ms"], shown["webhooks"]["retries"]) == (5, 0)
    assert shown["webhooks"]["concurrency"] == 4
    cleared = await control.clear_faults()
    assert (cleared["latency_ms"], cleared["failures"]) == (0, [])
    assert (cleared["webhooks"]["duplicate"], cleared["webhooks"]["reorder"]) == (1, "none")


@pytest.mark.parametrize(
    "body",
    [
        {"webhooks": {"duplicate": 0}},
        {"webhooks": {"reorder": "sideways"}},
        {"webhooks": {"colour": "red"}},
        {"webhooks": {"retries": -1}},
        {"webhooks": {"concurrency": 0}},
        {"fail": {"status": 200}},
        {"fail": {"status": 429, "route": "nope"}},
        {"latency_ms": -5},
        {"surprise": True},
    ],
    ids=[
        "duplicate-0",
        "bad-reorder",
        "unknown-option",
        "negative-retries",
        "no-concurrency",
        "non-error",
        "bad-route",
        "neg",
        "key",
    ],
)
async def test_bad_faults_are_400(faceit: FaceitSandbox, body: dict) -> None:
    """Invalid fault settings are refused with 400 and change nothing."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(faceit.url + "/_sandbox/faults", json=body) as response,
    ):
        assert response.status == 400
        assert "error" in await response.json()
    assert faceit.faults.snapshot() == {"latency_ms": 0, "failures": []}
    assert faceit.deliverer.options == fast_options()


async def test_non_json_body_is_400(faceit: FaceitSandbox) -> None:
    """A control body that is not a JSON object is a 400."""
    async with aiohttp.ClientSession() as http:
        for data in (b"not json", b"[1, 2]"):
            async with http.post(faceit.url + "/_sandbox/players", data=data) as response:
                assert response.status == 400


async def test_subscriptions_list_and_delete(control: FaceitSandboxClient) -> None:
    """Subscriptions are listed and can be removed; removing twice is 404."""
    sub = await control.subscribe("http://127.0.0.1:9/hook", header_name="X", header_value="y")
    assert [s["subscription_id"] for s in await control.list_subscriptions()] == [
        sub["subscription_id"]
    ]
    await control.unsubscribe(sub["subscription_id"])
    assert await control.list_subscriptions() == []
    with pytest.raises(SandboxControlError) as again:
        await control.unsubscribe(sub["subscription_id"])
    assert again.value.status == 404


async def test_subscription_without_header_value_is_400(control: FaceitSandboxClient) -> None:
    """A header name without a value is refused."""
    with pytest.raises(SandboxControlError) as bad:
        await control.subscribe("http://127.0.0.1:9/hook", header_name="X-Only")
    assert bad.value.status == 400


async def test_fill_rosters_must_be_a_boolean(
    faceit: FaceitSandbox, control: FaceitSandboxClient
) -> None:
    """`fill_rosters` other than true or false is a 400."""
    players = [(await control.create_player(name))["player_id"] for name in ("fa", "fb")]
    body = {"teams": [players[:1], players[1:]], "fill_rosters": 1}
    async with (
        aiohttp.ClientSession() as http,
        http.post(faceit.url + "/_sandbox/matches", json=body) as response,
    ):
        assert response.status == 400
        assert "fill_rosters" in (await response.json())["error"]
