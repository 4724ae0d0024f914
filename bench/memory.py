"""Memory: each service's RSS idle, after a warm-up, and after many matches opened and closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import grpc
import grpc.aio
import psutil
from faceitvoice.v1 import voice_service_pb2, voice_service_pb2_grpc

from bench.end_to_end import BenchFailed
from bench.harness import Where, link_players, match_ids, running_system, two_teams
from bench.stats import ratio
from bench.webhooks import Roster, WebhookSender, match_event
from sandbox.discord.client import DiscordSandboxClient
from sandbox.system import System
from services.kit.grpc_client import GrpcClients

SERVICES = ("ingest", "voice", "registry")
POLL_S = 0.02
MATCH_TIMEOUT_S = 30.0
TARGET_GROWTH = 0.10
OPEN = voice_service_pb2.VOICE_MATCH_STATE_OPEN
CLOSED = voice_service_pb2.VOICE_MATCH_STATE_CLOSED


@dataclass(frozen=True)
class MemorySizes:
    """Warm-up matches, measured matches, how many run at once, players per match."""

    warmup: int = 200
    matches: int = 1000
    concurrency: int = 8
    players: int = 10


QUICK = MemorySizes(warmup=5, matches=10, concurrency=4)


def rss_mib(system: System) -> dict[str, float]:
    """Resident set size of each service process, in MiB."""
    sizes = {}
    for name in SERVICES:
        pid = system.processes[name].pid
        if pid is None:
            raise BenchFailed(f"{name} is not running")
        sizes[name] = round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    return sizes


class MatchDriver:
    """Plays matches through webhooks: ready, wait for both channels, finished, wait closed."""

    def __init__(
        self, sender: WebhookSender, voice: voice_service_pb2_grpc.VoiceServiceStub, hub_id: str
    ) -> None:
        self._sender = sender
        self._voice = voice
        self._hub_id = hub_id

    async def _state(self, match_id: str) -> voice_service_pb2.VoiceMatch | None:
        try:
            response = await self._voice.GetMatch(
                voice_service_pb2.GetMatchRequest(match_id=match_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:  # until ingest delivered the open
                return None
            raise
        return response.match

    async def _until(self, match_id: str, state: int, channels: int) -> None:
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while True:
            match = await self._state(match_id)
            if (
                match is not None
                and match.state == state
                and sum(1 for c in match.channels if c.channel_id) == channels
            ):
                return
            if time.monotonic() > deadline:
                raise BenchFailed(f"{match_id}: not in state {state} with {channels} channels")
            await asyncio.sleep(POLL_S)  # polling interval

    async def play(self, match_id: str, teams: Sequence[Sequence[Roster]]) -> None:
        """One match's whole life, through ingest, voice, registry and Discord."""
        for event, version in (("match_status_ready", 1), ("match_status_finished", 2)):
            await self._sender.send(
                match_event(event, match_id, version=version, hub_id=self._hub_id, teams=teams)
            )
            if version == 1:
                await self._until(match_id, OPEN, 2)
            else:
                await self._until(match_id, CLOSED, 0)

    async def play_many(
        self, ids: Sequence[str], teams: Sequence[Sequence[Roster]], concurrency: int
    ) -> None:
        """Play every match of `ids`, `concurrency` at a time."""
        queue = iter(ids)

        async def lane() -> None:
            for match_id in queue:
                await self.play(match_id, teams)

        await asyncio.gather(*(lane() for _ in range(concurrency)))


async def run(where: Where, sizes: MemorySizes) -> dict[str, Any]:
    """RSS idle, after `warmup` matches, after `matches` more; all opened and closed."""
    async with running_system(where, "memory") as system:
        info = system.info
        idle = rss_mib(system)
        players = await link_players(info, sizes.players)
        teams = two_teams(players)
        clients = GrpcClients(token=info["grpc_token"], timeout=10.0)
        try:
            async with (
                DiscordSandboxClient(info["discord_url"]) as discord,
                aiohttp.ClientSession() as http,
            ):
                # Rate limits are not what this measures; they would only make it slower.
                await discord.set_rate_limits(global_limit=100_000, default=(100_000, 1.0))
                driver = MatchDriver(
                    WebhookSender(
                        http, info["webhook_url"], info["webhook_header"], info["webhook_secret"]
                    ),
                    voice_service_pb2_grpc.VoiceServiceStub(clients.channel(info["voice_grpc"])),
                    info["hub_id"],
                )
                ids = match_ids(sizes.warmup + sizes.matches)
                await driver.play_many(ids[: sizes.warmup], teams, sizes.concurrency)
                warm = rss_mib(system)
                began = time.perf_counter()
                await driver.play_many(ids[sizes.warmup :], teams, sizes.concurrency)
                took = time.perf_counter() - began
                after = rss_mib(system)
                leftovers = [
                    c
                    for c in (await discord.get_guild(info["guild_id"]))["channels"]
                    if c["name"].startswith("Match ")
                ]
        finally:
            await clients.close()
    growth = {name: ratio(after[name] - warm[name], warm[name]) for name in SERVICES}
    return {
        "sizes": asdict(sizes),
        "rss_mib": {"idle": idle, "after_warmup": warm, "after_matches": after},
        "growth_after_warmup": growth,
        "matches_per_s": round(sizes.matches / took, 1),
        "leftover_channels": len(leftovers),
        "targets": {
            f"{name}_back_within_10pct": {
                "target": "RSS after the matches <= 110% of its post-warm-up level",
                "value": growth[name],
                "pass": growth[name] <= TARGET_GROWTH,
            }
            for name in SERVICES
        },
    }
