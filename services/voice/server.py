"""Wiring of the voice service (lease, bot, gRPC server, deletions, link watch, feed, metrics)
and `serve()`."""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path

import asyncpg
import discord
import discord.http
from faceitvoice.v1 import voice_service_pb2, voice_service_pb2_grpc
from grpc_health.v1 import health_pb2

from services.kit.database import (
    DATABASE_UNAVAILABLE,
    create_pool,
    open_connections,
    wait_for_database,
)
from services.kit.embedded_postgres import resolve_database_url
from services.kit.grpc_client import GrpcClients
from services.kit.grpc_server import service_server
from services.kit.http_server import HttpServer
from services.kit.metrics import metrics_app
from services.kit.migrations import apply_migrations
from services.voice.admin import AdminCommands
from services.voice.admin_commands import CONFIRM_TIMEOUT_S, add_admin_commands
from services.voice.bot import VoiceBot
from services.voice.cache import ActiveMatchCache
from services.voice.commands import PlayerCommands, add_commands
from services.voice.deletions import DeletionWorker
from services.voice.feed import MatchFeedWorker
from services.voice.feed_discord import PycordFeedChannel, check_feed_channel
from services.voice.feed_store import FeedStore
from services.voice.global_limit import GlobalLimit
from services.voice.learned_limits import LearnedLimitStore
from services.voice.lease import FencingToken, LeaseLost, VoiceLease, is_fenced_out
from services.voice.link_watch import LinkWatcher
from services.voice.matches import MatchService
from services.voice.metrics import VoiceMetrics
from services.voice.pycord_discord import PycordDiscord
from services.voice.readiness import GatewayReadiness
from services.voice.reconcile import Reconciler
from services.voice.registry_client import RegistryClient
from services.voice.servicer import VoiceServiceServicer
from services.voice.settings import LinkVerification, VoiceSettings
from services.voice.startup import StartupError, login_and_check
from services.voice.store import VoiceStore, prepare_repairs

logger = logging.getLogger(__name__)

SERVICE_NAME = voice_service_pb2.DESCRIPTOR.services_by_name["VoiceService"].full_name
REPLICA_HEALTH = "voice-replica"
"""The health name SERVING on every running replica, active or standby (Kubernetes probes it:
a standby must count as ready, or a rollout would wait for it forever). "" and the service's
name are SERVING on the active replica only, once its gateway session is ready: what clients
balance on."""
SCHEMA = "voice"
MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the voice schema's pending migrations; return the files applied."""
    return await apply_migrations(pool, SCHEMA, MIGRATIONS)


async def serve(settings: VoiceSettings) -> None:
    """Database, migrations, registry channel, Discord checks, then the service until it stops."""
    if settings.link_verification is LinkVerification.NICKNAME:
        logger.warning(
            "LINK_VERIFICATION=nickname: /register <nickname> links any FACEIT account "
            "unverified, with that player's channel access. Use faceit_oauth."
        )
    dsn = await asyncio.to_thread(resolve_database_url, settings)
    clients = GrpcClients(token=settings.grpc_auth_token, timeout=settings.registry_timeout_s)
    try:
        await wait_for_database(dsn)
        # Every connection writes under this replica's fencing token (0 until it holds the lease).
        fencing = FencingToken(idle_in_transaction_s=settings.lease_renew_s)
        pool = await create_pool(dsn, connect=fencing.connect, arrays_ahead=True)
        try:
            await migrate(pool)
            registry = RegistryClient(clients.channel(settings.registry_service_addr))
            service = VoiceService(settings, pool, registry, fencing=fencing)
            try:
                await service.check_discord()
            except StartupError:
                await service.bot.close()
                raise
            await service.run()
        finally:
            await pool.close()
    finally:
        await clients.close()


class DiscordConnectionEnded(Exception):
    """The gateway connection stopped for good; the process must stop too."""


