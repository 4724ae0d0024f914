"""ingest's uvicorn: deadlines on reading a request, and a bound on open connections.

uvicorn bounds neither: a client may take forever to send its headers (its keep-alive timer
only runs between requests) or its body, and every such client holds a file descriptor and a
buffer. Each connection here must send its complete headers within the header timeout (from
connecting, or from its previous response) and then its body within the body timeout, or it is
dropped; past the connection bound, a new connection is closed as soon as it is accepted.

The parser is pinned to h11 (what uvicorn picks when httptools is not installed, as here), so
that installing httptools never silently takes these bounds away.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.ingest.settings import IngestSettings
from services.kit.log_throttle import LogThrottle

logger = logging.getLogger(__name__)


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


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and the bound of `limits` (see the module).

    h11 says what the connection waits for: the client's state is IDLE until a request's
    headers are in, SEND_BODY until its body is; a deadline is armed on entering either.
    """

    limits: ClassVar[HttpLimits]
    refused: ClassVar[LogThrottle]
    expired: ClassVar[LogThrottle]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting: object = None  # the h11 client state the deadline is for
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection, or close it at once when the bound is reached."""
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            transport.abort()
            count = self.refused.count()
            if count is not None:
                logger.warning(
                    "refused connections: %s open, INGEST_HTTP_MAX_CONNECTIONS "
                    "(%s refused since the last such line)",
                    len(self.connections),
                    count,
                )
            return
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        """Parse what arrived, then re-arm the deadline if the request moved on."""
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        """The response is out: the next request's headers are now awaited."""
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _watch(self) -> None:
        state = self.conn.their_state
        if state is self._awaiting:
            return
        self._disarm()
        self._awaiting = state
        if state is h11.IDLE:
            timeout = self.limits.header_timeout_s
        elif state is h11.SEND_BODY:
            timeout = self.limits.body_timeout_s
        else:  # the request is in (the app runs), or the connection is closing
            return
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(timeout, self._expire, state)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, state: object) -> None:
        self._deadline = None
        # abort, not close: close would wait to flush a write buffer the client may never read.
        self.transport.abort()
        count = self.expired.count()
        if count is not None:
            part = "headers" if state is h11.IDLE else "body"
            logger.warning(
                "dropped a connection that did not send a request's %s in time "
                "(%s dropped since the last such line)",
                part,
                count,
            )


def guarded_protocol(limits: HttpLimits) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol class for one server: its limits, and log throttles of its own."""
    attributes = {"limits": limits, "refused": LogThrottle(), "expired": LogThrottle()}
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attributes)


def server_config(app: Any, settings: IngestSettings) -> uvicorn.Config:
    """The uvicorn configuration ingest serves its app with."""
    return uvicorn.Config(
        app,
        host=settings.ingest_http_host,
        port=settings.ingest_http_port,
        http=guarded_protocol(HttpLimits.of(settings)),
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
