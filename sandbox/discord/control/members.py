"""Control of members: add one to a guild, connect, move or disconnect one in voice."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import permissions as perm
from sandbox.discord.actions import Actions
from sandbox.discord.control.parsing import (
    ControlError,
    body_of,
    channel_by_id,
    guild_by_id,
    member_id,
    sid,
)
from sandbox.discord.responses import json_response
from sandbox.discord.state import SandboxState


class MemberControl:
    """POST /_sandbox/guilds/{gid}/members and PUT /_sandbox/guilds/{gid}/voice/{uid}."""

    def __init__(self, state: SandboxState, actions: Actions) -> None:
        self._state = state
        self._actions = actions

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [
            web.post("/guilds/{guild_id}/members", self.add_member),
            web.put("/guilds/{guild_id}/voice/{user_id}", self.set_voice),
        ]

    async def add_member(self, request: web.Request) -> web.Response:
        """POST /_sandbox/guilds/{gid}/members {"username", "roles"?}."""
        guild = guild_by_id(self._state, request.match_info["guild_id"])
        body = await body_of(request)
        username = body.get("username")
        if not isinstance(username, str) or not 2 <= len(username) <= 32:
            raise ControlError(400, "username must be 2 to 32 characters")
        role_ids = [sid(r, "roles") for r in body.get("roles") or []]
        for role_id in role_ids:
            if role_id not in guild.roles:
                raise ControlError(404, "unknown role")
        user = self._actions.add_member(guild, username, role_ids)
        return json_response(
            {"user_id": str(user.id), "username": user.username, "guild_id": str(guild.id)},
            status=201,
        )

    async def set_voice(self, request: web.Request) -> web.Response:
        """PUT /_sandbox/guilds/{gid}/voice/{uid} {"channel_id": id|null, "force"?}."""
        guild = guild_by_id(self._state, request.match_info["guild_id"])
        user_id = member_id(guild, request.match_info["user_id"])
        body = await body_of(request)
        if "channel_id" not in body:
            raise ControlError(400, "channel_id is required (null to leave voice)")
        target = None
        if body["channel_id"] is not None:
            target = channel_by_id(self._state, body["channel_id"])
            if target.guild_id != guild.id or not target.is_voice:
                raise ControlError(400, "channel_id must be a voice channel of this guild")
            if not body.get("force"):
                perms = guild.channel_permissions(user_id, target)
                if not perm.has(perms, perm.VIEW_CHANNEL | perm.CONNECT):
                    raise ControlError(403, "the member may not connect there", code=50013)
                occupants = [u for u in guild.occupants(target.id) if u != user_id]
                if target.user_limit and len(occupants) >= target.user_limit:
                    raise ControlError(400, "the channel is full")
        new_id = target.id if target else None
        if guild.voice_states.get(user_id) != new_id:
            self._actions.set_voice(guild, user_id, new_id)
        return json_response(
            {"user_id": str(user_id), "channel_id": str(new_id) if new_id else None}
        )
