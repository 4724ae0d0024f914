"""Control of the rate limits: read them, and change the global, default or per-route ones."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.discord.control.parsing import ControlError, body_of, normalise_route
from sandbox.discord.ratelimit import RateLimiter, RouteLimit
from sandbox.discord.responses import json_response


class RateLimitControl:
    """GET and PUT /_sandbox/rate-limits."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [
            web.get("/rate-limits", self.get_rate_limits),
            web.put("/rate-limits", self.set_rate_limits),
        ]

    async def get_rate_limits(self, request: web.Request) -> web.Response:
        """GET /_sandbox/rate-limits."""
        return json_response(self._limits())

    async def set_rate_limits(self, request: web.Request) -> web.Response:
        """PUT /_sandbox/rate-limits {"global"?, "default"?: {limit, per}, "routes"?: [...]}."""
        body = await body_of(request)
        if "global" in body:
            self._limiter.global_limit = int(body["global"])
        if "default" in body:
            d = body["default"]
            self._limiter.default = RouteLimit(int(d["limit"]), float(d["per"]))
        for item in body.get("routes") or []:
            route = normalise_route(item.get("route"))
            if not route or not item.get("method"):
                raise ControlError(400, "each route limit needs method and route")
            self._limiter.set_route(
                str(item["method"]),
                route,
                RouteLimit(int(item["limit"]), float(item.get("per", 1.0))),
            )
        return json_response(self._limits())

    def _limits(self) -> dict[str, Any]:
        return {
            "global": self._limiter.global_limit,
            "default": {"limit": self._limiter.default.limit, "per": self._limiter.default.per},
            "routes": [
                {"method": m, "route": r, "limit": lim.limit, "per": lim.per}
                for (m, r), lim in self._limiter.routes.items()
            ],
        }
