"""`DiscordPort` through py-cord: the guild cache for reads, our own REST client for creates
and moves."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any

import discord

from services.kit.errors import FailedPrecondition, Unavailable
from services.voice.discord_errors import (
    DISCORD_ERRORS,
    NOT_CONNECTED_TO_VOICE,
    category_full,
    translate,
)
from services.voice.discord_port import NotInVoice
from services.voice.discord_rest import DiscordRest
from services.voice.gateway_lag import DEFAULT_LAG_S, GatewayLag
from services.voice.global_limit import GlobalLimit
from services.voice.learned_limits import LearnedLimit
from services.voice.metrics import VoiceMetrics
from services.voice.overwrites import (
    overwrites_payload,
    staff_outdated,
    staff_roles,
    team_overwrites,
)

logger = logging.getLogger(__name__)

MAX_CHANNELS_PER_CATEGORY = 50


def _always() -> None:
    """A guard that lets every write through (one replica, or tests of the port alone)."""


class PycordDiscord:
    """DiscordPort over a py-cord client connected to the gateway.

    `guard()` runs right before each write is sent (each attempt, after any rate-limit wait)
    and raises to stop it: the voice lease's check, so a replica that lost the lease writes
    nothing more.
    """

    def __init__(
        self,
        client: discord.Client,
        guild_id: int,
        category_id: int | None,
        metrics: VoiceMetrics,
        *,
        category_limit: int = MAX_CHANNELS_PER_CATEGORY,
        gateway_lag_s: float = DEFAULT_LAG_S,
        staff_role_ids: Collection[int] = (),
        guard: Callable[[], None] = _always,
        global_limit: GlobalLimit | None = None,
        learned: Callable[[LearnedLimit], None] | None = None,
    ) -> None:
        self._client = client
        self._guard = guard
        self._staff_role_ids = tuple(sorted(staff_role_ids))
        """Roles allowed in every match channel, as players are (DISCORD_STAFF_ROLE_IDS)."""
        self._guild_id = guild_id
        self._category_id = category_id
        self._category_limit = category_limit
        self._made_in_category: set[int] = set()
        """Channels this process created in the category (the cache learns of them later)."""
        self._creating_in_category = 0
        self._full_at: int | None = None
        """The category's channel count when Discord last said it was full (50035)."""
        self._metrics = metrics
        self._rest = DiscordRest(
            client.http, metrics, guard=guard, global_limit=global_limit, learned=learned
        )
        self._lag = GatewayLag(lag_s=gateway_lag_s)
        client.add_listener(self._channel_created, "on_guild_channel_create")
        client.add_listener(self._voice_state_updated, "on_voice_state_update")

    async def _channel_created(self, channel: discord.abc.GuildChannel) -> None:
        self._lag.announced(channel.id)

    async def _voice_state_updated(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        self._lag.voice_reported(member.id, after.channel.id if after.channel else None)

    def seed_limits(self, limits: Iterable[LearnedLimit]) -> None:
        """Start the REST path's rate-limit buckets from what an earlier run learned."""
        self._rest.seed(limits)

    async def close(self) -> None:
        """Close the concurrent REST path's HTTP session."""
        await self._rest.close()

    def _guild(self) -> discord.Guild:
        guild = self._client.get_guild(self._guild_id)
        if guild is None:
            raise Unavailable(f"the bot is not connected to Discord guild {self._guild_id} yet")
        return guild

    def _bot_id(self) -> int:
        user = self._client.user
        if user is None:
            raise Unavailable("the bot is not logged in to Discord yet")
        return user.id

    def _overwrites(
        self, guild: discord.Guild, member_ids: Collection[int]
    ) -> dict[Any, discord.PermissionOverwrite]:
        staff = staff_roles(guild, self._staff_role_ids)
        return team_overwrites(guild, self._bot_id(), member_ids, staff)

    def is_staff(self, user_id: int) -> bool:
        member = self._guild().get_member(user_id)
        return member is not None and any(r.id in self._staff_role_ids for r in member.roles)

    def sees_every_channel(self, user_id: int) -> bool:
        member = self._guild().get_member(user_id)
        if member is not None and member.guild_permissions.administrator:
            return True
        return self.is_staff(user_id)

    def staff_access_outdated(self, channel_id: int) -> bool:
        guild = self._guild()
        channel = guild.get_channel(channel_id)
        if not isinstance(channel, discord.VoiceChannel):
            return False
        return staff_outdated(channel, staff_roles(guild, self._staff_role_ids))

    async def is_member(self, user_id: int) -> bool:
        guild = self._guild()
        if guild.get_member(user_id) is not None:
            return True
        try:
            await guild.fetch_member(user_id)
        except discord.NotFound:
            return False
        except DISCORD_ERRORS as error:
            raise translate(error, "look up a guild member", "VIEW_CHANNEL") from error
        return True

    def voice_channel_of(self, user_id: int) -> int | None:
        # Not guild.get_member(user_id).voice: without the members intent py-cord does not cache
        # the members GUILD_CREATE lists, so after a (re)connect a player already waiting in
        # voice has a voice state but no cached member. Member.voice reads this same map.
        state = self._guild()._voice_state_for(user_id)
        cached = None if state is None or state.channel is None else state.channel.id
        return self._lag.voice_channel_of(user_id, cached)

    def occupants(self, channel_id: int) -> list[int]:
        channel = self._guild().get_channel(channel_id)
        cached = channel.voice_states if isinstance(channel, discord.VoiceChannel) else ()
        return self._lag.occupants(channel_id, cached)

    def may_join(self, user_id: int, channel_id: int) -> bool:
        # py-cord caches the members it sees in voice (with their roles), so for a member who
        # just arrived in the channel this is Discord's own computation, admins included.
        guild = self._guild()
        channel = guild.get_channel(channel_id)
        member = guild.get_member(user_id)
        if not isinstance(channel, discord.VoiceChannel) or member is None:
            return True
        allowed = channel.permissions_for(member)
        return allowed.view_channel and allowed.connect

    def channel_cached(self, channel_id: int) -> bool:
        return self._guild().get_channel(channel_id) is not None

    async def channel_exists(self, channel_id: int) -> bool:
        guild = self._guild()
        if guild.get_channel(channel_id) is not None:
            return True
        try:
            # Through the Discord client of the moves and creates: after a restart, one lookup
            # per open match whose channel the cache lacks, within the same global limit.
            data = await self._rest.fetch_channel(channel_id)
        except DISCORD_ERRORS as error:
            raise translate(error, "look up a channel", "VIEW_CHANNEL") from error
        return data is not None and str(data.get("guild_id")) == str(guild.id)

    def bot_channels_named(self, name: str) -> list[int]:
        guild = self._guild()
        me: Any = discord.Object(self._bot_id())
        found = []
        for channel in guild.voice_channels:
            if channel.name != name:
                continue
            mine = channel.overwrites_for(me).manage_channels is True
            private = channel.overwrites_for(guild.default_role).view_channel is False
            if mine and private:
                found.append(channel.id)
        return sorted(found)

    def _category(self, guild: discord.Guild) -> discord.CategoryChannel | None:
        if self._category_id is None:
            return None
        category = guild.get_channel(self._category_id)
        if not isinstance(category, discord.CategoryChannel):
            logger.warning(
                "DISCORD_CATEGORY_ID %s is not a category of the guild; creating without one",
                self._category_id,
            )
            return None
        return category

    def _category_count(self, category: discord.CategoryChannel) -> int:
        return len({c.id for c in category.channels} | self._made_in_category)

    def _category_with_room(self, guild: discord.Guild) -> discord.CategoryChannel | None:
        """The category, unless its cached count (with creates under way) says it is full.

        A "full" answer from Discord is remembered until the category holds fewer channels
        than it did then (one of its channels was deleted), so a full category costs no call.
        """
        category = self._category(guild)
        if category is None:
            return None
        count = self._category_count(category)
        if self._full_at is not None:
            if count >= self._full_at:
                return None
            self._full_at = None
        if count + self._creating_in_category >= self._category_limit:
            return None
        return category

    async def create_private_channel(self, name: str, member_ids: Collection[int]) -> int:
        guild = self._guild()
        overwrites = self._overwrites(guild, member_ids)
        category = self._category_with_room(guild)
        needs = "MANAGE_CHANNELS, VIEW_CHANNEL, CONNECT and MOVE_MEMBERS"
        try:
            if category is not None:
                channel = await self._create_in_category(guild, category, name, overwrites)
                if channel is not None:
                    return channel.id
            channel = await self._create_voice_channel(guild, name, overwrites, None)
        except DISCORD_ERRORS as error:
            raise translate(error, "create a voice channel", needs) from error
        return channel.id

    async def _create_voice_channel(
        self,
        guild: discord.Guild,
        name: str,
        overwrites: dict[Any, discord.PermissionOverwrite],
        category: discord.CategoryChannel | None,
    ) -> discord.VoiceChannel:
        """`guild.create_voice_channel`, but sent beside py-cord's per-bucket lock.

        The channel joins py-cord's cache at once, as `create_voice_channel` does, so
        `guild.get_channel` and the category's channel count see it before CHANNEL_CREATE;
        moves into it wait for that event, unless it already came.
        """
        payload: dict[str, Any] = {
            "type": discord.ChannelType.voice.value,
            "name": name,
            "permission_overwrites": overwrites_payload(overwrites),
        }
        if category is not None:
            payload["parent_id"] = category.id
        data = await self._rest.create_channel(guild.id, payload, "FACEIT match started")
        channel = discord.VoiceChannel(state=guild._state, guild=guild, data=data)  # type: ignore[arg-type]
        if guild.get_channel(channel.id) is None:
            self._lag.created(channel.id)
        guild._add_channel(channel)
        return channel

    async def _create_in_category(
        self,
        guild: discord.Guild,
        category: discord.CategoryChannel,
        name: str,
        overwrites: dict[Any, discord.PermissionOverwrite],
    ) -> discord.VoiceChannel | None:
        """The channel created in the category; None when Discord says the category is full."""
        self._creating_in_category += 1
        try:
            channel = await self._create_voice_channel(guild, name, overwrites, category)
        except discord.HTTPException as error:
            if not category_full(error):
                raise
            self._full_at = self._category_count(category)
            logger.warning(
                "category %s is full (CHANNEL_PARENT_MAX_CHANNELS); creating %r without one",
                category.id,
                name,
            )
            return None
        finally:
            self._creating_in_category -= 1
        self._made_in_category.add(channel.id)
        return channel

    async def set_members(self, channel_id: int, member_ids: Collection[int]) -> bool:
        guild = self._guild()
        channel = guild.get_channel(channel_id)
        try:
            if not isinstance(channel, discord.VoiceChannel):
                fetched = await guild.fetch_channel(channel_id)
                if not isinstance(fetched, discord.VoiceChannel):
                    raise FailedPrecondition(f"channel {channel_id} is not a voice channel")
                channel = fetched
            me = guild.get_member(self._bot_id())
            if me is None or not channel.permissions_for(me).manage_roles:
                return False
            self._guard()
            await channel.edit(
                overwrites=self._overwrites(guild, member_ids), reason="FACEIT roster changed"
            )
        except DISCORD_ERRORS as error:
            raise translate(
                error,
                "update the channel's member access",
                "MANAGE_CHANNELS and MANAGE_ROLES (Manage Permissions) on the channel",
            ) from error
        return True

    async def move(self, user_id: int, channel_id: int | None) -> None:
        if channel_id is not None:
            await self._lag.until_announced(channel_id)
        self._lag.moving(user_id, channel_id)
        try:
            await self._send_move(user_id, channel_id)
        except BaseException as error:
            self._lag.move_failed(user_id)
            if isinstance(error, Exception):
                outcome = "not_in_voice" if isinstance(error, NotInVoice) else "refused"
                self._metrics.moves.labels(outcome=outcome).inc()
            raise
        self._lag.moved(user_id)
        self._metrics.moves.labels(outcome="moved").inc()

    async def _send_move(self, user_id: int, channel_id: int | None) -> None:
        try:
            await self._rest.edit_member(
                self._guild_id, user_id, {"channel_id": channel_id}, "FACEIT match channel"
            )
        except discord.HTTPException as error:
            if error.code == NOT_CONNECTED_TO_VOICE:
                raise NotInVoice(str(user_id)) from error
            raise translate(error, "move a member", "MOVE_MEMBERS and CONNECT") from error
        except DISCORD_ERRORS as error:
            raise translate(error, "move a member", "MOVE_MEMBERS and CONNECT") from error

    async def delete_channel(self, channel_id: int) -> bool:
        self._made_in_category.discard(channel_id)
        self._lag.announced(channel_id)  # nothing to wait for in a channel that is going
        self._guard()
        try:
            await self._client.http.delete_channel(channel_id, reason="FACEIT match ended")
        except discord.NotFound:
            return False
        except DISCORD_ERRORS as error:
            raise translate(error, "delete a voice channel", "MANAGE_CHANNELS") from error
        return True
