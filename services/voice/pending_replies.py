"""The `/register` replies still waiting for their link, to be edited when it is made."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import discord

Edit = Callable[[discord.Embed], Awaitable[None]]
"""Replaces a reply's text and link button by an embed."""

MAX_PENDING = 1_000
"""At most this many replies are remembered (the oldest goes first): a flood of /register
cannot grow the memory, and a reply forgotten only stays as it was."""

EDITABLE_S = 14 * 60.0
"""Discord accepts edits through an interaction's token for 15 minutes; a minute of margin."""


class PendingReplies:
    """The latest `/register` reply of each Discord user, while Discord still lets it be edited."""

    def __init__(
        self,
        *,
        limit: int = MAX_PENDING,
        lifetime_s: float = EDITABLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._edits: OrderedDict[int, tuple[float, Edit]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._edits)

    def add(self, user_id: int, edit: Edit) -> None:
        """Remember the user's reply (replacing an earlier one of theirs)."""
        self._drop_expired()
        self._edits.pop(user_id, None)
        while len(self._edits) >= self._limit:
            self._edits.popitem(last=False)
        self._edits[user_id] = (self._clock() + self._lifetime_s, edit)

    def take(self, user_id: int) -> Edit | None:
        """The user's reply if it can still be edited; it is forgotten either way."""
        self._drop_expired()
        entry = self._edits.pop(user_id, None)
        return entry[1] if entry is not None else None

    def _drop_expired(self) -> None:
        now = self._clock()
        while self._edits:
            user_id, (expires, _) = next(iter(self._edits.items()))
            if expires > now:
                return
            del self._edits[user_id]
