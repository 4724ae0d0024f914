"""The `/_sandbox/` control API: create players and matches, script statuses, set faults."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from aiohttp import web

from sandbox.faceit.api_shapes import match_json, player_json
from sandbox.faceit.deliverer import WebhookDeliverer, WebhookOptions
from sandbox.faceit.faults import ApiFaults, RequestLog
from sandbox.faceit.lifecycle import MatchLifecycle, rosters
from sandbox.faceit.model import ConflictError, Match, SandboxError, normalise_status
from sandbox.faceit.webhook_payloads import CREATED_EVENT
from sandbox.faceit.world import World

# JSON names of the webhook options, with the factor from JSON units to WebhookOptions units.
_OPTION_FIELDS = {
    "duplicate": ("duplicate", 1),
    "drop_rate": ("drop_rate", 1),
    "reorder": ("reorder", 1),
    "seed": ("seed", 1),
    "retries": ("retries", 1),
    "backoff_ms": ("backoff_s", 1000),
    "timeout_ms": ("timeout_s", 1000),
    "concurrency": ("concurrency", 1),
}


def options_json(options: WebhookOptions) -> dict[str, Any]:
    """Webhook options as the control API shows them (times in milliseconds)."""
    values = asdict(options)
    return {
        name: values[field] * factor if factor != 1 else values[field]
        for name, (field, factor) in _OPTION_FIELDS.items()
    }


def options_from_json(current: WebhookOptions, body: dict[str, Any]) -> WebhookOptions:
    """`current` with the fields named in `body` (control API units) changed."""
    unknown = set(body) - set(_OPTION_FIELDS)
    if unknown:
        raise SandboxError(f"unknown webhook options: {', '.join(sorted(unknown))}")
    changes = {}
    for name, value in body.items():
        field, factor = _OPTION_FIELDS[name]
        changes[field] = value / factor if factor != 1 else value
    try:
        return current.with_changes(changes)
    except (TypeError, ValueError) as exc:
        raise SandboxError(str(exc)) from exc


def _fail(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise SandboxError("body is not JSON") from exc
    if not isinstance(body, dict):
        raise SandboxError("body must be a JSON object")
    return body


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise SandboxError(f"{key} must be a string")
    return value


def _optional_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise SandboxError(f"{key} must be true or false")
    return value


class ControlApi:
    """Handlers of `/_sandbox/...`: JSON validation around the model and the lifecycle."""

    def __init__(
        self,
        *,
        world: World,
        lifecycle: MatchLifecycle,
        deliverer: WebhookDeliverer,
        faults: ApiFaults,
        request_log: RequestLog,
    ) -> None:
        self._world = world
        self._lifecycle = lifecycle
        self._deliverer = deliverer
        self._faults = faults
        self._log = request_log

    def routes(self) -> list[web.RouteDef]:
        """The control routes, to add to the top-level application."""
        return [
            web.post("/_sandbox/players", self.create_player),
            web.get("/_sandbox/players", self.list_players),
            web.post("/_sandbox/matches", self.create_match),
            web.get("/_sandbox/matches/{match_id}", self.match_view),
            web.post("/_sandbox/matches/{match_id}/status", self.set_status),
            web.post("/_sandbox/matches/{match_id}/play", self.play),
            web.post("/_sandbox/subscriptions", self.subscribe),
            web.get("/_sandbox/subscriptions", self.list_subscriptions),
            web.delete("/_sandbox/subscriptions/{subscription_id}", self.unsubscribe),
            web.get("/_sandbox/faults", self.get_faults),
            web.post("/_sandbox/faults", self.set_faults),
            web.delete("/_sandbox/faults", self.clear_faults),
            web.get("/_sandbox/deliveries", self.deliveries),
            web.post("/_sandbox/deliveries/flush", self.flush_deliveries),
            web.get("/_sandbox/requests", self.requests),
            web.delete("/_sandbox/requests", self.clear_requests),
        ]

    @web.middleware
    async def errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Middleware: sandbox errors on control routes become 400/409 JSON answers."""
        try:
            response: web.StreamResponse = await handler(request)
        except ConflictError as exc:
            return _fail(409, str(exc))
        except SandboxError as exc:
            return _fail(400, str(exc))
        return response

    async def create_player(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/players {"nickname", "player_id"?, "skill_level"?, ...}`."""
        body = await _body(request)
        nickname = _optional_str(body, "nickname")
        if not nickname:
            raise SandboxError("nickname is required")
        for key in ("skill_level", "faceit_elo"):
            if key in body and not isinstance(body[key], int):
                raise SandboxError(f"{key} must be an integer")
        player = self._world.add_player(
            nickname,
            player_id=_optional_str(body, "player_id"),
            skill_level=body.get("skill_level"),
            faceit_elo=body.get("faceit_elo"),
            avatar=_optional_str(body, "avatar") or "",
            country=_optional_str(body, "country") or "gb",
            game_player_name=_optional_str(body, "game_player_name"),
        )
        return web.json_response(player_json(player), status=201)

    async def list_players(self, request: web.Request) -> web.Response:
        """`GET /_sandbox/players`: every player in Data API shape."""
        return web.json_response({"items": [player_json(p) for p in self._world.players()]})

    async def create_match(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/matches {"teams": [[ids], [ids]], ...}`; sends match_object_created."""
        body = await _body(request)
        teams = body.get("teams")
        if not isinstance(teams, list) or not all(
            isinstance(team, list) and all(isinstance(pid, str) for pid in team) for team in teams
        ):
            raise SandboxError("teams must be two lists of player ids")
        team_names = body.get("team_names")
        if team_names is not None and not (
            isinstance(team_names, list) and all(isinstance(n, str) for n in team_names)
        ):
            raise SandboxError("team_names must be a list of two strings")
        match, webhooks = self._lifecycle.create_match(
            teams,
            match_id=_optional_str(body, "match_id"),
            hub_id=_optional_str(body, "hub_id"),
            organizer_id=_optional_str(body, "organizer_id"),
            team_names=team_names,
            fill_rosters=_optional_bool(body, "fill_rosters"),
            webhook=bool(body.get("webhook", True)),
        )
        return web.json_response(
            {
                "match_id": match.match_id,
                "hub_id": match.hub_id,
                "organizer_id": match.organizer_id,
                "status": match.status,
                "version": match.webhook_version,
                "api_version": match.api_version,
                "fill_rosters": match.fill_rosters,
                "teams": [
                    {"faction_id": t.faction_id, "name": t.name, "player_ids": t.player_ids}
                    for t in match.teams
                ],
                "rosters": rosters(match),
                "event": CREATED_EVENT,
                "webhooks": webhooks,
            },
            status=201,
        )

    async def set_status(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/matches/{id}/status {"status", "webhook"?, "reason"?, ...}`."""
        match = self._match(request)
        if match is None:
            return _fail(404, "no such match")
        body = await _body(request)
        return web.json_response(self._step(match, body))

    async def play(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/matches/{id}/play {"steps": ["CONFIGURING", "READY", ...]}`."""
        match = self._match(request)
        if match is None:
            return _fail(404, "no such match")
        body = await _body(request)
        steps = body.get("steps")
        if not isinstance(steps, list) or not steps:
            raise SandboxError("steps must be a non-empty list")
        parsed = [{"status": step} if isinstance(step, str) else step for step in steps]
        if not all(isinstance(step, dict) for step in parsed):
            raise SandboxError("each step is a status or an object like the status route's body")
        for step in parsed:  # validate all before changing anything
            normalise_status(str(step.get("status", "")))
        results = [self._step(match, step) for step in parsed]
        return web.json_response({"match_id": match.match_id, "steps": results})

    def _match(self, request: web.Request) -> Match | None:
        return self._world.match(request.match_info["match_id"])

    def _step(self, match: Match, body: dict[str, Any]) -> dict[str, Any]:
        raw = body.get("status")
        if not isinstance(raw, str):
            raise SandboxError("status is required")
        afk = body.get("afk", [])
        if not isinstance(afk, list):
            raise SandboxError("afk must be a list of player ids")
        winner = _optional_str(body, "winner")
        if winner not in (None, "faction1", "faction2"):
            raise SandboxError("winner must be faction1 or faction2")
        return self._lifecycle.set_status(
            match,
            normalise_status(raw),
            reason=_optional_str(body, "reason"),
            afk_player_ids=afk,
            winner=winner,
            webhook=bool(body.get("webhook", True)),
        )

    async def subscribe(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/subscriptions {"url", "header_name"?, "header_value"?, ...}`."""
        body = await _body(request)
        url = _optional_str(body, "url")
        if not url:
            raise SandboxError("url is required")
        subscription = self._world.add_subscription(
            url,
            header_name=_optional_str(body, "header_name"),
            header_value=_optional_str(body, "header_value"),
            query_param=_optional_str(body, "query_param"),
            query_value=_optional_str(body, "query_value"),
        )
        return web.json_response(asdict(subscription), status=201)

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        """`GET /_sandbox/subscriptions`."""
        return web.json_response({"items": [asdict(s) for s in self._world.subscriptions()]})

    async def unsubscribe(self, request: web.Request) -> web.Response:
        """`DELETE /_sandbox/subscriptions/{id}`."""
        if not self._world.remove_subscription(request.match_info["subscription_id"]):
            return _fail(404, "no such subscription")
        return web.json_response({"deleted": True})

    def _faults_json(self) -> dict[str, Any]:
        return {**self._faults.snapshot(), "webhooks": options_json(self._deliverer.options)}

    async def get_faults(self, request: web.Request) -> web.Response:
        """`GET /_sandbox/faults`: latency, queued failures and webhook options."""
        return web.json_response(self._faults_json())

    async def set_faults(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/faults {"latency_ms"?, "fail"?, "webhooks"?}`."""
        body = await _body(request)
        unknown = set(body) - {"latency_ms", "fail", "webhooks"}
        if unknown:
            raise SandboxError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        options = self._deliverer.options
        if "webhooks" in body:
            if not isinstance(body["webhooks"], dict):
                raise SandboxError("webhooks must be an object")
            options = options_from_json(options, body["webhooks"])
        rules = body.get("fail", [])
        rules = [rules] if isinstance(rules, dict) else rules
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise SandboxError("fail must be an object or a list of objects")
        latency = body.get("latency_ms")
        if latency is not None and (not isinstance(latency, int | float) or latency < 0):
            raise SandboxError("latency_ms must be a number >= 0")
        for rule in rules:
            try:
                self._faults.add_failure(
                    int(rule.get("status", 429)),
                    int(rule.get("count", 1)),
                    route=rule.get("route"),
                    retry_after=rule.get("retry_after"),
                )
            except (TypeError, ValueError) as exc:
                raise SandboxError(str(exc)) from exc
        if latency is not None:
            self._faults.latency_s = latency / 1000
        self._deliverer.set_options(options)
        return web.json_response(self._faults_json())

    async def clear_faults(self, request: web.Request) -> web.Response:
        """`DELETE /_sandbox/faults`: no failures; latency and webhook options as at start."""
        self._faults.reset()
        self._deliverer.reset_options()
        return web.json_response(self._faults_json())

    async def deliveries(self, request: web.Request) -> web.Response:
        """`GET /_sandbox/deliveries`: every attempt, and the pending/held/failed counts."""
        return web.json_response(self._deliverer.snapshot())

    async def flush_deliveries(self, request: web.Request) -> web.Response:
        """`POST /_sandbox/deliveries/flush`: release deliveries held back for reordering."""
        return web.json_response({"released": self._deliverer.flush()})

    async def requests(self, request: web.Request) -> web.Response:
        """`GET /_sandbox/requests[?route=]`: the Data API request log and counts."""
        entries = self._log.entries(request.query.get("route"))
        return web.json_response(
            {"requests": [asdict(e) for e in entries], "counts": self._log.counts()}
        )

    async def clear_requests(self, request: web.Request) -> web.Response:
        """`DELETE /_sandbox/requests`: forget the request log."""
        self._log.clear()
        return web.json_response({"cleared": True})

    async def match_view(self, request: web.Request) -> web.Response:
        """`GET /_sandbox/matches/{id}`: the match in Data API shape, without auth or faults."""
        match = self._match(request)
        if match is None:
            return _fail(404, "no such match")
        hub = self._world.ensure_hub(match.hub_id, match.organizer_id)
        players = {p.player_id: p for p in self._world.players()}
        return web.json_response(match_json(match, players, hub))
