"""Fixtures of the registry tests: a migrated database, its pool, a running registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from sandbox.faceit.connect import DISCOVERY_PATH
from sandbox.faceit.connect_grants import OAuthClient
from sandbox.faceit.server import FaceitSandbox
from services.kit.database import create_pool
from services.kit.faceit_api import FaceitApiClient
from services.kit.faceit_retry import RetryPolicy
from services.kit.grpc_client import GrpcClients
from services.kit.grpc_server import GrpcServer
from services.kit.http_server import HttpServer
from services.kit.settings import load_settings
from services.registry.http_app import create_app
from services.registry.link_flow import CALLBACK_PATH
from services.registry.metrics import RegistryMetrics
from services.registry.server import (
    build_link_flow,
    build_server,
    connect_client,
    migrate,
)
from services.registry.settings import RegistrySettings
from services.registry.store import PlayerLinkRepository


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
CLIENT_ID = "0f8e4d3c-2b1a-4c5d-9e8f-7a6b5c4d3e2f"
CLIENT_SECRET = "registry-test-oauth-secret"


@dataclass
class Registry:
    """A running registry and what the tests look at: stub, sandbox, pool, SQL statements."""

    stub: pb_grpc.RegistryServiceStub
    sandbox: FaceitSandbox
    pool: asyncpg.Pool
    server: GrpcServer
    statements: list[str]
    metrics: RegistryMetrics

    def registry_statements(self) -> list[str]:
        """The SQL statements that touched the registry schema (not pool resets)."""
        return [query for query in self.statements if "registry." in query]


def registry_settings(sandbox: FaceitSandbox, **overrides: object) -> RegistrySettings:
    """Settings of a test registry on port 0 talking to `sandbox` (Data API and Connect)."""
    return load_settings(
        RegistrySettings,
        _env_file=None,
        grpc_host="127.0.0.1",
        grpc_port=0,
        grpc_auth_token=TOKEN,
        faceit_api_key=API_KEY,
        faceit_api_base=sandbox.api_base,
        faceit_oauth_client_id=CLIENT_ID,
        faceit_oauth_client_secret=CLIENT_SECRET,
        faceit_oauth_discovery_url=f"{sandbox.url}{DISCOVERY_PATH}",
        **overrides,
    )


@pytest.fixture
async def registry(registry_database: str) -> AsyncIterator[Registry]:
    """A registry (nickname mode) on port 0 over a statement-logging pool and a fresh FACEIT
    sandbox."""
    async with running_registry(registry_database) as running:
        yield running


@asynccontextmanager
async def running_registry(
    dsn: str, *, link_verification: str = "nickname"
) -> AsyncIterator[Registry]:
    """A registry on port 0 over a statement-logging pool on `dsn` and a fresh FACEIT sandbox
    (gRPC only: in faceit_oauth mode it has no link flow, so StartLink is refused)."""
    statements: list[str] = []

    async def log_queries(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda record: statements.append(record.query))

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=20, init=log_queries)
    async with FaceitSandbox(api_key=API_KEY) as sandbox:
        settings = registry_settings(
            sandbox,
            link_verification=link_verification,
            link_public_base_url="https://voice.example.com",
        )
        metrics = RegistryMetrics()
        faceit = FaceitApiClient(
            API_KEY,
            base_url=sandbox.api_base,
            timeout=2.0,
            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
            on_call=metrics.count_faceit_call,
        )
        server = build_server(settings, pool, faceit, metrics=metrics)
        port = await server.start()
        clients = GrpcClients(token=TOKEN, timeout=20.0)
        stub = pb_grpc.RegistryServiceStub(clients.channel(f"127.0.0.1:{port}"))
        try:
            yield Registry(stub, sandbox, pool, server, statements, metrics)
        finally:
            await clients.close()
            await server.stop(0)
            await faceit.close()
            await pool.close()


@dataclass
class LinkingRegistry:
    """A registry in faceit_oauth mode: gRPC stub, HTTP link pages, and what tests look at."""

    stub: pb_grpc.RegistryServiceStub
    sandbox: FaceitSandbox
    pool: asyncpg.Pool
    server: GrpcServer
    http: HttpServer
    metrics: RegistryMetrics
    http_url: str
    """Where this replica's HTTP server is reached."""
    public_base_url: str
    """LINK_PUBLIC_BASE_URL: the URL in links and the OAuth redirect (shared by replicas)."""

    async def start_link(self, discord_user_id: int, name: str = "Alice") -> pb.StartLinkResponse:
        """StartLink for a Discord user called `name` (display name and username)."""
        request = pb.StartLinkRequest(
            discord_user_id=discord_user_id,
            discord_display_name=name,
            discord_username=name.lower(),
        )
        response: pb.StartLinkResponse = await self.stub.StartLink(request)
        return response


def register_oauth_client(sandbox: FaceitSandbox, *public_base_urls: str) -> None:
    """Register the test OAuth client with the callback of each public base URL."""
    sandbox.connect.register(
        OAuthClient(
            CLIENT_ID,
            CLIENT_SECRET,
            tuple(f"{base}{CALLBACK_PATH}" for base in public_base_urls),
        )
    )


@asynccontextmanager
async def linking_registry(
    dsn: str,
    sandbox: FaceitSandbox,
    *,
    public_base_url: str | None = None,
    timeout_s: float = 2.0,
    state_ttl_s: int = 600,
) -> AsyncIterator[LinkingRegistry]:
    """A faceit_oauth registry on ports 0 over `dsn`, talking to `sandbox` over HTTP.

    Its links point at itself unless `public_base_url` names another replica's address (as a
    load balancer in front of several would); the OAuth client must be registered for it.
    """
    pool = await create_pool(dsn, max_size=10)
    http = HttpServer("127.0.0.1", 0)
    http_url = f"http://127.0.0.1:{http.bind()}"
    base = public_base_url or http_url
    settings = registry_settings(
        sandbox,
        faceit_timeout_s=timeout_s,
        link_verification="faceit_oauth",
        link_public_base_url=base,
        link_state_ttl_s=state_ttl_s,
    )
    metrics = RegistryMetrics()
    faceit = FaceitApiClient(
        API_KEY,
        base_url=sandbox.api_base,
        timeout=timeout_s,
        retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
        on_call=metrics.count_faceit_call,
    )
    connect = connect_client(settings)
    flow = build_link_flow(settings, pool, faceit, connect, metrics)
    server = build_server(settings, pool, faceit, flow, metrics)
    port = await server.start()
    await http.start(create_app(pool, flow, metrics, link_state_ttl_s=state_ttl_s))
    clients = GrpcClients(token=TOKEN, timeout=20.0)
    stub = pb_grpc.RegistryServiceStub(clients.channel(f"127.0.0.1:{port}"))
    try:
        yield LinkingRegistry(stub, sandbox, pool, server, http, metrics, http_url, base)
    finally:
        await clients.close()
        await http.stop()
        await server.stop(0)
        await connect.close()
        await faceit.close()
        await pool.close()


@pytest.fixture
async def faceit_sandbox() -> AsyncIterator[FaceitSandbox]:
    """A FACEIT sandbox (Data API and FACEIT Connect) on port 0."""
    async with FaceitSandbox(api_key=API_KEY) as sandbox:
        yield sandbox


@pytest.fixture
async def linking(
    registry_database: str, faceit_sandbox: FaceitSandbox
) -> AsyncIterator[LinkingRegistry]:
    """A faceit_oauth registry whose OAuth client is registered in the FACEIT sandbox."""
    async with linking_registry(registry_database, faceit_sandbox) as running:
        register_oauth_client(faceit_sandbox, running.public_base_url)
        yield running
