"""The interaction simulator: a member runs a slash command, the bot gets INTERACTION_CREATE."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.command_access import may_use
from sandbox.discord.config import SandboxConfig
from sandbox.discord.control.components import click_component
from sandbox.discord.control.dispatch import dispatch_interaction, reply_of
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
from sandbox.discord.state import Guild, SandboxState

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
USER, CHANNEL, ROLE, MENTIONABLE = 6, 7, 8, 9
Nest = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _sub_command(command: dict[str, Any], path: list[str]) -> tuple[dict[str, Any], Nest]:
    """The (sub-)command `path` names, and how its options nest in the interaction's data."""
    if not path:
        if any(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in command["options"]):
            raise ControlError(400, f"/{command['name']} needs a sub-command")
        return command, lambda options: options
    step, *rest = path
    found = next(
        (
            o
            for o in command.get("options") or []
            if o.get("name") == step and o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)
        ),
        None,
    )
    if found is None:
        raise ControlError(404, f"/{command.get('name', '')} has no sub-command {step!r}")
    leaf, nest = _sub_command({"options": [], **found}, rest)

    def nested(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"name": step, "type": found["type"], "options": nest(options)}]

    return leaf, nested


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
            web.post("/interactions/components", self.click),
            web.get("/commands", self.list_commands),
        ]

    async def run_interaction(self, request: web.Request) -> web.Response:
        """POST /_sandbox/interactions: a member runs a slash command; returns the bot's reply.

        `command` may name a sub-command: `"match list"` runs `list` of `/match`.
        """
        body = await body_of(request)
        guild = guild_by_id(self._state, body.get("guild_id"))
        user_id = member_id(guild, body.get("user_id"))
        name, *path = str(body.get("command", "")).split()
        command = self._find_command(guild, name)
        if body.get("channel_id") is not None:
            channel = channel_by_id(self._state, body["channel_id"])
        else:
            channel = next(c for c in guild.channels.values() if c.type == 0)
        if not may_use(guild, user_id, channel, command):
            raise ControlError(
                403,
                "the member may not use the command (default_member_permissions or the guild's "
                "command permissions); Discord does not offer it to them",
                default_member_permissions=command.get("default_member_permissions"),
            )
        leaf, nest = _sub_command(command, path)
        options, resolved = self._options(guild, leaf, dict(body.get("options") or {}))
        interaction = self._state.new_interaction(
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=user_id,
            command_name=" ".join([name, *path]),
            created_at=self._clock(),
        )
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": 1,
            "options": nest(options),
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        dispatch_interaction(self._state, self._gateway, guild, channel, interaction, data)
        return await reply_of(interaction, float(body.get("timeout", self._config.reply_timeout)))

    async def click(self, request: web.Request) -> web.Response:
        """POST /_sandbox/interactions/components: a member clicks a button (see
        `click_component`); returns the bot's reply."""
        body = await body_of(request)
        interaction = click_component(self._state, self._gateway, body, self._clock())
        return await reply_of(interaction, float(body.get("timeout", self._config.reply_timeout)))

    async def list_commands(self, request: web.Request) -> web.Response:
        """GET /_sandbox/commands?guild_id=[&user_id=]: commands registered by the bot; with
        `user_id`, only those the member is offered (in the guild's first text channel)."""
        if "guild_id" not in request.query:
            return json_response(self._state.global_commands)
        guild = guild_by_id(self._state, request.query["guild_id"])
        commands = [*guild.commands]
        if "user_id" in request.query:
            user_id = member_id(guild, request.query["user_id"])
            channel = next(c for c in guild.channels.values() if c.type == 0)
            commands = [c for c in commands if may_use(guild, user_id, channel, c)]
        return json_response(commands)

    def _find_command(self, guild: Guild, name: str) -> dict[str, Any]:
        for command in [*guild.commands, *self._state.global_commands]:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        raise ControlError(404, f"no slash command named {name!r} is registered")

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
