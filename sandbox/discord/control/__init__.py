"""The control API under /_sandbox/: build guilds, drive members, run commands, inject faults."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from sandbox.discord.actions import Actions
from sandbox.discord.audit import AuditLog
from sandbox.discord.config import SandboxConfig
from sandbox.discord.control.audit import AuditControl
from sandbox.discord.control.channels import ChannelControl
from sandbox.discord.control.command_permissions import CommandPermissionControl
from sandbox.discord.control.faults import FaultControl
from sandbox.discord.control.gateway import GatewayControl
from sandbox.discord.control.guilds import GuildControl
from sandbox.discord.control.interactions import InteractionSimulator
from sandbox.discord.control.members import MemberControl
from sandbox.discord.control.messages import MessageControl
from sandbox.discord.control.parsing import ControlError
from sandbox.discord.control.rate_limits import RateLimitControl
from sandbox.discord.control.roles import RoleControl
from sandbox.discord.faults import FaultInjector
from sandbox.discord.gateway import Gateway
from sandbox.discord.messages import MessageStore
from sandbox.discord.ratelimit import RateLimiter
from sandbox.discord.responses import DiscordError, json_response
from sandbox.discord.state import SandboxState

PREFIX = "/_sandbox"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlApi:
    """Handlers for /_sandbox/ routes; everything they change goes through `Actions`."""

    def __init__(
        self,
        *,
        state: SandboxState,
        actions: Actions,
        gateway: Gateway,
        limiter: RateLimiter,
        faults: FaultInjector,
        audit: AuditLog,
        config: SandboxConfig,
        messages: MessageStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._routes = [
            *GuildControl(state, actions).routes(),
            *MemberControl(state, actions).routes(),
            *ChannelControl(state, actions).routes(),
            *MessageControl(state, messages).routes(),
            *RoleControl(state, actions).routes(),
            *InteractionSimulator(state, gateway, config, clock).routes(),
            *CommandPermissionControl(state).routes(),
            *AuditControl(audit).routes(),
            *FaultControl(faults, gateway).routes(),
            *RateLimitControl(limiter).routes(),
            *GatewayControl(gateway).routes(),
        ]

    def routes(self) -> list[web.RouteDef]:
        """Every control route under /_sandbox."""
        return [web.route(r.method, PREFIX + r.path, r.handler, **r.kwargs) for r in self._routes]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Turn ControlError into `{"error": ...}` JSON answers for /_sandbox/ routes."""
        if not request.path.startswith(PREFIX + "/"):
            return await handler(request)
        try:
            return await handler(request)
        except ControlError as error:
            return json_response({"error": error.message, **error.extra}, status=error.status)
        except DiscordError as error:
            return json_response(
                {"error": error.message, "code": error.code, "errors": error.errors},
                status=error.status,
            )
