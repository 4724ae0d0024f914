"""The seam between match logic and Discord: the DiscordPort protocol (its py-cord form is
`pycord_discord.PycordDiscord`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class NotInVoice(Exception):
    """Discord refused a move because the member is not connected to voice (40032)."""


class DiscordPort(Protocol):
    """What the match logic needs from Discord, for one guild."""

    async def is_member(self, user_id: int) -> bool:
        """Whether the user is a member of the guild."""
        ...

    def voice_channel_of(self, user_id: int) -> int | None:
        """The voice channel the user is connected to, or None."""
        ...

    def occupants(self, channel_id: int) -> list[int]:
        """The users connected to a voice channel."""
        ...

    def may_join(self, user_id: int, channel_id: int) -> bool:
        """Whether the member may view and connect to the channel (True when it cannot tell)."""
        ...

    def channel_cached(self, channel_id: int) -> bool:
        """Whether the guild cache holds the channel (it exists: no lookup needed)."""
        ...

    async def channel_exists(self, channel_id: int) -> bool:
        """Whether the channel exists in the guild: the cache, else a lookup."""
        ...

    def is_staff(self, user_id: int) -> bool:
        """Whether the member holds a staff role (DISCORD_STAFF_ROLE_IDS)."""
        ...

    def sees_every_channel(self, user_id: int) -> bool:
        """Whether the member may be in every match channel: a staff role, or an administrator."""
        ...

    def staff_access_outdated(self, channel_id: int) -> bool:
        """Whether the channel's role overwrites differ from the staff roles' (from the cache)."""
        ...

    def bot_channels_named(self, name: str) -> list[int]:
        """The private voice channels with this name that the bot made (by their overwrites)."""
        ...

    async def create_private_channel(self, name: str, member_ids: Collection[int]) -> int:
        """Create a private voice channel that only the bot and `member_ids` can see and join."""
        ...

    async def set_members(self, channel_id: int, member_ids: Collection[int]) -> bool:
        """Replace the players allowed in a channel; False when the bot may not edit overwrites.

        Editing overwrites (PATCH /channels/{id} with permission_overwrites) needs MANAGE_ROLES
        in the channel, which a bot invited without it lacks: the caller then replaces the
        channel instead.
        """
        ...

    async def move(self, user_id: int, channel_id: int | None) -> None:
        """Move a connected member into a voice channel, or disconnect them (None).

        NotInVoice when they are not connected.
        """
        ...

    async def delete_channel(self, channel_id: int) -> bool:
        """Delete a channel; False when it was already gone (404 counts as done)."""
        ...
