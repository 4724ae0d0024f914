"""End to end: webhook accepted -> last player moved, beside the serial Discord calls floor."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.harness import (
    LinkedPlayer,
    Where,
    in_the_lobby,
    link_players,
    match_ids,
    running_system,
    two_teams,
)
from bench.stats import ratio
from bench.webhooks import WebhookSender, match_event
from sandbox.discord.client import DiscordSandboxClient

logger = logging.getLogger(__name__)

CREATE_ROUTE = "/guilds/{guild_id}/channels"
MOVE_ROUTE = "/guilds/{guild_id}/members/{user_id}"
CHANNEL_ROUTE = "/channels/{channel_id}"
POLL_S = 0.005
GLOBAL_WINDOW_S = 1.0  # Discord's global rate limit counts requests per second
STEP_TIMEOUT_S = 30.0
TARGET_RATIO = 1.1
OWN_TARGET_MS = 8.0


class BenchFailed(Exception):
    """Something the benchmark waits for did not happen in time."""


@dataclass(frozen=True)
class EndToEndSizes:
    """Measured matches (after one warm-up match), players, and the Discord REST latency."""

    samples: int = 10
    players: int = 10
    latency_s: float = 0.05


QUICK = EndToEndSizes(samples=2)


def serial_floor_layers(calls: Sequence[dict[str, Any]]) -> int:
    """How many Discord calls must happen one after the other for what `calls` did.

    A move needs its channel to exist, so a create and a move are two layers; the creates of
    the two teams are independent (one layer), and so are the moves of the players.
    """
    created = any(c["method"] == "POST" and c["route"] == CREATE_ROUTE for c in calls)
    moved = any(c["method"] == "PATCH" and c["route"] == MOVE_ROUTE for c in calls)
    return int(created) + int(moved)


def own_phases(phases_ms: dict[str, float], latency_ms: float) -> dict[str, float]:
    """Our own time in each phase: the creates and the moves less the latency they wait."""
    own = dict(phases_ms)
    for name in ("creates", "moves"):
        if name in own:
            own[name] = round(own[name] - latency_ms, 1)
    return own


def phases(calls: Sequence[dict[str, Any]], accepted: float) -> dict[str, float]:
    """Where the time went, from the audit times: before the first create, the creates, the gap
    until the first move, the moves (first arrival to last answer)."""
    creates = [c for c in calls if c["method"] == "POST" and c["route"] == CREATE_ROUTE]
    moves = [c for c in calls if c["method"] == "PATCH" and c["route"] == MOVE_ROUTE]
    if not creates or not moves:
        return {}
    marks = [
        accepted,
        min(c["received_at"] for c in creates),
        max(c["answered_at"] for c in creates),
        min(m["received_at"] for m in moves),
        max(m["answered_at"] for m in moves),
    ]
    names = ("to_first_create", "creates", "creates_to_first_move", "moves")
    spans = zip(names, marks[:-1], marks[1:], strict=True)
    return {name: round((end - start) * 1000, 1) for name, start, end in spans}


async def last_seq(discord: DiscordSandboxClient) -> int:
    """The sequence number of the sandbox's latest audit entry (0 when none)."""
    entries = await discord.audit_log()
    return int(entries[-1]["seq"]) if entries else 0


async def answered_moves(discord: DiscordSandboxClient, after: int) -> list[dict[str, Any]]:
    """The member moves the sandbox answered with success after audit entry `after`."""
    moves = await discord.audit_log(method="PATCH", route=MOVE_ROUTE, after=after)
    return [m for m in moves if m["status"] < 300]


