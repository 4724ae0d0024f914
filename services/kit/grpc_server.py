"""The gRPC server every service runs: auth and error mapping, health, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from pydantic import SecretStr

from services.kit.call_wraps import Auth, Wrap, map_errors
from services.kit.metrics import GrpcCallMetrics

logger = logging.getLogger(__name__)

HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

Registrar = Callable[[grpc.aio.Server], None]
"""Adds servicers to a server, e.g. `lambda s: add_RegistryServiceServicer_to_server(x, s)`."""

Cleanup = Callable[[], Awaitable[object] | object]
"""Run after the server stopped: close pools, channels, clients (sync or async)."""


class ServedSettings(Protocol):
    """Where a service's gRPC server binds, and the token its callers must present."""

    grpc_host: str
    grpc_port: int
    grpc_auth_token: SecretStr | None


def service_server(
    settings: ServedSettings,
    service_name: str,
    register: Registrar,
    metrics: GrpcCallMetrics | None = None,
) -> GrpcServer:
    """The gRPC server of one service: `register` adds its servicer, bound as configured; its
    calls are counted in `metrics` when given."""
    return GrpcServer(
        registrars=[register],
        service_names=[service_name],
        host=settings.grpc_host,
        port=settings.grpc_port,
        auth_token=settings.grpc_auth_token,
        metrics=metrics,
    )


def _plain_token(token: SecretStr | str | None) -> str | None:
    if isinstance(token, SecretStr):
        return token.get_secret_value()
    return token or None


class _WrappedHandler(grpc.GenericRpcHandler):
    """`handler`, serving each method with its handler wrapped by `wrap` (once per method)."""

    def __init__(self, handler: grpc.GenericRpcHandler, wrap: Wrap) -> None:
        self._handler = handler
        self._wrap = wrap
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = self._handler.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = self._wrapped[method] = (handler, self._wrap(method, handler))
        return known[1]


class _WrappingServer(grpc.aio.Server):
    """`server`, to which every method handler is added wrapped by `wrap`: those of generic
    handlers and the registered ones (generated code adds each servicer both ways)."""

    def __init__(self, server: grpc.aio.Server, wrap: Wrap) -> None:
        self._server = server
        self._wrap = wrap

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]
    ) -> None:
        self._server.add_generic_rpc_handlers(
            [_WrappedHandler(handler, self._wrap) for handler in generic_rpc_handlers]
        )

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        self._server.add_registered_method_handlers(
            service_name,
            {
                name: self._wrap(f"/{service_name}/{name}", handler)
                for name, handler in method_handlers.items()
            },
        )

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return await self._server.wait_for_termination(timeout)


class GrpcServer:
    """A grpc.aio server with auth and error mapping, health, reflection and clean stops.

    `start()` binds and starts; `serve()` starts, then runs until SIGTERM/SIGINT (or until
    cancelled, or `stop()`), stops gracefully and runs the cleanups. A second signal during the
    graceful stop exits the process at once.
    """

    def __init__(
        self,
        *,
        registrars: Sequence[Registrar],
        service_names: Sequence[str],
        port: int,
        host: str = "0.0.0.0",
        auth_token: SecretStr | str | None = None,
        grace: float = 5.0,
        metrics: GrpcCallMetrics | None = None,
    ) -> None:
        self.service_names = tuple(service_names)
        self.grace = grace
        self._registrars = tuple(registrars)
        self._address = f"{host}:{port}"
        self._auth = Auth(_plain_token(auth_token))
        self._metrics = metrics
        self._cleanups: list[Cleanup] = []
        self._server: grpc.aio.Server | None = None
        self._port: int | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._signals = 0
        self._stopped = asyncio.Event()
        self.health = health_aio.HealthServicer()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0); only after start()."""
        if self._port is None:
            raise RuntimeError("the gRPC server has not been started")
        return self._port

    def add_cleanup(self, callback: Cleanup) -> None:
        """Run `callback` after the server stopped; cleanups run in reverse order of adding."""
        self._cleanups.append(callback)

    async def start(self) -> int:
        """Build, bind and start the server; every service reports SERVING. Returns the port."""
        if self._server is not None:
            return self.port
        server = _WrappingServer(grpc.aio.server(options=(("grpc.so_reuseport", 0),)), self._wrap)
        for register in self._registrars:
            register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*self.service_names, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        port = server.add_insecure_port(self._address)
        if port == 0:
            raise OSError(f"could not bind the gRPC server to {self._address}")
        await server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._port = server, port
        logger.info("gRPC server listening on port %s for %s", port, ", ".join(self.service_names))
        return port

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Every method's handler, health's and reflection's too: errors mapped innermost (it
        decodes the request, after the token was checked), the metrics outermost (they see
        refused and failed calls with their final status)."""
        wrapped = self._auth.wrap(method, map_errors(method, handler))
        return self._metrics.wrap(method, wrapped) if self._metrics is not None else wrapped

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, stop (in-flight calls get `grace` seconds), then run cleanups.

        Safe to call more than once and concurrently; later calls wait for the first.
        """
        await asyncio.shield(self._begin_stop(self.grace if grace is None else grace))

    def _begin_stop(self, grace: float) -> asyncio.Task[None]:
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop(grace))
        return self._stop_task

    async def _stop(self, grace: float) -> None:
        if self._server is not None:
            logger.info("gRPC server stopping (grace %ss)", grace)
            await self.health.enter_graceful_shutdown()
            await self._server.stop(grace)
        for cleanup in reversed(self._cleanups):
            try:
                result = cleanup()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("cleanup %r failed", cleanup)
        logger.info("gRPC server stopped")
        self._stopped.set()

    async def serve(self) -> None:
        """Start, run until a signal, cancellation or stop(), then stop gracefully.

        The signal handlers are installed before the server starts, so once the "listening"
        line is logged a SIGTERM always takes the graceful path.
        """
        loop = asyncio.get_running_loop()
        handled = (signal.SIGTERM, signal.SIGINT)
        for signum in handled:
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            await self.start()
            # Not server.wait_for_termination(): cancelling that cancels grpc's own shutdown
            # future, and a later server.stop() would then be cancelled too.
            await self._stopped.wait()
        except asyncio.CancelledError:
            await self.stop()
            raise
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            logger.warning("%s again during graceful stop: exiting now", name)
            os._exit(128 + signum)
        logger.info("%s received: stopping gracefully", name)
        self._begin_stop(self.grace)
