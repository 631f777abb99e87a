"""Crash consistency of the shared pool, proved by crash-point injection.

As SQLite's crash tests do: the shared-memory core is built with ``NXS_CRASH_POINTS`` into
a small driver program (``crash_driver.c``) that runs one operation on a block and kills
itself (SIGKILL) at a chosen numbered step inside acquire, send, claim (receive),
release, queue, take or reclaim. For every step, several times: after ``reclaim()`` each
slot is free or held by a live process (this one), none is lost, none is lent twice (the
dead process's handle is refused; acquiring every free slot gives each once),
``available()`` equals the number of free slots, a thread waiting in ``acquire()`` gets
the slot a killed releaser freed, and a slot a killed process queued, or was taking from
the work queue, is taken once by a live worker (or comes back by ``reclaim()`` if the dead
process had it).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexus_pool import ReleasedError, shared
from nexus_pool._shared import shared_unavailable
from nexus_pool.shared import SharedLease

from ..conformance.support import IN_CI
from ..layout import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(shared_unavailable()) and not IN_CI, reason=f"nexus_pool.shared unavailable: {shared_unavailable()}"
    ),
]

FREE, HELD, TRANSIT, QUEUED = 0, 1, 2, 3
CAPACITY = 4
TRIALS = 4

POINTS: dict[int, str] = {
    11: "acquire: found a free slot, before its CAS",
    12: "acquire: after the CAS, before the stamp",
    13: "acquire: stamped, before returning",
    21: "send: checked the holder, before the stamp",
    22: "send: stamped, before the CAS",
    23: "send: after the CAS",
    31: "claim: before the CAS",
    32: "claim: after the CAS, before the stamp",
    33: "claim: stamped",
    41: "release: before the CAS",
    42: "release: after the CAS, before the hint",
    43: "release: hint left, before the wake word moves",
    44: "release: wake word moved, before the wake-up",
    45: "release: after the wake-up",
    51: "reclaim: before the CAS of a dead holder's slot",
    52: "reclaim: after the CAS, before the hint",
    53: "reclaim: hint left, before the wake word moves",
    54: "reclaim: wake word moved, before the wake-up",
    55: "reclaim: after the wake-up",
    61: "queue: stamped, before the CAS",
    62: "queue: after the CAS, before the ring entry",
    63: "queue: ring entry written, before the tail moves",
    64: "queue: tail moved, before the wake-up",
    71: "take: before the CAS",
    72: "take: after the CAS, before the stamp",
    73: "take: stamped",
    74: "take: took a ring position, before the CAS",
}


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        if IN_CI:
            pytest.fail("no C compiler to build the crash driver")
        pytest.skip("no C compiler to build the crash driver")
    sources = ROOT / "backends"
    program = tmp_path_factory.mktemp("crash") / "crash_driver"
    subprocess.run(
        [
            compiler, "-std=c11", "-O1", "-g", "-DNXS_CRASH_POINTS", f"-I{sources}",
            str(sources / "nexus_pool_shared.c"), str(Path(__file__).with_name("crash_driver.c")),
            "-o", str(program), "-lrt",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return program


def run_driver(driver: Path, name: str, point: int, *operation: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(driver), name, str(point), *operation], capture_output=True, text=True, timeout=30, check=False
    )


def audit(pool: shared.SharedBufferPool, held: list[SharedLease]) -> None:
    """After reclaim(): every slot free, or held by this live process through `held`."""
    pool.reclaim(transit_max_age=0)
    words = [pool.lease_word(slot) for slot in range(CAPACITY)]
    mine = {lease.slot for lease in held}
    for slot, (state, _generation, pid, _since) in enumerate(words):
        if slot in mine:
            assert (state, pid) == (HELD, os.getpid()), f"slot {slot}: {words[slot]}"
        else:
            assert state == FREE, f"slot {slot} is not free after reclaim(): {words[slot]} (lost)"
    free = CAPACITY - len(held)
    assert pool.available() == free
    taken = [pool.acquire(0) for _ in range(free)]
    assert pool.try_acquire() is None, "more slots lent than are free: one lent twice"
    assert {lease.slot for lease in taken} | mine == set(range(CAPACITY)), "a slot lent twice"
    for lease in taken:
        lease.release()


@pytest.fixture
def pool() -> Iterator[shared.SharedBufferPool]:
    with shared.SharedBufferPool(CAPACITY, 4096) as made:
        yield made


def expect_killed(result: subprocess.CompletedProcess[str], point: int) -> None:
    assert result.returncode == -9, (
        f"point {point} ({POINTS[point]}) was not reached: exit {result.returncode} {result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize("point", [11, 12, 13, 21, 22, 23], ids=lambda point: f"{point}")
def test_killed_while_acquiring_or_sending(driver: Path, pool: shared.SharedBufferPool, point: int) -> None:
    operation = "acquire" if point < 20 else "acquire-send"
    for trial in range(TRIALS):
        held = [pool.acquire(0) for _ in range(trial % CAPACITY)]
        expect_killed(run_driver(driver, pool.name, point, operation), point)
        audit(pool, held)
        for lease in held:
            lease.release()


@pytest.mark.parametrize("point", [31, 32, 33, 41, 42, 43, 44, 45], ids=lambda point: f"{point}")
def test_killed_while_receiving_or_releasing(driver: Path, pool: shared.SharedBufferPool, point: int) -> None:
    operation = "claim" if point < 40 else "claim-release"
    for _ in range(TRIALS):
        # Every other slot is held here, and a thread waits for the one the driver gets:
        # if the driver dies after freeing it, the waiter must still get it.
        handle = pool.acquire(0).send()
        held = [pool.acquire(0) for _ in range(CAPACITY - 1)]
        got: list[SharedLease] = []
        waiter = threading.Thread(target=lambda: got.append(pool.acquire(timeout=10)))
        if point >= 42:
            waiter.start()
        expect_killed(run_driver(driver, pool.name, point, operation, str(handle.slot), str(handle.generation)), point)
        if point >= 42:  # the slot was freed before the kill
            waiter.join(15)
            assert got, f"the waiter never got the slot freed at point {point}"
            got.pop().release()
        if point == 31:  # killed before its claim: the handle is still in transit, once
            shared.receive(handle).release()
        with pytest.raises(ReleasedError):
            shared.receive(handle).release()  # spent: the dead process had it, or we did
        audit(pool, held)
        for lease in held:
            lease.release()


@pytest.mark.parametrize("point", [51, 52, 53, 54, 55], ids=lambda point: f"{point}")
def test_killed_while_reclaiming(driver: Path, pool: shared.SharedBufferPool, point: int) -> None:
    for _trial in range(TRIALS):
        orphan = run_driver(driver, pool.name, 0, "acquire")  # exits holding a slot
        assert orphan.returncode == 0, orphan.stderr
        expect_killed(run_driver(driver, pool.name, point, "reclaim"), point)
        audit(pool, [])


@pytest.mark.parametrize("point", [61, 62, 63, 64], ids=lambda point: f"{point}")
def test_killed_while_queueing(driver: Path, pool: shared.SharedBufferPool, point: int) -> None:
    work = pool.queue
    for trial in range(TRIALS):
        held = [pool.acquire(0) for _ in range(trial % CAPACITY)]
        result = run_driver(driver, pool.name, point, "acquire-queue")
        expect_killed(result, point)
        queued = [slot for slot in range(CAPACITY) if pool.lease_word(slot)[0] == QUEUED]
        if point == 61:  # killed before its CAS: the dead process still holds the slot
            assert queued == []
            with pytest.raises(queue.Empty):
                work.get(timeout=0)
        else:  # queued, with or without its ring entry: a live worker takes it, once
            assert len(queued) == 1
            taken = work.get(timeout=0)
            assert taken is not None and taken.slot == queued[0]
            taken.release()
            with pytest.raises(queue.Empty):
                work.get(timeout=0)
        audit(pool, held)
        for lease in held:
            lease.release()


@pytest.mark.parametrize("point", [71, 72, 73, 74], ids=lambda point: f"{point}")
def test_killed_while_taking(driver: Path, pool: shared.SharedBufferPool, point: int) -> None:
    work = pool.queue
    for trial in range(TRIALS):
        held = [pool.acquire(0) for _ in range(trial % (CAPACITY - 1))]
        if trial % 2:
            # Queued by a process killed before it wrote the ring entry: the taker finds
            # the slot by its lease word (step 74 is on the ring's path only).
            expect_killed(run_driver(driver, pool.name, 62, "acquire-queue"), 62)
            reached = point != 74
        else:
            work.put(pool.acquire(0))
            reached = True
        result = run_driver(driver, pool.name, point, "take")
        if not reached:
            assert result.returncode == 0, result.stderr
            slot = int(result.stdout.split()[0])
            assert pool.lease_word(slot)[0] == HELD  # the driver exited holding it
            assert pool.reclaim() == 1
        elif point in (71, 74):  # killed before its CAS: still queued, taken here once
            expect_killed(result, point)
            taken = work.get(timeout=0)
            assert taken is not None
            taken.release()
        else:  # the dead worker had it: reclaim() gives it back, nobody takes it
            expect_killed(result, point)
            with pytest.raises(queue.Empty):
                work.get(timeout=0)
            assert pool.reclaim() == 1
        with pytest.raises(queue.Empty):
            work.get(timeout=0)
        audit(pool, held)
        for lease in held:
            lease.release()


def test_every_step_of_the_core_is_a_crash_point() -> None:
    """The numbered steps in the C core are exactly those these tests kill at."""
    source = (ROOT / "backends" / "nexus_pool_shared.c").read_text()
    direct = {int(number) for number in re.findall(r"NXS_STEP\((\d+)\)", source)}
    stepped = r"(?:announce_free|claim_from)\([^;]*?, (\d+)\)"
    spans = {int(first) + offset for first in re.findall(stepped, source) for offset in range(3)}
    assert direct | spans == set(POINTS)
