"""HTTP tests of the Data API routes: shapes, paging, auth, 404s, injected faults."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.server import FaceitSandbox
from tests.sandbox.faceit.conftest import Receiver, make_match

NOT_FOUND = {"errors": [{"message": "The resource was not found.", "code": "err_nf0"}]}


async def get(
    http: aiohttp.ClientSession,
    faceit: FaceitSandbox,
    path: str,
    headers: dict[str, str],
    **params: Any,
) -> tuple[int, Any]:
    """GET a Data API path; status and JSON body."""
    query = {k: str(v) for k, v in params.items()}
    async with http.get(faceit.api_base + path, headers=headers, params=query) as response:
        return response.status, await response.json()


async def test_player_by_nickname_is_exact_and_case_sensitive(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """`GET /players?nickname=` finds the exact nickname only; other cases are err_nf0 404s."""
    created = await control.create_player("Alice", skill_level=7, faceit_elo=1400)
    status, body = await get(http, faceit, "/players", auth, nickname="Alice", game="cs2")
    assert status == 200 and body["player_id"] == created["player_id"]
    assert body["games"]["cs2"]["skill_level"] == 7
    assert body["games"]["cs2"]["faceit_elo"] == 1400
    assert await get(http, faceit, "/players", auth, nickname="alice") == (404, NOT_FOUND)


async def test_player_by_id_and_unknown_id(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """`GET /players/{id}` returns the Player; an unknown id is an err_nf0 404."""
    created = await control.create_player("Bob", player_id="bob-id")
    status, body = await get(http, faceit, "/players/bob-id", auth)
    assert (status, body) == (200, created)
    assert await get(http, faceit, "/players/nobody", auth) == (404, NOT_FOUND)


async def test_search_is_case_insensitive_and_paged(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """Search matches substrings in any case, prefixes first, paged by offset/limit."""
    for name in ("SniperKing", "kingpin", "xKingx", "other"):
        await control.create_player(name, skill_level=6)
    status, body = await get(http, faceit, "/search/players", auth, nickname="KING", limit=2)
    assert status == 200
    assert [i["nickname"] for i in body["items"]] == ["kingpin", "SniperKing"]
    assert (body["start"], body["end"]) == (0, 2)
    assert body["items"][0]["games"] == [{"name": "cs2", "skill_level": "6"}]
    _, rest = await get(http, faceit, "/search/players", auth, nickname="king", offset=2)
    assert [i["nickname"] for i in rest["items"]] == ["xKingx"]
    assert (rest["start"], rest["end"]) == (2, 3)


async def test_search_limit_over_100_is_400(
    faceit: FaceitSandbox, http: aiohttp.ClientSession, auth: dict
) -> None:
    """A search limit above 100 (or a negative offset) is a 400 with an errors body."""
    status, body = await get(http, faceit, "/search/players", auth, nickname="a", limit=101)
    assert status == 400 and body["errors"][0]["message"]
    status, _ = await get(http, faceit, "/search/players", auth, nickname="a", offset=-1)
    assert status == 400


async def test_match_shape_and_status_changes_are_reflected(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """`GET /matches/{id}` shows factions, rosters, status, its own version and times."""
    created = await make_match(control)
    match_id = created["match_id"]
    status, body = await get(http, faceit, f"/matches/{match_id}", auth)
    assert status == 200
    assert (body["status"], body["version"]) == ("CHECK_IN", 1)
    assert body["teams"]["faction1"]["roster"] == []
    step = await control.set_status(match_id, "CONFIGURING")
    _, body = await get(http, faceit, f"/matches/{match_id}", auth)
    assert (body["status"], body["version"]) == ("CONFIGURING", step["api_version"])
    roster = [p["player_id"] for p in body["teams"]["faction2"]["roster"]]
    assert roster == created["teams"][1]["player_ids"]
    assert isinstance(body["configured_at"], int) and abs(body["configured_at"] - time.time()) < 60
    await control.set_status(match_id, "READY")
    final = await control.set_status(match_id, "FINISHED")
    _, body = await get(http, faceit, f"/matches/{match_id}", auth)
    assert (body["status"], body["version"]) == ("FINISHED", final["api_version"])
    assert body["started_at"] <= body["finished_at"]
    assert await get(http, faceit, "/matches/1-nope", auth) == (404, NOT_FOUND)


async def test_hub_matches_by_type_with_paging(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """Hub listings filter by type (ongoing includes CHECK_IN with empty rosters) and page."""
    hub = "hub-paging"
    first = await make_match(control, hub_id=hub)
    second = await make_match(control, hub_id=hub)
    third = await make_match(control, hub_id=hub)
    await control.set_status(first["match_id"], "READY")
    await control.set_status(third["match_id"], "FINISHED")
    path = f"/hubs/{hub}/matches"
    _, ongoing = await get(http, faceit, path, auth, type="ongoing")
    assert [m["match_id"] for m in ongoing["items"]] == [first["match_id"], second["match_id"]]
    check_in = ongoing["items"][1]
    assert check_in["status"] == "CHECK_IN" and check_in["teams"]["faction1"]["roster"] == []
    _, past = await get(http, faceit, path, auth, type="past")
    assert [m["match_id"] for m in past["items"]] == [third["match_id"]]
    _, upcoming = await get(http, faceit, path, auth, type="upcoming")
    assert upcoming == {"items": [], "start": 0, "end": 0}
    _, page = await get(http, faceit, path, auth, type="all", offset=1, limit=1)
    assert [m["match_id"] for m in page["items"]] == [second["match_id"]]
    assert (page["start"], page["end"]) == (1, 2)


async def test_hub_matches_errors(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """An unknown hub is a 404; a bad type or a limit over 100 is a 400."""
    await make_match(control, hub_id="hub-e")
    assert await get(http, faceit, "/hubs/unknown/matches", auth) == (404, NOT_FOUND)
    assert (await get(http, faceit, "/hubs/hub-e/matches", auth, type="live"))[0] == 400
    assert (await get(http, faceit, "/hubs/hub-e/matches", auth, limit=101))[0] == 400


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-api-key"}],
    ids=["missing", "wrong-key", "no-scheme"],
)
async def test_requests_without_the_right_key_are_401(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, headers: dict
) -> None:
    """A missing or wrong bearer key gets 401 on every route."""
    await control.create_player("Carol", player_id="carol")
    for path in ("/players/carol", "/matches/x", "/hubs/x/matches"):
        status, body = await get(http, faceit, path, headers)
        assert status == 401 and "errors" in body


async def test_injected_429_then_503_for_one_route(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """The next N requests of a route get the injected status; other routes are untouched."""
    await control.create_player("Dave", player_id="dave")
    await control.set_faults(
        fail=[
            {"status": 429, "count": 2, "route": "player", "retry_after": 1},
            {"status": 503, "count": 1, "route": "player"},
        ]
    )
    assert (await get(http, faceit, "/players", auth, nickname="Dave"))[0] == 200
    async with http.get(faceit.api_base + "/players/dave", headers=auth) as response:
        assert (response.status, response.headers["Retry-After"]) == (429, "1")
    statuses = [(await get(http, faceit, "/players/dave", auth))[0] for _ in range(3)]
    assert statuses == [429, 503, 200]
    log = await control.requests(route="player")
    assert [r["status"] for r in log["requests"]] == [429, 429, 503, 200]
    assert log["counts"]["player"] == {"200": 1, "429": 2, "503": 1}


async def test_request_log_counts_and_clears(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """The request log counts Data API calls by route and status, and can be cleared."""
    await get(http, faceit, "/players/none", auth)
    await get(http, faceit, "/players/none", {})
    await get(http, faceit, "/search/players", auth, nickname="x")
    counts = (await control.requests())["counts"]
    assert counts == {"player": {"401": 1, "404": 1}, "search_players": {"200": 1}}
    await control.clear_requests()
    assert (await control.requests())["requests"] == []


async def test_injected_latency_delays_answers(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """With latency set, a Data API answer takes at least that long; clearing removes it."""
    await control.set_faults(latency_ms=600)
    started = time.monotonic()
    await get(http, faceit, "/players/none", auth)
    assert time.monotonic() - started >= 0.6
    await control.clear_faults()
    started = time.monotonic()
    await get(http, faceit, "/players/none", auth)
    assert time.monotonic() - started < 0.6


async def test_the_data_api_version_is_not_the_webhook_version(
    faceit: FaceitSandbox,
    control: FaceitSandboxClient,
    receiver: Receiver,
    http: aiohttp.ClientSession,
    auth: dict,
) -> None:
    """Like real captures (2 against 71 and 12), `GET /matches` says 2 where webhooks say more."""
    await control.subscribe(receiver.url)
    created = await make_match(control)
    match_id = created["match_id"]
    api_versions = []
    for status in ("CONFIGURING", "READY", "FINISHED"):
        step = await control.set_status(match_id, status)
        _, body = await get(http, faceit, f"/matches/{match_id}", auth)
        api_versions.append(body["version"])
        assert step["api_version"] == body["version"] < step["version"]
    assert api_versions == [2, 2, 2]
    await control.wait_for_deliveries()
    hooked = {h.body["event"]: h.body["payload"]["version"] for h in receiver.received}
    assert hooked["match_object_created"] == 1
    assert min(v for e, v in hooked.items() if e != "match_object_created") > 2


async def test_filling_rosters_show_in_the_data_api(
    faceit: FaceitSandbox, control: FaceitSandboxClient, http: aiohttp.ClientSession, auth: dict
) -> None:
    """A filling match shows one more pick per team each step, and everyone at CONFIGURING."""
    teams = [
        [(await control.create_player(f"fill{side}{n}"))["player_id"] for n in range(5)]
        for side in range(2)
    ]
    created = await control.create_match(teams, fill_rosters=True)
    assert (created["fill_rosters"], created["rosters"]) == (True, [teams[0][:1], teams[1][:1]])
    match_id = created["match_id"]
    seen = []
    for status in ("CAPTAIN_PICK", "CAPTAIN_PICK", "VOTING", "CONFIGURING"):
        step = await control.set_status(match_id, status)
        _, body = await get(http, faceit, f"/matches/{match_id}", auth)
        rosters = [
            [p["player_id"] for p in body["teams"][faction]["roster"]]
            for faction in ("faction1", "faction2")
        ]
        assert rosters == step["rosters"]
        seen.append([len(roster) for roster in rosters])
    assert seen == [[2, 2], [3, 3], [4, 4], [5, 5]]
    assert rosters == teams
