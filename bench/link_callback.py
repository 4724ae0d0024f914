"""The link callback: FACEIT's userinfo answered -> the player moved into their team channel."""

from __future__ import annotations

import asyncio
import logging
import statistics
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import grpc
from faceitvoice.v1 import voice_service_pb2, voice_service_pb2_grpc

from bench.end_to_end import (
    CHANNEL_ROUTE,
    CREATE_ROUTE,
    GLOBAL_WINDOW_S,
    MOVE_ROUTE,
    answered_moves,
    last_seq,
    until,
)
from bench.harness import Where, match_ids, running_system
from bench.stats import ratio
from bench.webhooks import Roster, WebhookSender, match_event
from sandbox.discord.client import DiscordSandboxClient
from sandbox.faceit.client import FaceitSandboxClient
from sandbox.link_browser import link_url, sign_in_with_faceit
from services.kit.grpc_client import GrpcClients

logger = logging.getLogger(__name__)

TARGET_RATIO = 1.1


@dataclass(frozen=True)
class LinkSizes:
    """Measured links (after one warm-up), and the Discord REST latency."""

    samples: int = 20  # runs of 5 differed by up to 15 ms at the median (Round 6)
    latency_s: float = 0.05


QUICK = LinkSizes(samples=1)


def access_then_move_layers(calls: list[dict[str, Any]]) -> int:
    """Serial Discord calls: the channel made or its access edited, then the move into it."""
    access = any(
        (c["method"], c["route"]) in {("POST", CREATE_ROUTE), ("PATCH", CHANNEL_ROUTE)}
        for c in calls
    )
    moved = any(c["method"] == "PATCH" and c["route"] == MOVE_ROUTE for c in calls)
    return int(access) + int(moved)


class _Links:
    """A player waiting in the lobby for a match voice opened before they linked, linking."""

    def __init__(
        self,
        info: dict[str, Any],
        discord: DiscordSandboxClient,
        faceit: FaceitSandboxClient,
        sender: WebhookSender,
        voice: voice_service_pb2_grpc.VoiceServiceStub,
    ) -> None:
        self._info = info
        self._discord = discord
        self._faceit = faceit
        self._sender = sender
        self._voice = voice

    async def _open(self, match_id: str) -> bool:
        try:
            await self._voice.GetMatch(voice_service_pb2.GetMatchRequest(match_id=match_id))
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def one(self, match_id: str, latency_s: float) -> dict[str, Any]:
        """Open a match of a player not linked yet; link them through FACEIT sign-in; time it."""
        guild_id, lobby = self._info["guild_id"], self._info["lobby_channel_id"]
        nickname = f"link_{match_id[:8]}"
        player = await self._faceit.create_player(nickname)
        member = await self._discord.add_member(guild_id, nickname.replace("_", "-"))
        user_id = member["user_id"]
        await self._discord.set_voice(guild_id, user_id, lobby)
        teams = [[Roster(player["player_id"], nickname)], [Roster(f"{match_id}-b", "other")]]
        hub_id = self._info["hub_id"]
        await self._sender.send(
            match_event("match_status_ready", match_id, version=1, hub_id=hub_id, teams=teams)
        )
        await until(lambda: self._open(match_id), f"{match_id} open in voice")
        await asyncio.sleep(GLOBAL_WINDOW_S)  # pacing: the link starts in a fresh global window
        after = await last_seq(self._discord)
        reply = await self._discord.run_command(guild_id, user_id, "register")
        page = await sign_in_with_faceit(link_url(reply), player["player_id"])
        if page.heading != "FACEIT account linked":
            raise RuntimeError(f"signing in ended on {page.heading!r} ({page.url})")

        async def moved() -> list[dict[str, Any]]:
            moves = await answered_moves(self._discord, after)
            return [m for m in moves if m["path"].endswith(f"/{user_id}")]

        move = (await until(moved, f"{nickname} moved after linking"))[0]
        answered = max(
            a["answered_at"]
            for a in await self._faceit.userinfo_answers()
            if a["player_id"] == player["player_id"]
        )
        calls = [
            c
            for c in await self._discord.audit_log(after=after)
            if answered <= c["received_at"] and c["seq"] <= move["seq"]
        ]
        elapsed_ms = (move["answered_at"] - answered) * 1000
        floor_ms = access_then_move_layers(calls) * latency_s * 1000
        await self._sender.send(
            match_event("match_status_finished", match_id, version=2, hub_id=hub_id, teams=teams)
        )
        return {
            "match_id": match_id,
            "elapsed_ms": round(elapsed_ms, 1),
            "floor_ms": floor_ms,
            "own_ms": round(elapsed_ms - floor_ms, 1),
            "calls": [f"{c['method']} {c['route']} {c['status']}" for c in calls],
        }


