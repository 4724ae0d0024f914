"""Reconciliation after a restart: the matches are repaired side by side, not one by one."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg

from services.voice.reconcile import Reconciler
from tests.services.voice.test_matches import build, spec
from tests.support import eventually


async def test_matches_are_reconciled_side_by_side(voice_pool: asyncpg.Pool) -> None:
    """Three open matches that lost their channels are recreated at once, each then complete."""
    world = build(voice_pool)
    world.resolver.links = {"p1": 1, "p2": 2}
    world.discord.guild_members = {1, 2}
    ids = [f"{n}-reconcile-{n}" for n in range(3)]
    for match_id in ids:
        await world.service.open_match(dataclasses.replace(spec(), match_id=match_id))
    for channel_id in list(world.discord.channels):
        await world.discord.delete_channel(channel_id)
    gate = world.discord.create_gate = asyncio.Event()
    reconciler = Reconciler(world.store, world.cache, world.service)
    task = asyncio.create_task(reconciler.run())

    async def all_three_creating() -> bool:
        return world.discord.creating >= 3

    await eventually(all_three_creating, what="the three matches' creates under way together")
    gate.set()
    await task
    for match_id in ids:
        record = await world.service.get_match(match_id)
        assert all(c.channel_id in world.discord.channels for c in record.channels)
        assert len(record.channels) == 2
