"""The py-cord bot: gateway events that feed reconciliation and live moves."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord
from discord.state import ConnectionState

from services.voice.global_limit import GlobalLimit
from services.voice.metered_http import MeteredHTTPClient
from services.voice.metrics import VoiceMetrics

logger = logging.getLogger(__name__)


class BotEvents(Protocol):
    """What the bot tells the rest of the service, and whether the bot may act."""

    @property
    def acting(self) -> bool:
        """Whether this replica holds the voice lease: commands are answered only then."""
        ...

    async def gateway_ready(self) -> None:
        """The gateway session is (re)established: time to reconcile."""
        ...

    async def gateway_lost(self) -> None:
        """The gateway connection dropped: voice states go stale until the next ready."""
        ...

    async def voice_changed(self, user_id: int, before: int | None, after: int | None) -> None:
        """A member of the guild connected, moved or disconnected."""
        ...


GUILD_READY_TIMEOUT_S = 0.25
"""How long py-cord waits after READY for a further GUILD_CREATE before `on_ready` (its
default, 2s, suits a bot in many guilds). This bot has one guild, whose GUILD_CREATE follows
READY at once; should it come later, `on_ready` waits for it (see `on_guild_available`). It
is part of every takeover by a standby, so it is kept short."""


class VoiceBot(discord.Bot):
    """A py-cord Bot for one guild, with guild slash commands and the voice-state intent only."""

    def __init__(
        self,
        *,
        guild_id: int,
        events: BotEvents,
        metrics: VoiceMetrics,
        global_limit: GlobalLimit | None = None,
        **options: object,
    ) -> None:
        self._metrics = metrics
        self._global_limit = global_limit
        options.setdefault("guild_ready_timeout", GUILD_READY_TIMEOUT_S)
        super().__init__(
            intents=discord.Intents.default(),
            debug_guilds=[guild_id],
            **options,
        )
        self.guild_id = guild_id
        self._events = events
        self._awaiting_guild = False
        self.ready_count = 0
        """How many times the gateway became ready or resumed (tests wait on it)."""

    def _get_state(self, **options: Any) -> ConnectionState:
        """py-cord's own step between making its HTTP client and handing it on: the metered
        client takes its place (see services/voice/metered_http.py)."""
        self.http = MeteredHTTPClient(self._metrics, self.http, self._global_limit)
        return super()._get_state(**options)

    async def _reconcile(self, why: str) -> None:
        logger.info("gateway %s: reconciling", why)
        try:
            await self._events.gateway_ready()
        finally:
            self.ready_count += 1

    async def on_connect(self) -> None:
        """Sync the slash commands (a write to Discord) only while this replica acts."""
        if self._events.acting:
            await super().on_connect()

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Run a slash command only while this replica acts: a replica that lost the lease
        leaves the interaction to the one that holds it."""
        if not self._events.acting:
            logger.info("interaction %s left to the active voice replica", interaction.id)
            return
        await super().on_interaction(interaction)

    async def on_ready(self) -> None:
        """Fires after the first connect and again after every full reconnect."""
        if self.get_guild(self.guild_id) is None:
            # Reconciling without the guild in the cache would see no channel and no voice.
            logger.warning("gateway ready before guild %s arrived: waiting for it", self.guild_id)
            self._awaiting_guild = True
            return
        await self._reconcile("ready")

    async def on_guild_available(self, guild: discord.Guild) -> None:
        """The guild arrived after READY (a GUILD_CREATE later than the ready timeout)."""
        if guild.id == self.guild_id and self._awaiting_guild:
            self._awaiting_guild = False
            await self._reconcile("ready")

    async def on_resumed(self) -> None:
        """Fires after a resumed session; events may have been missed meanwhile."""
        await self._reconcile("resumed")

    async def on_disconnect(self) -> None:
        """Fires whenever the gateway connection drops (py-cord reconnects by itself)."""
        logger.info("gateway disconnected")
        await self._events.gateway_lost()

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Pass voice moves in our guild on to the match logic."""
        if member.guild.id != self.guild_id or member.bot:
            return
        await self._events.voice_changed(
            member.id,
            before.channel.id if before.channel is not None else None,
            after.channel.id if after.channel is not None else None,
        )
