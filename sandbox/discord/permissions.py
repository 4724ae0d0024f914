"""Discord permission bits and the pure functions that compute a member's permissions."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
PRIORITY_SPEAKER = 1 << 8
STREAM = 1 << 9
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
MUTE_MEMBERS = 1 << 22
DEAFEN_MEMBERS = 1 << 23
MOVE_MEMBERS = 1 << 24
USE_VAD = 1 << 25
CHANGE_NICKNAME = 1 << 26
MANAGE_NICKNAMES = 1 << 27
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31

ALL = (1 << 53) - 1
"""Every permission bit Discord defines today fits below bit 53."""

DEFAULT_EVERYONE = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | STREAM
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | SPEAK
    | USE_VAD
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
)
"""What @everyone has in a new guild (a subset of Discord's default)."""

DEFAULT_BOT = VIEW_CHANNEL | MANAGE_CHANNELS | CONNECT | SPEAK | MOVE_MEMBERS | SEND_MESSAGES
"""What the managed role of a correctly invited voice bot has: no ADMINISTRATOR, no MANAGE_ROLES."""

VOICE_ONLY = (
    SPEAK | MUTE_MEMBERS | DEAFEN_MEMBERS | MOVE_MEMBERS | USE_VAD | PRIORITY_SPEAKER | STREAM
)
CONNECT_DEPENDENT = VOICE_ONLY | MANAGE_CHANNELS | MANAGE_ROLES
"""On voice channels, a member without CONNECT implicitly loses these."""

ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


@dataclass
class Overwrite:
    """A channel permission overwrite for a role (type 0) or a member (type 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0


def base_permissions(*, is_owner: bool, everyone: int, role_permissions: Iterable[int]) -> int:
    """Guild-level permissions: @everyone's plus every role's, or all for owners and admins."""
    if is_owner:
        return ALL
    perms = everyone
    for role_perms in role_permissions:
        perms |= role_perms
    if perms & ADMINISTRATOR:
        return ALL
    return perms


def apply_overwrites(
    base: int,
    *,
    everyone_id: int,
    member_id: int,
    role_ids: Collection[int],
    overwrites: Iterable[Overwrite],
) -> int:
    """Apply channel overwrites in Discord's order: @everyone, then roles, then the member."""
    if base & ADMINISTRATOR or base == ALL:
        return ALL
    perms = base
    by_target = {(ow.type, ow.id): ow for ow in overwrites}
    everyone = by_target.get((ROLE_OVERWRITE, everyone_id))
    if everyone is not None:
        perms = (perms & ~everyone.deny) | everyone.allow
    role_allow = 0
    role_deny = 0
    for role_id in role_ids:
        ow = by_target.get((ROLE_OVERWRITE, role_id))
        if ow is not None and role_id != everyone_id:
            role_allow |= ow.allow
            role_deny |= ow.deny
    perms = (perms & ~role_deny) | role_allow
    member = by_target.get((MEMBER_OVERWRITE, member_id))
    if member is not None:
        perms = (perms & ~member.deny) | member.allow
    return perms


def apply_implicit_denies(perms: int, *, voice: bool) -> int:
    """No VIEW_CHANNEL means nothing; on voice channels no CONNECT means no managing either."""
    if perms == ALL:
        return perms
    if not perms & VIEW_CHANNEL:
        return 0
    if voice and not perms & CONNECT:
        return perms & ~CONNECT_DEPENDENT
    return perms


def channel_permissions(
    base: int,
    *,
    everyone_id: int,
    member_id: int,
    role_ids: Collection[int],
    overwrites: Iterable[Overwrite],
    voice: bool,
) -> int:
    """A member's effective permissions in a channel, from their guild-level `base`."""
    perms = apply_overwrites(
        base,
        everyone_id=everyone_id,
        member_id=member_id,
        role_ids=role_ids,
        overwrites=overwrites,
    )
    return apply_implicit_denies(perms, voice=voice)


def has(perms: int, needed: int) -> bool:
    """True when every bit of `needed` is in `perms`."""
    return perms & needed == needed
