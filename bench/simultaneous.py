"""Matches opening at the same moment: end to end per match, beside the rate-limit minimum."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.end_to_end import CREATE_ROUTE, answered_moves, last_seq, until
from bench.harness import LinkedPlayer, Where, in_the_lobby, link_players, match_ids, running_system
from bench.stats import latency_summary, ratio
from bench.webhooks import WebhookSender, match_event
from sandbox.discord.client import DiscordSandboxClient

logger = logging.getLogger(__name__)

# Discord's limits, which the sandbox applies by default: requests a second over all routes,
# and per route and guild.
GLOBAL_LIMIT = 50
ROUTE_LIMIT = 50
WINDOW_S = 1.0
TARGET_RATIO = 1.2


@dataclass(frozen=True)
class SimultaneousSizes:
    """How many matches open at once, per step; players per team; the Discord REST latency."""

    counts: tuple[int, ...] = (1, 10, 100)
    players_per_team: int = 1
    latency_s: float = 0.05


QUICK = SimultaneousSizes(counts=(1, 3))


def minimum_seconds(route_calls: Sequence[int], layers: int, latency_s: float) -> float:
    """The least time Discord's limits allow for these calls (a count per route), `layers` of
    which must follow one another (a create, then the move into its channel).

    Past the limits, the last call falls in window W (the most windows the global limit or a
    route's needs), which opens W - 1 windows after the first call counted. The sandbox counts a
    call halfway through its latency and answers it at the end, so from the first call's send
    to the last one's answer is the latency and W - 1 windows.
    """
    windows = max(
        math.ceil(sum(route_calls) / GLOBAL_LIMIT),
        *(math.ceil(calls / ROUTE_LIMIT) for calls in route_calls),
    )
    return max(layers * latency_s, latency_s + (windows - 1) * WINDOW_S)


@dataclass(frozen=True)
class _Match:
    match_id: str
    teams: list[list[LinkedPlayer]]

    @property
    def players(self) -> list[LinkedPlayer]:
        return [p for team in self.teams for p in team]


def _matches(players: Sequence[LinkedPlayer], count: int, per_team: int) -> list[_Match]:
    size = 2 * per_team
    groups = [players[i * size : (i + 1) * size] for i in range(count)]
    return [
        _Match(match_id, [list(group[:per_team]), list(group[per_team:])])
        for match_id, group in zip(match_ids(count), groups, strict=True)
    ]


class _Step:
    """Opens matches through webhooks and reads when Discord moved their players."""

    def __init__(
        self, discord: DiscordSandboxClient, sender: WebhookSender, info: dict[str, Any]
    ) -> None:
        self._discord = discord
        self._sender = sender
        self._info = info

    def _event(self, event: str, match: _Match, version: int) -> dict[str, Any]:
        teams = [[p.roster for p in team] for team in match.teams]
        return match_event(
            event, match.match_id, version=version, hub_id=self._info["hub_id"], teams=teams
        )

    async def open_all(self, matches: Sequence[_Match], latency_s: float) -> dict[str, Any]:
        """Open every match at once; each one's time from its 200 to its last move answered."""
        after = await last_seq(self._discord)
        accepted: dict[str, float] = {}

        async def send(match: _Match) -> None:
            await self._sender.send(self._event("match_status_ready", match, 1))
            accepted[match.match_id] = time.monotonic()  # the audit log's clock

        await asyncio.gather(*(send(m) for m in matches))
        owner = {p.user_id: m.match_id for m in matches for p in m.players}
        expected = len(owner)

        async def all_moved() -> list[dict[str, Any]]:
            moves = await answered_moves(self._discord, after)
            done = [m for m in moves if m["path"].split("/")[-1] in owner]
            return done if len({m["path"] for m in done}) >= expected else []

        moves = await until(all_moved, f"{len(matches)} matches: every player moved", 120.0)
        creates = [
            c
            for c in await self._discord.audit_log(method="POST", route=CREATE_ROUTE, after=after)
            if c["status"] < 300
        ]
        last_move: dict[str, float] = {}
        for move in moves:
            match_id = owner[move["path"].split("/")[-1]]
            last_move[match_id] = max(last_move.get(match_id, 0.0), move["answered_at"])
        elapsed = [last_move[m.match_id] - accepted[m.match_id] for m in matches]
        minimum = minimum_seconds([len(creates), len(moves)], 2, latency_s)
        summary = latency_summary(elapsed)
        limited = await self._discord.audit_log(after=after)
        return {
            "matches": len(matches),
            "elapsed_ms": summary,
            "minimum_ms": round(minimum * 1000, 1),
            "p50_vs_minimum": ratio(summary["p50_ms"], minimum * 1000),
            "p99_vs_minimum": ratio(summary["p99_ms"], minimum * 1000),
            "creates": len(creates),
            "moves": len(moves),
            "rate_limited": sum(1 for c in limited if c["status"] == 429),
        }

    async def close_all(self, matches: Sequence[_Match]) -> None:
        """Finish every match and wait until its channels are gone and its players back."""
        await asyncio.gather(
            *(self._sender.send(self._event("match_status_finished", m, 2)) for m in matches)
        )
        prefixes = tuple(f"Match {m.match_id[:8]}" for m in matches)
        users = [p.user_id for m in matches for p in m.players]
        lobby = self._info["lobby_channel_id"]

        async def closed() -> bool:
            state = await self._discord.get_guild(self._info["guild_id"])
            gone = not any(c["name"].startswith(prefixes) for c in state["channels"])
            return gone and all(state["voice_states"].get(u) == lobby for u in users)

        await until(closed, f"{len(matches)} matches closed, players back in the lobby", 120.0)
        await asyncio.sleep(WINDOW_S)  # pacing: the next step starts in fresh rate-limit windows


async def run(where: Where, sizes: SimultaneousSizes) -> dict[str, Any]:
    """A warm-up match, then each count of matches opened at the same moment and closed."""
    async with running_system(where, "simultaneous") as system:
        info = system.info
        most = max(sizes.counts)
        players = await link_players(info, 2 * sizes.players_per_team * most)
        async with in_the_lobby(info, players, sizes.latency_s) as (discord, sender):
            step = _Step(discord, sender, info)
            warmup = _matches(players, 1, sizes.players_per_team)
            await step.open_all(warmup, sizes.latency_s)
            await step.close_all(warmup)
            steps = []
            for count in sizes.counts:
                matches = _matches(players, count, sizes.players_per_team)
                steps.append(await step.open_all(matches, sizes.latency_s))
                await step.close_all(matches)
    largest = steps[-1]
    return {
        "sizes": asdict(sizes),
        "steps": steps,
        "targets": {
            "largest_vs_minimum": {
                "target": f"p99 <= {TARGET_RATIO}x the rate-limit minimum"
                f" ({largest['matches']} matches at once)",
                "value": largest["p99_vs_minimum"],
                "pass": largest["p99_vs_minimum"] <= TARGET_RATIO,
            }
        },
    }


def section(outcome: dict[str, Any]) -> list[str]:
    """The document's part for this benchmark."""
    sizes = outcome["sizes"]
    lines = [
        "## Matches opening at the same moment",
        "",
        f"N ready webhooks sent at once (matches of {2 * sizes['players_per_team']} linked"
        " players, each waiting in the lobby), every Discord REST call delayed"
        f" {sizes['latency_s'] * 1000:g} ms by the sandbox, Discord's default limits"
        f" ({GLOBAL_LIMIT} requests/s over all routes, {ROUTE_LIMIT}/s per route and guild)."
        " Each match from its webhook's 200 to its last move answered. Minimum: what the limits"
        " allow for the calls made (a create then its move; past one window, the last call in"
        " the last window they need).",
        "",
        "| matches | p50 ms | p99 ms | max ms | minimum ms | p50 / minimum | p99 / minimum "
        "| creates | moves | 429s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in outcome["steps"]:
        elapsed = step["elapsed_ms"]
        lines.append(
            f"| {step['matches']} | {elapsed['p50_ms']} | {elapsed['p99_ms']} "
            f"| {elapsed['max_ms']} | {step['minimum_ms']:g} | {step['p50_vs_minimum']} "
            f"| {step['p99_vs_minimum']} | {step['creates']} | {step['moves']} "
            f"| {step['rate_limited']} |"
        )
    return [*lines, ""]
