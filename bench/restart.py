"""Voice restarting with open matches: time until every channel and player is reconciled."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.end_to_end import (
    CHANNEL_ROUTE,
    CREATE_ROUTE,
    MOVE_ROUTE,
    BenchFailed,
    answered_moves,
    last_seq,
    until,
)
from bench.harness import LinkedPlayer, Where, in_the_lobby, link_players, match_ids, running_system
from bench.simultaneous import GLOBAL_LIMIT, ROUTE_LIMIT, WINDOW_S, minimum_seconds
from bench.stats import ratio
from bench.webhooks import WebhookSender, match_event
from sandbox.discord.client import DiscordSandboxClient

logger = logging.getLogger(__name__)

TARGET_RATIO = 1.2
OPENING_LANES = 16
UNLIMITED = 100_000
READY_LINE = "gateway ready: reconciling"
REPAIRS = {("GET", CHANNEL_ROUTE), ("POST", CREATE_ROUTE), ("PATCH", MOVE_ROUTE)}


@dataclass(frozen=True)
class RestartSizes:
    """Open matches at each restart (cumulative), and the Discord REST latency."""

    counts: tuple[int, ...] = (10, 100, 500)
    latency_s: float = 0.05


QUICK = RestartSizes(counts=(3,))


@dataclass(frozen=True)
class _Match:
    match_id: str
    player: LinkedPlayer

    @property
    def prefix(self) -> str:
        return f"Match {self.match_id[:8]}"


class _Restarts:
    """Opens matches (one linked player each), takes their Discord state away, restarts voice."""

    def __init__(self, system: Any, discord: DiscordSandboxClient, sender: WebhookSender) -> None:
        self._system = system
        self._info = system.info
        self._discord = discord
        self._sender = sender

    async def open(self, matches: Sequence[_Match]) -> None:
        """Open the matches (limits lifted: this is set-up) and wait until their players sit."""
        queue = iter(matches)

        async def lane() -> None:
            for match in queue:
                await self._sender.send(
                    match_event(
                        "match_status_ready",
                        match.match_id,
                        version=1,
                        hub_id=self._info["hub_id"],
                        teams=[[match.player.roster], []],
                    )
                )

        await asyncio.gather(*(lane() for _ in range(OPENING_LANES)))
        await until(lambda: self._reconciled(matches), "matches opened", 300.0)

    async def _reconciled(self, matches: Sequence[_Match]) -> bool:
        state = await self._discord.get_guild(self._info["guild_id"])
        channels = {c["name"][:14]: c["id"] for c in state["channels"]}
        voice = state["voice_states"]
        return all(
            m.prefix in channels and voice.get(m.player.user_id) == channels[m.prefix]
            for m in matches
        )

    async def _moved(self, after: int, count: int) -> bool:
        return len(await answered_moves(self._discord, after)) >= count

    async def restart(self, matches: Sequence[_Match], latency_s: float) -> dict[str, Any]:
        """Stop voice; delete every match's channel and put its player in the lobby; start
        voice under Discord's limits and time it until every match is as it was."""
        await self._system.processes["voice"].stop()
        guild_id, lobby = self._info["guild_id"], self._info["lobby_channel_id"]
        state = await self._discord.get_guild(guild_id)
        prefixes = {m.prefix for m in matches}
        for channel in state["channels"]:
            if channel["name"][:14] in prefixes:
                await self._discord.delete_channel(channel["id"])
        for match in matches:
            await self._discord.set_voice(guild_id, match.player.user_id, lobby)
        await self._discord.set_rate_limits(
            global_limit=GLOBAL_LIMIT, default=(ROUTE_LIMIT, WINDOW_S)
        )
        await self._discord.add_latency(latency_s)
        after = await last_seq(self._discord)
        began = time.monotonic()  # the audit log's clock
        wall = time.time() - began  # its offset from the wall clock of the services' logs
        await self._system.start_service("voice")
        # Waited for in the audit log first, as the other benchmarks wait: the guild's whole
        # state (every member) read every 5 ms took the sandbox's and the machine's time from
        # the calls being measured (bench/findings.md, Round 7).
        await until(lambda: self._moved(after, len(matches)), "voice moved the players", 600.0)
        await until(lambda: self._reconciled(matches), "voice reconciled", 600.0)
        # The sandbox acts on a call halfway through its latency: the last move shows in the
        # guild before it is answered, and the audit log has a call once answered.
        await until(self._repairs_answered, "the repairs answered", 60.0)
        calls = await self._discord.audit_log(after=after)
        ready = _gateway_ready(self._system.log_dir / "voice.log", began + wall) - wall
        await self.lift_limits()
        return _timed(calls, len(matches), began, ready, latency_s)

    async def _repairs_answered(self) -> bool:
        travelling = await self._discord.in_flight()
        return not any((c["method"], c["route"]) in REPAIRS for c in travelling)

    async def lift_limits(self) -> None:
        """No latency and no rate limits: for setting matches up."""
        await self._discord.clear_faults()
        await self._discord.set_rate_limits(global_limit=UNLIMITED, default=(UNLIMITED, WINDOW_S))


