"""Helpers of the end-to-end tests over the running system: players, matches, Discord checks."""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceitvoice.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    registry_service_pb2,
    registry_service_pb2_grpc,
    voice_service_pb2,
    voice_service_pb2_grpc,
)

from sandbox.discord.client import DiscordSandboxClient
from sandbox.faceit.client import FaceitSandboxClient
from sandbox.link_browser import link_url, sign_in_with_faceit
from sandbox.system import System, SystemOptions
from services.kit.grpc_client import GrpcClients
from tests.support import eventually

GRPCURL = Path(sys.executable).parent / "grpcurl"
MATCH_PREFIX = "Match "
GATEWAY_READY = "gateway ready: reconciling"
"""What voice logs once its py-cord gateway session is ready."""
SETTLE_S = 45.0
"""How long the system may take to reach the expected Discord state after a fault."""

FAST_RETRIES = {"INGEST_RETRY_BASE_S": "0.2", "INGEST_RETRY_CAP_S": "1"}
"""Ingest's delivery retries, capped at a second so a restarted voice is reached soon."""


@dataclass(frozen=True)
class Player:
    """A FACEIT player linked to a Discord member of the guild."""

    nickname: str
    player_id: str
    user_id: str


@dataclass(frozen=True)
class Match:
    """A FACEIT match of two teams of linked players; `in_voice` players wait in the lobby."""

    match_id: str
    team_names: tuple[str, str]
    teams: tuple[tuple[Player, ...], tuple[Player, ...]]
    in_voice: frozenset[str]

    @property
    def prefix(self) -> str:
        """What the names of this match's channels start with."""
        return f"{MATCH_PREFIX}{self.match_id[:8]}"

    @property
    def players(self) -> list[Player]:
        """Both rosters."""
        return [*self.teams[0], *self.teams[1]]


