"""PendingReplies: the /register replies kept for editing are bounded and expire."""

from __future__ import annotations

import discord

from services.voice.pending_replies import PendingReplies


async def _edit(embed: discord.Embed) -> None:
    return None


def test_a_reply_is_taken_once() -> None:
    """The user's reply is handed out once, then forgotten."""
    pending = PendingReplies()
    pending.add(1, _edit)

    assert pending.take(1) is _edit
    assert pending.take(1) is None


def test_a_reply_past_its_editable_time_is_not_handed_out() -> None:
    """After the interaction token's lifetime the reply is dropped."""
    now = [0.0]
    pending = PendingReplies(lifetime_s=60.0, clock=lambda: now[0])
    pending.add(1, _edit)
    now[0] = 60.0

    assert pending.take(1) is None
    assert len(pending) == 0


def test_the_oldest_reply_goes_when_the_bound_is_reached() -> None:
    """At the bound, adding a reply forgets the oldest one; a user's newer reply replaces theirs."""
    pending = PendingReplies(limit=2)
    pending.add(1, _edit)
    pending.add(2, _edit)
    pending.add(2, _edit)
    pending.add(3, _edit)

    assert len(pending) == 2
    assert pending.take(1) is None
    assert pending.take(2) is _edit and pending.take(3) is _edit
