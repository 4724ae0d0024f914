"""Button clicks: a member clicks a component of an interaction's message, the bot gets
INTERACTION_CREATE type 3 (MESSAGE_COMPONENT) with its `custom_id`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.discord.config import SandboxConfig
from sandbox.discord.control.interactions import dispatch_interaction, reply_of
from sandbox.discord.control.parsing import ControlError, body_of, member_id, sid
from sandbox.discord.gateway import Gateway
from sandbox.discord.rest.interactions import EPHEMERAL, LOADING
from sandbox.discord.state import SandboxState

MESSAGE_COMPONENT = 3
ACTION_ROW = 1


def _component(message: dict[str, Any], custom_id: str) -> dict[str, Any]:
    for row in message.get("components") or []:
        for component in row.get("components") or [] if row.get("type") == ACTION_ROW else [row]:
            if component.get("custom_id") == custom_id:
                return component
    raise ControlError(404, f"the message has no component with custom_id {custom_id!r}")


class ComponentSimulator:
    """POST /_sandbox/interactions/components: a member clicks a button; returns the bot's reply."""

    def __init__(
        self,
        state: SandboxState,
        gateway: Gateway,
        config: SandboxConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._gateway = gateway
        self._config = config
        self._clock = clock

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [web.post("/interactions/components", self.click)]

    async def click(self, request: web.Request) -> web.Response:
        """`{"user_id", "message_id", "custom_id", "timeout"?}`: the click, as Discord allows it.

        An ephemeral message is seen, so clicked, only by the member it answered (403 for anyone
        else); a disabled button or a message still "thinking" cannot be clicked (400).
        """
        body = await body_of(request)
        found = self._state.interaction_message(sid(body.get("message_id"), "message_id"))
        if found is None:
            raise ControlError(404, "unknown interaction message")
        owner, message = found
        guild = self._state.guilds[owner.guild_id]
        user_id = member_id(guild, body.get("user_id"))
        if message["flags"] & EPHEMERAL and user_id != owner.user_id:
            raise ControlError(403, "an ephemeral message is seen only by the member it answered")
        if message["flags"] & LOADING:
            raise ControlError(400, "the message is still loading: it has no components yet")
        custom_id = str(body.get("custom_id", ""))
        component = _component(message, custom_id)
        if component.get("disabled"):
            raise ControlError(400, f"the component {custom_id!r} is disabled")
        channel = self._state.channel(owner.channel_id)
        if channel is None:
            raise ControlError(404, "the message's channel is gone")
        interaction = self._state.new_interaction(
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=user_id,
            command_name=custom_id,
            created_at=self._clock(),
            type=MESSAGE_COMPONENT,
            source=message,
        )
        data = {"custom_id": custom_id, "component_type": component.get("type", 2)}
        dispatch_interaction(self._state, self._gateway, guild, channel, interaction, data)
        return await reply_of(interaction, float(body.get("timeout", self._config.reply_timeout)))
