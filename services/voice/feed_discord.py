"""The match feed's seam to Discord (post, edit, find a message) and its check at start.

The feed uses py-cord's own HTTP client: its requests have a bucket lock of their own (the feed
channel's), apart from `DiscordRest`, which creates channels and moves members; a 429 on the
feed channel holds only the feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import discord

from services.voice.feed_render import shows_match
from services.voice.startup import StartupError

logger = logging.getLogger(__name__)

FEED_PERMISSIONS = ("view_channel", "send_messages", "embed_links", "read_message_history")
SCAN_LIMIT = 100
"""How many of the channel's latest messages a restart looks through for a lost post."""


class MessageGone(Exception):
    """The feed message no longer exists (deleted in Discord)."""


class FeedChannel(Protocol):
    """What the feed needs from Discord."""

    async def post(self, channel_id: int, embed: dict[str, Any], nonce: str) -> int:
        """Post a message with `embed`; its id. With the nonce enforced, Discord answers a
        repeat of a recent post with the message it made then."""
        ...

    async def edit(self, channel_id: int, message_id: int, embed: dict[str, Any]) -> None:
        """Replace the message's embed; MessageGone when it was deleted."""
        ...

    async def find(self, channel_id: int, match_id: str) -> int | None:
        """The bot's message among the channel's latest that shows `match_id`, or None."""
        ...


class PycordFeedChannel:
    """`FeedChannel` through py-cord (partial messageables: no cache needed); `guard` runs
    before every write (the voice lease: only the active replica writes)."""

    def __init__(self, client: discord.Client, guard: Callable[[], None]) -> None:
        self._client = client
        self._guard = guard

    async def post(self, channel_id: int, embed: dict[str, Any], nonce: str) -> int:
        self._guard()
        channel = self._client.get_partial_messageable(channel_id)
        message = await channel.send(
            embed=discord.Embed.from_dict(embed), nonce=nonce, enforce_nonce=True
        )
        return message.id

    async def edit(self, channel_id: int, message_id: int, embed: dict[str, Any]) -> None:
        message = self._client.get_partial_messageable(channel_id).get_partial_message(message_id)
        self._guard()
        try:
            await message.edit(embed=discord.Embed.from_dict(embed))
        except discord.NotFound as error:
            raise MessageGone(str(message_id)) from error

    async def find(self, channel_id: int, match_id: str) -> int | None:
        assert self._client.user is not None
        channel = self._client.get_partial_messageable(channel_id)
        async for message in channel.history(limit=SCAN_LIMIT):
            embeds: list[dict[str, Any]] = [dict(embed.to_dict()) for embed in message.embeds]
            if message.author.id == self._client.user.id and shows_match(embeds, match_id):
                return message.id
        return None


async def check_feed_channel(client: discord.Client, guild_id: int, channel_id: int) -> None:
    """StartupError unless the feed channel is a text channel of the guild where the bot may
    view, send, embed links and read the history."""
    assert client.user is not None
    where = f"DISCORD_MATCH_FEED_CHANNEL_ID {channel_id}"
    try:
        guild = await client.fetch_guild(guild_id)
        channel = await guild.fetch_channel(channel_id)
        member = await guild.fetch_member(client.user.id)
    except (discord.NotFound, discord.Forbidden, discord.InvalidData) as error:
        raise StartupError(f"{where} is no channel of guild {guild_id} the bot can see") from error
    except discord.HTTPException as error:
        raise StartupError(f"{where} could not be read from Discord: {error!r}") from error
    if not isinstance(channel, discord.TextChannel):
        raise StartupError(f"{where} is no text channel ({channel.type})")
    permissions = channel.permissions_for(member)
    missing = [name.upper() for name in FEED_PERMISSIONS if not getattr(permissions, name)]
    if missing:
        raise StartupError(
            f"the bot lacks permissions in the match feed channel #{channel.name} ({where}): "
            f"{', '.join(missing)}"
        )
    logger.info("match feed goes to #%s (%s)", channel.name, channel_id)
