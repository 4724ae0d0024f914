"""The voice service under Discord faults: gateway events after the answers, Cloudflare 429s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from faceitvoice.v1 import voice_service_pb2 as voice_pb

from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

MATCH = "1-5b0c7e9e-7d0f-4f58-9c1e-2b6c1f0a9d41"
CREATE = "/guilds/{guild_id}/channels"
DELETE = "/channels/{channel_id}"
MEMBER = "/guilds/{guild_id}/members/{user_id}"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def _in_lobby(system: VoiceSystem, *names: str) -> list[int]:
    """Linked members connected to the lobby, once the bot has seen them there."""
    players = []
    for name in names:
        user_id = await system.member(name, faceit_id=f"p-{name}")
        await system.control.set_voice(system.guild_id, user_id, system.lobby_id)
        players.append(user_id)

    async def seen() -> bool:
        assert system.voice is not None
        return all(system.voice.discord.voice_channel_of(p) is not None for p in players)

    await eventually(seen, what="the bot to see the players in the lobby")
    return players


async def _close(system: VoiceSystem) -> None:
    """CloseMatch, retried while voice answers UNAVAILABLE, as ingest does."""
    assert system.stub is not None
    request = voice_pb.CloseMatchRequest(match_id=MATCH, version=2, reason="match_status_finished")

    async def closed() -> bool:
        assert system.stub is not None
        try:
            await system.stub.CloseMatch(request)
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.UNAVAILABLE:
                raise
            return False
        return True

    await eventually(closed, what="CloseMatch to succeed")


async def test_a_match_plays_when_gateway_events_follow_the_rest_answers(
    system: VoiceSystem,
) -> None:
    """Events 0.3 s after each answer, new channels unknown till announced: a match still plays."""
    await system.start_voice()
    assert system.stub is not None
    alice, bob = await _in_lobby(system, "alice", "bob")
    await system.control.clear_audit_log()
    await system.control.delay_gateway_events(0.3, hide_new_channels=True)

    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"], ["p-bob"]))
    assert opened.outcome == voice_pb.OPEN_OUTCOME_OPENED
    outcomes = {p.faceit_player_id: p.outcome for p in opened.placements}
    assert outcomes == {
        "p-alice": voice_pb.PLACEMENT_OUTCOME_MOVED,
        "p-bob": voice_pb.PLACEMENT_OUTCOME_MOVED,
    }
    channels = {c.faction: c.channel_id for c in opened.match.channels}
    assert await system.voice_of(alice) == channels["faction1"]
    assert await system.voice_of(bob) == channels["faction2"]
    creates = await system.control.audit_log(method="POST", route=CREATE)
    assert [c["status"] for c in creates] == [201, 201]
    moves = await system.control.audit_log(method="PATCH", route=MEMBER)
    assert [m["status"] for m in moves] == [200, 200], "a move was sent before the announcement"

    await _close(system)
    await eventually(
        lambda: _names_are(system, []), what="the match channels to be deleted exactly once"
    )
    assert await system.voice_of(alice) == system.lobby_id


async def test_a_player_moved_in_is_moved_out_at_close_before_the_gateway_reports_the_move(
    system: VoiceSystem,
) -> None:
    """Late events alone: a close right after the open moves the player inside back to the lobby."""
    await system.start_voice()
    assert system.stub is not None
    (alice,) = await _in_lobby(system, "alice")
    await system.control.delay_gateway_events(1.0)

    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"]))
    assert [p.outcome for p in opened.placements] == [voice_pb.PLACEMENT_OUTCOME_MOVED]
    await system.control.clear_audit_log()
    await _close(system)

    assert await system.voice_of(alice) == system.lobby_id
    calls = [(c["method"], c["status"]) for c in await system.control.audit_log()]
    assert calls == [("PATCH", 200), ("DELETE", 200)]
    await eventually(lambda: _names_are(system, []), what="the match channel to be deleted")


async def test_a_second_open_before_the_gateway_reports_the_move_moves_nobody_twice(
    system: VoiceSystem,
) -> None:
    """Late events alone: an update right after the open finds the player already in place."""
    await system.start_voice()
    assert system.stub is not None
    await _in_lobby(system, "alice")
    await system.control.delay_gateway_events(1.0)
    await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"]))
    await system.control.clear_audit_log()

    again = await system.stub.OpenMatch(match(MATCH, 2, ["p-alice"]))

    assert [p.outcome for p in again.placements] == [voice_pb.PLACEMENT_OUTCOME_ALREADY_THERE]
    assert await system.control.audit_log(method="PATCH", route=MEMBER) == []


async def test_a_cloudflare_429_on_a_channel_create_loses_no_channel(system: VoiceSystem) -> None:
    """A Cloudflare 429 (HTML, no Via) on a channel create is retried: both teams get a channel."""
    await system.start_voice()
    assert system.stub is not None
    (alice,) = await _in_lobby(system, "alice")
    await system.member("bob", faceit_id="p-bob")
    await system.control.inject_cloudflare_429(count=1, method="POST", route=CREATE)

    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"], ["p-bob"]))
    assert opened.outcome == voice_pb.OPEN_OUTCOME_OPENED
    assert len(opened.match.channels) == 2
    assert await system.voice_of(alice) == opened.match.channels[0].channel_id
    statuses = [c["status"] for c in await system.control.audit_log(method="POST", route=CREATE)]
    assert sorted(statuses) == [201, 201, 429]


async def test_a_cloudflare_429_on_a_channel_delete_neither_crashes_nor_loses_it(
    system: VoiceSystem,
) -> None:
    """py-cord raises at once on a Cloudflare 429 on delete; voice stays up and deletes later."""
    await system.start_voice()
    assert system.stub is not None
    await system.member("alice", faceit_id="p-alice")
    await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"]))
    await system.control.inject_cloudflare_429(count=1, method="DELETE", route=DELETE)

    await _close(system)
    await eventually(lambda: _names_are(system, []), what="the channel to be deleted after all")
    assert await system.health_status() == "SERVING"
    deletes = await system.control.audit_log(method="DELETE", route=DELETE)
    assert [d["status"] for d in deletes] == [429, 200]


async def _names_are(system: VoiceSystem, names: list[str]) -> bool:
    return await system.match_channel_names() == names


async def test_a_move_answered_503_twice_without_rate_limit_headers_still_goes_out(
    system: VoiceSystem,
) -> None:
    """Two 503s without rate-limit headers (as a proxy sends them) and the third attempt of the
    move goes out and succeeds: a bucket no answer described is not left waiting forever."""
    await system.start_voice()
    assert system.stub is not None
    (alice,) = await _in_lobby(system, "alice")
    await system.control.inject_errors(503, count=2, method="PATCH", route=MEMBER)
    await system.control.clear_audit_log()

    async with asyncio.timeout(15):
        opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"]))

    assert [p.outcome for p in opened.placements] == [voice_pb.PLACEMENT_OUTCOME_MOVED]
    moves = await system.control.audit_log(method="PATCH", route=MEMBER)
    assert [m["status"] for m in moves] == [503, 503, 200]
    assert await system.voice_of(alice) == opened.match.channels[0].channel_id
