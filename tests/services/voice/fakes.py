"""Hand-written fakes of the voice service's own seams: the Discord port and the player resolver."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from services.kit.errors import Unavailable
from services.voice.discord_port import NotInVoice


@dataclass
class FakeChannel:
    """A channel as the fake Discord holds it."""

    channel_id: int
    name: str
    members: set[int]
    by_bot: bool = True


@dataclass
class FakeDiscord:
    """An in-memory DiscordPort: guild members, voice states and private channels."""

    guild_members: set[int] = field(default_factory=set)
    voice: dict[int, int] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    created: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    moves: list[tuple[int, int | None]] = field(default_factory=list)
    admins: set[int] = field(default_factory=set)
    """Members whose roles let them join every channel."""
    fail_creates: int = 0
    can_edit_overwrites: bool = True
    create_gate: asyncio.Event | None = None
    creating: int = 0
    """Creates waiting at the gate right now."""
    uncached: set[int] = field(default_factory=set)
    """Channels that exist but the guild cache lacks (a lookup finds them)."""
    lookups: list[int] = field(default_factory=list)
    """Channels looked up (the cache lacked them)."""
    lookup_gate: asyncio.Event | None = None
    fail_lookups: int = 0
    _next_id: int = 1000

    def add_voice_channel(self, name: str, *, by_bot: bool = False) -> int:
        """A pre-existing channel (a lobby, or a leftover of an interrupted create)."""
        self._next_id += 1
        self.channels[self._next_id] = FakeChannel(self._next_id, name, set(), by_bot)
        return self._next_id

    async def is_member(self, user_id: int) -> bool:
        return user_id in self.guild_members

    def voice_channel_of(self, user_id: int) -> int | None:
        return self.voice.get(user_id)

    def occupants(self, channel_id: int) -> list[int]:
        return sorted(uid for uid, cid in self.voice.items() if cid == channel_id)

    def may_join(self, user_id: int, channel_id: int) -> bool:
        channel = self.channels.get(channel_id)
        return channel is None or user_id in channel.members or user_id in self.admins

    def channel_cached(self, channel_id: int) -> bool:
        return channel_id in self.channels and channel_id not in self.uncached

    async def channel_exists(self, channel_id: int) -> bool:
        if self.channel_cached(channel_id):
            return True
        self.lookups.append(channel_id)
        if self.lookup_gate is not None:
            await self.lookup_gate.wait()
        if self.fail_lookups:
            self.fail_lookups -= 1
            raise Unavailable("Discord is down")
        return channel_id in self.channels

    def is_staff(self, user_id: int) -> bool:
        return False

    def sees_every_channel(self, user_id: int) -> bool:
        return False

    def staff_access_outdated(self, channel_id: int) -> bool:
        return False

    def bot_channels_named(self, name: str) -> list[int]:
        return sorted(c.channel_id for c in self.channels.values() if c.name == name and c.by_bot)

    async def create_private_channel(self, name: str, member_ids: Collection[int]) -> int:
        if self.create_gate is not None:
            self.creating += 1
            try:
                await self.create_gate.wait()
            finally:
                self.creating -= 1
        if self.fail_creates:
            self.fail_creates -= 1
            raise Unavailable("Discord is down")
        self._next_id += 1
        self.channels[self._next_id] = FakeChannel(self._next_id, name, set(member_ids))
        self.created.append(self._next_id)
        return self._next_id

    async def set_members(self, channel_id: int, member_ids: Collection[int]) -> bool:
        if not self.can_edit_overwrites:
            return False
        self.channels[channel_id].members = set(member_ids)
        return True

    async def move(self, user_id: int, channel_id: int | None) -> None:
        if user_id not in self.voice:
            raise NotInVoice(str(user_id))
        if channel_id is None:
            del self.voice[user_id]
        else:
            self.voice[user_id] = channel_id
        self.moves.append((user_id, channel_id))

    async def delete_channel(self, channel_id: int) -> bool:
        if self.channels.pop(channel_id, None) is None:
            return False
        for uid in [u for u, c in self.voice.items() if c == channel_id]:
            del self.voice[uid]
        self.deleted.append(channel_id)
        return True


@dataclass
class FakeResolver:
    """A PlayerResolver over a dict; counts calls and can be switched off."""

    links: dict[str, int] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    down: bool = False
    gate: asyncio.Event | None = None
    """When set, each lookup waits for it (after it is counted in `calls`)."""

    async def resolve_players(self, faceit_player_ids: Sequence[str]) -> dict[str, int]:
        self.calls.append(list(faceit_player_ids))
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise Unavailable("registry unreachable")
        return {p: self.links[p] for p in faceit_player_ids if p in self.links}
