"""One asyncio lock per key, dropped when nobody holds or waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager


class LockWatch:
    """The keys whose lock was held or waited for when the watch began, or released since.

    What was read of a key after the watch began is still current while the key is not
    touched, for every writer of it holds its lock.
    """

    def __init__(self, busy: set[str]) -> None:
        self._touched = busy

    def touched(self, key: str) -> bool:
        """Whether someone may have changed what `key` guards since the watch began."""
        return key in self._touched

    @property
    def untouched(self) -> bool:
        """Whether no key was touched since the watch began."""
        return not self._touched

    def released(self, key: str) -> None:
        """A holder of `key`'s lock let it go."""
        self._touched.add(key)


class KeyedLocks:
    """Serialises work per key (a match id) while different keys run concurrently."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self._watches: set[LockWatch] = set()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of `key` for the block."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                try:
                    yield
                finally:
                    for watch in self._watches:
                        watch.released(key)
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                del self._locks[key]

    def watch(self) -> LockWatch:
        """Start watching which keys are touched (`unwatch` it when done)."""
        watch = LockWatch(set(self._users))
        self._watches.add(watch)
        return watch

    def unwatch(self, watch: LockWatch) -> None:
        """Stop recording for `watch`."""
        self._watches.discard(watch)

    @contextmanager
    def watching(self) -> Iterator[LockWatch]:
        """A watch for the block."""
        watch = self.watch()
        try:
            yield watch
        finally:
            self.unwatch(watch)

    def in_use(self, key: str) -> bool:
        """Whether the lock of `key` is held or waited for."""
        return key in self._users

    def __len__(self) -> int:
        return len(self._locks)
