"""The py-cord bot: gateway events that feed reconciliation and live moves."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord
from discord.state import ConnectionState

from services.voice.metered_http import MeteredHTTPClient
from services.voice.metrics import VoiceMetrics

logger = logging.getLogger(__name__)


class BotEvents(Protocol):
    """What the bot tells the rest of the service."""

    async def gateway_ready(self) -> None:
        """The gateway session is (re)established: time to reconcile."""
        ...

    async def gateway_lost(self) -> None:
        """The gateway connection dropped: voice states go stale until the next ready."""
        ...

    async def voice_changed(self, user_id: int, before: int | None, after: int | None) -> None:
        """A member of the guild connected, moved or disconnected."""
        ...


class VoiceBot(discord.Bot):
    """A py-cord Bot for one guild, with guild slash commands and the voice-state intent only."""

    def __init__(
        self, *, guild_id: int, events: BotEvents, metrics: VoiceMetrics, **options: object
    ) -> None:
        self._metrics = metrics
        super().__init__(
            intents=discord.Intents.default(),
            debug_guilds=[guild_id],
            **options,
        )
        self.guild_id = guild_id
        self._events = events
        self.ready_count = 0
        """How many times the gateway became ready or resumed (tests wait on it)."""

    def _get_state(self, **options: Any) -> ConnectionState:
        """py-cord's own step between making its HTTP client and handing it on: the metered
        client takes its place (see services/voice/metered_http.py)."""
        self.http = MeteredHTTPClient(self._metrics, self.http)
        return super()._get_state(**options)

    async def _reconcile(self, why: str) -> None:
        logger.info("gateway %s: reconciling", why)
        try:
            await self._events.gateway_ready()
        finally:
            self.ready_count += 1

    async def on_ready(self) -> None:
        """Fires after the first connect and again after every full reconnect."""
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
