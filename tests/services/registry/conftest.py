"""Fixtures of the registry tests: a migrated database, its pool, a running registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from sandbox.faceit.server import FaceitSandbox
from services.kit.database import create_pool
from services.kit.faceit_api import FaceitApiClient, RetryPolicy
from services.kit.grpc_client import GrpcClients
from services.kit.grpc_server import GrpcServer
from services.kit.settings import load_settings
from services.registry.repository import PlayerLinkRepository
from services.registry.schema import migrate
from services.registry.server import build_server
from services.registry.settings import RegistrySettings


@pytest.fixture
async def registry_database(fresh_database: str) -> str:
    """DSN of a fresh database with the registry schema migrated."""
    connection = await asyncpg.connect(fresh_database)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    return fresh_database


@pytest.fixture
async def pool(registry_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the migrated database."""
    opened = await create_pool(registry_database, max_size=20)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def repository(pool: asyncpg.Pool) -> PlayerLinkRepository:
    """The repository over the pool."""
    return PlayerLinkRepository(pool)


API_KEY = "registry-sandbox-key"
TOKEN = "T"


@dataclass
class Registry:
    """A running registry and what the tests look at: stub, sandbox, pool, SQL statements."""

    stub: pb_grpc.RegistryServiceStub
    sandbox: FaceitSandbox
    pool: asyncpg.Pool
    server: GrpcServer
    statements: list[str]

    def registry_statements(self) -> list[str]:
        """The SQL statements that touched the registry schema (not pool resets)."""
        return [query for query in self.statements if "registry." in query]


@pytest.fixture
async def registry(registry_database: str) -> AsyncIterator[Registry]:
    """A registry on port 0 over a statement-logging pool and a fresh FACEIT sandbox."""
    async with running_registry(registry_database) as running:
        yield running


@asynccontextmanager
async def running_registry(dsn: str) -> AsyncIterator[Registry]:
    """A registry on port 0 over a statement-logging pool on `dsn` and a fresh FACEIT sandbox."""
    statements: list[str] = []

    async def log_queries(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda record: statements.append(record.query))

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=20, init=log_queries)
    async with FaceitSandbox(api_key=API_KEY) as sandbox:
        settings = load_settings(
            RegistrySettings,
            _env_file=None,
            grpc_host="127.0.0.1",
            grpc_port=0,
            grpc_auth_token=TOKEN,
            faceit_api_key=API_KEY,
            faceit_api_base=sandbox.api_base,
        )
        faceit = FaceitApiClient(
            API_KEY,
            base_url=sandbox.api_base,
            timeout=2.0,
            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
        )
        server = build_server(settings, pool, faceit)
        port = await server.start()
        clients = GrpcClients(token=TOKEN, timeout=20.0)
        stub = pb_grpc.RegistryServiceStub(clients.channel(f"127.0.0.1:{port}"))
        try:
            yield Registry(stub, sandbox, pool, server, statements)
        finally:
            await clients.close()
            await server.stop(0)
            await faceit.close()
            await pool.close()
