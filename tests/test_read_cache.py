"""services/read_cache.py: one load per key at a time, bounded, expiring, failures not kept."""

import asyncio

import pytest

from services.read_cache import ReadCache


async def test_concurrent_readers_of_one_key_share_one_load() -> None:
    cache: ReadCache[int] = ReadCache(max_entries=10)
    loads = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await release.wait()
        return 42

    readers = [asyncio.create_task(cache.get("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*readers) == [42] * 50
    assert loads == 1
    assert await cache.get("k", load) == 42 and loads == 1  # kept


async def test_a_reader_that_hangs_up_does_not_cancel_the_others() -> None:
    cache: ReadCache[str] = ReadCache(max_entries=10)
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "page"

    first = asyncio.create_task(cache.get("k", load))
    second = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "page"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failed_load_reaches_every_reader_and_is_not_kept() -> None:
    cache: ReadCache[int] = ReadCache(max_entries=10)
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise LookupError("gone")

    results = await asyncio.gather(*(cache.get("k", failing) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results) and calls == 1
    with pytest.raises(LookupError):
        await cache.get("k", failing)
    assert calls == 2


def test_entries_expire_and_the_least_recently_used_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("services.read_cache.time.monotonic", lambda: now[0])
    expiring: ReadCache[int] = ReadCache(max_entries=10, ttl_s=0.5)
    expiring.put("k", 1)
    now[0] += 0.4
    assert expiring.peek("k") == 1
    now[0] += 0.2
    assert expiring.peek("k") is None

    bounded: ReadCache[int] = ReadCache(max_entries=2)
    bounded.put("a", 1)
    bounded.put("b", 2)
    assert bounded.peek("a") == 1  # now the most recent
    bounded.put("c", 3)
    assert (bounded.peek("a"), bounded.peek("b"), bounded.peek("c")) == (1, None, 3)


async def test_with_no_entries_only_loads_in_flight_are_shared() -> None:
    cache: ReadCache[int] = ReadCache(max_entries=0)
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0)
        return loads

    assert await asyncio.gather(cache.get("k", load), cache.get("k", load)) == [1, 1]
    assert await cache.get("k", load) == 2  # a read after the load finished loads again


async def test_after_clear_no_caller_gets_a_value_loaded_from_before_it() -> None:
    cache: ReadCache[str] = ReadCache(max_entries=10, ttl_s=60)
    before_started = asyncio.Event()
    release = asyncio.Event()
    world = ["old"]

    async def load() -> str:
        seen = world[0]
        before_started.set()
        await release.wait()
        return seen

    early = asyncio.ensure_future(cache.get("k", load))
    await before_started.wait()
    world[0] = "new"
    cache.clear()  # the change is made; the load in flight read the old state
    release.set()
    late = await cache.get("k", load)
    assert (await early, late) == ("old", "new")
    assert await cache.get("k", load) == "new"  # the early load's value was not kept


async def test_an_expired_value_is_answered_within_stale_s_while_one_load_refreshes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr("services.read_cache.time.monotonic", lambda: now[0])
    cache: ReadCache[int] = ReadCache(max_entries=10, ttl_s=1.0, stale_s=1.0)
    loads = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        if loads > 1:
            await release.wait()
        return loads

    assert await cache.get("k", load) == 1
    now[0] += 1.5  # expired, within the stale window: answered at once, refreshed once
    assert [await cache.get("k", load) for _ in range(3)] == [1, 1, 1]
    await asyncio.sleep(0)  # the refresh runs in its own task
    assert loads == 2
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await cache.get("k", load) == 2  # the refreshed value, no further load
    assert loads == 2
    now[0] += 2.5  # past the stale window too: the caller waits for a load
    assert await cache.get("k", load) == 3


async def test_prefetch_loads_in_the_background_once_and_a_later_get_finds_it() -> None:
    cache: ReadCache[str] = ReadCache(max_entries=10, ttl_s=60)
    loads: list[str] = []

    async def load() -> str:
        loads.append("next")
        return "page 2"

    cache.prefetch("next", load)
    cache.prefetch("next", load)  # already loading: nothing more
    assert await cache.get("next", load) == "page 2"
    cache.prefetch("next", load)  # fresh: nothing more
    assert loads == ["next"]
