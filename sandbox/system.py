"""The whole system on one machine: embedded Postgres, both sandboxes, the three services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from devtools.processes import (
    ManagedProcess,
    child_environment,
    grpc_answer_probe,
    grpc_probe,
    python_module,
)
from sandbox.discord.client import DiscordSandboxClient
from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.connect import DISCOVERY_PATH
from services.kit.database import with_database
from services.kit.embedded_postgres import EmbeddedPostgres
from services.registry.link_flow import CALLBACK_PATH

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
WEBHOOK_HEADER = "X-Faceit-Signature"
LINK_VERIFICATIONS = ("faceit_oauth", "nickname")
"""LINK_VERIFICATION modes: sign in with FACEIT (verified links), or link by nickname."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SystemOptions:
    """How to run the system; the defaults suit the demo."""

    data_dir: Path = Path(".data")
    log_dir: Path | None = None
    database_url: str | None = None
    poll_interval_s: float = 30.0
    close_delay_s: float = 0.0
    faceit_args: tuple[str, ...] = ()
    discord_args: tuple[str, ...] = ()
    extra_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    start_timeout_s: float = 60.0
    link_verification: str = "faceit_oauth"
    voice_replicas: int = 1
    """Voice processes: the first takes the lease and serves, the others stand by."""
    voice_lease_timeout_s: float = 4.0
    """VOICE_LEASE_TIMEOUT_S: short on one machine, so a killed voice is replaced soon."""
    voice_lease_renew_s: float = 1.0


@dataclass
class Secrets:
    """Secrets made up for one run; nothing here is real."""

    bot_token: str = field(default_factory=lambda: "sandbox-bot-" + secrets.token_hex(12))
    grpc_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    faceit_api_key: str = field(default_factory=lambda: "sandbox-key-" + secrets.token_hex(12))
    oauth_client_id: str = field(default_factory=lambda: "sandbox-client-" + secrets.token_hex(8))
    oauth_client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))


