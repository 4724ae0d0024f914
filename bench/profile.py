"""`python -m bench.profile`: where the CPU goes while ingest takes webhooks at saturation.

Starts the whole system, warms ingest up, then drives it with the closed-loop load of the
webhook-ack benchmark and prints each process's CPU over the run, per request answered,
with the machine's idle time beside it. `--spy FILE` also samples ingest with py-spy (raw
folded stacks, one line per stack) and prints the frames most often on top of a sample.
The figures of bench/findings.md come from this command.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.harness import Where, running_system
from bench.loadgen import LoadSpec, run_in_process
from bench.machine import process_cpu_s
from services.kit.embedded_postgres import stop_embedded_postgres
from services.kit.logging import setup_logging


def _label(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())[:90] or process.name()
    except psutil.Error:
        return "(gone)"


def top_frames(folded: Path, count: int = 25) -> list[tuple[float, str]]:
    """The frames that were on top of the most py-spy samples, as (share, frame)."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        own[stack.split(";")[-1]] += int(samples)
    return [(n / max(total, 1), frame) for frame, n in own.most_common(count)]


async def profile(where: Where, seconds: float, spy: Path | None) -> None:
    """Run the load once and print the CPU each process spent on it."""
    async with running_system(where, "profile") as system:
        info = system.info
        headers = {info["webhook_header"]: info["webhook_secret"]}
        headers["Content-Type"] = "application/json"
        url = info["webhook_url"]
        await run_in_process(
            LoadSpec(url=url, headers=headers, body_prefix="warm", rate=300.0, duration_s=2.0)
        )
        processes = list(psutil.process_iter())
        before = {p.pid: process_cpu_s(p) for p in processes}
        labels = {p.pid: _label(p) for p in processes}
        machine_before = psutil.cpu_times()
        sampler = None
        if spy is not None:
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            ingest_pid = str(system.processes["ingest"].pid)
            record = ["record", "-p", ingest_pid, "-d", str(int(seconds)), "-r", "200"]
            sampler = subprocess.Popen(  # noqa: ASYNC220 (runs beside the load, waited below)
                [py_spy, *record, "-f", "raw", "-o", str(spy), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        began = time.monotonic()
        spec = LoadSpec(
            url=url,
            headers=headers,
            body_prefix=f"profile-{int(time.time())}",
            mode="closed",
            concurrency=64,
            duration_s=seconds,
        )
        result = await run_in_process(spec)
        elapsed = time.monotonic() - began
        machine_after = psutil.cpu_times()
        spent = sorted(
            ((process_cpu_s(p) - before[p.pid], p) for p in processes),
            key=lambda s: s[0],
            reverse=True,
        )
        if sampler is not None:
            await asyncio.to_thread(sampler.wait)
    answered = max(result.ok, 1)
    print(f"{result.throughput_rps} req/s answered 200 ({result.statuses}), {elapsed:.1f} s")
    idle = (machine_after.idle - machine_before.idle) / elapsed
    print(f"machine idle: {idle:.2f} of {psutil.cpu_count()} cores")
    print("cores  us/request  process")
    for cpu_s, process in spent[:8]:
        if cpu_s > 0:
            label = labels[process.pid]
            print(f"{cpu_s / elapsed:5.2f}  {cpu_s * 1e6 / answered:10.0f}  {label}")
    print("(the load generator is not listed: it starts after the first reading)")
    if spy is not None:
        for share, frame in top_frames(spy):
            print(f"{share:6.1%}  {frame}")


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--spy", type=Path, help="also sample ingest with py-spy into this file")
    parser.add_argument("--data-dir", type=Path, default=Path(".data/bench"))
    args = parser.parse_args(argv)
    setup_logging("WARNING", service="bench", stream=sys.stderr)
    where = Where(data_dir=args.data_dir, log_dir=Path(tempfile.mkdtemp(prefix="bench-profile-")))
    try:
        asyncio.run(profile(where, args.seconds, args.spy))
    finally:
        stop_embedded_postgres(args.data_dir)


if __name__ == "__main__":
    main()
