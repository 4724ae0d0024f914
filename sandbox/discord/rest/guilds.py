"""Guilds as the bot reads them: the guild itself and its roles."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.responses import json_response
from sandbox.discord.rest.lookups import guild_of
from sandbox.discord.state import SandboxState


class GuildRoutes:
    """GET /guilds/{gid} and /guilds/{gid}/roles."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the API prefix."""
        return [
            web.get("/guilds/{guild_id}", self.get_guild),
            web.get("/guilds/{guild_id}/roles", self.get_roles),
        ]

    async def get_guild(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}."""
        guild = guild_of(self._state, request)
        data = payloads.guild(guild)
        if request.query.get("with_counts", "").lower() == "true":
            data.update(approximate_member_count=len(guild.members), approximate_presence_count=0)
        return json_response(data)

    async def get_roles(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}/roles."""
        guild = guild_of(self._state, request)
        return json_response([payloads.role(r) for r in guild.roles.values()])
