"""The benchmarks in the order they run, with their full and quick sizes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench import burst, end_to_end, failover, memory, registry, webhook_ack
from bench.harness import Where


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name, and how to run it full or quick."""

    name: str
    full: Callable[[Where], Awaitable[dict[str, Any]]]
    quick: Callable[[Where], Awaitable[dict[str, Any]]]


SUITE = (
    Benchmark(
        "webhook_ack",
        lambda where: webhook_ack.run(where, webhook_ack.AckSizes()),
        lambda where: webhook_ack.run(where, webhook_ack.QUICK),
    ),
    Benchmark(
        "end_to_end",
        lambda where: end_to_end.run(where, end_to_end.EndToEndSizes()),
        lambda where: end_to_end.run(where, end_to_end.QUICK),
    ),
    Benchmark(
        "burst",
        lambda where: burst.run(where, burst.BurstSizes()),
        lambda where: burst.run(where, burst.QUICK),
    ),
    Benchmark(
        "registry",
        lambda where: registry.run(where, registry.RegistrySizes()),
        lambda where: registry.run(where, registry.QUICK),
    ),
    Benchmark(
        "failover",
        lambda where: failover.run(where, failover.FailoverSizes()),
        lambda where: failover.run(where, failover.QUICK),
    ),
    Benchmark(
        "memory",
        lambda where: memory.run(where, memory.MemorySizes()),
        lambda where: memory.run(where, memory.QUICK),
    ),
)
