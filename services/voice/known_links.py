"""What the registry last answered for each player: a guess that lets an open's creates go out
before the registry's answer to that open arrives. The answer still decides: every move, every
stored member and the channels' final access follow it (`MatchService._open_fresh`).

A player's answer is forgotten when a change of their link is applied (the link watch, or a
`/register` of this voice), and an answer is not kept when a change was applied while it was
asked (it may predate the change). So a guess is wrong only while a change is on its way to
this voice, or when the registry changed its answers without a change (its verification mode
switched): the open's own answer then corrects the channel right after the creates, as the
link watch corrects an open that read the registry just before a change.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Protocol

CAPACITY = 100_000
"""Players remembered at most (the least recently used are forgotten first): ~22 MB."""


class PlayerResolver(Protocol):
    """Resolves FACEIT players to the Discord users they are linked to (the registry)."""

    async def resolve_players(self, faceit_player_ids: Sequence[str]) -> dict[str, int]:
        """FACEIT player id -> Discord user id, for the linked players only."""
        ...


class KnownLinks:
    """A PlayerResolver that remembers each player's last answer (linked user, or none)."""

    def __init__(self, resolver: PlayerResolver, capacity: int = CAPACITY) -> None:
        self._resolver = resolver
        self._capacity = capacity
        self._answers: collections.OrderedDict[str, int | None] = collections.OrderedDict()
        self._changes = 0

    async def resolve_players(self, faceit_player_ids: Sequence[str]) -> dict[str, int]:
        """The registry's answer, remembered unless a change was applied while it was asked."""
        changes = self._changes
        found = await self._resolver.resolve_players(faceit_player_ids)
        if changes == self._changes:
            for player_id in faceit_player_ids:
                self._answers[player_id] = found.get(player_id)
                self._answers.move_to_end(player_id)
            while len(self._answers) > self._capacity:
                self._answers.popitem(last=False)
        return found

    def guess(self, faceit_player_ids: Sequence[str]) -> dict[str, int] | None:
        """The links of these players as last answered; None when one of them has no answer
        remembered (never asked, or changed since)."""
        if any(player_id not in self._answers for player_id in faceit_player_ids):
            return None
        guessed = {}
        for player_id in faceit_player_ids:
            self._answers.move_to_end(player_id)
            user_id = self._answers[player_id]
            if user_id is not None:
                guessed[player_id] = user_id
        return guessed

    def changed(self, faceit_player_id: str) -> None:
        """A change of the player's link is being applied: their answer is no longer known."""
        self._changes += 1
        self._answers.pop(faceit_player_id, None)

    def forget_all(self) -> None:
        """Changes were missed (the watch resynchronises): no answer is known any more."""
        self._changes += 1
        self._answers.clear()
