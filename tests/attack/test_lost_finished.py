"""The lost FINISHED among many open matches: the poller still closes it, in bounded polls."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
from faceitvoice.v1 import ingest_service_pb2, voice_service_pb2

from tests.services.ingest.test_poller import World, faceit_world
from tests.services.ingest.voice_double import VoiceDoubleServer, served_voice_double
from tests.support import eventually

OPEN_MATCHES = 30
BUDGET = 4


@pytest.fixture
async def voice_server() -> AsyncIterator[VoiceDoubleServer]:
    """The VoiceService double, served on a free port."""
    async with served_voice_double() as server:
        yield server


async def _open_by_webhook(world: World, n: int) -> str:
    """A match made READY in the sandbox, whose webhook ingest delivers to voice."""
    teams = [[(await world.control.create_player(f"lost{n}-{side}"))["player_id"]] for side in "ab"]
    match = await world.control.create_match(teams, webhook=False)
    await world.control.set_status(match["match_id"], "READY")
    return str(match["match_id"])


def _open_in_voice(world: World) -> set[str]:
    return {
        match_id
        for match_id, match in world.voice.matches.items()
        if match.state == voice_service_pb2.VOICE_MATCH_STATE_OPEN
    }


async def test_a_lost_finished_among_many_open_matches_is_closed_within_bounded_polls(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """30 open matches, a budget of 4: the newest's dropped FINISHED is healed in <= 8 polls."""
    async with faceit_world(
        fresh_database, voice_server, FACEIT_HUB_IDS="", FACEIT_POLL_MAX_REQUESTS=BUDGET
    ) as world:
        match_ids = [await _open_by_webhook(world, n) for n in range(OPEN_MATCHES)]

        async def all_open() -> bool:
            return _open_in_voice(world) == set(match_ids)

        await eventually(all_open, timeout=30, what="every match opened by its webhook")
        newest = match_ids[-1]
        await world.drop_webhooks()
        await world.control.set_status(newest, "FINISHED")

        async def finished_dropped() -> bool:
            return bool((await world.control.deliveries())["dropped"])

        await eventually(finished_dropped, what="the FINISHED webhook dropped")
        assert newest in _open_in_voice(world)

        bound = math.ceil(OPEN_MATCHES / BUDGET)
        polls = 0
        while polls < bound and newest in _open_in_voice(world):
            report = await world.run_poll()
            polls += 1
            assert report.api_requests <= BUDGET
            if report.close_events_queued:

                async def closed() -> bool:
                    return newest not in _open_in_voice(world)

                await eventually(closed, what="the close delivered")
        assert newest not in _open_in_voice(world), f"still open after {polls} polls"
        assert _open_in_voice(world) == set(match_ids[:-1])
        (close,) = [e for e in await world.inbox(newest) if e.event == "match_status_finished"]
        assert close.source == ingest_service_pb2.EVENT_SOURCE_POLL