def _gateway_ready(log: Path, since: float) -> float:
    """When (wall clock) voice's log said its gateway session was ready, after `since`."""
    for line in reversed(log.read_text(encoding="utf-8").splitlines()):
        if READY_LINE not in line:
            continue  # also skips what is not a JSON log line (a traceback's, say)
        entry = json.loads(line)
        if entry.get("msg") == READY_LINE:
            at = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
            if at >= since:
                return at
    raise BenchFailed(f"voice never logged {READY_LINE!r}")


def _timed(
    calls: Sequence[dict[str, Any]], matches: int, began: float, ready: float, latency_s: float
) -> dict[str, Any]:
    """The restart's figures: from the start to the gateway session's ready (boot, startup
    calls, gateway), then the reconciliation's lookups, creates and moves (audit log)."""
    repaired = [c for c in calls if (c["method"], c["route"]) in REPAIRS and c["status"] != 429]
    by_route = Counter((c["method"], c["route"]) for c in repaired)
    lookups, creates = by_route[("GET", CHANNEL_ROUTE)], by_route[("POST", CREATE_ROUTE)]
    finished = max(c["answered_at"] for c in repaired)
    # Per match: the lookup that confirms its channel is gone, the create, the move.
    layers = 3 if lookups else 2
    minimum = minimum_seconds(list(by_route.values()), layers, latency_s)
    return {
        "matches": matches,
        "from_start_s": round(finished - began, 3),
        "startup_s": round(ready - began, 3),
        "reconcile_s": round(finished - ready, 3),
        "minimum_s": round(minimum, 3),
        "ratio": ratio(finished - ready, minimum),
        "lookups": lookups,
        "creates": creates,
        "moves": by_route[("PATCH", MOVE_ROUTE)],
        "rate_limited": sum(1 for c in calls if c["status"] == 429),
        "rate_limited_routes": dict(
            Counter(f"{c['method']} {c['route']}" for c in calls if c["status"] == 429)
        ),
    }


async def run(where: Where, sizes: RestartSizes) -> dict[str, Any]:
    """For each count: open matches up to it, then restart voice with their state taken away."""
    most = max(sizes.counts)
    discord_args = ("--max-channels-per-guild", str(most + 100))
    async with running_system(where, "restart", discord_args=discord_args) as system:
        info = system.info
        players = await link_players(info, most)
        matches = [_Match(m, p) for m, p in zip(match_ids(most), players, strict=True)]
        async with in_the_lobby(info, players, 0.0) as (discord, sender):
            restarts = _Restarts(system, discord, sender)
            await restarts.lift_limits()
            steps = []
            opened = 0
            for count in sizes.counts:
                await restarts.open(matches[opened:count])
                opened = count
                steps.append(await restarts.restart(matches[:count], sizes.latency_s))
    worst = max(steps, key=lambda s: s["ratio"])
    return {
        "sizes": asdict(sizes),
        "steps": steps,
        "targets": {
            "reconcile_vs_minimum": {
                "target": f"reconciled within {TARGET_RATIO}x the rate-limit minimum"
                " (the worst count)",
                "value": worst["ratio"],
                "pass": all(s["ratio"] <= TARGET_RATIO for s in steps),
            }
        },
    }


def section(outcome: dict[str, Any]) -> list[str]:
    """The document's part for this benchmark."""
    sizes = outcome["sizes"]
    lines = [
        "## Voice restart",
        "",
        "Open matches, each with one linked player in its team channel. Voice is stopped; every"
        " match's channel is deleted and its player put back in the lobby (the sandbox's control"
        " API, as a moderator would); voice starts under Discord's default limits with every"
        f" REST call delayed {sizes['latency_s'] * 1000:g} ms, and must recreate each channel"
        " and move each player back. Startup: from the process start to its gateway session"
        " being ready (boot, login and checks, the gateway; its log's `gateway ready` line)."
        " Reconcile: from there to the last lookup, create or move answered (voice confirms"
        " over REST that a channel its cache lacks is gone before it makes another). Minimum:"
        " what the limits allow for those calls, the three of a match one after the other.",
        "",
        "| open matches | startup s | reconcile s | minimum s | reconcile / minimum "
        "| lookups | creates | moves | 429s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for step in outcome["steps"]:
        lines.append(
            f"| {step['matches']} | {step['startup_s']} | {step['reconcile_s']} "
            f"| {step['minimum_s']:g} | {step['ratio']} | {step['lookups']} | {step['creates']} "
            f"| {step['moves']} "
            f"| {step['rate_limited']} |"
        )
    return [*lines, ""]
