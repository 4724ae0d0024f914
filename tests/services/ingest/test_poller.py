"""The reconciliation poller against the FACEIT sandbox: healing dropped webhooks, budgets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from faceitvoice.v1 import ingest_service_pb2, voice_service_pb2

from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.server import FaceitSandbox
from services.ingest.metrics import IngestMetrics
from services.ingest.poller import Poller
from services.ingest.store import PollCursor
from services.kit.faceit_api import FaceitApiClient
from services.kit.logging import ContextFilter
from tests.services.ingest.harness import HEADER, SECRET, ServedIngest, served_ingest
from tests.services.ingest.voice_double import VoiceDouble, VoiceDoubleServer
from tests.support import eventually

API_KEY = "sandbox-api-key-1"
DELIVERED = ingest_service_pb2.EVENT_STATUS_DELIVERED


@dataclass
class World:
    """A FACEIT sandbox subscribed to a served ingest app, and the voice double behind it."""

    sandbox: FaceitSandbox
    control: FaceitSandboxClient
    ingest: ServedIngest
    voice: VoiceDouble

    @property
    def hub_id(self) -> str:
        """The sandbox's default hub (the one ingest polls)."""
        return self.sandbox.default_hub.hub_id

    async def new_match(self) -> str:
        """A CHECK_IN match in the hub with two teams of five new players (no webhook)."""
        teams = []
        for side in range(2):
            team = []
            for n in range(5):
                player = await self.control.create_player(f"p{side}{n}-{len(self.voice.calls)}")
                team.append(player["player_id"])
            teams.append(team)
        match = await self.control.create_match(teams, hub_id=self.hub_id, webhook=False)
        return str(match["match_id"])

    async def drop_webhooks(self) -> None:
        """Every webhook from now on is lost."""
        await self.control.set_faults(webhooks={"drop_rate": 1.0})

    async def run_poll(self) -> ingest_service_pb2.RunPollResponse:
        """IngestService.RunPoll."""
        return await self.ingest.ingest.RunPoll(ingest_service_pb2.RunPollRequest())

    async def inbox(self, match_id: str) -> list[ingest_service_pb2.InboxEvent]:
        """The match's inbox events, oldest first."""
        page = await self.ingest.ingest.ListEvents(
            ingest_service_pb2.ListEventsRequest(match_id=match_id)
        )
        return list(reversed(page.events))


@asynccontextmanager
async def faceit_world(
    database_url: str, voice_server: VoiceDoubleServer, **overrides: Any
) -> AsyncIterator[World]:
    """Sandbox + served ingest polling its hub (every hour unless overridden) + subscription."""
    sandbox = FaceitSandbox(api_key=API_KEY)
    await sandbox.start()
    try:
        settings: dict[str, Any] = {
            "FACEIT_API_KEY": API_KEY,
            "FACEIT_API_BASE": sandbox.api_base,
            "FACEIT_HUB_IDS": sandbox.default_hub.hub_id,
            "FACEIT_POLL_INTERVAL_S": 3600,
            **overrides,
        }
        async with (
            served_ingest(database_url, voice_server.address, **settings) as ingest,
            FaceitSandboxClient(sandbox.url) as control,
        ):
            await control.subscribe(
                ingest.url + "/faceit-webhook", header_name=HEADER, header_value=SECRET
            )
            yield World(sandbox=sandbox, control=control, ingest=ingest, voice=voice_server.double)
    finally:
        await sandbox.stop()


@pytest.fixture
async def world(fresh_database: str, voice_server: VoiceDoubleServer) -> AsyncIterator[World]:
    """The default world: polls only when RunPoll asks."""
    async with faceit_world(fresh_database, voice_server) as value:
        yield value


async def _opened(world: World, match_id: str) -> bool:
    return any(c.rpc == "OpenMatch" for c in world.voice.calls_of(match_id))


async def _closed(world: World, match_id: str) -> bool:
    return any(c.rpc == "CloseMatch" for c in world.voice.calls_of(match_id))


async def test_webhooks_from_the_sandbox_are_delivered(world: World) -> None:
    """The sandbox's real envelope, sent to the served receiver, opens and closes the match."""
    match_id = await world.new_match()
    await world.control.set_status(match_id, "READY")
    await eventually(lambda: _opened(world, match_id), what="OpenMatch from the webhook")
    (open_call,) = world.voice.calls_of(match_id)
    assert [len(t.roster) for t in open_call.request.match.teams] == [5, 5]  # type: ignore[attr-defined]
    await world.control.set_status(match_id, "FINISHED")
    await eventually(lambda: _closed(world, match_id), what="CloseMatch from the webhook")
    sources = {event.source for event in await world.inbox(match_id)}
    assert sources == {ingest_service_pb2.EVENT_SOURCE_WEBHOOK}


