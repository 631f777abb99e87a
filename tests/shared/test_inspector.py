"""Who holds a shared pool's buffers: ``SharedBufferPool.holders()``, the exhaustion
message, and the operators' command line (``python -m nexus_pool.shared``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from nexus_pool import PoolExhausted, shared
from nexus_pool._shared import shared_unavailable
from nexus_pool._shared_cli import main

from ..conformance.support import IN_CI
from . import workers
from .test_shared import SPAWN

pytestmark = pytest.mark.skipif(
    bool(shared_unavailable()) and not IN_CI, reason=f"nexus_pool.shared unavailable: {shared_unavailable()}"
)


@pytest.fixture
def pool() -> Iterator[shared.SharedBufferPool]:
    with shared.SharedBufferPool(4, 8192) as made:
        yield made


def run_cli(*arguments: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(arguments), out, err)
    return status, out.getvalue(), err.getvalue()


def test_holders_held_in_transit_and_ages(pool: shared.SharedBufferPool) -> None:
    assert pool.holders() == []
    held = pool.acquire()
    handle = pool.acquire().send()
    time.sleep(0.05)
    holders = {holder.slot: holder for holder in pool.holders()}
    assert holders[held.slot].state == "held" and holders[handle.slot].state == "in transit"
    for holder in holders.values():
        assert holder.pid == os.getpid() and holder.alive
        assert 0.04 <= holder.seconds < 5
    received = shared.receive(handle)
    assert {holder.slot: holder.state for holder in pool.holders()}[handle.slot] == "held"
    received.release()
    held.release()
    assert pool.holders() == []


def test_a_dead_holder_is_shown_dead(pool: shared.SharedBufferPool) -> None:
    inbox, ready = SPAWN.Queue(), SPAWN.Event()
    victim = SPAWN.Process(target=workers.hold_and_wait, args=(inbox, ready))
    victim.start()
    inbox.put(pool.acquire().send())
    inbox.put(None)
    assert ready.wait(30)
    victim.kill()
    victim.join(30)
    (holder,) = pool.holders()
    assert (holder.state, holder.pid, holder.alive) == ("held", victim.pid, False)
    assert pool.reclaim() == 1


def test_exhaustion_names_the_oldest_holder(pool: shared.SharedBufferPool) -> None:
    leases = [pool.acquire() for _ in range(3)]
    handle = pool.acquire().send()
    with pytest.raises(PoolExhausted) as raised:
        pool.acquire(timeout=0.05)
    message = str(raised.value)
    assert message.startswith("all 4 shared buffers are in use and none came back within 0.05 s; oldest ")
    assert f"3 held by pid {os.getpid()}, 1 in transit" in message
    assert len(raised.value.holders) == 4
    for lease in leases:
        lease.release()
    shared.receive(handle).release()


def test_the_command_line_lists_and_inspects_blocks(pool: shared.SharedBufferPool) -> None:
    lease = pool.acquire()
    status, out, err = run_cli("list")
    assert status == 0 and err == ""
    (line,) = [row for row in out.splitlines() if row.startswith(pool.name)]
    assert line.split()[:6] == [pool.name, str(os.getpid()), "yes", "4", "8192", "1"]
    status, out, err = run_cli("inspect", pool.name)
    assert status == 0
    assert out.splitlines()[0] == f"{pool.name}: 4 buffers of 8192 bytes, producer pid {os.getpid()} (alive), 1 in use"
    assert out.splitlines()[2].split()[:4] == [str(lease.slot), "held", str(os.getpid()), "yes"]
    assert pool.available() == 3, "looking changes nothing"
    lease.release()


def test_the_command_line_refuses_names_that_are_not_blocks() -> None:
    status, _, err = run_cli("inspect", "not-ours")
    assert status == 2 and "is not a nexus_pool block name" in err
    status, _, err = run_cli("inspect", "nxp-0-nothing-here")
    assert status == 2 and "no shared block" in err
    with open("/dev/shm/nxp-0-not-a-block-cli", "wb") as file:
        file.write(b"x" * 8192)
    try:
        status, _, err = run_cli("inspect", "nxp-0-not-a-block-cli")
        assert status == 2 and "holds no nexus_pool block" in err
        status, out, _ = run_cli("list")
        assert status == 0 and "nxp-0-not-a-block-cli" in out and "unreadable" in out
    finally:
        os.unlink("/dev/shm/nxp-0-not-a-block-cli")


def test_inspecting_maps_read_only(pool: shared.SharedBufferPool) -> None:
    from nexus_pool._shared_native import SharedBufferPool as NativePool

    block = NativePool._inspect(pool.name)
    calls: tuple[Callable[[], object], ...] = (
        block.try_acquire,
        block.acquire,
        lambda: block.reclaim(),
        lambda: block._claim(0, 1),
        lambda: block._wait(0.0),
        block.shutdown,
        lambda: block.queue.put(None),
        lambda: block.queue.get(0),
    )
    for call in calls:
        with pytest.raises(ValueError, match="read-only, for inspection"):
            call()
    assert block.available() == 4 and not block.is_shutdown


def test_queued_buffers_are_shown_queued(pool: shared.SharedBufferPool) -> None:
    pool.queue.put(pool.acquire())
    (holder,) = pool.holders()
    assert (holder.state, holder.pid, holder.alive) == ("queued", os.getpid(), True)
    status, out, _ = run_cli("inspect", pool.name)
    assert status == 0 and out.splitlines()[2].split()[1] == "queued"
    taken = pool.queue.get(0)
    assert taken is not None
    taken.release()


def test_remove_orphans_from_the_command_line() -> None:
    names = SPAWN.Queue()
    producer = SPAWN.Process(target=workers.make_pool_and_hang, args=(names,))
    producer.start()
    name = names.get(timeout=30)
    producer.kill()
    producer.join(30)
    done = subprocess.run(
        [sys.executable, "-m", "nexus_pool.shared", "list"], capture_output=True, text=True, timeout=60
    )
    (line,) = [row for row in done.stdout.splitlines() if row.startswith(name)]
    assert line.split()[2] == "no", "a dead producer is shown dead"
    done = subprocess.run(
        [sys.executable, "-m", "nexus_pool.shared", "remove-orphans"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and f"removed {name}" in done.stdout
    assert not os.path.exists(f"/dev/shm/{name}")
