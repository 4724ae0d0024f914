"""FastAPI dependencies of the ingest app: the parts its lifespan built, as Annotated aliases.

Every dependency is `async def` although none awaits anything: FastAPI runs a plain `def`
dependency in its worker-thread pool, a thread hop per dependency per request that, under
load, queues every webhook behind the pool's 40 threads and the GIL. The webhook takes none:
it reads its parts with `webhook_parts(request)`, since resolving one dependency cost it ~30 us
of CPU per webhook (bench/findings.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, FastAPI, Request

from services.ingest.delivery import DeliveryWorker
from services.ingest.metrics import IngestMetrics
from services.ingest.poller import Poller
from services.ingest.settings import IngestSettings
from services.ingest.store import Inbox
from services.ingest.voice_client import VoiceClient
from services.kit.grpc_server import GrpcServer
from services.kit.log_throttle import LogThrottle


@dataclass(frozen=True)
class WebhookParts:
    """What `POST /faceit-webhook` works with; `ignored` throttles the lines of ignored events.

    `worker` offers the leases an accepted event's store may take, and delivers what it took.
    """

    settings: IngestSettings
    inbox: Inbox
    metrics: IngestMetrics
    worker: DeliveryWorker
    ignored: LogThrottle = field(default_factory=LogThrottle)


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
    webhook: WebhookParts

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


def webhook_parts(request: Request) -> WebhookParts:
    """What the webhook works with (built once, by the lifespan)."""
    return webhook_parts_of(request.app)


def webhook_parts_of(app: FastAPI) -> WebhookParts:
    """What the webhook of `app` works with (built once, by its lifespan)."""
    parts: WebhookParts = app.state.runtime.webhook
    return parts


MetricsDep = Annotated[IngestMetrics, Depends(get_metrics)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