class VoiceService:
    """Everything one voice process runs; `check_discord()` then `run()`.

    As a standby (another replica holds the lease) it answers health NOT_SERVING and its RPCs
    UNAVAILABLE, and stays off the Discord gateway. Once it holds the lease it connects,
    reconciles and serves; every Discord write is preceded by `lease.check()`.
    """

    def __init__(
        self,
        settings: VoiceSettings,
        pool: asyncpg.Pool,
        registry: RegistryClient,
        *,
        fencing: FencingToken | None = None,
        gateway_wait_s: float = 10.0,
        link_retry_s: float | None = None,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
        **bot_options: object,
    ) -> None:
        self.settings = settings
        self.metrics = VoiceMetrics()
        self.metrics_http = HttpServer(settings.metrics_host, settings.metrics_port)
        self.readiness = GatewayReadiness(wait_s=gateway_wait_s)
        self.lease = VoiceLease(
            pool,
            timeout_s=settings.lease_timeout_s,
            renew_s=settings.lease_renew_s,
            fencing=fencing,
        )
        self.lease.add_listener(self._lease_changed)
        self._regained = asyncio.Event()
        self.ignored_moves = 0
        """Gateway voice moves ignored for want of the lease (tests wait on it)."""
        discord.http.Route.API_BASE_URL = settings.discord_rest_base
        self.store = VoiceStore(pool)
        self._pool = pool
        self.cache = ActiveMatchCache()
        # One count of Discord's global limit for py-cord's requests and voice's own.
        global_limit = GlobalLimit()
        self.learned_limits = LearnedLimitStore(pool)
        self.bot = VoiceBot(
            guild_id=settings.discord_guild_id,
            events=self,
            metrics=self.metrics,
            global_limit=global_limit,
            **bot_options,
        )
        self.discord = PycordDiscord(
            self.bot,
            settings.discord_guild_id,
            settings.discord_category_id,
            self.metrics,
            staff_role_ids=settings.discord_staff_role_ids,
            guard=self.lease.check,
            global_limit=global_limit,
            learned=self.learned_limits.learned,
        )
        self.feed = (
            MatchFeedWorker(
                FeedStore(pool),
                self.store,
                registry,
                PycordFeedChannel(self.bot, self.lease.check),
                settings.discord_match_feed_channel_id,
            )
            if settings.discord_match_feed_channel_id is not None
            else None
        )
        self.matches = MatchService(
            store=self.store,
            cache=self.cache,
            discord=self.discord,
            resolver=registry,
            guild_id=settings.discord_guild_id,
            lobby_channel_id=settings.discord_lobby_channel_id,
            close_delay_s=settings.voice_close_delay_s,
            naming=settings.channel_naming,
            feed=self.feed,
            guessed=self.metrics.guessed,
        )
        self.reconciler = Reconciler(self.cache, self.matches)
        self.deletions = DeletionWorker(self.store, self.matches)
        self.commands = PlayerCommands(
            registry, self.matches, self.cache, verification=settings.link_verification
        )
        add_commands(self.bot, self.commands)
        self.admin = AdminCommands(self.matches, self.reconciler)
        add_admin_commands(self.bot, self.admin, confirm_timeout_s=confirm_timeout_s)
        self.link_watch = LinkWatcher(
            registry,
            self.store,
            apply=self.commands.link_changed,
            resync=self.matches.resync_open_matches,
            **({"first_retry_s": link_retry_s} if link_retry_s is not None else {}),
        )
        servicer = VoiceServiceServicer(self.matches, self._ready, active=self.lease.check)
        self.grpc = service_server(
            settings,
            SERVICE_NAME,
            lambda server: voice_service_pb2_grpc.add_VoiceServiceServicer_to_server(
                servicer, server
            ),
            self.metrics.grpc,
        )

    @property
    def acting(self) -> bool:
        """Whether this replica holds the lease now (gateway events are ignored otherwise)."""
        return self.lease.held

    async def _ready(self) -> None:
        """Before a match change: the lease now (Unavailable at once if not), then the gateway."""
        self.lease.check()
        await self.readiness.wait()

    async def gateway_ready(self) -> None:
        """Serve, and reconcile, on every (re)connect of the gateway."""
        self.metrics.gateway_connected.set(1)
        await self.readiness.ready()
        if self.acting:
            await self.reconciler.run()

    async def _lease_changed(self, held: bool) -> None:
        self.metrics.lease_held.set(1 if held else 0)
        await self._report_health(self.readiness.is_ready)
        if held:
            self._regained.set()

    async def gateway_lost(self) -> None:
        """Stop serving match changes until the gateway session is ready again."""
        self.metrics.gateway_connected.set(0)
        await self.readiness.lost()

    def _scraped(self) -> None:
        """Read what the metrics show as it is now, at each scrape."""
        matches, channels = self.cache.counts()
        self.metrics.open_matches.set(matches)
        self.metrics.match_channels.set(channels)
        latency = self.bot.latency  # nan or inf until the first heartbeat is acknowledged
        if math.isfinite(latency):
            self.metrics.gateway_latency.set(latency)

    async def _report_health(self, gateway_ready: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if gateway_ready and self.lease.held
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.grpc.health.set(name, status)

    async def voice_changed(self, user_id: int, before: int | None, after: int | None) -> None:
        """Live moves of match players (by the lease holder only)."""
        if not self.acting:
            self.ignored_moves += 1
            logger.info("voice move of %s ignored: this replica does not hold the lease", user_id)
            return
        await self.matches.voice_changed(user_id, before, after)

    async def check_discord(self) -> None:
        """Log in and check guild and permissions; StartupError says why the service cannot run."""
        await login_and_check(
            self.bot,
            self.settings.discord_token.get_secret_value(),
            self.settings.discord_guild_id,
            self.settings.discord_api_base,
            self.settings.discord_staff_role_ids,
        )
        if self.settings.discord_match_feed_channel_id is not None:
            await check_feed_channel(
                self.bot,
                self.settings.discord_guild_id,
                self.settings.discord_match_feed_channel_id,
            )

    async def _gateway(self) -> None:
        await self.bot.connect(reconnect=True)
        raise DiscordConnectionEnded("the Discord gateway connection ended")

    async def run(self) -> None:
        """Run the gRPC server and the lease; once the lease is held, the bot, the deletion
        worker and the watch of link changes; until one stops or a signal.

        A normal stop (SIGTERM/SIGINT) stops the gRPC server gracefully, releases the lease
        and closes the bot; a failure of any sibling (LeaseLost: another replica took over)
        cancels the others and propagates. The metrics are served throughout, on their
        own port, by standby and active alike.
        """
        try:
            await self.metrics_http.start(metrics_app(self.metrics.registry, self._scraped))
            async with asyncio.TaskGroup() as group:
                group.create_task(self.metrics_http.wait(), name="metrics-http")
                group.create_task(self._serve(), name="grpc-server")
                group.create_task(self.lease.run(), name="voice-lease")
                group.create_task(self._act(), name="active-replica")
        except* _Stopped:
            logger.info("voice service stopped")
        except* LeaseLost as lost:
            raise LeaseLost(str(lost.exceptions[0])) from None
        finally:
            await self.bot.close()
            await self.discord.close()
            await self.metrics_http.stop()

    async def _act(self) -> None:
        """What only the lease holder runs; it starts once the lease is taken."""
        await self.lease.acquired()
        # Before any Discord call: a restart's repairs start from the limits learned before,
        # and from the matches read before the gateway connects (its first pass then begins
        # with Discord's calls).
        limits, _ = await asyncio.gather(self.learned_limits.load(), self.reconciler.read_ahead())
        self.discord.seed_limits(limits)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._gateway(), name="discord-gateway")
            group.create_task(self._open_connections(), name="database-connections")
            group.create_task(self.learned_limits.run(), name="learned-rate-limits")
            group.create_task(self.deletions.run(), name="channel-deletions")
            group.create_task(self.link_watch.run(), name="link-changes")
            group.create_task(self._reconcile_when_regained(), name="lease-regained")
            if self.feed is not None:
                group.create_task(self.feed.run(), name="match-feed")

    async def _open_connections(self) -> None:
        """The lease replaced every connection: open them again while the gateway connects,
        each with the repairs' writes prepared, so that the repairs at ready do not each open
        their own, nor plan those writes all at once."""
        try:
            await open_connections(self._pool, prepare=prepare_repairs)
        except DATABASE_UNAVAILABLE as error:
            logger.warning("database connections not opened ahead (%r)", error)
        except asyncpg.PostgresError as error:
            if not is_fenced_out(error):
                raise
            logger.warning("database connections not prepared: the lease was lost (%r)", error)

    async def _reconcile_when_regained(self) -> None:
        """After a lapse (renewals late, nobody took over), events may have been missed."""
        self._regained.clear()
        while True:
            await self._regained.wait()
            self._regained.clear()
            if self.readiness.is_ready:
                await self.reconciler.run()

    async def _serve(self) -> None:
        # start() reports SERVING; correct it before anything can ask (no await in between
        # yields to the loop: health.set only awaits when someone watches).
        await self.grpc.start()
        await self.readiness.report_to(self._report_health)
        await self.grpc.health.set(REPLICA_HEALTH, health_pb2.HealthCheckResponse.SERVING)
        await self.grpc.serve()
        raise _Stopped


class _Stopped(Exception):
    """The gRPC server stopped on a signal: the siblings stop with it."""
