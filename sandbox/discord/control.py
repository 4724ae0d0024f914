"""The control API under /_sandbox/: build guilds, drive members, run commands, inject faults."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord import permissions as perm
from sandbox.discord.actions import Actions
from sandbox.discord.audit import AuditLog
from sandbox.discord.config import SandboxConfig
from sandbox.discord.faults import ErrorFault, FaultInjector, Latency
from sandbox.discord.gateway import Gateway
from sandbox.discord.parsers import parse_overwrites
from sandbox.discord.ratelimit import RateLimiter, RouteLimit
from sandbox.discord.responses import DiscordError, json_response
from sandbox.discord.rest import API_PREFIX
from sandbox.discord.state import CATEGORY, CREATABLE_TYPES, Channel, Guild, SandboxState

log = logging.getLogger(__name__)

PREFIX = "/_sandbox"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
USER, CHANNEL, ROLE, MENTIONABLE = 6, 7, 8, 9


class ControlError(Exception):
    """A control API failure: HTTP status and a message (plus a Discord code when relevant)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def sid(value: Any, field: str) -> int:
    """A snowflake given as string or int (400 otherwise)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{field} must be a snowflake, got {value!r}") from None


def normalise_route(route: str | None) -> str | None:
    """Route templates may be given with or without the /api/v10 prefix."""
    return route.removeprefix(API_PREFIX) if route else None


async def body_of(request: web.Request) -> dict[str, Any]:
    """The JSON object sent to a control route."""
    text = await request.text()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ControlError(400, "body is not JSON") from None
    if not isinstance(data, dict):
        raise ControlError(400, "body must be a JSON object")
    return data


class ControlApi:
    """Handlers for /_sandbox/ routes; everything they change goes through `Actions`."""

    def __init__(
        self,
        *,
        state: SandboxState,
        actions: Actions,
        gateway: Gateway,
        limiter: RateLimiter,
        faults: FaultInjector,
        audit: AuditLog,
        config: SandboxConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._actions = actions
        self._gateway = gateway
        self._limiter = limiter
        self._faults = faults
        self._audit = audit
        self._config = config
        self._clock = clock

    def routes(self) -> list[web.RouteDef]:
        """Every control route."""
        p = PREFIX
        return [
            web.get(p + "/info", self.info),
            web.post(p + "/guilds", self.create_guild),
            web.get(p + "/guilds/{guild_id}", self.get_guild),
            web.post(p + "/guilds/{guild_id}/members", self.add_member),
            web.post(p + "/guilds/{guild_id}/channels", self.create_channel),
            web.delete(p + "/channels/{channel_id}", self.delete_channel),
            web.get(p + "/channels/{channel_id}/access", self.channel_access),
            web.put(p + "/guilds/{guild_id}/voice/{user_id}", self.set_voice),
            web.post(p + "/guilds/{guild_id}/roles", self.create_role),
            web.patch(p + "/guilds/{guild_id}/roles/{role_id}", self.edit_role),
            web.put(p + "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.add_role),
            web.delete(
                p + "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.remove_role
            ),
            web.post(p + "/interactions", self.run_interaction),
            web.get(p + "/commands", self.list_commands),
            web.get(p + "/audit-log", self.get_audit_log),
            web.delete(p + "/audit-log", self.clear_audit_log),
            web.get(p + "/faults", self.get_faults),
            web.post(p + "/faults", self.add_fault),
            web.delete(p + "/faults", self.clear_faults),
            web.get(p + "/rate-limits", self.get_rate_limits),
            web.put(p + "/rate-limits", self.set_rate_limits),
            web.get(p + "/gateway", self.gateway_info),
            web.post(p + "/gateway/close", self.close_gateway),
            web.post(p + "/gateway/release", self.release_gateway),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Turn ControlError into `{"error": ...}` JSON answers for /_sandbox/ routes."""
        if not request.path.startswith(PREFIX + "/"):
            return await handler(request)
        try:
            return await handler(request)
        except ControlError as error:
            return json_response({"error": error.message, **error.extra}, status=error.status)
        except DiscordError as error:
            return json_response(
                {"error": error.message, "code": error.code, "errors": error.errors},
                status=error.status,
            )

    # --- lookups -------------------------------------------------------------------------

    def _guild(self, request: web.Request) -> Guild:
        guild = self._state.guilds.get(sid(request.match_info["guild_id"], "guild_id"))
        if guild is None:
            raise ControlError(404, "unknown guild")
        return guild

    def _channel(self, value: Any) -> Channel:
        channel = self._state.channel(sid(value, "channel_id"))
        if channel is None:
            raise ControlError(404, "unknown channel")
        return channel

    def _user_in(self, guild: Guild, value: Any) -> int:
        user_id = sid(value, "user_id")
        if user_id not in guild.members:
            raise ControlError(404, "unknown member")
        return user_id

    # --- guilds, members, channels, roles ------------------------------------------------

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
        guild = self._guild(request)
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

    async def add_member(self, request: web.Request) -> web.Response:
        """POST /_sandbox/guilds/{gid}/members {"username", "roles"?}."""
        guild = self._guild(request)
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

    async def create_channel(self, request: web.Request) -> web.Response:
        """POST /_sandbox/guilds/{gid}/channels {"name", "type", "parent_id"?, ...} (no checks)."""
        guild = self._guild(request)
        body = await body_of(request)
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise ControlError(400, "name must be 1 to 100 characters")
        channel_type = int(body.get("type", 0))
        if channel_type not in CREATABLE_TYPES:
            raise ControlError(400, "unsupported channel type")
        parent_id = None
        if body.get("parent_id") is not None:
            parent = self._channel(body["parent_id"])
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
        channel = self._channel(request.match_info["channel_id"])
        self._actions.delete_channel(channel)
        return json_response({"deleted": str(channel.id)})

    async def channel_access(self, request: web.Request) -> web.Response:
        """GET /_sandbox/channels/{cid}/access: who can view and who can connect."""
        channel = self._channel(request.match_info["channel_id"])
        guild = self._state.guilds[channel.guild_id]
        view, connect = [], []
        for user_id in guild.members:
            perms = guild.channel_permissions(user_id, channel)
            if perms & perm.VIEW_CHANNEL:
                view.append(str(user_id))
            if channel.is_voice and perm.has(perms, perm.VIEW_CHANNEL | perm.CONNECT):
                connect.append(str(user_id))
        return json_response({"channel_id": str(channel.id), "view": view, "connect": connect})

    async def set_voice(self, request: web.Request) -> web.Response:
        """PUT /_sandbox/guilds/{gid}/voice/{uid} {"channel_id": id|null, "force"?}."""
        guild = self._guild(request)
        user_id = self._user_in(guild, request.match_info["user_id"])
        body = await body_of(request)
        if "channel_id" not in body:
            raise ControlError(400, "channel_id is required (null to leave voice)")
        target = None
        if body["channel_id"] is not None:
            target = self._channel(body["channel_id"])
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

    async def create_role(self, request: web.Request) -> web.Response:
        """POST /_sandbox/guilds/{gid}/roles {"name", "permissions"}."""
        guild = self._guild(request)
        body = await body_of(request)
        role = self._actions.create_role(
            guild, str(body.get("name", "role")), int(body.get("permissions", 0))
        )
        return json_response({"role_id": str(role.id), "name": role.name}, status=201)

    async def edit_role(self, request: web.Request) -> web.Response:
        """PATCH /_sandbox/guilds/{gid}/roles/{rid} {"permissions"?, "name"?}."""
        guild = self._guild(request)
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
        guild = self._guild(request)
        member = guild.members[self._user_in(guild, request.match_info["user_id"])]
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

    # --- interactions --------------------------------------------------------------------

    def _find_command(self, guild: Guild, name: str) -> dict[str, Any]:
        for command in [*guild.commands, *self._state.global_commands]:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        raise ControlError(404, f"no slash command named {name!r} is registered")

    def _options(
        self, guild: Guild, command: dict[str, Any], given: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        declared = {o["name"]: o for o in command.get("options") or []}
        options: list[dict[str, Any]] = []
        resolved: dict[str, dict[str, Any]] = {}
        for name, spec in declared.items():
            if spec.get("required") and name not in given:
                raise ControlError(400, f"option {name!r} is required")
        for name, value in given.items():
            spec = declared.get(name)
            if spec is None:
                raise ControlError(400, f"command has no option {name!r}")
            option_type = int(spec.get("type", 3))
            options.append(
                {
                    "name": name,
                    "type": option_type,
                    "value": self._option_value(guild, option_type, value, resolved),
                }
            )
        return options, resolved

    def _option_value(
        self, guild: Guild, option_type: int, value: Any, resolved: dict[str, dict[str, Any]]
    ) -> Any:
        if option_type in (USER, MENTIONABLE) and sid(value, "option") in guild.members:
            member = guild.members[sid(value, "option")]
            resolved.setdefault("users", {})[str(member.user_id)] = payloads.user(
                self._state.users[member.user_id]
            )
            resolved.setdefault("members", {})[str(member.user_id)] = {
                **payloads.member(self._state, member, with_user=False),
                "permissions": str(guild.base_permissions(member.user_id)),
            }
            return str(member.user_id)
        if option_type in (ROLE, MENTIONABLE) and sid(value, "option") in guild.roles:
            role = guild.roles[sid(value, "option")]
            resolved.setdefault("roles", {})[str(role.id)] = payloads.role(role)
            return str(role.id)
        if option_type == CHANNEL:
            channel = self._channel(value)
            resolved.setdefault("channels", {})[str(channel.id)] = {
                "id": str(channel.id),
                "name": channel.name,
                "type": channel.type,
                "parent_id": str(channel.parent_id) if channel.parent_id else None,
                "permissions": str(guild.channel_permissions(self._state.bot.id, channel)),
            }
            return str(channel.id)
        if option_type in (USER, ROLE, MENTIONABLE):
            raise ControlError(404, f"unknown user or role {value!r}")
        return {4: int, 5: bool, 10: float}.get(option_type, str)(value)

    async def run_interaction(self, request: web.Request) -> web.Response:
        """POST /_sandbox/interactions: a member runs a slash command; returns the bot's reply."""
        body = await body_of(request)
        guild = self._state.guilds.get(sid(body.get("guild_id"), "guild_id"))
        if guild is None:
            raise ControlError(404, "unknown guild")
        user_id = self._user_in(guild, body.get("user_id"))
        command = self._find_command(guild, str(body.get("command", "")))
        if body.get("channel_id") is not None:
            channel = self._channel(body["channel_id"])
        else:
            channel = next(c for c in guild.channels.values() if c.type == 0)
        self._check_command_permissions(guild, user_id, channel, command)
        options, resolved = self._options(guild, command, dict(body.get("options") or {}))
        interaction = self._state.new_interaction(
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=user_id,
            command_name=command["name"],
            created_at=self._clock(),
        )
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": 1,
            "options": options,
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        member = guild.members[user_id]
        self._gateway.dispatch(
            "INTERACTION_CREATE",
            {
                "id": str(interaction.id),
                "application_id": str(self._state.bot.id),
                "type": 2,
                "token": interaction.token,
                "version": 1,
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
                "channel_id": str(channel.id),
                "channel": {
                    **payloads.channel(channel),
                    "permissions": str(guild.channel_permissions(user_id, channel)),
                },
                "member": {
                    **payloads.member(self._state, member),
                    "permissions": str(guild.channel_permissions(user_id, channel)),
                },
                "locale": "en-US",
                "guild_locale": "en-US",
                "app_permissions": str(guild.channel_permissions(self._state.bot.id, channel)),
                "entitlements": [],
                "authorizing_integration_owners": {"0": str(guild.id)},
                "context": 0,
                "attachment_size_limit": 26_214_400,
                "data": data,
            },
            intent=None,
        )
        timeout = float(body.get("timeout", self._config.reply_timeout))
        try:
            reply = await asyncio.wait_for(asyncio.shield(interaction.reply), timeout)
        except TimeoutError:
            raise ControlError(
                504,
                "the bot did not answer the interaction in time",
                interaction_id=str(interaction.id),
                acknowledged=interaction.acknowledged,
                deferred=interaction.deferred,
            ) from None
        return json_response({**reply, "messages": interaction.messages})

    def _check_command_permissions(
        self, guild: Guild, user_id: int, channel: Channel, command: dict[str, Any]
    ) -> None:
        """default_member_permissions: a member lacking them is not offered the command ("0":
        nobody but administrators); the owner and administrators always may run it."""
        required = command.get("default_member_permissions")
        if required is None:
            return
        needed = int(required)
        member_perms = guild.channel_permissions(user_id, channel)
        if member_perms != perm.ALL and (needed == 0 or not perm.has(member_perms, needed)):
            raise ControlError(
                403,
                "the member lacks the command's default_member_permissions; Discord does not "
                "offer it to them",
                default_member_permissions=str(needed),
            )

    async def list_commands(self, request: web.Request) -> web.Response:
        """GET /_sandbox/commands?guild_id=: commands registered by the bot."""
        if "guild_id" in request.query:
            guild = self._state.guilds.get(sid(request.query["guild_id"], "guild_id"))
            if guild is None:
                raise ControlError(404, "unknown guild")
            return json_response(guild.commands)
        return json_response(self._state.global_commands)

    # --- audit log, faults, rate limits, gateway -----------------------------------------

    async def get_audit_log(self, request: web.Request) -> web.Response:
        """GET /_sandbox/audit-log?method=&route=&after=."""
        q = request.query
        return json_response(
            self._audit.query(
                method=q.get("method"),
                route=normalise_route(q.get("route")),
                after=int(q.get("after", "0")),
            )
        )

    async def clear_audit_log(self, request: web.Request) -> web.Response:
        """DELETE /_sandbox/audit-log."""
        self._audit.clear()
        return json_response({"cleared": True})

    async def get_faults(self, request: web.Request) -> web.Response:
        """GET /_sandbox/faults."""
        return json_response(self._describe_faults())

    def _describe_faults(self) -> dict[str, Any]:
        return {**self._faults.describe(), "events_after_answer": self._gateway.order.describe()}

    async def add_fault(self, request: web.Request) -> web.Response:
        """POST /_sandbox/faults: {"kind": "latency"|"error"|"cloudflare"|"events_after_answer"|
        "no_heartbeat_ack", ...}."""
        body = await body_of(request)
        method = str(body["method"]).upper() if body.get("method") else None
        route = normalise_route(body.get("route"))
        if body.get("kind") == "latency":
            self._faults.latencies.append(
                Latency(seconds=float(body.get("seconds", 0)), method=method, route=route)
            )
        elif body.get("kind") == "error":
            status = int(body.get("status", 429))
            if status != 429 and not 500 <= status <= 599:
                raise ControlError(400, "status must be 429 or a 5xx")
            self._faults.errors.append(
                ErrorFault(
                    status=status,
                    count=int(body.get("count", 1)),
                    method=method,
                    route=route,
                    retry_after=float(body.get("retry_after", 0.05)),
                    is_global=bool(body.get("global", False)),
                )
            )
        elif body.get("kind") == "cloudflare":
            self._faults.errors.append(
                ErrorFault(
                    status=429,
                    count=int(body.get("count", 1)),
                    method=method,
                    route=route,
                    cloudflare=True,
                )
            )
        elif body.get("kind") == "events_after_answer":
            self._gateway.order.configure(
                float(body.get("seconds", 0.1)),
                hide_new_channels=bool(body.get("hide_new_channels", False)),
            )
        elif body.get("kind") == "no_heartbeat_ack":
            self._gateway.stop_heartbeat_acks()
        else:
            raise ControlError(
                400,
                'kind must be "latency", "error", "cloudflare", "events_after_answer" or '
                '"no_heartbeat_ack"',
            )
        return json_response(self._describe_faults(), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """DELETE /_sandbox/faults."""
        self._faults.clear()
        self._gateway.order.clear()
        return json_response(self._describe_faults())

    def _limits(self) -> dict[str, Any]:
        return {
            "global": self._limiter.global_limit,
            "default": {"limit": self._limiter.default.limit, "per": self._limiter.default.per},
            "routes": [
                {"method": m, "route": r, "limit": lim.limit, "per": lim.per}
                for (m, r), lim in self._limiter.routes.items()
            ],
        }

    async def get_rate_limits(self, request: web.Request) -> web.Response:
        """GET /_sandbox/rate-limits."""
        return json_response(self._limits())

    async def set_rate_limits(self, request: web.Request) -> web.Response:
        """PUT /_sandbox/rate-limits {"global"?, "default"?: {limit, per}, "routes"?: [...]}."""
        body = await body_of(request)
        if "global" in body:
            self._limiter.global_limit = int(body["global"])
        if "default" in body:
            d = body["default"]
            self._limiter.default = RouteLimit(int(d["limit"]), float(d["per"]))
        for item in body.get("routes") or []:
            route = normalise_route(item.get("route"))
            if not route or not item.get("method"):
                raise ControlError(400, "each route limit needs method and route")
            self._limiter.set_route(
                str(item["method"]),
                route,
                RouteLimit(int(item["limit"]), float(item.get("per", 1.0))),
            )
        return json_response(self._limits())

    async def gateway_info(self, request: web.Request) -> web.Response:
        """GET /_sandbox/gateway: sessions, their sequence numbers and resumes."""
        return json_response(self._gateway.describe())

    async def close_gateway(self, request: web.Request) -> web.Response:
        """POST /_sandbox/gateway/close {"code", "hold"?, "invalidate"?}."""
        body = await body_of(request)
        closed = await self._gateway.close(
            int(body.get("code", 4000)),
            hold=bool(body.get("hold", False)),
            invalidate=bool(body.get("invalidate", False)),
        )
        return json_response({"closed": closed, **self._gateway.describe()})

    async def release_gateway(self, request: web.Request) -> web.Response:
        """POST /_sandbox/gateway/release: let held connections proceed."""
        self._gateway.release()
        return json_response(self._gateway.describe())
