"""In-memory model of the emulated Discord: users, guilds, roles, members, channels, voice."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.discord import permissions as perm
from sandbox.discord.permissions import Overwrite
from sandbox.discord.snowflake import SnowflakeGenerator

TEXT = 0
VOICE = 2
CATEGORY = 4
ANNOUNCEMENT = 5
STAGE = 13
CREATABLE_TYPES = frozenset({TEXT, VOICE, CATEGORY, ANNOUNCEMENT, STAGE})
VOICE_TYPES = frozenset({VOICE, STAGE})


def now_iso() -> str:
    """The current time as Discord's ISO 8601 timestamps."""
    return datetime.now(UTC).isoformat()


@dataclass
class User:
    """A Discord user (the bot is one too)."""

    id: int
    username: str
    bot: bool = False


@dataclass
class Role:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: int | None = None


@dataclass
class Member:
    """A user's membership of one guild."""

    user_id: int
    role_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=now_iso)
    nick: str | None = None
    mute: bool = False
    deaf: bool = False


@dataclass
class Channel:
    """A guild channel (text, voice, category...)."""

    id: int
    guild_id: int
    name: str
    type: int
    position: int = 0
    parent_id: int | None = None
    overwrites: list[Overwrite] = field(default_factory=list)
    bitrate: int = 64000
    user_limit: int = 0
    topic: str | None = None

    @property
    def is_voice(self) -> bool:
        """Voice and stage channels have voice-only permission rules."""
        return self.type in VOICE_TYPES


@dataclass
class Guild:
    """A guild with its roles, members, channels, voice states and registered commands."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    voice_states: dict[int, int] = field(default_factory=dict)
    """user id -> voice channel id."""
    commands: list[dict[str, Any]] = field(default_factory=list)
    bot_role_id: int | None = None
    command_permissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Command id -> the guild admins' overrides `{"id", "type": 1 role | 2 user, "permission"}`."""

    def base_permissions(self, user_id: int) -> int:
        """Guild-level permissions of a member (owner and ADMINISTRATOR get all)."""
        member = self.members[user_id]
        everyone = self.roles[self.id].permissions
        role_perms = [self.roles[r].permissions for r in member.role_ids if r in self.roles]
        return perm.base_permissions(
            is_owner=user_id == self.owner_id, everyone=everyone, role_permissions=role_perms
        )

    def channel_permissions(self, user_id: int, channel: Channel) -> int:
        """A member's effective permissions in one channel (overwrites and implicit denies)."""
        return perm.channel_permissions(
            self.base_permissions(user_id),
            everyone_id=self.id,
            member_id=user_id,
            role_ids=self.members[user_id].role_ids,
            overwrites=channel.overwrites,
            voice=channel.is_voice,
        )

    def children(self, category_id: int) -> list[Channel]:
        """Channels whose parent is the given category."""
        return [c for c in self.channels.values() if c.parent_id == category_id]

    def occupants(self, channel_id: int) -> list[int]:
        """Users connected to a voice channel."""
        return [uid for uid, cid in self.voice_states.items() if cid == channel_id]


@dataclass
class Interaction:
    """A slash-command run started through the control API, and what the bot answered."""

    id: int
    token: str
    guild_id: int
    channel_id: int
    user_id: int
    command_name: str
    created_at: float
    reply: asyncio.Future[dict[str, Any]]
    acknowledged: bool = False
    deferred: bool = False
    ephemeral: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)
    type: int = 2
    """2: a slash command; 3: a click on a message component."""
    source: dict[str, Any] | None = None
    """The message whose component was clicked (type 3)."""


