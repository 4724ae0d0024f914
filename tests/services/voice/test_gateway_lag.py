"""GatewayLag: our own moves and channels count until the gateway reports them, within a bound."""

from __future__ import annotations

import asyncio

from services.voice.gateway_lag import GatewayLag


class Clock:
    """A clock the test advances."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answered_move_counts_until_the_gateway_reports_it() -> None:
    """After the answer and before the event, the member is where the move put them."""
    lag = GatewayLag(lag_s=5.0, clock=Clock())
    lag.moving(1, 20)
    lag.moved(1)

    assert lag.voice_channel_of(1, cached=10) == 20
    assert lag.occupants(20, cached=[]) == [1]
    assert lag.occupants(10, cached=[1, 2]) == [2]
    lag.voice_reported(1, 20)
    assert lag.voice_channel_of(1, cached=30) == 30


def test_an_event_before_the_answer_leaves_nothing_pending() -> None:
    """When the gateway reports the move before Discord answers, the cache is right at once."""
    lag = GatewayLag(lag_s=5.0, clock=Clock())
    lag.moving(1, 20)
    lag.voice_reported(1, 20)
    lag.moved(1)

    assert lag.voice_channel_of(1, cached=30) == 30


def test_an_older_event_does_not_end_a_pending_move() -> None:
    """An event for an earlier position of the member leaves the answered move in force."""
    lag = GatewayLag(lag_s=5.0, clock=Clock())
    lag.moving(1, None)
    lag.moved(1)
    lag.voice_reported(1, 20)

    assert lag.voice_channel_of(1, cached=20) is None
    assert lag.occupants(20, cached=[1]) == []


def test_a_move_the_gateway_never_reports_stops_counting_after_the_bound() -> None:
    """Past `lag_s` the cache is believed again."""
    clock = Clock()
    lag = GatewayLag(lag_s=5.0, clock=clock)
    lag.moving(1, 20)
    lag.moved(1)
    clock.now += 5.1

    assert lag.voice_channel_of(1, cached=10) == 10
    assert lag.occupants(20, cached=[]) == []


def test_a_refused_move_counts_for_nothing() -> None:
    """A move Discord refused leaves the cache in charge."""
    lag = GatewayLag(lag_s=5.0, clock=Clock())
    lag.moving(1, 20)
    lag.move_failed(1)

    assert lag.voice_channel_of(1, cached=10) == 10


async def test_a_move_into_a_new_channel_waits_for_its_announcement() -> None:
    """Waiting for a created channel ends when the gateway announces it."""
    lag = GatewayLag(lag_s=30.0)
    lag.created(7)
    waiting = asyncio.create_task(lag.until_announced(7))
    await asyncio.sleep(0)
    assert not waiting.done()

    lag.announced(7)

    async with asyncio.timeout(5):
        await waiting


async def test_the_wait_for_an_announcement_is_bounded() -> None:
    """A channel never announced is waited for `lag_s` at most, then no longer."""
    lag = GatewayLag(lag_s=0.05)
    lag.created(7)

    async with asyncio.timeout(5):
        await lag.until_announced(7)
        await lag.until_announced(7)
