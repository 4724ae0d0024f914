"""Discord JSON objects (users, roles, members, channels, voice states, guilds, messages)."""

from __future__ import annotations

from typing import Any

from sandbox.discord.config import GUILD_PRESENCES_INTENT
from sandbox.discord.permissions import Overwrite
from sandbox.discord.state import Channel, Guild, Member, Role, SandboxState, User, now_iso


def user(u: User) -> dict[str, Any]:
    """A user object."""
    data: dict[str, Any] = {
        "id": str(u.id),
        "username": u.username,
        "discriminator": "0",
        "global_name": None if u.bot else u.username,
        "avatar": None,
        "public_flags": 0,
        "flags": 0,
    }
    if u.bot:
        data["bot"] = True
    return data


def role(r: Role) -> dict[str, Any]:
    """A role object, with the `colors` py-cord 2.7+ requires."""
    data: dict[str, Any] = {
        "id": str(r.id),
        "name": r.name,
        "permissions": str(r.permissions),
        "position": r.position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": r.managed,
        "mentionable": False,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }
    if r.bot_id is not None:
        data["tags"] = {"bot_id": str(r.bot_id)}
    return data


def member(state: SandboxState, m: Member, *, with_user: bool = True) -> dict[str, Any]:
    """A guild member object (REST members carry no voice state)."""
    data: dict[str, Any] = {
        "roles": [str(r) for r in m.role_ids],
        "nick": m.nick,
        "avatar": None,
        "joined_at": m.joined_at,
        "premium_since": None,
        "deaf": m.deaf,
        "mute": m.mute,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user(state.users[m.user_id])
    return data


def overwrite(ow: Overwrite) -> dict[str, Any]:
    """An overwrite object (bits as strings, as Discord sends them)."""
    return {"id": str(ow.id), "type": ow.type, "allow": str(ow.allow), "deny": str(ow.deny)}


def channel(c: Channel) -> dict[str, Any]:
    """A guild channel object."""
    data: dict[str, Any] = {
        "id": str(c.id),
        "type": c.type,
        "guild_id": str(c.guild_id),
        "name": c.name,
        "position": c.position,
        "parent_id": str(c.parent_id) if c.parent_id is not None else None,
        "permission_overwrites": [overwrite(ow) for ow in c.overwrites],
        "flags": 0,
        "nsfw": False,
    }
    if c.is_voice:
        data.update(bitrate=c.bitrate, user_limit=c.user_limit, rtc_region=None)
    elif c.type != 4:
        data.update(topic=c.topic, last_message_id=None, rate_limit_per_user=0)
    return data


def voice_state(
    state: SandboxState,
    guild: Guild,
    user_id: int,
    channel_id: int | None,
    *,
    with_guild: bool = True,
) -> dict[str, Any]:
    """A voice state (channel_id None means the user left voice)."""
    m = guild.members.get(user_id)
    data: dict[str, Any] = {
        "channel_id": str(channel_id) if channel_id is not None else None,
        "user_id": str(user_id),
        "session_id": f"voice-{user_id}",
        "deaf": m.deaf if m else False,
        "mute": m.mute if m else False,
        "self_deaf": False,
        "self_mute": False,
        "self_stream": False,
        "self_video": False,
        "suppress": False,
        "request_to_speak_timestamp": None,
    }
    if with_guild:
        data["guild_id"] = str(guild.id)
    if m is not None:
        data["member"] = member(state, m)
    return data


def guild(g: Guild) -> dict[str, Any]:
    """The REST guild object (no channels, members or voice states)."""
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in g.roles.values()],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
    }


def guild_create(
    state: SandboxState, g: Guild, *, intents: int, large_threshold: int
) -> dict[str, Any]:
    """The GUILD_CREATE payload; only the bot and voice members without GUILD_PRESENCES.

    With GUILD_PRESENCES a large guild (over IDENTIFY's `large_threshold`) leaves offline
    members out; the sandbox has no presences, so every member but the bot and those in voice
    counts as offline there.
    """
    large = len(g.members) > large_threshold
    if intents & GUILD_PRESENCES_INTENT and not large:
        members = list(g.members.values())
    else:
        members = [
            m for uid, m in g.members.items() if uid == state.bot.id or uid in g.voice_states
        ]
    data = guild(g)
    data.update(
        joined_at=g.members[state.bot.id].joined_at,
        large=large,
        unavailable=False,
        member_count=len(g.members),
        members=[member(state, m) for m in members],
        channels=[channel(c) for c in g.channels.values()],
        voice_states=[
            voice_state(state, g, uid, cid, with_guild=False) for uid, cid in g.voice_states.items()
        ],
        threads=[],
        presences=[],
        stage_instances=[],
        guild_scheduled_events=[],
        soundboard_sounds=[],
    )
    return data


def message(
    state: SandboxState,
    *,
    message_id: int,
    channel_id: int,
    body: dict[str, Any],
    application_id: int,
    interaction_id: int | None = None,
) -> dict[str, Any]:
    """A message object sent by the bot, built from a create/edit payload."""
    return {
        "id": str(message_id),
        "channel_id": str(channel_id),
        "type": 20 if interaction_id is not None else 0,
        "content": body.get("content") or "",
        "author": user(state.bot),
        "attachments": [],
        "embeds": body.get("embeds") or [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": bool(body.get("tts", False)),
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "flags": int(body.get("flags") or 0),
        "components": body.get("components") or [],
        "application_id": str(application_id),
        "webhook_id": str(application_id),
    }
