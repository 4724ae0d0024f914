"""A TCP proxy in front of the test Postgres that a test can cut, as a network outage would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def _socket_path(dsn: str) -> tuple[str, str]:
    """The Unix socket of the Postgres at `dsn` (the embedded one), and its database name."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    port = query.get("port", ["5432"])[0]
    return str(Path(query["host"][0]) / f".s.PGSQL.{port}"), parts.path.lstrip("/")


class DatabaseProxy:
    """Forwards TCP connections to Postgres; `cut()` drops them all and refuses new ones."""

    def __init__(self, socket_path: str) -> None:
        self._socket_path = socket_path
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (on `port` when given: a restart after a cut)."""
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening (connections are refused) and drop every open connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(self._socket_path)
        self._writers.update((writer, upstream_writer))
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@asynccontextmanager
async def database_proxy(dsn: str) -> AsyncIterator[tuple[DatabaseProxy, str]]:
    """A running proxy to the database at `dsn`, and the DSN that goes through it."""
    socket_path, database = _socket_path(dsn)
    proxy = DatabaseProxy(socket_path)
    await proxy.start()
    try:
        yield proxy, f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}?sslmode=disable"
    finally:
        await proxy.cut()
