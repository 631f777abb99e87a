"""``pool.holders()``: who holds the slots, since when, and where they were acquired.

Checked from outside: the test knows which guards it holds, on which threads and at
which lines it acquired them, and compares.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
import warnings

import pytest

from nexus_pool import Holder, Pool, Pooled, PoolExhausted, PoolLeakWarning
from nexus_pool._holders import SAMPLE_PERIOD

from .support import Item, make_pool


def here() -> int:
    """The line that called this function."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def test_holders_lists_each_lent_slot_with_its_thread(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=3)
    assert pool.holders() == []
    first = pool.acquire()
    second = pool.try_acquire()
    assert second is not None
    holders = pool.holders()
    assert sorted(holder.slot for holder in holders if holder.slot is not None) == [0, 1]
    for holder in holders:
        assert isinstance(holder, Holder)
        assert holder.thread_id == threading.get_ident()
        assert holder.thread_name == threading.current_thread().name
        assert holder.how == "sync"
        assert 0 <= holder.seconds < 5
    first.release()
    assert [holder.slot for holder in pool.holders()] == [1], "a released slot leaves the list"
    second.release()
    assert pool.holders() == []


def test_ages_grow(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)
    guard = pool.acquire()
    before = pool.holders()[0].seconds
    time.sleep(0.06)
    after = pool.holders()[0].seconds
    assert after - before >= 0.04, (before, after)
    guard.release()


def test_every_site_points_at_the_callers_line(backend: str) -> None:
    pool = Pool(4, lambda: Item(0), track="every", backend=backend)
    line = here() + 1
    direct = pool.acquire()
    with pool.acquire() as _:
        with_line = here() - 1
        tried = pool.try_acquire()
        tried_line = here() - 1
        sites = {holder.slot: holder.site for holder in pool.holders()}
    assert tried is not None
    assert {site.lineno for site in sites.values() if site is not None} == {line, with_line, tried_line}
    for site in sites.values():
        assert site is not None
        assert site.filename == __file__, "the site is the caller's, not nexus_pool's"
        assert site.function == "test_every_site_points_at_the_callers_line"
        assert str(site) == f"test_holders.py:{site.lineno} in test_every_site_points_at_the_callers_line"
    direct.release()
    tried.release()


def test_track_off_records_no_site_and_sampled_some(backend: str) -> None:
    off = Pool(2, lambda: Item(0), track="off", backend=backend)
    guard = off.acquire()
    expected = "every" if backend == "debug" else None  # debug records every site, always
    assert (off.holders()[0].site is not None) == (expected == "every")
    guard.release()
    sampled = Pool(1, lambda: Item(0), track="sampled", backend=backend)
    recorded = 0
    for _ in range(2000):
        with sampled.acquire():
            recorded += sampled.holders()[0].site is not None
    if backend == "debug":
        assert recorded == 2000
    else:
        assert 2000 / SAMPLE_PERIOD / 3 < recorded < 2000 / SAMPLE_PERIOD * 3, f"{recorded} of 2000 recorded"


def test_bad_tracking_arguments_are_refused(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="track must be one of 'off', 'sampled', 'every'"):
        Pool(1, object, track="sometimes", backend=backend)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="track must be"):
        Pool(1, object, track=3, backend=backend)  # type: ignore[arg-type]
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="warn_after must be a finite number of seconds > 0"):
            Pool(1, object, warn_after=bad, backend=backend)
    with pytest.raises(TypeError, match="warn_after must be a number"):
        Pool(1, object, warn_after="1", backend=backend)  # type: ignore[arg-type]
    monkeypatch.setenv("NEXUS_POOL_TRACK", "loud")
    with pytest.raises(ValueError, match="NEXUS_POOL_TRACK"):
        Pool(1, object, backend=backend)
    monkeypatch.setenv("NEXUS_POOL_TRACK", "every")
    pool = Pool(1, object, backend=backend)
    with pool.acquire():
        assert pool.holders()[0].site is not None
    monkeypatch.delenv("NEXUS_POOL_TRACK")
    monkeypatch.setenv("NEXUS_POOL_WARN_AFTER", "soon")
    with pytest.raises(ValueError, match="NEXUS_POOL_WARN_AFTER"):
        Pool(1, object, backend=backend)


