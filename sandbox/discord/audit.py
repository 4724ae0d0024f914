"""The record of every REST call: method, route template, status and audit-log reason."""

from __future__ import annotations

import bisect
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
    """When its answer was ready (at the end of any injected latency), on the same clock."""


@dataclass(frozen=True)
class Arrival:
    """A REST call received and not answered yet."""

    method: str
    route: str
    path: str
    received_at: float


class AuditLog:
    """Append-only list of REST calls, filterable for tests, and the calls still being answered."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._seq = 0
        self._arrivals: dict[int, Arrival] = {}
        self._arrived = 0

    def arrive(self, method: str, route: str, path: str, received_at: float) -> tuple[int, int]:
        """Note a call being answered from now on: its ticket for `record`, and how many calls
        of its method and route are being answered, itself included."""
        self._arrived += 1
        arrival = Arrival(method, route, path, received_at)
        self._arrivals[self._arrived] = arrival
        alike = sum(1 for a in self._arrivals.values() if (a.method, a.route) == (method, route))
        return self._arrived, alike

    def in_flight(
        self, *, method: str | None = None, route: str | None = None
    ) -> list[dict[str, Any]]:
        """Calls matching the filters that are still being answered, oldest first, as JSON."""
        return [
            asdict(a)
            for a in self._arrivals.values()
            if (method is None or a.method == method) and (route is None or a.route == route)
        ]

    def forget(self, ticket: int) -> None:
        """The call of `ticket` ended without an answer (its client went away)."""
        self._arrivals.pop(ticket, None)

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
        ticket: int | None = None,
    ) -> None:
        """Add one call, answered now (no longer in flight, when it had a ticket)."""
        if ticket is not None:
            del self._arrivals[ticket]
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
        # Entries are in seq order: a poll for the latest calls skips the others unread.
        first = bisect.bisect_right(self._entries, after, key=lambda e: e.seq)
        return [
            asdict(e)
            for e in self._entries[first:]
            if (method is None or e.method == method) and (route is None or e.route == route)
        ]

    def clear(self) -> None:
        """Forget every call."""
        self._entries.clear()
