"""Injected FACEIT Connect faults: what goes wrong with the token and userinfo endpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sandbox.faceit.faults import take_first
from sandbox.faceit.model import SandboxError

FAULT_ENDPOINTS = ("token", "userinfo")
FAULT_KINDS = ("status", "delay", "garbage", "empty", "no_guid")


@dataclass
class ConnectFault:
    """The next `remaining` requests to `endpoint` go wrong in the way `kind` says."""

    endpoint: str
    kind: str
    remaining: int
    status: int = 503
    delay_ms: float = 0.0


class ConnectFaults:
    """Queued faults of the token and userinfo endpoints, consumed in the order added.

    Kept apart from the Data API's `ApiFaults`, whose rules only know statuses and whose
    latency is global: a consumer of FACEIT Connect also has to survive one slow endpoint and
    answers that are not what it expects.
    """

    def __init__(self) -> None:
        self._faults: list[ConnectFault] = []

    def add(
        self, endpoint: str, kind: str, count: int = 1, *, status: int = 503, delay_ms: float = 0
    ) -> ConnectFault:
        """Queue a fault for the next `count` requests to `endpoint`."""
        if endpoint not in FAULT_ENDPOINTS:
            raise SandboxError(f"endpoint must be one of {', '.join(FAULT_ENDPOINTS)}")
        if kind not in FAULT_KINDS:
            raise SandboxError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if kind == "no_guid" and endpoint != "userinfo":
            raise SandboxError("no_guid is a userinfo fault")
        if count < 1:
            raise SandboxError("count must be at least 1")
        if not 400 <= status <= 599:
            raise SandboxError(f"status must be 4xx or 5xx, got {status}")
        if delay_ms < 0:
            raise SandboxError("delay_ms must be >= 0")
        fault = ConnectFault(endpoint, kind, count, status=status, delay_ms=delay_ms)
        self._faults.append(fault)
        return fault

    def take(self, endpoint: str) -> ConnectFault | None:
        """The fault that hits this request to `endpoint`, counting it down, or None."""
        return take_first(self._faults, lambda fault: fault.endpoint == endpoint)

    def reset(self) -> None:
        """No queued faults."""
        self._faults.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        """The queued faults as JSON."""
        return [asdict(fault) for fault in self._faults]
