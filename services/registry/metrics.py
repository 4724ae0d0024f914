"""Prometheus metrics of one registry process, in a registry of its own (never the global one)."""

from __future__ import annotations

import re

from prometheus_client import Counter

from services.kit.metrics import GrpcCallMetrics, service_registry

LINK_FAILURE_REASONS = (
    "unknown_link",
    "expired_link",
    "not_from_link_page",
    "bad_callback",
    "other_browser",
    "consent_denied",
    "code_refused",
    "account_held",
    "faceit_down",
    "faceit_broken",
)
"""The link flow's failures (its LinkFlowError subclasses, in snake case)."""


def failure_reason(error: Exception) -> str:
    """`FaceitDown()` -> "faceit_down": the reason label of a link flow failure."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


class RegistryMetrics:
    """Verified links started, made and failed (by reason), FACEIT API calls, gRPC calls."""

    def __init__(self) -> None:
        self.registry = service_registry()
        self.links_started = Counter(
            "registry_links_started",
            "Link flows started (StartLink answered with a link page).",
            registry=self.registry,
        )
        self.links_verified = Counter(
            "registry_links_verified",
            "Link flows finished with a verified link.",
            registry=self.registry,
        )
        self.link_failures = Counter(
            "registry_link_failures",
            "Link flow steps refused, by reason (expired_link, faceit_down, account_held...).",
            ["reason"],
            registry=self.registry,
        )
        self.faceit_api_calls = Counter(
            "registry_faceit_api_calls",
            "FACEIT Data API requests by endpoint and status (timeout, connection_error).",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.grpc = GrpcCallMetrics("registry", self.registry)
        for reason in LINK_FAILURE_REASONS:
            self.link_failures.labels(reason=reason)

    def count_faceit_call(self, endpoint: str, outcome: str) -> None:
        """The FaceitApiClient call hook: one request to `endpoint` ended with `outcome`."""
        self.faceit_api_calls.labels(endpoint=endpoint, status=outcome).inc()

    def link_failed(self, error: Exception) -> None:
        """A step of the link flow refused with `error` (a LinkFlowError)."""
        self.link_failures.labels(reason=failure_reason(error)).inc()
