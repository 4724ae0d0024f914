"""The guild, channel and member a REST route names, and the bot's permissions there."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import permissions as perm
from sandbox.discord.parsers import snowflake
from sandbox.discord.responses import missing_access, unknown
from sandbox.discord.state import Channel, Guild, Member, SandboxState


def guild_of(state: SandboxState, request: web.Request) -> Guild:
    """The guild of `{guild_id}` (404 / 10004 if there is none)."""
    guild = state.guilds.get(snowflake(request.match_info["guild_id"], "guild_id"))
    if guild is None:
        raise unknown("Guild", 10004)
    return guild


def visible_channel(state: SandboxState, request: web.Request) -> tuple[Guild, Channel]:
    """The channel of `{channel_id}` and its guild (403 / 50001 when the bot cannot see it)."""
    channel = state.channel(snowflake(request.match_info["channel_id"], "channel_id"))
    if channel is None:
        raise unknown("Channel", 10003)
    guild = state.guilds[channel.guild_id]
    if not bot_in(state, guild, channel) & perm.VIEW_CHANNEL:
        raise missing_access()
    return guild, channel


def member_of(guild: Guild, request: web.Request) -> Member:
    """The member of `{user_id}` in the guild (404 / 10007 if there is none)."""
    member = guild.members.get(snowflake(request.match_info["user_id"], "user_id"))
    if member is None:
        raise unknown("Member", 10007)
    return member


def bot_base(state: SandboxState, guild: Guild) -> int:
    """The bot's guild-wide permissions."""
    return guild.base_permissions(state.bot.id)


def bot_in(state: SandboxState, guild: Guild, channel: Channel) -> int:
    """The bot's permissions in one channel, overwrites applied."""
    return guild.channel_permissions(state.bot.id, channel)
