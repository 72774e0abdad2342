"""An in-process cache for reads that cost a Temporal round trip (or a worker's replay).

Bounded (least recently used entries go first), optionally expiring, and with one load in flight
per key: a hundred callers asking for the same page at once share one visibility call. An expired
value may still be answered for `stale_s` while one background load refreshes it (HTTP's
stale-while-revalidate), so a value read all the time is never waited for once it is there.
Hand-written because none of the libraries looked at does all of it: async-lru shares loads in
flight and expires values but cannot answer a stale one while refreshing, nor forget the loads in
flight on `clear`; cachetools is synchronous; aiocache does not share loads in flight.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ReadCache(Generic[V]):
    """`await cache.get(key, load)`: the cached value, or `load()`'s (shared by concurrent callers).
    A load that raises is not cached; every caller waiting on it gets the error. With
    `max_entries=0` nothing is kept: only loads in flight are shared."""

    def __init__(self, *, max_entries: int, ttl_s: float | None = None, stale_s: float = 0.0) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self._values: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Future[V]] = {}
        self._generation = 0
        """Bumped by `clear`: a load that began before it neither is joined nor stores its value."""

    def peek(self, key: Hashable) -> V | None:
        """The cached value, if there is one still fresh."""
        found = self._values.get(key)
        if found is None:
            return None
        stored_at, value = found
        if self.ttl_s is not None:
            age = time.monotonic() - stored_at
            if age > self.ttl_s + self.stale_s:
                del self._values[key]
            if age > self.ttl_s:
                return None
        self._values.move_to_end(key)
        return value

    def put(self, key: Hashable, value: V) -> None:
        if self.max_entries <= 0:
            return  # coalescing only: concurrent loads are shared, results are not kept
        self._values[key] = (time.monotonic(), value)
        self._values.move_to_end(key)
        while len(self._values) > self.max_entries:
            self._values.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        self._values.pop(key, None)

    def clear(self) -> None:
        """Forget every value, and the loads in flight: a caller that comes after a change never
        gets a value read before it."""
        self._values.clear()
        self._loading.clear()
        self._generation += 1

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        value = self.peek(key)
        if value is not None:
            return value
        stale = self._stale(key)
        if stale is not None:
            self._start(key, load)  # refresh for the callers after this one
            return stale
        return await asyncio.shield(self._start(key, load))

    def prefetch(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> None:
        """Load `key` in the background unless it is fresh or loading (a reader is about to ask)."""
        if self.max_entries > 0 and self.peek(key) is None:
            self._start(key, load)

    def _stale(self, key: Hashable) -> V | None:
        """An expired value still within `stale_s` of its expiry."""
        found = self._values.get(key)
        if found is None or self.ttl_s is None:
            return None
        stored_at, value = found
        return value if time.monotonic() - stored_at <= self.ttl_s + self.stale_s else None

    def _start(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        """The load in flight for `key`, started now if there is none."""
        task = self._loading.get(key)
        if task is None:
            # Its own task: a caller that hangs up does not cancel the load the others wait on.
            task = asyncio.ensure_future(self._load(key, load))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._loading[key] = task
        return task

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        generation = self._generation
        try:
            value = await load()
        finally:
            if generation == self._generation:
                self._loading.pop(key, None)
        if generation == self._generation:
            self.put(key, value)
        return value
