"""Fixtures for the kit's gRPC tests: a real kit server on 127.0.0.1:0 serving the echo service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc.aio
import pytest

from services.kit.grpc_server import GrpcServer
from tests.services.kit.echo import SERVICE, EchoService

TOKEN = "s3cret-test-token"


@pytest.fixture
def echo() -> EchoService:
    """The echo service's handlers."""
    return EchoService()


@pytest.fixture(params=["generic", "as_generated"])
async def kit_server(
    echo: EchoService, request: pytest.FixtureRequest
) -> AsyncIterator[GrpcServer]:
    """A started kit server requiring TOKEN, stopped after the test; the echo service added as
    a generic handler, then the way generated code adds it (registered by name too)."""
    register = echo.register if request.param == "generic" else echo.register_as_generated
    server = GrpcServer(
        registrars=[register],
        service_names=[SERVICE],
        port=0,
        host="127.0.0.1",
        auth_token=TOKEN,
        grace=0.5,
    )
    await server.start()
    try:
        yield server
    finally:
        echo.release.set()
        await server.stop(0)


@pytest.fixture
async def channel(kit_server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    """A plain channel (no kit client helpers) to the kit server."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{kit_server.port}") as plain:
        yield plain
