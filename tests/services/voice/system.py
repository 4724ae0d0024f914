"""An in-process voice system for end-to-end tests: Discord and FACEIT sandboxes, the real registry,
the real voice service (py-cord bot + gRPC), each on 127.0.0.1 port 0, over real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from faceitvoice.v1 import match_pb2
from faceitvoice.v1 import registry_service_pb2 as registry_pb
from faceitvoice.v1 import registry_service_pb2_grpc as registry_grpc
from faceitvoice.v1 import voice_service_pb2 as voice_pb
from faceitvoice.v1 import voice_service_pb2_grpc as voice_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox.discord import DiscordSandbox, DiscordSandboxClient, SandboxConfig
from sandbox.discord import permissions as perm
from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.connect import DISCOVERY_PATH
from sandbox.faceit.server import FaceitSandbox
from services.kit.database import create_pool
from services.kit.faceit_api import FaceitApiClient
from services.kit.faceit_retry import RetryPolicy
from services.kit.grpc_client import GrpcClients
from services.kit.http_server import HttpServer
from services.kit.settings import load_settings
from services.registry.http_app import create_app
from services.registry.metrics import RegistryMetrics
from services.registry.server import build_link_flow, build_server, connect_client
from services.registry.server import migrate as migrate_registry
from services.registry.settings import RegistrySettings
from services.voice.lease import FencingToken
from services.voice.registry_client import RegistryClient
from services.voice.server import VoiceService
from services.voice.server import migrate as migrate_voice
from services.voice.settings import VoiceSettings
from tests.services.registry.conftest import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    register_oauth_client,
)
from tests.support import eventually

BOT_TOKEN = "voice-e2e-bot-token"
GRPC_TOKEN = "voice-e2e-grpc-token"


@dataclass
class VoiceSystem:
    """Handles on every running part, plus helpers the tests share."""

    discord: DiscordSandbox
    control: DiscordSandboxClient
    faceit: FaceitSandboxClient
    registry: registry_grpc.RegistryServiceStub
    pool: asyncpg.Pool
    clients: GrpcClients
    registry_addr: str
    guild_id: int
    lobby_id: int
    bot_role_id: int
    running_registry: RunningRegistry
    voice: VoiceService | None = None
    stub: voice_grpc.VoiceServiceStub | None = None
    health: health_pb2_grpc.HealthStub | None = None
    _task: asyncio.Task[None] | None = None
    players: dict[str, int] = field(default_factory=dict)

    def settings(self, **overrides: Any) -> VoiceSettings:
        values: dict[str, Any] = {
            "discord_token": BOT_TOKEN,
            "discord_guild_id": self.guild_id,
            "discord_lobby_channel_id": self.lobby_id,
            "discord_api_base": self.discord.url + "/api",
            "grpc_host": "127.0.0.1",
            "grpc_port": 0,
            "metrics_port": 0,
            "registry_service_addr": self.registry_addr,
            "grpc_auth_token": GRPC_TOKEN,
            "link_verification": self.running_registry.link_verification,
        }
        values.update(overrides)
        return load_settings(VoiceSettings, _env_file=None, **values)

    def build(
        self,
        *,
        gateway_wait_s: float = 10.0,
        confirm_timeout_s: float = 60.0,
        pool: asyncpg.Pool | None = None,
        fencing: FencingToken | None = None,
        **overrides: Any,
    ) -> VoiceService:
        """A voice service (not started) wired to this system (on `pool`, fenced by `fencing`,
        when given)."""
        registry = RegistryClient(self.clients.channel(self.registry_addr))
        return VoiceService(
            self.settings(**overrides),
            pool or self.pool,
            registry,
            fencing=fencing,
            gateway_wait_s=gateway_wait_s,
            confirm_timeout_s=confirm_timeout_s,
            guild_ready_timeout=0.1,
        )

    async def start_voice(self, **options: Any) -> VoiceService:
        """Check Discord, run the service in a task, wait for gRPC and the first reconcile
        (`options` as for `build`)."""
        service = self.build(**options)
        await service.check_discord()
        self._task = asyncio.create_task(service.run())
        self.voice = service

        async def serving() -> int:
            return service.grpc.port

        async def reconciled() -> bool:
            return service.reconciler.runs > 0

        await eventually(serving, what="the voice gRPC server")
        await eventually(reconciled, timeout=20, what="the bot's first reconciliation")
        self.stub = voice_grpc.VoiceServiceStub(
            self.clients.channel(f"127.0.0.1:{service.grpc.port}")
        )
        self.health = health_pb2_grpc.HealthStub(
            self.clients.channel(f"127.0.0.1:{service.grpc.port}")
        )
        return service

    async def health_status(self) -> str:
        """The voice server's overall gRPC health status name."""
        assert self.health is not None
        response = await self.health.Check(health_pb2.HealthCheckRequest(service=""))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    async def stop_voice(self) -> None:
        """Cancel the running service and wait for it to finish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.voice is not None:
            await self.voice.bot.close()
            self.voice = None

    async def member(self, name: str, *, faceit_id: str | None = None) -> int:
        """A guild member; with `faceit_id`, also a FACEIT player linked to them."""
        user_id = int((await self.control.add_member(self.guild_id, name))["user_id"])
        if faceit_id is not None:
            await self.faceit.create_player(name, player_id=faceit_id, skill_level=7)
            await self.registry.LinkPlayer(
                registry_pb.LinkPlayerRequest(discord_user_id=user_id, faceit_nickname=name)
            )
        return user_id

    async def guild_state(self) -> dict[str, Any]:
        return await self.control.get_guild(self.guild_id)

    async def voice_of(self, user_id: int) -> int | None:
        state = await self.guild_state()
        value = state["voice_states"].get(str(user_id))
        return int(value) if value else None

    async def join_lobby(self, *user_ids: int) -> None:
        """Connect members to the lobby and wait until the bot sees them there."""
        for user_id in user_ids:
            await self.put_in_voice(user_id, self.lobby_id)

    async def put_in_voice(self, user_id: int, channel_id: int, *, force: bool = False) -> None:
        """Connect a member to a voice channel (`force`: even without access); the bot sees it."""
        await self.control.set_voice(self.guild_id, user_id, channel_id, force=force)
        await self.bot_sees(user_id, channel_id)

    async def bot_sees(self, user_id: int, channel_id: int | None) -> None:
        """Wait until the gateway has told the bot the member is in `channel_id` (None: out)."""

        async def seen() -> bool:
            assert self.voice is not None
            return self.voice.discord.voice_channel_of(user_id) == channel_id

        await eventually(seen, what=f"the bot to see member {user_id} in {channel_id}")

    async def wait_in(self, user_id: int, channel_id: int | None) -> None:
        """Wait until the member is connected to `channel_id` (None: disconnected)."""

        async def there() -> bool:
            return await self.voice_of(user_id) == channel_id

        await eventually(there, what=f"member {user_id} in channel {channel_id}")

    async def pair_in_team_channel(self, match_id: str) -> tuple[int, int, int]:
        """Linked members ada and ben (p-ada, p-ben) of one team, moved into its channel by
        OpenMatch version 1 of `match_id`: (ada, ben, channel id). Voice must be running."""
        assert self.stub is not None
        ada = await self.member("ada", faceit_id="p-ada")
        ben = await self.member("ben", faceit_id="p-ben")
        await self.join_lobby(ada, ben)
        opened = await self.stub.OpenMatch(match(match_id, 1, ["p-ada", "p-ben"]))
        team = opened.match.channels[0].channel_id
        for user_id in (ada, ben):
            await self.bot_sees(user_id, team)
        return ada, ben, team

    async def admin(self, name: str) -> int:
        """A guild member with a role that has ADMINISTRATOR (sees and joins every channel)."""
        user_id = await self.member(name)
        role = await self.control.create_role(self.guild_id, "admins", perm.ADMINISTRATOR)
        await self.control.add_member_role(self.guild_id, user_id, role["role_id"])
        return user_id

    async def grant_manage_roles(self) -> None:
        """Give the bot's role MANAGE_ROLES, so it edits overwrites in place."""
        await self.control.edit_role(
            self.guild_id, self.bot_role_id, permissions=perm.DEFAULT_BOT | perm.MANAGE_ROLES
        )

    async def trespassers(self) -> list[tuple[int, int]]:
        """(member, channel) for each member connected to a voice channel they cannot view."""
        found = []
        for user_id, channel_id in (await self.guild_state())["voice_states"].items():
            if (
                channel_id
                and user_id not in (await self.control.channel_access(channel_id))["view"]
            ):
                found.append((int(user_id), int(channel_id)))
        return found

    async def match_channel_names(self) -> list[str]:
        """Names of the guild's channels that look like match channels."""
        channels = (await self.guild_state())["channels"]
        return sorted(c["name"] for c in channels if c["name"].startswith("Match "))


