"""Server interceptors: bearer-token authentication and the one place errors become statuses."""

from __future__ import annotations

import hmac
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.errors import DomainError

logger = logging.getLogger(__name__)

# Probes and tooling must work without the token (load balancers, grpcurl, k8s probes).
PUBLIC_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ERROR_DETAILS_KEY = "error-details"

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]
Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]


def _rebuild(
    handler: grpc.RpcMethodHandler,
    unary_response: Behavior,
    streaming_response: Behavior,
) -> grpc.RpcMethodHandler:
    """A handler of the same kind and (de)serializers as `handler`, running the given behaviour."""
    codec: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming_response, **codec)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary_response, **codec)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming_response, **codec)
    return grpc.unary_unary_rpc_method_handler(unary_response, **codec)


def _behavior(handler: grpc.RpcMethodHandler) -> Behavior:
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


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """With a token configured, every RPC but health and reflection needs `Bearer <token>`."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def allows(self, method: str, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        """Whether a call to `method` carrying `metadata` may proceed."""
        if self._token is None or method.startswith(PUBLIC_METHOD_PREFIXES):
            return True
        presented = bearer_token(metadata)
        return presented is not None and hmac.compare_digest(presented.encode(), self._token)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        metadata = handler_call_details.invocation_metadata
        if handler is None or self.allows(method, metadata):
            return handler
        logger.warning("refused unauthenticated call to %s", method)

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

        return _rebuild(handler, refuse, refuse)


async def _abort_for(error: Exception, method: str, context: grpc.aio.ServicerContext) -> None:
    """Turn `error` raised by the handler of `method` into the call's final status."""
    if isinstance(error, DomainError):
        logger.info("%s failed: %s %s", method, error.status.name, error.message)
        trailing: tuple[tuple[str, str], ...] = ()
        if error.details:
            trailing = ((ERROR_DETAILS_KEY, json.dumps(error.details, default=str)),)
        await context.abort(error.status, error.message, trailing)
    elif isinstance(error, DATABASE_UNAVAILABLE):
        logger.warning("%s failed: database unavailable: %r", method, error)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable, retry later")
    else:
        logger.error("unexpected error in %s", method, exc_info=error)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Maps DomainError to its status code and anything unexpected to INTERNAL, logged once.

    Aborts made by the handler itself (`context.abort`) pass through untouched.
    """

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        behavior = _behavior(handler)
        method = handler_call_details.method

        async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                result = behavior(request, context)
                return await result if inspect.isawaitable(result) else result
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await _abort_for(error, method, context)

        async def streaming_response(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            try:
                result = behavior(request, context)
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

        return _rebuild(handler, unary_response, streaming_response)
