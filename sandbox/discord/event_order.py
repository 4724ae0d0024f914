"""The "events after the answer" fault: a REST call's gateway events go out after its reply.

By default the sandbox dispatches the events of a change (CHANNEL_CREATE, VOICE_STATE_UPDATE...)
just before the REST call's answer (while handling it, when no latency is injected), so a bot's
cache always knows of a change before the REST answer arrives. Discord promises no such order:
the answer often comes first. With this fault on, the events a REST call causes are held and
sent `delay` seconds after its answer was written;
`hide_new_channels` also makes a new channel unknown to moves (10003) until its CHANNEL_CREATE
went out, a pessimistic model of a guild that has not processed the channel yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HeldEvents:
    """The dispatches one REST call caused, waiting for its answer to be sent."""

    delay: float | None
    """Seconds after the answer to send them; None: just before the answer is written."""
    sends: list[Callable[[], None]] = field(default_factory=list)
    channel_ids: set[int] = field(default_factory=set)


class EventOrder:
    """Holds gateway dispatches made while a REST call is handled, when the fault is on."""

    def __init__(self) -> None:
        self.delay: float | None = None
        """Seconds between a REST answer and its events; None: the fault is off."""
        self.hide_new_channels = False
        self._current: ContextVar[HeldEvents | None] = ContextVar("held_events", default=None)
        self._hidden: set[int] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    def configure(self, delay: float, *, hide_new_channels: bool) -> None:
        """Turn the fault on."""
        self.delay = delay
        self.hide_new_channels = hide_new_channels

    def clear(self) -> None:
        """Turn the fault off; events already held still go out when their time comes."""
        self.delay = None
        self.hide_new_channels = False

    def begin(self, *, travelling: bool = False) -> Token[HeldEvents | None] | None:
        """Start holding the events of the REST call being handled: when the fault is on, or
        when its answer is still to travel back (an injected latency), so they go out with it.
        None: nothing is held."""
        if self.delay is None and not travelling:
            return None
        return self._current.set(HeldEvents(delay=self.delay))

    def end(self, token: Token[HeldEvents | None] | None) -> HeldEvents | None:
        """Stop holding; the events held, if any, to pass to `release` once answered."""
        if token is None:
            return None
        held = self._current.get()
        self._current.reset(token)
        return held if held is not None and held.sends else None

    def hold(self, send: Callable[[], None], *, channel_id: int | None = None) -> bool:
        """Keep `send` for later if this call's events are held; False means send it now."""
        held = self._current.get()
        if held is None:
            return False
        held.sends.append(send)
        if channel_id is not None and self.hide_new_channels:
            held.channel_ids.add(channel_id)
            self._hidden.add(channel_id)
        return True

    def release(self, held: HeldEvents) -> None:
        """Send the held events: now if they go before the answer, else `delay` seconds from
        now (call it once the answer was written)."""
        if held.delay is None:
            self._release(held)
            return

        def fire() -> None:
            self._timers.discard(timer)
            self._release(held)

        timer = asyncio.get_running_loop().call_later(held.delay, fire)
        self._timers.add(timer)

    def cancel(self) -> None:
        """Drop pending releases (the sandbox is stopping)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def hidden(self, channel_id: int) -> bool:
        """True while a new channel's CHANNEL_CREATE has not been sent (hide_new_channels)."""
        return channel_id in self._hidden

    def _release(self, held: HeldEvents) -> None:
        self._hidden -= held.channel_ids
        for send in held.sends:
            send()

    def describe(self) -> dict[str, Any]:
        """The fault's settings as JSON (None when off)."""
        if self.delay is None:
            return {}
        return {"seconds": self.delay, "hide_new_channels": self.hide_new_channels}
