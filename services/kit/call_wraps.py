"""What every RPC a server answers goes through: bearer-token authentication and the one place
errors become statuses, each a `Wrap` of a method's handler.

The wraps are applied once per method, when its handler is added to the server
(`services.kit.grpc_server`), not as grpc.aio server interceptors: those run for every call and
rebuild its handler each time, before the call's body is even read (bench/findings.md, Round 9).

Request bodies are decoded here too, not by grpc before the handler runs: an unauthenticated
call is refused before its body is parsed, and a body that does not decode is INVALID_ARGUMENT
(grpc itself would answer UNKNOWN and log an ERROR traceback for every such call).
"""

from __future__ import annotations

import hmac
import inspect
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.errors import DomainError, InvalidArgument
from services.kit.log_throttle import LogThrottle

logger = logging.getLogger(__name__)

# Probes and tooling must work without the token (load balancers, grpcurl, k8s probes).
PUBLIC_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ERROR_DETAILS_KEY = "error-details"
MAX_STATUS_MESSAGE_BYTES = 1024
"""The longest status message (and error details) sent: messages may echo what a client sent,
and grpc refuses trailers over 16 KiB (percent-encoding can triple a message's size)."""

Wrap = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]
"""Given a method's full name (`/package.Service/Method`) and its handler, the handler that
serves the method's calls."""
Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]
Deserializer = Callable[[bytes], Any]


def rebuild(
    handler: grpc.RpcMethodHandler,
    unary_response: Behavior,
    streaming_response: Behavior,
    request_deserializer: Deserializer | None,
) -> grpc.RpcMethodHandler:
    """A handler of the same kind and response serializer as `handler`, running the given
    behaviour on requests decoded by `request_deserializer` (None: raw bytes)."""
    codec: dict[str, Any] = {
        "request_deserializer": request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming_response, **codec)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary_response, **codec)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming_response, **codec)
    return grpc.unary_unary_rpc_method_handler(unary_response, **codec)


def behavior_of(handler: grpc.RpcMethodHandler) -> Behavior:
    behavior = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    assert behavior is not None
    return behavior


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an `authorization: Bearer <token>` entry in `metadata`, if any."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        scheme, _, token = text.partition(" ")
        if scheme.lower() == "bearer" and token:
            return token.strip()
    return None


class Auth:
    """With a token configured, every RPC but health and reflection needs `Bearer <token>`."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None
        # Whoever has no token could otherwise write a log line per call they make.
        self._refusals = LogThrottle()

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` refusing, before it runs, a call without the token (unchanged when no
        token is configured or the method is public).

        The call's body is only decoded once it has been let through: wrap the handler of
        `map_errors`, which decodes it then.
        """
        if self._token is None or method.startswith(PUBLIC_METHOD_PREFIXES):
            return handler
        behavior = behavior_of(handler)

        async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await self._guard(method, context)
            return await behavior(request, context)

        async def streaming_response(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            await self._guard(method, context)
            async for item in behavior(request, context):
                yield item

        return rebuild(handler, unary_response, streaming_response, handler.request_deserializer)

    async def _guard(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Abort the call UNAUTHENTICATED unless its metadata carries the token."""
        assert self._token is not None
        presented = bearer_token(context.invocation_metadata())
        if presented is not None and hmac.compare_digest(presented.encode(), self._token):
            return
        count = self._refusals.count()
        if count is not None:
            logger.warning(
                "refused unauthenticated call to %s (%s refused since the last such line)",
                method,
                count,
            )
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


def _fit(text: str, limit: int = MAX_STATUS_MESSAGE_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, ending in "…" when it was cut."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - len("…".encode())].decode(errors="ignore") + "…"


def _decoder(deserializer: Deserializer | None) -> Deserializer:
    """`deserializer` raising InvalidArgument for a body it cannot decode."""

    def decode(raw: bytes) -> Any:
        if deserializer is None:
            return raw
        try:
            return deserializer(raw)
        except DecodeError:
            raise InvalidArgument("the request body is not a valid message") from None

    return decode


async def _abort_for(error: Exception, method: str, context: grpc.aio.ServicerContext) -> None:
    """Turn `error` raised by the handler of `method` into the call's final status."""
    if isinstance(error, DomainError):
        message = _fit(error.message)
        logger.info("%s failed: %s %s", method, error.status.name, message)
        details = json.dumps(error.details, default=str) if error.details else ""
        # Details too long to fit are left out rather than cut into invalid JSON.
        trailing: tuple[tuple[str, str], ...] = ()
        if details and len(details) <= MAX_STATUS_MESSAGE_BYTES:
            trailing = ((ERROR_DETAILS_KEY, details),)
        await context.abort(error.status, message, trailing)
    elif isinstance(error, DATABASE_UNAVAILABLE):
        logger.warning("%s failed: database unavailable: %r", method, error)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable, retry later")
    else:
        logger.error("unexpected error in %s", method, exc_info=error)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def map_errors(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """`handler` with its request decoded here and its errors mapped (a `Wrap`); always async.

    Maps DomainError to its status code and anything unexpected to INTERNAL, logged once.

    Aborts made by the handler itself (`context.abort`) pass through untouched. Requests are
    decoded here (an undecodable one is INVALID_ARGUMENT): a unary request in the behaviour,
    each message of a request stream as the handler reads it.
    """
    behavior = behavior_of(handler)
    decode = _decoder(handler.request_deserializer)
    # A unary request arrives as bytes and is decoded in the behaviour, where a failure is
    # mapped like any other; a stream's messages are decoded as the handler reads them.
    unary_request = not handler.request_streaming

    def request_of(body: Any) -> Any:
        return decode(body) if unary_request else body

    async def unary_response(body: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            result = behavior(request_of(body), context)
            return await result if inspect.isawaitable(result) else result
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort_for(error, method, context)

    async def streaming_response(
        body: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        try:
            result = behavior(request_of(body), context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            elif inspect.isawaitable(result):
                await result  # the handler writes with context.write()
            else:
                for item in result:
                    yield item
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort_for(error, method, context)

    return rebuild(handler, unary_response, streaming_response, None if unary_request else decode)
