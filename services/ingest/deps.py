"""FastAPI dependencies of the ingest app: the parts its lifespan built, as Annotated aliases.

Every dependency is `async def` although none awaits anything: FastAPI runs a plain `def`
dependency in its worker-thread pool, a thread hop per dependency per request that, under
load, queues every webhook behind the pool's 40 threads and the GIL. The webhook takes one
dependency for all it needs, since FastAPI's resolving each one is work on every webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.ingest.delivery import DeliveryWorker
from services.ingest.inbox import Inbox
from services.ingest.metrics import IngestMetrics
from services.ingest.poller import Poller
from services.ingest.settings import IngestSettings
from services.ingest.voice_client import VoiceClient
from services.kit.grpc_server import GrpcServer


@dataclass
class Runtime:
    """What the lifespan opened and started, for the routes and for tests."""

    pool: asyncpg.Pool
    store_pool: asyncpg.Pool
    inbox: Inbox
    voice: VoiceClient
    worker: DeliveryWorker
    poller: Poller
    grpc_server: GrpcServer

    @property
    def grpc_port(self) -> int:
        """The port the IngestService gRPC server is bound to."""
        return self.grpc_server.port


async def get_metrics(request: Request) -> IngestMetrics:
    """The app's metrics."""
    metrics: IngestMetrics = request.app.state.metrics
    return metrics


async def get_runtime(request: Request) -> Runtime:
    """The parts the lifespan started."""
    runtime: Runtime = request.app.state.runtime
    return runtime


@dataclass(frozen=True)
class WebhookParts:
    """What `POST /faceit-webhook` works with."""

    settings: IngestSettings
    inbox: Inbox
    metrics: IngestMetrics


async def get_webhook_parts(request: Request) -> WebhookParts:
    """The settings, inbox and metrics of the app, for the webhook."""
    state = request.app.state
    return WebhookParts(settings=state.settings, inbox=state.runtime.inbox, metrics=state.metrics)


MetricsDep = Annotated[IngestMetrics, Depends(get_metrics)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
WebhookDep = Annotated[WebhookParts, Depends(get_webhook_parts)]
