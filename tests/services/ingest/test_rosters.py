"""Roster completion from the FACEIT Data API at delivery time (sandbox over real HTTP)."""

from __future__ import annotations

from faceitvoice.v1 import ingest_service_pb2

from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.server import FaceitSandbox
from services.kit.faceit_api import FaceitApiClient
from tests.services.ingest.harness import real_delivery, running_ingest
from tests.services.ingest.voice_double import VoiceDoubleServer
from tests.support import eventually

API_KEY = "sandbox-api-key-2"


async def test_match_object_created_is_completed_from_the_data_api(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """A created event (no teams) and a team without roster get their rosters from GET /matches."""
    async with (
        FaceitSandbox(api_key=API_KEY) as sandbox,
        FaceitSandboxClient(sandbox.url) as control,
        FaceitApiClient(API_KEY, base_url=sandbox.api_base) as faceit,
    ):
        teams = [
            [(await control.create_player(f"r{side}{n}"))["player_id"] for n in range(5)]
            for side in range(2)
        ]
        match = await control.create_match(teams, webhook=False)
        match_id = match["match_id"]
        # Like FACEIT, the sandbox shows rosters once the match is past CHECK_IN.
        await control.set_status(match_id, "CONFIGURING", webhook=False)
        created = real_delivery(
            event="match_object_created", event_id="created-1", payload={"id": match_id}
        )
        del created["payload"]["teams"]
        partial = real_delivery(event_id="ready-1", payload={"id": match_id, "version": 30})
        partial["payload"]["teams"][1]["roster"] = []
        async with running_ingest(fresh_database, voice_server.address, faceit=faceit) as harness:
            await harness.post(created)

            async def opened() -> int:
                return len(voice_server.double.calls_of(match_id))

            await eventually(opened, what="OpenMatch for the created event")
            await harness.post(partial)
            await eventually(lambda: _two(voice_server, match_id), what="OpenMatch for ready")

            async def both_delivered() -> bool:
                statuses = [e.status for e in await harness.events(match_id)]
                return statuses == [ingest_service_pb2.EVENT_STATUS_DELIVERED] * 2

            # Voice records the call before the worker commits the DELIVERED status.
            await eventually(both_delivered, what="both events DELIVERED")
    first, second = voice_server.double.calls_of(match_id)
    for call in (first, second):
        rosters = [[p.faceit_player_id for p in t.roster] for t in call.request.match.teams]  # type: ignore[attr-defined]
        assert rosters[1] == teams[1]
    assert [p.faceit_player_id for p in first.request.match.teams[0].roster] == teams[0]  # type: ignore[attr-defined]


async def _two(voice_server: VoiceDoubleServer, match_id: str) -> bool:
    return len(voice_server.double.calls_of(match_id)) == 2
