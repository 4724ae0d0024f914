"""A small HTTP/1.1 client for voice's Discord REST calls: keep-alive pools, one write a request.

`DiscordRest` sends the creates and moves of a match side by side. aiohttp costs about two
thirds of voice's CPU per such request, and on Python 3.11 it writes each request's body from a
task of its own, so all ten moves of a match are built before the first one goes out
(bench/findings.md). Here the calling coroutine writes the whole request (head and body) to the
socket itself, and the answer is parsed by httptools (llhttp) as its bytes arrive.

What it does, and all it does: one origin's connections are kept alive in a bounded pool
(`max_per_origin`; a request waits for a free one past it) and closed once idle for `idle_s`;
https URLs go over TLS with the system's trust store and SNI; answers may have a Content-Length,
be chunked, or end with the connection; `Connection: close` is honoured; every request has a
deadline (`timeout_s`, connecting included); 1xx answers are skipped; an answer's head is
bounded by MAX_HEAD_BYTES and its body by MAX_BODY_BYTES. No redirects, no proxies, no
compression, no HEAD.

A kept-alive connection the server closes while it sits idle is noticed (the transport sees EOF)
and dropped. A server may also close it just as a request is written: then the request fails
before any byte of an answer arrives, and the server cannot have answered it, but it may have
received and acted on it. Such a request is sent once more on a fresh connection only when the
caller says it may be repeated (`repeatable`); otherwise (a POST creating a channel) it fails
with `ServerDisconnected`, as aiohttp does for non-idempotent methods.

Failures are OSErrors (`ServerDisconnected`, `BadResponse`, the socket's and TLS's own errors)
or `TimeoutError`, which the Discord paths already treat as Discord not being reachable.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024


class ServerDisconnected(ConnectionError):
    """The connection closed before the whole answer arrived."""


class BadResponse(ConnectionError):
    """The server's bytes are not an HTTP/1.1 answer (or one over the size bounds)."""


