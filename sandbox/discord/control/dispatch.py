"""INTERACTION_CREATE as Discord sends it, for a member's command or click, and the wait for
the bot's final reply."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.control.parsing import ControlError
from sandbox.discord.gateway import Gateway
from sandbox.discord.responses import json_response
from sandbox.discord.state import Channel, Guild, Interaction, SandboxState


def dispatch_interaction(
    state: SandboxState,
    gateway: Gateway,
    guild: Guild,
    channel: Channel,
    interaction: Interaction,
    data: dict[str, Any],
) -> None:
    """INTERACTION_CREATE for a member's command or click, as Discord sends it."""
    user_id = interaction.user_id
    payload: dict[str, Any] = {
        "id": str(interaction.id),
        "application_id": str(state.bot.id),
        "type": interaction.type,
        "token": interaction.token,
        "version": 1,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "channel_id": str(channel.id),
        "channel": {
            **payloads.channel(channel),
            "permissions": str(guild.channel_permissions(user_id, channel)),
        },
        "member": {
            **payloads.member(state, guild.members[user_id]),
            "permissions": str(guild.channel_permissions(user_id, channel)),
        },
        "locale": "en-US",
        "guild_locale": "en-US",
        "app_permissions": str(guild.channel_permissions(state.bot.id, channel)),
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": 26_214_400,
        "data": data,
    }
    if interaction.source is not None:
        payload["message"] = interaction.source
    gateway.dispatch("INTERACTION_CREATE", payload, intent=None)


async def reply_of(interaction: Interaction, timeout: float) -> web.Response:
    """The bot's final reply to the interaction (504 when it does not come in time)."""
    try:
        reply = await asyncio.wait_for(asyncio.shield(interaction.reply), timeout)
    except TimeoutError:
        raise ControlError(
            504,
            "the bot did not answer the interaction in time",
            interaction_id=str(interaction.id),
            acknowledged=interaction.acknowledged,
            deferred=interaction.deferred,
        ) from None
    return json_response({**reply, "messages": interaction.messages})
