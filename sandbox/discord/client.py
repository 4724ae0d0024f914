"""An async client for the Discord sandbox's control API (one method per route, dicts back)."""

from __future__ import annotations

from typing import Any

from sandbox.http_client import SandboxHttpClient, SandboxHttpError


class SandboxError(SandboxHttpError):
    """A control API call answered with an error status."""


class DiscordSandboxClient(SandboxHttpClient):
    """Talks to `/_sandbox/` of a running Discord sandbox; use as `async with`, or call close()."""

    prefix = "/_sandbox"
    error = SandboxError

    async def info(self) -> dict[str, Any]:
        """The bot user/application id and the guild ids."""
        return await self._call("GET", "/info")

    async def create_guild(
        self,
        name: str,
        *,
        bot_permissions: int | None = None,
        owner_username: str | None = None,
    ) -> dict[str, Any]:
        """A guild the bot is in: `guild_id`, `everyone_role_id`, `bot_role_id`, `owner_id`..."""
        body: dict[str, Any] = {"name": name}
        if bot_permissions is not None:
            body["bot_permissions"] = bot_permissions
        if owner_username is not None:
            body["owner_username"] = owner_username
        return await self._call("POST", "/guilds", body)

    async def get_guild(self, guild_id: int | str) -> dict[str, Any]:
        """Channels (with overwrites), voice_states, members, roles and commands of a guild."""
        return await self._call("GET", f"/guilds/{guild_id}")

    async def add_member(
        self, guild_id: int | str, username: str, *, roles: list[int | str] | None = None
    ) -> dict[str, Any]:
        """A new member: `user_id`, `username`."""
        body: dict[str, Any] = {"username": username}
        if roles:
            body["roles"] = [str(r) for r in roles]
        return await self._call("POST", f"/guilds/{guild_id}/members", body)

    async def create_channel(
        self,
        guild_id: int | str,
        name: str,
        *,
        type: int = 2,
        parent_id: int | str | None = None,
        permission_overwrites: list[dict[str, Any]] | None = None,
        user_limit: int = 0,
    ) -> dict[str, Any]:
        """A channel made by an admin (no permission checks): `channel_id` plus the channel."""
        body: dict[str, Any] = {"name": name, "type": type, "user_limit": user_limit}
        if parent_id is not None:
            body["parent_id"] = str(parent_id)
        if permission_overwrites is not None:
            body["permission_overwrites"] = permission_overwrites
        return await self._call("POST", f"/guilds/{guild_id}/channels", body)

    async def delete_channel(self, channel_id: int | str) -> dict[str, Any]:
        """Delete a channel as an admin would."""
        return await self._call("DELETE", f"/channels/{channel_id}")

    async def channel_access(self, channel_id: int | str) -> dict[str, Any]:
        """`{"view": [user_id...], "connect": [user_id...]}` by Discord's permission rules."""
        return await self._call("GET", f"/channels/{channel_id}/access")

    async def channel_messages(self, channel_id: int | str) -> list[dict[str, Any]]:
        """A text channel's messages, oldest first: `id`, `author_id`, `content`, `embeds`,
        `components`, `edited_timestamp`."""
        messages: list[dict[str, Any]] = await self._call("GET", f"/channels/{channel_id}/messages")
        return messages

    async def set_voice(
        self,
        guild_id: int | str,
        user_id: int | str,
        channel_id: int | str | None,
        *,
        force: bool = False,
    ) -> dict[str, Any]:
        """Connect a member to a voice channel, move them, or (None) disconnect them."""
        body: dict[str, Any] = {"channel_id": str(channel_id) if channel_id is not None else None}
        if force:
            body["force"] = True
        return await self._call("PUT", f"/guilds/{guild_id}/voice/{user_id}", body)

    async def create_role(
        self, guild_id: int | str, name: str, permissions: int = 0
    ) -> dict[str, Any]:
        """A new role: `role_id`."""
        return await self._call(
            "POST", f"/guilds/{guild_id}/roles", {"name": name, "permissions": permissions}
        )

    async def edit_role(
        self,
        guild_id: int | str,
        role_id: int | str,
        *,
        permissions: int | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Change a role's permissions (e.g. take MOVE_MEMBERS from the bot role) or name."""
        body: dict[str, Any] = {}
        if permissions is not None:
            body["permissions"] = permissions
        if name is not None:
            body["name"] = name
        return await self._call("PATCH", f"/guilds/{guild_id}/roles/{role_id}", body)

    async def add_member_role(
        self, guild_id: int | str, user_id: int | str, role_id: int | str
    ) -> dict[str, Any]:
        """Give a member a role."""
        return await self._call("PUT", f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}")

    async def remove_member_role(
        self, guild_id: int | str, user_id: int | str, role_id: int | str
    ) -> dict[str, Any]:
        """Take a role from a member."""
        return await self._call("DELETE", f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}")

    async def run_command(
        self,
        guild_id: int | str,
        user_id: int | str,
        command: str,
        options: dict[str, Any] | None = None,
        *,
        channel_id: int | str | None = None,
        reply_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run a slash command as a member; returns the bot's final reply.

        The reply has `content`, `embeds`, `ephemeral`, `deferred` and all `messages`.
        """
        body: dict[str, Any] = {
            "guild_id": str(guild_id),
            "user_id": str(user_id),
            "command": command,
            "options": options or {},
        }
        if channel_id is not None:
            body["channel_id"] = str(channel_id)
        if reply_timeout is not None:
            body["timeout"] = reply_timeout
        return await self._call("POST", "/interactions", body)

    async def commands(
        self, guild_id: int | str | None = None, *, user_id: int | str | None = None
    ) -> list[dict[str, Any]]:
        """Commands the bot registered (for a guild, or the global ones); with `user_id`, only
        those the member is offered."""
        params = {"guild_id": str(guild_id)} if guild_id is not None else {}
        if user_id is not None:
            params["user_id"] = str(user_id)
        return await self._call("GET", "/commands", params=params or None)

    async def click(
        self,
        user_id: int | str,
        message_id: int | str,
        custom_id: str,
        *,
        reply_timeout: float | None = None,
    ) -> dict[str, Any]:
        """A member clicks a button of an interaction's message; returns the bot's reply (for
        UPDATE_MESSAGE, the clicked message as edited: same `message_id`)."""
        body: dict[str, Any] = {
            "user_id": str(user_id),
            "message_id": str(message_id),
            "custom_id": custom_id,
        }
        if reply_timeout is not None:
            body["timeout"] = reply_timeout
        return await self._call("POST", "/interactions/components", body)

    async def set_command_permissions(
        self, guild_id: int | str, command: str, permissions: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """A guild admin's overrides of a command: `[{"id", "type": 1 role | 2 user,
        "permission": bool}]`."""
        return await self._call(
            "PUT",
            f"/guilds/{guild_id}/commands/{command}/permissions",
            {"permissions": permissions},
        )

    async def audit_log(
        self, *, method: str | None = None, route: str | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        """REST calls seen: seq, method, route, path, status, reason, code, in_flight, times.

        `received_at` and `answered_at` are `time.monotonic()`, a clock the processes of one
        machine share, so a caller can compare them with its own.
        """
        params = {"after": str(after)}
        if method is not None:
            params["method"] = method
        if route is not None:
            params["route"] = route
        return await self._call("GET", "/audit-log", params=params)

    async def in_flight(
        self, *, method: str | None = None, route: str | None = None
    ) -> list[dict[str, Any]]:
        """REST calls received and not answered yet (waiting out a latency, say): method,
        route, path, received_at; oldest first."""
        params = {}
        if method is not None:
            params["method"] = method
        if route is not None:
            params["route"] = route
        return await self._call("GET", "/audit-log/in-flight", params=params)

    async def clear_audit_log(self) -> dict[str, Any]:
        """Forget the recorded REST calls."""
        return await self._call("DELETE", "/audit-log")

    async def add_latency(
        self, seconds: float, *, method: str | None = None, route: str | None = None
    ) -> dict[str, Any]:
        """Delay every matching REST call (all calls when method and route are None)."""
        return await self._add_fault({"kind": "latency", "seconds": seconds}, method, route)

    async def inject_errors(
        self,
        status: int,
        *,
        count: int = 1,
        method: str | None = None,
        route: str | None = None,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> dict[str, Any]:
        """The next `count` matching calls get `status` (429 with `retry_after`, or a 5xx)."""
        body: dict[str, Any] = {
            "kind": "error",
            "status": status,
            "count": count,
            "retry_after": retry_after,
            "global": is_global,
        }
        return await self._add_fault(body, method, route)

    async def inject_cloudflare_429(
        self, *, count: int = 1, method: str | None = None, route: str | None = None
    ) -> dict[str, Any]:
        """The next `count` matching calls get Cloudflare's 429: HTML, no JSON, no `Via`."""
        return await self._add_fault({"kind": "cloudflare", "count": count}, method, route)

    async def _add_fault(
        self, body: dict[str, Any], method: str | None, route: str | None
    ) -> dict[str, Any]:
        """POST a fault limited to `method` and `route` when given."""
        if method is not None:
            body["method"] = method
        if route is not None:
            body["route"] = route
        return await self._call("POST", "/faults", body)

    async def delay_gateway_events(
        self, seconds: float, *, hide_new_channels: bool = False
    ) -> dict[str, Any]:
        """Send the gateway events a REST call causes `seconds` after its answer.

        `hide_new_channels`: a channel is unknown to moves (10003) until its CHANNEL_CREATE
        went out.
        """
        body = {"kind": "events_after_answer", "seconds": seconds}
        return await self._call("POST", "/faults", {**body, "hide_new_channels": hide_new_channels})

    async def stop_heartbeat_acks(self) -> dict[str, Any]:
        """The open gateway connections stop ACKing heartbeats (a zombied connection)."""
        return await self._call("POST", "/faults", {"kind": "no_heartbeat_ack"})

    async def faults(self) -> dict[str, Any]:
        """The active faults."""
        return await self._call("GET", "/faults")

    async def clear_faults(self) -> dict[str, Any]:
        """Remove every fault."""
        return await self._call("DELETE", "/faults")

    async def set_rate_limits(
        self,
        *,
        global_limit: int | None = None,
        default: tuple[int, float] | None = None,
        routes: list[tuple[str, str, int, float]] | None = None,
    ) -> dict[str, Any]:
        """Change limits; `routes` items are (method, route template, limit, per seconds)."""
        body: dict[str, Any] = {}
        if global_limit is not None:
            body["global"] = global_limit
        if default is not None:
            body["default"] = {"limit": default[0], "per": default[1]}
        if routes:
            body["routes"] = [
                {"method": m, "route": r, "limit": limit, "per": per} for m, r, limit, per in routes
            ]
        return await self._call("PUT", "/rate-limits", body)

    async def gateway(self) -> dict[str, Any]:
        """Gateway sessions: `session_id`, `seq`, `connected`, `resumes`, `intents`."""
        return await self._call("GET", "/gateway")

    async def close_gateway(
        self, code: int = 4000, *, hold: bool = False, invalidate: bool = False
    ) -> dict[str, Any]:
        """Close the bot's gateway connections; `hold` delays reconnects until release_gateway()."""
        return await self._call(
            "POST", "/gateway/close", {"code": code, "hold": hold, "invalidate": invalidate}
        )

    async def release_gateway(self) -> dict[str, Any]:
        """Let held gateway connections proceed."""
        return await self._call("POST", "/gateway/release")
