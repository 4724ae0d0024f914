"""The record of every REST call: method, route template, status and audit-log reason."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class AuditEntry:
    """One REST call as the sandbox answered it."""

    seq: int
    method: str
    route: str
    path: str
    status: int
    reason: str | None
    code: int | None
    in_flight: int
    """Calls of the same method and route being answered when this one arrived, itself included."""
    received_at: float
    """When the call arrived: `time.monotonic()`, a clock every process of the machine shares."""
    answered_at: float
    """When its answer was ready (after any injected latency), on the same clock."""


class AuditLog:
    """Append-only list of REST calls, filterable for tests."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._seq = 0

    def record(
        self,
        *,
        method: str,
        route: str,
        path: str,
        status: int,
        reason: str | None,
        code: int | None,
        in_flight: int = 1,
        received_at: float,
    ) -> None:
        """Add one call, answered now."""
        self._seq += 1
        self._entries.append(
            AuditEntry(
                self._seq,
                method,
                route,
                path,
                status,
                reason,
                code,
                in_flight,
                received_at,
                time.monotonic(),
            )
        )

    def query(
        self, *, method: str | None = None, route: str | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        """Calls matching the filters, oldest first, as JSON."""
        return [
            asdict(e)
            for e in self._entries
            if e.seq > after
            and (method is None or e.method == method)
            and (route is None or e.route == route)
        ]

    def clear(self) -> None:
        """Forget every call."""
        self._entries.clear()
