"""Wiring of the ingest service: the FastAPI app whose lifespan runs everything, and `serve()`.

`create_app(settings, deps)` builds the app (webhook and ops routes); its lifespan opens the
pools, applies the migrations, and starts the IngestService gRPC server, the delivery worker
and the poll schedule, stopping them in reverse. `serve(settings)` serves it with uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from faceitvoice.v1 import ingest_service_pb2, ingest_service_pb2_grpc, voice_service_pb2_grpc
from fastapi import FastAPI

from services.ingest import ops, webhook
from services.ingest.delivery import DeliveryWorker
from services.ingest.deps import Runtime, WebhookParts
from services.ingest.http_server import IngestServer, server_config
from services.ingest.metrics import IngestMetrics
from services.ingest.poller import Poller
from services.ingest.results import ResultsFinder
from services.ingest.rosters import RosterCompleter
from services.ingest.servicer import IngestServiceServicer
from services.ingest.settings import IngestSettings
from services.ingest.store import Inbox, PollCursor, create_store_pool
from services.ingest.voice_client import VoiceClient
from services.kit.collector import settle_after_startup
from services.kit.database import create_pool, session_untouched, wait_for_database
from services.kit.embedded_postgres import resolve_database_url
from services.kit.faceit_api import FaceitApiClient
from services.kit.grpc_client import GrpcClients, is_balanced
from services.kit.grpc_server import service_server
from services.kit.migrations import apply_migrations

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "ingest"
SERVICE_NAME: str = ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name
POLL_JOB_ID = "faceit-poll"
# Batches of webhooks being stored at once, each on a connection of the store pool. One
# writer makes the largest batches and the fewest statements (`bench.profile`: 1.1-1.7x the
# webhooks a second of two side by side; bench/findings.md); the second joins only when the
# batch in flight has taken STORE_STALL_S (a normal one takes 1-25 ms here, 55 ms at worst
# on a saturated machine), so that a batch stalled on its connection does not hold up every
# webhook behind it for longer than that.
STORE_WRITERS = 2
STORE_STALL_S = 0.1
# How long a webhook may wait for a connection before it is answered 503 (FACEIT retries),
# and how many may wait at all: past that the database is not keeping up, and a quick 503
# beats a queue that grows until every answer comes too late.
STORE_ACQUIRE_TIMEOUT_S = 2.0
STORE_MAX_WAITING = 128


async def migrate(target: asyncpg.Pool | asyncpg.Connection) -> list[str]:
    """Apply the ingest schema's pending migrations; return the files applied."""
    return await apply_migrations(target, SCHEMA, MIGRATIONS)


def stop_this_process() -> None:
    """Stop the process as SIGTERM does: uvicorn shuts the app down gracefully, then exits."""
    signal.raise_signal(signal.SIGTERM)


@dataclass
class IngestDeps:
    """What the app takes from outside: where the database is, and optional ready-made parts.

    `faceit` defaults to a FaceitApiClient built from FACEIT_API_KEY / FACEIT_API_BASE (none
    without a key); `metrics` to a fresh registry; `stop_process` is called when a part the
    app runs (the delivery worker) has died.
    """

    database_url: str
    faceit: FaceitApiClient | None = None
    metrics: IngestMetrics = field(default_factory=IngestMetrics)
    stop_process: Callable[[], None] = stop_this_process


def _faceit_client(
    settings: IngestSettings, deps: IngestDeps, stack: AsyncExitStack
) -> FaceitApiClient | None:
    if deps.faceit is not None:
        return deps.faceit
    if settings.faceit_api_key is None:
        logger.info("FACEIT_API_KEY is not set: no roster completion, no polling")
        return None
    client = FaceitApiClient(
        settings.faceit_api_key.get_secret_value(),
        base_url=settings.faceit_api_base,
        on_call=deps.metrics.count_faceit_call,
    )
    stack.push_async_callback(client.close)
    return client


def _start_scheduler(settings: IngestSettings, poller: Poller, stack: AsyncExitStack) -> None:
    scheduler = AsyncIOScheduler()
    interval = settings.faceit_poll_interval_s
    scheduler.add_job(
        poller.run_scheduled,
        "interval",
        seconds=interval,
        id=POLL_JOB_ID,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(int(interval), 1),
    )
    scheduler.start()
    stack.callback(scheduler.shutdown, wait=False)
    logger.info("FACEIT poll every %ss for hubs %s", interval, list(settings.faceit_hub_ids))


