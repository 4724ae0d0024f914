"""The kit's HttpServer: uvicorn on a socket it binds itself, started and stopped."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI

from services.kit.http_server import HttpServer

STALL_S = 0.02
"""Well below the 40 ms a delayed ACK adds to each answer when Nagle's algorithm holds the body
back (what a socket without TCP_NODELAY does to a response written in two parts)."""


def _ping_app() -> FastAPI:
    """An app with one route, GET /ping."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def test_answers_on_a_kept_alive_connection_are_not_stalled() -> None:
    """Answers go out at once: the median of twenty requests on one connection is < 20 ms (the
    first few would be quick anyway: a new connection acknowledges at once for a while)."""
    server = HttpServer("127.0.0.1", 0)
    port = await server.start(_ping_app())
    took = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(20):
                began = time.perf_counter()
                assert (await client.get("/ping")).status_code == 200
                took.append(time.perf_counter() - began)
    finally:
        await server.stop()

    assert sorted(took)[len(took) // 2] < STALL_S, took


async def test_a_cancelled_wait_leaves_the_server_for_stop_to_end() -> None:
    """Cancelling wait() (a sibling task failed) neither stops the server nor makes stop() raise."""
    server = HttpServer("127.0.0.1", 0)
    port = await server.start(_ping_app())
    waiting = asyncio.create_task(server.wait())
    await asyncio.sleep(0)  # let wait() start awaiting the server's task
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/ping")).status_code == 200
    await server.stop()
