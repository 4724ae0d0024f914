"""`make demo`: play one FACEIT match on the whole system and print what happened, when."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from faceitvoice.v1 import ingest_service_pb2, ingest_service_pb2_grpc

from sandbox.discord.client import DiscordSandboxClient
from sandbox.discord.permissions import MANAGE_CHANNELS
from sandbox.faceit.client import FaceitSandboxClient
from sandbox.link_browser import link_url, sign_in_with_faceit
from sandbox.system import LINK_VERIFICATIONS, System, SystemOptions
from services.kit.grpc_client import GrpcClients
from services.kit.logging import setup_logging

logger = logging.getLogger(__name__)

T = TypeVar("T")
NICKNAMES = (
    ("s1mple_demo", "electronic_d", "b1t_demo", "perfecto_d", "boombl4_d"),
    ("zywoo_demo", "apex_demo", "magisk_d", "flamez_d", "spinx_demo"),
)
TEAM_NAMES = ("Natus Demo", "Team Sandbox")
IN_LOBBY = 3  # per team: the first three of each roster wait in the lobby voice channel
STEP_TIMEOUT_S = 20.0


class DemoFailed(Exception):
    """A step of the demo did not happen; the message says which."""


@dataclass
class Timeline:
    """What happened, with the time since the players began to link."""

    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)

    def mark(self, what: str) -> None:
        """Record and print one step."""
        line = f"  +{time.monotonic() - self.started:6.2f}s  {what}"
        self.lines.append(line)
        print(line, flush=True)  # noqa: T201 - the demo's output is for a person


async def until(
    probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = STEP_TIMEOUT_S
) -> T:
    """Poll `probe` until it returns a value other than None or False, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what}: did not happen within {timeout:.0f}s")
        await asyncio.sleep(0.05)  # polling interval


def say(text: str) -> None:
    """Print a line for the person watching."""
    print(text, flush=True)  # noqa: T201 - the demo's output is for a person


async def play(info: dict[str, Any]) -> Timeline:
    """Link ten players, play a match through its lifecycle, check every step."""
    guild_id = info["guild_id"]
    lobby = info["lobby_channel_id"]
    async with (
        DiscordSandboxClient(info["discord_url"]) as discord,
        FaceitSandboxClient(info["faceit_url"]) as faceit,
    ):
        verified = info["link_verification"] == "faceit_oauth"
        how = (
            "each ran /register, followed its link button and signed in with FACEIT"
            if verified
            else "each ran /register <nickname> (unverified mode)"
        )
        say("Linking ten players in the Discord sandbox:")
        timeline = Timeline()
        teams: list[list[dict[str, str]]] = []
        for roster in NICKNAMES:
            team = []
            for nickname in roster:
                made = await faceit.create_player(nickname, skill_level=8, faceit_elo=1900)
                member = await discord.add_member(guild_id, nickname.replace("_", "-"))
                player = {"nickname": nickname, **made, "user_id": member["user_id"]}
                await link(discord, player, guild_id, verified=verified)
                team.append(player)
            teams.append(team)
        timeline.mark(f"10 players linked: {how}")
        await check_whoami(discord, [p for team in teams for p in team], guild_id, verified)
        timeline.mark(
            "/whoami of each: " + ("verified (signed in with FACEIT)" if verified else "unverified")
        )
        for team in teams:
            for player in team[:IN_LOBBY]:
                await discord.set_voice(guild_id, player["user_id"], lobby)
        timeline.mark(f"{IN_LOBBY * 2} of them wait in the lobby voice channel")

        match = await faceit.create_match(
            [[p["player_id"] for p in team] for team in teams],
            hub_id=info["hub_id"],
            team_names=list(TEAM_NAMES),
        )
        match_id = match["match_id"]
        timeline.mark(f"match {match_id} created (-> configuring -> ready -> finished)")
        await faceit.play(match_id, ["CONFIGURING", "READY"])
        timeline.mark("FACEIT sent match_status_configuring and match_status_ready")
        await until(lambda: delivered(info, match_id, "match_status_ready"), "ready delivered")
        timeline.mark("ingest stored the events and delivered them to voice")

        async def match_channels() -> list[dict[str, Any]] | None:
            state = await discord.get_guild(guild_id)
            found = [c for c in state["channels"] if c["name"].startswith("Match " + match_id[:8])]
            return found if len(found) == 2 else None

        channels = await until(match_channels, "two private team channels")
        timeline.mark("channels created: " + ", ".join(repr(c["name"]) for c in channels))
        names_by_id = await guild_names(discord, info["guild_id"])
        await show_feed(discord, info, timeline, names_by_id, "Live", "feed message posted")
        for team_name, team in zip(TEAM_NAMES, teams, strict=True):
            (channel,) = [c for c in channels if c["name"].endswith(team_name)]
            await check_private(discord, channel, team, teams)
        timeline.mark("checked: each channel is visible and joinable by its five players only")

        async def everyone_moved() -> dict[str, str] | None:
            state = await discord.get_guild(guild_id)
            voice: dict[str, str] = state["voice_states"]
            ids = {c["id"] for c in channels}
            waiting = [p for team in teams for p in team[:IN_LOBBY]]
            return voice if all(voice.get(p["user_id"]) in ids for p in waiting) else None

        voice = await until(everyone_moved, "players in the lobby moved to their team channel")
        names = {c["id"]: c["name"] for c in channels}
        for team in teams:
            moved = [p["nickname"] for p in team if p["user_id"] in voice]
            where = names[voice[team[0]["user_id"]]]
            timeline.mark(f"moved {', '.join(moved)} -> {where!r}")
        skipped = [p["nickname"] for team in teams for p in team[IN_LOBBY:]]
        timeline.mark(f"not in voice, so not moved (they can join): {', '.join(skipped)}")
        await admin_match_list(discord, guild_id, match_id, timeline)

        await faceit.set_status(match_id, "FINISHED")
        timeline.mark("FACEIT sent match_status_finished")
        await until(lambda: delivered(info, match_id, "match_status_finished"), "close delivered")
        timeline.mark("ingest delivered the close to voice")

        async def channels_gone() -> bool:
            state = await discord.get_guild(guild_id)
            ids = {c["id"] for c in state["channels"]}
            return not ids & set(names)

        await until(channels_gone, "team channels deleted after the match")
        state = await discord.get_guild(guild_id)
        back = [
            p["nickname"]
            for team in teams
            for p in team
            if state["voice_states"].get(p["user_id"]) == lobby
        ]
        if len(back) != IN_LOBBY * 2:
            raise DemoFailed(f"expected {IN_LOBBY * 2} players back in the lobby, saw {back}")
        timeline.mark(f"channels gone; {len(back)} players back in the lobby")
        await show_feed(discord, info, timeline, names_by_id, " won ", "feed message edited")
        return timeline


