"""`python -m services.ingest` as a process: refusing bad settings, serving, stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

from services.ingest.delivery import DeliveryWorker
from services.ingest.server import exit_status
from tests.services.ingest.harness import running_ingest
from tests.services.ingest.voice_double import VoiceDoubleServer

ROOT = Path(__file__).resolve().parents[3]
_RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


def _env(**values: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **values}


def _serving_env(database_url: str, voice_address: str) -> dict[str, str]:
    """What the entrypoint needs to serve: the database, a secret, voice, free local ports."""
    return _env(
        DATABASE_URL=database_url,
        FACEIT_WEBHOOK_SECRET="entrypoint-test-value",
        VOICE_SERVICE_ADDR=voice_address,
        INGEST_HTTP_HOST="127.0.0.1",
        INGEST_HTTP_PORT="0",
        INGEST_GRPC_HOST="127.0.0.1",
        INGEST_GRPC_PORT="0",
    )


async def test_missing_secret_refuses_to_start() -> None:
    """Without FACEIT_WEBHOOK_SECRET the process exits 1 naming the variable and the opt-out."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.ingest",
        cwd=ROOT,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    assert b"FACEIT_WEBHOOK_SECRET" in stderr
    assert b"FACEIT_WEBHOOK_ALLOW_UNAUTHENTICATED" in stderr


async def test_serves_http_and_stops_on_sigterm(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """The entrypoint serves /healthz and /readyz, logs no `color_message`, stops on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.ingest",
        cwd=ROOT,
        env=_serving_env(fresh_database, voice_server.address),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        url = None
        first_lines = b""
        while url is None:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, "the process ended before serving"
            first_lines += line
            found = _RUNNING.search(line.decode())
            url = found.group(1) if found else None
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).json()["checks"] == {
                "database": "ok",
                "voice": "ok",
                "delivery": "ok",
            }
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stdout.read(), timeout=30)
        assert await process.wait() == 0
        assert b"gRPC server stopped" in rest
        assert b"Application shutdown complete" in rest
        assert b"color_message" not in first_lines + rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _dies(self: DeliveryWorker) -> None:
    raise RuntimeError("injected bug in the delivery loop")


async def test_a_dead_delivery_worker_fails_readiness_and_stops_the_app(
    fresh_database: str,
    voice_server: VoiceDoubleServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the worker dies, /readyz is 503 naming delivery and the app asks to stop, status 1."""
    monkeypatch.setattr(DeliveryWorker, "_deliver_loop", _dies)
    async with running_ingest(fresh_database, voice_server.address) as harness:
        await asyncio.wait_for(harness.stop_requested.wait(), timeout=10)
        ready = await harness.http.get("/readyz")
        assert ready.status_code == 503
        assert "injected bug" in ready.json()["checks"]["delivery"]
    assert exit_status(harness.app) == 1
    (record,) = [r for r in caplog.records if "delivery worker died" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None


# The real entrypoint, with a bug injected into the delivery worker before it starts.
_DYING_ENTRYPOINT = """
from services.ingest import __main__ as entrypoint
from services.ingest.delivery import DeliveryWorker

async def dies(self):
    raise RuntimeError("injected bug in the delivery loop")

DeliveryWorker._deliver_loop = dies
entrypoint.main()
"""


async def test_the_process_exits_non_zero_when_the_delivery_worker_dies(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """`python -m services.ingest` whose worker dies shuts down gracefully and exits 1."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _DYING_ENTRYPOINT,
        cwd=ROOT,
        env=_serving_env(fresh_database, voice_server.address),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 1, output.decode()[-2000:]
    assert b"the delivery worker died" in output
    assert b"injected bug in the delivery loop" in output
    assert b"gRPC server stopped" in output