async def test_run_poll_heals_dropped_webhooks(world: World) -> None:
    """With every webhook dropped, RunPoll queues the missing open, then the missing close."""
    await world.drop_webhooks()
    match_id = await world.new_match()
    await world.control.set_status(match_id, "CONFIGURING")
    await world.control.set_status(match_id, "READY")

    async def dropped() -> bool:
        return len((await world.control.deliveries())["dropped"]) >= 2

    await eventually(dropped, what="both webhooks dropped")
    assert world.voice.calls == []

    report = await world.run_poll()
    assert (report.hubs_polled, report.live_matches_seen, report.open_events_queued) == (1, 1, 1)
    assert list(report.errors) == []
    await eventually(lambda: _opened(world, match_id), what="OpenMatch from the poll")
    (call,) = world.voice.calls_of(match_id)
    assert call.version == 0  # what voice holds of a match it lacks: no Data API version
    assert [len(t.roster) for t in call.request.match.teams] == [5, 5]  # type: ignore[attr-defined]
    (event,) = await world.inbox(match_id)
    assert (event.source, event.event) == (
        ingest_service_pb2.EVENT_SOURCE_POLL,
        "match_status_ready",
    )

    again = await world.run_poll()
    assert (again.live_matches_seen, again.open_events_queued) == (1, 0)
    assert again.open_matches_checked == 1

    await world.control.set_status(match_id, "FINISHED")
    closing = await world.run_poll()
    assert (closing.open_matches_checked, closing.close_events_queued) == (1, 1)
    await eventually(lambda: _closed(world, match_id), what="CloseMatch from the poll")
    assert [c.rpc for c in world.voice.calls_of(match_id)] == ["OpenMatch", "CloseMatch"]


async def test_two_polls_never_insert_an_event_twice(world: World) -> None:
    """Polls while voice is still missing the match derive the same event id: one inbox row."""
    await world.drop_webhooks()
    match_id = await world.new_match()
    await world.control.set_status(match_id, "READY")
    first = await world.run_poll()
    assert first.open_events_queued == 1
    await eventually(lambda: _opened(world, match_id), what="the open delivered")
    world.voice.matches.clear()  # voice "forgets" it: the poll would queue it again
    second = await world.run_poll()
    assert second.open_events_queued == 0
    assert len(await world.inbox(match_id)) == 1


async def test_check_in_matches_without_rosters_are_skipped(world: World) -> None:
    """A CHECK_IN match in the ongoing listing opens nothing."""
    await world.new_match()
    report = await world.run_poll()
    assert (report.live_matches_seen, report.open_events_queued) == (0, 0)


@pytest.mark.parametrize(("budget", "throttled"), [(1, 0), (2, 1)])
async def test_the_request_budget_bounds_the_requests_sent(
    fresh_database: str, voice_server: VoiceDoubleServer, budget: int, throttled: int
) -> None:
    """A poll sends at most FACEIT_POLL_MAX_REQUESTS requests, a retry after a 429 included."""
    voice_server.double.matches["open-1"] = voice_service_pb2.VoiceMatch(
        match_id="open-1", version=1, state=voice_service_pb2.VOICE_MATCH_STATE_OPEN
    )
    async with faceit_world(
        fresh_database, voice_server, FACEIT_POLL_MAX_REQUESTS=budget
    ) as limited:
        if throttled:
            await limited.control.fail_next(429, throttled)
        report = await limited.run_poll()
        sent = limited.sandbox.request_log.entries()
    assert [entry.route for entry in sent] == ["hub_matches"] * budget
    assert (report.api_requests, report.open_matches_checked) == (budget, 1)
    assert any(f"budget of {budget}" in error for error in report.errors)


async def test_poll_rides_out_a_429(world: World) -> None:
    """A 429 from FACEIT is retried by the client; the poll succeeds and the metric counts it."""
    await world.drop_webhooks()
    match_id = await world.new_match()
    await world.control.set_status(match_id, "READY")
    await world.control.fail_next(429, 1)
    report = await world.run_poll()
    assert report.open_events_queued == 1
    assert list(report.errors) == []
    async with httpx.AsyncClient() as client:
        text = (await client.get(world.ingest.url + "/metrics")).text
    assert (
        'ingest_faceit_api_calls_total{endpoint="/hubs/{hub_id}/matches",status="429"} 1.0' in text
    )
    assert 'ingest_poll_runs_total{outcome="ok"} 1.0' in text