async def admin_match_list(
    discord: DiscordSandboxClient, guild_id: str, match_id: str, timeline: Timeline
) -> None:
    """A hub admin (a role with Manage Channels) runs /match list; its answer goes in the
    timeline."""
    role = await discord.create_role(guild_id, "Hub admins", MANAGE_CHANNELS)
    admin = await discord.add_member(guild_id, "hub-admin", roles=[role["role_id"]])
    reply = await discord.run_command(guild_id, admin["user_id"], "match list")
    if match_id not in reply["content"] or not reply["ephemeral"]:
        raise DemoFailed(f"/match list did not show the match: {reply['content']!r}")
    names = await guild_names(discord, guild_id)
    timeline.mark("a hub admin (Manage Channels) ran /match list; the bot answered, ephemeral")
    timeline.mark("(mentions shown as Discord renders them):")
    for line in with_names(reply["content"], names).splitlines():
        timeline.mark("    " + line)


async def guild_names(discord: DiscordSandboxClient, guild_id: str) -> dict[str, str]:
    """Member and channel ids -> how Discord shows their mentions (`@username`, `#channel`)."""
    state = await discord.get_guild(guild_id)
    names = {m["user_id"]: "@" + m["username"] for m in state["members"]}
    names.update({c["id"]: "#" + c["name"] for c in state["channels"]})
    return names


def with_names(text: str, names: dict[str, str]) -> str:
    """`text` with its user and channel mentions as the names Discord shows."""
    return re.sub(r"<[@#](\d+)>", lambda m: names.get(m.group(1), m.group(0)), text)


async def show_feed(
    discord: DiscordSandboxClient,
    info: dict[str, Any],
    timeline: Timeline,
    names: dict[str, str],
    showing: str,
    what: str,
) -> None:
    """Wait until the feed channel's one message shows `showing`; put its text in the timeline
    (mentions and channel links as the names Discord would show)."""

    async def message() -> dict[str, Any] | None:
        messages = await discord.channel_messages(info["feed_channel_id"])
        if len(messages) > 1:
            raise DemoFailed(f"the match feed holds {len(messages)} messages, not one")
        return messages[0] if messages and showing in feed_text(messages[0], names) else None

    shown = await until(message, f"the match feed message showing {showing.strip()!r}")
    timeline.mark(f"{what} in #match-feed:")
    for line in feed_text(shown, names).splitlines():
        timeline.mark(f"    | {line}")


