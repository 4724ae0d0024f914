"""Application commands: the bot's global and per-guild slash commands (bulk overwrite)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.discord.parsers import read_json, snowflake
from sandbox.discord.responses import DiscordError, invalid_form, json_response, missing_access
from sandbox.discord.state import Guild, SandboxState


class CommandRoutes:
    """GET and PUT /applications/{id}/commands and /applications/{id}/guilds/{gid}/commands."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the API prefix."""
        return [
            web.get("/applications/{application_id}/commands", self.get_global_commands),
            web.put("/applications/{application_id}/commands", self.put_global_commands),
            web.get(
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self.get_guild_commands,
            ),
            web.put(
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self.put_guild_commands,
            ),
        ]

    async def get_global_commands(self, request: web.Request) -> web.Response:
        """GET /applications/{id}/commands."""
        self._check_app(request)
        return json_response(self._state.global_commands)

    async def put_global_commands(self, request: web.Request) -> web.Response:
        """PUT /applications/{id}/commands: bulk overwrite (replies with `type` and `id`)."""
        self._check_app(request)
        body = await read_json(request)
        self._state.global_commands = self._register(self._state.global_commands, body, None)
        return json_response(self._state.global_commands)

    async def get_guild_commands(self, request: web.Request) -> web.Response:
        """GET /applications/{id}/guilds/{gid}/commands."""
        self._check_app(request)
        return json_response(self._guild(request).commands)

    async def put_guild_commands(self, request: web.Request) -> web.Response:
        """PUT /applications/{id}/guilds/{gid}/commands: bulk overwrite for one guild."""
        self._check_app(request)
        guild = self._guild(request)
        body = await read_json(request)
        guild.commands = self._register(guild.commands, body, guild.id)
        return json_response(guild.commands)

    def _check_app(self, request: web.Request) -> None:
        app_id = snowflake(request.match_info["application_id"], "application_id")
        if app_id != self._state.bot.id:
            raise DiscordError(
                403, 20012, "You are not authorized to perform this action on this application"
            )

    def _guild(self, request: web.Request) -> Guild:
        """The guild of `{guild_id}`; one the bot is not in answers 50001, not 10004."""
        guild = self._state.guilds.get(snowflake(request.match_info["guild_id"], "guild_id"))
        if guild is None:
            raise missing_access()
        return guild

    def _register(
        self, existing: list[dict[str, Any]], body: Any, guild_id: int | None
    ) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise invalid_form("_root", "BASE_TYPE_LIST", "Must be a list.")
        old_ids = {(c["name"], c["type"]): c["id"] for c in existing}
        registered = []
        for index, cmd in enumerate(body):
            name = cmd.get("name") if isinstance(cmd, dict) else None
            if not isinstance(name, str) or not 1 <= len(name) <= 32:
                raise invalid_form(
                    f"{index}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
                )
            assert isinstance(cmd, dict)
            cmd_type = int(cmd.get("type") or 1)
            command = {
                **cmd,
                "id": old_ids.get((name, cmd_type)) or str(self._state.new_id()),
                "application_id": str(self._state.bot.id),
                "version": str(self._state.new_id()),
                "type": cmd_type,
                "description": cmd.get("description", ""),
                "options": cmd.get("options") or [],
                "default_member_permissions": cmd.get("default_member_permissions"),
                "nsfw": bool(cmd.get("nsfw", False)),
            }
            if guild_id is not None:
                command["guild_id"] = str(guild_id)
            registered.append(command)
        return registered
