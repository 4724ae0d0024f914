"""The watch of the registry's link changes: each change reaches the open matches at once, and
the sequence of the last one applied is saved so that a restart of either side loses none."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import grpc
import grpc.aio
from faceitvoice.v1 import registry_service_pb2 as pb

from services.kit.call_errors import Failure, classify
from services.kit.database import DATABASE_UNAVAILABLE
from services.kit.errors import DeadlineExceeded, DomainError, Unavailable
from services.voice.registry_client import RegistryClient
from services.voice.store import VoiceStore

logger = logging.getLogger(__name__)

STREAM_TIMEOUT_S = 3_600.0
"""The stream's deadline; when it passes, the watch resumes from the saved sequence."""


class LinkWatcher:
    """Applies every link change in order; `run()` until cancelled.

    A change is applied, then its sequence saved: one applied but not saved when the process
    stops is applied again, which changes nothing. OUT_OF_RANGE (changes pruned, or another
    registry database) resynchronises every open match, then watches from 0 again.
    UNAUTHENTICATED, PERMISSION_DENIED and UNIMPLEMENTED end `run()`, and the service with it;
    other stream errors, and a database outage, are retried after a growing pause.
    """

    def __init__(
        self,
        registry: RegistryClient,
        store: VoiceStore,
        *,
        apply: Callable[[pb.LinkChange], Awaitable[None]],
        resync: Callable[[], Awaitable[object]],
        first_retry_s: float = 0.2,
        max_retry_s: float = 30.0,
        stream_timeout_s: float = STREAM_TIMEOUT_S,
    ) -> None:
        self._registry = registry
        self._store = store
        self._apply = apply
        self._resync = resync
        self._first_retry_s = first_retry_s
        self._max_retry_s = max_retry_s
        self._stream_timeout_s = stream_timeout_s
        self.applied = 0
        """How many changes were applied since start (tests wait on it)."""
        self.connections = 0
        """How many times a stream was opened (tests wait on it)."""

    async def run(self) -> None:
        """Watch, apply and save, resuming after each interruption, until cancelled."""
        pause = self._first_retry_s
        while True:
            try:
                if await self._session():
                    pause = self._first_retry_s
            except grpc.aio.AioRpcError as error:
                # A misconfiguration no retry fixes stops the service loudly. A transient
                # failure (the registry restarting, the stream's deadline) is a warning; any
                # other (INTERNAL from a registry bug, say) an error, retried all the same: a
                # failing watch must not take the channels of every open match down with it.
                failure = classify(error)
                if failure is Failure.MISCONFIGURED:
                    raise
                level = logging.WARNING if failure is Failure.TRANSIENT else logging.ERROR
                logger.log(
                    level,
                    "link change stream interrupted (%s %s); resuming in %.1fs",
                    error.code().name,
                    error.details(),
                    pause,
                )
            except (Unavailable, DeadlineExceeded) as error:
                logger.warning("link changes not applied (%s); retrying in %.1fs", error, pause)
            except DATABASE_UNAVAILABLE as error:
                # The change was not saved as applied: the next stream delivers it again.
                logger.warning(
                    "link changes not applied: database unavailable (%r); retrying in %.1fs",
                    error,
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._max_retry_s)

    async def _session(self) -> bool:
        """One stream, or the resync it asks for; whether it got anywhere."""
        try:
            return await self._watch()
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.OUT_OF_RANGE:
                raise
            logger.warning("link changes out of range (%s): resynchronising", error.details())
        await self._resync()
        await self._store.save_link_sequence(0)
        return True

    async def _watch(self) -> bool:
        """One stream from the saved sequence; whether it delivered any change."""
        after = await self._store.link_sequence()
        self.connections += 1
        delivered = False
        changes = self._registry.watch_link_changes(after, self._stream_timeout_s)
        async with contextlib.aclosing(changes):
            async for change in changes:
                delivered = True
                await self._apply_one(change)
                await self._store.save_link_sequence(change.sequence)
                self.applied += 1
        return delivered

    async def _apply_one(self, change: pb.LinkChange) -> None:
        try:
            await self._apply(change)
        except (Unavailable, DeadlineExceeded):
            raise
        except DomainError as error:
            # Retrying will not fix it (Discord refused, the registry failed for good): the
            # next change, reconciliation or resync heals what this one could not do.
            logger.warning(
                "link change %s of discord user %s not applied: %s",
                change.sequence,
                change.link.discord_user_id,
                error.message,
            )
