"""The ``atomic`` backend's own promises: its native module, and refusing misuse in C."""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from nexus_pool import Pool, ReleasedError

from ..conformance.support import barrier, require_backend, running, spawn, switching_often
from ..conformance.test_freelist_contract import Token
from ..layout import stub_of

FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.fixture(autouse=True)
def _atomic_loads() -> None:
    require_backend("atomic")


def test_stub_names_the_same_functions_as_the_compiled_module() -> None:
    from nexus_pool._freelist_native import lib

    stub = ast.parse(stub_of("nexus_pool._freelist_native").read_text())
    (lib_class,) = [node for node in stub.body if isinstance(node, ast.ClassDef) and node.name == "_Lib"]
    in_stub = {node.name for node in lib_class.body if isinstance(node, ast.FunctionDef)}
    in_lib = {name for name in dir(lib) if not name.startswith("_")}
    assert in_stub == in_lib


def test_calls_keep_the_thread_state() -> None:
    """The glue's decision (see build_freelist.py): calls do not release the GIL."""
    from nexus_pool._freelist_native import lib

    assert lib.nxp_glue_keeps_thread_state() == 1


def test_pushing_a_free_slot_is_refused_in_c() -> None:
    from nexus_pool._freelist_native import ffi, lib

    freelist = ffi.gc(lib.nxp_create(2), lib.nxp_destroy)
    slot = lib.nxp_pop(freelist)
    assert slot == 0
    ticket = lib.nxp_ticket(freelist, slot)
    assert lib.nxp_push(ticket) == 0
    assert lib.nxp_push(ticket) == -1, "a double push must be refused"
    assert lib.nxp_ticket(freelist, 2) == 0, "no such slot"
    assert lib.nxp_ticket(freelist, -1) == 0, "no such slot"
    assert lib.nxp_available(freelist) == 2
    assert [lib.nxp_pop(freelist) for _ in range(3)] == [0, 1, -1]


def test_a_refused_give_is_a_clear_error() -> None:
    from nexus_pool._backends.atomic import AtomicFreeList

    leases = [Token(0), Token(1)]
    freelist = AtomicFreeList(leases)
    with pytest.raises(ReleasedError, match="slot 1 was given back while free"):
        freelist.settle(leases[1], freelist.give(leases[1]))


def test_concurrent_pushes_of_one_slot_have_one_winner() -> None:
    from nexus_pool._freelist_native import ffi, lib

    freelist = ffi.gc(lib.nxp_create(4), lib.nxp_destroy)
    for _ in range(300):
        ticket = lib.nxp_ticket(freelist, lib.nxp_pop(freelist))
        start = barrier(4)
        results: list[int] = []

        def push() -> None:
            start.wait()
            results.append(lib.nxp_push(ticket))  # the threads are joined within the iteration

        with running(*(spawn(push) for _ in range(4))):
            pass
        assert sorted(results) == [-1, -1, -1, 0]
        assert lib.nxp_available(freelist) == 4


def test_two_acquiring_threads_cannot_corrupt_the_stack() -> None:
    """Against the design, two threads pop and push at once: the tagged head prevents ABA."""
    from nexus_pool._freelist_native import ffi, lib

    capacity = 8
    freelist = ffi.gc(lib.nxp_create(capacity), lib.nxp_destroy)
    leased = [0] * capacity
    overlaps: list[int] = []
    start = barrier(2)

    def churn() -> None:
        start.wait()
        for _ in range(100_000):
            slot = lib.nxp_pop(freelist)
            if slot < 0:
                continue
            leased[slot] += 1
            if leased[slot] != 1:
                overlaps.append(slot)
            leased[slot] -= 1
            assert lib.nxp_push(lib.nxp_ticket(freelist, slot)) == 0

    with switching_often(), running(spawn(churn), spawn(churn)):
        pass
    assert not overlaps
    assert lib.nxp_available(freelist) == capacity
    assert sorted(lib.nxp_pop(freelist) for _ in range(capacity)) == list(range(capacity))


def test_capacity_beyond_the_native_limit_is_refused_before_any_value_is_made() -> None:
    from nexus_pool._backends.atomic import AtomicFreeList

    made: list[int] = []
    with pytest.raises(ValueError, match=f"capacity must be <= {AtomicFreeList.max_capacity} for backend 'atomic'"):
        Pool(AtomicFreeList.max_capacity + 1, lambda: made.append(1), backend="atomic")
    assert made == []


@pytest.mark.skipif(not FREE_THREADED_BUILD, reason="only free-threaded builds can run without the GIL")
def test_the_gil_stays_disabled_with_the_native_module_loaded() -> None:
    code = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("error")  # a module that re-enables the GIL warns
        import nexus_pool
        pool = nexus_pool.Pool(4, bytearray, bytearray.clear, backend="atomic")
        pool.acquire().release()
        assert not sys._is_gil_enabled(), "the GIL was re-enabled"
        print("gil disabled")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gil disabled"
