"""Unit tests of injected Data API faults and the request log."""

from __future__ import annotations

import pytest

from sandbox.faceit.faults import ApiFaults, LoggedRequest, RequestLog


def test_failure_rule_counts_down_then_stops() -> None:
    """A rule for N requests fails exactly N requests."""
    faults = ApiFaults()
    faults.add_failure(429, 2)
    taken = [faults.take_failure("player") for _ in range(3)]
    assert [rule.status if rule else None for rule in taken] == [429, 429, None]


def test_failure_rule_for_one_route_leaves_others_alone() -> None:
    """A route-scoped rule only fails requests of that route."""
    faults = ApiFaults()
    faults.add_failure(503, 1, route="match")
    assert faults.take_failure("player") is None
    rule = faults.take_failure("match")
    assert rule is not None and rule.status == 503
    assert faults.take_failure("match") is None


def test_bad_failure_rules_are_refused() -> None:
    """Statuses outside 4xx/5xx, zero counts and unknown routes are refused."""
    faults = ApiFaults()
    with pytest.raises(ValueError):
        faults.add_failure(200, 1)
    with pytest.raises(ValueError):
        faults.add_failure(429, 0)
    with pytest.raises(ValueError):
        faults.add_failure(429, 1, route="nope")


def test_request_log_counts_by_route_and_status() -> None:
    """Counts group requests by route, then by status."""
    log = RequestLog()
    for route, status in (("player", 200), ("player", 429), ("player", 200), ("match", 404)):
        log.record(LoggedRequest("GET", "/x", route, {}, status, 1.0, 0.0))
    assert log.counts() == {"match": {"404": 1}, "player": {"200": 2, "429": 1}}
    assert len(log.entries("player")) == 3
    log.clear()
    assert log.entries() == []
