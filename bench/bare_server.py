"""`python -m bench.bare_server`: the reference for the webhook ack, a bare FastAPI endpoint.

Same uvicorn config and process layout as `python -m services.ingest` (one process,
`uvicorn.Server(config).run()`, ingest's event loop (uvloop, named, not left to uvicorn's
`auto`), httptools with ingest's header and body deadlines, head and connection bounds, no
access log, the same logging setup and the same garbage collector settings);
`POST /faceit-webhook` reads the body and answers 200 with a small JSON, and nothing else.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.ingest.http_server import HttpLimits, guarded_protocol
from services.ingest.settings import IngestSettings
from services.kit.collector import settle_after_startup
from services.kit.event_loop import UVICORN_LOOP
from services.kit.logging import setup_logging


def create_bare_app() -> FastAPI:
    """The bare app: one webhook route that does no work, and a health route."""
    app = FastAPI(title="bare reference endpoint")

    @app.post("/faceit-webhook")
    async def bare_webhook(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"status": "success", "event": "bare"})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def bare_config(host: str, port: int) -> uvicorn.Config:
    """The bare app's uvicorn config: ingest's protocol class, limits and event loop."""
    # Ingest's HTTP limits at their defaults: the same protocol class on both sides.
    defaults = IngestSettings.model_fields
    limits = HttpLimits(
        header_timeout_s=defaults["ingest_http_header_timeout_s"].default,
        body_timeout_s=defaults["ingest_http_body_timeout_s"].default,
        max_connections=defaults["ingest_http_max_connections"].default,
    )
    return uvicorn.Config(
        create_bare_app(),
        host=host,
        port=port,
        http=guarded_protocol(limits),
        loop=UVICORN_LOOP,
        log_config=None,
        lifespan="on",
        access_log=False,
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the bare app on --host/--port with ingest's uvicorn config."""
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level.upper(), service="bare")
    config = bare_config(args.host, args.port)
    settle_after_startup()
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
