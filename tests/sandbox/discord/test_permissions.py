"""Unit tests of Discord's permission computation."""

from __future__ import annotations

from sandbox.discord import permissions as p
from sandbox.discord.permissions import MEMBER_OVERWRITE, ROLE_OVERWRITE, Overwrite

GUILD = 1
ROLE = 2
USER = 3


def effective(base: int, overwrites: list[Overwrite], *, voice: bool = True, roles=(ROLE,)) -> int:
    return p.channel_permissions(
        base,
        everyone_id=GUILD,
        member_id=USER,
        role_ids=list(roles),
        overwrites=overwrites,
        voice=voice,
    )


def test_base_permissions_are_everyone_plus_roles() -> None:
    """Guild permissions are the union of @everyone and the member's roles."""
    perms = p.base_permissions(is_owner=False, everyone=p.VIEW_CHANNEL, role_permissions=[p.SPEAK])
    assert perms == p.VIEW_CHANNEL | p.SPEAK


def test_owner_and_administrator_get_everything() -> None:
    """The guild owner and ADMINISTRATOR holders have every permission."""
    assert p.base_permissions(is_owner=True, everyone=0, role_permissions=[]) == p.ALL
    admin = p.base_permissions(is_owner=False, everyone=0, role_permissions=[p.ADMINISTRATOR])
    assert admin == p.ALL


def test_administrator_bypasses_overwrites() -> None:
    """Overwrites denying everything do not affect an administrator."""
    deny_all = [
        Overwrite(GUILD, ROLE_OVERWRITE, 0, p.ALL),
        Overwrite(USER, MEMBER_OVERWRITE, 0, p.ALL),
    ]
    assert effective(p.ALL, deny_all) == p.ALL


def test_overwrites_apply_everyone_then_roles_then_member() -> None:
    """A role allow beats an @everyone deny, and a member deny beats a role allow."""
    base = p.VIEW_CHANNEL | p.CONNECT | p.SPEAK
    everyone_deny = Overwrite(GUILD, ROLE_OVERWRITE, 0, p.SPEAK)
    role_allow = Overwrite(ROLE, ROLE_OVERWRITE, p.SPEAK, 0)
    assert effective(base, [everyone_deny]) & p.SPEAK == 0
    assert effective(base, [everyone_deny, role_allow]) & p.SPEAK
    member_deny = Overwrite(USER, MEMBER_OVERWRITE, 0, p.SPEAK)
    assert effective(base, [everyone_deny, role_allow, member_deny]) & p.SPEAK == 0


def test_role_overwrites_allow_wins_over_deny_between_roles() -> None:
    """Among the member's roles, allows are applied after denies."""
    base = p.VIEW_CHANNEL | p.CONNECT
    other = 9
    overwrites = [
        Overwrite(ROLE, ROLE_OVERWRITE, 0, p.CONNECT),
        Overwrite(other, ROLE_OVERWRITE, p.CONNECT, 0),
    ]
    assert effective(base, overwrites, roles=(ROLE, other)) & p.CONNECT


def test_no_view_channel_means_no_permission_at_all() -> None:
    """Denying VIEW_CHANNEL implicitly denies everything else."""
    base = p.DEFAULT_BOT
    overwrites = [Overwrite(GUILD, ROLE_OVERWRITE, 0, p.VIEW_CHANNEL)]
    assert effective(base, overwrites, roles=()) == 0


def test_voice_channel_without_connect_loses_manage_channels() -> None:
    """On a voice channel, no CONNECT implicitly removes MANAGE_CHANNELS and MOVE_MEMBERS."""
    overwrites = [Overwrite(GUILD, ROLE_OVERWRITE, 0, p.CONNECT)]
    perms = effective(p.DEFAULT_BOT, overwrites, roles=())
    assert perms & p.VIEW_CHANNEL
    assert not perms & (p.MANAGE_CHANNELS | p.MOVE_MEMBERS | p.CONNECT)


def test_text_channel_without_connect_keeps_manage_channels() -> None:
    """The CONNECT rule only applies to voice channels."""
    overwrites = [Overwrite(GUILD, ROLE_OVERWRITE, 0, p.CONNECT)]
    assert effective(p.DEFAULT_BOT, overwrites, voice=False, roles=()) & p.MANAGE_CHANNELS


def test_private_match_channel_bits() -> None:
    """The private channel's overwrites use Discord's documented values."""
    assert p.VIEW_CHANNEL | p.CONNECT == 1049600
    assert p.VIEW_CHANNEL | p.CONNECT | p.SPEAK == 3146752
    assert p.VIEW_CHANNEL | p.CONNECT | p.MOVE_MEMBERS | p.MANAGE_CHANNELS == 17826832
    overwrites = [
        Overwrite(GUILD, ROLE_OVERWRITE, 0, 1049600),
        Overwrite(USER, MEMBER_OVERWRITE, 3146752, 0),
    ]
    assert p.has(effective(p.DEFAULT_EVERYONE, overwrites, roles=()), 3146752)
    outsider = p.channel_permissions(
        p.DEFAULT_EVERYONE,
        everyone_id=GUILD,
        member_id=USER + 1,
        role_ids=[],
        overwrites=overwrites,
        voice=True,
    )
    assert outsider == 0
