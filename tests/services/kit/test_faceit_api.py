"""The FACEIT Data API client against the in-process FACEIT sandbox."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from sandbox.faceit.server import FaceitSandbox
from services.kit.faceit_api import (
    FaceitApiClient,
    FaceitApiError,
    FaceitAuthError,
    FaceitNotFound,
    FaceitUnavailable,
)
from services.kit.faceit_retry import RetryPolicy, parse_retry_after

API_KEY = "sandbox-key-for-tests"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture
async def sandbox() -> AsyncIterator[FaceitSandbox]:
    async with FaceitSandbox(api_key=API_KEY) as running:
        yield running


@pytest.fixture
def calls() -> Counter[tuple[str, str]]:
    return Counter()


@pytest.fixture
async def client(
    sandbox: FaceitSandbox, calls: Counter[tuple[str, str]]
) -> AsyncIterator[FaceitApiClient]:
    def count(endpoint: str, outcome: str) -> None:
        calls[endpoint, outcome] += 1

    async with FaceitApiClient(
        API_KEY,
        base_url=sandbox.api_base,
        timeout=2.0,
        retry=FAST_RETRY,
        on_call=count,
        rng=random.Random(7),
    ) as api:
        yield api


async def test_player_by_nickname_parses_the_real_shape(
    sandbox: FaceitSandbox, client: FaceitApiClient
) -> None:
    """The exact nickname lookup returns a typed player with its cs2 level and elo."""
    made = sandbox.world.add_player("s1mple", skill_level=10, country="ua")

    player = await client.get_player_by_nickname("s1mple")

    assert player.player_id == made.player_id
    assert player.nickname == "s1mple"
    assert player.country == "ua"
    assert player.games["cs2"].skill_level == 10
    assert player.games["cs2"].faceit_elo == made.faceit_elo
    assert player.profile_url() == "https://www.faceit.com/en/players/s1mple"


async def test_player_lookup_sends_the_game_when_given(
    sandbox: FaceitSandbox, client: FaceitApiClient
) -> None:
    """`game` goes into the query string of the exact lookup."""
    sandbox.world.add_player("niko")

    await client.get_player_by_nickname("niko", game="cs2")

    assert sandbox.request_log.entries("players")[0].query == {"nickname": "niko", "game": "cs2"}


async def test_unknown_nickname_is_not_found(
    client: FaceitApiClient, calls: Counter[tuple[str, str]]
) -> None:
    """A 404 raises FaceitNotFound at once, with FACEIT's error code, and is not retried."""
    with pytest.raises(FaceitNotFound) as raised:
        await client.get_player_by_nickname("nobody")

    assert raised.value.status == 404
    assert raised.value.code == "err_nf0"
    assert calls == Counter({("/players", "404"): 1})


async def test_search_players_parses_string_skill_levels(
    sandbox: FaceitSandbox, client: FaceitApiClient
) -> None:
    """Search results are typed; the string skill level becomes an int; limit is sent."""
    for name in ("zywoo", "ZywOo_fan", "zywooo", "other"):
        sandbox.world.add_player(name, skill_level=7)

    results = await client.search_players("zywoo", limit=2)

    assert [result.nickname for result in results] == ["zywoo", "ZywOo_fan"]
    assert results[0].games[0].name == "cs2"
    assert results[0].games[0].skill_level == 7
    assert sandbox.request_log.entries("search_players")[0].query["limit"] == "2"


async def test_get_player_and_get_match(sandbox: FaceitSandbox, client: FaceitApiClient) -> None:
    """Players by id and matches come back typed, with both factions' rosters."""
    first = [sandbox.world.add_player(f"a{index}").player_id for index in range(5)]
    second = [sandbox.world.add_player(f"b{index}").player_id for index in range(5)]
    made = sandbox.world.create_match([first, second])
    sandbox.world.set_status(made, "READY")

    player = await client.get_player(first[0])
    match = await client.get_match(made.match_id)

    assert player.nickname == "a0"
    assert match.match_id == made.match_id
    assert match.status == "READY"
    assert [entry.player_id for entry in match.teams["faction1"].roster] == first
    assert [entry.player_id for entry in match.teams["faction2"].roster] == second
    assert match.competition_id == sandbox.default_hub.hub_id


