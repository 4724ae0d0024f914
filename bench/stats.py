"""Small statistics over latency samples (nearest-rank percentiles, in milliseconds)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (`fraction` in 0..1); nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of samples given in seconds, in milliseconds (rounded to 0.01)."""
    if not seconds:
        return {"p50_ms": math.nan, "p90_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    return {
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 2),
        "p90_ms": round(percentile(seconds, 0.90) * 1000, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
        "mean_ms": round(sum(seconds) / len(seconds) * 1000, 2),
    }


def ratio(value: float, reference: float) -> float:
    """value / reference rounded to 3 places; nan when the reference is 0 or missing."""
    if not reference or math.isnan(reference) or math.isnan(value):
        return math.nan
    return round(value / reference, 3)
