"""`POST /faceit-webhook`: authenticate, bound, parse, store in the inbox, then answer."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from services.ingest.deps import WebhookParts, webhook_parts, webhook_parts_of
from services.ingest.events import Action, InboundEvent, NotAFaceitEvent, decode_body
from services.ingest.events import parse_webhook as parse_body
from services.ingest.payloads import Envelope, SimpleEvent
from services.ingest.settings import IngestSettings
from services.ingest.store import StoreBusy, StoreResult
from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.log_throttle import LogThrottle
from services.kit.logging import log_context

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# How many of an event's dropped roster entries its warning names (it counts the rest).
DROPPED_NAMED = 5


class BodyTooLarge(Exception):
    """The request body is over MAX_BODY_BYTES."""


def _authenticated(request: Request, settings: IngestSettings) -> bool:
    secret = settings.faceit_webhook_secret
    if secret is None:
        return True
    expected = secret.get_secret_value().encode()
    offered = [_header(request, settings.faceit_webhook_header)]
    if settings.faceit_webhook_query_param:
        offered.append(request.query_params.get(settings.faceit_webhook_query_param))
    # Compare every candidate (no early exit) so timing says nothing about which one matched.
    matches = [hmac.compare_digest(value.encode(), expected) for value in offered if value]
    return any(matches)


def _header(request: Request, name: str) -> str | None:
    """The request's first `name` header, as `request.headers.get(name)` reads it, without
    building starlette's Headers for the one lookup (a webhook's CPU: bench/findings.md)."""
    wanted = name.lower().encode("latin-1")
    for key, value in request.scope["headers"]:
        if key == wanted:
            return value.decode("latin-1")
    return None


async def read_bounded(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing (BodyTooLarge) a declared or streamed size over `limit`;
    ClientDisconnect when the client goes away before it is complete.

    Reads the ASGI messages itself, as `request.stream()` does, without its async generator.
    """
    declared = _header(request, "content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        if message["type"] != "http.request":
            continue
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def ignore_reason(event: InboundEvent, settings: IngestSettings) -> str | None:
    """Why `event` is stored as ignored, or None when it is for the delivery worker."""
    if event.action is Action.NONE:
        return f"{event.event} needs no action"
    if settings.faceit_hub_ids and event.hub_id not in settings.faceit_hub_ids:
        return f"hub {event.hub_id or '(none)'} is not in FACEIT_HUB_IDS"
    if settings.faceit_organizer_ids and event.organizer_id not in settings.faceit_organizer_ids:
        return f"organizer {event.organizer_id or '(none)'} is not in FACEIT_ORGANIZER_IDS"
    return None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": "error", "error": message}, status_code=status, headers=headers)


class _Stored(JSONResponse):
    """The answer to a stored event, rendered by orjson: the bytes and headers starlette's
    JSONResponse gives it (compact UTF-8; content-length, then content-type), at a fraction
    of the standard library encoder's and the generic header code's cost."""

    def __init__(self, content: dict[str, Any]) -> None:
        self.status_code = 200
        self.background = None
        self.body = orjson.dumps(content)
        self.raw_headers = [
            (b"content-length", str(len(self.body)).encode()),
            (b"content-type", b"application/json"),
        ]


def _busy(refusal: StoreBusy, event: str) -> JSONResponse:
    if refusal.report is not None:
        logger.warning(
            "webhooks refused, database busy: %s (%s refused since the last such line)",
            refusal,
            refusal.report,
            extra={"event": event},
        )
    message = "the event could not be stored (database busy); retry later"
    return _error(503, message, {"Retry-After": "1"})


def _inline_refs(schema: Any, definitions: dict[str, Any]) -> Any:
    """`schema` with its `#/$defs/...` references replaced by the definitions (no recursion)."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline_refs(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {
            key: _inline_refs(value, definitions) for key, value in schema.items() if key != "$defs"
        }
    if isinstance(schema, list):
        return [_inline_refs(item, definitions) for item in schema]
    return schema


def webhook_body_schema() -> dict[str, Any]:
    """The OpenAPI schema of the webhook body: the real envelope or the simplified shape."""
    shapes = []
    for model in (Envelope, SimpleEvent):
        schema = model.model_json_schema()
        shapes.append(_inline_refs(schema, schema.get("$defs", {})))
    return {"oneOf": shapes}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored (or a duplicate, or ignored: the body says so)."},
    400: {"description": "The body is not JSON, or not a JSON object."},
    401: {"description": "The webhook secret is missing or wrong."},
    413: {"description": "The body is over 1 MiB."},
    422: {"description": "JSON that is no FACEIT event, or a value beyond the input limits."},
    500: {"description": "The event could not be stored for a reason other than an outage."},
    503: {"description": "The database is unreachable or busy; FACEIT should retry."},
}

router = APIRouter()
PATH = "/faceit-webhook"


@router.post(
    PATH,
    summary="Receive a FACEIT webhook",
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": webhook_body_schema()}},
        }
    },
)
async def faceit_webhook(request: Request) -> JSONResponse:
    """Authenticate and store one FACEIT event; the inbox has it before the 200 goes out."""
    # Not a FastAPI dependency: resolving one cost about 30 us of CPU per webhook here, more
    # than a tenth of everything the route does (bench/findings.md).
    return await handle(request, webhook_parts(request))


class WebhookFirst:
    """The ASGI app ingest serves: `POST /faceit-webhook` straight to `handle`, the rest to `app`.

    The route above is the webhook as documented (OpenAPI) and as tests over ASGI call it; over
    HTTP the same `handle` runs without FastAPI's per-request machinery (its middleware stack,
    routing and the endpoint's parameter solving), which cost ~45 us of CPU per webhook, about
    a seventh of all ingest spent on one (bench/findings.md).
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST":
            response = await handle(Request(scope, receive), webhook_parts_of(self.app))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def handle(request: Request, parts: WebhookParts) -> JSONResponse:
    """The answer to one webhook delivery, counted and timed in the metrics."""
    started = time.perf_counter()
    response, event_name, outcome = await _receive(request, parts)
    metrics = parts.metrics
    metrics.count_webhook(event_name, outcome)
    metrics.ack_latency.observe(time.perf_counter() - started)
    return response


async def _receive(request: Request, parts: WebhookParts) -> tuple[JSONResponse, str, str]:
    """The answer to one delivery, the event name and the outcome label for the metrics."""
    settings, inbox = parts.settings, parts.inbox
    if not _authenticated(request, settings):
        return _error(401, "missing or wrong webhook secret"), "unknown", "unauthorized"
    refusal = inbox.busy()
    if refusal is not None:
        # Refused before the body is even read: under overload a refusal must cost little.
        return _busy(refusal, "unknown"), "unknown", "busy"
    try:
        raw = await read_bounded(request)
    except BodyTooLarge:
        return _error(413, f"the body is over {MAX_BODY_BYTES} bytes"), "unknown", "too_large"
    except ClientDisconnect:
        # The sender gave up before its body arrived (it will retry): nothing to store, and
        # nobody to answer; not an error of ours, so no traceback.
        logger.debug("webhook sender disconnected before its body arrived")
        return _error(400, "the client disconnected"), "unknown", "disconnected"
    try:
        body = decode_body(raw)
    except (ValueError, RecursionError):
        return _error(400, "the body is not JSON"), "unknown", "bad_request"
    if not isinstance(body, dict):
        return _error(400, "the body is not a JSON object"), "unknown", "bad_request"
    try:
        event = parse_body(body)
    except NotAFaceitEvent as error:
        return _error(422, str(error)), "unknown", "invalid"
    ignored = ignore_reason(event, settings)
    with log_context(match_id=event.match_id, event_id=event.event_id):
        if event.dropped:
            _log_dropped(event)
        # With a delivery slot free, the store leases the match itself when it may, and the
        # event goes from here to the worker: no NOTIFY and no claim statement before voice.
        offer = parts.worker.offer_lease() if ignored is None else None
        stored: StoreResult | None = None
        try:
            result = stored = await inbox.store(event, ignored=ignored, body=raw, lease=offer)
        except StoreBusy as error:
            return _busy(error, event.event), event.event, "busy"
        except DATABASE_UNAVAILABLE as error:
            logger.error("could not store %s (version %s): %r", event.event, event.version, error)
            message = "the event could not be stored (database unavailable); retry later"
            return _error(503, message), event.event, "unavailable"
        except Exception:
            # Not the database being away: a retry would fail the same way, so no 503.
            logger.exception("could not store %s (version %s)", event.event, event.version)
            return _error(500, "the event could not be stored"), event.event, "error"
        finally:
            if offer is not None:
                parts.worker.hand_over(offer, stored)
        content: dict[str, Any] = {"status": "success", "event": event.event}
        if result.duplicate:
            content["duplicate"] = True
            logger.info("webhook %s (version %s) duplicate", event.event, event.version)
            return _Stored(content), event.event, "duplicate"
        if ignored is not None:
            content["ignored"] = ignored
            _log_ignored(event, ignored, parts.ignored)
            return _Stored(content), event.event, "ignored"
        # Accepted events are the bulk of the traffic, and the delivery logs them at INFO.
        logger.debug("webhook %s (version %s) accepted", event.event, event.version)
    return _Stored(content), event.event, "accepted"


def _log_dropped(event: InboundEvent) -> None:
    """One warning naming what normalising the rosters left out (the first few of it)."""
    named = "; ".join(event.dropped[:DROPPED_NAMED])
    more = len(event.dropped) - DROPPED_NAMED
    logger.warning(
        "webhook %s (version %s): dropped from the rosters: %s%s",
        event.event,
        event.version,
        named,
        f" (and {more} more)" if more > 0 else "",
    )


def _log_ignored(event: InboundEvent, reason: str, throttle: LogThrottle) -> None:
    """Every ignored event at DEBUG; at most one a second at INFO, with its reason and a count.

    The inbox keeps each one with its reason (ListEvents) and the metrics count them, so the
    INFO line is there to show an operator that events are being ignored and why.
    """
    count = throttle.count()
    if count is None:
        logger.debug("webhook %s (version %s) ignored: %s", event.event, event.version, reason)
        return
    logger.info(
        "webhook %s (version %s) ignored: %s (%s ignored since the last such line)",
        event.event,
        event.version,
        reason,
        count,
    )