async def test_unknown_match_is_not_found(client: FaceitApiClient) -> None:
    """`get_match` of an unknown id raises FaceitNotFound."""
    with pytest.raises(FaceitNotFound):
        await client.get_match("1-does-not-exist")


async def test_hub_matches_page_and_iterate_until_a_short_page(
    sandbox: FaceitSandbox, client: FaceitApiClient
) -> None:
    """One page holds `limit` matches; the iterator visits all 7 matches over pages of 3."""
    players = [sandbox.world.add_player(f"p{index}").player_id for index in range(2)]
    made = [sandbox.world.create_match([[players[0]], [players[1]]]).match_id for _ in range(7)]
    hub_id = sandbox.default_hub.hub_id

    page = await client.list_hub_matches(hub_id, "all", offset=3, limit=3)
    visited = [match.match_id async for match in client.iter_hub_matches(hub_id, page_size=3)]

    assert [match.match_id for match in page.items] == made[3:6]
    assert (page.start, page.end) == (3, 6)
    assert visited == made
    offsets = [entry.query["offset"] for entry in sandbox.request_log.entries("hub_matches")]
    assert offsets == ["3", "0", "3", "6"]


async def test_hub_iteration_stops_after_a_full_last_page_with_an_empty_one(
    sandbox: FaceitSandbox, client: FaceitApiClient
) -> None:
    """When the matches fill the pages exactly, one empty page ends the iteration."""
    players = [sandbox.world.add_player(f"p{index}").player_id for index in range(2)]
    for _ in range(4):
        sandbox.world.create_match([[players[0]], [players[1]]])

    visited = [m async for m in client.iter_hub_matches(sandbox.default_hub.hub_id, page_size=2)]

    assert len(visited) == 4
    assert len(sandbox.request_log.entries("hub_matches")) == 3


async def test_429_and_503_are_retried_then_succeed(
    sandbox: FaceitSandbox, client: FaceitApiClient, calls: Counter[tuple[str, str]]
) -> None:
    """A 429 then a 503 are retried with backoff; the third attempt's answer is returned."""
    sandbox.world.add_player("ropz")
    sandbox.faults.add_failure(429, 1)
    sandbox.faults.add_failure(503, 1)

    player = await client.get_player_by_nickname("ropz")

    assert player.nickname == "ropz"
    assert calls == Counter(
        {("/players", "429"): 1, ("/players", "503"): 1, ("/players", "200"): 1}
    )


async def test_gives_up_after_the_bound_with_unavailable(
    sandbox: FaceitSandbox, client: FaceitApiClient
) -> None:
    """Persistent 503s make exactly `attempts` requests, then FaceitUnavailable."""
    sandbox.world.add_player("ropz")
    sandbox.faults.add_failure(503, 10)

    with pytest.raises(FaceitUnavailable) as raised:
        await client.get_player_by_nickname("ropz")

    assert raised.value.status == 503
    assert len(sandbox.request_log.entries("players")) == FAST_RETRY.attempts


async def test_retry_after_is_honoured(sandbox: FaceitSandbox, client: FaceitApiClient) -> None:
    """A 429 with `Retry-After: 1` delays the retry by about a second, not the tiny backoff."""
    sandbox.world.add_player("ropz")
    sandbox.faults.add_failure(429, 1, retry_after=1)

    started = time.monotonic()
    await client.get_player_by_nickname("ropz")

    assert time.monotonic() - started >= 0.95
    assert [entry.status for entry in sandbox.request_log.entries("players")] == [429, 200]


