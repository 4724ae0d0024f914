"""The FACEIT Data API v4 subset (`/data/v4/...`): bearer auth, paging, faults, request log."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.faceit.api_shapes import (
    error_json,
    match_json,
    not_found_json,
    page_json,
    player_json,
    search_item_json,
)
from sandbox.faceit.faults import ApiFaults, LoggedRequest, RequestLog
from sandbox.faceit.model import HUB_MATCH_TYPES
from sandbox.faceit.world import World

logger = logging.getLogger(__name__)

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
# Only err_nf0 is a confirmed FACEIT code; the others are the sandbox's own.
_ERROR_CODES = {400: "err_br0", 401: "err_u0", 429: "err_tmr0", 503: "err_su0"}
_ERROR_MESSAGES = {
    401: "Unauthorized",
    429: "Too Many Requests",
    503: "Service Unavailable",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequestError(Exception):
    """A query parameter FACEIT would reject with 400."""


def _error(status: int, message: str | None = None) -> web.Response:
    if status == 404:
        return web.json_response(not_found_json(), status=404)
    text = message or _ERROR_MESSAGES.get(status, "Request failed")
    code = _ERROR_CODES.get(status, f"err_{status}")
    return web.json_response(error_json(text, code), status=status)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequestError(f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise BadRequestError(f"{name} must be within {low}..{high}")
    return value


def _paging(request: web.Request) -> tuple[int, int]:
    offset = _int_param(request, "offset", 0, 0, 10**9)
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return offset, limit


class DataApi:
    """Handlers of the Data API routes, reading the shared `World`."""

    def __init__(
        self,
        *,
        world: World,
        api_key: str,
        faults: ApiFaults,
        request_log: RequestLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._world = world
        self._api_key = api_key
        self._faults = faults
        self._log = request_log
        self._clock = clock

    def build_app(self) -> web.Application:
        """A sub-application to mount at `/data/v4`."""
        app = web.Application(middlewares=[self._middleware()])
        app.router.add_get("/players", self.player_by_nickname, name="players")
        app.router.add_get("/search/players", self.search_players, name="search_players")
        app.router.add_get("/players/{player_id}", self.player, name="player")
        app.router.add_get("/matches/{match_id}", self.match, name="match")
        app.router.add_get("/hubs/{hub_id}/matches", self.hub_matches, name="hub_matches")
        return app

    def _middleware(self) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.monotonic()
            route = request.match_info.route.name or "unknown"
            response = await self._answer(request, handler, route)
            self._log.record(
                LoggedRequest(
                    method=request.method,
                    path=request.path,
                    route=route,
                    query=dict(request.query),
                    status=response.status,
                    duration_ms=round((time.monotonic() - started) * 1000, 1),
                    at=self._clock(),
                )
            )
            return response

        return middleware

    async def _answer(
        self, request: web.Request, handler: Handler, route: str
    ) -> web.StreamResponse:
        if self._faults.latency_s > 0:
            await asyncio.sleep(self._faults.latency_s)  # injected latency, on purpose
        if not self._authorised(request):
            return _error(401)
        rule = self._faults.take_failure(route)
        if rule is not None:
            logger.info("injecting %s for %s %s", rule.status, request.method, request.path)
            response = _error(rule.status)
            if rule.retry_after is not None:
                response.headers["Retry-After"] = str(rule.retry_after)
            return response
        try:
            return await handler(request)
        except BadRequestError as exc:
            return _error(400, str(exc))
        except web.HTTPException as exc:
            return _error(exc.status)

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), self._api_key.encode())

    async def player_by_nickname(self, request: web.Request) -> web.Response:
        """`GET /players?nickname=NAME[&game=cs2]`: exact, case-sensitive lookup."""
        nickname = request.query.get("nickname")
        if not nickname:
            raise BadRequestError("nickname is required")
        player = self._world.player_by_nickname(nickname)
        if player is None or request.query.get("game", "cs2") != "cs2":
            return _error(404)
        return web.json_response(player_json(player))

    async def search_players(self, request: web.Request) -> web.Response:
        """`GET /search/players?nickname=PART`: case-insensitive substring, prefixes first."""
        part = request.query.get("nickname")
        if not part:
            raise BadRequestError("nickname is required")
        offset, limit = _paging(request)
        found = self._world.search_players(part)
        if request.query.get("game", "cs2") != "cs2":
            found = []
        items = [search_item_json(p) for p in found[offset : offset + limit]]
        return web.json_response(page_json(items, offset))

    async def player(self, request: web.Request) -> web.Response:
        """`GET /players/{player_id}`."""
        player = self._world.player(request.match_info["player_id"])
        if player is None:
            return _error(404)
        return web.json_response(player_json(player))

    async def match(self, request: web.Request) -> web.Response:
        """`GET /matches/{match_id}`."""
        match = self._world.match(request.match_info["match_id"])
        if match is None:
            return _error(404)
        hub = self._world.ensure_hub(match.hub_id, match.organizer_id)
        players = {p.player_id: p for p in self._world.players()}
        return web.json_response(match_json(match, players, hub))

    async def hub_matches(self, request: web.Request) -> web.Response:
        """`GET /hubs/{hub_id}/matches?type=all|upcoming|ongoing|past&offset&limit`."""
        hub = self._world.hub(request.match_info["hub_id"])
        if hub is None:
            return _error(404)
        kind = request.query.get("type", "all")
        if kind not in HUB_MATCH_TYPES:
            raise BadRequestError(f"type must be one of {', '.join(HUB_MATCH_TYPES)}")
        offset, limit = _paging(request)
        matches = self._world.hub_matches(hub.hub_id, kind)[offset : offset + limit]
        players = {p.player_id: p for p in self._world.players()}
        items = [match_json(m, players, hub) for m in matches]
        return web.json_response(page_json(items, offset))
