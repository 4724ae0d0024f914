"""`python -m services.ingest` as a process: refusing bad settings, serving, stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx

from tests.services.ingest.voice_double import VoiceDoubleServer

ROOT = Path(__file__).resolve().parents[3]
_RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


def _env(**values: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **values}


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
        env=_env(
            DATABASE_URL=fresh_database,
            FACEIT_WEBHOOK_SECRET="entrypoint-test-value",
            VOICE_SERVICE_ADDR=voice_server.address,
            INGEST_HTTP_HOST="127.0.0.1",
            INGEST_HTTP_PORT="0",
            INGEST_GRPC_HOST="127.0.0.1",
            INGEST_GRPC_PORT="0",
        ),
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