def feed_text(message: dict[str, Any], names: dict[str, str]) -> str:
    """A feed message's embed as plain text: title, link, description, fields, footer."""
    embed = message["embeds"][0]
    lines = [embed["title"], embed["url"], *embed["description"].replace("**", "").splitlines()]
    for item in embed["fields"]:
        lines.append(f"{item['name']}: " + ", ".join(item["value"].splitlines()))
    lines.append(embed["footer"]["text"])
    return with_names("\n".join(lines), names)


async def link(
    discord: DiscordSandboxClient, player: dict[str, str], guild_id: str, *, verified: bool
) -> None:
    """/register as the player; with FACEIT Connect, follow its link button and sign in."""
    user_id, nickname = player["user_id"], player["nickname"]
    if not verified:
        reply = await discord.run_command(
            guild_id, user_id, "register", {"faceit_nickname": nickname}
        )
        if not reply.get("embeds"):
            raise DemoFailed(f"/register {nickname} failed: {reply.get('content')!r}")
        return
    reply = await discord.run_command(guild_id, user_id, "register")
    page = await sign_in_with_faceit(link_url(reply), player["player_id"])
    if page.heading != "FACEIT account linked" or nickname not in page.html:
        raise DemoFailed(f"signing in as {nickname} ended on {page.heading!r} ({page.url})")


async def check_whoami(
    discord: DiscordSandboxClient, players: list[dict[str, str]], guild_id: str, verified: bool
) -> None:
    """/whoami of each player names their FACEIT account and says whether it is verified."""
    expected = "Yes: signed in with FACEIT" if verified else "No: registered by nickname only"
    for player in players:
        reply = await discord.run_command(guild_id, player["user_id"], "whoami")
        embed = (reply.get("embeds") or [{}])[0]
        fields = {f["name"]: f["value"] for f in embed.get("fields", [])}
        if embed.get("description") != player["nickname"] or not fields.get(
            "Verified", ""
        ).startswith(expected):
            raise DemoFailed(f"/whoami of {player['nickname']}: {embed or reply.get('content')}")


async def delivered(info: dict[str, Any], match_id: str, event: str) -> bool:
    """Whether ingest has delivered `event` of the match to voice (asked over gRPC)."""
    clients = GrpcClients(token=info["grpc_token"], timeout=5.0)
    try:
        stub = ingest_service_pb2_grpc.IngestServiceStub(clients.channel(info["ingest_grpc"]))
        page = await stub.ListEvents(ingest_service_pb2.ListEventsRequest(match_id=match_id))
    finally:
        await clients.close()
    return any(
        e.event == event and e.status == ingest_service_pb2.EVENT_STATUS_DELIVERED
        for e in page.events
    )


async def check_private(
    discord: DiscordSandboxClient,
    channel: dict[str, Any],
    team: list[dict[str, str]],
    teams: list[list[dict[str, str]]],
) -> None:
    """The channel lets its team's players see and join it, and no other player."""
    access = await discord.channel_access(channel["id"])
    players = {p["user_id"] for t in teams for p in t}
    own = {p["user_id"] for p in team}
    for kind in ("view", "connect"):
        allowed = set(access[kind]) & players
        if allowed != own:
            raise DemoFailed(f"{channel['name']!r}: {kind} allowed for {allowed}, expected {own}")


async def run(args: argparse.Namespace) -> int:
    """Start the system, play the demo, stop the system; 0 only when every step happened."""
    say("Starting embedded Postgres, the Discord and FACEIT sandboxes and the three services...")
    began = time.monotonic()
    options = SystemOptions(
        data_dir=args.data_dir, log_dir=args.log_dir, link_verification=args.link_verification
    )
    system = System(options)
    try:
        info = await system.start()
        say(f"  ready in {time.monotonic() - began:.1f}s (service logs in {info['log_dir']})")
        await play(info)
    except Exception as error:
        say(f"DEMO FAILED: {error}")
        say(f"Service logs: {system.log_dir}")
        return 1
    finally:
        await system.stop()
    say(f"Demo passed in {time.monotonic() - began:.1f}s.")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--log-dir", type=Path)
    parser.add_argument("--link-verification", choices=LINK_VERIFICATIONS, default="faceit_oauth")
    args = parser.parse_args(argv)
    setup_logging("WARNING", service="demo", stream=sys.stderr)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
