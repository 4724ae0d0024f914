"""KnownLinks: the registry's last answer per player, forgotten on every change heard."""

from __future__ import annotations

import asyncio

from services.voice.known_links import KnownLinks
from tests.services.voice.fakes import FakeResolver
from tests.support import eventually


async def test_an_answer_is_remembered_for_every_player_asked_linked_or_not() -> None:
    """After an answer, the guess for those players is that answer, unlinked players included."""
    resolver = FakeResolver({"p1": 1})
    known = KnownLinks(resolver)
    assert known.guess(["p1", "p2"]) is None

    assert await known.resolve_players(["p1", "p2"]) == {"p1": 1}

    assert known.guess(["p1", "p2"]) == {"p1": 1}
    assert known.guess(["p1", "p3"]) is None  # p3 was never asked


async def test_a_change_heard_forgets_the_players_answer() -> None:
    """A player whose link changed has no guess until the registry is asked again."""
    resolver = FakeResolver({"p1": 1})
    known = KnownLinks(resolver)
    await known.resolve_players(["p1", "p2"])

    known.changed("p2")

    assert known.guess(["p1", "p2"]) is None
    assert known.guess(["p1"]) == {"p1": 1}


async def test_an_answer_asked_while_a_change_was_heard_is_not_remembered() -> None:
    """An answer that may predate a change applied while it was on its way is not kept."""
    resolver = FakeResolver({"p1": 1}, gate=asyncio.Event())
    known = KnownLinks(resolver)
    asking = asyncio.create_task(known.resolve_players(["p1"]))

    async def asked() -> bool:
        return bool(resolver.calls)

    await eventually(asked, what="the registry asked")

    known.changed("p9")  # any change: the answer may have been read before it
    assert resolver.gate is not None
    resolver.gate.set()

    assert await asking == {"p1": 1}
    assert known.guess(["p1"]) is None


async def test_a_resync_forgets_every_answer() -> None:
    """When changes were missed, nothing remembered is a guess any more."""
    known = KnownLinks(FakeResolver({"p1": 1}))
    await known.resolve_players(["p1"])

    known.forget_all()

    assert known.guess(["p1"]) is None


async def test_the_least_recently_used_players_are_forgotten_beyond_the_capacity() -> None:
    """Memory stays bounded: past the capacity the players least recently used go first."""
    known = KnownLinks(FakeResolver({"p1": 1}), capacity=2)
    await known.resolve_players(["p1", "p2"])
    assert known.guess(["p1"]) == {"p1": 1}  # p1 used: p2 is the oldest now

    await known.resolve_players(["p3"])

    assert known.guess(["p2"]) is None
    assert known.guess(["p1", "p3"]) == {"p1": 1}
