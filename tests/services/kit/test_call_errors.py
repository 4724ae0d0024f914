"""The client side's one classification of failed gRPC calls."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from services.kit.call_errors import Failure, as_domain_error, classify
from services.kit.errors import DeadlineExceeded, DependencyFailed, InvalidArgument, Unavailable


def _failed(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "told so")


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        (grpc.StatusCode.UNAVAILABLE, Failure.TRANSIENT),
        (grpc.StatusCode.CANCELLED, Failure.TRANSIENT),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Failure.TRANSIENT),
        (grpc.StatusCode.INVALID_ARGUMENT, Failure.CALLER),
        (grpc.StatusCode.NOT_FOUND, Failure.CALLER),
        (grpc.StatusCode.ALREADY_EXISTS, Failure.CALLER),
        (grpc.StatusCode.FAILED_PRECONDITION, Failure.CALLER),
        (grpc.StatusCode.OUT_OF_RANGE, Failure.CALLER),
        (grpc.StatusCode.UNAUTHENTICATED, Failure.MISCONFIGURED),
        (grpc.StatusCode.PERMISSION_DENIED, Failure.MISCONFIGURED),
        (grpc.StatusCode.UNIMPLEMENTED, Failure.MISCONFIGURED),
        (grpc.StatusCode.INTERNAL, Failure.DEPENDENCY),
        (grpc.StatusCode.UNKNOWN, Failure.DEPENDENCY),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, Failure.DEPENDENCY),
    ],
)
def test_each_code_has_one_class(code: grpc.StatusCode, failure: Failure) -> None:
    """A status code always reads as the same kind of failure."""
    assert classify(_failed(code)) is failure


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.CANCELLED, Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, DependencyFailed),
        (grpc.StatusCode.FAILED_PRECONDITION, DependencyFailed),
        (grpc.StatusCode.UNAUTHENTICATED, DependencyFailed),
        (grpc.StatusCode.INTERNAL, DependencyFailed),
    ],
)
def test_failures_become_this_services_errors(
    code: grpc.StatusCode, error_type: type[Exception]
) -> None:
    """Transient stays transient, INVALID_ARGUMENT is the caller's, the rest DependencyFailed."""
    error = as_domain_error(_failed(code), "registry", "resolve players")

    assert type(error) is error_type
    assert "registry" in error.message and "told so" in error.message
