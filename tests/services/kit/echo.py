"""A tiny gRPC service for testing the kit without the project's protos (bytes, and one
protobuf message of grpc's own health service)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import asyncpg
import grpc
import grpc.aio
from grpc_health.v1 import health_pb2

from services.kit import errors

SERVICE = "test.kit.EchoService"
ERRORS: dict[str, type[errors.DomainError]] = {
    cls.__name__: cls
    for cls in (
        errors.InvalidArgument,
        errors.NotFound,
        errors.AlreadyExists,
        errors.FailedPrecondition,
        errors.PermissionDenied,
        errors.Unavailable,
        errors.DeadlineExceeded,
    )
}


def method(name: str) -> str:
    """The full method path of RPC `name` of the echo service."""
    return f"/{SERVICE}/{name}"


class EchoService:
    """Handlers: Echo reports what the server saw, Fail raises what it is told, Slow waits (and
    Trickle, a server stream, too); Parse and Gather decode protobuf requests."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()
        self.decoded = 0
        """How many request bodies the protobuf methods (Parse, Gather) decoded."""

    def decode(self, raw: bytes) -> health_pb2.HealthCheckRequest:
        """The request deserializer of Parse and Gather: a protobuf message, counted."""
        self.decoded += 1
        return health_pb2.HealthCheckRequest.FromString(raw)

    async def parse(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        return request.service.encode()

    async def gather(
        self,
        requests: AsyncIterator[health_pb2.HealthCheckRequest],
        context: grpc.aio.ServicerContext,
    ) -> bytes:
        return ",".join([request.service async for request in requests]).encode()

    async def echo(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata() or ())
        seen = {
            "request": request.decode(),
            "authorization": metadata.get("authorization"),
            "x-extra": metadata.get("x-extra"),
            "time_remaining": context.time_remaining(),
        }
        return json.dumps(seen).encode()

    async def fail(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        what = request.decode()
        if what in ERRORS:
            raise ERRORS[what](f"{what} happened", details={"kind": what})
        if what == "huge":  # a message and details echoing a 3 MB value
            value = "x" * (3 << 20)
            raise errors.InvalidArgument(f"bad value {value}", details={"value": value})
        if what == "abort":
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "handler aborted")
        if what == "database":  # a real connection attempt to a server that is not there
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{closed_port()}/x", timeout=5)
        raise RuntimeError("boom")

    async def count(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        for number in range(int(request.decode())):
            yield str(number).encode()
        raise errors.NotFound("no more numbers")

    async def slow(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.slow_started.set()
        await self.release.wait()
        return b"done"

    async def trickle(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        await self.release.wait()
        yield b"done"

    def register(self, server: grpc.aio.Server) -> None:
        """Add the echo service to `server` as a generic handler (a GrpcServer registrar)."""
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, self.handlers()),)
        )

    def register_as_generated(self, server: grpc.aio.Server) -> None:
        """Add the echo service to `server` the way generated code adds a servicer: a generic
        handler and the same handlers registered by name (which grpc looks up first)."""
        handlers = self.handlers()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_registered_method_handlers(SERVICE, handlers)

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """The echo service's method handlers by method name."""
        return {
            "Echo": grpc.unary_unary_rpc_method_handler(self.echo),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail),
            "Count": grpc.unary_stream_rpc_method_handler(self.count),
            "Slow": grpc.unary_unary_rpc_method_handler(self.slow),
            "Trickle": grpc.unary_stream_rpc_method_handler(self.trickle),
            "Parse": grpc.unary_unary_rpc_method_handler(
                self.parse, request_deserializer=self.decode
            ),
            "Gather": grpc.stream_unary_rpc_method_handler(
                self.gather, request_deserializer=self.decode
            ),
        }


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