async def run(where: Where, sizes: LinkSizes) -> dict[str, Any]:
    """One warm-up link, then `samples` links, each its own player and match."""
    async with running_system(where, "link_callback", link_verification="faceit_oauth") as system:
        info = system.info
        clients = GrpcClients(token=info["grpc_token"], timeout=10.0)
        try:
            async with (
                DiscordSandboxClient(info["discord_url"]) as discord,
                FaceitSandboxClient(info["faceit_url"]) as faceit,
                aiohttp.ClientSession() as http,
            ):
                await discord.add_latency(sizes.latency_s)
                links = _Links(
                    info,
                    discord,
                    faceit,
                    WebhookSender(
                        http, info["webhook_url"], info["webhook_header"], info["webhook_secret"]
                    ),
                    voice_service_pb2_grpc.VoiceServiceStub(clients.channel(info["voice_grpc"])),
                )
                results = [
                    await links.one(match_id, sizes.latency_s)
                    for match_id in match_ids(sizes.samples + 1)
                ]
        finally:
            await clients.close()
    measured = results[1:]
    median = statistics.median(r["elapsed_ms"] for r in measured)
    floor = max(r["floor_ms"] for r in measured)
    value = ratio(median, floor)
    return {
        "sizes": asdict(sizes),
        "samples": measured,
        "warmup": results[0],
        "elapsed_ms_p50": median,
        "own_ms_p50": statistics.median(r["own_ms"] for r in measured),
        "floor_ms": floor,
        "ratio_p50": value,
        "targets": {
            "link_vs_floor": {
                "target": f"<= {TARGET_RATIO}x the serial Discord floor (median)",
                "value": value,
                "pass": value <= TARGET_RATIO,
            }
        },
    }


def section(outcome: dict[str, Any]) -> list[str]:
    """The document's part for this benchmark."""
    sizes = outcome["sizes"]
    calls = outcome["samples"][0]["calls"] if outcome["samples"] else []
    return [
        "## Link callback",
        "",
        "A player waits in the lobby voice channel for a match voice opened before they linked"
        " (nobody of it linked, so no channel yet). They run /register, follow its link button"
        " and sign in with FACEIT (`sandbox/link_browser.py`). Measured from the FACEIT"
        " sandbox's userinfo answer (the registry's callback then stores the link; voice hears"
        " of it on its link watch) to the sandbox answering the player's move, every Discord"
        f" REST call delayed {sizes['latency_s'] * 1000:g} ms; one warm-up, then"
        f" {sizes['samples']} links. Floor: the serial Discord calls (the channel made or its"
        " access edited, then the move) x the latency.",
        "",
        "| median ms | floor ms | median / floor | own time ms (median) |",
        "|---|---|---|---|",
        f"| {outcome['elapsed_ms_p50']} | {outcome['floor_ms']:g} | {outcome['ratio_p50']} "
        f"| {outcome['own_ms_p50']:g} |",
        "",
        "Discord calls of one link (audit log): " + ", ".join(f"`{c}`" for c in calls) + ".",
        "",
    ]
