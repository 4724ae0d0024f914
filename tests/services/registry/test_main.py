"""`python -m services.registry` as a real process: config check, migrate, serve, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import httpx
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from sandbox.faceit.server import FaceitSandbox
from services.kit.grpc_client import GrpcClients
from tests.services.registry.conftest import API_KEY, CLIENT_ID, CLIENT_SECRET, TOKEN

LISTENING = "gRPC server listening on port "
HTTP_LISTENING = "HTTP server listening on port "


def service_environment(tmp_path: Path, **values: str) -> dict[str, str]:
    """The test process's environment without registry settings, plus `values`."""
    prefixes = ("DATABASE_", "FACEIT_", "GRPC_", "LINK_", "REGISTRY_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env.update(FACEIT_VOICE_DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="INFO", **values)
    return env


async def listening_port(
    stdout: asyncio.StreamReader, seen: list[dict[str, str]] | None = None
) -> int:
    """Read JSON log lines (into `seen`) until the gRPC server says which port it bound."""
    while True:
        line = await stdout.readline()
        if not line:
            raise AssertionError("the registry exited before it listened")
        entry = json.loads(line)
        if seen is not None:
            seen.append(entry)
        message = entry["msg"]
        if message.startswith(LISTENING):
            return int(message[len(LISTENING) :].split()[0])


@dataclass
class Running:
    """A registry process that logged it listens: its gRPC port and the log lines so far."""

    process: asyncio.subprocess.Process
    grpc_port: int
    seen: list[dict[str, str]]

    async def stop(self) -> int:
        """SIGTERM, then its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout=30)


@asynccontextmanager
async def registry_process(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[Running]:
    """`python -m services.registry` with `env`, once it listens; killed if still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.registry",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    seen: list[dict[str, str]] = []
    try:
        port = await asyncio.wait_for(listening_port(process.stdout, seen), timeout=60)
        rest = asyncio.create_task(process.stdout.read())
        yield Running(process, port, seen)
        await rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def http_port(entries: list[dict[str, str]]) -> int:
    """The port the HTTP server logged it bound."""
    for entry in entries:
        if entry["msg"].startswith(HTTP_LISTENING):
            return int(entry["msg"][len(HTTP_LISTENING) :])
    raise AssertionError("the HTTP server did not say where it listens")


async def test_entrypoint_migrates_serves_and_stops_on_sigterm(
    fresh_database: str, tmp_path: Path
) -> None:
    """On an empty database it migrates, links a player over gRPC, and exits 0 on SIGTERM."""
    async with FaceitSandbox(api_key=API_KEY) as sandbox:
        sandbox.world.add_player("s1mple")
        env = service_environment(
            tmp_path,
            DATABASE_URL=fresh_database,
            FACEIT_API_KEY=API_KEY,
            FACEIT_API_BASE=sandbox.api_base,
            GRPC_AUTH_TOKEN=TOKEN,
            REGISTRY_GRPC_PORT="0",
            REGISTRY_HTTP_PORT="0",
            LINK_VERIFICATION="nickname",
        )
        async with registry_process(tmp_path, env) as running:
            clients = GrpcClients(token=TOKEN, timeout=20)
            try:
                target = f"127.0.0.1:{running.grpc_port}"
                stub = pb_grpc.RegistryServiceStub(clients.channel(target))
                response = await stub.LinkPlayer(
                    pb.LinkPlayerRequest(discord_user_id=42, faceit_nickname="s1mple")
                )
            finally:
                await clients.close()
            code = await running.stop()

    assert response.created is True
    assert code == 0
    warnings = [entry["msg"] for entry in running.seen if entry["level"] == "WARNING"]
    assert any("LINK_VERIFICATION=nickname: links are NOT verified" in m for m in warnings)
    connection = await asyncpg.connect(fresh_database)
    try:
        count = await connection.fetchval("SELECT count(*) FROM registry.player_links")
    finally:
        await connection.close()
    assert count == 1


async def test_entrypoint_refuses_to_start_without_an_api_key(tmp_path: Path) -> None:
    """Without FACEIT_API_KEY the process exits 1 and names the variable."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.registry",
        cwd=tmp_path,
        env=service_environment(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 1
    assert b"FACEIT_API_KEY: missing" in err


async def test_entrypoint_serves_link_pages_beside_grpc(
    fresh_database: str, tmp_path: Path
) -> None:
    """In faceit_oauth mode one process serves gRPC and HTTP; SIGTERM stops both, exit 0."""
    env = service_environment(
        tmp_path,
        DATABASE_URL=fresh_database,
        FACEIT_API_KEY=API_KEY,
        GRPC_AUTH_TOKEN=TOKEN,
        REGISTRY_GRPC_PORT="0",
        REGISTRY_HTTP_PORT="0",
        FACEIT_OAUTH_CLIENT_ID=CLIENT_ID,
        FACEIT_OAUTH_CLIENT_SECRET=CLIENT_SECRET,
        LINK_PUBLIC_BASE_URL="https://voice.example.com",
    )
    clients = GrpcClients(token=TOKEN, timeout=60)
    try:
        async with registry_process(tmp_path, env) as running:
            base_url = f"http://127.0.0.1:{http_port(running.seen)}"
            async with httpx.AsyncClient(base_url=base_url) as client:
                alive = await client.get("/healthz")
                ready = await client.get("/readyz")
            target = f"127.0.0.1:{running.grpc_port}"
            watch = pb_grpc.RegistryServiceStub(clients.channel(target)).WatchLinkChanges(
                pb.WatchLinkChangesRequest()
            )
            await watch.initial_metadata()  # the stream is open and waiting for changes
            code = await running.stop()
            ended = await watch.code()
    finally:
        await clients.close()

    assert ended is not grpc.StatusCode.OK
    assert alive.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert code == 0
    assert not [entry for entry in running.seen if entry["level"] == "WARNING"]
