"""End to end over the running system: sandboxes and the three services as separate processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from faceitvoice.v1.ingest_service_pb2 import InboxEvent

from sandbox.system import SystemOptions
from services.kit.embedded_postgres import EmbeddedPostgres
from tests.sandbox.system_support import (
    FAST_RETRIES,
    Harness,
    expected_channel_names,
    grpcurl,
    status_name,
)
from tests.support import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

DROP_SEED = 3
"""Drops at least one READY and one FINISHED webhook of the poller test's matches."""
NO_POLL_S = 3600.0
"""A poll interval that never comes during a test: only RunPoll polls."""


def options(log_dir: Path, **overrides: object) -> SystemOptions:
    """Options of a test system: quick delivery retries, no scheduled poll."""
    settings: dict[str, object] = {
        "log_dir": log_dir,
        "poll_interval_s": NO_POLL_S,
        "extra_env": {"ingest": FAST_RETRIES},
        **overrides,
    }
    return SystemOptions(**settings)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    """One running system for the tests that do not break it (each uses its own matches)."""
    log_dir = tmp_path_factory.mktemp("shared-system")
    async with Harness.running(options(log_dir, database_url=database_url)) as harness:
        yield harness


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def own_system(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    """A second system, for the tests that stop or kill voice (each leaves it running)."""
    log_dir = tmp_path_factory.mktemp("restarted-system")
    # nickname: these tests are about restarts, and link their many players by RegistryService.
    settings = options(log_dir, database_url=database_url, link_verification="nickname")
    async with Harness.running(settings) as harness:
        yield harness


@pytest_asyncio.fixture(loop_scope="module")
async def own_postgres(tmp_path: Path) -> AsyncIterator[tuple[Harness, EmbeddedPostgres]]:
    """A system on an embedded Postgres of its own (to restart) and a patient FACEIT."""
    postgres = EmbeddedPostgres(tmp_path / "data")
    settings = options(
        tmp_path / "logs",
        data_dir=postgres.data_dir,
        link_verification="nickname",  # the test is about a Postgres restart, not linking
        faceit_args=("--webhook-retries", "19", "--webhook-backoff-ms", "200"),
    )
    try:
        async with Harness.running(settings) as harness:
            yield harness, postgres
    finally:
        await asyncio.to_thread(postgres.stop)


def unsettled(events: Sequence[InboxEvent]) -> list[tuple[str, str, str]]:
    """Events neither delivered nor superseded (an ignored roster-less create is fine)."""
    return [
        (e.event, status_name(e), e.last_error)
        for e in events
        if status_name(e) not in ("DELIVERED", "SUPERSEDED")
        and not (e.event == "match_object_created" and status_name(e) == "IGNORED")
    ]


async def test_a_match_gets_private_team_channels_and_loses_them_when_finished(
    shared: Harness,
) -> None:
    """READY: one channel per team, private to it, players moved in; FINISHED: gone, to lobby."""
    match = await shared.new_match(team_size=3, in_voice=2, register_command=True)

    await shared.faceit.play(match.match_id, ["CONFIGURING", "READY"])
    await shared.wait_until_open([match])
    await shared.wait_until_processed([match], {"match_status_ready"})
    await shared.faceit.set_status(match.match_id, "FINISHED")
    await shared.wait_until_closed([match])

    await shared.wait_until_processed([match], {"match_status_finished"})
    assert await shared.match_channel_names() == []
    statuses = {e.event: status_name(e) for e in await shared.events(match.match_id)}
    assert statuses["match_status_ready"] == "DELIVERED"
    assert statuses["match_status_finished"] == "DELIVERED"


async def test_each_service_process_serves_its_metrics_where_the_docs_say(
    shared: Harness,
) -> None:
    """ingest and the registry at /metrics on their HTTP ports, voice on VOICE_METRICS_PORT;
    voice's shows its gateway session and its lease."""
    urls = {
        "ingest": shared.info["ingest_url"] + "/metrics",
        "registry": shared.info["registry_http"] + "/metrics",
        "voice": shared.info["voice_metrics"],
    }
    async with httpx.AsyncClient() as client:
        texts = {name: (await client.get(url)).text for name, url in urls.items()}

    for name, text in texts.items():
        assert f"# TYPE {name}_grpc_calls_total counter" in text, name
        assert "process_resident_memory_bytes" in text, name
    assert "voice_gateway_connected 1.0" in texts["voice"]
    assert "voice_lease_held 1.0" in texts["voice"]


def verified_field(reply: dict[str, object]) -> str:
    """The "Verified" field of a /whoami reply's embed."""
    (embed,) = reply["embeds"]  # type: ignore[misc]
    return next(f["value"] for f in embed["fields"] if f["name"] == "Verified")


async def test_by_default_players_link_by_signing_in_with_faceit_and_whoami_says_verified(
    shared: Harness,
) -> None:
    """faceit_oauth is the default: the ready info names the registry's HTTP; links are verified."""
    player = await shared.new_player()

    whoami = await shared.discord.run_command(shared.guild_id, player.user_id, "whoami")

    assert shared.info["link_verification"] == "faceit_oauth"
    assert shared.info["registry_http"].startswith("http://127.0.0.1:")
    assert verified_field(whoami).startswith("Yes: signed in with FACEIT")
    assert whoami["embeds"][0]["description"] == player.nickname


async def test_in_nickname_mode_register_links_any_nickname_unverified(own_system: Harness) -> None:
    """--link-verification nickname: /register <nickname> links at once, and says unverified."""
    player = await own_system.new_player(register_command=True)

    whoami = await own_system.discord.run_command(own_system.guild_id, player.user_id, "whoami")

    assert own_system.info["link_verification"] == "nickname"
    assert verified_field(whoami) == "No: registered by nickname only"


async def test_voice_killed_during_a_burst_ends_with_exactly_each_matchs_channels(
    own_system: Harness,
) -> None:
    """SIGKILL voice while 8 matches go READY, restart it: one channel per team, none extra."""
    system = own_system
    # Nobody waits in voice: moves right after a restart are another test's (xfail) subject.
    matches = await system.new_matches(8, in_voice=0)

    burst = asyncio.gather(*(system.faceit.set_status(m.match_id, "READY") for m in matches))
    await eventually(system.match_channel_names, timeout=20, what="voice at work on the burst")
    await system.system.processes["voice"].kill()
    await burst
    await system.system.start_service("voice")
    await system.wait_until_open(matches)

    assert await system.match_channel_names() == expected_channel_names(matches)
    await system.set_status_all(matches, "FINISHED")
    await system.wait_until_closed(matches)
    assert await system.match_channel_names() == []


async def test_a_match_opened_just_after_voice_restarts_moves_its_players(
    own_system: Harness,
) -> None:
    """A match going READY as soon as voice serves again still moves its waiting players."""
    match = await own_system.new_match(in_voice=2)
    await own_system.system.processes["voice"].stop()
    await own_system.system.start_service("voice")

    await own_system.faceit.set_status(match.match_id, "READY")

    await own_system.wait_until_open([match], timeout=10)


async def test_match_feed_keeps_one_message_through_duplicates_and_a_voice_restart(
    own_system: Harness,
) -> None:
    """Every webhook thrice and shuffled, voice killed and restarted mid-match: the feed holds one
    message for the match, edited at the end with the winner and score (from the Data API)."""
    system = own_system
    match = await system.new_match(in_voice=0)
    duplicated = {"duplicate": 3, "reorder": "shuffle", "seed": 11, "concurrency": 4}
    try:
        await system.faceit.set_faults(webhooks=duplicated)
        await system.faceit.play(match.match_id, ["CONFIGURING", "READY"])
        await system.faceit.flush_deliveries()
        await eventually(lambda: system.feed_messages(match), what="the match's feed message")
        await system.system.processes["voice"].kill()
        await system.system.start_service("voice")
        await system.faceit.set_status(match.match_id, "FINISHED", winner="faction2")
        await system.faceit.flush_deliveries()
        await system.faceit.wait_for_deliveries()
    finally:
        await system.faceit.clear_faults()
    await system.wait_until_closed([match])

    async def finished() -> list[dict[str, object]] | None:
        messages = await system.feed_messages(match)
        shown = str(messages[-1]["embeds"]) if messages else ""
        return messages if " won " in shown else None

    messages = await eventually(finished, timeout=30, what="the feed message with the result")
    assert len(messages) == 1
    (embed,) = messages[0]["embeds"]  # type: ignore[misc]
    assert f"Finished: **{match.team_names[1]}** won 0 - 1" in embed["description"]
    assert embed["url"] == f"https://www.faceit.com/en/cs2/room/{match.match_id}"
    assert await system.feed_messages(match) == messages


async def test_postgres_restarted_mid_burst_loses_no_event(
    own_postgres: tuple[Harness, EmbeddedPostgres],
) -> None:
    """Postgres down while matches go READY: FACEIT retries the 503s, every match opens."""
    system, postgres = own_postgres
    matches = await system.new_matches(8)
    before, during = matches[:4], matches[4:]

    await system.set_status_all(before, "READY")
    await asyncio.to_thread(postgres.stop)
    await system.set_status_all(during, "READY")

    async def refused() -> bool:
        attempts = (await system.faceit.deliveries())["attempts"]
        refused = {a["match_id"] for a in attempts if a["status"] != 200}
        return refused >= {m.match_id for m in during}

    await eventually(refused, timeout=20, what="webhooks refused by ingest without a database")
    await asyncio.to_thread(postgres.start)
    await system.faceit.wait_for_deliveries(within=20)

    alive = {name: p.running for name, p in system.system.processes.items()}
    assert all(alive.values()), f"a process died with the database: {alive}"
    await system.wait_until_open(matches)
    await system.set_status_all(matches, "FINISHED")
    await system.wait_until_closed(matches)

    await system.wait_until_processed(matches, {"match_status_ready", "match_status_finished"})
    for match in matches:
        assert unsettled(await system.events(match.match_id)) == []
    deliveries = await system.faceit.wait_for_deliveries()
    assert deliveries["failed"] == 0
    assert await system.match_channel_names() == []


async def test_gateway_drop_and_429_storm_during_opens_still_complete_the_matches(
    shared: Harness,
) -> None:
    """The bot's gateway drops and channel creates and moves get 429s: matches still complete."""
    matches = await shared.new_matches(3)
    await shared.discord.clear_audit_log()
    await shared.discord.inject_errors(
        429, count=6, method="POST", route="/guilds/{guild_id}/channels", retry_after=0.2
    )
    await shared.discord.inject_errors(
        429, count=4, method="PATCH", route="/guilds/{guild_id}/members/{user_id}", retry_after=0.1
    )
    try:
        await shared.discord.close_gateway(4000)
        await shared.set_status_all(matches, "READY")
        await shared.wait_until_open(matches)
        limited = await shared.discord.audit_log(method="POST", route="/guilds/{guild_id}/channels")
    finally:
        await shared.discord.clear_faults()
    await shared.set_status_all(matches, "FINISHED")
    await shared.wait_until_closed(matches)

    assert sum(entry["status"] == 429 for entry in limited) == 6
    sessions = (await shared.discord.gateway())["sessions"]
    assert len(sessions) > 1 or sessions[0]["resumes"] >= 1, sessions
    assert await shared.match_channel_names() == []


async def test_the_poller_heals_webhooks_that_faceit_dropped(shared: Harness) -> None:
    """30% of webhooks dropped: RunPoll opens the missed matches and closes the finished ones."""
    await shared.faceit.set_faults(webhooks={"drop_rate": 0.3, "seed": DROP_SEED})
    try:
        matches = await shared.new_matches(6)
        for match in matches:
            await shared.faceit.set_status(match.match_id, "READY")
        await shared.faceit.wait_for_deliveries()
        opened = await shared.run_poll()
        await shared.wait_until_open(matches)
        for match in matches:
            await shared.faceit.set_status(match.match_id, "FINISHED")
        await shared.faceit.wait_for_deliveries()
        closed = await shared.run_poll()
        await shared.wait_until_closed(matches)
        dropped = (await shared.faceit.deliveries())["dropped"]
    finally:
        await shared.faceit.clear_faults()

    ids = {m.match_id for m in matches}
    lost = {(d["event"], d["match_id"]) for d in dropped if d["match_id"] in ids}
    lost_opens = {m for e, m in lost if e == "match_status_ready"}
    lost_closes = {m for e, m in lost if e == "match_status_finished"}
    assert lost_opens and lost_closes, f"seed {DROP_SEED} dropped no READY or no FINISHED"
    assert opened.open_events_queued >= len(lost_opens), opened
    assert closed.close_events_queued >= len(lost_closes), closed
    assert list(opened.errors) == [] and list(closed.errors) == []
    assert await shared.match_channel_names() == []

    async def results_shown() -> bool:
        feeds = [await shared.feed_messages(m) for m in matches]
        return all(len(f) == 1 and " won " in f[0]["embeds"][0]["description"] for f in feeds)

    # Opened and closed by webhooks or by the poller, each match has one feed message.
    await eventually(results_shown, timeout=30, what="one feed message with a result per match")


async def test_repeated_and_reordered_webhooks_give_exactly_the_right_channels(
    shared: Harness,
) -> None:
    """Each webhook thrice, newest first or shuffled: open matches have their channels only."""
    # One send at a time, so the reversed order is the order attempts are recorded in.
    reverse = {"duplicate": 3, "reorder": "reverse", "seed": 0, "concurrency": 1}
    shuffle = {"duplicate": 3, "reorder": "shuffle", "seed": 5, "concurrency": 4}
    (
        stays_open,
        finished_reversed,
        opened_shuffled,
        finished_shuffled,
        finished_late,
    ) = await shared.new_matches(5, in_voice=0)
    try:
        await shared.faceit.set_faults(webhooks=reverse)
        for match in (finished_late, stays_open):
            await shared.faceit.play(match.match_id, ["CONFIGURING", "READY"])
        await shared.faceit.play(finished_reversed.match_id, ["CONFIGURING", "READY", "FINISHED"])
        await shared.faceit.flush_deliveries()
        await shared.faceit.set_faults(webhooks=shuffle)
        await shared.faceit.play(opened_shuffled.match_id, ["CONFIGURING", "READY"])
        await shared.faceit.play(finished_shuffled.match_id, ["CONFIGURING", "READY", "FINISHED"])
        await shared.faceit.flush_deliveries()
        await shared.faceit.set_status(finished_late.match_id, "FINISHED")
        deliveries = await shared.faceit.wait_for_deliveries()
    finally:
        await shared.faceit.clear_faults()
    everything = [stays_open, finished_reversed, opened_shuffled, finished_shuffled, finished_late]
    await shared.wait_until_processed(everything, {"match_status_ready"})
    await shared.wait_until_processed(
        [finished_reversed, finished_shuffled, finished_late], {"match_status_finished"}
    )
    await shared.wait_until_open([stays_open, opened_shuffled])

    assert await shared.match_channel_names() == expected_channel_names(
        [stays_open, opened_shuffled]
    )
    assert deliveries["held"] == 0
    reversed_ones = [  # its create went out before the faults were set
        a
        for a in deliveries["attempts"]
        if a["match_id"] == finished_reversed.match_id and a["event"] != "match_object_created"
    ]
    assert reversed_ones[0]["event"] == "match_status_finished", "webhooks were not reversed"
    assert {a["copy"] for a in reversed_ones} == {0, 1, 2}
    for match in everything:
        events = await shared.events(match.match_id)
        assert len({e.event_id for e in events}) == len(events), "a duplicate was stored twice"
        assert unsettled(events) == []
    await shared.set_status_all([stays_open, opened_shuffled], "FINISHED")
    await shared.wait_until_closed(everything)
    assert await shared.match_channel_names() == []


@pytest.mark.parametrize(
    ("address", "service", "rpc", "body"),
    [
        ("registry_grpc", "faceitvoice.v1.RegistryService", "ListPlayerLinks", {"page_size": 500}),
        ("voice_grpc", "faceitvoice.v1.VoiceService", "ListMatches", {"page_size": 500}),
        ("ingest_grpc", "faceitvoice.v1.IngestService", "ListEvents", {"page_size": 5}),
    ],
)
async def test_grpcurl_lists_describes_and_calls_each_service_with_the_token_only(
    shared: Harness, address: str, service: str, rpc: str, body: dict[str, object]
) -> None:
    """grpcurl: reflection lists and describes the service; a call needs the bearer token."""
    target = shared.info[address]
    token = shared.info["grpc_token"]

    listed = await grpcurl(target, "list")
    described = await grpcurl(target, "describe", service)
    called = await grpcurl(target, f"{service}/{rpc}", token=token, body=json.dumps(body))
    refused = await grpcurl(target, f"{service}/{rpc}", body=json.dumps(body))

    assert listed[0] == 0, listed[2]
    assert {service, "grpc.health.v1.Health"} <= set(listed[1].split())
    assert described[0] == 0, described[2]
    assert f"rpc {rpc} (" in described[1]
    assert called[0] == 0, called[2]
    assert isinstance(json.loads(called[1]), dict)
    assert refused[0] != 0
    assert "Unauthenticated" in refused[2]