@dataclass
class HttpResponse:
    """An answer: status, reason and headers (names lower-cased) as `discord.HTTPException` reads
    them, and the body."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int


@dataclass
class _Pool:
    origin: _Origin
    idle: list[_Connection] = field(default_factory=list)
    open: int = 0
    waiters: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)


class _Connection(asyncio.Protocol):
    """One kept-alive connection: sends a request, parses its answer into a future."""

    def __init__(self, client: HttpTransport, pool: _Pool) -> None:
        self._client = client
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._left = False
        self.idle_since = 0.0
        self.received = False
        """Whether any byte of the current request's answer has arrived."""
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[HttpResponse] | None = None
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._headers_done = False
        self._delimited = True
        """Whether the answer says where it ends (a length, chunks or no body at all)."""
        self.keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self._answer is None or self._answer.done():
            self._fail(BadResponse("bytes arrived with no request outstanding"))
            return
        if not self._headers_done:
            self._head_bytes += len(data)  # httptools holds a header until it is complete
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadResponse("the server switched protocols"))
        except httptools.HttpParserError as error:
            cause = error.__context__
            self._fail(
                cause if isinstance(cause, BadResponse) else BadResponse(f"not HTTP: {error}")
            )
            return
        if not self._headers_done and self._head_bytes > MAX_HEAD_BYTES:
            self._fail(BadResponse(f"an answer's head over {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is not None and not answer.done():
            if self._headers_done and not self._delimited:
                self.keep_alive = False
                self._complete()  # the answer ran until the connection closed
            else:
                error = ServerDisconnected("the connection closed before the whole answer")
                if exc is not None:
                    error.__cause__ = exc
                answer.set_exception(error)
        self._leave()

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self._reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._delimited = (
            "content-length" in self._headers
            or "chunked" in self._headers.get("transfer-encoding", "").lower()
            or self._parser.get_status_code() in (204, 304)
        )

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_BODY_BYTES:
            raise BadResponse(f"an answer's body over {MAX_BODY_BYTES} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._parser.get_status_code() < 200:  # 100 Continue and the like: not it
            self._reset()
            return
        self.keep_alive = self._parser.should_keep_alive()
        self._complete()

    # ours
    def send(self, data: bytes) -> asyncio.Future[HttpResponse]:
        """Write a whole request now; the future of its answer."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._reset()
        self.received = False
        self.transport.write(data)
        return self._answer

    def _reset(self) -> None:
        self._reason = ""
        self._headers = {}
        self._head_bytes = 0
        self._body = []
        self._body_bytes = 0
        self._headers_done = False
        self.keep_alive = False

    def close(self) -> None:
        """Drop the connection now (an answer still due is not waited for)."""
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()
        self._leave()

    def _leave(self) -> None:
        """Give the connection's place in its pool back, once."""
        if self.transport is not None and not self._left:
            self._left = True
            self._client._dropped(self)

    def _complete(self) -> None:
        answer = self._answer
        if answer is None or answer.done():
            return
        answer.set_result(
            HttpResponse(
                self._parser.get_status_code(), self._reason, self._headers, b"".join(self._body)
            )
        )

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()


class HttpTransport:
    """Sends HTTP/1.1 requests over kept-alive connections, one bounded pool per origin."""

    def __init__(
        self,
        *,
        timeout_s: float = 30.0,
        max_per_origin: int = 100,
        idle_s: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_per_origin = max_per_origin
        self._idle_s = idle_s
        self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()
        """Made here, not on the first https request: loading the trust store blocks."""
        self._pools: dict[_Origin, _Pool] = {}
        self._targets: dict[str, tuple[_Origin, str, bytes]] = {}

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None = None,
        *,
        repeatable: bool = False,
    ) -> HttpResponse:
        """Send one request; its answer, whatever its status.

        `repeatable`: the request may be sent a second time when a kept-alive connection
        fails before any byte of its answer (see the module's docstring).
        """
        if method == "HEAD":
            raise ValueError("HEAD is not supported: its answer's length describes no body")
        origin, target, host = self._target(url)
        head = [f"{method} {target} HTTP/1.1\r\nHost: ".encode("latin-1"), host]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"a line break in the header {name!r}")
            head.append(f"\r\n{name}: {value}".encode("latin-1"))
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"\r\nContent-Length: {len(body or b'')}".encode("latin-1"))
        head.append(b"\r\n\r\n")
        if body:
            head.append(body)
        data = b"".join(head)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        async with asyncio.timeout_at(deadline):
            connection, reused = await self._acquire(origin)
            try:
                return await self._exchange(connection, data)
            except ServerDisconnected:
                if not (reused and repeatable and not connection.received):
                    raise
            connection, _ = await self._acquire(origin, fresh=True)
            return await self._exchange(connection, data)

    def connections(self) -> int:
        """How many connections are open (idle or carrying a request)."""
        return sum(pool.open for pool in self._pools.values())

    async def close(self) -> None:
        """Close every connection; a later request opens new ones."""
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            for connection in pool.idle:
                connection.close()
            for waiter in pool.waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _target(self, url: str) -> tuple[_Origin, str, bytes]:
        known = self._targets.get(url)
        if known is not None:
            return known
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origin = _Origin(parts.scheme, parts.hostname, port)
        default = port == (443 if parts.scheme == "https" else 80)
        host = parts.hostname if default else f"{parts.hostname}:{port}"
        if ":" in parts.hostname:
            host = f"[{parts.hostname}]" if default else f"[{parts.hostname}]:{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        known = (origin, target, host.encode("idna"))
        if len(self._targets) < 4096:  # routes hold ids: bound what is remembered
            self._targets[url] = known
        return known

    async def _exchange(self, connection: _Connection, data: bytes) -> HttpResponse:
        try:
            response = await connection.send(data)
        except BaseException:
            connection.close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            connection.keep_alive = False
        self._release(connection)
        return response

    async def _acquire(self, origin: _Origin, *, fresh: bool = False) -> tuple[_Connection, bool]:
        """A connection to the origin, and whether it was kept alive from an earlier request."""
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(origin)
        while True:
            now = time.monotonic()
            while pool.idle and not fresh:
                connection = pool.idle.pop()
                if not connection.closed and now - connection.idle_since < self._idle_s:
                    return connection, True
                connection.close()
            if pool.open < self._max_per_origin:
                pool.open += 1
                try:
                    return await self._connect(origin, pool), False
                except BaseException:
                    pool.open -= 1
                    self._wake(pool)
                    raise
            if fresh and pool.idle:
                pool.idle.pop(0).close()  # makes room for the fresh one at once
                continue
            waiter = asyncio.get_running_loop().create_future()
            pool.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in pool.waiters:
                    pool.waiters.remove(waiter)
            if self._pools.get(origin) is not pool:  # closed meanwhile
                pool = self._pools.setdefault(origin, _Pool(origin))

    async def _connect(self, origin: _Origin, pool: _Pool) -> _Connection:
        loop = asyncio.get_running_loop()
        context = self._ssl if origin.scheme == "https" else None
        _, connection = await loop.create_connection(
            lambda: _Connection(self, pool),
            origin.host,
            origin.port,
            ssl=context,
            server_hostname=origin.host if context is not None else None,
        )
        return connection

    def _release(self, connection: _Connection) -> None:
        pool = connection.pool
        current = self._pools.get(pool.origin) is pool
        if not current or connection.closed or not connection.keep_alive:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        pool.idle.append(connection)
        self._wake(pool)

    def _dropped(self, connection: _Connection) -> None:
        """A connection closed (either side): its place in the pool is free."""
        pool = connection.pool
        if connection in pool.idle:
            pool.idle.remove(connection)
        pool.open -= 1
        self._wake(pool)

    @staticmethod
    def _wake(pool: _Pool) -> None:
        for waiter in pool.waiters:
            if not waiter.done():
                waiter.set_result(None)
                return
