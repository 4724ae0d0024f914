"""The reconciliation poller over many open matches: Data API requests and polls per coverage."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from faceitvoice.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    voice_service_pb2,
    voice_service_pb2_grpc,
)

from bench.end_to_end import until
from bench.harness import Where, running_system
from sandbox.faceit.client import FaceitSandboxClient
from services.ingest.settings import IngestSettings
from services.kit.grpc_client import GrpcClients

logger = logging.getLogger(__name__)

CREATING_LANES = 16
POLL_INTERVAL_S: float = IngestSettings.model_fields["faceit_poll_interval_s"].default
MAX_REQUESTS: int = IngestSettings.model_fields["faceit_poll_max_requests"].default


@dataclass(frozen=True)
class PollSizes:
    """Open matches at each step (cumulative)."""

    counts: tuple[int, ...] = (10, 100, 1000)


QUICK = PollSizes(counts=(3,))


class _Poll:
    """Live FACEIT matches made open in voice by the poller itself, then full coverages."""

    def __init__(self, clients: GrpcClients, info: dict[str, Any]) -> None:
        self._ingest = ingest_service_pb2_grpc.IngestServiceStub(
            clients.channel(info["ingest_grpc"])
        )
        self._voice = voice_service_pb2_grpc.VoiceServiceStub(clients.channel(info["voice_grpc"]))

    async def poll(self) -> ingest_service_pb2.RunPollResponse:
        """One poll now."""
        return await self._ingest.RunPoll(ingest_service_pb2.RunPollRequest(), timeout=300.0)

    async def open_in_voice(self) -> int:
        """How many matches voice holds open."""
        count, token = 0, ""
        while True:
            page = await self._voice.ListMatches(
                voice_service_pb2.ListMatchesRequest(page_size=500, page_token=token)
            )
            count += len(page.matches)
            token = page.next_page_token
            if not token:
                return count

    async def coverage(self, count: int) -> dict[str, Any]:
        """Polls until every open match was checked once: what that took."""
        polls, requests, busy_ms, checked = 0, 0, 0, 0
        while checked < count:
            report = await self.poll()
            polls += 1
            requests += report.api_requests
            busy_ms += report.duration_ms
            checked += report.open_matches_checked
            if report.open_events_queued or report.close_events_queued:
                raise RuntimeError(f"a steady poll queued events: {report}")
        return {
            "open_matches": count,
            "polls": polls,
            "api_requests": requests,
            "checks": checked,
            "requests_per_check": round(requests / checked, 2),
            "busy_s": round(busy_ms / 1000, 3),
            "coverage_s_at_interval": round(polls * POLL_INTERVAL_S, 1),
        }


async def _live_matches(faceit: FaceitSandboxClient, hub_id: str, count: int) -> None:
    """`count` matches of the hub, ONGOING with a player a team, nobody of them linked."""
    first = await faceit.create_player(f"poll-{time.monotonic_ns()}-a")
    second = await faceit.create_player(f"poll-{time.monotonic_ns()}-b")
    teams = [[first["player_id"]], [second["player_id"]]]
    remaining = iter(range(count))

    async def lane() -> None:
        for _ in remaining:
            match = await faceit.create_match(teams, hub_id=hub_id, webhook=False)
            await faceit.set_status(match["match_id"], "ONGOING", webhook=False)

    await asyncio.gather(*(lane() for _ in range(CREATING_LANES)))


async def run(where: Where, sizes: PollSizes) -> dict[str, Any]:
    """For each count: live matches up to it, opened in voice by a poll, then a full coverage."""
    async with running_system(where, "poll_coverage") as system:
        info = system.info
        clients = GrpcClients(token=info["grpc_token"], timeout=60.0)
        steps = []
        try:
            poller = _Poll(clients, info)
            async with FaceitSandboxClient(info["faceit_url"]) as faceit:
                made = 0
                for count in sizes.counts:
                    await _live_matches(faceit, info["hub_id"], count - made)
                    made = count

                    async def all_open(count: int = count) -> bool:
                        if await poller.open_in_voice() >= count:
                            return True
                        await poller.poll()  # queues opens for the live matches voice lacks
                        return False

                    await until(all_open, f"{count} matches open in voice", 300.0)
                    steps.append(await poller.coverage(count))
        finally:
            await clients.close()
    largest = steps[-1]
    return {
        "sizes": asdict(sizes),
        "poll_interval_s": POLL_INTERVAL_S,
        "max_requests_per_poll": MAX_REQUESTS,
        "steps": steps,
        "targets": {
            "requests_per_check_flat": {
                "target": "Data API requests per open match checked <= 1.2 (hub listings"
                f" included; {largest['open_matches']} open)",
                "value": largest["requests_per_check"],
                "pass": largest["requests_per_check"] <= 1.2,
            }
        },
    }


def section(outcome: dict[str, Any]) -> list[str]:
    """The document's part for this benchmark."""
    lines = [
        "## Poller coverage",
        "",
        "Live matches of the hub in the FACEIT sandbox (ONGOING, nobody linked, so voice opens"
        " them without channels), made open in voice by the poller itself. Then polls"
        " (`IngestService.RunPoll`, one after the other) until each open match was checked once:"
        " the polls it took, the checks they made (each poll checks as many as its budget allows,"
        " in a rotation), their Data API requests (hub listings included) and busy time, and"
        " the time a coverage takes at the default poll interval"
        f" ({outcome['poll_interval_s']:g} s; at most {outcome['max_requests_per_poll']}"
        " requests a poll, FACEIT_POLL_MAX_REQUESTS).",
        "",
        "| open matches | polls | checks | Data API requests | requests per check | busy s "
        "| coverage at the interval s |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in outcome["steps"]:
        lines.append(
            f"| {step['open_matches']} | {step['polls']} | {step['checks']} "
            f"| {step['api_requests']} | {step['requests_per_check']} | {step['busy_s']} "
            f"| {step['coverage_s_at_interval']} |"
        )
    return [*lines, ""]