class SandboxState:
    """All users and guilds, plus the snowflake generator that names them."""

    def __init__(self, *, bot_username: str, snowflakes: SnowflakeGenerator) -> None:
        self.snowflakes = snowflakes
        self.bot = User(id=snowflakes.next(), username=bot_username, bot=True)
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.guilds: dict[int, Guild] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.interactions: dict[int, Interaction] = {}
        self._channel_guild: dict[int, int] = {}

    def new_id(self) -> int:
        """A fresh snowflake."""
        return self.snowflakes.next()

    def add_user(self, username: str, *, bot: bool = False) -> User:
        """Create a user that is not yet in any guild."""
        user = User(id=self.new_id(), username=username, bot=bot)
        self.users[user.id] = user
        return user

    def create_guild(self, name: str, *, bot_permissions: int, owner_username: str) -> Guild:
        """A guild with @everyone, a managed bot role, an owner, the bot and a #general."""
        owner = self.add_user(owner_username)
        guild = Guild(id=self.new_id(), name=name, owner_id=owner.id)
        guild.roles[guild.id] = Role(
            id=guild.id, name="@everyone", permissions=perm.DEFAULT_EVERYONE
        )
        bot_role = Role(
            id=self.new_id(),
            name=self.bot.username,
            permissions=bot_permissions,
            position=1,
            managed=True,
            bot_id=self.bot.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.bot_role_id = bot_role.id
        guild.members[owner.id] = Member(user_id=owner.id)
        guild.members[self.bot.id] = Member(user_id=self.bot.id, role_ids=[bot_role.id])
        self.guilds[guild.id] = guild
        self.add_channel(guild, name="general", type=TEXT)
        return guild

    def add_member(self, guild: Guild, username: str, role_ids: list[int] | None = None) -> User:
        """Create a user and make them a member of the guild."""
        user = self.add_user(username)
        guild.members[user.id] = Member(user_id=user.id, role_ids=list(role_ids or []))
        return user

    def add_role(self, guild: Guild, name: str, permissions: int) -> Role:
        """A new unmanaged role placed above the existing ones."""
        role = Role(id=self.new_id(), name=name, permissions=permissions, position=len(guild.roles))
        guild.roles[role.id] = role
        return role

    def add_channel(
        self,
        guild: Guild,
        *,
        name: str,
        type: int,
        parent_id: int | None = None,
        overwrites: list[Overwrite] | None = None,
        user_limit: int = 0,
        bitrate: int = 64000,
        topic: str | None = None,
    ) -> Channel:
        """Create a channel (no validation: callers check Discord's rules first)."""
        channel = Channel(
            id=self.new_id(),
            guild_id=guild.id,
            name=name,
            type=type,
            position=len(guild.channels),
            parent_id=parent_id,
            overwrites=list(overwrites or []),
            user_limit=user_limit,
            bitrate=bitrate,
            topic=topic,
        )
        guild.channels[channel.id] = channel
        self._channel_guild[channel.id] = guild.id
        return channel

    def remove_channel(self, channel: Channel) -> None:
        """Forget a channel."""
        guild = self.guilds[channel.guild_id]
        del guild.channels[channel.id]
        del self._channel_guild[channel.id]

    def channel(self, channel_id: int) -> Channel | None:
        """Look a channel up in any guild."""
        guild_id = self._channel_guild.get(channel_id)
        if guild_id is None:
            return None
        return self.guilds[guild_id].channels.get(channel_id)

    def new_interaction(
        self,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        command_name: str,
        created_at: float,
        type: int = 2,
        source: dict[str, Any] | None = None,
    ) -> Interaction:
        """Record a new pending interaction with a random token."""
        interaction = Interaction(
            id=self.new_id(),
            token="aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48),
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            command_name=command_name,
            created_at=created_at,
            reply=asyncio.get_running_loop().create_future(),
            type=type,
            source=source,
        )
        self.interactions[interaction.id] = interaction
        return interaction

    def interaction_message(self, message_id: int) -> tuple[Interaction, dict[str, Any]] | None:
        """An interaction's reply or follow-up with this id, and the interaction that made it."""
        for interaction in self.interactions.values():
            for message in interaction.messages:
                if message["id"] == str(message_id) and interaction.source is not message:
                    return interaction, message
        return None

    def interaction_by_token(self, token: str) -> Interaction | None:
        """The interaction a webhook token belongs to."""
        for interaction in self.interactions.values():
            if interaction.token == token:
                return interaction
        return None
