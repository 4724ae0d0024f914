"""Reading a control request: its JSON body, its ids and the guild, channel, member they name."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.discord.rest import API_PREFIX
from sandbox.discord.state import Channel, Guild, SandboxState


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


def guild_by_id(state: SandboxState, value: Any) -> Guild:
    """The guild with this id (404 if there is none)."""
    guild = state.guilds.get(sid(value, "guild_id"))
    if guild is None:
        raise ControlError(404, "unknown guild")
    return guild


def channel_by_id(state: SandboxState, value: Any) -> Channel:
    """The channel with this id, in any guild (404 if there is none)."""
    channel = state.channel(sid(value, "channel_id"))
    if channel is None:
        raise ControlError(404, "unknown channel")
    return channel


def member_id(guild: Guild, value: Any) -> int:
    """The user id of a member of the guild (404 if they are not one)."""
    user_id = sid(value, "user_id")
    if user_id not in guild.members:
        raise ControlError(404, "unknown member")
    return user_id