async def test_scheduled_poll_heals_within_one_interval(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """With a 1 s poll interval a match whose webhooks were dropped opens without RunPoll."""
    async with faceit_world(fresh_database, voice_server, FACEIT_POLL_INTERVAL_S=1) as fast:
        await fast.drop_webhooks()
        match_id = await fast.new_match()
        await fast.control.set_status(match_id, "READY")
        await eventually(lambda: _opened(fast, match_id), timeout=10, what="scheduled poll")


async def _open_in_voice(world: World, count: int) -> list[str]:
    """`count` READY matches in the sandbox (one player a team, no webhook) that voice holds."""
    match_ids = []
    for n in range(count):
        teams = [
            [(await world.control.create_player(f"rot{n}-{side}"))["player_id"]] for side in "ab"
        ]
        match = await world.control.create_match(teams, webhook=False)
        ready = await world.control.set_status(match["match_id"], "READY", webhook=False)
        world.voice.matches[match["match_id"]] = voice_service_pb2.VoiceMatch(
            match_id=match["match_id"],
            version=ready["version"],
            state=voice_service_pb2.VOICE_MATCH_STATE_OPEN,
        )
        match_ids.append(match["match_id"])
    return match_ids


def _checked(world: World) -> list[str]:
    """The match ids the poller asked `GET /matches/{id}` about, in order."""
    return [
        entry.path.rsplit("/", 1)[1]
        for entry in world.sandbox.request_log.entries()
        if entry.route == "match"
    ]


async def test_every_open_match_is_checked_within_ceil_open_over_budget_polls(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """7 open matches, a budget of 3 requests: ceil(7/3) = 3 polls check every one of them."""
    async with faceit_world(
        fresh_database, voice_server, FACEIT_HUB_IDS="", FACEIT_POLL_MAX_REQUESTS=3
    ) as world:
        match_ids = await _open_in_voice(world, 7)
        reports = [await world.run_poll() for _ in range(3)]
        checked = _checked(world)
    assert [report.api_requests for report in reports] == [3, 3, 3]
    assert set(checked) == set(match_ids)
    assert len(set(checked[:7])) == 7  # no match checked twice before all were checked once


async def test_the_rotation_resumes_where_the_last_process_stopped(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """A restarted ingest (a new poller on the same inbox) checks the matches not checked yet."""
    async with faceit_world(
        fresh_database, voice_server, FACEIT_HUB_IDS="", FACEIT_POLL_MAX_REQUESTS=2
    ) as world:
        match_ids = await _open_in_voice(world, 4)
        await world.run_poll()
        runtime = world.ingest.runtime
        async with FaceitApiClient(API_KEY, base_url=world.sandbox.api_base) as faceit:
            restarted = Poller(
                faceit,
                runtime.voice,
                runtime.inbox,
                IngestMetrics(),
                PollCursor(runtime.pool),
                hub_ids=(),
                max_requests=2,
            )
            await restarted.run()
        checked = _checked(world)
    assert sorted(checked) == sorted(match_ids)


async def test_a_refused_poll_event_is_an_error_and_the_poll_goes_on(
    fresh_database: str, voice_server: VoiceDoubleServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A close event Postgres refuses is logged with its traceback and counted; others queue."""
    caplog.set_level(logging.WARNING, logger="services.ingest.poller")
    caplog.handler.addFilter(ContextFilter())
    async with faceit_world(fresh_database, voice_server, FACEIT_HUB_IDS="") as world:
        refused, other = await _open_in_voice(world, 2)
        for match_id in (refused, other):
            await world.control.set_status(match_id, "FINISHED", webhook=False)
        await world.ingest.runtime.pool.execute(
            "ALTER TABLE ingest.events ADD CONSTRAINT refused"
            f" CHECK (match_id <> '{refused}' OR source <> 'POLL') NOT VALID"
        )
        report = await world.run_poll()
        async with httpx.AsyncClient() as client:
            text = (await client.get(world.ingest.url + "/metrics")).text
    assert report.close_events_queued == 1
    assert any(refused in error for error in report.errors)
    assert 'ingest_internal_errors_total{component="poll"} 1.0' in text
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None
    assert record.match_id == refused  # type: ignore[attr-defined]


async def test_a_poll_whose_cursor_statement_fails_reports_and_counts_it(
    fresh_database: str, voice_server: VoiceDoubleServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused statement of the poll itself is in its report, logged once and counted."""
    caplog.set_level(logging.WARNING, logger="services.ingest.poller")
    async with faceit_world(fresh_database, voice_server, FACEIT_HUB_IDS="") as world:
        await _open_in_voice(world, 1)
        await world.ingest.runtime.pool.execute("DROP TABLE ingest.poll_cursor")
        report = await world.run_poll()
        async with httpx.AsyncClient() as client:
            text = (await client.get(world.ingest.url + "/metrics")).text
    assert any("poll_cursor" in error for error in report.errors)
    assert 'ingest_internal_errors_total{component="poll"} 1.0' in text
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None
