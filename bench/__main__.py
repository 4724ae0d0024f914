"""`python -m bench` (`make bench`): run every benchmark, write results.json and the doc."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Where
from bench.machine import machine_facts
from bench.report import render
from bench.suite import SECTIONS, SUITE
from services.kit.embedded_postgres import stop_embedded_postgres
from services.kit.logging import setup_logging

DEFAULT_RESULTS = Path("bench/results.json")
DEFAULT_DOC = Path("docs/benchmarks.md")


async def run_suite(where: Where, *, quick: bool, only: list[str]) -> dict[str, Any]:
    """Run the selected benchmarks one after the other; the results document."""
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "mode": "quick" if quick else "full",
        "command": "make bench" if not quick else "python -m bench --quick",
        "benchmarks": {},
    }
    began = time.perf_counter()
    for benchmark in SUITE:
        if only and benchmark.name not in only:
            continue
        sys.stderr.write(f"bench: {benchmark.name}...\n")
        started = time.perf_counter()
        outcome = await (benchmark.quick if quick else benchmark.full)(where)
        outcome["seconds"] = round(time.perf_counter() - started, 1)
        results["benchmarks"][benchmark.name] = outcome
        sys.stderr.write(f"bench: {benchmark.name} done in {outcome['seconds']}s\n")
    results["seconds"] = round(time.perf_counter() - began, 1)
    return results


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--only", action="append", default=[], help="run only this benchmark")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    parser.add_argument("--data-dir", type=Path, default=Path(".data/bench"))
    parser.add_argument("--database-url", help="a Postgres server instead of the embedded one")
    args = parser.parse_args(argv)
    setup_logging("WARNING", service="bench", stream=sys.stderr)
    where = Where(
        data_dir=args.data_dir,
        log_dir=Path(tempfile.mkdtemp(prefix="faceit-voice-bench-")),
        database_url=args.database_url,
    )
    sys.stderr.write(f"bench: service logs in {where.log_dir}\n")
    try:
        results = asyncio.run(run_suite(where, quick=args.quick, only=args.only))
    finally:
        if args.database_url is None:
            stop_embedded_postgres(args.data_dir)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render(results, SECTIONS), encoding="utf-8")
    sys.stderr.write(f"bench: wrote {args.results} and {args.doc}\n")


if __name__ == "__main__":
    main()
