"""The voice lease inside the running service: a holder that cannot renew stops acting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from services.kit.database import create_pool
from services.voice.lease import FencingToken
from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.services.voice.tcp_proxy import TcpProxy
from tests.support import eventually

MATCH = "1-5f1b7c2e-93a4-4c1e-8a55-0c4d1e2f3a4b"
MOVE_ROUTE = "/guilds/{guild_id}/members/{user_id}"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def test_a_holder_cut_off_from_the_database_stops_acting_until_it_renews(
    system: VoiceSystem, fresh_database: str
) -> None:
    """Renewals failing, the holder stops before its lease could run out: NOT_SERVING, a
    player's move into the lobby ignored, OpenMatch UNAVAILABLE, no Discord write. Renewed
    with its token (nobody took over), it reconciles and moves the waiting player in."""
    async with TcpProxy.serving(fresh_database) as proxy:
        fencing = FencingToken(idle_in_transaction_s=0.3)
        pool = await create_pool(proxy.dsn(fresh_database), max_size=5, connect=fencing.connect)
        try:
            service = await system.start_voice(
                pool=pool, fencing=fencing, lease_timeout_s=1.2, lease_renew_s=0.3
            )
            assert system.stub is not None
            alice = await system.member("alice", faceit_id="p-alice")
            await system.member("bob", faceit_id="p-bob")
            opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-alice"], ["p-bob"]))
            team = {c.faction: c.channel_id for c in opened.match.channels}["faction1"]
            seen = await system.control.audit_log()
            after = int(seen[-1]["seq"])

            await proxy.down()

            async def not_serving() -> bool:
                return await system.health_status() == "NOT_SERVING"

            await eventually(not_serving, timeout=5, what="the holder to stop serving")
            assert not service.lease.held
            await system.control.set_voice(system.guild_id, alice, system.lobby_id)

            async def ignored() -> bool:
                return service.ignored_moves >= 1

            await eventually(ignored, timeout=5, what="the bot to ignore alice's move")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await system.stub.OpenMatch(match(MATCH, 2, ["p-alice"], ["p-bob"]))
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
            writes = [
                e for e in await system.control.audit_log(after=after) if e["method"] != "GET"
            ]
            assert writes == []

            await proxy.up()
            await system.wait_in(alice, team)
            moves = await system.control.audit_log(method="PATCH", route=MOVE_ROUTE, after=after)
            assert len(moves) == 1
            assert service.lease.token == 1
        finally:
            await system.stop_voice()
            await pool.close()
