"""Prometheus metrics of one voice process, in a registry of its own (never the global one).

Discord requests are labelled by route template (`/guilds/{guild_id}/members/{user_id}`), never
by a path with ids in it, so the number of series stays bounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.kit.metrics import GrpcCallMetrics, service_registry

MOVE_OUTCOMES = ("moved", "not_in_voice", "refused")
"""What became of a move: done; the member was not in voice (40032); Discord refused it."""

GUESS_OUTCOMES = ("confirmed", "corrected", "unconfirmed")
"""What became of creates sent on the registry's last answers: its answer was the same; it
differed (access rewritten before any move); it did not come (the registry failed)."""


class VoiceMetrics:
    """Discord REST and gateway, open matches and their channels, moves, the lease, gRPC."""

    def __init__(self) -> None:
        self.registry = service_registry()
        self.discord_requests = Counter(
            "voice_discord_requests",
            "Discord REST answers by method, route template and HTTP status (each attempt;"
            " `error` when no answer came).",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.discord_latency = Histogram(
            "voice_discord_request_seconds",
            "Time of one Discord REST attempt, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.discord_rate_limited = Counter(
            "voice_discord_rate_limited",
            "429 answers from Discord by scope (bucket, global).",
            ["scope"],
            registry=self.registry,
        )
        self.rate_limit_waits = Histogram(
            "voice_discord_rate_limit_wait_seconds",
            "Waits before a Discord request for a spent bucket or after a 429.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self.gateway_connected = Gauge(
            "voice_gateway_connected",
            "1 while the Discord gateway session is ready, else 0.",
            registry=self.registry,
        )
        self.gateway_latency = Gauge(
            "voice_gateway_latency_seconds",
            "Time between the last gateway heartbeat and its acknowledgement.",
            registry=self.registry,
        )
        self.open_matches = Gauge(
            "voice_open_matches",
            "Matches open in this process.",
            registry=self.registry,
        )
        self.match_channels = Gauge(
            "voice_match_channels",
            "Team voice channels of the open matches.",
            registry=self.registry,
        )
        self.moves = Counter(
            "voice_moves",
            "Member moves by outcome (moved, not_in_voice, refused).",
            ["outcome"],
            registry=self.registry,
        )
        self.link_guesses = Counter(
            "voice_link_guesses",
            "Opens whose creates went out on the registry's last answers, by what its own answer"
            " then said (confirmed, corrected, unconfirmed).",
            ["outcome"],
            registry=self.registry,
        )
        self.lease_held = Gauge(
            "voice_lease_held",
            "1 while this replica holds the voice lease (acts on Discord and serves), else 0.",
            registry=self.registry,
        )
        self.grpc = GrpcCallMetrics("voice", self.registry)
        for outcome in MOVE_OUTCOMES:
            self.moves.labels(outcome=outcome)
        for outcome in GUESS_OUTCOMES:
            self.link_guesses.labels(outcome=outcome)
        for scope in ("bucket", "global"):
            self.discord_rate_limited.labels(scope=scope)

    def guessed(self, outcome: str) -> None:
        """What became of an open's creates sent on the registry's last answers."""
        self.link_guesses.labels(outcome=outcome).inc()

    def discord_answer(self, method: str, route: str, status: int | str, seconds: float) -> None:
        """One Discord REST attempt to `route` (a template) ended with `status`."""
        self.discord_requests.labels(method=method, route=route, status=str(status)).inc()
        self.discord_latency.labels(method=method, route=route).observe(seconds)
