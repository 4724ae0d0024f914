"""Prometheus metrics of one ingest app, in a registry of its own (never the global one)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

from services.kit.metrics import GrpcCallMetrics, service_registry


class IngestMetrics:
    """Counters, gauges and histograms of the webhook, the inbox, delivery and the poller."""

    def __init__(self) -> None:
        self.registry = service_registry()
        self.webhook_events = Counter(
            "ingest_webhook_events",
            "Webhook requests by FACEIT event and outcome.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "ingest_webhook_ack_seconds",
            "Time from receiving a webhook to answering it.",
            registry=self.registry,
        )
        self.inbox_depth = Gauge(
            "ingest_inbox_events",
            "Inbox events by status.",
            ["status"],
            registry=self.registry,
        )
        self.delivery_attempts = Counter(
            "ingest_delivery_attempts",
            "Delivery attempts to the voice service by action and outcome.",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            "ingest_delivery_failures",
            "Failed delivery attempts by gRPC status code.",
            ["code"],
            registry=self.registry,
        )
        self.poll_runs = Counter(
            "ingest_poll_runs",
            "Reconciliation polls by outcome (ok, errors).",
            ["outcome"],
            registry=self.registry,
        )
        self.faceit_api_calls = Counter(
            "ingest_faceit_api_calls",
            "FACEIT Data API requests by endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )

        self.internal_errors = Counter(
            "ingest_internal_errors",
            "Failures that are not an outage (a statement Postgres refused, a bug), by component"
            " (delivery, poll, readyz, metrics); each is logged once with its traceback.",
            ["component"],
            registry=self.registry,
        )
        self.grpc = GrpcCallMetrics("ingest", self.registry)
        # The counter of each (event, outcome) once looked up: `labels()` costs about 2.5 us,
        # on every webhook (bench/findings.md). As many entries as the counter has series.
        self._webhook_series: dict[tuple[str, str], Counter] = {}

    def count_webhook(self, event: str, outcome: str) -> None:
        """One webhook request for `event` ended with `outcome`."""
        series = self._webhook_series.get((event, outcome))
        if series is None:
            series = self.webhook_events.labels(event=event, outcome=outcome)
            self._webhook_series[(event, outcome)] = series
        series.inc()

    def count_faceit_call(self, endpoint: str, outcome: str) -> None:
        """The FaceitApiClient call hook: one request to `endpoint` ended with `outcome`."""
        self.faceit_api_calls.labels(endpoint=endpoint, status=outcome).inc()

    def set_inbox_depth(self, depth: Mapping[str, int]) -> None:
        """Record how many inbox events each status holds."""
        for status, count in depth.items():
            self.inbox_depth.labels(status=status).set(count)
