"""The benchmark suite's quick mode, end to end on the whole system."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.suite import SUITE


@pytest.mark.timeout(600)
def test_quick_mode_measures_every_benchmark_beside_its_reference(
    tmp_path: Path, database_url: str
) -> None:
    """`python -m bench --quick` writes every benchmark, its references and targets, and the doc."""
    results_path, doc_path = tmp_path / "results.json", tmp_path / "benchmarks.md"

    main(
        [
            "--quick",
            "--results",
            str(results_path),
            "--doc",
            str(doc_path),
            "--database-url",
            database_url,
        ]
    )

    results = json.loads(results_path.read_text())
    benchmarks = results["benchmarks"]
    assert set(benchmarks) == {b.name for b in SUITE}
    assert results["machine"]["cores"] >= 1 and results["machine"]["python"]
    for step in benchmarks["webhook_ack"]["steps"]:
        assert step["ingest"]["ok"] > 0 and step["bare"]["ok"] > 0
        assert step["bare"]["throughput_rps"] > 0 and not math.isnan(step["throughput_ratio"])
        assert step["cpu_us_per_request"]["ingest"] > 0 and step["cpu_us_per_request"]["bare"] > 0
    assert (
        benchmarks["webhook_ack"]["inbox_rows"]
        >= benchmarks["webhook_ack"]["ingest_ok_answers_measured"]
    )
    assert benchmarks["end_to_end"]["floor_ms"] > 0 and benchmarks["end_to_end"]["ratio_p50"] > 1
    phases = benchmarks["end_to_end"]["phases_ms_p50"]
    assert set(phases) == {"to_first_create", "creates", "creates_to_first_move", "moves"}
    assert phases["creates"] >= 50 and phases["moves"] >= 50  # the sandbox's latency
    assert benchmarks["end_to_end"]["own_ms_p50"] > 0
    assert all(s["elapsed_ms"]["p99_ms"] > 0 for s in benchmarks["simultaneous"]["steps"])
    assert all(s["moves"] and s["minimum_s"] > 0 for s in benchmarks["restart"]["steps"])
    assert all(s["checks"] >= s["open_matches"] for s in benchmarks["poll_coverage"]["steps"])
    assert benchmarks["link_callback"]["floor_ms"] > 0
    assert benchmarks["burst"]["channels_found"] == benchmarks["burst"]["channels_expected"]
    assert benchmarks["burst"]["minimum_s"] > 0
    assert benchmarks["registry"]["health_check_reference"]["p50_ms"] > 0
    assert benchmarks["registry"]["sql_statements_per_call"] >= 1
    assert set(benchmarks["memory"]["rss_mib"]["after_matches"]) == {"ingest", "voice", "registry"}
    for outcome in benchmarks.values():
        assert outcome["targets"] and all(
            isinstance(t["pass"], bool) for t in outcome["targets"].values()
        )
    doc = doc_path.read_text()
    assert "## Targets" in doc and "python -m bench --quick" in doc
