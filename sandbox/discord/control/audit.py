"""Control of the audit log: the REST calls the bot made, filtered, and clearing them."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord.audit import AuditLog
from sandbox.discord.control.parsing import normalise_route
from sandbox.discord.responses import json_response


class AuditControl:
    """GET and DELETE /_sandbox/audit-log, GET /_sandbox/audit-log/in-flight."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [
            web.get("/audit-log", self.get_audit_log),
            web.delete("/audit-log", self.clear_audit_log),
            web.get("/audit-log/in-flight", self.get_in_flight),
        ]

    async def get_audit_log(self, request: web.Request) -> web.Response:
        """GET /_sandbox/audit-log?method=&route=&after=."""
        q = request.query
        return json_response(
            self._audit.query(
                method=q.get("method"),
                route=normalise_route(q.get("route")),
                after=int(q.get("after", "0")),
            )
        )

    async def get_in_flight(self, request: web.Request) -> web.Response:
        """GET /_sandbox/audit-log/in-flight?method=&route=."""
        q = request.query
        return json_response(
            self._audit.in_flight(method=q.get("method"), route=normalise_route(q.get("route")))
        )

    async def clear_audit_log(self, request: web.Request) -> web.Response:
        """DELETE /_sandbox/audit-log."""
        self._audit.clear()
        return json_response({"cleared": True})
