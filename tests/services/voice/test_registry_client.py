"""RegistryClient's error mapping: transient registry failures stay transient, others do not."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import NoReturn

import grpc
import grpc.aio
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from services.kit.errors import DeadlineExceeded, DomainError, InvalidArgument, Unavailable
from services.voice.registry_client import RegistryClient


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_registry_down_is_unavailable() -> None:
    """ResolvePlayers against a registry that is not listening raises Unavailable."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{_closed_port()}")
    try:
        with pytest.raises(Unavailable, match="registry"):
            await RegistryClient(channel).resolve_players(["p1"])
    finally:
        await channel.close()


class FailingRegistry(pb_grpc.RegistryServiceServicer):
    """A registry double whose every RPC ends with `code`."""

    def __init__(self) -> None:
        self.code = grpc.StatusCode.INTERNAL

    async def _fail(self, context: grpc.aio.ServicerContext) -> NoReturn:
        await context.abort(self.code, f"registry says {self.code.name}")
        raise AssertionError("abort returned")

    async def ResolvePlayers(
        self, request: pb.ResolvePlayersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolvePlayersResponse:
        await self._fail(context)

    async def LinkPlayer(
        self, request: pb.LinkPlayerRequest, context: grpc.aio.ServicerContext
    ) -> pb.LinkPlayerResponse:
        await self._fail(context)

    async def UnlinkPlayer(
        self, request: pb.UnlinkPlayerRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnlinkPlayerResponse:
        await self._fail(context)

    async def GetPlayerLink(
        self, request: pb.GetPlayerLinkRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPlayerLinkResponse:
        await self._fail(context)

    async def ListPlayerLinks(
        self, request: pb.ListPlayerLinksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPlayerLinksResponse:
        await self._fail(context)


@pytest.fixture
async def failing() -> AsyncIterator[tuple[FailingRegistry, RegistryClient]]:
    """The double on 127.0.0.1:0 and a RegistryClient talking to it."""
    double = FailingRegistry()
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
    pb_grpc.add_RegistryServiceServicer_to_server(double, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield double, RegistryClient(channel)
    finally:
        await channel.close()
        await server.stop(0)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
    ],
)
async def test_transient_and_caller_errors_keep_their_meaning(
    failing: tuple[FailingRegistry, RegistryClient],
    code: grpc.StatusCode,
    expected: type[DomainError],
) -> None:
    """UNAVAILABLE and DEADLINE_EXCEEDED stay retryable; INVALID_ARGUMENT stays the caller's."""
    double, client = failing
    double.code = code
    with pytest.raises(expected, match=f"registry says {code.name}"):
        await client.resolve_players(["p1"])


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.FAILED_PRECONDITION,
    ],
)
async def test_other_registry_failures_are_internal_never_unavailable(
    failing: tuple[FailingRegistry, RegistryClient], code: grpc.StatusCode
) -> None:
    """A registry failure that retrying will not fix is INTERNAL, which ingest does not retry."""
    double, client = failing
    double.code = code
    with pytest.raises(DomainError) as raised:
        await client.resolve_players(["p1"])
    assert raised.value.status == grpc.StatusCode.INTERNAL
    assert f"registry says {code.name}" in raised.value.message
