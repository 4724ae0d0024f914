"""The webhook ack benchmark's saturation result."""

from __future__ import annotations

from typing import Any

from bench.webhook_ack import median_round


def _round(ratio: float) -> dict[str, Any]:
    return {"load": "saturation (64 clients)", "throughput_ratio": ratio}


def test_the_saturation_step_is_the_round_with_the_median_ratio() -> None:
    """Of three rounds the middle ratio decides, whichever round it came in, and every
    round's ratio is kept in order."""
    step = median_round([_round(0.81), _round(0.55), _round(0.74)])
    assert step["throughput_ratio"] == 0.74
    assert step["round_ratios"] == [0.81, 0.55, 0.74]


def test_of_an_even_count_of_rounds_the_lower_middle_decides() -> None:
    """With two rounds the lower ratio decides: a lucky round cannot pass the target alone."""
    assert median_round([_round(0.9), _round(0.6)])["throughput_ratio"] == 0.6
