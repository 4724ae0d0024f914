"""Unit tests of the rate limiter with a fake clock."""

from __future__ import annotations

from sandbox.discord.ratelimit import RateLimiter, RouteLimit
from tests.sandbox.discord.helpers import FakeClock

ROUTE = "/guilds/{guild_id}/channels"


def limiter(clock: FakeClock, *, global_limit: int = 50) -> RateLimiter:
    return RateLimiter(
        global_limit=global_limit,
        default=RouteLimit(50, 1.0),
        routes={("POST", ROUTE): RouteLimit(2, 10.0)},
        clock=clock,
        wall_clock=lambda: 1_000.0,
    )


def test_headers_count_down_the_bucket() -> None:
    """Each answer reports limit, remaining, reset, reset-after and the bucket id."""
    rl = limiter(FakeClock())
    first = rl.check("POST", ROUTE, "1", counts_globally=True)
    second = rl.check("POST", ROUTE, "1", counts_globally=True)
    assert first.allowed and second.allowed
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert first.headers["X-RateLimit-Reset-After"] == "10.000"
    assert first.headers["X-RateLimit-Reset"] == "1010.000"
    assert first.headers["X-RateLimit-Bucket"] == second.headers["X-RateLimit-Bucket"]


def test_exhausted_bucket_answers_429_until_the_window_resets() -> None:
    """The third call in the window is refused with retry_after; after the reset it passes."""
    clock = FakeClock()
    rl = limiter(clock)
    rl.check("POST", ROUTE, "1", counts_globally=True)
    rl.check("POST", ROUTE, "1", counts_globally=True)
    clock.now += 4
    refused = rl.check("POST", ROUTE, "1", counts_globally=True)
    assert not refused.allowed
    assert refused.retry_after == 6.0
    assert refused.body == {
        "message": "You are being rate limited.",
        "retry_after": 6.0,
        "global": False,
    }
    assert refused.headers["Via"] == "1.1 google"
    assert refused.headers["X-RateLimit-Scope"] == "user"
    assert refused.headers["Retry-After"] == "6"
    clock.now += 6
    assert rl.check("POST", ROUTE, "1", counts_globally=True).allowed


def test_major_parameters_have_separate_buckets() -> None:
    """Another guild's channel creations are not limited by the first guild's."""
    rl = limiter(FakeClock())
    rl.check("POST", ROUTE, "1", counts_globally=True)
    rl.check("POST", ROUTE, "1", counts_globally=True)
    assert not rl.check("POST", ROUTE, "1", counts_globally=True).allowed
    assert rl.check("POST", ROUTE, "2", counts_globally=True).allowed


def test_global_limit_is_shared_but_skips_token_routes() -> None:
    """The global limit counts every bot-token call; interaction routes do not count."""
    clock = FakeClock()
    rl = limiter(clock, global_limit=3)
    for major in ("a", "b", "c"):
        assert rl.check("GET", "/channels/{channel_id}", major, counts_globally=True).allowed
    refused = rl.check("GET", "/channels/{channel_id}", "d", counts_globally=True)
    assert not refused.allowed and refused.is_global
    assert refused.body["global"] is True
    assert refused.headers["X-RateLimit-Scope"] == "global"
    assert rl.check(
        "POST", "/webhooks/{webhook_id}/{webhook_token}", "w", counts_globally=False
    ).allowed
    clock.now += 1
    assert rl.check("GET", "/channels/{channel_id}", "d", counts_globally=True).allowed


def test_changing_a_route_limit_takes_effect_at_once() -> None:
    """set_route replaces the limit and starts the windows over."""
    rl = limiter(FakeClock())
    rl.check("POST", ROUTE, "1", counts_globally=True)
    rl.check("POST", ROUTE, "1", counts_globally=True)
    rl.set_route("post", ROUTE, RouteLimit(5, 1.0))
    decision = rl.check("POST", ROUTE, "1", counts_globally=True)
    assert decision.allowed
    assert decision.headers["X-RateLimit-Remaining"] == "4"
