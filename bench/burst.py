"""Burst: many matches going ready within a second while channel creation is rate-limited."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from faceitvoice.v1 import ingest_service_pb2, ingest_service_pb2_grpc

from bench.end_to_end import CREATE_ROUTE, BenchFailed
from bench.harness import Where, link_players, match_ids, running_system, two_teams
from bench.stats import ratio
from bench.webhooks import WebhookSender, match_event
from sandbox.discord.client import DiscordSandboxClient
from services.kit.grpc_client import GrpcClients

logger = logging.getLogger(__name__)

POLL_S = 0.05
TARGET_RATIO = 1.1
UNSETTLED = (ingest_service_pb2.EVENT_STATUS_PENDING, ingest_service_pb2.EVENT_STATUS_FAILED)


@dataclass(frozen=True)
class BurstSizes:
    """Matches sent within `window_s`, and the channel-creation limit: `limit` per `per_s`."""

    matches: int = 200
    window_s: float = 1.0
    limit: int = 10
    per_s: float = 1.0
    players: int = 4


QUICK = BurstSizes(matches=10)


def minimum_seconds(channels: int, limit: int, per_s: float) -> float:
    """The least time a fixed-window limit of `limit` per `per_s` allows for `channels` creates.

    The first window opens with the first create; the last create falls in window
    ceil(channels / limit), which opens (that - 1) windows later.
    """
    return (math.ceil(channels / limit) - 1) * per_s


async def _unsettled(info: dict[str, Any]) -> int:
    """Events ingest still has to deliver, or gave up on."""
    clients = GrpcClients(token=info["grpc_token"], timeout=10.0)
    try:
        stub = ingest_service_pb2_grpc.IngestServiceStub(clients.channel(info["ingest_grpc"]))
        total = 0
        for status in UNSETTLED:
            page = await stub.ListEvents(
                ingest_service_pb2.ListEventsRequest(status=status, page_size=500)
            )
            total += len(page.events)
    finally:
        await clients.close()
    return total


async def run(where: Where, sizes: BurstSizes) -> dict[str, Any]:
    """Send the burst, time until every channel exists, then check none lost or doubled."""
    route_limit = f"POST {CREATE_ROUTE}={sizes.limit}/{sizes.per_s:g}"
    async with running_system(
        where, "burst", discord_args=("--route-limit", route_limit)
    ) as system:
        info = system.info
        players = await link_players(info, sizes.players)
        teams = two_teams(players)
        ids = match_ids(sizes.matches)
        expected = 2 * len(ids)
        prefixes = {f"Match {m[:8]}" for m in ids}
        minimum = minimum_seconds(expected, sizes.limit, sizes.per_s)
        async with (
            DiscordSandboxClient(info["discord_url"]) as discord,
            aiohttp.ClientSession() as http,
        ):
            sender = WebhookSender(
                http, info["webhook_url"], info["webhook_header"], info["webhook_secret"]
            )
            entries = await discord.audit_log()
            after = int(entries[-1]["seq"]) if entries else 0
            start = time.perf_counter()

            async def send(index: int, match_id: str) -> None:
                await asyncio.sleep(index * sizes.window_s / len(ids))  # the burst's schedule
                body = match_event(
                    "match_status_ready", match_id, version=1, hub_id=info["hub_id"], teams=teams
                )
                await sender.send(body)

            await asyncio.gather(*(send(i, m) for i, m in enumerate(ids)))
            sent_s = time.perf_counter() - start

            def ours(state: dict[str, Any]) -> list[dict[str, Any]]:
                return [c for c in state["channels"] if c["name"][:14] in prefixes]

            deadline = start + minimum * 3 + 60.0
            while len(ours(await discord.get_guild(info["guild_id"]))) < expected:
                if time.perf_counter() > deadline:
                    raise BenchFailed(f"not every one of {expected} channels exists in time")
                await asyncio.sleep(POLL_S)  # polling interval
            elapsed = time.perf_counter() - start
            while await _unsettled(info):
                if time.perf_counter() > deadline:
                    raise BenchFailed("ingest did not settle every burst event in time")
                await asyncio.sleep(POLL_S)  # polling interval
            channels = ours(await discord.get_guild(info["guild_id"]))
            creates = await discord.audit_log(method="POST", route=CREATE_ROUTE, after=after)
    per_match = Counter(c["name"][:14] for c in channels)
    lost = sorted(p for p in prefixes if per_match[p] < 2)
    doubled = sorted(p for p in prefixes if per_match[p] > 2)
    statuses = Counter(str(c["status"]) for c in creates)
    value = ratio(elapsed, minimum)
    return {
        "sizes": asdict(sizes),
        "channels_expected": expected,
        "channels_found": len(channels),
        "sent_within_s": round(sent_s, 3),
        "elapsed_s": round(elapsed, 3),
        "minimum_s": minimum,
        "ratio": value,
        "lost_matches": lost,
        "doubled_matches": doubled,
        "create_calls_by_status": dict(sorted(statuses.items())),
        "targets": {
            "burst_vs_rate_limit_minimum": {
                "target": f"<= {TARGET_RATIO}x the rate-limit minimum",
                "value": value,
                "pass": value <= TARGET_RATIO,
            },
            "none_lost_none_doubled": {
                "target": "every match has exactly its 2 channels",
                "value": f"{len(lost)} lost, {len(doubled)} doubled",
                "pass": not lost and not doubled and len(channels) == expected,
            },
        },
    }
