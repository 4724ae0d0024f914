"""What every benchmark stands on: the whole system started for it, and linked players."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from faceitvoice.v1 import registry_service_pb2, registry_service_pb2_grpc

from bench.webhooks import Roster, WebhookSender
from sandbox.discord.client import DiscordSandboxClient
from sandbox.faceit.client import FaceitSandboxClient
from sandbox.system import System, SystemOptions
from services.kit.grpc_client import GrpcClients

REPO_ROOT = Path(__file__).resolve().parent.parent
"""Where `python -m bench.*` children run: `bench` is not an installed package."""

# The reconciliation poll would add its own Data API traffic in the middle of a measurement.
POLL_INTERVAL_S = 3600.0


@dataclass(frozen=True)
class Where:
    """Where a benchmark runs: the embedded Postgres data dir (or a server) and the logs."""

    data_dir: Path
    log_dir: Path
    database_url: str | None = None


@asynccontextmanager
async def running_system(where: Where, name: str, **options: Any) -> AsyncIterator[System]:
    """The whole system (sandboxes, Postgres, three service processes) for one benchmark."""
    system = System(
        SystemOptions(
            data_dir=where.data_dir,
            log_dir=where.log_dir / name,
            database_url=where.database_url,
            poll_interval_s=POLL_INTERVAL_S,
            # The benchmarks measure matches; their players are linked by LinkPlayer (nickname).
            **{"link_verification": "nickname", **options},
        )
    )
    try:
        await system.start()
        yield system
    finally:
        await system.stop()


@dataclass(frozen=True)
class LinkedPlayer:
    """A FACEIT player linked in the registry to a member of the sandbox guild."""

    player_id: str
    nickname: str
    user_id: str

    @property
    def roster(self) -> Roster:
        """The player as a webhook roster entry."""
        return Roster(self.player_id, self.nickname)


async def link_players(info: dict[str, Any], count: int) -> list[LinkedPlayer]:
    """`count` FACEIT players, each a guild member linked through RegistryService.LinkPlayer."""
    tag = secrets.token_hex(3)
    clients = GrpcClients(token=info["grpc_token"], timeout=10.0)
    players = []
    try:
        stub = registry_service_pb2_grpc.RegistryServiceStub(clients.channel(info["registry_grpc"]))
        async with (
            DiscordSandboxClient(info["discord_url"]) as discord,
            FaceitSandboxClient(info["faceit_url"]) as faceit,
        ):
            for index in range(count):
                nickname = f"bench_{tag}_{index}"
                player = await faceit.create_player(nickname)
                member = await discord.add_member(info["guild_id"], nickname.replace("_", "-"))
                await stub.LinkPlayer(
                    registry_service_pb2.LinkPlayerRequest(
                        discord_user_id=int(member["user_id"]), faceit_nickname=nickname
                    )
                )
                players.append(LinkedPlayer(player["player_id"], nickname, member["user_id"]))
    finally:
        await clients.close()
    return players


def two_teams(players: Sequence[LinkedPlayer]) -> list[list[Roster]]:
    """The players split in two halves, as the two rosters of a match."""
    half = len(players) // 2
    return [[p.roster for p in players[:half]], [p.roster for p in players[half:]]]


def match_ids(count: int) -> list[str]:
    """`count` match ids whose first 8 characters differ (voice names channels by them)."""
    tag = secrets.token_hex(2)[:3]
    return [f"{tag}{index:05d}-{secrets.token_hex(4)}" for index in range(count)]


@asynccontextmanager
async def in_the_lobby(
    info: dict[str, Any], players: Sequence[LinkedPlayer], latency_s: float
) -> AsyncIterator[tuple[DiscordSandboxClient, WebhookSender]]:
    """The Discord sandbox's client and a webhook sender, with `players` waiting in the lobby
    voice channel and every Discord REST call delayed `latency_s` by the sandbox."""
    async with (
        DiscordSandboxClient(info["discord_url"]) as discord,
        aiohttp.ClientSession() as http,
    ):
        for player in players:
            await discord.set_voice(info["guild_id"], player.user_id, info["lobby_channel_id"])
        await discord.add_latency(latency_s)
        yield (
            discord,
            WebhookSender(
                http, info["webhook_url"], info["webhook_header"], info["webhook_secret"]
            ),
        )
