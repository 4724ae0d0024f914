"""RegistryClient's error mapping: transient registry failures stay transient, others do not."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb

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


class FailingRegistry:
    """A registry double whose ResolvePlayers always ends with `code`."""

    def __init__(self) -> None:
        self.code = grpc.StatusCode.INTERNAL

    async def resolve_players(
        self, request: pb.ResolvePlayersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolvePlayersResponse:
        await context.abort(self.code, f"registry says {self.code.name}")
        raise AssertionError("abort returned")

    def register(self, server: grpc.aio.Server) -> None:
        """Serve ResolvePlayers (the one RPC the tests call) on `server`."""
        handler = grpc.unary_unary_rpc_method_handler(
            self.resolve_players,
            request_deserializer=pb.ResolvePlayersRequest.FromString,
            response_serializer=pb.ResolvePlayersResponse.SerializeToString,
        )
        service = pb.DESCRIPTOR.services_by_name["RegistryService"].full_name
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ResolvePlayers": handler}),)
        )


@pytest.fixture
async def failing() -> AsyncIterator[tuple[FailingRegistry, RegistryClient]]:
    """The double on 127.0.0.1:0 and a RegistryClient talking to it."""
    double = FailingRegistry()
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
    double.register(server)
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
