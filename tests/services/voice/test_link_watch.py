"""LinkWatcher with fakes of our own seams: which stream failures it retries, which end it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import asyncpg
import grpc
import grpc.aio
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb

from services.voice.link_watch import LinkWatcher


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """An AioRpcError as a failed stream raises it."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "boom")


class Registry:
    """A registry seam whose first streams fail with the given codes, then send one change."""

    def __init__(self, *failures: grpc.StatusCode) -> None:
        self.failures = list(failures)

    async def watch_link_changes(
        self, after_sequence: int, timeout: float
    ) -> AsyncGenerator[pb.LinkChange]:
        if self.failures:
            raise rpc_error(self.failures.pop(0))
        yield pb.LinkChange(sequence=after_sequence + 1, kind=pb.LinkChange.Kind.KIND_LINKED)
        await asyncio.Event().wait()  # the stream stays open


class Store:
    """The store seam: the saved sequence in memory."""

    def __init__(self) -> None:
        self.sequence = 0

    async def link_sequence(self) -> int:
        return self.sequence

    async def save_link_sequence(self, sequence: int) -> None:
        self.sequence = sequence


def watcher(
    registry: Registry,
    applied: list[pb.LinkChange],
    done: asyncio.Event | None = None,
    *,
    failures: list[Exception] | None = None,
) -> LinkWatcher:
    """A watcher over the fakes that records what it applies, retrying without delay; the
    first applications raise `failures`, one each."""

    async def apply(change: pb.LinkChange) -> None:
        if failures:
            raise failures.pop(0)
        applied.append(change)
        if done is not None:
            done.set()

    async def resync() -> None:
        return None

    return LinkWatcher(
        registry,  # type: ignore[arg-type]
        Store(),  # type: ignore[arg-type]
        apply=apply,
        resync=resync,
        first_retry_s=0.0,
        max_retry_s=0.0,
    )


async def _applied_while_running(
    registry: Registry, *, failures: list[Exception] | None = None
) -> list[int]:
    """The sequences a running watch applied by its first success; it must still run then."""
    applied: list[pb.LinkChange] = []
    done = asyncio.Event()
    task = asyncio.create_task(watcher(registry, applied, done, failures=failures).run())
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        task.cancel()
    assert not task.done() or task.cancelled()
    return [change.sequence for change in applied]


async def test_an_internal_error_of_the_stream_is_retried_not_fatal() -> None:
    """A registry bug answering INTERNAL (or UNKNOWN) does not end the watch, and so voice:
    the next stream's change is applied."""
    registry = Registry(grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    assert await _applied_while_running(registry) == [1]


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED]
)
async def test_a_misconfiguration_ends_the_watch(code: grpc.StatusCode) -> None:
    """A token the registry refuses ends run() with the error: no retry fixes it."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(watcher(Registry(code), []).run(), 10)
    assert raised.value.code() is code


async def test_a_database_outage_while_applying_is_retried_not_fatal() -> None:
    """A change whose application loses the database connection does not end the watch, and
    so voice: the next stream delivers it again and it is applied."""
    failure = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")
    assert await _applied_while_running(Registry(), failures=[failure]) == [1]
