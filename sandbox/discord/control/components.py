"""Button clicks: a member clicks a component of an interaction's message, the bot gets
INTERACTION_CREATE type 3 (MESSAGE_COMPONENT) with its `custom_id` and the message."""

from __future__ import annotations

from typing import Any

from sandbox.discord.control.dispatch import dispatch_interaction
from sandbox.discord.control.parsing import ControlError, member_id, sid
from sandbox.discord.gateway import Gateway
from sandbox.discord.rest.interactions import EPHEMERAL, LOADING
from sandbox.discord.state import Interaction, SandboxState

MESSAGE_COMPONENT = 3
ACTION_ROW = 1


def _component(message: dict[str, Any], custom_id: str) -> dict[str, Any]:
    for row in message.get("components") or []:
        for component in row.get("components") or [] if row.get("type") == ACTION_ROW else [row]:
            if component.get("custom_id") == custom_id:
                return component
    raise ControlError(404, f"the message has no component with custom_id {custom_id!r}")


def click_component(
    state: SandboxState, gateway: Gateway, body: dict[str, Any], now: float
) -> Interaction:
    """`{"user_id", "message_id", "custom_id"}`: the click, as Discord allows it; the
    interaction dispatched.

    An ephemeral message is seen, so clicked, only by the member it answered (403 for anyone
    else); a disabled button or a message still "thinking" cannot be clicked (400).
    """
    found = state.interaction_message(sid(body.get("message_id"), "message_id"))
    if found is None:
        raise ControlError(404, "unknown interaction message")
    owner, message = found
    guild = state.guilds[owner.guild_id]
    user_id = member_id(guild, body.get("user_id"))
    if message["flags"] & EPHEMERAL and user_id != owner.user_id:
        raise ControlError(403, "an ephemeral message is seen only by the member it answered")
    if message["flags"] & LOADING:
        raise ControlError(400, "the message is still loading: it has no components yet")
    custom_id = str(body.get("custom_id", ""))
    component = _component(message, custom_id)
    if component.get("disabled"):
        raise ControlError(400, f"the component {custom_id!r} is disabled")
    channel = state.channel(owner.channel_id)
    if channel is None:
        raise ControlError(404, "the message's channel is gone")
    interaction = state.new_interaction(
        guild_id=guild.id,
        channel_id=channel.id,
        user_id=user_id,
        command_name=custom_id,
        created_at=now,
        type=MESSAGE_COMPONENT,
        source=message,
    )
    data = {"custom_id": custom_id, "component_type": component.get("type", 2)}
    dispatch_interaction(state, gateway, guild, channel, interaction, data)
    return interaction
