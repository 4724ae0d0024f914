"""What py-cord asks before it connects: the bot user, the gateway URL with shard info, sounds."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.responses import json_response
from sandbox.discord.state import SandboxState


class GatewayRoutes:
    """GET /users/@me, /gateway, /gateway/bot and /soundboard-default-sounds."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the API prefix."""
        return [
            web.get("/users/@me", self.get_me),
            web.get("/gateway", self.get_gateway),
            web.get("/gateway/bot", self.get_gateway_bot),
            web.get("/soundboard-default-sounds", self.get_default_sounds),
        ]

    async def get_me(self, request: web.Request) -> web.Response:
        """GET /users/@me: the bot user."""
        data = payloads.user(self._state.bot)
        data.update(verified=True, mfa_enabled=False, locale="en-US", email=None)
        return json_response(data)

    async def get_gateway(self, request: web.Request) -> web.Response:
        """GET /gateway: where the WebSocket is."""
        return json_response({"url": f"ws://{request.host}/gateway"})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        """GET /gateway/bot: the URL plus shard and session-start information."""
        return json_response(
            {
                "url": f"ws://{request.host}/gateway",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def get_default_sounds(self, request: web.Request) -> web.Response:
        """GET /soundboard-default-sounds: none (py-cord waits for this before on_ready)."""
        return json_response([])
