"""Failover: kill -9 the active voice replica; time until the standby serves and serves a match."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from bench.end_to_end import answered_moves, until
from bench.harness import LinkedPlayer, Where, link_players, match_ids, running_system, two_teams
from bench.stats import ratio
from bench.webhooks import WebhookSender, match_event
from sandbox.discord.client import DiscordSandboxClient
from sandbox.system import System
from services.kit.healthcheck import check_health

TARGET_RATIO = 1.2
REPLICAS = ("voice", "voice-2")


@dataclass(frozen=True)
class FailoverSizes:
    """Kills measured, players per match, and the lease (short: a few seconds)."""

    kills: int = 4
    players: int = 4
    lease_timeout_s: float = 5.0
    lease_renew_s: float = 1.0


QUICK = FailoverSizes(kills=1)


async def _serving(system: System, name: str) -> bool:
    return (await check_health(system.info[f"{name}_grpc"], timeout=1.0)).serving


async def _active(system: System) -> str:
    """The replica that serves now."""

    async def which() -> str | None:
        for name in REPLICAS:
            if system.processes[name].running and await _serving(system, name):
                return name
        return None

    found: str = await until(which, "a serving voice replica")
    return found


async def _send(
    sender: WebhookSender,
    info: dict[str, Any],
    players: list[LinkedPlayer],
    match_id: str,
    event: str,
    version: int,
) -> None:
    teams = two_teams(players)
    await sender.send(
        match_event(event, match_id, version=version, hub_id=info["hub_id"], teams=teams)
    )


async def _one_kill(
    system: System,
    discord: DiscordSandboxClient,
    sender: WebhookSender,
    players: list[LinkedPlayer],
    match_id: str,
) -> dict[str, Any]:
    """Kill the active replica, send a match at once; when the standby serves, and serves it."""
    info = system.info
    active = await _active(system)
    standby = next(name for name in REPLICAS if name != active)
    entries = await discord.audit_log()
    after = int(entries[-1]["seq"]) if entries else 0

    await system.processes[active].kill()
    killed = time.monotonic()  # the sandbox's audit times are on this clock too
    await _send(sender, info, players, match_id, "match_status_ready", 1)
    await until(lambda: _serving(system, standby), f"{standby} to serve")
    serving = time.monotonic()

    async def all_moved() -> list[dict[str, Any]]:
        done = await answered_moves(discord, after)
        return done if len(done) >= len(players) else []

    moves = await until(all_moved, f"{match_id}: every player moved")
    served = max(m["answered_at"] for m in moves)
    await _send(sender, info, players, match_id, "match_status_finished", 2)

    async def back_in_lobby() -> bool:
        state = await discord.get_guild(info["guild_id"])
        voice = state["voice_states"]
        return all(voice.get(p.user_id) == info["lobby_channel_id"] for p in players)

    await until(back_in_lobby, f"{match_id}: closed, players back in the lobby")
    # The killed replica comes back as the standby for the next kill.
    await system.start_service(active, standby=True)
    return {
        "killed": active,
        "serving_s": round(serving - killed, 3),
        "match_served_s": round(served - killed, 3),
    }


async def run(where: Where, sizes: FailoverSizes) -> dict[str, Any]:
    """`kills` times: kill -9 the active replica, a ready webhook right after; measure."""
    async with running_system(
        where,
        "failover",
        voice_replicas=len(REPLICAS),
        voice_lease_timeout_s=sizes.lease_timeout_s,
        voice_lease_renew_s=sizes.lease_renew_s,
    ) as system:
        info = system.info
        players = await link_players(info, sizes.players)
        async with (
            DiscordSandboxClient(info["discord_url"]) as discord,
            aiohttp.ClientSession() as http,
        ):
            for player in players:
                await discord.set_voice(info["guild_id"], player.user_id, info["lobby_channel_id"])
            sender = WebhookSender(
                http, info["webhook_url"], info["webhook_header"], info["webhook_secret"]
            )
            samples = [
                await _one_kill(system, discord, sender, players, match_id)
                for match_id in match_ids(sizes.kills)
            ]
    serving = [s["serving_s"] for s in samples]
    served = [s["match_served_s"] for s in samples]
    worst = ratio(max(served), sizes.lease_timeout_s)
    return {
        "sizes": asdict(sizes),
        "samples": samples,
        "serving_s": {"p50": round(statistics.median(serving), 3), "max": max(serving)},
        "match_served_s": {"p50": round(statistics.median(served), 3), "max": max(served)},
        "ratio_max": worst,
        "targets": {
            "failover_vs_lease": {
                "target": f"kill -9 to a match served <= {TARGET_RATIO}x the lease timeout"
                f" ({sizes.lease_timeout_s:g} s), every kill",
                "value": worst,
                "pass": worst <= TARGET_RATIO,
            }
        },
    }


def section(outcome: dict[str, Any]) -> list[str]:
    """The failover part of docs/benchmarks.md."""
    sizes = outcome["sizes"]
    return [
        "## Failover",
        "",
        f"Two voice replicas, lease timeout {sizes['lease_timeout_s']:g} s renewed every"
        f" {sizes['lease_renew_s']:g} s. {sizes['kills']} times: kill -9 the active replica"
        f" and send a ready webhook for a match of {sizes['players']} players waiting in the"
        " lobby at once; time from the kill until the standby's health says SERVING, and"
        " until the sandbox answered the match's last move (audit log). The killed replica"
        " comes back as the standby for the next kill. A kill lands anywhere in the renewal"
        " period, so the lease runs out between timeout - renew and timeout after it.",
        "",
        "| lease timeout s | serving p50 / max s | match served p50 / max s | max / timeout |",
        "|---|---|---|---|",
        f"| {sizes['lease_timeout_s']:g} | {outcome['serving_s']['p50']:g}"
        f" / {outcome['serving_s']['max']:g} | {outcome['match_served_s']['p50']:g}"
        f" / {outcome['match_served_s']['max']:g} | {outcome['ratio_max']} |",
        "",
    ]