class Harness:
    """One running system and its clients: the steps and checks the tests share."""

    def __init__(self, system: System, info: dict[str, Any]) -> None:
        self.system = system
        self.info = info
        self.guild_id: str = info["guild_id"]
        self.lobby_id: str = info["lobby_channel_id"]
        self.discord = DiscordSandboxClient(info["discord_url"])
        self.faceit = FaceitSandboxClient(info["faceit_url"])
        self.grpc = GrpcClients(token=info["grpc_token"], timeout=10.0)
        self.ingest = ingest_service_pb2_grpc.IngestServiceStub(
            self.grpc.channel(info["ingest_grpc"])
        )
        self.voice = voice_service_pb2_grpc.VoiceServiceStub(self.grpc.channel(info["voice_grpc"]))
        self.registry = registry_service_pb2_grpc.RegistryServiceStub(
            self.grpc.channel(info["registry_grpc"])
        )
        self.players: list[Player] = []
        self._numbers = itertools.count(1)

    @classmethod
    @asynccontextmanager
    async def running(cls, options: SystemOptions) -> AsyncIterator[Harness]:
        """Start a system with `options`, yield its harness, stop everything after."""
        system = System(options)
        try:
            info = await system.start()
            harness = cls(system, info)
            try:
                await harness.wait_for_voice_gateway()
                yield harness
            finally:
                await harness.close()
        finally:
            await system.stop()

    async def wait_for_voice_gateway(self, sessions: int = 1) -> None:
        """Wait until voice logged its `sessions`-th ready gateway session.

        Voice reports SERVING before its gateway session is ready (a bug, see the xfail test
        in test_system.py) and offers no other signal of it than this log line.
        """
        log = self.system.processes["voice"].log_path

        async def ready() -> bool:
            return log.read_text(errors="replace").count(GATEWAY_READY) >= sessions

        await eventually(ready, timeout=30, what="the voice service's gateway session")

    async def close(self) -> None:
        """Close the clients."""
        await self.discord.close()
        await self.faceit.close()
        await self.grpc.close()

    # ---- players and matches -------------------------------------------------------------

    async def new_player(self, *, register_command: bool = False) -> Player:
        """A FACEIT player and a Discord member, linked: with faceit_oauth by /register and the
        FACEIT sign-in; with nickname by RegistryService, or by /register if asked."""
        nickname = f"player_{next(self._numbers)}"
        made = await self.faceit.create_player(nickname, skill_level=7)
        member = await self.discord.add_member(self.guild_id, nickname.replace("_", "-"))
        player = Player(nickname, made["player_id"], member["user_id"])
        if self.info["link_verification"] == "faceit_oauth":
            await self.sign_in(player)
        elif register_command:
            reply = await self.discord.run_command(
                self.guild_id, player.user_id, "register", {"faceit_nickname": nickname}
            )
            assert reply.get("embeds"), f"/register {nickname} failed: {reply.get('content')!r}"
        else:
            await self.registry.LinkPlayer(
                registry_service_pb2.LinkPlayerRequest(
                    discord_user_id=int(player.user_id), faceit_nickname=nickname
                )
            )
        self.players.append(player)
        return player

    async def sign_in(self, player: Player) -> None:
        """/register, then the link button's flow in a browser, signing in as the player."""
        reply = await self.discord.run_command(self.guild_id, player.user_id, "register")
        page = await sign_in_with_faceit(link_url(reply), player.player_id)
        assert page.heading == "FACEIT account linked", (player.nickname, page.html)

    async def new_match(
        self, *, team_size: int = 2, in_voice: int = 1, register_command: bool = False
    ) -> Match:
        """A match (CHECK_IN) of new linked players; the first `in_voice` of each team in voice."""
        number = next(self._numbers)
        rosters = []
        for _ in range(2):
            roster = [
                await self.new_player(register_command=register_command) for _ in range(team_size)
            ]
            rosters.append(tuple(roster))
        waiting = [p for roster in rosters for p in roster[:in_voice]]
        for player in waiting:
            await self.discord.set_voice(self.guild_id, player.user_id, self.lobby_id)
        # The number sits in the first hex digits, so each match's channel prefix is its own.
        match_id = f"1-{uuid.UUID(int=number << 104, version=4)}"
        names = (f"Red {number}", f"Blue {number}")
        await self.faceit.create_match(
            [[p.player_id for p in roster] for roster in rosters],
            match_id=match_id,
            hub_id=self.info["hub_id"],
            team_names=list(names),
        )
        return Match(
            match_id, names, (rosters[0], rosters[1]), frozenset(p.user_id for p in waiting)
        )

    async def new_matches(self, count: int, **kwargs: Any) -> list[Match]:
        """`count` new matches (see new_match)."""
        return [await self.new_match(**kwargs) for _ in range(count)]

    async def set_status_all(self, matches: Iterable[Match], status: str) -> None:
        """Move every match to `status` at once (FACEIT sends the webhooks)."""
        await asyncio.gather(*(self.faceit.set_status(m.match_id, status) for m in matches))

    # ---- Discord state -------------------------------------------------------------------

    async def guild(self) -> dict[str, Any]:
        """The whole guild state from the Discord sandbox."""
        return await self.discord.get_guild(self.guild_id)

    async def open_problems(self, match: Match, state: dict[str, Any]) -> list[str]:
        """Why the guild is not (yet) what an open match needs; empty when it is."""
        channels = [c for c in state["channels"] if c["name"].startswith(match.prefix)]
        problems: list[str] = []
        if len(channels) != 2:
            problems.append(f"{match.prefix}: {len(channels)} channels {_names(channels)}")
        linked = {p.user_id for p in self.players}
        for name, roster in zip(match.team_names, match.teams, strict=True):
            own = [c for c in channels if c["name"] == f"{match.prefix} · {name}"]
            if len(own) != 1:
                problems.append(f"{match.prefix} · {name}: {len(own)} channels")
                continue
            channel = own[0]
            team = {p.user_id for p in roster}
            access = await self.discord.channel_access(channel["id"])
            for kind in ("view", "connect"):
                allowed = set(access[kind]) & linked
                if allowed != team:
                    problems.append(
                        f"{channel['name']}: {kind} {sorted(allowed)}, not {sorted(team)}"
                    )
            for player in roster:
                where = state["voice_states"].get(player.user_id)
                if player.user_id in match.in_voice and where != channel["id"]:
                    problems.append(f"{player.nickname} in voice channel {where}, not its team's")
        return problems

    def closed_problems(self, match: Match, state: dict[str, Any]) -> list[str]:
        """Why the guild still shows something of a closed match; empty when nothing is left."""
        channels = [c for c in state["channels"] if c["name"].startswith(match.prefix)]
        problems = [f"{match.prefix}: channels left {_names(channels)}"] if channels else []
        for user_id in sorted(match.in_voice):
            where = state["voice_states"].get(user_id)
            if where != self.lobby_id:
                problems.append(f"{user_id} in voice channel {where}, not the lobby")
        return problems

    async def wait_until_open(self, matches: Sequence[Match], timeout: float = SETTLE_S) -> None:
        """Wait until every match has its two private team channels, players moved in."""

        async def probe() -> bool:
            state = await self.guild()
            problems = [p for m in matches for p in await self.open_problems(m, state)]
            assert not problems, problems
            return True

        await eventually(probe, timeout=timeout, interval=0.1, what="the matches' channels")

    async def wait_until_closed(self, matches: Sequence[Match], timeout: float = SETTLE_S) -> None:
        """Wait until no match has a channel left and their players are back in the lobby."""

        async def probe() -> bool:
            state = await self.guild()
            problems = [p for m in matches for p in self.closed_problems(m, state)]
            assert not problems, problems
            return True

        await eventually(probe, timeout=timeout, interval=0.1, what="the matches to close")

    async def wait_until_processed(
        self, matches: Sequence[Match], events: Collection[str], timeout: float = SETTLE_S
    ) -> None:
        """Wait until ingest stored `events` of every match and none of its events is pending."""

        async def probe() -> bool:
            for match in matches:
                stored = await self.events(match.match_id)
                missing = set(events) - {e.event for e in stored}
                pending = [e.event for e in stored if status_name(e) == "PENDING"]
                assert not missing and not pending, (match.match_id, missing, pending)
            return True

        await eventually(probe, timeout=timeout, interval=0.1, what="ingest to process the events")

    async def match_channel_names(self) -> list[str]:
        """Names of every match channel in the guild, sorted."""
        state = await self.guild()
        return sorted(c["name"] for c in state["channels"] if c["name"].startswith(MATCH_PREFIX))

    # ---- gRPC ----------------------------------------------------------------------------

    async def events(self, match_id: str) -> list[ingest_service_pb2.InboxEvent]:
        """Every inbox event of the match, newest first."""
        events: list[ingest_service_pb2.InboxEvent] = []
        token = ""
        while True:
            page = await self.ingest.ListEvents(
                ingest_service_pb2.ListEventsRequest(
                    match_id=match_id, page_size=500, page_token=token
                )
            )
            events.extend(page.events)
            token = page.next_page_token
            if not token:
                return events

    async def run_poll(self) -> ingest_service_pb2.RunPollResponse:
        """IngestService.RunPoll."""
        response: ingest_service_pb2.RunPollResponse = await self.ingest.RunPoll(
            ingest_service_pb2.RunPollRequest()
        )
        return response

    async def open_in_voice(self) -> list[voice_service_pb2.VoiceMatch]:
        """The matches the voice service has open (every page)."""
        matches: list[voice_service_pb2.VoiceMatch] = []
        token = ""
        while True:
            page = await self.voice.ListMatches(
                voice_service_pb2.ListMatchesRequest(page_size=500, page_token=token)
            )
            matches.extend(page.matches)
            token = page.next_page_token
            if not token:
                return matches

    async def feed_messages(self, match: Match) -> list[dict[str, Any]]:
        """The match feed's messages about `match` (found by the footer naming it)."""
        messages = await self.discord.channel_messages(self.info["feed_channel_id"])
        footer = f"Match {match.match_id}"
        return [m for m in messages if any(e["footer"]["text"] == footer for e in m["embeds"])]


def status_name(event: ingest_service_pb2.InboxEvent) -> str:
    """The event's status without the enum prefix, e.g. `DELIVERED`."""
    return ingest_service_pb2.EventStatus.Name(event.status).removeprefix("EVENT_STATUS_")


def expected_channel_names(matches: Iterable[Match]) -> list[str]:
    """The names of the two team channels of each match, sorted."""
    return sorted(f"{m.prefix} · {name}" for m in matches for name in m.team_names)


def _names(channels: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(c["name"] for c in channels)


async def grpcurl(
    target: str, *command: str, token: str | None = None, body: str | None = None
) -> tuple[int, str, str]:
    """Run `grpcurl -plaintext [-H auth] [-d body] TARGET COMMAND...`; (code, stdout, stderr)."""
    flags: list[str] = []
    if token is not None:
        flags += ["-H", f"authorization: Bearer {token}"]
    if body is not None:
        flags += ["-d", body]
    process = await asyncio.create_subprocess_exec(
        str(GRPCURL),
        "-plaintext",
        *flags,
        target,
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()