class System:
    """Starts and stops every part; `info` is what a client needs to talk to it."""

    def __init__(self, options: SystemOptions | None = None) -> None:
        self.options = options or SystemOptions()
        self.secrets = Secrets()
        self.log_dir = self.options.log_dir or Path(tempfile.mkdtemp(prefix="faceit-voice-"))
        self.info: dict[str, Any] = {}
        self.processes: dict[str, ManagedProcess] = {}
        self._database_name: str | None = None
        self._admin_dsn: str | None = None
        self._service_env: dict[str, dict[str, str]] = {}

    async def start(self) -> dict[str, Any]:
        """Start everything in order and return `info`; on failure stop what was started."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self.info

    async def _start(self) -> None:
        database_url = await self._create_database()
        discord = await self._start_sandbox(
            "discord-sandbox",
            "sandbox.discord",
            "--bot-token",
            self.secrets.bot_token,
            *self.options.discord_args,
        )
        faceit = await self._start_sandbox(
            "faceit-sandbox",
            "sandbox.faceit",
            "--api-key",
            self.secrets.faceit_api_key,
            *self.options.faceit_args,
        )
        async with DiscordSandboxClient(discord["url"]) as client:
            guild = await client.create_guild("FACEIT hub")
            guild_id = guild["guild_id"]
            category = await client.create_channel(guild_id, "Matches", type=4)
            lobby = await client.create_channel(guild_id, "Lobby", type=2)
            feed = await client.create_channel(guild_id, "match-feed", type=0)

        voices = voice_names(self.options.voice_replicas)
        ports = {
            name: free_port()
            for name in (
                "registry",
                "registry_http",
                *voices,
                *(f"{name}_metrics" for name in voices),
                "ingest_grpc",
                "ingest",
            )
        }
        voice_addresses = [f"{LOOPBACK}:{ports[name]}" for name in voices]
        common = {
            "DATABASE_URL": database_url,
            "GRPC_AUTH_TOKEN": self.secrets.grpc_token,
            "LOG_LEVEL": "INFO",
            "FACEIT_API_KEY": self.secrets.faceit_api_key,
            "FACEIT_API_BASE": faceit["api_base"],
        }
        registry_http = f"http://{LOOPBACK}:{ports['registry_http']}"
        linking = await self._link_verification(faceit["url"], registry_http)
        self._service_env = {
            "registry": {
                **common,
                **linking,
                "REGISTRY_GRPC_PORT": str(ports["registry"]),
                "REGISTRY_HTTP_HOST": LOOPBACK,
                "REGISTRY_HTTP_PORT": str(ports["registry_http"]),
            },
            "voice": {
                **common,
                "REGISTRY_SERVICE_ADDR": f"{LOOPBACK}:{ports['registry']}",
                "DISCORD_TOKEN": self.secrets.bot_token,
                "DISCORD_GUILD_ID": str(guild_id),
                "DISCORD_CATEGORY_ID": str(category["channel_id"]),
                "DISCORD_LOBBY_CHANNEL_ID": str(lobby["channel_id"]),
                "DISCORD_API_BASE": discord["api_base"],
                "DISCORD_MATCH_FEED_CHANNEL_ID": str(feed["channel_id"]),
                "VOICE_CLOSE_DELAY_S": str(self.options.close_delay_s),
                # Voice needs the mode only; the OAuth client and its secret stay in the registry.
                "LINK_VERIFICATION": self.options.link_verification,
                "VOICE_LEASE_TIMEOUT_S": str(self.options.voice_lease_timeout_s),
                "VOICE_LEASE_RENEW_S": str(self.options.voice_lease_renew_s),
            },
            "ingest": {
                **common,
                "INGEST_HTTP_HOST": LOOPBACK,
                "INGEST_GRPC_HOST": LOOPBACK,
                "INGEST_HTTP_PORT": str(ports["ingest"]),
                "INGEST_GRPC_PORT": str(ports["ingest_grpc"]),
                # Several replicas: one target of every address, round_robin over the SERVING.
                "VOICE_SERVICE_ADDR": (
                    voice_addresses[0]
                    if len(voice_addresses) == 1
                    else "ipv4:" + ",".join(voice_addresses)
                ),
                "FACEIT_WEBHOOK_SECRET": self.secrets.webhook_secret,
                "FACEIT_WEBHOOK_HEADER": WEBHOOK_HEADER,
                "FACEIT_HUB_IDS": faceit["hub_id"],
                "FACEIT_POLL_INTERVAL_S": str(self.options.poll_interval_s),
            },
        }
        voice_env = self._service_env.pop("voice")
        for name in voices:
            self._service_env[name] = {
                **voice_env,
                "VOICE_GRPC_PORT": str(ports[name]),
                "VOICE_METRICS_PORT": str(ports[f"{name}_metrics"]),
            }
        for name, extra in self.options.extra_env.items():
            for service in voices if name == "voice" else [name]:
                self._service_env[service].update(extra)

        ingest_url = f"http://{LOOPBACK}:{ports['ingest']}"
        self.info = {
            "ready": True,
            "ingest_url": ingest_url,
            "webhook_url": ingest_url + "/faceit-webhook",
            "ingest_grpc": f"{LOOPBACK}:{ports['ingest_grpc']}",
            **{f"{name}_grpc": f"{LOOPBACK}:{ports[name]}" for name in voices},
            **{
                f"{name}_metrics": f"http://{LOOPBACK}:{ports[f'{name}_metrics']}/metrics"
                for name in voices
            },
            "registry_grpc": f"{LOOPBACK}:{ports['registry']}",
            "registry_http": registry_http,
            "link_verification": self.options.link_verification,
            "discord_url": discord["url"],
            "faceit_url": faceit["url"],
            "faceit_api_base": faceit["api_base"],
            "faceit_api_key": self.secrets.faceit_api_key,
            "hub_id": faceit["hub_id"],
            "guild_id": str(guild_id),
            "category_id": str(category["channel_id"]),
            "lobby_channel_id": str(lobby["channel_id"]),
            "feed_channel_id": str(feed["channel_id"]),
            "bot_user_id": discord["bot_user_id"],
            "webhook_header": WEBHOOK_HEADER,
            "webhook_secret": self.secrets.webhook_secret,
            "grpc_token": self.secrets.grpc_token,
            "database_url": database_url,
            "log_dir": str(self.log_dir),
        }
        for name in ("registry", *voices, "ingest"):
            await self.start_service(name, standby=name in voices[1:])

        async with (
            aiohttp.ClientSession() as http,
            http.post(
                faceit["url"] + "/_sandbox/subscriptions",
                json={
                    "url": self.info["webhook_url"],
                    "header_name": WEBHOOK_HEADER,
                    "header_value": self.secrets.webhook_secret,
                },
            ) as response,
        ):
            response.raise_for_status()

    async def _link_verification(self, faceit_url: str, registry_http: str) -> dict[str, str]:
        """The registry's LINK_* and FACEIT_OAUTH_* settings; in faceit_oauth mode this registers
        the OAuth client (its redirect URI the registry's callback) in the FACEIT sandbox."""
        mode = self.options.link_verification
        if mode not in LINK_VERIFICATIONS:
            raise ValueError(f"link verification must be one of {LINK_VERIFICATIONS}: {mode!r}")
        if mode == "nickname":
            return {"LINK_VERIFICATION": mode}
        async with FaceitSandboxClient(faceit_url) as faceit:
            await faceit.register_oauth_client(
                self.secrets.oauth_client_id,
                self.secrets.oauth_client_secret,
                [registry_http + CALLBACK_PATH],
            )
        return {
            "LINK_VERIFICATION": mode,
            "FACEIT_OAUTH_CLIENT_ID": self.secrets.oauth_client_id,
            "FACEIT_OAUTH_CLIENT_SECRET": self.secrets.oauth_client_secret,
            "FACEIT_OAUTH_DISCOVERY_URL": faceit_url + DISCOVERY_PATH,
            "LINK_PUBLIC_BASE_URL": registry_http,
        }

    async def start_service(self, name: str, *, standby: bool = False) -> None:
        """Start (or restart) one service and wait until its gRPC health says SERVING (a
        `standby` voice replica: until its health answers at all, NOT_SERVING)."""
        previous = self.processes.get(name)
        if previous is not None and previous.running:
            raise RuntimeError(f"{name} is already running")
        process = ManagedProcess(
            name,
            python_module(f"services.{name.split('-')[0]}"),
            env=child_environment(self._service_env[name]),
            log_dir=self.log_dir,
            cwd=self.log_dir,  # no developer .env is read by the children
        )
        self.processes[name] = process
        target = self.info[f"{name}_grpc"]
        probe = grpc_answer_probe(target) if standby else grpc_probe(target)
        # Their gRPC servers are up a moment before uvicorn binds HTTP.
        if name == "ingest":
            probe = _both(probe, http_probe(self.info["ingest_url"] + "/healthz"))
        if name == "registry":
            probe = _both(probe, http_probe(self.info["registry_http"] + "/healthz"))
        await process.start(ready_probe=probe, timeout=self.options.start_timeout_s)
        logger.info("%s is serving on %s", name, target)

    async def _start_sandbox(self, name: str, module: str, *args: str) -> dict[str, Any]:
        process = ManagedProcess(
            name,
            python_module(module, "--port", "0", *args),
            env=child_environment({}),
            log_dir=self.log_dir,
            cwd=self.log_dir,
        )
        self.processes[name] = process
        return await process.start(timeout=self.options.start_timeout_s)

    async def _create_database(self) -> str:
        """A database of its own for this run, on the given server or the embedded one."""
        if self.options.database_url is not None:
            self._admin_dsn = self.options.database_url
        else:
            embedded = EmbeddedPostgres(self.options.data_dir)
            self._admin_dsn = await asyncio.to_thread(embedded.start)
        self._database_name = "faceit_voice_sandbox_" + secrets.token_hex(6)
        conn = await asyncpg.connect(self._admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{self._database_name}"')
        finally:
            await conn.close()
        return with_database(self._admin_dsn, self._database_name)

    async def stop(self) -> None:
        """Stop the services (reverse order), then the sandboxes; drop the run's database."""
        for process in reversed(list(self.processes.values())):
            await process.stop()
        if self._admin_dsn and self._database_name:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                conn = await asyncpg.connect(self._admin_dsn)
                try:
                    await conn.execute(
                        f'DROP DATABASE IF EXISTS "{self._database_name}" WITH (FORCE)'
                    )
                finally:
                    await conn.close()
            self._database_name = None


def voice_names(replicas: int) -> list[str]:
    """The process names of the voice replicas: `voice`, then `voice-2`, `voice-3`..."""
    if replicas < 1:
        raise ValueError(f"voice replicas must be at least 1: {replicas}")
    return ["voice", *(f"voice-{number}" for number in range(2, replicas + 1))]


def http_probe(url: str) -> Callable[[], Awaitable[bool]]:
    """A readiness probe: whether GET `url` answers 200."""

    async def probe() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    return probe


def _both(
    first: Callable[[], Awaitable[bool]], second: Callable[[], Awaitable[bool]]
) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return await first() and await second()

    return probe
