"""The match feed end to end: real py-cord posts and edits one message per match in the sandbox."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faceitvoice.v1 import match_pb2
from faceitvoice.v1 import voice_service_pb2 as voice_pb

from sandbox.discord import permissions as perm
from services.voice.feed_store import FeedStore
from services.voice.startup import StartupError
from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

MATCH = "1-5e7c0f3a-9a3e-4a55-b7b1-0c1f2d3e4f50"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def feed_channel(system: VoiceSystem, **overwrites: Any) -> int:
    """A text channel for the feed (optionally with overwrites for the bot's role)."""
    created = await system.control.create_channel(
        system.guild_id,
        "match-feed",
        type=0,
        permission_overwrites=(
            [{"id": str(system.bot_role_id), "type": 0, **overwrites}] if overwrites else None
        ),
    )
    return int(created["channel_id"])


def opening(match_id: str, version: int, *rosters: list[str]) -> voice_pb.OpenMatchRequest:
    """An OpenMatchRequest of a hub match with named teams (the feed shows these)."""
    request = match(match_id, version, *rosters, names=("Team Ada", "Team Cid"))
    request.match.game = "cs2"
    request.match.entity.CopyFrom(match_pb2.Entity(id="hub-1", name="Weekly Hub", type="hub"))
    return request


def closing(
    match_id: str, version: int, reason: str, winner: str = "", score: dict[str, int] | None = None
) -> voice_pb.CloseMatchRequest:
    """A CloseMatchRequest, with results when a winner or score is given."""
    results = match_pb2.MatchResults(
        winner=winner,
        scores=[match_pb2.FactionScore(faction=f, score=s) for f, s in (score or {}).items()],
    )
    return voice_pb.CloseMatchRequest(
        match_id=match_id, version=version, reason=reason, results=results
    )


async def messages_when(
    system: VoiceSystem, channel_id: int, check: Any, what: str
) -> list[dict[str, Any]]:
    """The channel's messages once `check(messages)` holds."""

    async def probe() -> list[dict[str, Any]] | None:
        found = await system.control.channel_messages(channel_id)
        return found if check(found) else None

    result = await eventually(probe, what=what)
    assert result is not None
    return result


def text(message: dict[str, Any]) -> str:
    """Everything a reader sees of the message's embed, as one string."""
    embed = message["embeds"][0]
    parts = [embed["title"], embed["url"], embed["description"], embed["footer"]["text"]]
    parts += [f"{f['name']}={f['value']}" for f in embed["fields"]]
    return "\n".join(parts)


async def test_open_posts_one_embed_with_teams_mentions_room_and_voice_links(
    system: VoiceSystem,
) -> None:
    """An open posts one embed: competition, teams (linked players mentioned), room, channels."""
    feed = await feed_channel(system)
    await system.start_voice(discord_match_feed_channel_id=feed)
    assert system.stub is not None
    ada = await system.member("ada", faceit_id="p-ada")
    opened = await system.stub.OpenMatch(opening(MATCH, 3, ["p-ada", "p-bea"], ["p-cid"]))
    channels = [c.channel_id for c in opened.match.channels]

    [message] = await messages_when(system, feed, lambda m: len(m) == 1, "the feed post")
    shown = text(message)
    assert message["author_id"] == str(system.discord.bot_user_id)
    assert message["embeds"][0]["url"] == f"https://www.faceit.com/en/cs2/room/{MATCH}"
    assert "Weekly Hub" in shown and "Live" in shown
    assert f"Team Ada=<@{ada}>\np-bea" in shown and "Team Cid=p-cid" in shown
    assert all(f"<#{channel}>" in shown for channel in channels)
    assert message["edited_timestamp"] is None


async def test_finish_edits_the_same_message_with_winner_and_score(system: VoiceSystem) -> None:
    """A finished close edits the open's message: the winner and the score, no voice links."""
    feed = await feed_channel(system)
    await system.start_voice(discord_match_feed_channel_id=feed)
    assert system.stub is not None
    await system.stub.OpenMatch(opening(MATCH, 3, ["p-ada"], ["p-cid"]))
    await messages_when(system, feed, lambda m: len(m) == 1, "the feed post")
    await system.stub.CloseMatch(closing(MATCH, 4, "match_status_finished"))
    await system.stub.CloseMatch(
        closing(MATCH, 4, "match_status_finished", "faction2", {"faction1": 13, "faction2": 16})
    )

    [message] = await messages_when(
        system, feed, lambda m: len(m) == 1 and "won" in text(m[0]), "the result"
    )
    assert "Finished: **Team Cid** won 13 - 16" in text(message)
    assert "<#" not in text(message)
    assert message["edited_timestamp"] is not None


@pytest.mark.parametrize(
    ("reason", "shown"),
    [("match_status_cancelled", "Cancelled"), ("match_status_aborted", "Aborted")],
)
async def test_cancelled_and_aborted_matches_say_so(
    system: VoiceSystem, reason: str, shown: str
) -> None:
    """A cancelled or aborted match's message says so, and names no winner."""
    feed = await feed_channel(system)
    await system.start_voice(discord_match_feed_channel_id=feed)
    assert system.stub is not None
    await system.stub.OpenMatch(opening(MATCH, 3, ["p-ada"], ["p-cid"]))
    await system.stub.CloseMatch(closing(MATCH, 5, reason))

    [message] = await messages_when(
        system, feed, lambda m: len(m) == 1 and shown in text(m[0]), f"the {shown} message"
    )
    assert "won" not in text(message) and "Live" not in text(message)


async def test_duplicates_and_reordered_events_leave_one_message_with_the_last_state(
    system: VoiceSystem,
) -> None:
    """Repeated opens, a late stale open and repeated closes: one message, showing the end."""
    feed = await feed_channel(system)
    await system.start_voice(discord_match_feed_channel_id=feed)
    assert system.stub is not None
    for version in (3, 3, 2, 4):
        await system.stub.OpenMatch(opening(MATCH, version, ["p-ada"], ["p-cid"]))
    finish = closing(MATCH, 6, "match_status_finished", "faction1", {"faction1": 2, "faction2": 0})
    for request in (finish, opening(MATCH, 5, ["p-ada"], ["p-cid"]), finish):
        if isinstance(request, voice_pb.CloseMatchRequest):
            await system.stub.CloseMatch(request)
        else:
            await system.stub.OpenMatch(request)

    messages = await messages_when(
        system, feed, lambda m: m and "won" in text(m[-1]), "the finished message"
    )
    assert len(messages) == 1
    assert "Finished: **Team Ada** won 2 - 0" in text(messages[0])


async def test_restart_between_post_and_its_record_finds_the_message(
    system: VoiceSystem,
) -> None:
    """A post whose id was never stored (a crash) is found again: no second message."""
    feed = await feed_channel(system)
    await system.start_voice(discord_match_feed_channel_id=feed)
    assert system.stub is not None
    await system.stub.OpenMatch(opening(MATCH, 3, ["p-ada"], ["p-cid"]))
    [posted] = await messages_when(system, feed, lambda m: len(m) == 1, "the feed post")
    await system.stop_voice()
    await system.pool.execute(
        "UPDATE voice.feed_messages SET message_id = NULL, posting = true, shown = NULL,"
        " nonce = 'another-nonce'"
    )

    await system.start_voice(discord_match_feed_channel_id=feed)
    await system.stub.CloseMatch(closing(MATCH, 4, "match_status_cancelled"))
    [message] = await messages_when(
        system, feed, lambda m: "Cancelled" in text(m[-1]), "the cancelled message"
    )
    assert message["id"] == posted["id"]
    stored = await system.pool.fetchval("SELECT message_id FROM voice.feed_messages")
    assert str(stored) == posted["id"]


async def test_a_rate_limited_feed_never_holds_channel_creation(system: VoiceSystem) -> None:
    """With the feed channel answering 429 for 30 s, the next match still gets its channels."""
    feed = await feed_channel(system)
    await system.start_voice(discord_match_feed_channel_id=feed)
    assert system.stub is not None
    await system.control.inject_errors(
        429, route="/channels/{channel_id}/messages", retry_after=30.0, method="POST"
    )
    await system.member("ada", faceit_id="p-ada")
    started = time.monotonic()
    opened = await system.stub.OpenMatch(opening(MATCH, 3, ["p-ada"], ["p-cid"]))
    second = await system.stub.OpenMatch(opening(MATCH + "-2", 3, ["p-ada"], ["p-cid"]))
    assert time.monotonic() - started < 5.0
    assert opened.match.channels[0].channel_id and second.match.channels[0].channel_id
    assert await system.control.channel_messages(feed) == []


async def test_feed_channel_without_send_permission_stops_the_start(system: VoiceSystem) -> None:
    """A feed channel where the bot may not send messages is refused at start, named."""
    feed = await feed_channel(system, allow="0", deny=str(perm.SEND_MESSAGES))
    with pytest.raises(StartupError, match="SEND_MESSAGES"):
        await system.start_voice(discord_match_feed_channel_id=feed)


async def test_a_player_linking_during_the_match_becomes_a_mention(system: VoiceSystem) -> None:
    """A player who links while the match runs is mentioned in the message from then on."""
    feed = await feed_channel(system)
    await system.start_voice(discord_match_feed_channel_id=feed)
    assert system.stub is not None
    await system.stub.OpenMatch(opening(MATCH, 3, ["p-ada", "p-bea"], ["p-cid"]))
    await messages_when(system, feed, lambda m: m and "p-bea" in text(m[0]), "the feed post")

    bea = await system.member("bea", faceit_id="p-bea")

    [message] = await messages_when(
        system, feed, lambda m: m and f"<@{bea}>" in text(m[0]), "bea mentioned"
    )
    assert "p-bea" not in text(message)


async def test_turning_the_feed_on_posts_open_matches_only(system: VoiceSystem) -> None:
    """At start the feed posts the open matches it never showed, not the ones already over."""
    await system.start_voice()
    assert system.stub is not None
    await system.stub.OpenMatch(opening(MATCH, 3, ["p-ada"], ["p-cid"]))
    await system.stub.OpenMatch(opening(MATCH + "-over", 3, ["p-ada"], ["p-cid"]))
    await system.stub.CloseMatch(closing(MATCH + "-over", 4, "match_status_finished"))
    await system.stop_voice()
    feed = await feed_channel(system)

    assert await FeedStore(system.pool).unshown() == [MATCH]

    await system.start_voice(discord_match_feed_channel_id=feed)

    [message] = await messages_when(system, feed, lambda m: len(m) == 1, "the open match posted")
    assert message["embeds"][0]["footer"]["text"] == f"Match {MATCH}"
