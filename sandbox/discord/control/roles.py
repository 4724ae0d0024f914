"""Control of roles: create and edit them, give them to members and take them back."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord.actions import Actions
from sandbox.discord.control.parsing import ControlError, body_of, guild_by_id, member_id, sid
from sandbox.discord.responses import json_response
from sandbox.discord.state import SandboxState


class RoleControl:
    """/_sandbox/guilds/{gid}/roles[/{rid}] and /_sandbox/guilds/{gid}/members/{uid}/roles/{rid}."""

    def __init__(self, state: SandboxState, actions: Actions) -> None:
        self._state = state
        self._actions = actions

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        member_role = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"
        return [
            web.post("/guilds/{guild_id}/roles", self.create_role),
            web.patch("/guilds/{guild_id}/roles/{role_id}", self.edit_role),
            web.put(member_role, self.add_role),
            web.delete(member_role, self.remove_role),
        ]

    async def create_role(self, request: web.Request) -> web.Response:
        """POST /_sandbox/guilds/{gid}/roles {"name", "permissions"}."""
        guild = guild_by_id(self._state, request.match_info["guild_id"])
        body = await body_of(request)
        role = self._actions.create_role(
            guild, str(body.get("name", "role")), int(body.get("permissions", 0))
        )
        return json_response({"role_id": str(role.id), "name": role.name}, status=201)

    async def edit_role(self, request: web.Request) -> web.Response:
        """PATCH /_sandbox/guilds/{gid}/roles/{rid} {"permissions"?, "name"?}."""
        guild = guild_by_id(self._state, request.match_info["guild_id"])
        role = guild.roles.get(sid(request.match_info["role_id"], "role_id"))
        if role is None:
            raise ControlError(404, "unknown role")
        body = await body_of(request)
        if "permissions" in body:
            role.permissions = int(body["permissions"])
        if "name" in body:
            role.name = str(body["name"])
        self._actions.role_updated(guild, role)
        return json_response(
            {"role_id": str(role.id), "name": role.name, "permissions": str(role.permissions)}
        )

    async def add_role(self, request: web.Request) -> web.Response:
        """PUT /_sandbox/guilds/{gid}/members/{uid}/roles/{rid}."""
        return self._change_role(request, add=True)

    async def remove_role(self, request: web.Request) -> web.Response:
        """DELETE /_sandbox/guilds/{gid}/members/{uid}/roles/{rid}."""
        return self._change_role(request, add=False)

    def _change_role(self, request: web.Request, *, add: bool) -> web.Response:
        guild = guild_by_id(self._state, request.match_info["guild_id"])
        member = guild.members[member_id(guild, request.match_info["user_id"])]
        role_id = sid(request.match_info["role_id"], "role_id")
        if role_id not in guild.roles or role_id == guild.id:
            raise ControlError(404, "unknown role")
        if add and role_id not in member.role_ids:
            member.role_ids.append(role_id)
        elif not add and role_id in member.role_ids:
            member.role_ids.remove(role_id)
        self._actions.member_updated(guild, member)
        return json_response(
            {"user_id": str(member.user_id), "roles": [str(r) for r in member.role_ids]}
        )
