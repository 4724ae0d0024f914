"""Operational routes of the ingest app: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging

import grpc
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from services.ingest.deps import MetricsDep, RuntimeDep
from services.kit.call_errors import Failure, classify, describe
from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.metrics import metrics_response

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0

router = APIRouter()


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


async def _check_database(runtime: RuntimeDep, metrics: MetricsDep) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await runtime.pool.fetchval("SELECT 1")
    except DATABASE_UNAVAILABLE as error:
        return f"unreachable: {error!r}"
    except Exception as error:
        logger.exception("the readiness check of the database failed unexpectedly")
        metrics.internal_errors.labels(component="readyz").inc()
        return f"answers with errors: {error!r}"
    return "ok"


async def _check_voice(runtime: RuntimeDep) -> str:
    try:
        await runtime.voice.check(CHECK_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        if classify(error) is Failure.TRANSIENT:
            return f"unreachable: {describe(error)}"
        return f"answers with errors: {describe(error)}"
    return "ok"


def _check_delivery(runtime: RuntimeDep) -> str:
    stopped = runtime.worker.stopped
    return "ok" if stopped is None else f"stopped: {stopped!r}"


@router.get(
    "/readyz",
    summary="Readiness: the database and voice are reachable, the delivery worker runs",
    responses={
        503: {
            "description": "The database or the voice service is not reachable, or the "
            "delivery worker has stopped."
        }
    },
)
async def readyz(runtime: RuntimeDep, registry: MetricsDep) -> JSONResponse:
    """200 when the database and voice answer and events are delivered; 503 naming what fails."""
    database, voice = await asyncio.gather(
        _check_database(runtime, registry), _check_voice(runtime)
    )
    delivery = _check_delivery(runtime)
    checks = {"database": database, "voice": voice, "delivery": delivery}
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        logger.warning("not ready: database %s, voice %s, delivery %s", database, voice, delivery)
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(runtime: RuntimeDep, registry: MetricsDep) -> Response:
    """The app's metrics in the Prometheus text format (inbox depth read at scrape time)."""
    try:
        depth = await runtime.inbox.depth()
    except DATABASE_UNAVAILABLE as error:
        logger.warning("inbox depth unavailable for /metrics: %r", error)
    except Exception:
        logger.exception("inbox depth for /metrics failed unexpectedly")
        registry.internal_errors.labels(component="metrics").inc()
    else:
        registry.set_inbox_depth({status.value: count for status, count in depth.items()})
    return metrics_response(registry.registry)
