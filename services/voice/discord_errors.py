"""Discord failures as the domain errors the gRPC boundary reports, and the codes voice acts on."""

from __future__ import annotations

import asyncio

import aiohttp
import discord

from services.kit.errors import DomainError, FailedPrecondition, PermissionDenied, Unavailable

NOT_CONNECTED_TO_VOICE = 40032
INVALID_FORM_BODY = 50035


def translate(error: Exception, action: str, needs: str) -> DomainError:
    """A Discord failure as the domain error the gRPC boundary reports."""
    if isinstance(error, discord.Forbidden):
        return PermissionDenied(
            f"Discord refused to {action} (403/{error.code}): the bot needs {needs}"
        )
    if isinstance(error, discord.DiscordServerError) or (
        isinstance(error, discord.HTTPException) and error.status == 429
    ):
        return Unavailable(f"Discord failed to {action} ({error.status}): {error.text}")
    if isinstance(error, discord.HTTPException):
        return FailedPrecondition(
            f"Discord refused to {action} ({error.status}/{error.code}): {error.text}"
        )
    return Unavailable(f"Discord could not be reached to {action}: {error!r}")


DISCORD_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError)
"""What a py-cord or aiohttp call to Discord may raise when Discord fails or cannot be reached."""


def category_full(error: discord.HTTPException) -> bool:
    """Whether Discord refused a create because the category holds its maximum of channels."""
    text = error.text or ""
    return (
        error.status == 400
        and error.code == INVALID_FORM_BODY
        and ("CHANNEL_PARENT_MAX_CHANNELS" in text or "parent_id" in text)
    )
