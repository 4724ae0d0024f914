"""State changes shared by REST and the control API, each followed by its gateway dispatches."""

from __future__ import annotations

from sandbox.discord import payloads
from sandbox.discord.config import GUILD_MEMBERS_INTENT
from sandbox.discord.gateway import GUILD_VOICE_STATES_INTENT, GUILDS_INTENT, Gateway
from sandbox.discord.permissions import Overwrite
from sandbox.discord.state import Channel, Guild, Member, Role, SandboxState, User


class Actions:
    """Mutate the state the way Discord would, and tell the bot through the gateway."""

    def __init__(self, state: SandboxState, gateway: Gateway) -> None:
        self._state = state
        self._gateway = gateway

    def create_guild(self, name: str, *, bot_permissions: int, owner_username: str) -> Guild:
        """A new guild the bot is in; connected sessions get GUILD_CREATE."""
        guild = self._state.create_guild(
            name, bot_permissions=bot_permissions, owner_username=owner_username
        )
        self._gateway.dispatch_guild_create(guild.id)
        return guild

    def add_member(self, guild: Guild, username: str, role_ids: list[int]) -> User:
        """A new member; GUILD_MEMBER_ADD goes to sessions with the members intent."""
        user = self._state.add_member(guild, username, role_ids)
        data = payloads.member(self._state, guild.members[user.id])
        data["guild_id"] = str(guild.id)
        self._gateway.dispatch("GUILD_MEMBER_ADD", data, intent=GUILD_MEMBERS_INTENT)
        return user

    def member_updated(self, guild: Guild, member: Member) -> None:
        """GUILD_MEMBER_UPDATE for a changed member."""
        data = payloads.member(self._state, member)
        data["guild_id"] = str(guild.id)
        self._gateway.dispatch("GUILD_MEMBER_UPDATE", data, intent=GUILD_MEMBERS_INTENT)

    def create_role(self, guild: Guild, name: str, permissions: int) -> Role:
        """A new role; GUILD_ROLE_CREATE."""
        role = self._state.add_role(guild, name, permissions)
        self._gateway.dispatch(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild.id), "role": payloads.role(role)},
            intent=GUILDS_INTENT,
        )
        return role

    def role_updated(self, guild: Guild, role: Role) -> None:
        """GUILD_ROLE_UPDATE for a changed role."""
        self._gateway.dispatch(
            "GUILD_ROLE_UPDATE",
            {"guild_id": str(guild.id), "role": payloads.role(role)},
            intent=GUILDS_INTENT,
        )

    def create_channel(
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
        """A new channel; CHANNEL_CREATE."""
        channel = self._state.add_channel(
            guild,
            name=name,
            type=type,
            parent_id=parent_id,
            overwrites=overwrites,
            user_limit=user_limit,
            bitrate=bitrate,
            topic=topic,
        )
        self._gateway.dispatch("CHANNEL_CREATE", payloads.channel(channel), intent=GUILDS_INTENT)
        return channel

    def channel_updated(self, channel: Channel) -> None:
        """CHANNEL_UPDATE for a changed channel."""
        self._gateway.dispatch("CHANNEL_UPDATE", payloads.channel(channel), intent=GUILDS_INTENT)

    def delete_channel(self, channel: Channel) -> None:
        """Disconnect occupants (VOICE_STATE_UPDATE null each), orphan children, CHANNEL_DELETE."""
        guild = self._state.guilds[channel.guild_id]
        for user_id in guild.occupants(channel.id):
            self.set_voice(guild, user_id, None)
        for child in guild.children(channel.id):
            child.parent_id = None
            self.channel_updated(child)
        self._state.remove_channel(channel)
        self._gateway.dispatch("CHANNEL_DELETE", payloads.channel(channel), intent=GUILDS_INTENT)

    def set_voice(self, guild: Guild, user_id: int, channel_id: int | None) -> None:
        """Connect, move or disconnect a member; VOICE_STATE_UPDATE."""
        if channel_id is None:
            guild.voice_states.pop(user_id, None)
        else:
            guild.voice_states[user_id] = channel_id
        self._gateway.dispatch(
            "VOICE_STATE_UPDATE",
            payloads.voice_state(self._state, guild, user_id, channel_id),
            intent=GUILD_VOICE_STATES_INTENT,
        )
