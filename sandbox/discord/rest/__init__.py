"""Discord REST API v10 as py-cord 2.8 uses it, with Discord's rules: one module per resource."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from sandbox.discord.actions import Actions
from sandbox.discord.config import SandboxConfig
from sandbox.discord.event_order import EventOrder
from sandbox.discord.gateway import Gateway
from sandbox.discord.messages import MessageStore
from sandbox.discord.rest.channels import ChannelRoutes
from sandbox.discord.rest.commands import CommandRoutes
from sandbox.discord.rest.gateway import GatewayRoutes
from sandbox.discord.rest.guilds import GuildRoutes
from sandbox.discord.rest.interactions import InteractionRoutes
from sandbox.discord.rest.members import MemberRoutes
from sandbox.discord.rest.messages import MessageRoutes
from sandbox.discord.state import SandboxState

API_PREFIX = "/api/v10"


class RestApi:
    """The REST handlers; the rate-limit/auth/audit middleware sits in front of them."""

    def __init__(
        self,
        *,
        state: SandboxState,
        actions: Actions,
        config: SandboxConfig,
        order: EventOrder,
        gateway: Gateway,
        messages: MessageStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._routes = [
            *GatewayRoutes(state).routes(),
            *CommandRoutes(state).routes(),
            *InteractionRoutes(state, config, clock).routes(),
            *GuildRoutes(state).routes(),
            *MemberRoutes(state, actions, order).routes(),
            *ChannelRoutes(state, actions, config).routes(),
            *MessageRoutes(state, messages, gateway).routes(),
        ]

    def routes(self) -> list[web.RouteDef]:
        """Every REST route under /api/v10."""
        return [
            web.route(r.method, API_PREFIX + r.path, r.handler, **r.kwargs) for r in self._routes
        ]
