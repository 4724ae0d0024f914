"""Prometheus metrics every service shares: the /metrics answer and the gRPC server's calls.

Each service keeps its metrics in a CollectorRegistry of its own (never the global one) and
serves them as `GET /metrics` on its HTTP port: ingest on INGEST_HTTP_PORT, the registry on
REGISTRY_HTTP_PORT, voice (which serves no other HTTP) on VOICE_METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import grpc.aio
from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from services.kit.call_wraps import PUBLIC_METHOD_PREFIXES, behavior_of, rebuild


def service_registry() -> CollectorRegistry:
    """A service's own registry, with the process' CPU, memory and file descriptors
    (`process_*`, the saturation of the dashboard)."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


def metrics_response(registry: CollectorRegistry) -> Response:
    """Every metric of `registry` in the Prometheus text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_app(registry: CollectorRegistry, scraped: Callable[[], None]) -> FastAPI:
    """An app serving only `GET /metrics`, for a service with no other HTTP; `scraped` runs
    before each answer (to read gauges that are cheaper to read than to keep up to date)."""
    app = FastAPI(title="metrics", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/metrics")
    async def metrics() -> Response:
        """Every metric, read now."""
        scraped()
        return metrics_response(registry)

    return app


class GrpcCallMetrics:
    """The calls a gRPC server answered, by method and status code, and how long unary ones took.

    Health checks and reflection (probes and tooling) are not counted.
    """

    def __init__(self, prefix: str, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            f"{prefix}_grpc_calls",
            "gRPC calls answered, by method and status code (streams when they end).",
            ["method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{prefix}_grpc_call_seconds",
            "Time to answer a unary gRPC call, by method.",
            ["method"],
            registry=registry,
        )

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` recording its calls here (a `Wrap`); outermost, so that refused and failed
        calls are counted with the status they got."""
        if method.startswith(PUBLIC_METHOD_PREFIXES):
            return handler
        behavior = behavior_of(handler)
        calls, latency = self.calls, self.latency.labels(method=method)

        async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with _recorded(calls, method, context, latency):
                return await behavior(request, context)

        async def streaming_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with _recorded(calls, method, context):
                result = behavior(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:
                    await result

        return rebuild(handler, unary_response, streaming_response, handler.request_deserializer)


@contextlib.contextmanager
def _recorded(
    calls: Counter,
    method: str,
    context: grpc.aio.ServicerContext,
    latency: Histogram | None = None,
) -> Iterator[None]:
    """Count the call to `method` in `calls` under the status it ends with; time it in
    `latency` (a child already labelled with the method)."""
    began = time.perf_counter()
    code = grpc.StatusCode.UNKNOWN
    try:
        yield
        code = grpc.StatusCode.OK
    except asyncio.CancelledError:
        code = grpc.StatusCode.CANCELLED
        raise
    finally:
        # An abort (the inner wraps turn every error into one) set the call's code.
        final = context.code()
        status = final if isinstance(final, grpc.StatusCode) else code
        calls.labels(method=method, code=status.name).inc()
        if latency is not None:
            latency.observe(time.perf_counter() - began)
