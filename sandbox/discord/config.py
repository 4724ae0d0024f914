"""Tunable limits and timings of the Discord sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.discord.ratelimit import RouteLimit

GUILD_MEMBERS_INTENT = 1 << 1
GUILD_PRESENCES_INTENT = 1 << 8
MESSAGE_CONTENT_INTENT = 1 << 15


@dataclass
class SandboxConfig:
    """Everything a test or the CLI may want to change; defaults follow Discord."""

    bot_username: str = "faceit-voice"
    global_rate_limit: int = 50
    """Requests per second across all routes except interactions and webhooks."""
    default_route_limit: RouteLimit = field(default_factory=lambda: RouteLimit(50, 1.0))
    route_limits: dict[tuple[str, str], RouteLimit] = field(
        default_factory=lambda: {("POST", "/channels/{channel_id}/messages"): RouteLimit(5, 5.0)}
    )
    """Keyed by (METHOD, route template sans /api/v10), e.g. ("PATCH", "/channels/{channel_id}");
    messages are sent at 5 per 5 s per channel, as Discord's bucket for them is."""
    max_channels_per_guild: int = 500
    max_channels_per_category: int = 50
    interaction_ack_timeout: float = 3.0
    interaction_token_lifetime: float = 15 * 60.0
    reply_timeout: float = 10.0
    """How long `POST /_sandbox/interactions` waits for the bot's final reply."""
    heartbeat_interval_ms: int = 41_250
    privileged_intents: int = GUILD_MEMBERS_INTENT | GUILD_PRESENCES_INTENT | MESSAGE_CONTENT_INTENT
    """Privileged intents "enabled in the Developer Portal"; others close IDENTIFY with 4014."""
    replay_buffer: int = 1000
    """Dispatches kept per gateway session for RESUME."""
