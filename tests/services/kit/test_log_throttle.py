"""LogThrottle: the first occurrence is reported, then one report per interval, with a count."""

from __future__ import annotations

from services.kit.log_throttle import LogThrottle


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_occurrence_then_one_report_per_interval_with_the_count() -> None:
    """The first occurrence reports 1; the next are counted and reported once a second passed."""
    clock = _Clock()
    log = LogThrottle(every_s=1.0, clock=clock)
    assert log.count() == 1
    assert [log.count() for _ in range(5)] == [None] * 5
    clock.now += 0.999
    assert log.count() is None
    clock.now += 0.001
    assert log.count() == 7
    clock.now += 5.0
    assert log.count() == 1
