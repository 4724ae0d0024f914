"""RefusalLog: the first refusal is reported, then at most one report per interval, with a count."""

from __future__ import annotations

from services.ingest.refusals import RefusalLog


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_refusal_then_one_report_per_interval_with_the_count() -> None:
    """The first refusal reports 1; the next ones are counted and reported once a second passed."""
    clock = _Clock()
    log = RefusalLog(every_s=1.0, clock=clock)
    assert log.refused() == 1
    assert [log.refused() for _ in range(5)] == [None] * 5
    clock.now += 0.999
    assert log.refused() is None
    clock.now += 0.001
    assert log.refused() == 7
    clock.now += 5.0
    assert log.refused() == 1
