"""Control of guilds: the bot's identity, creating a guild, and a guild's whole state."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord import permissions as perm
from sandbox.discord.actions import Actions
from sandbox.discord.control.parsing import ControlError, body_of, guild_by_id
from sandbox.discord.responses import json_response
from sandbox.discord.state import SandboxState


class GuildControl:
    """GET /_sandbox/info, POST /_sandbox/guilds, GET /_sandbox/guilds/{gid}."""

    def __init__(self, state: SandboxState, actions: Actions) -> None:
        self._state = state
        self._actions = actions

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [
            web.get("/info", self.info),
            web.post("/guilds", self.create_guild),
            web.get("/guilds/{guild_id}", self.get_guild),
        ]

    async def info(self, request: web.Request) -> web.Response:
        """The bot this sandbox serves."""
        bot = self._state.bot
        return json_response(
            {
                "bot_user_id": str(bot.id),
                "application_id": str(bot.id),
                "bot_username": bot.username,
                "guild_ids": [str(g) for g in self._state.guilds],
            }
        )

    async def create_guild(self, request: web.Request) -> web.Response:
        """POST /_sandbox/guilds {"name", "bot_permissions"?, "owner_username"?}."""
        body = await body_of(request)
        name = body.get("name")
        if not isinstance(name, str) or not 2 <= len(name) <= 100:
            raise ControlError(400, "name must be 2 to 100 characters")
        guild = self._actions.create_guild(
            name,
            bot_permissions=int(body.get("bot_permissions", perm.DEFAULT_BOT)),
            owner_username=str(body.get("owner_username", "owner")),
        )
        general = next(iter(guild.channels.values()))
        return json_response(
            {
                "guild_id": str(guild.id),
                "everyone_role_id": str(guild.id),
                "bot_role_id": str(guild.bot_role_id),
                "bot_user_id": str(self._state.bot.id),
                "owner_id": str(guild.owner_id),
                "general_channel_id": str(general.id),
            },
            status=201,
        )

    async def get_guild(self, request: web.Request) -> web.Response:
        """GET /_sandbox/guilds/{gid}: channels with overwrites, voice states, members, roles."""
        guild = guild_by_id(self._state, request.match_info["guild_id"])
        users = self._state.users
        return json_response(
            {
                "id": str(guild.id),
                "name": guild.name,
                "owner_id": str(guild.owner_id),
                "channels": [
                    {
                        "id": str(c.id),
                        "name": c.name,
                        "type": c.type,
                        "parent_id": str(c.parent_id) if c.parent_id is not None else None,
                        "position": c.position,
                        "user_limit": c.user_limit,
                        "permission_overwrites": [payloads.overwrite(o) for o in c.overwrites],
                    }
                    for c in guild.channels.values()
                ],
                "voice_states": {str(u): str(c) for u, c in guild.voice_states.items()},
                "members": [
                    {
                        "user_id": str(m.user_id),
                        "username": users[m.user_id].username,
                        "bot": users[m.user_id].bot,
                        "nick": m.nick,
                        "roles": [str(r) for r in m.role_ids],
                        "mute": m.mute,
                        "deaf": m.deaf,
                    }
                    for m in guild.members.values()
                ],
                "roles": [
                    {
                        "id": str(r.id),
                        "name": r.name,
                        "permissions": str(r.permissions),
                        "position": r.position,
                        "managed": r.managed,
                    }
                    for r in guild.roles.values()
                ],
                "commands": guild.commands,
            }
        )
