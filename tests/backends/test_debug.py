"""The ``debug`` backend's own checks: ownership, where a guard was released, leaks."""

from __future__ import annotations

import _thread
import asyncio
import gc
import inspect
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable

import pytest

from nexus_pool import OwnershipError, Pool, Pooled, ReleasedError

from ..conformance.support import WAIT, Item, barrier, make_pool, on_thread, running, spawn


@pytest.fixture
def pool() -> Pool[Item]:
    pool, _, _ = make_pool("debug", capacity=4)
    return pool


def next_line() -> str:
    """``file:line`` of the caller's next line, to compare with reported places."""
    caller = inspect.stack()[1]
    return f"{caller.filename}:{caller.lineno + 1}"


def test_second_thread_acquiring_names_both_threads(pool: Pool[Item]) -> None:
    held = pool.acquire()
    error = on_thread(pool.try_acquire, name="intruder")
    assert isinstance(error, OwnershipError)
    message = str(error)
    me = threading.current_thread()
    assert "'intruder' (ident " in message
    assert f"{me.name!r} (ident {me.ident})" in message
    assert "pool.handoff()" in message
    held.release()
    assert pool.available() == 4


@pytest.mark.parametrize("how", ["try_acquire", "acquire", "acquire_blocking"])
def test_every_way_of_acquiring_is_checked(pool: Pool[Item], how: str) -> None:
    pool.acquire().release()  # this thread owns the pool now
    actions: dict[str, Callable[[], object]] = {
        "try_acquire": pool.try_acquire,
        "acquire": pool.acquire,
        "acquire_blocking": lambda: pool.acquire(timeout=30),
    }
    assert isinstance(on_thread(actions[how], name="other"), OwnershipError)


def test_ownership_is_checked_even_when_the_pool_is_empty(pool: Pool[Item]) -> None:
    guards = [pool.acquire() for _ in range(4)]
    # an intruder must be refused at once, not left waiting for a slot
    assert isinstance(on_thread(lambda: pool.acquire(timeout=30), name="waiter"), OwnershipError)
    for guard in guards:
        guard.release()


def test_handoff_passes_ownership_to_the_next_acquirer(pool: Pool[Item]) -> None:
    pool.acquire().release()
    pool.handoff()
    assert on_thread(lambda: pool.acquire().release(), name="successor") is None
    pool.acquire().release()  # the successor has finished, so ownership moved back


def test_ownership_moves_when_the_owner_has_finished(pool: Pool[Item]) -> None:
    assert on_thread(lambda: pool.acquire().release(), name="first-owner") is None
    guard = pool.acquire()  # the first owner is gone: no error
    guard.release()


