"""Webhook ack: authenticated `POST /faceit-webhook` vs a bare FastAPI endpoint, same settings."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import asyncpg
import psutil

from bench.harness import REPO_ROOT, Where, running_system
from bench.loadgen import LoadResult, LoadSpec, run_in_process
from bench.machine import process_cpu_s
from bench.stats import ratio
from devtools.processes import ManagedProcess, child_environment, python_module
from sandbox.system import LOOPBACK, free_port, http_probe

logger = logging.getLogger(__name__)

P99_TARGET_MS = 10.0
P99_TARGET_RATE = 1000.0
THROUGHPUT_TARGET = 0.7
DRAINED_S = 0.02


@dataclass(frozen=True)
class AckSizes:
    """How hard and how long: offered rates, seconds per step, saturation clients, and how
    many alternated rounds of saturation (seconds per target each)."""

    rates: tuple[float, ...] = (100.0, 500.0, 1000.0)
    duration_s: float = 8.0
    saturation_s: float = 4.0
    saturation_rounds: int = 3
    concurrency: int = 64
    warmup_s: float = 1.0


QUICK = AckSizes(
    rates=(100.0, 500.0),
    duration_s=0.5,
    saturation_s=0.5,
    saturation_rounds=2,
    concurrency=8,
    warmup_s=0.2,
)


async def _drained(url: str, within: float = 120.0) -> float:
    """Wait until `url` answers within DRAINED_S again (the previous step's backlog is gone).

    An overloaded open-loop step leaves a queue in the server; without this the next step
    would measure that queue instead of its own load. Returns the seconds waited.
    """
    began = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session:
        while True:
            sent = time.monotonic()
            async with session.get(url) as response:
                await response.read()
            if time.monotonic() - sent < DRAINED_S:
                return round(time.monotonic() - began, 2)
            if time.monotonic() - began > within:
                raise TimeoutError(f"{url} still slow after {within:.0f}s")
            await asyncio.sleep(0.05)  # polling interval


async def _stored(database_url: str) -> int:
    """How many events the inbox holds (each ok ingest answer must be one row)."""
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM ingest.events")
    finally:
        await connection.close()
    return count


async def run(where: Where, sizes: AckSizes) -> dict[str, Any]:
    """Open-loop steps at each offered rate, then saturation, for ingest and the bare app."""
    async with running_system(where, "webhook_ack") as system:
        info = system.info
        port = free_port()
        bare = ManagedProcess(
            "bare-server",
            python_module("bench.bare_server", "--port", str(port)),
            env=child_environment({}),
            log_dir=system.log_dir,
            cwd=REPO_ROOT,
        )
        bare_url = f"http://{LOOPBACK}:{port}"
        await bare.start(ready_probe=http_probe(bare_url + "/healthz"), timeout=30.0)
        try:
            headers = {info["webhook_header"]: info["webhook_secret"]}
            headers["Content-Type"] = "application/json"
            urls = {"ingest": info["webhook_url"], "bare": bare_url + "/faceit-webhook"}
            health = {"ingest": info["ingest_url"] + "/healthz", "bare": bare_url + "/healthz"}
            servers = {
                "ingest": psutil.Process(system.processes["ingest"].pid),
                "bare": psutil.Process(bare.pid),
            }

            async def load(target: str, step: str, **how: Any) -> Measured:
                spec = LoadSpec(url=urls[target], headers=headers, body_prefix=step, **how)
                await _drained(health[target])
                before = process_cpu_s(servers[target])
                result = await run_in_process(spec)
                cpu_us = (process_cpu_s(servers[target]) - before) * 1e6 / max(result.sent, 1)
                logger.info("%s %s: %s, %.0f us CPU per request", target, step, result, cpu_us)
                return Measured(result, round(cpu_us, 1))

            for target in urls:
                await load(target, f"warm-{target}", rate=200.0, duration_s=sizes.warmup_s)
            steps: list[dict[str, Any]] = []
            for rate in sizes.rates:
                measured = {
                    target: await load(
                        target, f"r{int(rate)}-{target}", rate=rate, duration_s=sizes.duration_s
                    )
                    for target in urls
                }
                steps.append(_step(f"{int(rate)} req/s", measured))
            rounds = []
            for number in range(1, sizes.saturation_rounds + 1):
                saturated = {
                    target: await load(
                        target,
                        f"sat{number}-{target}",
                        mode="closed",
                        concurrency=sizes.concurrency,
                        duration_s=sizes.saturation_s,
                    )
                    for target in urls
                }
                rounds.append(_step(f"saturation ({sizes.concurrency} clients)", saturated))
            steps.append(median_round(rounds))
            stored = await _stored(info["database_url"])
        finally:
            await bare.stop()
    return _verdict(steps, stored, sizes)


@dataclass(frozen=True)
class Measured:
    """One load run and the CPU the server process spent per request it was sent."""

    load: LoadResult
    server_cpu_us_per_request: float


def _step(name: str, measured: dict[str, Measured]) -> dict[str, Any]:
    ingest, bare = measured["ingest"].load, measured["bare"].load
    return {
        "load": name,
        "offered_rps": ingest.offered_rps,
        "ingest": asdict(ingest),
        "bare": asdict(bare),
        "throughput_ratio": ratio(ingest.throughput_rps, bare.throughput_rps),
        "p99_ratio": ratio(ingest.latency["p99_ms"], bare.latency["p99_ms"]),
        "cpu_us_per_request": {
            target: measured[target].server_cpu_us_per_request for target in measured
        },
    }


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The saturation step: the round whose ratio is the median (the lower middle of an even
    count), with every round's ratio beside it. The machine's load changes from one second to
    the next; rounds that alternate the two servers see the same moments, and one unlucky
    round cannot decide the result alone."""
    middle = sorted(rounds, key=lambda r: r["throughput_ratio"])[(len(rounds) - 1) // 2]
    return {**middle, "round_ratios": [r["throughput_ratio"] for r in rounds]}


def _verdict(steps: list[dict[str, Any]], stored: int, sizes: AckSizes) -> dict[str, Any]:
    saturation = steps[-1]
    at_target_rate = [s for s in steps if s["offered_rps"] == P99_TARGET_RATE]
    p99 = at_target_rate[0]["ingest"]["latency"]["p99_ms"] if at_target_rate else None
    ok_total = sum(s["ingest"]["ok"] for s in steps)
    return {
        "sizes": asdict(sizes),
        "steps": steps,
        "inbox_rows": stored,
        "ingest_ok_answers_measured": ok_total,
        "targets": {
            "throughput_at_saturation_vs_bare": {
                "target": f">= {THROUGHPUT_TARGET:.0%} of the bare endpoint",
                "value": saturation["throughput_ratio"],
                "pass": saturation["throughput_ratio"] >= THROUGHPUT_TARGET,
            },
            "p99_at_1000_rps": {
                "target": f"p99 <= {P99_TARGET_MS:.0f} ms at {P99_TARGET_RATE:.0f} req/s",
                "value": p99,
                "pass": p99 is not None and p99 <= P99_TARGET_MS,
            },
        },
    }
