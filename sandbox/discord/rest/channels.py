"""Guild channels: list, create, read, edit, delete, and their permission overwrites."""

from __future__ import annotations

import logging

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord import permissions as perm
from sandbox.discord.actions import Actions
from sandbox.discord.config import SandboxConfig
from sandbox.discord.parsers import check_name, parse_overwrites, read_object, snowflake
from sandbox.discord.permissions import Overwrite
from sandbox.discord.responses import (
    DiscordError,
    invalid_form,
    json_response,
    missing_permissions,
)
from sandbox.discord.rest.lookups import bot_base, bot_in, guild_of, visible_channel
from sandbox.discord.state import CATEGORY, CREATABLE_TYPES, Channel, Guild, SandboxState

log = logging.getLogger(__name__)


class ChannelRoutes:
    """/guilds/{gid}/channels, /channels/{cid} and /channels/{cid}/permissions/{oid}."""

    def __init__(self, state: SandboxState, actions: Actions, config: SandboxConfig) -> None:
        self._state = state
        self._actions = actions
        self._config = config

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the API prefix."""
        overwrite = "/channels/{channel_id}/permissions/{overwrite_id}"
        return [
            web.get("/guilds/{guild_id}/channels", self.get_guild_channels),
            web.post("/guilds/{guild_id}/channels", self.create_channel),
            web.get("/channels/{channel_id}", self.get_channel),
            web.patch("/channels/{channel_id}", self.edit_channel),
            web.delete("/channels/{channel_id}", self.delete_channel),
            web.put(overwrite, self.put_overwrite),
            web.delete(overwrite, self.delete_overwrite),
        ]

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}/channels."""
        guild = guild_of(self._state, request)
        return json_response([payloads.channel(c) for c in guild.channels.values()])

    async def create_channel(self, request: web.Request) -> web.Response:
        """POST /guilds/{gid}/channels: MANAGE_CHANNELS, limits, overwrite rules; CHANNEL_CREATE."""
        guild = guild_of(self._state, request)
        body = await read_object(request)
        name = check_name(body, required=True)
        assert name is not None
        channel_type = body.get("type") if body.get("type") is not None else 0
        if channel_type not in CREATABLE_TYPES:
            raise invalid_form(
                "type", "BASE_TYPE_CHOICES", "Value must be one of (0, 2, 4, 5, 13)."
            )
        parent_id = (
            snowflake(body["parent_id"], "parent_id") if body.get("parent_id") is not None else None
        )
        if parent_id is not None and channel_type == CATEGORY:
            raise invalid_form(
                "parent_id", "CHANNEL_PARENT_INVALID", "Categories cannot have subcategories"
            )
        parent = self._check_parent(guild, parent_id, moving=None)
        context = bot_in(self._state, guild, parent) if parent else bot_base(self._state, guild)
        if not context & perm.MANAGE_CHANNELS:
            raise missing_permissions()
        if len(guild.channels) >= self._config.max_channels_per_guild:
            raise DiscordError(
                400,
                30013,
                f"Maximum number of guild channels reached ({self._config.max_channels_per_guild})",
            )
        if body.get("permission_overwrites") is not None:
            overwrites = parse_overwrites(body["permission_overwrites"])
            self._check_new_overwrites(guild, overwrites)
        elif parent is not None:
            overwrites = [Overwrite(o.id, o.type, o.allow, o.deny) for o in parent.overwrites]
        else:
            overwrites = []
        channel = self._actions.create_channel(
            guild,
            name=name,
            type=channel_type,
            parent_id=parent_id,
            overwrites=overwrites,
            user_limit=int(body.get("user_limit") or 0),
            bitrate=int(body.get("bitrate") or 64000),
            topic=body.get("topic"),
        )
        log.info("channel %s (%s) created in guild %s", channel.id, name, guild.id)
        return json_response(payloads.channel(channel), status=201)

    async def get_channel(self, request: web.Request) -> web.Response:
        """GET /channels/{cid} (403 50001 when the bot cannot see it)."""
        _, channel = visible_channel(self._state, request)
        return json_response(payloads.channel(channel))

    async def edit_channel(self, request: web.Request) -> web.Response:
        """PATCH /channels/{cid}: MANAGE_CHANNELS on the channel itself; CHANNEL_UPDATE."""
        guild, channel = visible_channel(self._state, request)
        body = await read_object(request)
        in_channel = bot_in(self._state, guild, channel)
        if not in_channel & perm.MANAGE_CHANNELS:
            raise missing_permissions()
        name = check_name(body, required=False)
        overwrites = None
        if body.get("permission_overwrites") is not None:
            if not in_channel & perm.MANAGE_ROLES:
                raise missing_permissions()
            overwrites = parse_overwrites(body["permission_overwrites"])
            self._check_overwrite_edits(guild, channel, overwrites)
        if "parent_id" in body:
            parent_id = (
                snowflake(body["parent_id"], "parent_id") if body["parent_id"] is not None else None
            )
            self._check_parent(guild, parent_id, moving=channel)
            channel.parent_id = parent_id
        if name is not None:
            channel.name = name
        if overwrites is not None:
            channel.overwrites = overwrites
        for key in ("user_limit", "bitrate", "position"):
            if body.get(key) is not None:
                setattr(channel, key, int(body[key]))
        if "topic" in body:
            channel.topic = body["topic"]
        self._actions.channel_updated(channel)
        return json_response(payloads.channel(channel))

    async def delete_channel(self, request: web.Request) -> web.Response:
        """DELETE /channels/{cid}: MANAGE_CHANNELS on the channel; occupants disconnected."""
        guild, channel = visible_channel(self._state, request)
        if not bot_in(self._state, guild, channel) & perm.MANAGE_CHANNELS:
            raise missing_permissions()
        self._actions.delete_channel(channel)
        log.info("channel %s deleted from guild %s", channel.id, guild.id)
        return json_response(payloads.channel(channel))

    async def put_overwrite(self, request: web.Request) -> web.Response:
        """PUT /channels/{cid}/permissions/{oid}: needs MANAGE_ROLES there; 204."""
        guild, channel = visible_channel(self._state, request)
        body = await read_object(request)
        if not bot_in(self._state, guild, channel) & perm.MANAGE_ROLES:
            raise missing_permissions()
        target = snowflake(request.match_info["overwrite_id"], "overwrite_id")
        new = parse_overwrites([{**body, "id": target}])[0]
        self._check_overwrite_edits(guild, channel, [new])
        channel.overwrites = [o for o in channel.overwrites if o.id != target] + [new]
        self._actions.channel_updated(channel)
        return web.Response(status=204)

    async def delete_overwrite(self, request: web.Request) -> web.Response:
        """DELETE /channels/{cid}/permissions/{oid}: needs MANAGE_ROLES there; 204."""
        guild, channel = visible_channel(self._state, request)
        if not bot_in(self._state, guild, channel) & perm.MANAGE_ROLES:
            raise missing_permissions()
        target = snowflake(request.match_info["overwrite_id"], "overwrite_id")
        channel.overwrites = [o for o in channel.overwrites if o.id != target]
        self._actions.channel_updated(channel)
        return web.Response(status=204)

    def _check_parent(
        self, guild: Guild, parent_id: int | None, *, moving: Channel | None
    ) -> Channel | None:
        if parent_id is None:
            return None
        parent = guild.channels.get(parent_id)
        if parent is None or parent.type != CATEGORY:
            raise invalid_form("parent_id", "CHANNEL_PARENT_INVALID", "Not a category")
        if moving is not None and moving.type == CATEGORY:
            raise invalid_form(
                "parent_id", "CHANNEL_PARENT_INVALID", "Categories cannot have subcategories"
            )
        others = [c for c in guild.children(parent.id) if moving is None or c.id != moving.id]
        if len(others) >= self._config.max_channels_per_category:
            raise invalid_form(
                "parent_id",
                "CHANNEL_PARENT_MAX_CHANNELS",
                "Maximum number of channels in category reached "
                f"({self._config.max_channels_per_category})",
            )
        return parent

    def _check_new_overwrites(self, guild: Guild, overwrites: list[Overwrite]) -> None:
        """Create Guild Channel: only what the bot has in the guild; MANAGE_ROLES: admins only."""
        base = bot_base(self._state, guild)
        if base == perm.ALL:
            return
        for ow in overwrites:
            touched = ow.allow | ow.deny
            if touched & perm.MANAGE_ROLES or touched & ~base:
                raise missing_permissions()

    def _check_overwrite_edits(
        self, guild: Guild, channel: Channel, overwrites: list[Overwrite]
    ) -> None:
        """Edit Channel Permissions: only what the bot has in the guild or the parent channel,
        unless the bot has a MANAGE_ROLES overwrite in the channel."""
        allowed = bot_base(self._state, guild)
        parent = guild.channels.get(channel.parent_id) if channel.parent_id else None
        if parent is not None:
            allowed |= bot_in(self._state, guild, parent)
        if allowed == perm.ALL or self._has_manage_roles_overwrite(guild, channel):
            return
        unchanged = {(o.id, o.type, o.allow, o.deny) for o in channel.overwrites}
        for ow in overwrites:
            if (ow.id, ow.type, ow.allow, ow.deny) in unchanged:
                continue
            if (ow.allow | ow.deny) & ~allowed:
                raise missing_permissions()

    def _has_manage_roles_overwrite(self, guild: Guild, channel: Channel) -> bool:
        bot_id = self._state.bot.id
        targets = {(perm.MEMBER_OVERWRITE, bot_id)} | {
            (perm.ROLE_OVERWRITE, r) for r in [guild.id, *guild.members[bot_id].role_ids]
        }
        return any(
            (o.type, o.id) in targets and o.allow & perm.MANAGE_ROLES for o in channel.overwrites
        )
