"""Fault injection for REST calls: added latency and the next N calls of a route failing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Latency:
    """Delay matching calls by `seconds` (method/route None means any)."""

    seconds: float
    method: str | None = None
    route: str | None = None


@dataclass
class ErrorFault:
    """Answer the next `count` matching calls with `status` (429 or a 5xx)."""

    status: int
    count: int
    method: str | None = None
    route: str | None = None
    retry_after: float = 0.05
    is_global: bool = False
    cloudflare: bool = False
    """A 429 from Cloudflare's edge: an HTML page, no JSON body, no `Via` header."""


def _matches(rule_method: str | None, rule_route: str | None, method: str, route: str) -> bool:
    return (rule_method is None or rule_method == method) and (
        rule_route is None or rule_route == route
    )


class FaultInjector:
    """Holds the active faults and consumes them as matching calls arrive."""

    def __init__(self) -> None:
        self.latencies: list[Latency] = []
        self.errors: list[ErrorFault] = []

    def clear(self) -> None:
        """Remove every fault."""
        self.latencies.clear()
        self.errors.clear()

    def delay_for(self, method: str, route: str) -> float:
        """Total added latency for a call."""
        return sum(
            rule.seconds
            for rule in self.latencies
            if _matches(rule.method, rule.route, method, route)
        )

    def take_error(self, method: str, route: str) -> ErrorFault | None:
        """The error fault this call gets, if any (consumes one of its count)."""
        for rule in self.errors:
            if rule.count > 0 and _matches(rule.method, rule.route, method, route):
                rule.count -= 1
                if rule.count == 0:
                    self.errors.remove(rule)
                return rule
        return None

    def describe(self) -> dict[str, Any]:
        """The active faults as JSON."""
        return {
            "latency": [vars(rule) for rule in self.latencies],
            "errors": [{**vars(rule), "global": rule.is_global} for rule in self.errors],
        }
