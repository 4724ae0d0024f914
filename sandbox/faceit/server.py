"""`FaceitSandbox`: wires the model, Data API, control API and webhook sender into one server."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from sandbox.faceit.connect import FaceitConnect
from sandbox.faceit.connect_grants import DEFAULT_CODE_TTL_S
from sandbox.faceit.control_api import ControlApi
from sandbox.faceit.data_api import DataApi
from sandbox.faceit.deliverer import WebhookDeliverer, WebhookOptions
from sandbox.faceit.faults import ApiFaults, RequestLog
from sandbox.faceit.lifecycle import MatchLifecycle
from sandbox.faceit.model import Hub
from sandbox.faceit.world import World

logger = logging.getLogger(__name__)

DATA_API_PREFIX = "/data/v4"


class FaceitSandbox:
    """A local FACEIT: Data API under `/data/v4`, FACEIT Connect, control API under `/_sandbox/`.

    Runs in the caller's event loop: `url = await sandbox.start()`, then `await sandbox.stop()`.
    """

    def __init__(
        self,
        *,
        api_key: str,
        webhook_options: WebhookOptions | None = None,
        latency_s: float = 0.0,
        seed: int = 0,
        hub_id: str | None = None,
        organizer_id: str | None = None,
        app_id: str | None = None,
        fill_rosters: bool = False,
        clock: Callable[[], float] = time.time,
        oauth_code_ttl_s: float = DEFAULT_CODE_TTL_S,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.default_hub = Hub(
            hub_id=hub_id or str(uuid.uuid4()),
            name="Sandbox Hub",
            organizer_id=organizer_id or str(uuid.uuid4()),
            game="cs2",
            region="EU",
        )
        self.world = World(
            clock=clock,
            rng=random.Random(seed),
            default_hub=self.default_hub,
            fill_rosters=fill_rosters,
        )
        self.faults = ApiFaults(latency_s=latency_s)
        self.request_log = RequestLog()
        self.deliverer = WebhookDeliverer(
            app_id=app_id or str(uuid.uuid4()),
            options=webhook_options or WebhookOptions(seed=seed),
            clock=clock,
        )
        self._data_api = DataApi(
            world=self.world,
            api_key=api_key,
            faults=self.faults,
            request_log=self.request_log,
            clock=clock,
        )
        self.lifecycle = MatchLifecycle(world=self.world, deliverer=self.deliverer)
        self._control_api = ControlApi(
            world=self.world,
            lifecycle=self.lifecycle,
            deliverer=self.deliverer,
            faults=self.faults,
            request_log=self.request_log,
        )
        self.connect = FaceitConnect(world=self.world, clock=clock, code_ttl_s=oauth_code_ttl_s)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def build_app(self) -> web.Application:
        """The aiohttp application (the Data API is a sub-application)."""
        app = web.Application(middlewares=[self._control_api.errors])
        app.add_routes(self._control_api.routes())
        app.add_routes(self.connect.routes())
        app.add_subapp(DATA_API_PREFIX, self._data_api.build_app())
        return app

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:8123` (only once started)."""
        if self._url is None:
            raise RuntimeError("the sandbox is not started")
        return self._url

    @property
    def api_base(self) -> str:
        """What `FACEIT_API_BASE` should be set to."""
        return self.url + DATA_API_PREFIX

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on `host:port` (0 picks a free port); the base URL."""
        await self.deliverer.start()
        runner = web.AppRunner(self.build_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}"
        logger.info("FACEIT sandbox listening on %s", self._url)
        return self._url

    async def stop(self) -> None:
        """Stop serving and sending webhooks."""
        await self.deliverer.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._url = None

    async def __aenter__(self) -> FaceitSandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
