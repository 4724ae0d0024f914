"""Fixtures of the FACEIT sandbox tests: a running sandbox, its clients, a webhook receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.deliverer import WebhookOptions
from sandbox.faceit.server import FaceitSandbox

API_KEY = "test-api-key"
# A real FACEIT delivery, the one copy the tests share.
FIXTURE = (
    Path(__file__).resolve().parents[2] / "fixtures" / "faceit" / "webhook_match_status_ready.json"
)


def load_fixture() -> dict[str, Any]:
    """The real `match_status_ready` delivery."""
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


@dataclass
class ReceivedWebhook:
    """One POST the receiver got."""

    headers: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """A real aiohttp webhook receiver on port 0; answers scripted statuses, then 200.

    While `gate` is set to an unset event, requests wait for it before being recorded;
    `in_flight` counts the requests being handled, `most_in_flight` its highest value.
    """

    statuses: list[int] = field(default_factory=list)
    received: list[ReceivedWebhook] = field(default_factory=list)
    url: str = ""
    gate: asyncio.Event | None = None
    in_flight: int = 0
    most_in_flight: int = 0
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        if self.gate is not None:
            await self.gate.wait()
        self.received.append(
            ReceivedWebhook(
                headers=dict(request.headers),
                query=dict(request.query),
                body=await request.json(),
            )
        )
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"status": "success"}, status=status)

    async def start(self) -> None:
        """Listen on 127.0.0.1 port 0."""
        app = web.Application()
        app.router.add_post("/faceit-webhook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/faceit-webhook"

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def events(self) -> list[str]:
        """The `event` of every delivery received, in arrival order."""
        return [hook.body["event"] for hook in self.received]


def fast_options(**changes: Any) -> WebhookOptions:
    """Webhook options with a tiny backoff so retries finish quickly."""
    return WebhookOptions(backoff_s=0.01, timeout_s=2.0).with_changes(changes)


@pytest.fixture
async def faceit() -> AsyncIterator[FaceitSandbox]:
    """A started FACEIT sandbox on a free port."""
    sandbox = FaceitSandbox(api_key=API_KEY, webhook_options=fast_options())
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def control(faceit: FaceitSandbox) -> AsyncIterator[FaceitSandboxClient]:
    """The control API client of the sandbox."""
    async with FaceitSandboxClient(faceit.url) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP session (no credentials)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def auth() -> dict[str, str]:
    """The Authorization header the sandbox accepts."""
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running webhook receiver."""
    hook_receiver = Receiver()
    await hook_receiver.start()
    yield hook_receiver
    await hook_receiver.stop()


async def make_match(control: FaceitSandboxClient, **kwargs: Any) -> dict[str, Any]:
    """Create four players and a 2v2 match of them; the create-match answer."""
    suffix = str(len(await control.list_players()))
    ids = [
        (await control.create_player(f"{name}{suffix}", skill_level=level))["player_id"]
        for name, level in (("alpha", 3), ("bravo", 5), ("charlie", 7), ("delta", 10))
    ]
    return await control.create_match([ids[:2], ids[2:]], **kwargs)
