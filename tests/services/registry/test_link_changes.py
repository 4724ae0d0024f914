"""WatchLinkChanges over real gRPC and Postgres: every link made, replaced or removed, in
order, live, and resumable from a sequence across a registry restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import grpc
import grpc.aio
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb

from services.registry.change_log import NOTIFY_CHANNEL
from services.registry.links import FaceitAccount
from services.registry.servicer import LinkChangeFeed
from services.registry.store import PlayerLinkRepository
from tests.services.registry.conftest import Registry, running_registry
from tests.support import eventually

Kind = pb.LinkChange.Kind
DEADLINE_S = 10.0


@asynccontextmanager
async def watching(
    registry: Registry, after: int = 0
) -> AsyncIterator[asyncio.Queue[pb.LinkChange]]:
    """A WatchLinkChanges stream from `after`, its changes put on a queue as they arrive."""
    changes: asyncio.Queue[pb.LinkChange] = asyncio.Queue()
    call = registry.stub.WatchLinkChanges(pb.WatchLinkChangesRequest(after_sequence=after))

    async def pump() -> None:
        async for response in call:
            changes.put_nowait(response.change)

    task = asyncio.create_task(pump())
    try:
        yield changes
    finally:
        call.cancel()
        task.cancel()
        with_errors = await asyncio.gather(task, return_exceptions=True)
        assert all(isinstance(e, asyncio.CancelledError | None) for e in with_errors)


async def take(changes: asyncio.Queue[pb.LinkChange], count: int) -> list[pb.LinkChange]:
    """The next `count` changes, each within the deadline."""
    return [await asyncio.wait_for(changes.get(), DEADLINE_S) for _ in range(count)]


def summary(changes: list[pb.LinkChange]) -> list[tuple[int, int, str]]:
    """(kind, Discord user, FACEIT nickname) of each change."""
    return [(c.kind, c.link.discord_user_id, c.link.faceit_nickname) for c in changes]


async def link(registry: Registry, discord_user_id: int, nickname: str) -> None:
    """LinkPlayer (nickname mode)."""
    await registry.stub.LinkPlayer(
        pb.LinkPlayerRequest(discord_user_id=discord_user_id, faceit_nickname=nickname)
    )


async def unlink(registry: Registry, discord_user_id: int) -> None:
    """UnlinkPlayer."""
    await registry.stub.UnlinkPlayer(pb.UnlinkPlayerRequest(discord_user_id=discord_user_id))


async def test_links_and_unlinks_stream_live_in_order(registry: Registry) -> None:
    """A watcher from 0 gets each link and unlink as it is committed, with increasing sequences."""
    for nickname in ("s1mple", "zywoo"):
        registry.sandbox.world.add_player(nickname)
    async with watching(registry) as changes:
        await link(registry, 1, "s1mple")
        first = await take(changes, 1)
        await link(registry, 2, "zywoo")
        await unlink(registry, 1)
        rest = await take(changes, 2)

    seen = first + rest
    assert summary(seen) == [
        (Kind.KIND_LINKED, 1, "s1mple"),
        (Kind.KIND_LINKED, 2, "zywoo"),
        (Kind.KIND_UNLINKED, 1, "s1mple"),
    ]
    sequences = [change.sequence for change in seen]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3
    assert all(change.changed_at.seconds > 0 for change in seen)
    assert not seen[0].link.verified


async def test_nothing_is_streamed_for_a_call_that_changes_nothing(registry: Registry) -> None:
    """Linking the same account again and unlinking nobody write no change."""
    registry.sandbox.world.add_player("s1mple")
    await link(registry, 1, "s1mple")
    await link(registry, 1, "s1mple")
    with pytest.raises(grpc.aio.AioRpcError):
        await unlink(registry, 2)
    await unlink(registry, 1)

    async with watching(registry) as changes:
        seen = await take(changes, 2)
        await asyncio.sleep(0)  # let a third (wrong) change arrive if one was written
        extra = changes.qsize()

    assert summary(seen) == [(Kind.KIND_LINKED, 1, "s1mple"), (Kind.KIND_UNLINKED, 1, "s1mple")]
    assert extra == 0


async def test_a_watcher_resumes_after_a_registry_restart_without_losing_a_change(
    registry_database: str,
) -> None:
    """Changes made while the watcher was away, even across a registry restart, all arrive
    after the last sequence it handled, and none twice."""
    async with running_registry(registry_database, link_verification="nickname") as first:
        for nickname in ("a_one", "b_two", "c_three"):
            first.sandbox.world.add_player(nickname)
        await link(first, 1, "a_one")
        async with watching(first) as changes:
            handled = (await take(changes, 1))[-1].sequence
        await link(first, 2, "b_two")  # while nobody watches
    async with running_registry(registry_database, link_verification="nickname") as second:
        second.sandbox.world.add_player("c_three")
        await link(second, 3, "c_three")
        async with watching(second, after=handled) as changes:
            resumed = await take(changes, 2)
            await unlink(second, 1)
            live = await take(changes, 1)

    assert summary(resumed + live) == [
        (Kind.KIND_LINKED, 2, "b_two"),
        (Kind.KIND_LINKED, 3, "c_three"),
        (Kind.KIND_UNLINKED, 1, "a_one"),
    ]
    assert all(change.sequence > handled for change in resumed)


async def test_a_sequence_never_issued_is_out_of_range(registry: Registry) -> None:
    """Resuming past the last sequence (another database) is OUT_OF_RANGE, not a silent wait."""
    registry.sandbox.world.add_player("s1mple")
    await link(registry, 1, "s1mple")
    call = registry.stub.WatchLinkChanges(pb.WatchLinkChangesRequest(after_sequence=1000))

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()

    assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "ListPlayerLinks" in (refused.value.details() or "")


async def test_a_sequence_older_than_the_kept_changes_is_out_of_range(registry: Registry) -> None:
    """Once old changes are pruned, resuming before them is OUT_OF_RANGE; resuming at the last
    pruned one, or from 0, still works."""
    pruning = PlayerLinkRepository(registry.pool, retention=timedelta(0))
    for number in (1, 2, 3):  # each write prunes the changes of the writes before it
        await pruning.insert(number, FaceitAccount(player_id=f"p-{number}", nickname=f"n{number}"))
    old = registry.stub.WatchLinkChanges(pb.WatchLinkChangesRequest(after_sequence=1))

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await old.read()
    async with watching(registry, after=2) as at_horizon, watching(registry) as from_zero:
        kept = await take(at_horizon, 1) + await take(from_zero, 1)

    assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "pruned" in (refused.value.details() or "")
    assert summary(kept) == [(Kind.KIND_LINKED, 3, "n3")] * 2


async def test_a_negative_sequence_is_invalid(registry: Registry) -> None:
    """after_sequence below 0 is INVALID_ARGUMENT."""
    call = registry.stub.WatchLinkChanges(pb.WatchLinkChangesRequest(after_sequence=-1))

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_watch_outlives_the_loss_of_its_listening_connection(
    registry_database: str,
) -> None:
    """When the server ends the LISTEN connection (a database restart does), the open stream
    neither fails nor misses the next change: it listens again or polls."""
    async with running_registry(registry_database, link_verification="nickname") as registry:
        for nickname in ("a_one", "b_two"):
            registry.sandbox.world.add_player(nickname)
        async with watching(registry) as changes:
            await link(registry, 1, "a_one")
            await take(changes, 1)
            admin = await asyncpg.connect(registry_database)
            try:
                ended = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            finally:
                await admin.close()
            assert ended == 1
            await link(registry, 2, "b_two")
            after_loss = await take(changes, 1)

    assert summary(after_loss) == [(Kind.KIND_LINKED, 2, "b_two")]


async def test_a_live_change_reaches_the_watcher_with_its_notification(registry: Registry) -> None:
    """Changes committed while a watcher waits reach it from the notifications that carry
    them, without a read of the log, and equal to what the log holds."""
    for nickname in ("s1mple", "zywoo"):
        registry.sandbox.world.add_player(nickname)

    def log_reads() -> int:
        return sum("WHERE sequence > $1" in query for query in registry.statements)

    async with watching(registry) as changes:
        await link(registry, 1, "s1mple")
        first = await take(changes, 1)
        reads = log_reads()
        await link(registry, 2, "zywoo")
        await unlink(registry, 1)
        live = await take(changes, 2)
        assert log_reads() == reads
    async with watching(registry) as changes:
        from_the_log = await take(changes, 3)

    assert first + live == from_the_log


async def test_a_notification_of_changes_already_sent_reads_nothing(
    registry: Registry, registry_database: str
) -> None:
    """A notification whose changes the watcher already sent (it read them from the log before
    the notification arrived) wakes it without a read of the log."""
    for nickname in ("s1mple", "zywoo"):
        registry.sandbox.world.add_player(nickname)
    payloads: list[str] = []
    listener = await asyncpg.connect(registry_database)
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: payloads.append(args[3]))

    def log_reads() -> int:
        return sum("WHERE sequence > $1" in query for query in registry.statements)

    async def heard() -> bool:
        return bool(payloads)

    try:
        async with watching(registry) as changes:
            await link(registry, 1, "s1mple")
            await take(changes, 1)
            await eventually(heard, what="the link's notification")
            reads = log_reads()
            # The link's notification once more: what a watcher hears when its first read of
            # the log came after the commit and before the notification.
            await listener.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payloads[0])
            await link(registry, 2, "zywoo")
            live = await take(changes, 1)
            assert log_reads() == reads
    finally:
        await listener.close()

    assert summary(live) == [(Kind.KIND_LINKED, 2, "zywoo")]


async def test_a_notification_without_its_changes_makes_the_watcher_read_the_log(
    registry: Registry,
) -> None:
    """A notification that does not carry its changes (they were too long for its payload)
    still wakes the watcher, which reads them from the log, sooner than its poll would."""
    registry.sandbox.world.add_player("s1mple")
    async with watching(registry) as changes:
        await link(registry, 1, "s1mple")
        await take(changes, 1)
        async with registry.pool.acquire() as connection, connection.transaction():
            await connection.execute("""
                INSERT INTO registry.link_changes (
                    kind, discord_user_id, faceit_player_id, faceit_nickname, avatar_url,
                    country, game, skill_level, faceit_elo, faceit_url, linked_at)
                VALUES ('linked', 2, 'p2', 'zywoo', '', '', 'cs2', 0, 0, '', now())
            """)
            await connection.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        (logged,) = [await asyncio.wait_for(changes.get(), LinkChangeFeed.poll_interval_s / 2)]

    assert summary([logged]) == [(Kind.KIND_LINKED, 2, "zywoo")]
