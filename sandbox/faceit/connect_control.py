"""The `/_sandbox/oauth/` control routes: register Connect clients, queue and clear its faults."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from sandbox.faceit.connect_faults import ConnectFaults
from sandbox.faceit.connect_grants import Grants, OAuthClient
from sandbox.faceit.control_api import _body
from sandbox.faceit.model import SandboxError


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SandboxError(f"{name} must be a number")
    return float(value)


def _valid_redirect_uri(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    url = URL(value)
    return url.absolute and url.scheme in ("http", "https") and not url.fragment


class ConnectControl:
    """Control routes of FACEIT Connect, acting on its clients and its fault queue."""

    def __init__(self, *, grants: Grants, faults: ConnectFaults) -> None:
        self._grants = grants
        self._faults = faults
        self.userinfo_answers: list[dict[str, Any]] = []
        """Each userinfo answered with a player: `player_id` and `answered_at`, on
        `time.monotonic()` (a clock the processes of one machine share), oldest first."""

    def routes(self) -> list[web.RouteDef]:
        """The `/_sandbox/oauth/` routes."""
        return [
            web.post("/_sandbox/oauth/clients", self.register_client),
            web.get("/_sandbox/oauth/faults", self.get_faults),
            web.post("/_sandbox/oauth/faults", self.add_fault),
            web.delete("/_sandbox/oauth/faults", self.clear_faults),
            web.get("/_sandbox/oauth/userinfo-answers", self.get_userinfo_answers),
        ]

    async def register_client(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/oauth/clients {"client_id", "client_secret", "redirect_uris"}`."""
        body = await _body(request)
        client_id, secret, uris = (
            body.get("client_id"),
            body.get("client_secret"),
            body.get("redirect_uris"),
        )
        if not (isinstance(client_id, str) and client_id):
            raise SandboxError("client_id is required")
        if not (isinstance(secret, str) and secret):
            raise SandboxError("client_secret is required")
        if not (isinstance(uris, list) and uris and all(_valid_redirect_uri(u) for u in uris)):
            raise SandboxError("redirect_uris must be absolute http(s) URLs without a fragment")
        is_new = self._grants.register(OAuthClient(client_id, secret, tuple(uris)))
        return web.json_response(
            {"client_id": client_id, "redirect_uris": uris}, status=201 if is_new else 200
        )

    async def get_faults(self, request: web.Request) -> web.Response:
        """`GET /_sandbox/oauth/faults`: the queued Connect faults."""
        return web.json_response({"faults": self._faults.snapshot()})

    async def add_fault(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/oauth/faults {"endpoint", "kind", "count"?, "status"?, "delay_ms"?}`."""
        body = await _body(request)
        endpoint, kind = body.get("endpoint"), body.get("kind")
        if not (isinstance(endpoint, str) and isinstance(kind, str)):
            raise SandboxError("endpoint and kind are required")
        self._faults.add(
            endpoint,
            kind,
            int(_number(body, "count", 1)),
            status=int(_number(body, "status", 503)),
            delay_ms=_number(body, "delay_ms", 0),
        )
        return web.json_response({"faults": self._faults.snapshot()}, status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """`DELETE /_sandbox/oauth/faults`: no Connect faults."""
        self._faults.reset()
        return web.json_response({"faults": []})

    async def get_userinfo_answers(self, request: web.Request) -> web.Response:
        """`GET /_sandbox/oauth/userinfo-answers`: when userinfo answered, and for whom."""
        return web.json_response({"answers": self.userinfo_answers})
