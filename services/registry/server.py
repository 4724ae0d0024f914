"""Wiring of the registry's gRPC server, and `serve(settings)` that runs it with real parts."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from faceitvoice.v1 import registry_service_pb2, registry_service_pb2_grpc

from services.kit.database import create_pool, wait_for_database
from services.kit.embedded_postgres import resolve_database_url
from services.kit.faceit_api import CallHook, FaceitApiClient, RetryPolicy
from services.kit.grpc_server import GrpcServer
from services.registry.linking import PlayerLinker
from services.registry.repository import PlayerLinkRepository
from services.registry.schema import migrate
from services.registry.servicer import RegistryServiceServicer
from services.registry.settings import RegistrySettings

logger = logging.getLogger(__name__)

SERVICE_NAME: str = registry_service_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name


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


def build_server(
    settings: RegistrySettings, pool: asyncpg.Pool, faceit: FaceitApiClient
) -> GrpcServer:
    """A registry gRPC server (not started) over `pool` and `faceit`, bound as configured."""
    repository = PlayerLinkRepository(pool)
    linker = PlayerLinker(
        repository, faceit, game=settings.faceit_game, suggestion_limit=settings.faceit_suggestions
    )
    servicer = RegistryServiceServicer(repository, linker)
    return GrpcServer(
        registrars=[
            lambda server: registry_service_pb2_grpc.add_RegistryServiceServicer_to_server(
                servicer, server
            )
        ],
        service_names=[SERVICE_NAME],
        port=settings.grpc_port,
        host=settings.grpc_host,
        auth_token=settings.grpc_auth_token,
    )


async def serve(settings: RegistrySettings) -> None:
    """Database (embedded if no DATABASE_URL), migrations, pool, FACEIT client, then serve.

    Runs until SIGTERM/SIGINT; then stops gracefully and closes the client and the pool.
    """
    dsn = await asyncio.to_thread(resolve_database_url, settings)
    await wait_for_database(dsn, settings.database_timeout_s)
    connection = await asyncpg.connect(dsn)
    try:
        applied = await migrate(connection)
    finally:
        await connection.close()
    logger.info("registry schema ready (%s migrations applied)", len(applied))
    pool = await create_pool(dsn)
    faceit = faceit_client(settings)
    server = build_server(settings, pool, faceit)
    server.add_cleanup(pool.close)
    server.add_cleanup(faceit.close)
    await server.serve()