def match(
    match_id: str, version: int, *rosters: list[str], names: tuple[str, str] = ("", "")
) -> voice_pb.OpenMatchRequest:
    """An OpenMatchRequest whose teams have these FACEIT player ids."""
    teams = [
        match_pb2.Team(
            faction=f"faction{i + 1}",
            name=names[i] if i < len(names) else "",
            roster=[match_pb2.Player(faceit_player_id=p, nickname=p) for p in roster],
        )
        for i, roster in enumerate(rosters)
    ]
    return voice_pb.OpenMatchRequest(
        match=match_pb2.Match(match_id=match_id, version=version, teams=teams)
    )


class RunningRegistry:
    """The real registry of a voice system: restartable on the same gRPC port, in either mode
    (faceit_oauth with its link pages on HTTP and the OAuth client registered in the FACEIT
    sandbox)."""

    def __init__(self, pool: asyncpg.Pool, sandbox: FaceitSandbox, link_verification: str) -> None:
        self._pool = pool
        self._sandbox = sandbox
        self.link_verification = link_verification
        self.port = 0
        self.http_port = 0
        self._stack: contextlib.AsyncExitStack | None = None

    async def start(self) -> int:
        """Serve gRPC (on the same port as before, if any) and, in faceit_oauth mode, HTTP."""
        stack = contextlib.AsyncExitStack()
        oauth = self.link_verification == "faceit_oauth"
        http = HttpServer("127.0.0.1", self.http_port)
        overrides: dict[str, Any] = {
            "grpc_port": self.port,
            "link_verification": self.link_verification,
        }
        if oauth:
            self.http_port = http.bind()
            overrides["link_public_base_url"] = f"http://127.0.0.1:{self.http_port}"
        settings = load_settings(
            RegistrySettings,
            _env_file=None,
            grpc_host="127.0.0.1",
            grpc_auth_token=GRPC_TOKEN,
            faceit_api_key=API_KEY,
            faceit_api_base=self._sandbox.api_base,
            faceit_oauth_client_id=CLIENT_ID,
            faceit_oauth_client_secret=CLIENT_SECRET,
            faceit_oauth_discovery_url=f"{self._sandbox.url}{DISCOVERY_PATH}",
            **overrides,
        )
        faceit_api = FaceitApiClient(
            API_KEY,
            base_url=self._sandbox.api_base,
            timeout=2.0,
            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
        )
        stack.push_async_callback(faceit_api.close)
        flow = None
        if oauth:
            connect = connect_client(settings)
            stack.push_async_callback(connect.close)
            metrics = RegistryMetrics()
            flow = build_link_flow(settings, self._pool, faceit_api, connect, metrics)
            await http.start(create_app(self._pool, flow, metrics, link_state_ttl_s=600))
            stack.push_async_callback(http.stop)
            register_oauth_client(self._sandbox, settings.link_public_base_url or "")
        server = build_server(settings, self._pool, faceit_api, flow)
        self.port = await server.start()
        stack.push_async_callback(server.stop, 0)
        self._stack = stack
        return self.port

    async def stop(self) -> None:
        """Stop serving (the port stays this registry's for the next start)."""
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def restart(self) -> None:
        """Stop, then serve again on the same port."""
        await self.stop()
        await self.start()