def wait_for_ownership(pool: Pool[Item]) -> None:
    """Acquire (and release) once the previous owner's thread has really ended."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            pool.acquire(0).release()
            return
        except OwnershipError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_ownership_moves_when_a_raw_thread_finishes(pool: Pool[Item]) -> None:
    """A thread started with _thread (or by a C extension) is never a finished threading.Thread."""
    acquired = threading.Event()

    def acquire_once() -> None:
        pool.acquire().release()
        acquired.set()

    _thread.start_new_thread(acquire_once, ())
    assert acquired.wait(WAIT)
    wait_for_ownership(pool)


def test_the_owner_is_named_even_when_it_is_a_raw_thread(pool: Pool[Item]) -> None:
    owned = threading.Event()
    finish = threading.Event()

    def own() -> None:
        guard = pool.acquire()
        owned.set()
        finish.wait(WAIT)
        guard.release()

    _thread.start_new_thread(own, ())
    assert owned.wait(WAIT)
    try:
        with pytest.raises(OwnershipError, match=r"owned by thread 'Dummy-\d+' \(ident \d+\)"):
            pool.try_acquire()
    finally:
        finish.set()
    wait_for_ownership(pool)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_can_acquire_what_another_thread_owned() -> None:
    """The owner thread does not exist in the child: the child may take the pool over.

    Many forks while the owner thread is acquiring and releasing: a lock held by that
    thread at the instant of the fork would hang the child; the child gives up after 5 s.
    (No reset here: the suite's Reset takes a lock of its own.)
    """
    pool: Pool[list[int]] = Pool(4, list, backend="debug")
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            pool.acquire(timeout=WAIT).release()

    owner = spawn(churn, name="owner")
    with running(owner):
        try:
            for _ in range(50):
                with warnings.catch_warnings():
                    # 3.12+ warns that forking a multi-threaded process may deadlock: that
                    # is exactly what is tested here.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:  # the child: only this thread exists here
                    code = 1
                    try:
                        signal.alarm(5)
                        # A guard the owner held at the fork stays out in the child.
                        guard = pool.acquire(timeout=2)
                        guard.release()
                        code = 0
                    except BaseException as exc:
                        os.write(2, f"child: {exc!r}\n".encode())
                    finally:
                        os._exit(code)
                _, status = os.waitpid(pid, 0)
                assert os.waitstatus_to_exitcode(status) == 0
        finally:
            stop.set()


def test_only_the_owner_can_hand_off(pool: Pool[Item]) -> None:
    pool.acquire().release()
    error = on_thread(pool.handoff, name="usurper")
    assert isinstance(error, OwnershipError)
    assert "only the owner can hand the pool over" in str(error)


def test_releasing_from_other_threads_does_not_take_ownership(pool: Pool[Item]) -> None:
    guards = [pool.acquire() for _ in range(4)]
    for index, guard in enumerate(guards):
        assert on_thread(guard.release, name=f"returner-{index}") is None
    pool.acquire().release()  # still ours


def test_racing_for_a_free_pool_has_exactly_one_owner() -> None:
    """The ownership check and the change of owner are one atomic step."""
    for _ in range(50):
        pool, _, _ = make_pool("debug", capacity=8)
        start = barrier(4)
        decided = barrier(5)
        outcomes: list[str] = []
        kept: list[Pooled[Item]] = []

        def contender() -> None:
            start.wait()
            try:
                kept.append(pool.acquire())
            except OwnershipError:
                outcomes.append("refused")
            else:
                outcomes.append("owner")
            decided.wait()  # stay alive until all have tried: a dead owner loses ownership

        with running(*(spawn(contender) for _ in range(4))):
            decided.wait()
        assert sorted(outcomes) == ["owner", "refused", "refused", "refused"]
        for guard in kept:
            guard.release()


def test_double_release_says_where_the_first_release_happened(pool: Pool[Item]) -> None:
    guard = pool.acquire()
    where = next_line()
    guard.release()
    with pytest.raises(ReleasedError, match=re.escape(f"first released at {where} in ")):
        guard.release()
    with pytest.raises(ReleasedError, match=re.escape(f"first released at {where} in ")):
        guard.value  # noqa: B018


def test_release_by_with_block_is_located_at_the_with_statement(pool: Pool[Item]) -> None:
    guard = pool.acquire()
    where = next_line()
    with guard:
        pass
    with pytest.raises(ReleasedError, match=re.escape(where)):
        guard.release()


def test_collected_guard_warns_with_the_place_it_was_acquired(pool: Pool[Item]) -> None:
    where = next_line()
    guard = pool.acquire()
    with pytest.warns(ResourceWarning, match=re.escape(f"acquired at {where} in ")) as caught:
        del guard
        gc.collect()
    filename, _, lineno = where.rpartition(":")
    assert caught[0].filename == filename
    assert caught[0].lineno == int(lineno)
    assert pool.available() == 4


def test_slot_returns_even_when_the_warning_is_an_error(pool: Pool[Item], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BaseException | None] = []
    monkeypatch.setattr("sys.unraisablehook", lambda info: seen.append(info.exc_value))
    guard = pool.acquire()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del guard
    assert len(seen) == 1 and isinstance(seen[0], ResourceWarning)
    assert pool.available() == 4


def test_acquiring_in_to_thread_beside_an_event_loop_is_caught(pool: Pool[Item]) -> None:
    """``asyncio.to_thread(pool.acquire)`` makes an executor thread a second acquirer."""

    async def main() -> BaseException | None:
        async with pool.acquire_async():  # the loop's thread now owns the pool
            try:
                guard = await asyncio.to_thread(pool.acquire)
            except OwnershipError as error:
                return error
            guard.release()
            return None

    error = asyncio.run(main())
    assert isinstance(error, OwnershipError)
    me = threading.current_thread()
    assert f"owned by thread {me.name!r} (ident {me.ident})" in str(error)
    assert "asyncio_" in str(error), "the executor thread is named too"
    assert pool.available() == 4
