"""The permission overwrites of a team channel: `@everyone` kept out, the bot, the players and
the staff roles (pure functions over py-cord's guild cache)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import discord

DENY_EVERYONE = discord.PermissionOverwrite(view_channel=False, connect=False)
ALLOW_BOT = discord.PermissionOverwrite(
    view_channel=True, connect=True, move_members=True, manage_channels=True
)
ALLOW_PLAYER = discord.PermissionOverwrite(view_channel=True, connect=True, speak=True)
"""What a player of the team, and a staff role, may do in the channel."""

ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


def staff_roles(guild: discord.Guild, role_ids: Collection[int]) -> list[discord.Role]:
    """The staff roles the guild has (a role deleted since the start is skipped)."""
    roles = [guild.get_role(role_id) for role_id in sorted(role_ids)]
    return [role for role in roles if role is not None]


def team_overwrites(
    guild: discord.Guild,
    bot_id: int,
    member_ids: Collection[int],
    staff: Collection[discord.Role],
) -> dict[Any, discord.PermissionOverwrite]:
    """The overwrites of a team channel letting in the bot, `member_ids` and `staff`."""
    # Keys are Objects for members: py-cord sends type 1 for anything that is not a Role.
    overwrites: dict[Any, discord.PermissionOverwrite] = {
        guild.default_role: DENY_EVERYONE,
        discord.Object(bot_id): ALLOW_BOT,
    }
    for role in staff:
        overwrites[role] = ALLOW_PLAYER
    for user_id in sorted(member_ids):
        overwrites[discord.Object(user_id)] = ALLOW_PLAYER
    return overwrites


def staff_outdated(channel: discord.abc.GuildChannel, staff: Collection[discord.Role]) -> bool:
    """Whether the channel's role overwrites differ from those `staff` should have.

    Every role overwrite but `@everyone`'s is a staff grant: the bot writes no other.
    """
    allow, deny = ALLOW_PLAYER.pair()
    granted = {
        (o.id, o.allow, o.deny)
        for o in channel._overwrites
        if o.is_role() and o.id != channel.guild.id
    }
    return granted != {(role.id, allow.value, deny.value) for role in staff}


def overwrites_payload(
    overwrites: dict[Any, discord.PermissionOverwrite],
) -> list[dict[str, Any]]:
    """Overwrites as Discord's JSON, the way py-cord's `Guild._create_channel` writes them."""
    payload = []
    for target, overwrite in overwrites.items():
        allow, deny = overwrite.pair()
        kind = ROLE_OVERWRITE if isinstance(target, discord.Role) else MEMBER_OVERWRITE
        payload.append({"id": target.id, "type": kind, "allow": allow.value, "deny": deny.value})
    return payload
