"""Voice's metrics move when their events happen: real py-cord against the Discord sandbox,
with injected 429s and 5xx, read from the metrics port as Prometheus would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from faceitvoice.v1 import voice_service_pb2 as voice_pb
from prometheus_client.parser import text_string_to_metric_families

from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

MATCH = "1-0d1f6c52-3e8a-4f0b-9a57-6b3f2c1d8e90"
CREATE = "/guilds/{guild_id}/channels"
DELETE = "/channels/{channel_id}"
MEMBER = "/guilds/{guild_id}/members/{user_id}"
OPEN_MATCH = "/faceitvoice.v1.VoiceService/OpenMatch"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def _scrape(system: VoiceSystem) -> Samples:
    """GET /metrics on voice's metrics port, parsed."""
    assert system.voice is not None
    url = f"http://127.0.0.1:{system.voice.metrics_http.port}/metrics"
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _requests(samples: Samples, method: str, route: str, status: str) -> float:
    return _get(samples, "voice_discord_requests_total", method=method, route=route, status=status)


async def _in_lobby(system: VoiceSystem, *names: str) -> None:
    """Linked members connected to the lobby, once the bot has seen them there."""
    for name in names:
        await system.join_lobby(await system.member(name, faceit_id=f"p-{name}"))


async def _close(system: VoiceSystem) -> None:
    assert system.stub is not None
    await system.stub.CloseMatch(
        voice_pb.CloseMatchRequest(match_id=MATCH, version=2, reason="match_status_finished")
    )


async def test_a_match_moves_the_gauges_counters_and_discord_requests(system: VoiceSystem) -> None:
    """Open: one match, two channels, two moves, two channel creates, one OpenMatch; close: no
    match, two channel deletes (py-cord's own client), all read from the metrics port."""
    await system.start_voice()
    assert system.stub is not None
    await _in_lobby(system, "alice", "bob")
    before = await _scrape(system)
    assert _get(before, "voice_gateway_connected") == 1
    assert _get(before, "voice_lease_held") == 1
    assert _get(before, "voice_open_matches") == 0
    assert _requests(before, "GET", "/users/@me", "2xx") == 1  # login, through py-cord

    await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"], ["p-bob"]))
    opened = await _scrape(system)
    assert _get(opened, "voice_open_matches") == 1
    assert _get(opened, "voice_match_channels") == 2
    assert _get(opened, "voice_moves_total", outcome="moved") == 2
    assert _requests(opened, "POST", CREATE, "201") == 2
    assert _requests(opened, "PATCH", MEMBER, "200") == 2
    assert _get(opened, "voice_discord_request_seconds_count", method="POST", route=CREATE) == 2
    assert _get(opened, "voice_grpc_calls_total", method=OPEN_MATCH, code="OK") == 1
    assert 0 < _get(opened, "voice_gateway_latency_seconds") < 1  # the sandbox acks at once

    await _close(system)

    async def deleted() -> bool:
        closed = await _scrape(system)
        return _requests(closed, "DELETE", DELETE, "2xx") == 2

    await eventually(deleted, what="two channel deletes counted")
    closed = await _scrape(system)
    assert _get(closed, "voice_open_matches") == 0
    assert _get(closed, "voice_match_channels") == 0


async def test_a_lost_gateway_session_shows_until_it_is_back(system: VoiceSystem) -> None:
    """voice_gateway_connected is 0 while Discord holds the reconnect, 1 once it resumes."""
    await system.start_voice()
    await system.control.close_gateway(4000, hold=True)

    async def connected(value: float) -> bool:
        return _get(await _scrape(system), "voice_gateway_connected") == value

    await eventually(lambda: connected(0), what="the gateway to be reported lost")
    await system.control.release_gateway()
    await eventually(lambda: connected(1), what="the gateway to be reported back")


async def test_429s_count_by_scope_and_their_waits_are_timed(system: VoiceSystem) -> None:
    """A bucket 429 on a move and a global 429 on a channel create are counted by scope, as 429
    answers of their routes, and as rate-limit waits; the match still plays."""
    await system.start_voice()
    assert system.stub is not None
    await _in_lobby(system, "alice")
    await system.control.inject_errors(429, method="PATCH", route=MEMBER, retry_after=0.05)
    await system.control.inject_errors(
        429, method="POST", route=CREATE, retry_after=0.05, is_global=True
    )

    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"]))

    assert [p.outcome for p in opened.placements] == [voice_pb.PLACEMENT_OUTCOME_MOVED]
    samples = await _scrape(system)
    assert _get(samples, "voice_discord_rate_limited_total", scope="bucket") == 1
    assert _get(samples, "voice_discord_rate_limited_total", scope="global") == 1
    assert _requests(samples, "PATCH", MEMBER, "429") == 1
    assert _requests(samples, "POST", CREATE, "429") == 1
    assert _get(samples, "voice_discord_rate_limit_wait_seconds_count") >= 2
    assert _get(samples, "voice_discord_rate_limit_wait_seconds_sum") >= 0.1
    assert _get(samples, "voice_moves_total", outcome="moved") == 1


