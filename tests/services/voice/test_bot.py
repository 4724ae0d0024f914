"""VoiceBot's own decisions, without a gateway: when it reconciles and when it stays silent."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import discord

from services.voice.bot import VoiceBot
from services.voice.metrics import VoiceMetrics

GUILD_ID = 42


class Events:
    """BotEvents that count what the bot asked for; `acting` is set by the test."""

    def __init__(self, *, acting: bool = True) -> None:
        self.acting = acting
        self.ready = 0

    async def gateway_ready(self) -> None:
        self.ready += 1

    async def gateway_lost(self) -> None:
        raise AssertionError("not expected")

    async def voice_changed(self, user_id: int, before: int | None, after: int | None) -> None:
        raise AssertionError("not expected")


def guild(guild_id: int) -> discord.Guild:
    """A stand-in for a guild that arrived over the gateway (only its id is read)."""
    return cast(discord.Guild, SimpleNamespace(id=guild_id))


async def test_ready_before_the_guild_arrives_reconciles_once_it_does() -> None:
    """on_ready with the guild not yet cached waits; the guild's late arrival reconciles once."""
    events = Events()
    bot = VoiceBot(guild_id=GUILD_ID, events=events, metrics=VoiceMetrics())
    try:
        await bot.on_ready()
        assert events.ready == 0
        await bot.on_guild_available(guild(GUILD_ID + 1))
        assert events.ready == 0
        await bot.on_guild_available(guild(GUILD_ID))
        await bot.on_guild_available(guild(GUILD_ID))
        assert events.ready == 1
    finally:
        await bot.close()


async def test_a_replica_that_does_not_act_neither_answers_commands_nor_syncs_them() -> None:
    """Without the lease, interactions are left alone and on_connect writes no commands."""
    bot = VoiceBot(guild_id=GUILD_ID, events=Events(acting=False), metrics=VoiceMetrics())
    try:
        # A real interaction would be parsed and answered; this one fails on any use.
        await bot.on_interaction(cast(discord.Interaction, SimpleNamespace(id=1)))
        await bot.on_connect()  # no HTTP session: a sync would raise
    finally:
        await bot.close()
