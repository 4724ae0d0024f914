"""Injected Data API faults (latency, the next N answers of 429/503) and the request log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

DATA_ROUTES = ("players", "search_players", "player", "match", "hub_matches")


class _Countdown(Protocol):
    remaining: int


_Rule = TypeVar("_Rule", bound=_Countdown)


def take_first(rules: list[_Rule], hits: Callable[[_Rule], bool]) -> _Rule | None:
    """The first queued rule that `hits` this request, counted down (gone at 0), or None."""
    for rule in rules:
        if hits(rule):
            rule.remaining -= 1
            if rule.remaining == 0:
                rules.remove(rule)
            return rule
    return None


@dataclass
class FailureRule:
    """The next `remaining` requests (of `route`, or of any route) get `status`."""

    status: int
    remaining: int
    route: str | None = None
    retry_after: int | None = None


@dataclass
class LoggedRequest:
    """One Data API request and how it was answered."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    status: int
    duration_ms: float
    at: float


class ApiFaults:
    """What goes wrong with the Data API right now; changed at runtime by the control API."""

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self._initial_latency_s = latency_s
        self._rules: list[FailureRule] = []

    def add_failure(
        self, status: int, count: int, *, route: str | None = None, retry_after: int | None = None
    ) -> FailureRule:
        """Queue a rule: the next `count` matching requests get `status`."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be 4xx or 5xx, got {status}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if route is not None and route not in DATA_ROUTES:
            raise ValueError(f"route must be one of {', '.join(DATA_ROUTES)}")
        rule = FailureRule(status=status, remaining=count, route=route, retry_after=retry_after)
        self._rules.append(rule)
        return rule

    def take_failure(self, route: str) -> FailureRule | None:
        """The rule that fails this request, counting it down, or None."""
        return take_first(self._rules, lambda rule: rule.route in (None, route))

    def reset(self) -> None:
        """The latency given at start and no queued failures."""
        self.latency_s = self._initial_latency_s
        self._rules.clear()

    def snapshot(self) -> dict[str, Any]:
        """The current faults as JSON."""
        return {
            "latency_ms": round(self.latency_s * 1000),
            "failures": [asdict(rule) for rule in self._rules],
        }


class RequestLog:
    """Every Data API request, so tests can count calls by route and status."""

    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []

    def record(self, entry: LoggedRequest) -> None:
        """Append one answered request."""
        self._entries.append(entry)

    def entries(self, route: str | None = None) -> list[LoggedRequest]:
        """The requests, oldest first, optionally of one route."""
        return [e for e in self._entries if route is None or e.route == route]

    def counts(self) -> dict[str, dict[str, int]]:
        """`{route: {status: count}}` over the whole log."""
        tally = Counter((e.route, e.status) for e in self._entries)
        result: dict[str, dict[str, int]] = {}
        for (route, status), count in sorted(tally.items()):
            result.setdefault(route, {})[str(status)] = count
        return result

    def clear(self) -> None:
        """Forget every request."""
        self._entries.clear()
