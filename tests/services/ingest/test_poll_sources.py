"""The poller and the webhooks as two sources whose versions are not comparable (issue 16 A, C).

FACEIT's Data API `version` is its own small counter (2 in every capture) and the webhooks'
`payload.version` another (12, 71, ...): the sandbox serves both, as FACEIT does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faceitvoice.v1 import voice_service_pb2

from tests.services.ingest.test_poller import World, faceit_world
from tests.services.ingest.voice_double import VoiceCall, VoiceDoubleServer
from tests.support import eventually


@pytest.fixture
async def world(fresh_database: str, voice_server: VoiceDoubleServer) -> AsyncIterator[World]:
    """A FACEIT sandbox subscribed to a served ingest that polls only when RunPoll asks."""
    async with faceit_world(fresh_database, voice_server) as value:
        yield value


def calls(world: World, match_id: str, rpc: str) -> list[VoiceCall]:
    """The voice calls `rpc` about the match, in order."""
    return [call for call in world.voice.calls_of(match_id) if call.rpc == rpc]


def rosters(call: VoiceCall) -> list[list[str]]:
    """The FACEIT player ids of each team of an OpenMatch call."""
    teams = call.request.match.teams  # type: ignore[attr-defined]
    return [[player.faceit_player_id for player in team.roster] for team in teams]


@pytest.mark.parametrize("ending", ["FINISHED", "CANCELLED", "ABORTED"])
async def test_a_poll_closes_a_match_that_a_webhook_opened(world: World, ending: str) -> None:
    """READY by webhook, the ending webhook lost: the poll reads the ending and voice closes."""
    match_id = await world.new_match()
    ready = await world.control.set_status(match_id, "READY")

    async def opened() -> bool:
        return len(calls(world, match_id, "OpenMatch")) == 1

    await eventually(opened, what="OpenMatch from the READY webhook")
    assert calls(world, match_id, "OpenMatch")[0].version == ready["version"]
    await world.drop_webhooks()
    ended = await world.control.set_status(match_id, ending)
    assert ended["api_version"] < ready["version"]  # as in FACEIT's captures: 2 against 71

    report = await world.run_poll()
    assert (report.open_matches_checked, report.close_events_queued) == (1, 1)

    async def closed() -> bool:
        return len(calls(world, match_id, "CloseMatch")) == 1

    await eventually(closed, timeout=10, what="CloseMatch from the poll")
    assert world.voice.matches[match_id].state == voice_service_pb2.VOICE_MATCH_STATE_CLOSED


async def test_polls_follow_rosters_as_they_fill_at_one_data_api_version(world: World) -> None:
    """Each poll during captain pick opens the rosters so far; the Data API version stays 2."""
    teams = [
        [(await world.control.create_player(f"fill-{side}{n}"))["player_id"] for n in range(4)]
        for side in range(2)
    ]
    created = await world.control.create_match(
        teams, hub_id=world.hub_id, fill_rosters=True, webhook=False
    )
    match_id = created["match_id"]
    seen: list[list[list[str]]] = []
    for status in ("CAPTAIN_PICK", "CAPTAIN_PICK", "VOTING"):
        step = await world.control.set_status(match_id, status)
        assert step["api_version"] == 2
        report = await world.run_poll()
        assert report.open_events_queued == 1, (status, report)

        async def another_open(count: int = len(seen) + 1) -> bool:
            return len(calls(world, match_id, "OpenMatch")) == count

        await eventually(another_open, timeout=10, what=f"OpenMatch for {status}")
        seen.append(rosters(calls(world, match_id, "OpenMatch")[-1]))
    assert seen == [[t[:2] for t in teams], [t[:3] for t in teams], teams]
