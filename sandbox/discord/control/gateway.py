"""Control of gateway sessions: inspect them, close them with a code, hold and release them."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord.control.parsing import body_of
from sandbox.discord.gateway import Gateway
from sandbox.discord.responses import json_response


class GatewayControl:
    """GET /_sandbox/gateway, POST /_sandbox/gateway/close and /_sandbox/gateway/release."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [
            web.get("/gateway", self.gateway_info),
            web.post("/gateway/close", self.close_gateway),
            web.post("/gateway/release", self.release_gateway),
        ]

    async def gateway_info(self, request: web.Request) -> web.Response:
        """GET /_sandbox/gateway: sessions, their sequence numbers and resumes."""
        return json_response(self._gateway.describe())

    async def close_gateway(self, request: web.Request) -> web.Response:
        """POST /_sandbox/gateway/close {"code", "hold"?, "invalidate"?}."""
        body = await body_of(request)
        closed = await self._gateway.close(
            int(body.get("code", 4000)),
            hold=bool(body.get("hold", False)),
            invalidate=bool(body.get("invalidate", False)),
        )
        return json_response({"closed": closed, **self._gateway.describe()})

    async def release_gateway(self, request: web.Request) -> web.Response:
        """POST /_sandbox/gateway/release: let held connections proceed."""
        self._gateway.release()
        return json_response(self._gateway.describe())