@asynccontextmanager
async def voice_system(
    database_url: str,
    config: SandboxConfig | None = None,
    *,
    registry_database_url: str | None = None,
    link_verification: str = "nickname",
) -> AsyncIterator[VoiceSystem]:
    """Everything but the voice service running; `start_voice()` starts it.

    The registry shares the voice pool, or has its own on `registry_database_url` (a proxy
    that a test can cut, for a registry database outage). Voice's LINK_VERIFICATION follows the
    registry's.
    """
    connection = await asyncpg.connect(database_url)
    try:
        await migrate_registry(connection)
    finally:
        await connection.close()
    pool = await create_pool(database_url, max_size=10)
    registry_pool = pool
    if registry_database_url is not None:
        registry_pool = await create_pool(registry_database_url, max_size=5)
    await migrate_voice(pool)
    discord = DiscordSandbox(bot_token=BOT_TOKEN, config=config)
    await discord.start()
    clients = GrpcClients(token=GRPC_TOKEN, timeout=30.0)
    async with (
        FaceitSandbox(api_key=API_KEY) as faceit_sandbox,
        DiscordSandboxClient(discord.url) as control,
        FaceitSandboxClient(faceit_sandbox.url) as faceit,
    ):
        registry = RunningRegistry(registry_pool, faceit_sandbox, link_verification)
        address = f"127.0.0.1:{await registry.start()}"
        guild = await control.create_guild("FACEIT hub")
        bot_role = int(guild["bot_role_id"])
        guild_id = int(guild["guild_id"])
        lobby = await control.create_channel(guild_id, "Lobby")
        system = VoiceSystem(
            discord=discord,
            control=control,
            faceit=faceit,
            registry=registry_grpc.RegistryServiceStub(clients.channel(address)),
            pool=pool,
            clients=clients,
            registry_addr=address,
            guild_id=guild_id,
            lobby_id=int(lobby["channel_id"]),
            bot_role_id=bot_role,
            running_registry=registry,
        )
        try:
            yield system
        finally:
            await system.stop_voice()
            await registry.stop()
            await clients.close()
            await discord.stop()
            if registry_pool is not pool:
                registry_pool.terminate()
            await pool.close()
