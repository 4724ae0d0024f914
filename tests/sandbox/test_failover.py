"""Two voice replicas over the running system: one acts, the other takes over when it dies or
pauses, and nothing is doubled or lost."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from faceitvoice.v1 import voice_service_pb2, voice_service_pb2_grpc

from sandbox.system import SystemOptions
from services.kit.healthcheck import check_health
from services.voice.__main__ import LEASE_LOST_EXIT
from services.voice.server import REPLICA_HEALTH
from tests.sandbox.system_support import FAST_RETRIES, Harness, expected_channel_names
from tests.support import eventually

pytestmark = pytest.mark.asyncio(loop_scope="function")

LEASE_TIMEOUT_S = 4.0
LEASE_RENEW_S = 1.0
TAKEOVER_BOUND_S = 3.0
"""What a takeover may add to the lease timeout: gateway connect, reconciliation, a loaded
machine (two cores shared by every test process)."""


@pytest_asyncio.fixture
async def replicas(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """A system with two voice replicas (`voice` holds the lease, `voice-2` stands by)."""
    options = SystemOptions(
        log_dir=tmp_path,
        database_url=database_url,
        poll_interval_s=3600.0,
        link_verification="nickname",  # these tests are about voice, not linking
        voice_replicas=2,
        voice_lease_timeout_s=LEASE_TIMEOUT_S,
        voice_lease_renew_s=LEASE_RENEW_S,
        extra_env={"ingest": FAST_RETRIES},
    )
    async with Harness.running(options) as harness:
        yield harness


async def serving(harness: Harness, name: str) -> bool:
    """Whether the voice replica `name` reports SERVING."""
    return (await check_health(harness.info[f"{name}_grpc"], timeout=1.0)).serving


async def takeover(harness: Harness, *, since: float) -> float:
    """Wait (lease timeout plus the bound at most) until `voice-2` serves; seconds since `since`."""
    await eventually(
        lambda: serving(harness, "voice-2"),
        timeout=LEASE_TIMEOUT_S + TAKEOVER_BOUND_S,
        interval=0.05,
        what="the standby to serve",
    )
    return time.monotonic() - since


async def mutations_after(harness: Harness, seq: int) -> list[str]:
    """The Discord writes (anything but GET) the sandbox answered after audit entry `seq`."""
    entries = await harness.discord.audit_log(after=seq)
    return [f"{e['method']} {e['path']}" for e in entries if e["method"] != "GET"]


async def last_audit_seq(harness: Harness) -> int:
    """The sequence number of the last REST call the sandbox recorded (0 when none)."""
    entries = await harness.discord.audit_log()
    return int(entries[-1]["seq"]) if entries else 0


async def test_of_two_replicas_exactly_one_acts_and_ingest_reaches_it(replicas: Harness) -> None:
    """One replica SERVING with a gateway session, the other NOT_SERVING, UNAVAILABLE, off the
    gateway; a match goes through ingest to the active one and gets its channels once."""
    assert await serving(replicas, "voice")
    assert not await serving(replicas, "voice-2")
    for name in ("voice", "voice-2"):  # what Kubernetes probes: both replicas are fine
        assert (await check_health(replicas.info[f"{name}_grpc"], REPLICA_HEALTH)).serving
    standby = voice_service_pb2_grpc.VoiceServiceStub(
        replicas.grpc.channel(replicas.info["voice-2_grpc"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await standby.ListMatches(voice_service_pb2.ListMatchesRequest())
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    sessions = (await replicas.discord.gateway())["sessions"]
    assert len([s for s in sessions if s["connected"]]) == 1

    match = await replicas.new_match(in_voice=2)
    await replicas.faceit.set_status(match.match_id, "READY")
    await replicas.wait_until_open([match])
    await replicas.wait_until_processed([match], {"match_status_ready"})

    assert await replicas.match_channel_names() == expected_channel_names([match])
    creates = await replicas.discord.audit_log(method="POST", route="/guilds/{guild_id}/channels")
    assert len(creates) == 2
    assert not await serving(replicas, "voice-2")


async def test_a_paused_active_is_replaced_and_writes_nothing_once_resumed(
    replicas: Harness,
) -> None:
    """SIGSTOP the active: the standby serves within the lease timeout plus a bound and moves a
    player who joins meanwhile; SIGCONT the old one: it writes nothing to Discord and exits,
    and the match keeps exactly its channels."""
    match = await replicas.new_match(team_size=2, in_voice=1)
    await replicas.faceit.set_status(match.match_id, "READY")
    await replicas.wait_until_open([match])
    old = replicas.system.processes["voice"]

    old.send_signal(signal.SIGSTOP)
    paused = time.monotonic()
    try:
        took_over_s = await takeover(replicas, since=paused)
        # A player who was not in voice joins the lobby while the old active sleeps: its
        # gateway session queues the event too, and a stale replica would move them again.
        late = next(p for p in match.teams[0] if p.user_id not in match.in_voice)
        await replicas.discord.set_voice(replicas.guild_id, late.user_id, replicas.lobby_id)
        team_channel = await _team_channel(replicas, match.prefix, match.team_names[0])

        async def moved_in() -> bool:
            state = await replicas.guild()
            return bool(state["voice_states"].get(late.user_id) == team_channel)

        await eventually(moved_in, timeout=10, what="the new active to move the late player")
        seq = await last_audit_seq(replicas)
    finally:
        old.send_signal(signal.SIGCONT)

    assert await asyncio.wait_for(old.wait(), timeout=LEASE_TIMEOUT_S * 3) == LEASE_LOST_EXIT
    assert await mutations_after(replicas, seq) == []
    assert took_over_s <= LEASE_TIMEOUT_S + TAKEOVER_BOUND_S
    assert await replicas.match_channel_names() == expected_channel_names([match])
    await replicas.faceit.set_status(match.match_id, "FINISHED")
    await replicas.wait_until_closed([match])


async def test_killing_the_active_during_a_burst_loses_and_doubles_no_match(
    replicas: Harness,
) -> None:
    """kill -9 the active while 8 matches go READY: the standby serves within the lease timeout
    plus a bound; every match ends with exactly its two channels, players in them."""
    matches = await replicas.new_matches(8, in_voice=1)

    burst = asyncio.gather(*(replicas.faceit.set_status(m.match_id, "READY") for m in matches))
    await eventually(replicas.match_channel_names, timeout=20, what="voice at work on the burst")
    await replicas.system.processes["voice"].kill()
    killed = time.monotonic()
    await burst
    took_over_s = await takeover(replicas, since=killed)
    await replicas.wait_until_open(matches)
    await replicas.wait_until_processed(matches, {"match_status_ready"})

    assert took_over_s <= LEASE_TIMEOUT_S + TAKEOVER_BOUND_S
    assert await replicas.match_channel_names() == expected_channel_names(matches)
    await replicas.set_status_all(matches, "FINISHED")
    await replicas.wait_until_closed(matches)
    assert await replicas.match_channel_names() == []


async def _team_channel(harness: Harness, prefix: str, team_name: str) -> str:
    state = await harness.guild()
    (channel,) = [c["id"] for c in state["channels"] if c["name"] == f"{prefix} · {team_name}"]
    return str(channel)
