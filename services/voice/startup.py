"""Checks made before the service starts: the token works, the guild is there, permissions."""

from __future__ import annotations

import logging
from collections.abc import Collection

import aiohttp
import discord

logger = logging.getLogger(__name__)

REQUIRED_PERMISSIONS = ("view_channel", "manage_channels", "connect", "speak", "move_members")


class StartupError(Exception):
    """The service cannot start; the message says exactly why."""


def missing_permissions(permissions: discord.Permissions) -> list[str]:
    """The required guild permissions absent from `permissions`, in Discord's names."""
    if permissions.administrator:
        return []
    return [name.upper() for name in REQUIRED_PERMISSIONS if not getattr(permissions, name)]


def check_staff_roles(guild: discord.Guild, staff_role_ids: Collection[int]) -> None:
    """StartupError unless every DISCORD_STAFF_ROLE_IDS entry is a role of the guild other than
    @everyone (which would open every match channel to everyone)."""
    if guild.id in staff_role_ids:
        raise StartupError(
            f"DISCORD_STAFF_ROLE_IDS holds {guild.id}, the @everyone role of the guild: that "
            "would let every member into every match channel; list staff roles only"
        )
    unknown = sorted(set(staff_role_ids) - {role.id for role in guild.roles})
    if unknown:
        raise StartupError(
            f"DISCORD_STAFF_ROLE_IDS names roles that guild {guild.name!r} ({guild.id}) does not "
            f"have: {', '.join(map(str, unknown))}"
        )


async def login_and_check(
    client: discord.Client,
    token: str,
    guild_id: int,
    api_base: str,
    staff_role_ids: Collection[int] = (),
) -> None:
    """Log in over REST and check the guild, the staff roles and the bot's permissions there;
    StartupError if not."""
    try:
        await client.login(token)
    except discord.LoginFailure as error:
        raise StartupError(
            "DISCORD_TOKEN was refused by Discord (401 Unauthorized): check the bot token"
        ) from error
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        raise StartupError(f"Discord at {api_base} cannot be reached: {error!r}") from error
    except discord.HTTPException as error:
        raise StartupError(f"Discord refused the login ({error.status}): {error.text}") from error
    assert client.user is not None
    try:
        guild = await client.fetch_guild(guild_id)
        member = await guild.fetch_member(client.user.id)
    except (discord.NotFound, discord.Forbidden) as error:
        raise StartupError(
            f"guild {guild_id} (DISCORD_GUILD_ID) is unreachable: the bot is not a member of it "
            "or the id is wrong"
        ) from error
    except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
        raise StartupError(f"guild {guild_id} could not be read from Discord: {error!r}") from error
    check_staff_roles(guild, staff_role_ids)
    permissions = member.guild_permissions
    missing = missing_permissions(permissions)
    if missing:
        raise StartupError(
            f"the bot lacks guild permissions in {guild.name!r} ({guild_id}): "
            f"{', '.join(missing)}; re-invite it or give its role these permissions"
        )
    if not (permissions.manage_roles or permissions.administrator):
        logger.info(
            "the bot has no MANAGE_ROLES: access changes replace the team channel instead of "
            "editing it"
        )
    logger.info("logged in as %s; guild %r has every permission needed", client.user, guild.name)
