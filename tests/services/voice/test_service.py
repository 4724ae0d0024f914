"""The voice service end to end: real py-cord on the Discord sandbox, real registry, Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from faceitvoice.v1 import voice_service_pb2 as voice_pb

from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

MATCH = "1-d785567a-fd28-42a4-af99-6b3cec21c6a9"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def test_open_close_cycle_gives_access_moves_and_cleans_up(system: VoiceSystem) -> None:
    """OpenMatch makes private team channels, moves players in voice; CloseMatch removes them."""
    await system.start_voice()
    assert system.stub is not None
    alice = await system.member("alice", faceit_id="p-alice")
    bob = await system.member("bob", faceit_id="p-bob")
    outsider = await system.member("carol")
    await system.control.set_voice(system.guild_id, alice, system.lobby_id)
    await eventually(lambda: _sees_voice(system, alice), what="the bot to see alice in voice")

    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-alice", "p-ghost"], ["p-bob"]))
    assert opened.outcome == voice_pb.OPEN_OUTCOME_OPENED
    channels = {c.faction: c for c in opened.match.channels}
    assert set(channels) == {"faction1", "faction2"}
    assert channels["faction1"].channel_name == "Match 1-d78556"
    outcomes = {p.faceit_player_id: p.outcome for p in opened.placements}
    assert outcomes == {
        "p-alice": voice_pb.PLACEMENT_OUTCOME_MOVED,
        "p-ghost": voice_pb.PLACEMENT_OUTCOME_SKIPPED_NOT_LINKED,
        "p-bob": voice_pb.PLACEMENT_OUTCOME_SKIPPED_NOT_IN_VOICE,
    }
    team1 = channels["faction1"].channel_id
    access = await system.control.channel_access(team1)
    assert str(alice) in access["connect"] and str(alice) in access["view"]
    assert str(bob) not in access["view"] and str(outsider) not in access["view"]
    assert str(system.discord.bot_user_id) in access["connect"]
    assert await system.voice_of(alice) == team1

    closed = await system.stub.CloseMatch(
        voice_pb.CloseMatchRequest(match_id=MATCH, version=2, reason="match_status_finished")
    )
    assert closed.outcome == voice_pb.CLOSE_OUTCOME_CLOSED
    assert set(closed.deleted_channel_ids) == {c.channel_id for c in opened.match.channels}
    assert closed.moved_to_lobby == 1
    assert await system.match_channel_names() == []
    assert await system.voice_of(alice) == system.lobby_id

    stale = await system.stub.OpenMatch(match(MATCH, 2, ["p-alice"], ["p-bob"]))
    assert stale.outcome == voice_pb.OPEN_OUTCOME_STALE
    assert stale.match.state == voice_pb.VOICE_MATCH_STATE_CLOSED
    assert await system.match_channel_names() == []


async def _sees_voice(system: VoiceSystem, user_id: int) -> bool:
    assert system.voice is not None
    return system.voice.discord.voice_channel_of(user_id) is not None


async def test_duplicate_and_concurrent_opens_make_one_channel_per_team(
    system: VoiceSystem,
) -> None:
    """Concurrent and repeated OpenMatch calls leave exactly one channel per team."""
    await system.start_voice()
    assert system.stub is not None
    await system.member("dave", faceit_id="p-dave")
    await system.member("erin", faceit_id="p-erin")
    request = match(MATCH, 1, ["p-dave"], ["p-erin"], names=("Alpha", "Bravo"))
    answers = await asyncio.gather(*(system.stub.OpenMatch(request) for _ in range(4)))
    again = await system.stub.OpenMatch(request)
    assert sorted(a.outcome for a in answers).count(voice_pb.OPEN_OUTCOME_OPENED) == 1
    assert again.outcome == voice_pb.OPEN_OUTCOME_UPDATED
    assert await system.match_channel_names() == [
        "Match 1-d78556 · Alpha",
        "Match 1-d78556 · Bravo",
    ]


async def test_bad_requests_are_invalid_argument(system: VoiceSystem) -> None:
    """Malformed OpenMatch requests are INVALID_ARGUMENT; an unknown match is NOT_FOUND."""
    await system.start_voice()
    assert system.stub is not None
    for request in (
        voice_pb.OpenMatchRequest(),
        match("", 1, []),
        match(MATCH, -1, []),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await system.stub.OpenMatch(request)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id="nope"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
