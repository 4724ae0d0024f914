"""uvicorn beside a gRPC server (the registry's link pages, voice's metrics): it serves on a
socket it binds itself and leaves signals to the gRPC server, which stops it first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

logger = logging.getLogger(__name__)

HTTP_START_TIMEOUT_S = 30.0


class HttpServer:
    """uvicorn serving an app on a socket bound by `start()` (port 0 picks a free one).

    Signals are left to the gRPC server, which stops this one first among its cleanups.
    """

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._server: _QuietUvicorn | None = None
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port; only after start()."""
        if self._socket is None:
            raise RuntimeError("the HTTP server has not been started")
        port: int = self._socket.getsockname()[1]
        return port

    def bind(self) -> int:
        """Bind the socket (once) and return its port: the app may need its own URL."""
        if self._socket is None:
            self._socket = socket.create_server(self._address)
            # Accepted connections inherit it. asyncio sets it on sockets it creates, not on one
            # handed over; without it each answer (headers, then body) waits ~40 ms for an ACK.
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.port

    async def start(self, app: FastAPI) -> int:
        """Serve `app` in a task; return the port once uvicorn accepts connections."""
        self.bind()
        assert self._socket is not None
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        server = self._server = _QuietUvicorn(config)
        self._task = asyncio.create_task(server.serve(sockets=[self._socket]))
        async with asyncio.timeout(HTTP_START_TIMEOUT_S):
            while not server.started:
                if self._task.done():
                    await self._task
                    raise RuntimeError("the HTTP server stopped while starting")
                await asyncio.sleep(0.01)
        logger.info("HTTP server listening on port %s", self.port)
        return self.port

    async def wait(self) -> None:
        """Until the server stops; RuntimeError if it stopped without being asked to. Being
        cancelled (a sibling failed) leaves the server running for `stop()`."""
        assert self._task is not None and self._server is not None
        await asyncio.shield(self._task)
        if not self._server.should_exit:
            raise RuntimeError("the HTTP server stopped on its own")

    async def stop(self) -> None:
        """Stop accepting, let open requests finish, close the socket."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._socket is not None:
            self._socket.close()


class _QuietUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the gRPC server owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