async def test_a_move_discord_keeps_failing_is_counted_refused(system: VoiceSystem) -> None:
    """A move answered 503 on each of its five attempts is a refused move and five 503s."""
    await system.start_voice()
    assert system.stub is not None
    await _in_lobby(system, "alice")
    await system.control.inject_errors(503, count=5, method="PATCH", route=MEMBER)

    call = system.stub.OpenMatch(match(MATCH, 1, ["p-alice"]))

    async def refused() -> bool:
        return _get(await _scrape(system), "voice_moves_total", outcome="refused") == 1

    try:
        await eventually(refused, what="the move to be counted refused")
    finally:
        call.cancel()
    samples = await _scrape(system)
    assert _requests(samples, "PATCH", MEMBER, "503") == 5


async def test_a_player_leaving_voice_while_their_move_travels_is_counted_not_in_voice(
    system: VoiceSystem,
) -> None:
    """A player who disconnects while their move waits at Discord gets 40032: the move is
    counted not_in_voice (not refused, not moved) and the placement says not in voice."""
    await system.start_voice()
    assert system.stub is not None
    alice = await system.member("alice", faceit_id="p-alice")
    await system.join_lobby(alice)
    await system.control.add_latency(0.5, method="PATCH", route=MEMBER)

    call = system.stub.OpenMatch(match(MATCH, 1, ["p-alice"]))

    async def travelling() -> list[dict[str, object]]:
        return await system.control.in_flight(method="PATCH", route=MEMBER)

    try:
        await eventually(travelling, what="alice's move to be on its way")
        await system.control.set_voice(system.guild_id, alice, None)
        opened = await call
    finally:
        call.cancel()
    skipped = voice_pb.PLACEMENT_OUTCOME_SKIPPED_NOT_IN_VOICE
    assert [p.outcome for p in opened.placements] == [skipped]
    samples = await _scrape(system)
    assert _get(samples, "voice_moves_total", outcome="not_in_voice") == 1
    assert _get(samples, "voice_moves_total", outcome="moved") == 0
    assert _get(samples, "voice_moves_total", outcome="refused") == 0
    assert _requests(samples, "PATCH", MEMBER, "400") == 1


async def test_an_open_on_the_registrys_last_answers_is_counted_once_confirmed(
    system: VoiceSystem,
) -> None:
    """An open whose creates went out on the registry's last answers (its own answer held back
    by a lock on the links) counts as confirmed once that answer agrees; others are not counted."""
    await system.start_voice()
    assert system.stub is not None
    await _in_lobby(system, "alice", "bob")
    earlier = "1-7c4e2a90-5b1d-4f3e-8a6c-0d9b2e1f4a73"
    await system.stub.OpenMatch(match(earlier, 1, ["p-alice"], ["p-bob"]))
    await system.stub.CloseMatch(
        voice_pb.CloseMatchRequest(match_id=earlier, version=2, reason="match_status_finished")
    )
    before = await _scrape(system)
    guesses = [
        _get(before, "voice_link_guesses_total", outcome=o) for o in ("confirmed", "corrected")
    ]
    assert guesses == [0, 0]

    async with system.pool.acquire() as holder, holder.transaction():
        await holder.execute("LOCK TABLE registry.player_links IN ACCESS EXCLUSIVE MODE")
        opening = asyncio.ensure_future(
            system.stub.OpenMatch(match(MATCH, 1, ["p-alice"], ["p-bob"]))
        )

        async def created() -> bool:
            channels = (await system.guild_state())["channels"]
            return sum(c["name"] == f"Match {MATCH[:8]}" for c in channels) == 2

        await eventually(created, what="both channels created before the registry answered")
    await opening

    after = await _scrape(system)
    assert _get(after, "voice_link_guesses_total", outcome="confirmed") == 1
    assert _get(after, "voice_link_guesses_total", outcome="corrected") == 0
