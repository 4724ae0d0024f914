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
    """Handlers: Echo reports what the server saw, Fail raises what it is told, Slow waits;
    Parse and Gather decode protobuf requests."""

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

    def register(self, server: grpc.aio.Server) -> None:
        """Add the echo service to `server` (a GrpcServer registrar)."""
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(self.echo),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail),
            "Count": grpc.unary_stream_rpc_method_handler(self.count),
            "Slow": grpc.unary_unary_rpc_method_handler(self.slow),
            "Parse": grpc.unary_unary_rpc_method_handler(
                self.parse, request_deserializer=self.decode
            ),
            "Gather": grpc.stream_unary_rpc_method_handler(
                self.gather, request_deserializer=self.decode
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
