"""ingest's uvicorn: deadlines on reading a request, a bound on its head, and on connections.

uvicorn bounds none of these: a client may take forever to send its headers (its keep-alive
timer only runs between requests) or its body, and every such client holds a file descriptor and
a buffer; and its httptools parser keeps whatever a request's head grows to. Each connection
here must send its complete headers within the header timeout (from connecting, or from its
previous response) and then its body within the body timeout, or it is dropped; a head over
MAX_HEAD_BYTES is answered 431 and the connection closed; past the connection bound, a new
connection is closed as soon as it is accepted.

The parser is httptools (uvicorn's fast one, about twice h11's speed here: bench/findings.md),
named explicitly so that the bounds above always sit on the parser that is in use.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.ingest.settings import IngestSettings
from services.ingest.webhook import WebhookFirst
from services.kit.event_loop import UVICORN_LOOP
from services.kit.log_throttle import LogThrottle

logger = logging.getLogger(__name__)

# The most a request line and headers may take together: more than any FACEIT delivery (and
# more than the 100 KB header the attack tests send to the secret check), a bound on what one
# connection can make the parser hold.
MAX_HEAD_BYTES = 128 * 1024
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 26\r\nconnection: close\r\n\r\n"
    b"request head over 128 KiB."
)


@dataclass(frozen=True)
class HttpLimits:
    """How long a client may take to send a request's headers and body; how many may connect."""

    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def of(cls, settings: IngestSettings) -> HttpLimits:
        """The limits the settings ask for."""
        return cls(
            header_timeout_s=settings.ingest_http_header_timeout_s,
            body_timeout_s=settings.ingest_http_body_timeout_s,
            max_connections=settings.ingest_http_max_connections,
        )


class Awaiting(enum.Enum):
    """What a connection waits for from its client; a deadline is armed on entering each."""

    HEADERS = "headers"
    BODY = "body"
    NOTHING = "nothing"  # the request is in and the app runs (or its response goes out)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and bounds of `limits` (see the module).

    The parser's callbacks say what the client is sending: a request's head until its headers
    are complete, then its body until the message is; once a request is in, nothing is awaited
    until its response (and any pipelined one) is out.
    """

    limits: ClassVar[HttpLimits]
    refused: ClassVar[LogThrottle]
    expired: ClassVar[LogThrottle]
    oversized: ClassVar[LogThrottle]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_body = False  # between a request's headers complete and its message complete
        self._head_bytes = 0  # bytes received since the current head began
        self._awaiting: Awaiting | None = None  # what the deadline is for
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection, or close it at once when the bound is reached."""
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            transport.abort()
            _warn(
                self.refused,
                "refused connections: %s open, INGEST_HTTP_MAX_CONNECTIONS "
                "(%s refused since the last such line)",
                len(self.connections),
            )
            return
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        """Parse what arrived, refuse a head grown too large, re-arm the deadline if needed."""
        if self.transport.is_closing():
            return  # refused or answered for good: what else it sends is not read
        if not self._in_body:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_bytes > MAX_HEAD_BYTES and not self._in_body:
            self._refuse_head()
            return
        self._watch()

    def on_headers_complete(self) -> None:
        """The head is in: its body is awaited next."""
        self._in_body = True
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The whole request is in: the next head starts from nothing."""
        self._in_body = False
        self._head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """The response is out: the next request's headers are now awaited."""
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _now_awaiting(self) -> Awaiting:
        if self._in_body:
            return Awaiting.BODY
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            return Awaiting.NOTHING
        return Awaiting.HEADERS

    def _watch(self) -> None:
        awaiting = self._now_awaiting()
        if awaiting is self._awaiting:
            return
        self._disarm()
        self._awaiting = awaiting
        if awaiting is Awaiting.NOTHING or self.transport.is_closing():
            return
        timeout = (
            self.limits.header_timeout_s
            if awaiting is Awaiting.HEADERS
            else self.limits.body_timeout_s
        )
        self._deadline = self.loop.call_later(timeout, self._expire, awaiting)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse_head(self) -> None:
        self._disarm()
        self.transport.write(_TOO_LARGE)
        self.transport.close()
        _warn(
            self.oversized,
            "refused a request head over %s bytes (%s refused since the last such line)",
            MAX_HEAD_BYTES,
        )

    def _expire(self, awaiting: Awaiting) -> None:
        self._deadline = None
        # abort, not close: close would wait to flush a write buffer the client may never read.
        self.transport.abort()
        _warn(
            self.expired,
            "dropped a connection that did not send a request's %s in time "
            "(%s dropped since the last such line)",
            awaiting.value,
        )


def _warn(throttle: LogThrottle, message: str, what: object) -> None:
    """Log `message` (with `what` and the count) if `throttle` says a line is due now."""
    count = throttle.count()
    if count is not None:
        logger.warning(message, what, count)


def guarded_protocol(limits: HttpLimits) -> type[GuardedProtocol]:
    """A GuardedProtocol class for one server: its limits, and log throttles of its own."""
    attributes = {
        "limits": limits,
        "refused": LogThrottle(),
        "expired": LogThrottle(),
        "oversized": LogThrottle(),
    }
    return type("GuardedProtocol", (GuardedProtocol,), attributes)


def server_config(app: FastAPI, settings: IngestSettings) -> uvicorn.Config:
    """The uvicorn configuration ingest serves its app with (its webhook ahead of FastAPI)."""
    return uvicorn.Config(
        WebhookFirst(app),
        host=settings.ingest_http_host,
        port=settings.ingest_http_port,
        http=guarded_protocol(HttpLimits.of(settings)),
        loop=UVICORN_LOOP,
        log_config=None,
        lifespan="on",
        access_log=False,
    )


class IngestServer(uvicorn.Server):
    """uvicorn, but SIGTERM is a normal stop: exit 0 after the graceful shutdown.

    Plain uvicorn re-raises the signal once shut down, so the process dies of SIGTERM (-15).
    The first signal stops gracefully; a second one skips waiting for open connections.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
