"""Open-loop (and closed-loop, for saturation) HTTP load generator, run as its own process.

`python -m bench.loadgen` reads one JSON spec on stdin and prints one JSON result line.
Open loop: request i is due at start + i/rate whatever happened to the others, and its
latency is measured from that due time, so a slow server cannot hide its queue (no
coordinated omission). Closed loop: `concurrency` clients send back to back for the
duration; its throughput is the server's saturation throughput.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.stats import latency_summary
from bench.webhooks import ack_body, unique_ack_bodies

CONNECTION_LIMIT = 512
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadSpec:
    """One load run: where, how hard, how long, with which bodies."""

    url: str
    headers: dict[str, str]
    body_prefix: str
    mode: str = "open"  # "open" (rate) or "closed" (concurrency)
    rate: float = 100.0
    duration_s: float = 5.0
    concurrency: int = 64
    timeout_s: float = 10.0


@dataclass
class LoadResult:
    """What one load run measured."""

    mode: str
    offered_rps: float | None
    sent: int
    ok: int
    errors: int
    statuses: dict[str, int]
    elapsed_s: float
    throughput_rps: float
    latency: dict[str, float] = field(default_factory=dict)


@dataclass
class _Outcome:
    status: int
    latency_s: float
    done_at: float


async def _post(
    session: aiohttp.ClientSession, spec: LoadSpec, body: bytes, due: float
) -> _Outcome:
    loop = asyncio.get_running_loop()
    try:
        async with session.post(spec.url, data=body, headers=spec.headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        status = -1
    now = loop.time()
    return _Outcome(status, now - due, now)


async def _open_loop(
    session: aiohttp.ClientSession, spec: LoadSpec, bodies: Sequence[bytes]
) -> tuple[list[_Outcome], float]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.01
    tasks = []
    for index, body in enumerate(bodies):
        due = start + index / spec.rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing: the schedule, not a wait for a condition
        tasks.append(asyncio.create_task(_post(session, spec, body, due)))
    return list(await asyncio.gather(*tasks)), start


async def _closed_loop(
    session: aiohttp.ClientSession, spec: LoadSpec
) -> tuple[list[_Outcome], float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + spec.duration_s
    queue = (ack_body(spec.body_prefix, index) for index in itertools.count())
    outcomes: list[_Outcome] = []

    async def client() -> None:
        for body in queue:
            if loop.time() >= deadline:
                return
            outcomes.append(await _post(session, spec, body, loop.time()))

    await asyncio.gather(*(client() for _ in range(spec.concurrency)))
    return outcomes, start


async def run_spec(spec: LoadSpec) -> LoadResult:
    """Generate the load of `spec` and summarise it."""
    if spec.mode == "open":
        bodies = unique_ack_bodies(spec.body_prefix, max(1, round(spec.rate * spec.duration_s)))
    connector = aiohttp.TCPConnector(limit=CONNECTION_LIMIT)
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if spec.mode == "open":
            outcomes, start = await _open_loop(session, spec, bodies)
        else:
            outcomes, start = await _closed_loop(session, spec)
    ok = [o for o in outcomes if o.status == 200]
    end = max((o.done_at for o in outcomes), default=start)
    elapsed = max(end - start, 1e-9)
    if spec.mode == "closed":
        elapsed = max(elapsed, spec.duration_s)
    return LoadResult(
        mode=spec.mode,
        offered_rps=spec.rate if spec.mode == "open" else None,
        sent=len(outcomes),
        ok=len(ok),
        errors=len(outcomes) - len(ok),
        statuses={str(k): v for k, v in sorted(Counter(o.status for o in outcomes).items())},
        elapsed_s=round(elapsed, 3),
        throughput_rps=round(len(ok) / elapsed, 1),
        latency=latency_summary([o.latency_s for o in ok]),
    )


async def run_in_process(spec: LoadSpec, *, cwd: Path = REPO_ROOT) -> LoadResult:
    """Run `spec` in a separate generator process (its own CPU), bounded in time."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    bound = spec.duration_s + spec.timeout_s + 30.0
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(json.dumps(asdict(spec)).encode()), bound
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {err.decode()[-2000:]}")
    data: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return LoadResult(**data)


def main() -> None:
    """Entry point: spec on stdin, result on stdout."""
    spec = LoadSpec(**json.loads(sys.stdin.read()))
    result = asyncio.run(run_spec(spec))
    sys.stdout.write(json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    main()
