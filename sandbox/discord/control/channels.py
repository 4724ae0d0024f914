"""Control of channels: create or delete one as an admin would, and who may view or join it."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord import permissions as perm
from sandbox.discord.actions import Actions
from sandbox.discord.control.parsing import ControlError, body_of, channel_by_id, guild_by_id
from sandbox.discord.parsers import parse_overwrites
from sandbox.discord.responses import json_response
from sandbox.discord.state import CATEGORY, CREATABLE_TYPES, SandboxState


class ChannelControl:
    """POST /_sandbox/guilds/{gid}/channels, DELETE /_sandbox/channels/{cid} and its /access."""

    def __init__(self, state: SandboxState, actions: Actions) -> None:
        self._state = state
        self._actions = actions

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [
            web.post("/guilds/{guild_id}/channels", self.create_channel),
            web.delete("/channels/{channel_id}", self.delete_channel),
            web.get("/channels/{channel_id}/access", self.channel_access),
        ]

    async def create_channel(self, request: web.Request) -> web.Response:
        """POST /_sandbox/guilds/{gid}/channels {"name", "type", "parent_id"?, ...} (no checks)."""
        guild = guild_by_id(self._state, request.match_info["guild_id"])
        body = await body_of(request)
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise ControlError(400, "name must be 1 to 100 characters")
        channel_type = int(body.get("type", 0))
        if channel_type not in CREATABLE_TYPES:
            raise ControlError(400, "unsupported channel type")
        parent_id = None
        if body.get("parent_id") is not None:
            parent = channel_by_id(self._state, body["parent_id"])
            if parent.guild_id != guild.id or parent.type != CATEGORY:
                raise ControlError(400, "parent_id must be a category of this guild")
            parent_id = parent.id
        overwrites = parse_overwrites(body.get("permission_overwrites") or [])
        channel = self._actions.create_channel(
            guild,
            name=name,
            type=channel_type,
            parent_id=parent_id,
            overwrites=overwrites,
            user_limit=int(body.get("user_limit", 0)),
        )
        return json_response(
            {"channel_id": str(channel.id), **payloads.channel(channel)}, status=201
        )

    async def delete_channel(self, request: web.Request) -> web.Response:
        """DELETE /_sandbox/channels/{cid}: as if an admin deleted it."""
        channel = channel_by_id(self._state, request.match_info["channel_id"])
        self._actions.delete_channel(channel)
        return json_response({"deleted": str(channel.id)})

    async def channel_access(self, request: web.Request) -> web.Response:
        """GET /_sandbox/channels/{cid}/access: who can view and who can connect."""
        channel = channel_by_id(self._state, request.match_info["channel_id"])
        guild = self._state.guilds[channel.guild_id]
        view, connect = [], []
        for user_id in guild.members:
            perms = guild.channel_permissions(user_id, channel)
            if perms & perm.VIEW_CHANNEL:
                view.append(str(user_id))
            if channel.is_voice and perm.has(perms, perm.VIEW_CHANNEL | perm.CONNECT):
                connect.append(str(user_id))
        return json_response({"channel_id": str(channel.id), "view": view, "connect": connect})
