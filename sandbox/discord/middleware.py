"""The layer in front of every REST route: faults, rate limits, auth, error bodies, audit log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from sandbox.discord.audit import AuditLog
from sandbox.discord.event_order import EventOrder
from sandbox.discord.faults import FaultInjector
from sandbox.discord.ratelimit import RateLimiter, bucket_hash, limited_body, limited_headers
from sandbox.discord.responses import DiscordError, json_response, not_found, unauthorized
from sandbox.discord.rest import API_PREFIX

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN_ROUTES = ("/interactions/", "/webhooks/")
"""Routes authenticated by the interaction/webhook token in the path, not by the bot token."""
UNAUTHENTICATED = frozenset({"/gateway"})
"""Get Gateway "does not require authentication" (Get Gateway Bot does)."""
CLOUDFLARE_429 = (
    "<!DOCTYPE html><html><head><title>Access denied | discord.com used Cloudflare to restrict"
    " access</title></head><body><h1>Error 1015</h1><p>You are being rate limited.</p></body>"
    "</html>"
)


def route_template(request: web.Request) -> str | None:
    """The matched route without the API prefix, e.g. `/channels/{channel_id}`."""
    if request.match_info.http_exception is not None:
        return None
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return resource.canonical.removeprefix(API_PREFIX)


def major_parameters(request: web.Request) -> str:
    """The bucket's major parameters: channel, guild, or webhook/interaction id + token."""
    info = request.match_info
    for keys in (
        ("channel_id",),
        ("guild_id",),
        ("webhook_id", "webhook_token"),
        ("interaction_id", "interaction_token"),
    ):
        if all(k in info for k in keys):
            return ":".join(info[k] for k in keys)
    return ""


class RestMiddleware:
    """aiohttp middleware applying Discord's HTTP behaviour to everything under /api/v10."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        faults: FaultInjector,
        audit: AuditLog,
        bot_token: str,
        order: EventOrder,
    ) -> None:
        self.limiter = limiter
        self._order = order
        self._faults = faults
        self._audit = audit
        self._bot_token = bot_token

    @web.middleware
    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer one request the way Discord's edge would."""
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        received_at = time.monotonic()
        route = route_template(request)
        if route is None:
            exc = request.match_info.http_exception
            status = exc.status if exc is not None else 404
            unmatched = (
                DiscordError(405, 0, "405: Method Not Allowed").response()
                if status == 405
                else not_found().response()
            )
            path = request.path.removeprefix(API_PREFIX)
            self._record(request, path, unmatched, 0, received_at=received_at)
            return unmatched
        method = request.method
        ticket, in_flight = self._audit.arrive(method, route, request.path_qs, received_at)
        delay = self._faults.delay_for(method, route)
        holding = self._order.begin(travelling=delay > 0)
        try:
            response, code = await self._travel(
                request, handler, method, route, received_at + delay
            )
        except BaseException:
            self._audit.forget(ticket)
            held = self._order.end(holding)
            if held is not None:
                self._order.release(held)  # what the call changed stays changed: tell the bots
            raise
        held = self._order.end(holding)
        self._record(
            request, route, response, code, in_flight, received_at=received_at, ticket=ticket
        )
        if held is not None and held.delay is not None:
            # Write the answer now (aiohttp skips a prepared response) so its events follow it.
            await response.prepare(request)
            await response.write_eof()
        if held is not None:
            self._order.release(held)
        return response

    async def _travel(
        self, request: web.Request, handler: Handler, method: str, route: str, due: float
    ) -> tuple[web.StreamResponse, int | None]:
        """The answer of a call to send at `due` (its receipt plus an injected latency):
        Discord handles it halfway (the request's way there) and the answer takes the rest,
        whatever the handling cost. The sandbox's own work is inside the latency, as Discord's
        is inside its response time, not added after it."""
        now = time.monotonic()
        if due <= now:
            return await self._answer(request, handler, method, route)
        await asyncio.sleep((due - now) / 2)
        answer = await self._answer(request, handler, method, route)
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        return answer

    async def _answer(
        self, request: web.Request, handler: Handler, method: str, route: str
    ) -> tuple[web.StreamResponse, int | None]:
        token_route = route.startswith(TOKEN_ROUTES)
        fault = self._faults.take_error(method, route)
        if fault is not None and fault.cloudflare:
            return web.Response(status=429, text=CLOUDFLARE_429, content_type="text/html"), None
        if fault is not None:
            return self._injected(method, route, fault.status, fault.retry_after, fault.is_global)
        decision = self.limiter.check(
            method, route, major_parameters(request), counts_globally=not token_route
        )
        if not decision.allowed:
            log.info("rate limited %s %s for %.3fs", method, route, decision.retry_after)
            return json_response(decision.body, status=429, headers=decision.headers), None
        code: int | None = None
        authenticated = token_route or route in UNAUTHENTICATED
        if not authenticated and request.headers.get("Authorization") != f"Bot {self._bot_token}":
            error = unauthorized()
            response: web.StreamResponse = error.response()
            code = error.code
        else:
            try:
                response = await handler(request)
            except DiscordError as error:
                response = error.response()
                code = error.code
            except Exception:
                log.exception("sandbox bug answering %s %s", method, route)
                response = json_response(
                    {"message": "500: Internal Server Error", "code": 0}, status=500
                )
                code = 0
        response.headers.update(decision.headers)
        return response, code

    def _injected(
        self, method: str, route: str, status: int, retry_after: float, is_global: bool
    ) -> tuple[web.StreamResponse, int | None]:
        if status == 429:
            headers = limited_headers(retry_after, scope="global" if is_global else "user")
            limit = self.limiter.limit_for(method, route)
            headers.update(
                {
                    "X-RateLimit-Limit": str(limit.limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                    "X-RateLimit-Bucket": bucket_hash(method, route),
                }
            )
            body = limited_body(retry_after, is_global=is_global)
            return json_response(body, status=429, headers=headers), None
        body = {"message": f"{status}: Injected server error", "code": 0}
        return json_response(body, status=status), 0

    def _record(
        self,
        request: web.Request,
        route: str,
        response: web.StreamResponse,
        code: int | None,
        in_flight: int = 1,
        *,
        received_at: float,
        ticket: int | None = None,
    ) -> None:
        reason = request.headers.get("X-Audit-Log-Reason")
        self._audit.record(
            method=request.method,
            route=route,
            path=request.path_qs,
            status=response.status,
            reason=unquote(reason) if reason is not None else None,
            code=code,
            in_flight=in_flight,
            received_at=received_at,
            ticket=ticket,
        )
