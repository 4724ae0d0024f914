"""A guild admin's command permission overrides (Server Settings > Integrations), which Discord
lets admins set over a command's `default_member_permissions`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.discord.command_access import ROLE_TARGET, USER_TARGET
from sandbox.discord.control.parsing import ControlError, body_of, guild_by_id, sid
from sandbox.discord.responses import json_response
from sandbox.discord.state import SandboxState

MAX_OVERRIDES = 100
"""Discord: "up to 100 users, roles, and channels" per command."""


class CommandPermissionControl:
    """PUT /_sandbox/guilds/{gid}/commands/{name or id}/permissions."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [web.put("/guilds/{guild_id}/commands/{command}/permissions", self.put)]

    async def put(self, request: web.Request) -> web.Response:
        """`{"permissions": [{"id", "type": 1 role | 2 user, "permission": bool}]}` replaces the
        command's overrides in the guild (the @everyone role's id is the guild's)."""
        guild = guild_by_id(self._state, request.match_info["guild_id"])
        name = request.match_info["command"]
        command = next((c for c in guild.commands if name in (c["name"], str(c["id"]))), None)
        if command is None:
            raise ControlError(404, f"no guild command {name!r}")
        given = (await body_of(request)).get("permissions")
        if not isinstance(given, list) or len(given) > MAX_OVERRIDES:
            raise ControlError(400, f"permissions must be a list of at most {MAX_OVERRIDES}")
        overrides: list[dict[str, Any]] = []
        for entry in given:
            kind = int(entry.get("type", 0)) if isinstance(entry, dict) else 0
            if kind not in (ROLE_TARGET, USER_TARGET) or not isinstance(
                entry.get("permission"), bool
            ):
                raise ControlError(
                    400, "each override is {id, type: 1 role | 2 user, permission: bool}"
                )
            overrides.append(
                {
                    "id": str(sid(entry.get("id"), "id")),
                    "type": kind,
                    "permission": entry["permission"],
                }
            )
        guild.command_permissions[str(command["id"])] = overrides
        return json_response({"id": str(command["id"]), "permissions": overrides})
