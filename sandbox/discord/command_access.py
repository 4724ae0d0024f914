"""Who may use an application command: the guild's command permission overrides, else
`default_member_permissions` (Discord's "Application Command Permissions")."""

from __future__ import annotations

from typing import Any

from sandbox.discord import permissions as perm
from sandbox.discord.state import Channel, Guild

ROLE_TARGET = 1
USER_TARGET = 2


def may_use(guild: Guild, user_id: int, channel: Channel, command: dict[str, Any]) -> bool:
    """A user override decides; else the member's role overrides (an allow wins), else the
    @everyone override; else `default_member_permissions` on the member's permissions in the
    channel (`"0"`: nobody). The owner and administrators may always."""
    member_perms = guild.channel_permissions(user_id, channel)
    if member_perms == perm.ALL:
        return True
    overrides = {
        (int(o["type"]), int(o["id"])): bool(o["permission"])
        for o in guild.command_permissions.get(str(command["id"]), [])
    }
    user = overrides.get((USER_TARGET, user_id))
    if user is not None:
        return user
    roles = [
        overrides[(ROLE_TARGET, role_id)]
        for role_id in guild.members[user_id].role_ids
        if (ROLE_TARGET, role_id) in overrides
    ]
    if roles:
        return any(roles)
    everyone = overrides.get((ROLE_TARGET, guild.id))
    if everyone is not None:
        return everyone
    required = command.get("default_member_permissions")
    if required is None:
        return True
    needed = int(required)
    return needed != 0 and perm.has(member_perms, needed)
