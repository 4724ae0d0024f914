"""Control of injected faults: latency, error answers, late gateway events, lost heartbeat ACKs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.discord.control.parsing import ControlError, body_of, normalise_route
from sandbox.discord.faults import ErrorFault, FaultInjector, Latency
from sandbox.discord.gateway import Gateway
from sandbox.discord.responses import json_response


class FaultControl:
    """GET, POST and DELETE /_sandbox/faults."""

    def __init__(self, faults: FaultInjector, gateway: Gateway) -> None:
        self._faults = faults
        self._gateway = gateway

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [
            web.get("/faults", self.get_faults),
            web.post("/faults", self.add_fault),
            web.delete("/faults", self.clear_faults),
        ]

    async def get_faults(self, request: web.Request) -> web.Response:
        """GET /_sandbox/faults."""
        return json_response(self._describe_faults())

    async def add_fault(self, request: web.Request) -> web.Response:
        """POST /_sandbox/faults: {"kind": "latency"|"error"|"cloudflare"|"events_after_answer"|
        "no_heartbeat_ack", ...}."""
        body = await body_of(request)
        method = str(body["method"]).upper() if body.get("method") else None
        route = normalise_route(body.get("route"))
        if body.get("kind") == "latency":
            self._faults.latencies.append(
                Latency(seconds=float(body.get("seconds", 0)), method=method, route=route)
            )
        elif body.get("kind") == "error":
            status = int(body.get("status", 429))
            if status != 429 and not 500 <= status <= 599:
                raise ControlError(400, "status must be 429 or a 5xx")
            self._faults.errors.append(
                ErrorFault(
                    status=status,
                    count=int(body.get("count", 1)),
                    method=method,
                    route=route,
                    retry_after=float(body.get("retry_after", 0.05)),
                    is_global=bool(body.get("global", False)),
                )
            )
        elif body.get("kind") == "cloudflare":
            self._faults.errors.append(
                ErrorFault(
                    status=429,
                    count=int(body.get("count", 1)),
                    method=method,
                    route=route,
                    cloudflare=True,
                )
            )
        elif body.get("kind") == "events_after_answer":
            self._gateway.order.configure(
                float(body.get("seconds", 0.1)),
                hide_new_channels=bool(body.get("hide_new_channels", False)),
            )
        elif body.get("kind") == "no_heartbeat_ack":
            self._gateway.stop_heartbeat_acks()
        else:
            raise ControlError(
                400,
                'kind must be "latency", "error", "cloudflare", "events_after_answer" or '
                '"no_heartbeat_ack"',
            )
        return json_response(self._describe_faults(), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """DELETE /_sandbox/faults."""
        self._faults.clear()
        self._gateway.order.clear()
        return json_response(self._describe_faults())

    def _describe_faults(self) -> dict[str, Any]:
        return {**self._faults.describe(), "events_after_answer": self._gateway.order.describe()}