async def test_slow_answers_time_out_and_end_unavailable(
    sandbox: FaceitSandbox, calls: Counter[tuple[str, str]]
) -> None:
    """Latency beyond the client timeout is retried, then FaceitUnavailable; counted as timeout."""
    sandbox.world.add_player("ropz")
    sandbox.faults.latency_s = 0.5

    def count(endpoint: str, outcome: str) -> None:
        calls[endpoint, outcome] += 1

    async with FaceitApiClient(
        API_KEY, base_url=sandbox.api_base, timeout=0.1, retry=FAST_RETRY, on_call=count
    ) as api:
        with pytest.raises(FaceitUnavailable, match="timed out"):
            await api.get_player_by_nickname("ropz")

    assert calls == Counter({("/players", "timeout"): FAST_RETRY.attempts})


async def test_connection_refused_ends_unavailable() -> None:
    """Nothing listening: connection errors are retried, then FaceitUnavailable."""
    async with FaceitSandbox(api_key=API_KEY) as stopped:
        base_url = stopped.api_base
    outcomes: list[str] = []

    async with FaceitApiClient(
        API_KEY,
        base_url=base_url,
        retry=FAST_RETRY,
        on_call=lambda _endpoint, outcome: outcomes.append(outcome),
    ) as api:
        with pytest.raises(FaceitUnavailable, match="connection failed"):
            await api.get_player("anyone")

    assert outcomes == ["connection_error"] * FAST_RETRY.attempts


async def test_bad_key_is_an_auth_error_and_not_retried(sandbox: FaceitSandbox) -> None:
    """A 401 raises FaceitAuthError (distinct from not found and unavailable) after one call."""
    sandbox.world.add_player("ropz")

    async with FaceitApiClient("wrong-key", base_url=sandbox.api_base, retry=FAST_RETRY) as api:
        with pytest.raises(FaceitAuthError) as raised:
            await api.get_player_by_nickname("ropz")

    assert raised.value.status == 401
    assert not isinstance(raised.value, FaceitNotFound | FaceitUnavailable)
    assert len(sandbox.request_log.entries("players")) == 1


async def test_403_is_an_auth_error(sandbox: FaceitSandbox, client: FaceitApiClient) -> None:
    """A 403 also raises FaceitAuthError."""
    sandbox.faults.add_failure(403, 1)

    with pytest.raises(FaceitAuthError):
        await client.get_player("anyone")


async def test_bad_request_is_a_plain_api_error(
    sandbox: FaceitSandbox, client: FaceitApiClient
) -> None:
    """A 400 is neither retried nor mistaken for not found, auth or unavailability."""
    sandbox.faults.add_failure(400, 1)

    with pytest.raises(FaceitApiError) as raised:
        await client.get_player("anyone")

    assert type(raised.value) is FaceitApiError
    assert raised.value.status == 400
    assert len(sandbox.request_log.entries("player")) == 1


async def test_limit_outside_1_to_100_is_refused_before_any_request(
    sandbox: FaceitSandbox, client: FaceitApiClient
) -> None:
    """Page sizes FACEIT would reject raise ValueError without a request."""
    with pytest.raises(ValueError, match="limit"):
        await client.search_players("x", limit=101)
    with pytest.raises(ValueError, match="limit"):
        await client.list_hub_matches(sandbox.default_hub.hub_id, limit=0)

    assert sandbox.request_log.entries() == []


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    """Retry-After as delta-seconds or HTTP date; junk and absence give None."""
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)

    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_jittered_and_capped() -> None:
    """Backoff delays stay within the doubling ceiling and never exceed max_delay."""
    policy = RetryPolicy(attempts=10, base_delay=0.1, max_delay=0.5)
    rng = random.Random(1)

    delays = [policy.backoff(retry, rng) for retry in range(1, 10) for _ in range(20)]

    assert all(0 <= delay <= 0.5 for delay in delays)
    assert max(policy.backoff(1, rng) for _ in range(50)) <= 0.1
    assert len(set(delays)) > 1
