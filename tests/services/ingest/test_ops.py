"""Health, readiness, metrics and OpenAPI of the ingest app."""

from __future__ import annotations

import logging

import pytest
from faceitvoice.v1 import ingest_service_pb2

from tests.services.ingest.harness import IngestHarness, real_delivery
from tests.services.ingest.voice_double import VoiceDoubleServer
from tests.support import eventually


async def test_healthz_says_alive(ingest: IngestHarness) -> None:
    """GET /healthz answers 200 while the process serves."""
    response = await ingest.http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_names_the_voice_service_when_it_is_down(
    ingest: IngestHarness, voice_server: VoiceDoubleServer
) -> None:
    """GET /readyz is 200 with database and voice up, 503 naming voice when it is down."""
    ready = await ingest.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "voice": "ok", "delivery": "ok"}
    await voice_server.stop()
    down = await ingest.http.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["database"] == "ok"
    assert down.json()["checks"]["voice"].startswith("unreachable: UNAVAILABLE")


async def test_metrics_count_events_and_inbox_depth(ingest: IngestHarness) -> None:
    """GET /metrics exposes webhook outcomes, ack latency, inbox depth and delivery attempts."""
    await ingest.post(real_delivery())
    await ingest.post(real_delivery())
    await ingest.post({"not": "an event"})

    async def delivered() -> bool:
        (event,) = await ingest.events()
        return event.status == ingest_service_pb2.EVENT_STATUS_DELIVERED

    await eventually(delivered, what="the event delivered")
    text = (await ingest.http.get("/metrics")).text
    expected = [
        'ingest_webhook_events_total{event="match_status_ready",outcome="accepted"} 1.0',
        'ingest_webhook_events_total{event="match_status_ready",outcome="duplicate"} 1.0',
        'ingest_webhook_events_total{event="unknown",outcome="invalid"} 1.0',
        "ingest_webhook_ack_seconds_count 3.0",
        'ingest_inbox_events{status="DELIVERED"} 1.0',
        'ingest_inbox_events{status="PENDING"} 0.0',
        'ingest_delivery_attempts_total{action="OPEN",outcome="delivered"} 1.0',
    ]
    for line in expected:
        assert line in text


async def test_each_app_has_its_own_metrics_registry(
    ingest: IngestHarness, fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """Two apps in one process do not share counters (no global registry)."""
    from tests.services.ingest.harness import running_ingest

    await ingest.post(real_delivery())
    async with running_ingest(fresh_database, voice_server.address) as other:
        text = (await other.http.get("/metrics")).text
    assert 'outcome="accepted"} 1.0' not in text


async def test_openapi_documents_the_webhook_body(ingest: IngestHarness) -> None:
    """/openapi.json has the webhook's request body schema (both shapes) and /docs serves."""
    spec = (await ingest.http.get("/openapi.json")).json()
    operation = spec["paths"]["/faceit-webhook"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    titles = [shape["title"] for shape in schema["oneOf"]]
    assert titles == ["Envelope", "SimpleEvent"]
    assert "payload" in schema["oneOf"][0]["required"]
    assert {"200", "400", "401", "413", "422", "503"} <= set(operation["responses"])
    assert "/readyz" in spec["paths"] and "/metrics" in spec["paths"]
    docs = await ingest.http.get("/docs")
    assert docs.status_code == 200


async def test_a_failing_depth_query_is_an_error_not_an_outage(
    ingest: IngestHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """/metrics still answers when its inbox query fails; the failure is an ERROR and counted."""
    caplog.set_level(logging.WARNING, logger="services.ingest.ops")
    await ingest.runtime.pool.execute("ALTER TABLE ingest.events RENAME TO events_elsewhere")
    response = await ingest.http.get("/metrics")
    assert response.status_code == 200
    assert 'ingest_internal_errors_total{component="metrics"} 1.0' in response.text
    (record,) = [r for r in caplog.records if r.name == "services.ingest.ops"]
    assert (record.levelno, record.exc_info is not None) == (logging.ERROR, True)
