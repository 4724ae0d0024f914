"""The registry's HTTP app (FastAPI): the link pages of the verified-link flow, and probes.

Every answer carries the same security headers: nothing may frame it, nothing loads from
anywhere, forms post only here or to FACEIT's sign-in, nothing is cached, no Referer leaves
(the callback URL holds a code). No route takes a redirect target from the request: the only
redirect goes to FACEIT's authorization endpoint from the discovery document.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.limits import MAX_TEXT_CHARS
from services.kit.metrics import metrics_response
from services.registry.link_flow import (
    BROWSER_COOKIE,
    CALLBACK_PATH,
    BadCallback,
    LinkFlow,
    LinkFlowError,
    new_browser_token,
)
from services.registry.link_pages import (
    STYLE_SOURCE,
    confirm_page,
    error_page,
    linked_page,
    plain_page,
)
from services.registry.metrics import RegistryMetrics
from services.registry.urls import origin

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0
MAX_FORM_BYTES = 1024
"""The continue form holds one hidden token of 43 characters."""
MAX_CALLBACK_VALUE_CHARS = MAX_TEXT_CHARS * 4
"""Longer than any code, state or error FACEIT sends; longer values are refused unread."""

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def content_security_policy(form_target: str | None = None) -> str:
    """The CSP of every page; `form_target` (FACEIT's sign-in) is added to form-action where a
    form leads there (form-action also governs the redirect that answers the form)."""
    form_action = "'self'" + (f" {origin(form_target)}" if form_target else "")
    return (
        f"default-src 'none'; style-src {STYLE_SOURCE}; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def _html(body: str, status: int, form_target: str | None = None) -> HTMLResponse:
    # The headers are set here too, not only by the middleware: the answer to an unexpected
    # error is made outside every middleware.
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = content_security_policy(form_target)
    return response


def _flow_error(error: LinkFlowError) -> HTMLResponse:
    return _html(error_page(error), error.status)


def create_app(
    pool: asyncpg.Pool,
    flow: LinkFlow | None,
    metrics: RegistryMetrics,
    *,
    link_state_ttl_s: float,
) -> FastAPI:
    """The HTTP app over `pool`; `flow` is None when links are not verified (no link pages).

    `GET /metrics` serves `metrics`; the ingress routes only /link/ here (docs/operations.md).
    """
    app = FastAPI(title="faceit-voice registry", docs_url=None, redoc_url=None, openapi_url=None)
    cookie_path = "/link"
    secure_cookie = False
    if flow is not None:
        base = urlsplit(flow.public_base_url)
        cookie_path = f"{base.path}/link"
        secure_cookie = base.scheme == "https"

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        return response

    @app.exception_handler(LinkFlowError)
    async def refused(request: Request, error: LinkFlowError) -> Response:
        logger.info(
            "%s %s answered %s: %s", request.method, _route(request), error.status, error.message
        )
        metrics.link_failed(error)
        return _flow_error(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        titles = {404: "Page not found", 405: "Method not allowed"}
        title = titles.get(error.status_code, "Request refused")
        return _html(plain_page(title, "There is nothing to do here."), error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return _html(plain_page("Request refused", "The request is malformed."), 400)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> Response:
        if isinstance(error, DATABASE_UNAVAILABLE):
            logger.warning("%s: database unavailable: %r", _route(request), error)
            message = "The registry's database is not reachable. Try again in a minute."
            return _html(plain_page("Try again shortly", message), 503)
        logger.error("%s %s failed", request.method, _route(request), exc_info=error)
        message = "Something went wrong on our side. Run /register in Discord again."
        return _html(plain_page("Something went wrong", message), 500)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Alive."""
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """200 when the database answers, else 503."""
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await pool.fetchval("SELECT 1")
        except (*DATABASE_UNAVAILABLE, asyncpg.PostgresError) as error:
            logger.warning("not ready: database unreachable: %r", error)
            return JSONResponse({"status": "unavailable", "database": repr(error)}, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """The registry's metrics in the Prometheus text format."""
        return metrics_response(metrics.registry)

    def require_flow() -> LinkFlow:
        if flow is None:
            raise StarletteHTTPException(404)
        return flow

    # Declared before /link/{state}, which would otherwise take "callback" as a state.
    @app.get(CALLBACK_PATH)
    async def callback(request: Request) -> Response:
        """FACEIT sends the browser back here: finish the flow and say what happened."""
        linking = require_flow()
        params = request.query_params
        values = {key: params.get(key, "") for key in ("state", "code", "error")}
        if any(len(value) > MAX_CALLBACK_VALUE_CHARS for value in values.values()):
            raise BadCallback("FACEIT's answer is too long to be real")
        finished = await linking.finish(
            values["state"],
            values["code"],
            values["error"],
            request.cookies.get(BROWSER_COOKIE),
        )
        response = _html(linked_page(finished), 200)
        response.delete_cookie(BROWSER_COOKIE, path=cookie_path)
        return response

    @app.get("/link/{state}")
    async def link_page(state: str) -> Response:
        """The page that names the Discord account to be linked, with a continue button."""
        linking = require_flow()
        pending = await linking.pending(state)
        target = await linking.authorization_endpoint()
        token = new_browser_token()
        response = _html(confirm_page(pending, linking.page_url(state), token), 200, target)
        response.set_cookie(
            BROWSER_COOKIE,
            token,
            max_age=int(link_state_ttl_s),
            path=cookie_path,
            secure=secure_cookie,
            httponly=True,
            samesite="lax",
        )
        return response

    @app.post("/link/{state}")
    async def continue_to_faceit(state: str, request: Request) -> Response:
        """The continue button: 302 to FACEIT's sign-in with PKCE and the state."""
        linking = require_flow()
        body = await _small_body(request)
        page_token = parse_qs(body).get("page_token", [""])[0]
        location = await linking.depart(state, page_token, request.cookies.get(BROWSER_COOKIE))
        return RedirectResponse(location, status_code=302)

    return app


def _route(request: Request) -> str:
    """The route's template (`/link/{state}`): a path would put a live state in the log."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "an unknown path"))


async def _small_body(request: Request) -> str:
    """The request body as text, refused (BadCallback) past MAX_FORM_BYTES."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadCallback("the form is too large to be the link page's")
    return body.decode("utf-8", "replace")
