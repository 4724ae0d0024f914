"""The interaction simulator: a member runs a slash command, the bot gets INTERACTION_CREATE."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord import permissions as perm
from sandbox.discord.config import SandboxConfig
from sandbox.discord.control.parsing import (
    ControlError,
    body_of,
    channel_by_id,
    guild_by_id,
    member_id,
    sid,
)
from sandbox.discord.gateway import Gateway
from sandbox.discord.responses import json_response
from sandbox.discord.state import Channel, Guild, SandboxState

USER, CHANNEL, ROLE, MENTIONABLE = 6, 7, 8, 9


class InteractionSimulator:
    """POST /_sandbox/interactions (waits for the bot's reply) and GET /_sandbox/commands."""

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
        return [
            web.post("/interactions", self.run_interaction),
            web.get("/commands", self.list_commands),
        ]

    async def run_interaction(self, request: web.Request) -> web.Response:
        """POST /_sandbox/interactions: a member runs a slash command; returns the bot's reply."""
        body = await body_of(request)
        guild = guild_by_id(self._state, body.get("guild_id"))
        user_id = member_id(guild, body.get("user_id"))
        command = self._find_command(guild, str(body.get("command", "")))
        if body.get("channel_id") is not None:
            channel = channel_by_id(self._state, body["channel_id"])
        else:
            channel = next(c for c in guild.channels.values() if c.type == 0)
        self._check_command_permissions(guild, user_id, channel, command)
        options, resolved = self._options(guild, command, dict(body.get("options") or {}))
        interaction = self._state.new_interaction(
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=user_id,
            command_name=command["name"],
            created_at=self._clock(),
        )
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": 1,
            "options": options,
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        member = guild.members[user_id]
        self._gateway.dispatch(
            "INTERACTION_CREATE",
            {
                "id": str(interaction.id),
                "application_id": str(self._state.bot.id),
                "type": 2,
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
                    **payloads.member(self._state, member),
                    "permissions": str(guild.channel_permissions(user_id, channel)),
                },
                "locale": "en-US",
                "guild_locale": "en-US",
                "app_permissions": str(guild.channel_permissions(self._state.bot.id, channel)),
                "entitlements": [],
                "authorizing_integration_owners": {"0": str(guild.id)},
                "context": 0,
                "attachment_size_limit": 26_214_400,
                "data": data,
            },
            intent=None,
        )
        timeout = float(body.get("timeout", self._config.reply_timeout))
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

    async def list_commands(self, request: web.Request) -> web.Response:
        """GET /_sandbox/commands?guild_id=: commands registered by the bot."""
        if "guild_id" in request.query:
            return json_response(guild_by_id(self._state, request.query["guild_id"]).commands)
        return json_response(self._state.global_commands)

    def _find_command(self, guild: Guild, name: str) -> dict[str, Any]:
        for command in [*guild.commands, *self._state.global_commands]:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        raise ControlError(404, f"no slash command named {name!r} is registered")

    def _check_command_permissions(
        self, guild: Guild, user_id: int, channel: Channel, command: dict[str, Any]
    ) -> None:
        """default_member_permissions: a member lacking them is not offered the command ("0":
        nobody but administrators); the owner and administrators always may run it."""
        required = command.get("default_member_permissions")
        if required is None:
            return
        needed = int(required)
        member_perms = guild.channel_permissions(user_id, channel)
        if member_perms != perm.ALL and (needed == 0 or not perm.has(member_perms, needed)):
            raise ControlError(
                403,
                "the member lacks the command's default_member_permissions; Discord does not "
                "offer it to them",
                default_member_permissions=str(needed),
            )

    def _options(
        self, guild: Guild, command: dict[str, Any], given: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        declared = {o["name"]: o for o in command.get("options") or []}
        options: list[dict[str, Any]] = []
        resolved: dict[str, dict[str, Any]] = {}
        for name, spec in declared.items():
            if spec.get("required") and name not in given:
                raise ControlError(400, f"option {name!r} is required")
        for name, value in given.items():
            spec = declared.get(name)
            if spec is None:
                raise ControlError(400, f"command has no option {name!r}")
            option_type = int(spec.get("type", 3))
            options.append(
                {
                    "name": name,
                    "type": option_type,
                    "value": self._option_value(guild, option_type, value, resolved),
                }
            )
        return options, resolved

    def _option_value(
        self, guild: Guild, option_type: int, value: Any, resolved: dict[str, dict[str, Any]]
    ) -> Any:
        if option_type in (USER, MENTIONABLE) and sid(value, "option") in guild.members:
            member = guild.members[sid(value, "option")]
            resolved.setdefault("users", {})[str(member.user_id)] = payloads.user(
                self._state.users[member.user_id]
            )
            resolved.setdefault("members", {})[str(member.user_id)] = {
                **payloads.member(self._state, member, with_user=False),
                "permissions": str(guild.base_permissions(member.user_id)),
            }
            return str(member.user_id)
        if option_type in (ROLE, MENTIONABLE) and sid(value, "option") in guild.roles:
            role = guild.roles[sid(value, "option")]
            resolved.setdefault("roles", {})[str(role.id)] = payloads.role(role)
            return str(role.id)
        if option_type == CHANNEL:
            channel = channel_by_id(self._state, value)
            resolved.setdefault("channels", {})[str(channel.id)] = {
                "id": str(channel.id),
                "name": channel.name,
                "type": channel.type,
                "parent_id": str(channel.parent_id) if channel.parent_id else None,
                "permissions": str(guild.channel_permissions(self._state.bot.id, channel)),
            }
            return str(channel.id)
        if option_type in (USER, ROLE, MENTIONABLE):
            raise ControlError(404, f"unknown user or role {value!r}")
        return {4: int, 5: bool, 10: float}.get(option_type, str)(value)
