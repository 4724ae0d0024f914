"""The client side's one reading of a failed gRPC call: what the failure says to do next.

Every service that calls another classifies the AioRpcError here, then decides (retry, tell
the user, fail for good) from the class alone.
"""

from __future__ import annotations

import enum

import grpc
import grpc.aio

from services.kit.errors import (
    DeadlineExceeded,
    DependencyFailed,
    DomainError,
    InvalidArgument,
    Unavailable,
)


class Failure(enum.Enum):
    """What a failed call says about the next one."""

    TRANSIENT = "transient"
    """The callee is unreachable, stopping (CANCELLED) or slow: the same call may succeed later."""
    CALLER = "caller"
    """The callee refused what was asked (bad argument, no such thing, wrong state): repeating
    the same call gets the same answer."""
    MISCONFIGURED = "misconfigured"
    """The callee will not talk to this service at all (credentials, a method it does not
    have): no retry fixes it, only a deployment does."""
    DEPENDENCY = "dependency"
    """The callee failed (INTERNAL, UNKNOWN, ...): not this caller's fault, not known to pass."""


_BY_CODE = {
    grpc.StatusCode.UNAVAILABLE: Failure.TRANSIENT,
    grpc.StatusCode.CANCELLED: Failure.TRANSIENT,
    grpc.StatusCode.DEADLINE_EXCEEDED: Failure.TRANSIENT,
    grpc.StatusCode.INVALID_ARGUMENT: Failure.CALLER,
    grpc.StatusCode.NOT_FOUND: Failure.CALLER,
    grpc.StatusCode.ALREADY_EXISTS: Failure.CALLER,
    grpc.StatusCode.FAILED_PRECONDITION: Failure.CALLER,
    grpc.StatusCode.OUT_OF_RANGE: Failure.CALLER,
    grpc.StatusCode.UNAUTHENTICATED: Failure.MISCONFIGURED,
    grpc.StatusCode.PERMISSION_DENIED: Failure.MISCONFIGURED,
    grpc.StatusCode.UNIMPLEMENTED: Failure.MISCONFIGURED,
}


def classify(error: grpc.aio.AioRpcError) -> Failure:
    """The class of a failed call."""
    return _BY_CODE.get(error.code(), Failure.DEPENDENCY)


def describe(error: grpc.aio.AioRpcError) -> str:
    """`CODE details`, for logs and stored reasons."""
    return f"{error.code().name} {error.details()}"


def as_domain_error(error: grpc.aio.AioRpcError, callee: str, action: str) -> DomainError:
    """A failed call as this service's own error, for its own caller.

    Transient stays transient (UNAVAILABLE or DEADLINE_EXCEEDED). INVALID_ARGUMENT passes on
    as the caller's: what was invalid came from them. Anything else, other refusals included
    (the callee's state is not the caller's doing), is DependencyFailed, which no caller may
    retry forever.
    """
    failure = classify(error)
    if failure is Failure.TRANSIENT:
        deadline = error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        kind = DeadlineExceeded if deadline else Unavailable
        return kind(f"{callee} could not {action}: {describe(error)}")
    if error.code() is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(f"{callee} refused to {action}: {error.details()}")
    return DependencyFailed(f"{callee} could not {action}: {describe(error)}")
