"""settle_after_startup: what exists is frozen out of the collector's walks, young ones rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.kit.collector import YOUNG_THRESHOLD, settle_after_startup


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """The collector's thresholds and frozen objects as they were, after the test."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_objects_alive_at_startup_are_frozen_and_young_collections_rarer(
    restored_collector: None,
) -> None:
    """Everything alive is moved to the permanent generation; later cycles are still collected."""
    before = {"startup": [1, 2, 3]}
    settle_after_startup()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert not any(tracked is before for tracked in gc.get_objects())  # no longer walked

    collected: list[str] = []

    class Cycle:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            collected.append("cycle")

    Cycle()
    gc.collect()
    assert collected == ["cycle"]
