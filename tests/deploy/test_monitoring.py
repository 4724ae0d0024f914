"""The alert rules and the Grafana dashboard name only metrics the services export, every
alert has a promtool unit test and a runbook entry, and the dashboard shows the golden signals
of each service."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from services.ingest.metrics import IngestMetrics
from services.registry.metrics import RegistryMetrics
from services.voice.metrics import VoiceMetrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "kubernetes" / "monitoring"
OPERATIONS = ROOT / "docs" / "operations.md"

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
SCRAPE_SERIES = {"up"}
"""What Prometheus itself records for each target."""
OURS = re.compile(r"^(ingest|voice|registry|process)_")


def _exported() -> set[str]:
    registries: list[CollectorRegistry] = [
        IngestMetrics().registry,
        VoiceMetrics().registry,
        RegistryMetrics().registry,
    ]
    return {
        family.name + suffix
        for registry in registries
        for family in registry.collect()
        for suffix in SUFFIXES[family.type]
    }


def _named(expr: str) -> set[str]:
    """The series names in a PromQL expression: label matchers and strings taken out first."""
    bare = re.sub(r"\{[^}]*\}", " ", re.sub(r'"[^"]*"', '""', expr))
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    return {
        token
        for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare)
        if OURS.match(token) or token in SCRAPE_SERIES
    }


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_alerts_and_dashboard_name_only_exported_metrics() -> None:
    """Every series an alert or a dashboard panel queries is one the services export."""
    exported = _exported()
    queried = {
        name: where
        for where, expr in [
            *((f"alert {rule['alert']}", rule["expr"]) for rule in _rules()),
            *(("dashboard", expr) for expr in _dashboard_exprs()),
        ]
        for name in _named(expr)
    }
    unknown = {
        name: where for name, where in queried.items() if name not in exported | SCRAPE_SERIES
    }
    assert unknown == {}
    assert len(queried) > 20, queried  # the extraction finds the names at all


def test_the_check_catches_a_metric_that_does_not_exist() -> None:
    """A misspelt metric in an expression is found (the check above can fail)."""
    assert _named('sum(rate(voice_discord_request_total{route="/x"}[5m])) > up') == {
        "voice_discord_request_total",
        "up",
    }
    assert "voice_discord_request_total" not in _exported()


def test_every_alert_has_a_unit_test_and_a_runbook_entry() -> None:
    """Each alert is tested in alerts-test.yaml and names an entry of docs/operations.md."""
    tests = yaml.safe_load((MONITORING / "alerts-test.yaml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    alerts = {rule["alert"] for rule in _rules()}
    assert tested == alerts
    assert fired == alerts
    anchors = _anchors(OPERATIONS.read_text())
    for rule in _rules():
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md", rule["alert"]
        assert anchor in anchors, (rule["alert"], anchor)


def test_the_dashboard_shows_the_golden_signals_of_each_service() -> None:
    """Each service's row has a rate, an errors, a latency and a saturation panel."""
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    rows: dict[str, list[str]] = {}
    current = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = []
        else:
            rows[current].append(panel["title"].split(":")[0])
    for service in ("Ingest", "Voice", "Registry"):
        assert {"Rate", "Errors", "Latency", "Saturation"} <= set(rows[service]), service