async def until(probe: Any, what: str, timeout_s: float = STEP_TIMEOUT_S) -> Any:
    """`probe()`'s first truthy value, polled; BenchFailed after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchFailed(f"{what}: not within {timeout_s:.0f}s")
        await asyncio.sleep(POLL_S)  # polling interval


async def _one_match(
    discord: DiscordSandboxClient,
    sender: WebhookSender,
    info: dict[str, Any],
    players: Sequence[LinkedPlayer],
    match_id: str,
    latency_s: float,
) -> dict[str, Any]:
    guild_id, lobby = info["guild_id"], info["lobby_channel_id"]
    teams = two_teams(players)
    after = await last_seq(discord)
    await sender.send(
        match_event("match_status_ready", match_id, version=1, hub_id=info["hub_id"], teams=teams)
    )
    accepted = time.monotonic()  # the sandbox's audit times are on this clock too

    async def all_moved() -> list[dict[str, Any]]:
        done = await answered_moves(discord, after)
        return done if len(done) >= len(players) else []

    moves = await until(all_moved, f"{match_id}: every player moved")
    last = max(m["seq"] for m in moves)
    calls = [c for c in await discord.audit_log(after=after) if c["seq"] <= last]
    # From the sandbox's own times: when the last move was answered, not when a poll saw it.
    elapsed = max(m["answered_at"] for m in moves) - accepted

    await sender.send(
        match_event(
            "match_status_finished", match_id, version=2, hub_id=info["hub_id"], teams=teams
        )
    )

    async def back_in_lobby() -> bool:
        state = await discord.get_guild(guild_id)
        voice = state["voice_states"]
        gone = not any(c["name"].startswith(f"Match {match_id[:8]}") for c in state["channels"])
        return gone and all(voice.get(p.user_id) == lobby for p in players)

    await until(back_in_lobby, f"{match_id}: closed, players back in the lobby")
    # Pacing, not waiting for readiness: a match and its close make about 24 Discord calls, so
    # back-to-back samples would exceed Discord's global 50 requests/s and measure 429 waits
    # instead of the path. Each sample starts in a fresh global window, as a lone match would.
    await asyncio.sleep(GLOBAL_WINDOW_S)
    floor_ms = serial_floor_layers(calls) * latency_s * 1000
    return {
        "match_id": match_id,
        "elapsed_ms": round(elapsed * 1000, 1),
        "own_ms": round(elapsed * 1000 - floor_ms, 1),
        "phases_ms": phases(calls, accepted),
        "floor_layers": serial_floor_layers(calls),
        "calls": dict(Counter(f"{c['method']} {c['route']}" for c in calls)),
        "rate_limited": sum(1 for c in calls if c["status"] == 429),
    }


async def run(where: Where, sizes: EndToEndSizes) -> dict[str, Any]:
    """One warm-up match, then `samples` matches, each closed before the next one starts."""
    async with running_system(where, "end_to_end") as system:
        info = system.info
        players = await link_players(info, sizes.players)
        async with in_the_lobby(info, players, sizes.latency_s) as (discord, sender):
            results = [
                await _one_match(discord, sender, info, players, match_id, sizes.latency_s)
                for match_id in match_ids(sizes.samples + 1)
            ]
    measured = results[1:]
    elapsed = [r["elapsed_ms"] for r in measured]
    layers = max(r["floor_layers"] for r in measured)
    floor_ms = layers * sizes.latency_s * 1000
    median = statistics.median(elapsed)
    phase_names = measured[0]["phases_ms"].keys()
    median_phases = {
        name: statistics.median(r["phases_ms"][name] for r in measured) for name in phase_names
    }
    own = statistics.median(r["own_ms"] for r in measured)
    return {
        "sizes": asdict(sizes),
        "samples": measured,
        "warmup": results[0],
        "elapsed_ms": {"p50": median, "min": min(elapsed), "max": max(elapsed)},
        "phases_ms_p50": median_phases,
        "floor_layers": layers,
        "floor_ms": floor_ms,
        "ratio_p50": ratio(median, floor_ms),
        "own_ms_p50": own,
        "own_phases_ms_p50": own_phases(median_phases, sizes.latency_s * 1000),
        "targets": {
            "end_to_end_vs_floor": {
                "target": f"<= {TARGET_RATIO}x the serial Discord floor (median)",
                "value": ratio(median, floor_ms),
                "pass": ratio(median, floor_ms) <= TARGET_RATIO,
            },
            "own_time": {
                "target": f"own time per match <= {OWN_TARGET_MS:g} ms (median): end to end"
                " less the injected Discord latency of the serial calls",
                "value": own,
                "pass": own <= OWN_TARGET_MS,
            },
        },
    }
