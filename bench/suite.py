"""The benchmarks in the order they run, with their full and quick sizes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench import (
    burst,
    end_to_end,
    failover,
    link_callback,
    memory,
    poll_coverage,
    registry,
    report,
    restart,
    simultaneous,
    webhook_ack,
)
from bench.harness import Where
from bench.report import Section


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name, how to run it full or quick, and its section of the document.

    A new benchmark is a module with its sizes, `run` and section, and one entry here.
    """

    name: str
    full: Callable[[Where], Awaitable[dict[str, Any]]]
    quick: Callable[[Where], Awaitable[dict[str, Any]]]
    section: Section


SUITE = (
    Benchmark(
        "webhook_ack",
        lambda where: webhook_ack.run(where, webhook_ack.AckSizes()),
        lambda where: webhook_ack.run(where, webhook_ack.QUICK),
        report.webhook_ack_section,
    ),
    Benchmark(
        "end_to_end",
        lambda where: end_to_end.run(where, end_to_end.EndToEndSizes()),
        lambda where: end_to_end.run(where, end_to_end.QUICK),
        report.end_to_end_section,
    ),
    Benchmark(
        "link_callback",
        lambda where: link_callback.run(where, link_callback.LinkSizes()),
        lambda where: link_callback.run(where, link_callback.QUICK),
        link_callback.section,
    ),
    Benchmark(
        "simultaneous",
        lambda where: simultaneous.run(where, simultaneous.SimultaneousSizes()),
        lambda where: simultaneous.run(where, simultaneous.QUICK),
        simultaneous.section,
    ),
    Benchmark(
        "burst",
        lambda where: burst.run(where, burst.BurstSizes()),
        lambda where: burst.run(where, burst.QUICK),
        report.burst_section,
    ),
    Benchmark(
        "restart",
        lambda where: restart.run(where, restart.RestartSizes()),
        lambda where: restart.run(where, restart.QUICK),
        restart.section,
    ),
    Benchmark(
        "poll_coverage",
        lambda where: poll_coverage.run(where, poll_coverage.PollSizes()),
        lambda where: poll_coverage.run(where, poll_coverage.QUICK),
        poll_coverage.section,
    ),
    Benchmark(
        "registry",
        lambda where: registry.run(where, registry.RegistrySizes()),
        lambda where: registry.run(where, registry.QUICK),
        report.registry_section,
    ),
    Benchmark(
        "failover",
        lambda where: failover.run(where, failover.FailoverSizes()),
        lambda where: failover.run(where, failover.QUICK),
        failover.section,
    ),
    Benchmark(
        "memory",
        lambda where: memory.run(where, memory.MemorySizes()),
        lambda where: memory.run(where, memory.QUICK),
        report.memory_section,
    ),
)


SECTIONS = {benchmark.name: benchmark.section for benchmark in SUITE}
