"""The start-up check reads guild permissions: Discord judges create overwrites on those."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.discord import permissions as p
from services.voice.startup import StartupError
from tests.services.voice.system import VoiceSystem, voice_system


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def test_rights_granted_only_on_the_category_are_refused_at_start(
    system: VoiceSystem,
) -> None:
    """A bot whose role has its rights only on DISCORD_CATEGORY_ID is refused, naming them."""
    weak = await system.control.create_guild("category only", bot_permissions=p.VIEW_CHANNEL)
    grant = [{"id": weak["bot_role_id"], "type": 0, "allow": str(p.DEFAULT_BOT), "deny": "0"}]
    category = await system.control.create_channel(
        weak["guild_id"], "Matches", type=4, permission_overwrites=grant
    )
    service = system.build(
        discord_guild_id=int(weak["guild_id"]),
        discord_category_id=int(category["channel_id"]),
    )
    with pytest.raises(StartupError, match="MANAGE_CHANNELS, MOVE_MEMBERS"):
        await service.check_discord()
    await service.bot.close()
