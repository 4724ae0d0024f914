"""Wiring of the registry: its gRPC server and its HTTP app (link pages, probes), and
`serve(settings)` that runs both in one TaskGroup with real parts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
from faceitvoice.v1 import registry_service_pb2, registry_service_pb2_grpc

from services.kit.database import create_pool, session_untouched, wait_for_database
from services.kit.embedded_postgres import resolve_database_url
from services.kit.faceit_api import CallHook, FaceitApiClient
from services.kit.faceit_retry import RetryPolicy
from services.kit.grpc_server import GrpcServer, service_server
from services.kit.http_server import HttpServer
from services.kit.migrations import apply_migrations
from services.registry.change_log import ChangeLogReader, ChangeNotifier
from services.registry.faceit_connect import FaceitConnectClient
from services.registry.http_app import create_app
from services.registry.link_flow import LinkFlow
from services.registry.link_states import LinkStateRepository
from services.registry.linking import PlayerLinker
from services.registry.metrics import RegistryMetrics
from services.registry.servicer import LinkChangeFeed, RegistryServiceServicer
from services.registry.settings import LinkVerification, RegistrySettings
from services.registry.store import PlayerLinkRepository

logger = logging.getLogger(__name__)

SERVICE_NAME: str = registry_service_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name
SCHEMA = "registry"
MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(target: asyncpg.Pool | asyncpg.Connection) -> list[str]:
    """Apply the registry schema's pending migrations; return the files applied."""
    return await apply_migrations(target, SCHEMA, MIGRATIONS)


def faceit_client(settings: RegistrySettings, on_call: CallHook | None = None) -> FaceitApiClient:
    """The FACEIT Data API client the settings describe."""
    return FaceitApiClient(
        settings.faceit_api_key.get_secret_value(),
        base_url=settings.faceit_api_base,
        timeout=settings.faceit_timeout_s,
        connect_timeout=settings.faceit_connect_timeout_s,
        retry=RetryPolicy(attempts=settings.faceit_max_attempts),
        on_call=on_call,
    )


def connect_client(settings: RegistrySettings) -> FaceitConnectClient:
    """The FACEIT Connect (OAuth) client the settings describe (faceit_oauth mode)."""
    assert settings.faceit_oauth_client_id is not None
    return FaceitConnectClient(
        settings.faceit_oauth_discovery_url,
        settings.faceit_oauth_client_id,
        settings.oauth_client_secret,
        timeout=settings.faceit_timeout_s,
        connect_timeout=settings.faceit_connect_timeout_s,
    )


def build_link_flow(
    settings: RegistrySettings,
    pool: asyncpg.Pool,
    faceit: FaceitApiClient,
    connect: FaceitConnectClient,
    metrics: RegistryMetrics,
) -> LinkFlow:
    """The verified-link flow over `pool`, FACEIT Connect and the Data API (for profiles)."""
    assert settings.link_public_base_url is not None
    return LinkFlow(
        LinkStateRepository(pool),
        PlayerLinkRepository(pool),
        connect,
        faceit,
        metrics,
        public_base_url=settings.link_public_base_url,
        state_ttl_s=settings.link_state_ttl_s,
        game=settings.faceit_game,
    )


def build_server(
    settings: RegistrySettings,
    pool: asyncpg.Pool,
    faceit: FaceitApiClient,
    flow: LinkFlow | None = None,
    metrics: RegistryMetrics | None = None,
) -> GrpcServer:
    """A registry gRPC server (not started) over `pool` and `faceit`, bound as configured.

    `flow` serves StartLink; without one StartLink is FAILED_PRECONDITION. Its calls are
    counted in `metrics` when given.
    """
    repository = PlayerLinkRepository(pool)
    linker = PlayerLinker(
        repository, faceit, game=settings.faceit_game, suggestion_limit=settings.faceit_suggestions
    )
    notifier = ChangeNotifier(pool)
    servicer = RegistryServiceServicer(
        repository,
        linker,
        verification=settings.link_verification,
        flow=flow,
        changes=LinkChangeFeed(ChangeLogReader(pool), notifier),
    )
    server = service_server(
        settings,
        SERVICE_NAME,
        lambda server: registry_service_pb2_grpc.add_RegistryServiceServicer_to_server(
            servicer, server
        ),
        metrics.grpc if metrics is not None else None,
    )
    server.add_cleanup(notifier.close)
    return server


async def serve(settings: RegistrySettings) -> None:
    """Database (embedded if no DATABASE_URL), pool, migrations, FACEIT clients, then serve
    gRPC and HTTP side by side.

    Runs until SIGTERM/SIGINT; then stops HTTP and gRPC gracefully and closes the clients and
    the pool. If either server dies, the other is stopped and the error propagates.
    """
    if settings.link_verification is LinkVerification.NICKNAME:
        logger.warning(
            "LINK_VERIFICATION=nickname: links are NOT verified; anyone can /register any "
            "FACEIT nickname and get that player's channel access. Use faceit_oauth."
        )
    dsn = await asyncio.to_thread(resolve_database_url, settings)
    await wait_for_database(dsn, settings.database_timeout_s)
    pool = await create_pool(dsn, reset=session_untouched)
    applied = await migrate(pool)
    logger.info("registry schema ready (%s migrations applied)", len(applied))
    metrics = RegistryMetrics()
    faceit = faceit_client(settings, metrics.count_faceit_call)
    connect = None
    flow = None
    if settings.link_verification is LinkVerification.FACEIT_OAUTH:
        connect = connect_client(settings)
        flow = build_link_flow(settings, pool, faceit, connect, metrics)
    server = build_server(settings, pool, faceit, flow, metrics)
    http = HttpServer(settings.http_host, settings.http_port)
    # Signals reach the gRPC server; the link pages stop with it. The clients and the pool
    # close after it stopped (its own cleanups give back the pool connection a watch held).
    server.add_cleanup(http.stop)
    try:
        app = create_app(pool, flow, metrics, link_state_ttl_s=settings.link_state_ttl_s)
        await http.start(app)
        async with asyncio.TaskGroup() as group:
            group.create_task(http.wait())
            await server.serve()
    finally:
        if connect is not None:
            await connect.close()
        await faceit.close()
        await pool.close()
