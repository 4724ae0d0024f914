"""Rate limits learned by one voice run and started from by the next: real Postgres, and the
Discord sandbox, whose buckets answer with X-RateLimit-* headers and 429s as Discord's do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from faceitvoice.v1 import voice_service_pb2 as voice_pb

from services.kit.database import create_pool
from services.voice.learned_limits import LearnedLimit, LearnedLimitStore
from services.voice.lease import FencingToken
from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

CREATE_ROUTE = "/guilds/{guild_id}/channels"
CREATE_KEY = "POST %:{guild_id}:/guilds/{{guild_id}}/channels"
"""The route key of the guild's channel creates, as voice's REST client keys its buckets."""


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def _stored_creates(system: VoiceSystem) -> asyncpg.Record | None:
    """The stored bucket of the guild's channel creates, if any."""
    return await system.pool.fetchrow(
        "SELECT request_limit, remaining FROM voice.rate_limit_buckets WHERE route_key LIKE $1",
        CREATE_KEY.format(guild_id=system.guild_id),
    )


async def _until_stored(system: VoiceSystem, column: str, value: int) -> None:
    """Wait until the stored create bucket's `column` is `value`."""

    async def stored() -> bool:
        row = await _stored_creates(system)
        return row is not None and row[column] == value

    await eventually(stored, what=f"the create bucket stored with {column} {value}")


async def _open_warm_up(system: VoiceSystem, names: tuple[str, str]) -> None:
    """Open a first match (two creates) so that voice learns the create bucket and stores it."""
    assert system.stub is not None
    for name in names:
        await system.member(name, faceit_id=f"p-{name}")
    await system.stub.OpenMatch(match("m-warm", 1, [f"p-{names[0]}"], [f"p-{names[1]}"]))


async def _restart_and_open(
    system: VoiceSystem, names: tuple[str, str], *, create_latency_s: float = 0.0
) -> voice_pb.OpenMatchResponse:
    """Restart voice, then open a match of two new players (the audit log cleared before)."""
    await system.stop_voice()
    await system.start_voice()
    assert system.stub is not None
    for name in names:
        await system.member(name, faceit_id=f"p-{name}")
    if create_latency_s:
        await system.control.add_latency(create_latency_s, method="POST", route=CREATE_ROUTE)
    await system.control.clear_audit_log()
    return await system.stub.OpenMatch(match("m-next", 1, [f"p-{names[0]}"], [f"p-{names[1]}"]))


async def test_after_a_restart_a_buckets_first_requests_go_out_side_by_side(
    system: VoiceSystem,
) -> None:
    """After a restart the create bucket starts from the stored limit: both creates of a match
    are in flight together, the first not sent alone to learn the limit."""
    await system.start_voice()
    await _open_warm_up(system, ("abe", "bea"))
    await _until_stored(system, "request_limit", 50)

    opened = await _restart_and_open(system, ("cal", "dee"), create_latency_s=0.5)

    assert len(opened.match.channels) == 2
    creates = await system.control.audit_log(method="POST", route=CREATE_ROUTE)
    assert sorted(c["in_flight"] for c in creates) == [1, 2], creates


async def test_a_window_the_previous_run_used_up_is_waited_out_after_a_restart(
    system: VoiceSystem,
) -> None:
    """A restart within a create window the previous run used up waits for its end: no 429."""
    await system.control.set_rate_limits(routes=[("POST", CREATE_ROUTE, 2, 5.0)])
    await system.start_voice()
    await _open_warm_up(system, ("eli", "fay"))
    await _until_stored(system, "remaining", 0)

    opened = await _restart_and_open(system, ("gus", "hal"))

    assert len(opened.match.channels) == 2
    statuses = [c["status"] for c in await system.control.audit_log(method="POST")]
    assert statuses == [201, 201], statuses


async def test_discords_headers_override_a_stale_stored_limit(system: VoiceSystem) -> None:
    """A stored limit of 1 that Discord has raised to 50 since: after the first answer the
    creates go out side by side, without waiting out the 60 s window, and 50 is stored."""
    await system.control.set_rate_limits(routes=[("POST", CREATE_ROUTE, 1, 0.2)])
    await system.start_voice()
    await _open_warm_up(system, ("ida", "jon"))
    await _until_stored(system, "request_limit", 1)
    await system.stop_voice()
    await system.control.set_rate_limits(routes=[("POST", CREATE_ROUTE, 50, 60.0)])
    await system.start_voice()
    assert system.stub is not None
    names = ["kim", "lou", "max", "ned"]
    for name in names:
        await system.member(name, faceit_id=f"p-{name}")
    await system.control.add_latency(0.3, method="POST", route=CREATE_ROUTE)
    await system.control.clear_audit_log()

    opened = await asyncio.gather(
        system.stub.OpenMatch(match("m-a", 1, ["p-kim"], ["p-lou"])),
        system.stub.OpenMatch(match("m-b", 1, ["p-max"], ["p-ned"])),
    )

    assert [len(o.match.channels) for o in opened] == [2, 2]
    creates = await system.control.audit_log(method="POST", route=CREATE_ROUTE)
    assert [c["status"] for c in creates] == [201] * 4
    assert max(c["in_flight"] for c in creates) >= 2, creates
    await _until_stored(system, "request_limit", 50)


async def test_stored_limits_come_back_with_the_time_left_in_their_window(
    voice_pool: asyncpg.Pool,
) -> None:
    """A bucket whose window still runs comes back with its remaining count and about the time
    left; one whose window has ended comes back with an end in the past."""
    store = LearnedLimitStore(voice_pool, clock=lambda: 1000.0)
    store.learned(LearnedLimit("POST running", "abc", 5, 0, 1030.0))
    store.learned(LearnedLimit("PATCH over", "", 10, 3, 990.0))
    await store.flush()

    loaded = {limit.route_key: limit for limit in await store.load()}

    running, over = loaded["POST running"], loaded["PATCH over"]
    assert (running.bucket, running.limit, running.remaining) == ("abc", 5, 0)
    assert 1029.0 < running.reset_at <= 1030.0
    assert (over.limit, over.remaining) == (10, 3)
    assert over.reset_at <= 1000.0


async def test_a_superseded_replica_does_not_store_limits(
    voice_pool: asyncpg.Pool, fresh_database: str
) -> None:
    """A write under a fencing token that is not the lease's is refused and only logged."""
    await voice_pool.execute(
        "INSERT INTO voice.lease (holder, token, expires_at) VALUES ('b', 2, now())"
    )
    fencing = FencingToken(idle_in_transaction_s=1.0)
    fencing.value = 1
    stale = await create_pool(fresh_database, min_size=1, max_size=1, connect=fencing.connect)
    try:
        store = LearnedLimitStore(stale)
        store.learned(LearnedLimit("POST stale", "", 5, 5, 0.0))
        await store.flush()
    finally:
        await stale.close()

    assert await voice_pool.fetchval("SELECT count(*) FROM voice.rate_limit_buckets") == 0
