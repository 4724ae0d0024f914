"""Discord REST API v10 routes that py-cord 2.8 uses, with Discord's rules and error codes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord import permissions as perm
from sandbox.discord.actions import Actions
from sandbox.discord.config import SandboxConfig
from sandbox.discord.event_order import EventOrder
from sandbox.discord.parsers import (
    check_name,
    parse_overwrites,
    read_json,
    read_object,
    read_payload,
    snowflake,
)
from sandbox.discord.permissions import Overwrite
from sandbox.discord.responses import (
    DiscordError,
    invalid_form,
    json_response,
    missing_access,
    missing_permissions,
    unknown,
)
from sandbox.discord.state import (
    CATEGORY,
    CREATABLE_TYPES,
    Channel,
    Guild,
    Interaction,
    Member,
    SandboxState,
    now_iso,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
EPHEMERAL = 1 << 6
LOADING = 1 << 7
"""The flag of a deferred response's "thinking" message until it is edited."""
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE = 6
UPDATE_MESSAGE = 7


class RestApi:
    """The REST handlers; the rate-limit/auth/audit middleware sits in front of them."""

    def __init__(
        self,
        *,
        state: SandboxState,
        actions: Actions,
        config: SandboxConfig,
        order: EventOrder,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._actions = actions
        self._config = config
        self._order = order
        self._clock = clock

    def routes(self) -> list[web.RouteDef]:
        """Every REST route under /api/v10."""
        p = API_PREFIX
        return [
            web.get(p + "/users/@me", self.get_me),
            web.get(p + "/gateway", self.get_gateway),
            web.get(p + "/gateway/bot", self.get_gateway_bot),
            web.get(p + "/soundboard-default-sounds", self.get_default_sounds),
            web.get(p + "/applications/{application_id}/commands", self.get_global_commands),
            web.put(p + "/applications/{application_id}/commands", self.put_global_commands),
            web.get(
                p + "/applications/{application_id}/guilds/{guild_id}/commands",
                self.get_guild_commands,
            ),
            web.put(
                p + "/applications/{application_id}/guilds/{guild_id}/commands",
                self.put_guild_commands,
            ),
            web.post(
                p + "/interactions/{interaction_id}/{interaction_token}/callback",
                self.interaction_callback,
            ),
            web.post(p + "/webhooks/{webhook_id}/{webhook_token}", self.execute_webhook),
            web.get(
                p + "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.get_webhook_message,
            ),
            web.patch(
                p + "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.edit_webhook_message,
            ),
            web.delete(
                p + "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.delete_webhook_message,
            ),
            web.get(p + "/guilds/{guild_id}", self.get_guild),
            web.get(p + "/guilds/{guild_id}/roles", self.get_roles),
            web.get(p + "/guilds/{guild_id}/channels", self.get_guild_channels),
            web.post(p + "/guilds/{guild_id}/channels", self.create_channel),
            web.get(p + "/guilds/{guild_id}/members", self.list_members),
            web.get(p + "/guilds/{guild_id}/members/{user_id}", self.get_member),
            web.patch(p + "/guilds/{guild_id}/members/{user_id}", self.edit_member),
            web.get(p + "/channels/{channel_id}", self.get_channel),
            web.patch(p + "/channels/{channel_id}", self.edit_channel),
            web.delete(p + "/channels/{channel_id}", self.delete_channel),
            web.put(p + "/channels/{channel_id}/permissions/{overwrite_id}", self.put_overwrite),
            web.delete(
                p + "/channels/{channel_id}/permissions/{overwrite_id}", self.delete_overwrite
            ),
        ]

    # --- lookups -------------------------------------------------------------------------

    def _guild(self, request: web.Request) -> Guild:
        guild_id = snowflake(request.match_info["guild_id"], "guild_id")
        guild = self._state.guilds.get(guild_id)
        if guild is None:
            raise unknown("Guild", 10004)
        return guild

    def _channel(self, request: web.Request) -> tuple[Guild, Channel]:
        channel_id = snowflake(request.match_info["channel_id"], "channel_id")
        channel = self._state.channel(channel_id)
        if channel is None:
            raise unknown("Channel", 10003)
        guild = self._state.guilds[channel.guild_id]
        if not self._bot_in(guild, channel) & perm.VIEW_CHANNEL:
            raise missing_access()
        return guild, channel

    def _member(self, guild: Guild, request: web.Request) -> Member:
        user_id = snowflake(request.match_info["user_id"], "user_id")
        member = guild.members.get(user_id)
        if member is None:
            raise unknown("Member", 10007)
        return member

    def _bot_base(self, guild: Guild) -> int:
        return guild.base_permissions(self._state.bot.id)

    def _bot_in(self, guild: Guild, channel: Channel) -> int:
        return guild.channel_permissions(self._state.bot.id, channel)

    def _check_app(self, request: web.Request) -> None:
        app_id = snowflake(request.match_info["application_id"], "application_id")
        if app_id != self._state.bot.id:
            raise DiscordError(
                403, 20012, "You are not authorized to perform this action on this application"
            )

    # --- identity, gateway, misc ---------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        """GET /users/@me: the bot user."""
        data = payloads.user(self._state.bot)
        data.update(verified=True, mfa_enabled=False, locale="en-US", email=None)
        return json_response(data)

    async def get_gateway(self, request: web.Request) -> web.Response:
        """GET /gateway: where the WebSocket is."""
        return json_response({"url": f"ws://{request.host}/gateway"})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        """GET /gateway/bot: the URL plus shard and session-start information."""
        return json_response(
            {
                "url": f"ws://{request.host}/gateway",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def get_default_sounds(self, request: web.Request) -> web.Response:
        """GET /soundboard-default-sounds: none (py-cord waits for this before on_ready)."""
        return json_response([])

    # --- application commands ------------------------------------------------------------

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
        return json_response(self._guild_for_commands(request).commands)

    async def put_guild_commands(self, request: web.Request) -> web.Response:
        """PUT /applications/{id}/guilds/{gid}/commands: bulk overwrite for one guild."""
        self._check_app(request)
        guild = self._guild_for_commands(request)
        body = await read_json(request)
        guild.commands = self._register(guild.commands, body, guild.id)
        return json_response(guild.commands)

    def _guild_for_commands(self, request: web.Request) -> Guild:
        guild_id = snowflake(request.match_info["guild_id"], "guild_id")
        guild = self._state.guilds.get(guild_id)
        if guild is None:
            raise missing_access()
        return guild

    # --- interactions and webhooks -------------------------------------------------------

    def _interaction(self, interaction_id: int, token: str) -> Interaction:
        interaction = self._state.interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise unknown("interaction", 10062)
        return interaction

    async def interaction_callback(self, request: web.Request) -> web.Response:
        """POST /interactions/{id}/{token}/callback: the first response, within 3 s."""
        interaction = self._interaction(
            snowflake(request.match_info["interaction_id"], "interaction_id"),
            request.match_info["interaction_token"],
        )
        body = await read_payload(request)
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if self._clock() - interaction.created_at > self._config.interaction_ack_timeout:
            raise unknown("interaction", 10062)
        response_type = body.get("type")
        if response_type not in (
            CHANNEL_MESSAGE,
            DEFERRED_CHANNEL_MESSAGE,
            DEFERRED_UPDATE,
            UPDATE_MESSAGE,
        ):
            raise invalid_form("type", "BASE_TYPE_CHOICES", "Value must be one of (4, 5, 6, 7).")
        data = body.get("data") or {}
        interaction.acknowledged = True
        interaction.ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        message_id = self._state.new_id()
        if response_type == CHANNEL_MESSAGE:
            self._add_message(interaction, data, message_id)
        else:
            interaction.deferred = True
        if response_type == DEFERRED_CHANNEL_MESSAGE:
            self._add_placeholder(interaction, message_id)
        log.info("interaction %s acknowledged with type %s", interaction.id, response_type)
        if request.query.get("with_response", "").lower() != "true":
            return web.Response(status=204)
        return json_response(
            {
                "interaction": {
                    "id": str(interaction.id),
                    "type": 2,
                    "response_message_id": str(message_id),
                    "response_message_loading": response_type == DEFERRED_CHANNEL_MESSAGE,
                    "response_message_ephemeral": interaction.ephemeral,
                },
                "resource": {"type": response_type},
            }
        )

    def _add_message(
        self, interaction: Interaction, data: dict[str, Any], message_id: int
    ) -> dict[str, Any]:
        message = payloads.message(
            self._state,
            message_id=message_id,
            channel_id=interaction.channel_id,
            body=data,
            application_id=self._state.bot.id,
            interaction_id=interaction.id,
        )
        interaction.messages.append(message)
        self._complete(interaction, message)
        return message

    def _complete(self, interaction: Interaction, message: dict[str, Any]) -> None:
        """The first final message is the reply `POST /_sandbox/interactions` waits for."""
        if not interaction.reply.done():
            interaction.reply.set_result(
                {
                    "content": message["content"],
                    "embeds": message["embeds"],
                    "ephemeral": bool(message["flags"] & EPHEMERAL),
                    "deferred": interaction.deferred,
                    "message_id": message["id"],
                    "interaction_id": str(interaction.id),
                }
            )

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        webhook_id = snowflake(request.match_info["webhook_id"], "webhook_id")
        interaction = self._state.interaction_by_token(request.match_info["webhook_token"])
        if webhook_id != self._state.bot.id or interaction is None or not interaction.acknowledged:
            raise unknown("Webhook", 10015)
        if self._clock() - interaction.created_at > self._config.interaction_token_lifetime:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return interaction

    async def execute_webhook(self, request: web.Request) -> web.Response:
        """POST /webhooks/{app}/{token}: an interaction follow-up.

        The first one after a deferred response edits the "thinking" message and keeps its
        flags, ignoring its own (Discord's "Followup Messages"); later ones are new messages.
        """
        interaction = self._webhook_interaction(request)
        body = await read_payload(request)
        if not (body.get("content") or body.get("embeds") or body.get("components")):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        thinking = interaction.messages[0] if interaction.messages else None
        if thinking is not None and thinking["flags"] & LOADING:
            message = self._edit_message(interaction, thinking, body)
        else:
            message = self._add_message(interaction, body, self._state.new_id())
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(message)
        return web.Response(status=204)

    def _webhook_message(self, interaction: Interaction, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            if interaction.messages:
                return interaction.messages[0]
            if interaction.deferred:
                return self._add_placeholder(interaction, self._state.new_id())
        for message in interaction.messages:
            if message["id"] == message_id:
                return message
        raise unknown("Message", 10008)

    def _add_placeholder(self, interaction: Interaction, message_id: int) -> dict[str, Any]:
        """The "thinking..." message a deferred response shows until it is edited."""
        message = payloads.message(
            self._state,
            message_id=message_id,
            channel_id=interaction.channel_id,
            body={"flags": EPHEMERAL if interaction.ephemeral else 0},
            application_id=self._state.bot.id,
            interaction_id=interaction.id,
        )
        message["flags"] |= LOADING
        interaction.messages.insert(0, message)
        return message

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        """GET /webhooks/{app}/{token}/messages/{id|@original}."""
        interaction = self._webhook_interaction(request)
        return json_response(self._webhook_message(interaction, request.match_info["message_id"]))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        """PATCH /webhooks/{app}/{token}/messages/{id|@original}: edits (and completes a defer)."""
        interaction = self._webhook_interaction(request)
        body = await read_payload(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        return json_response(self._edit_message(interaction, message, body))

    def _edit_message(
        self, interaction: Interaction, message: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit content, embeds and components; the flags stay (an edit cannot change them)."""
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = now_iso()
        self._complete(interaction, message)
        return message

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        """DELETE /webhooks/{app}/{token}/messages/{id|@original}."""
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        interaction.messages.remove(message)
        return web.Response(status=204)

    # --- guilds and channels -------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}."""
        guild = self._guild(request)
        data = payloads.guild(guild)
        if request.query.get("with_counts", "").lower() == "true":
            data.update(approximate_member_count=len(guild.members), approximate_presence_count=0)
        return json_response(data)

    async def get_roles(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}/roles."""
        guild = self._guild(request)
        return json_response([payloads.role(r) for r in guild.roles.values()])

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}/channels."""
        guild = self._guild(request)
        return json_response([payloads.channel(c) for c in guild.channels.values()])

    def _check_new_overwrites(self, guild: Guild, overwrites: list[Overwrite]) -> None:
        """Create Guild Channel: only what the bot has in the guild; MANAGE_ROLES: admins only."""
        base = self._bot_base(guild)
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
        allowed = self._bot_base(guild)
        parent = guild.channels.get(channel.parent_id) if channel.parent_id else None
        if parent is not None:
            allowed |= self._bot_in(guild, parent)
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

    async def create_channel(self, request: web.Request) -> web.Response:
        """POST /guilds/{gid}/channels: MANAGE_CHANNELS, limits, overwrite rules; CHANNEL_CREATE."""
        guild = self._guild(request)
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
        context = self._bot_in(guild, parent) if parent else self._bot_base(guild)
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
        _, channel = self._channel(request)
        return json_response(payloads.channel(channel))

    async def edit_channel(self, request: web.Request) -> web.Response:
        """PATCH /channels/{cid}: MANAGE_CHANNELS on the channel itself; CHANNEL_UPDATE."""
        guild, channel = self._channel(request)
        body = await read_object(request)
        in_channel = self._bot_in(guild, channel)
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
        guild, channel = self._channel(request)
        if not self._bot_in(guild, channel) & perm.MANAGE_CHANNELS:
            raise missing_permissions()
        self._actions.delete_channel(channel)
        log.info("channel %s deleted from guild %s", channel.id, guild.id)
        return json_response(payloads.channel(channel))

    async def put_overwrite(self, request: web.Request) -> web.Response:
        """PUT /channels/{cid}/permissions/{oid}: needs MANAGE_ROLES there; 204."""
        guild, channel = self._channel(request)
        body = await read_object(request)
        in_channel = self._bot_in(guild, channel)
        if not in_channel & perm.MANAGE_ROLES:
            raise missing_permissions()
        target = snowflake(request.match_info["overwrite_id"], "overwrite_id")
        new = parse_overwrites([{**body, "id": target}])[0]
        self._check_overwrite_edits(guild, channel, [new])
        channel.overwrites = [o for o in channel.overwrites if o.id != target] + [new]
        self._actions.channel_updated(channel)
        return web.Response(status=204)

    async def delete_overwrite(self, request: web.Request) -> web.Response:
        """DELETE /channels/{cid}/permissions/{oid}: needs MANAGE_ROLES there; 204."""
        guild, channel = self._channel(request)
        if not self._bot_in(guild, channel) & perm.MANAGE_ROLES:
            raise missing_permissions()
        target = snowflake(request.match_info["overwrite_id"], "overwrite_id")
        channel.overwrites = [o for o in channel.overwrites if o.id != target]
        self._actions.channel_updated(channel)
        return web.Response(status=204)

    # --- members -------------------------------------------------------------------------

    async def list_members(self, request: web.Request) -> web.Response:
        """GET /guilds/{gid}/members?limit=&after= (sorted by user id)."""
        guild = self._guild(request)
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
        guild = self._guild(request)
        return json_response(payloads.member(self._state, self._member(guild, request)))

    async def edit_member(self, request: web.Request) -> web.Response:
        """PATCH /guilds/{gid}/members/{uid}: move/disconnect, mute, deafen, nick, roles."""
        guild = self._guild(request)
        member = self._member(guild, request)
        body = await read_object(request)
        base = self._bot_base(guild)
        current = guild.voice_states.get(member.user_id)
        move = "channel_id" in body
        target: Channel | None = None
        if (move or "mute" in body or "deaf" in body) and current is None:
            raise DiscordError(400, 40032, "Target user is not connected to voice.")
        if move:
            source = guild.channels[current] if current is not None else None
            if source is not None and not self._bot_in(guild, source) & perm.MOVE_MEMBERS:
                raise missing_permissions()
            if body["channel_id"] is not None:
                target_id = snowflake(body["channel_id"], "channel_id")
                target = guild.channels.get(target_id)
                if target is None or self._order.hidden(target_id):
                    raise unknown("Channel", 10003)
                if not target.is_voice:
                    raise invalid_form("channel_id", "CHANNEL_TYPE_INVALID", "Not a voice channel")
                if not perm.has(self._bot_in(guild, target), perm.MOVE_MEMBERS | perm.CONNECT):
                    raise missing_permissions()
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

    def _check_roles(self, guild: Guild, body: dict[str, Any]) -> list[int]:
        base = self._bot_base(guild)
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
