"""Guild members: list and read them; edit one (voice move or disconnect, mute, nick, roles)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord import permissions as perm
from sandbox.discord.actions import Actions
from sandbox.discord.event_order import EventOrder
from sandbox.discord.parsers import read_object, snowflake
from sandbox.discord.responses import (
    DiscordError,
    invalid_form,
    json_response,
    missing_permissions,
    unknown,
)
from sandbox.discord.rest.lookups import bot_base, bot_in, guild_of, member_of
from sandbox.discord.state import Channel, Guild, SandboxState


class MemberRoutes:
    """GET /guilds/{gid}/members, GET and PATCH /guilds/{gid}/members/{uid}."""

    def __init__(self, state: SandboxState, actions: Actions, order: EventOrder) -> None:
        self._state = state
        self._actions = actions
        self._order = order

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the API prefix."""
        return [
            web.get("/guilds/{guild_id}/members", self.list_members),
            web.get("/guilds/{guild_id}/members/{user_id}", self.get_member),
            web.patch("/guilds/{guild_id}/members/{user_id}", self.edit_member),
        ]

    async def list_members(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}/members?limit=&after= (sorted by user id)."""
        guild = guild_of(self._state, request)
        limit = int(request.query.get("limit", "1"))
        if not 1 <= limit <= 1000:
            raise invalid_form(
                "limit", "NUMBER_TYPE_MAX", "int value should be between 1 and 1000."
            )
        after = int(request.query.get("after", "0"))
        members = sorted(
            (m for m in guild.members.values() if m.user_id > after), key=lambda m: m.user_id
        )
        return json_response([payloads.member(self._state, m) for m in members[:limit]])

    async def get_member(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}/members/{uid} (no voice state, as on Discord)."""
        guild = guild_of(self._state, request)
        return json_response(payloads.member(self._state, member_of(guild, request)))

    async def edit_member(self, request: web.Request) -> web.Response:
        """PATCH /guilds/{gid}/members/{uid}: move/disconnect, mute, deafen, nick, roles."""
        guild = guild_of(self._state, request)
        member = member_of(guild, request)
        body = await read_object(request)
        base = bot_base(self._state, guild)
        current = guild.voice_states.get(member.user_id)
        move = "channel_id" in body
        target: Channel | None = None
        if (move or "mute" in body or "deaf" in body) and current is None:
            raise DiscordError(400, 40032, "Target user is not connected to voice.")
        if move:
            source = guild.channels[current] if current is not None else None
            if source is not None and not bot_in(self._state, guild, source) & perm.MOVE_MEMBERS:
                raise missing_permissions()
            if body["channel_id"] is not None:
                target = self._move_target(guild, body["channel_id"])
        if "mute" in body and not base & perm.MUTE_MEMBERS:
            raise missing_permissions()
        if "deaf" in body and not base & perm.DEAFEN_MEMBERS:
            raise missing_permissions()
        if "nick" in body and not base & perm.MANAGE_NICKNAMES:
            raise missing_permissions()
        role_ids = self._check_roles(guild, body) if "roles" in body else None
        if "mute" in body:
            member.mute = bool(body["mute"])
        if "deaf" in body:
            member.deaf = bool(body["deaf"])
        if "nick" in body:
            member.nick = body["nick"] or None
        if role_ids is not None:
            member.role_ids = role_ids
        if move:
            self._actions.set_voice(guild, member.user_id, target.id if target else None)
        elif "mute" in body or "deaf" in body:
            self._actions.set_voice(guild, member.user_id, current)
        self._actions.member_updated(guild, member)
        return json_response(payloads.member(self._state, member))

    def _move_target(self, guild: Guild, value: Any) -> Channel:
        """A voice channel the bot may move members to (10003 while its CHANNEL_CREATE is held)."""
        target_id = snowflake(value, "channel_id")
        target = guild.channels.get(target_id)
        if target is None or self._order.hidden(target_id):
            raise unknown("Channel", 10003)
        if not target.is_voice:
            raise invalid_form("channel_id", "CHANNEL_TYPE_INVALID", "Not a voice channel")
        if not perm.has(bot_in(self._state, guild, target), perm.MOVE_MEMBERS | perm.CONNECT):
            raise missing_permissions()
        return target

    def _check_roles(self, guild: Guild, body: dict[str, Any]) -> list[int]:
        base = bot_base(self._state, guild)
        if not base & perm.MANAGE_ROLES:
            raise missing_permissions()
        if not isinstance(body["roles"], list):
            raise invalid_form("roles", "BASE_TYPE_LIST", "Must be a list.")
        role_ids = [snowflake(r, "roles") for r in body["roles"]]
        bot_top = max(
            (guild.roles[r].position for r in guild.members[self._state.bot.id].role_ids), default=0
        )
        for role_id in role_ids:
            role = guild.roles.get(role_id)
            if role is None:
                raise unknown("Role", 10011)
            if base != perm.ALL and (role.managed or role.position >= bot_top):
                raise missing_permissions()
        return role_ids