def _run_worker(worker: DeliveryWorker, stack: AsyncExitStack, app: FastAPI) -> None:
    """Run the worker for as long as the app runs; if it dies, the whole process stops.

    An ingest that accepts webhooks nobody delivers is worse than one that is down: FACEIT
    retries refused webhooks, and the orchestrator restarts a process that exited.
    """
    deps: IngestDeps = app.state.deps
    task = asyncio.create_task(worker.run(), name="ingest-delivery-worker")

    def supervise(done: asyncio.Task[None]) -> None:
        if done.cancelled():
            return
        logger.error(
            "the delivery worker died: ingest stops (exit status 1)", exc_info=done.exception()
        )
        app.state.crashed = True
        deps.stop_process()

    task.add_done_callback(supervise)

    async def stop() -> None:
        task.remove_done_callback(supervise)
        task.cancel()
        await asyncio.wait([task])  # not `await task`: a death was reported by supervise()

    stack.push_async_callback(stop)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool, migrate, start gRPC server, worker and poller; stop them in reverse."""
    settings: IngestSettings = app.state.settings
    deps: IngestDeps = app.state.deps
    if settings.faceit_webhook_secret is None:
        logger.warning(
            "FACEIT_WEBHOOK_SECRET is not set and FACEIT_WEBHOOK_ALLOW_UNAUTHENTICATED=true: "
            "anyone who can reach POST /faceit-webhook can inject match events"
        )
    async with AsyncExitStack() as stack:
        await wait_for_database(deps.database_url)
        pool = await create_pool(deps.database_url, reset=session_untouched)
        stack.push_async_callback(pool.close)
        store_pool = await create_store_pool(deps.database_url, size=STORE_WRITERS)
        stack.push_async_callback(store_pool.close)
        await migrate(pool)
        clients = GrpcClients(token=settings.grpc_auth_token, timeout=settings.voice_deadline_s)
        stack.push_async_callback(clients.close)
        voice = VoiceClient(
            voice_service_pb2_grpc.VoiceServiceStub(clients.channel(settings.voice_service_addr)),
            deadline_s=settings.voice_deadline_s,
            wait_for_ready=is_balanced(settings.voice_service_addr),
        )
        faceit = _faceit_client(settings, deps, stack)
        inbox = Inbox(
            pool,
            store_pool=store_pool,
            acquire_timeout_s=STORE_ACQUIRE_TIMEOUT_S,
            max_waiting=STORE_MAX_WAITING,
            writers=STORE_WRITERS,
            stall_s=STORE_STALL_S,
        )
        stack.push_async_callback(inbox.close)
        worker = DeliveryWorker(
            pool,
            voice,
            RosterCompleter(faceit),
            deps.metrics,
            sweep_interval_s=settings.delivery_sweep_interval_s,
            retry_base_s=settings.delivery_retry_base_s,
            retry_cap_s=settings.delivery_retry_cap_s,
            concurrency=settings.delivery_concurrency,
            lease_s=settings.delivery_lease_s,
            results=ResultsFinder(faceit),
        )
        poller = Poller(
            faceit,
            voice,
            inbox,
            deps.metrics,
            PollCursor(pool),
            hub_ids=settings.faceit_hub_ids,
            max_requests=settings.faceit_poll_max_requests,
        )
        servicer = IngestServiceServicer(inbox, poller, worker)
        grpc_server = service_server(
            settings,
            SERVICE_NAME,
            lambda server: ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(
                servicer, server
            ),
            deps.metrics.grpc,
        )
        await grpc_server.start()
        stack.push_async_callback(grpc_server.stop)
        _run_worker(worker, stack, app)
        if faceit is not None:
            _start_scheduler(settings, poller, stack)
        app.state.runtime = Runtime(
            pool=pool,
            store_pool=store_pool,
            inbox=inbox,
            voice=voice,
            worker=worker,
            poller=poller,
            grpc_server=grpc_server,
            webhook=WebhookParts(
                settings=settings, inbox=inbox, metrics=deps.metrics, worker=worker
            ),
        )
        logger.info("ingest ready: gRPC on port %s", grpc_server.port)
        yield
        logger.info("ingest stopping")


def exit_status(app: FastAPI) -> int:
    """The process's exit status once `app` has stopped: 1 if a part it ran had died."""
    return 1 if app.state.crashed else 0


def create_app(settings: IngestSettings, deps: IngestDeps) -> FastAPI:
    """The ingest app; its lifespan opens and starts everything, and stops it in order."""
    app = FastAPI(
        title="faceit-voice ingest",
        summary="Receives FACEIT webhooks into a durable inbox and delivers them to voice.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.deps = deps
    app.state.crashed = False
    app.state.metrics = deps.metrics
    app.include_router(webhook.router)
    app.include_router(ops.router)
    return app


def serve(settings: IngestSettings) -> int:
    """Database (embedded if no DATABASE_URL), then HTTP and gRPC served by uvicorn, whose
    lifespan migrates and starts the rest, until a signal; returns the exit status."""
    database_url = resolve_database_url(settings)
    app = create_app(settings, IngestDeps(database_url=database_url))
    config = server_config(app, settings)
    settle_after_startup()
    IngestServer(config).run()
    return exit_status(app)
