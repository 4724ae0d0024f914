"""A finished match's results reach voice: the event's, else the Data API's after the close."""

from __future__ import annotations

from faceitvoice.v1 import ingest_service_pb2

from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.server import FaceitSandbox
from services.ingest.events import parse_webhook
from services.kit.faceit_api import FaceitApiClient
from services.kit.match_json import match_from_json
from tests.services.ingest.harness import real_delivery, running_ingest
from tests.services.ingest.voice_double import VoiceDoubleServer
from tests.support import eventually

API_KEY = "sandbox-api-key-results"
DELIVERED = ingest_service_pb2.EVENT_STATUS_DELIVERED


def finished(match_id: str, version: int, **payload: object) -> dict[str, object]:
    """A match_status_finished delivery of the captured shape."""
    return real_delivery(
        event="match_status_finished",
        event_id=f"finished-{match_id}",
        payload={"id": match_id, "version": version, **payload},
    )


def test_results_of_a_finished_webhook_are_kept_in_its_match() -> None:
    """`results` in a finished payload (the Data API's shape) are part of the stored match."""
    body = finished(
        "m-1", 9, results={"winner": "faction2", "score": {"faction1": 1, "faction2": 2}}
    )
    event = parse_webhook(body)
    match = match_from_json(event.match_json)
    assert match is not None
    assert match.results.winner == "faction2"
    assert {s.faction: s.score for s in match.results.scores} == {"faction1": 1, "faction2": 2}


async def test_finish_without_results_gets_them_from_the_data_api_after_the_close(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """The close goes to voice first, without results; a second close brings the Data API's."""
    async with (
        FaceitSandbox(api_key=API_KEY) as sandbox,
        FaceitSandboxClient(sandbox.url) as control,
        FaceitApiClient(API_KEY, base_url=sandbox.api_base) as faceit,
    ):
        teams = [
            [(await control.create_player(f"w{s}{n}"))["player_id"]] for s, n in ((0, 0), (1, 0))
        ]
        match_id = (await control.create_match(teams, webhook=False))["match_id"]
        await control.play(match_id, ["CONFIGURING", "READY"])
        await control.set_status(match_id, "FINISHED", webhook=False, winner="faction2")
        async with running_ingest(fresh_database, voice_server.address, faceit=faceit) as harness:
            await harness.post(finished(match_id, 40))

            async def delivered() -> bool:
                events = await harness.events(match_id)
                return [e.status for e in events] == [DELIVERED]

            await eventually(delivered, what="the finish delivered")
    first, second = voice_server.double.calls_of(match_id)
    assert not first.request.HasField("results")  # type: ignore[attr-defined]
    assert second.request.results.winner == "faction2"  # type: ignore[attr-defined]
    scores = second.request.results.scores  # type: ignore[attr-defined]
    assert [(s.faction, s.score) for s in scores] == [("faction1", 0), ("faction2", 1)]
    assert (second.version, second.request.reason) == (40, "match_status_finished")  # type: ignore[attr-defined]


async def test_results_in_the_event_need_no_lookup(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """A finish that carries results is one close with them; cancelled ones get none, and odd
    results (a winner that is no faction) are left out, the close delivered all the same."""
    async with running_ingest(fresh_database, voice_server.address) as harness:
        results = {"winner": "faction1", "score": {"faction1": 16, "faction2": 9}}
        await harness.post(finished("m-with", 12, results=results))
        await harness.post(finished("m-odd", 14, results={"winner": "team-uuid", "score": {}}))
        cancelled = finished("m-cancel", 13)
        cancelled["event"] = "match_status_cancelled"
        await harness.post(cancelled)

        async def all_delivered() -> bool:
            matches = ("m-with", "m-cancel", "m-odd")
            statuses = [[e.status for e in await harness.events(m)] for m in matches]
            return statuses == [[DELIVERED]] * 3

        await eventually(all_delivered, what="the three closes delivered")
    (with_results,) = voice_server.double.calls_of("m-with")
    scores = with_results.request.results.scores  # type: ignore[attr-defined]
    assert [(s.faction, s.score) for s in scores] == [("faction1", 16), ("faction2", 9)]
    for match_id in ("m-cancel", "m-odd"):
        (no_results,) = voice_server.double.calls_of(match_id)
        assert not no_results.request.HasField("results")  # type: ignore[attr-defined]
