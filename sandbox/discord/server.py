"""`DiscordSandbox`: wires state, REST, gateway and control API into one aiohttp server."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from sandbox.discord.actions import Actions
from sandbox.discord.audit import AuditLog
from sandbox.discord.config import SandboxConfig
from sandbox.discord.control import ControlApi
from sandbox.discord.event_order import EventOrder
from sandbox.discord.faults import FaultInjector
from sandbox.discord.gateway import Gateway
from sandbox.discord.messages import MessageStore
from sandbox.discord.middleware import RestMiddleware
from sandbox.discord.ratelimit import RateLimiter
from sandbox.discord.rest import RestApi
from sandbox.discord.snowflake import SnowflakeGenerator
from sandbox.discord.state import SandboxState

log = logging.getLogger(__name__)


class DiscordSandbox:
    """A local Discord for one bot token; run it in-process (`start`/`stop`) or via `__main__`."""

    def __init__(
        self,
        *,
        bot_token: str,
        config: SandboxConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not bot_token:
            raise ValueError("bot_token must not be empty")
        self.config = config or SandboxConfig()
        self.bot_token = bot_token
        self.state = SandboxState(
            bot_username=self.config.bot_username,
            snowflakes=SnowflakeGenerator(wall_clock=wall_clock),
        )
        self.order = EventOrder()
        self.gateway = Gateway(
            state=self.state, config=self.config, bot_token=bot_token, order=self.order
        )
        self.actions = Actions(self.state, self.gateway)
        self.limiter = RateLimiter(
            global_limit=self.config.global_rate_limit,
            default=self.config.default_route_limit,
            routes=self.config.route_limits,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.faults = FaultInjector()
        self.audit = AuditLog()
        self.messages = MessageStore(clock)
        rest = RestApi(
            state=self.state,
            actions=self.actions,
            config=self.config,
            order=self.order,
            gateway=self.gateway,
            messages=self.messages,
            clock=clock,
        )
        control = ControlApi(
            state=self.state,
            actions=self.actions,
            gateway=self.gateway,
            limiter=self.limiter,
            faults=self.faults,
            audit=self.audit,
            config=self.config,
            messages=self.messages,
            clock=clock,
        )
        rest_layer = RestMiddleware(
            limiter=self.limiter,
            faults=self.faults,
            audit=self.audit,
            bot_token=bot_token,
            order=self.order,
        )
        self.app = web.Application(middlewares=[rest_layer.handle, control.middleware])
        self.app.add_routes(rest.routes())
        self.app.add_routes(control.routes())
        self.app.router.add_get("/gateway", self.gateway.handle)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def bot_user_id(self) -> int:
        """The bot's user id, which is also its application id."""
        return self.state.bot.id

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 picks a free port) and return the base URL."""
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"
        log.info("discord sandbox listening on %s (bot %s)", self.url, self.bot_user_id)
        return self.url

    async def stop(self) -> None:
        """Close gateway connections and the server."""
        self.order.cancel()
        self.gateway.release()
        await self.gateway.close(1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
