"""POST /faceit-webhook under load: bursts stored once, 503 fast when busy, quiet logs, hang-ups."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx
import pytest

from services.ingest.metrics import IngestMetrics
from services.ingest.server import STORE_ACQUIRE_TIMEOUT_S
from services.kit.logging import ContextFilter
from tests.services.ingest.harness import (
    HEADER,
    SECRET,
    IngestHarness,
    real_delivery,
    served_ingest,
    simple_event,
)
from tests.services.ingest.voice_double import VoiceDoubleServer
from tests.support import eventually

BURST = 100


def _burst_bodies() -> list[dict[str, Any]]:
    return [
        real_delivery(event_id=f"burst-{n}", payload={"id": f"m-burst-{n}", "version": n})
        for n in range(BURST)
    ]


async def test_a_burst_of_concurrent_webhooks_is_stored_exactly_once(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """A hundred concurrent webhooks over real HTTP, twice: all 200, each stored once, no 5xx."""
    bodies = _burst_bodies()
    headers = {HEADER: SECRET, "content-type": "application/json"}
    async with (
        served_ingest(fresh_database, voice_server.address, FACEIT_HUB_IDS="other-hub") as ingest,
        httpx.AsyncClient(
            base_url=ingest.url, timeout=60.0, limits=httpx.Limits(max_connections=BURST)
        ) as client,
    ):

        async def post(body: dict[str, Any]) -> httpx.Response:
            return await client.post("/faceit-webhook", content=json.dumps(body), headers=headers)

        first = await asyncio.gather(*(post(body) for body in bodies))
        again = await asyncio.gather(*(post(body) for body in bodies))
        stored = await ingest.runtime.pool.fetch(
            "SELECT event_id, count(*) AS n FROM ingest.events GROUP BY event_id"
        )
    assert [r.status_code for r in first + again] == [200] * (2 * BURST)
    assert not any(r.json().get("duplicate") for r in first)
    assert all(r.json().get("duplicate") for r in again)
    assert sorted(r["event_id"] for r in stored) == sorted(f"burst-{n}" for n in range(BURST))
    assert {r["n"] for r in stored} == {1}


async def test_no_free_connection_is_a_fast_503_and_nothing_stored(ingest: IngestHarness) -> None:
    """With the pool exhausted the webhook answers 503 (Retry-After) within its acquire timeout."""
    pool = ingest.runtime.store_pool
    body = simple_event("match_status_ready", "m-busy", version=1)
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        began = time.monotonic()
        response = await ingest.post(body)
        waited = time.monotonic() - began
    finally:
        for connection in held:
            await pool.release(connection)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "database busy" in response.json()["error"]
    assert STORE_ACQUIRE_TIMEOUT_S <= waited < STORE_ACQUIRE_TIMEOUT_S + 2.0
    assert await ingest.events() == []
    assert (await ingest.post(body)).status_code == 200


async def test_accepted_webhooks_log_at_debug_duplicates_at_info(
    ingest: IngestHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """An accepted webhook logs one DEBUG line, its duplicate one INFO line."""
    caplog.set_level(logging.DEBUG, logger="services.ingest.webhook")
    await ingest.post(real_delivery())
    await ingest.post(real_delivery())
    lines = [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == "services.ingest.webhook"
    ]
    assert lines == [
        (logging.DEBUG, "webhook match_status_ready (version 16) accepted"),
        (logging.INFO, "webhook match_status_ready (version 16) duplicate"),
    ]


async def test_ignored_webhooks_log_their_reason_at_info_once_a_second(
    ingest: IngestHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """The first ignored webhook logs its reason at INFO; those right after it only at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="services.ingest.webhook")
    caplog.handler.addFilter(ContextFilter())  # as the process's handler has it
    for n in range(3):
        body = real_delivery(
            event="match_demo_ready", event_id=f"demo-{n}", payload={"id": "m-demo"}
        )
        body["payload"]["version"] = 16 + n
        await ingest.post(body)
    lines = [
        (r.levelno, r.getMessage(), getattr(r, "event_id", None))
        for r in caplog.records
        if r.name == "services.ingest.webhook"
    ]
    reason = "match_demo_ready needs no action"
    assert lines == [
        (
            logging.INFO,
            f"webhook match_demo_ready (version 16) ignored: {reason}"
            " (1 ignored since the last such line)",
            "demo-0",
        ),
        (logging.DEBUG, f"webhook match_demo_ready (version 17) ignored: {reason}", "demo-1"),
        (logging.DEBUG, f"webhook match_demo_ready (version 18) ignored: {reason}", "demo-2"),
    ]


def _disconnected(metrics: IngestMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "ingest_webhook_events_total", {"event": "unknown", "outcome": "disconnected"}
    )
    return value or 0.0


async def test_a_sender_hanging_up_mid_body_is_no_server_error(
    fresh_database: str, voice_server: VoiceDoubleServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A sender that closes before its body arrived is counted, stored nowhere, no traceback."""
    caplog.set_level(logging.DEBUG)
    async with served_ingest(fresh_database, voice_server.address) as ingest:
        port = int(ingest.url.rsplit(":", 1)[1])
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /faceit-webhook HTTP/1.1\r\nHost: ingest\r\n"
            + f"{HEADER}: {SECRET}\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event": '
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        metrics: IngestMetrics = ingest.app.state.metrics

        async def counted() -> bool:
            return _disconnected(metrics) == 1.0

        await eventually(counted, what="the hang-up counted")
        assert await ingest.runtime.pool.fetchval("SELECT count(*) FROM ingest.events") == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
