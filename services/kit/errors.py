"""Domain errors that servicers raise and the gRPC boundary maps to status codes once."""

from __future__ import annotations

from collections.abc import Mapping

import grpc


class DomainError(Exception):
    """A failure the caller can act on; `status` is the gRPC code it maps to."""

    status: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, details: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: Mapping[str, object] = dict(details or {})


class InvalidArgument(DomainError):
    """The request itself is wrong (missing or malformed field)."""

    status = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    """The thing asked for does not exist."""

    status = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    """The thing to create exists already."""

    status = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    """The system is not in a state where the request can be carried out."""

    status = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    """The caller may not do this."""

    status = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(DomainError):
    """A dependency is down for now; retrying later may succeed."""

    status = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(DomainError):
    """A dependency did not answer in time."""

    status = grpc.StatusCode.DEADLINE_EXCEEDED


class DependencyFailed(DomainError):
    """A service this one calls failed in a way that retrying will not fix; the message says
    which and how. INTERNAL, so that the caller does not retry it as if it were transient."""

    status = grpc.StatusCode.INTERNAL