def test_holders_name_the_acquiring_thread(backend: str) -> None:
    pool, _, _ = make_pool(backend, capacity=2)
    got: list[object] = []

    def acquire() -> None:
        got.append(pool.acquire())

    worker = threading.Thread(target=acquire, name="acquirer-thread")
    worker.start()
    worker.join(10)
    (holder,) = pool.holders()
    assert holder.thread_name == "(ended)", "the acquiring thread has ended"
    assert holder.thread_id != threading.get_ident()
    pool.handoff()
    for guard in got:
        guard.release()  # type: ignore[attr-defined]


def test_async_acquisitions_say_so(backend: str) -> None:
    pool = Pool(2, lambda: Item(0), track="every", backend=backend)

    async def main() -> None:
        guard = await pool.acquire_async()
        line = here() - 1
        (holder,) = pool.holders()
        assert holder.how == "async"
        assert holder.site is not None and holder.site.lineno == line and holder.site.filename == __file__
        guard.release()

    asyncio.run(main())


def test_exhaustion_names_the_holders(backend: str) -> None:
    pool = Pool(3, lambda: Item(0), track="every", backend=backend)
    guards = []
    for _ in range(3):
        guards.append(pool.acquire())
        line = here() - 1
    time.sleep(0.05)
    with pytest.raises(PoolExhausted) as raised:
        pool.acquire(timeout=0.05)
    message = str(raised.value)
    assert message.startswith("all 3 slots are in use and none came back within 0.05 s; oldest held ")
    assert f"3 acquired at test_holders.py:{line} in test_exhaustion_names_the_holders" in message
    assert sorted(holder.slot for holder in raised.value.holders if holder.slot is not None) == [0, 1, 2]
    with pytest.raises(PoolExhausted, match=r"^all 3 slots are in use; oldest held"):
        pool.acquire(0)

    async def main() -> None:
        with pytest.raises(PoolExhausted, match=r"oldest held .* 3 acquired at test_holders.py"):
            await pool.acquire_async(timeout=0.02)

    asyncio.run(main())
    for guard in guards:
        guard.release()


def test_a_guard_held_too_long_warns_once(backend: str) -> None:
    pool = Pool(3, lambda: Item(0), track="every", warn_after=0.05, backend=backend)
    held = pool.acquire()
    line = here() - 1
    time.sleep(0.08)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pool.acquire().release()
        pool.acquire().release()
        time.sleep(0.03)
        pool.acquire().release()
    leaks = [warning for warning in caught if issubclass(warning.category, PoolLeakWarning)]
    assert len(leaks) == 1, [str(warning.message) for warning in caught]
    text = str(leaks[0].message)
    assert "has been held for" in text and "(warn_after=0.05 s)" in text
    assert f"acquired at test_holders.py:{line} in test_a_guard_held_too_long_warns_once" in text
    assert leaks[0].filename == __file__, "the warning points at the acquire that noticed it"
    assert issubclass(PoolLeakWarning, ResourceWarning)
    held.release()


def test_a_leak_warning_turned_into_an_error_takes_nothing(backend: str) -> None:
    pool = Pool(2, lambda: Item(0), warn_after=0.02, backend=backend)
    held = pool.acquire()
    time.sleep(0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoolLeakWarning)
        with pytest.raises(PoolLeakWarning):
            pool.acquire()
    assert pool.available() == 1, "the acquisition that raised took no slot"
    held.release()
    assert pool.available() == 2


def test_holders_while_other_threads_release(backend: str) -> None:
    """A snapshot: never a free slot, never a record torn between two leases."""
    pool, _, _ = make_pool(backend, capacity=4)
    stop = threading.Event()
    errors: list[BaseException] = []

    def snapshot() -> None:
        try:
            while not stop.is_set():
                for holder in pool.holders():
                    assert holder.slot is None or 0 <= holder.slot < 4
                    assert holder.seconds >= 0
        except BaseException as error:
            errors.append(error)

    watcher = threading.Thread(target=snapshot)
    watcher.start()
    inbox: queue.SimpleQueue[Pooled[Item] | None] = queue.SimpleQueue()

    def release_all() -> None:
        for guard in iter(inbox.get, None):
            guard.release()

    releaser = threading.Thread(target=release_all)
    releaser.start()
    for _ in range(3000):
        inbox.put(pool.acquire(timeout=10))
    inbox.put(None)
    releaser.join(10)
    stop.set()
    watcher.join(10)
    assert not errors
    assert pool.holders() == []
