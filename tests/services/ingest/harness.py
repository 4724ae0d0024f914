"""Starting the ingest app for a test: real Postgres, real gRPC, httpx over ASGI."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc.aio
import httpx
import uvicorn
from faceitvoice.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from fastapi import FastAPI

from services.ingest.deps import Runtime
from services.ingest.http_server import server_config
from services.ingest.server import IngestDeps, create_app
from services.ingest.settings import IngestSettings
from services.kit.faceit_api import FaceitApiClient
from services.kit.settings import load_settings
from tests.support import eventually

SECRET = "s3cr3t-webhook-value"
HEADER = "X-Faceit-Signature"
# A real FACEIT delivery, the one copy the tests share.
FIXTURE = (
    Path(__file__).resolve().parents[2] / "fixtures" / "faceit" / "webhook_match_status_ready.json"
)


def real_delivery(**changes: Any) -> dict[str, Any]:
    """The captured FACEIT delivery, with top-level and `payload` fields changed."""
    body: dict[str, Any] = json.loads(FIXTURE.read_text())
    payload = changes.pop("payload", {})
    body.update(changes)
    body["payload"].update(payload)
    return copy.deepcopy(body)


def simple_event(
    event: str, match_id: str, *, version: int | None = None, players: int = 2, **extra: Any
) -> dict[str, Any]:
    """A body of the simplified shape with two factions of `players` players each."""
    teams = {
        faction: {
            "roster": [
                {"player_id": f"{match_id}-{faction}-p{i}", "nickname": f"{faction}-{i}"}
                for i in range(players)
            ]
        }
        for faction in ("faction1", "faction2")
    }
    body: dict[str, Any] = {
        "event": event,
        "match_id": match_id,
        "organizer_id": "org-1",
        "entity": {"teams": teams},
        **extra,
    }
    if version is not None:
        body["version"] = version
    return body


@dataclass
class IngestHarness:
    """A running ingest app: its HTTP client, gRPC stub and the parts its lifespan built."""

    app: FastAPI
    http: httpx.AsyncClient
    ingest: ingest_service_pb2_grpc.IngestServiceStub
    settings: IngestSettings
    stop_requested: asyncio.Event
    """Set when the app asked for the process to stop (a part it runs died)."""

    @property
    def runtime(self) -> Runtime:
        """What the lifespan started."""
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def post(self, body: object, **headers: str) -> httpx.Response:
        """POST `body` as JSON to the webhook with the right secret (unless headers say else)."""
        sent = {HEADER: SECRET, "content-type": "application/json", **headers}
        return await self.http.post("/faceit-webhook", content=json.dumps(body), headers=sent)

    async def events(self, match_id: str = "") -> list[ingest_service_pb2.InboxEvent]:
        """Every inbox event (of one match when given), oldest first."""
        response = await self.ingest.ListEvents(
            ingest_service_pb2.ListEventsRequest(match_id=match_id, page_size=500)
        )
        return list(reversed(response.events))


async def lock_waits(connection: asyncpg.Connection) -> bool:
    """Whether a statement of the connection's database waits for a lock."""
    waiting: int = await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return waiting > 0


def ingest_settings(voice_address: str, **overrides: Any) -> IngestSettings:
    """Test settings: the webhook secret, the voice double, gRPC on a free port, fast retries."""
    values: dict[str, Any] = {
        "FACEIT_WEBHOOK_SECRET": SECRET,
        "VOICE_SERVICE_ADDR": voice_address,
        "INGEST_GRPC_HOST": "127.0.0.1",
        "INGEST_GRPC_PORT": 0,
        "VOICE_DEADLINE_S": 2.0,
        "INGEST_RETRY_BASE_S": 0.05,
        "INGEST_RETRY_CAP_S": 0.2,
        "INGEST_SWEEP_INTERVAL_S": 1.0,
    }
    values.update(overrides)
    return load_settings(IngestSettings, _env_file=None, **values)


@asynccontextmanager
async def running_ingest(
    database_url: str,
    voice_address: str,
    *,
    faceit: FaceitApiClient | None = None,
    **overrides: Any,
) -> AsyncIterator[IngestHarness]:
    """Run the app's lifespan and yield a harness; everything stops on exit."""
    settings = ingest_settings(voice_address, **overrides)
    stop_requested = asyncio.Event()
    deps = IngestDeps(database_url=database_url, faceit=faceit, stop_process=stop_requested.set)
    app = create_app(settings, deps)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        runtime: Runtime = app.state.runtime
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://ingest") as http,
            grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel,
        ):
            yield IngestHarness(
                app=app,
                http=http,
                ingest=ingest_service_pb2_grpc.IngestServiceStub(channel),
                settings=settings,
                stop_requested=stop_requested,
            )


@dataclass
class ServedIngest:
    """The ingest app behind a real uvicorn server on 127.0.0.1."""

    app: FastAPI
    server: uvicorn.Server
    port: int
    ingest: ingest_service_pb2_grpc.IngestServiceStub

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        """What the lifespan started."""
        runtime: Runtime = self.app.state.runtime
        return runtime


@asynccontextmanager
async def served_ingest(
    database_url: str, voice_address: str, **overrides: Any
) -> AsyncIterator[ServedIngest]:
    """Run the app as production does (its uvicorn config) on a free port; stop it on exit."""
    settings = ingest_settings(
        voice_address, INGEST_HTTP_HOST="127.0.0.1", INGEST_HTTP_PORT=0, **overrides
    )
    server: uvicorn.Server | None = None

    def stop() -> None:  # what SIGTERM does to the real process
        assert server is not None
        server.should_exit = True

    app = create_app(settings, IngestDeps(database_url=database_url, stop_process=stop))
    server = uvicorn.Server(server_config(app, settings))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()
        return server.started

    try:
        await eventually(started, what="uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        runtime: Runtime = app.state.runtime
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
            yield ServedIngest(
                app=app,
                server=server,
                port=port,
                ingest=ingest_service_pb2_grpc.IngestServiceStub(channel),
            )
    finally:
        server.should_exit = True
        await task
