"""Voice's own Discord changes that the gateway has not reported yet: new channels and moves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

DEFAULT_LAG_S = 5.0


@dataclass
class _Move:
    target: int | None
    reported: bool = False
    until: float = 0.0


class GatewayLag:
    """What REST answered and the gateway has not yet told py-cord's cache, bounded in time.

    Discord may answer a REST call before it sends the call's gateway events, and may refuse
    a move into a new channel (10003) until the guild has processed it. So a move into a
    channel voice created waits (at most `lag_s`) for its CHANNEL_CREATE, and a move Discord
    answered counts where it put the member until its VOICE_STATE_UPDATE arrives (or `lag_s`
    passed), so deciding whom to move next never reads a cache that lags behind our own acts.
    """

    def __init__(
        self, *, lag_s: float = DEFAULT_LAG_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lag_s = lag_s
        self._clock = clock
        self._unannounced: dict[int, asyncio.Event] = {}
        self._moves: dict[int, _Move] = {}

    def created(self, channel_id: int) -> None:
        """A channel voice created has not been announced by the gateway yet."""
        self._unannounced.setdefault(channel_id, asyncio.Event())

    def announced(self, channel_id: int) -> None:
        """The gateway sent the channel's CHANNEL_CREATE, or voice deleted the channel."""
        event = self._unannounced.pop(channel_id, None)
        if event is not None:
            event.set()

    async def until_announced(self, channel_id: int) -> None:
        """Wait (at most `lag_s`) until a channel voice created is announced."""
        event = self._unannounced.get(channel_id)
        if event is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._lag_s):
                await event.wait()
        if self._unannounced.pop(channel_id, None) is not None:
            logger.warning(
                "channel %s not announced after %ss: moving anyway", channel_id, self._lag_s
            )

    def moving(self, user_id: int, target: int | None) -> None:
        """A move is being sent; its gateway event may come before or after the answer."""
        self._moves[user_id] = _Move(target)

    def moved(self, user_id: int) -> None:
        """Discord answered the move: it counts until the gateway reports it."""
        move = self._moves.get(user_id)
        if move is None:
            return
        if move.reported:
            del self._moves[user_id]
        else:
            move.until = self._clock() + self._lag_s

    def move_failed(self, user_id: int) -> None:
        """Discord refused the move: nothing to wait for."""
        self._moves.pop(user_id, None)

    def voice_reported(self, user_id: int, channel_id: int | None) -> None:
        """The gateway reported where the member is."""
        move = self._moves.get(user_id)
        if move is None or move.target != channel_id:
            return
        if move.until:
            del self._moves[user_id]
        else:
            move.reported = True

    def _unreported(self, user_id: int) -> _Move | None:
        move = self._moves.get(user_id)
        if move is None or not move.until or move.reported:
            return None
        if move.until < self._clock():
            del self._moves[user_id]
            return None
        return move

    def voice_channel_of(self, user_id: int, cached: int | None) -> int | None:
        """Where the member is, given where the cache says they are."""
        move = self._unreported(user_id)
        return cached if move is None else move.target

    def occupants(self, channel_id: int, cached: Iterable[int]) -> list[int]:
        """Who is in the channel, given who the cache says is in it."""
        inside = {uid for uid in cached if self._unreported(uid) is None}
        inside |= {
            uid
            for uid in list(self._moves)
            if (move := self._unreported(uid)) is not None and move.target == channel_id
        }
        return sorted(inside)
