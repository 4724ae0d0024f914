"""One count of Discord's global limit for voice's two HTTP paths."""

from __future__ import annotations

import pytest

from services.voice.global_limit import GLOBAL_LIMIT, GLOBAL_SPAN_S, PYCORD_SHARE, GlobalLimit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_full_limit_waits_for_the_oldest_request_to_leave_the_span() -> None:
    """Fifty requests in the span: the next waits until the oldest is a span old."""
    limit = GlobalLimit()
    for index in range(GLOBAL_LIMIT):
        limit.record(100.0 + index * 0.001)
    assert limit.wait_s(100.05) == pytest.approx(100.0 + GLOBAL_SPAN_S - 100.05)
    assert limit.wait_s(100.0 + GLOBAL_SPAN_S + 0.0001) == 0.0


def test_pycords_share_leaves_room_for_creates_and_moves() -> None:
    """Once py-cord's share is used, py-cord waits while creates and moves may still go."""
    limit = GlobalLimit()
    for _ in range(PYCORD_SHARE):
        limit.record(100.0)
    assert limit.wait_s(100.01, PYCORD_SHARE) > 0
    assert limit.wait_s(100.01) == 0.0


async def test_take_counts_what_py_cord_sends_for_the_other_path() -> None:
    """Requests taken on py-cord's path count against the limit voice's own client sees."""
    clock = Clock()
    limit = GlobalLimit(clock)
    for _ in range(PYCORD_SHARE):
        await limit.take()
    for _ in range(GLOBAL_LIMIT - PYCORD_SHARE):
        assert limit.wait_s(clock.now) == 0.0
        limit.record(clock.now)
    assert limit.wait_s(clock.now) == pytest.approx(GLOBAL_SPAN_S)
