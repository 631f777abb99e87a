"""No Python code can crash the interpreter through the native types.

Every path that could reach a native object that is not whole, or no longer whole, is
tried: ``object.__new__``, copyreg's reconstructor, subclassing, a factory that finds
the pool being built with ``gc.get_objects()``, the collector's ``tp_clear``, and
subinterpreters (each has its own module state and types). Probes that could crash run
in a child interpreter, so that a crash is a failing test with its exit code, not a
dead test run.
"""

from __future__ import annotations

import copy
import copyreg
import pickle
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from nexus_pool import BufferPool, Pool, local

pytestmark = pytest.mark.native_only


def run_child(code: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter; its output. A crash or an error fails the test."""
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


NATIVE_KINDS = ["Pool", "Pooled", "local.Pool", "local.BoundedPool", "BufferPool"]


def native_objects() -> list[Any]:
    pool = Pool(2, bytearray, backend="atomic")
    buffers = BufferPool(2, 64, backend="atomic")
    return [pool, pool.acquire(), local.Pool(bytearray), local.BoundedPool(2, bytearray), buffers]


@pytest.mark.parametrize("index", range(len(NATIVE_KINDS)), ids=NATIVE_KINDS)
def test_only_their_pool_makes_native_objects(index: int) -> None:
    native = native_objects()[index]
    kind = type(native)
    assert kind.__module__ == "nexus_pool._native"
    with pytest.raises(TypeError, match=r"not safe|made by their pool"):
        object.__new__(kind)
    with pytest.raises(TypeError, match="made by their pool"):
        kind()
    with pytest.raises(TypeError, match="made by their pool"):
        kind.__new__(kind)  # type: ignore[call-overload]
    if NATIVE_KINDS[index] != "Pool":
        with pytest.raises(TypeError):

            class Subclass(kind):  # type: ignore[valid-type,misc]
                pass

        return

    # The native Pool is BufferPool's base, so it can be subclassed; such a class gets no
    # instance by any path.
    class Sub(kind):  # type: ignore[valid-type,misc]
        pass

    with pytest.raises(TypeError, match=r"not safe|made by their pool"):
        object.__new__(Sub)
    with pytest.raises(TypeError, match="made by their pool"):
        Sub()
    with pytest.raises(TypeError, match="cannot make pools"):
        Sub._create(2, bytearray, None, "atomic", 0, 0.0)


@pytest.mark.parametrize("index", range(len(NATIVE_KINDS)), ids=NATIVE_KINDS)
def test_copies_and_pickles_are_refused(index: int) -> None:
    native = native_objects()[index]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot be copied or pickled"):
            pickle.dumps(native, protocol=protocol)
    with pytest.raises(TypeError):
        copy.copy(native)
    with pytest.raises(TypeError):
        copy.deepcopy(native)
    # copyreg's protocol 0/1 path, called directly, bypasses __reduce_ex__: what it
    # builds must still be refused when rebuilt.
    try:
        reduced = copyreg._reduce_ex(native, 1)  # type: ignore[attr-defined]
    except TypeError:
        return
    rebuild, arguments = reduced[0], reduced[1]
    with pytest.raises(TypeError, match=r"not safe|made by their pool"):
        rebuild(*arguments)


def test_a_factory_never_sees_its_pool_half_built() -> None:
    """The factory hunts for native pools with gc.get_objects() and uses every one it finds."""
    output = run_child(
        """
        import gc
        from nexus_pool import Pool, local
        from nexus_pool._native import LocalBoundedPool, LocalPool, Pool as NativePool

        kinds = (NativePool, LocalPool, LocalBoundedPool)
        found = []

        def hunting_factory():
            for thing in gc.get_objects():
                if isinstance(thing, kinds):
                    found.append(thing)
                    repr(thing); thing.available()
                    guard = thing.try_acquire()
                    if guard is not None:
                        guard.release()
                    if isinstance(thing, NativePool):
                        thing.stats(); thing.is_shutdown
            return bytearray(8)

        other = Pool(2, bytearray)  # a whole pool the hunter finds and uses
        for make in (lambda: Pool(3, hunting_factory), lambda: local.BoundedPool(3, hunting_factory)):
            found.clear()
            made = make()
            assert other in found, "the hunter does find pools"
            assert made not in found, "a pool was visible before it was whole"
            assert made.available() == 3
        grower = local.Pool(hunting_factory)
        grower.acquire().release()  # a growing pool calls its factory once whole: fine
        print("ok")
        """
    )
    assert output.startswith("ok")


def test_a_pool_torn_down_by_the_collector_only_raises() -> None:
    """tp_clear, as the collector calls it on a cycle, leaves pools that raise, never crash.

    Called here through ctypes (PyType_GetSlot), on live pools, which is more than the
    collector ever does: it clears only objects nobody can reach.
    """
    output = run_child(
        """
        import ctypes, gc
        from nexus_pool import Pool, PoolShutDown, local

        Py_tp_clear = 51
        get_slot = ctypes.pythonapi.PyType_GetSlot
        get_slot.restype = ctypes.c_void_p
        get_slot.argtypes = [ctypes.py_object, ctypes.c_int]
        inquiry = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)

        def clear(thing):
            assert inquiry(get_slot(type(thing), Py_tp_clear))(thing) == 0

        pool = Pool(3, bytearray, bytearray.clear)
        held = pool.acquire()
        clear(pool)
        for call in (pool.try_acquire, pool.acquire, lambda: pool.acquire(0), pool._waiter):
            try:
                call()
            except PoolShutDown as error:
                assert "garbage collector" in str(error)
            else:
                raise AssertionError("a cleared pool lent a slot")
        held.release()
        assert pool.available() == 3 and pool.is_shutdown
        repr(pool); pool.stats(); pool.shutdown()

        for kind in (lambda: local.Pool(bytearray), lambda: local.BoundedPool(2, bytearray)):
            lp = kind()
            guard = lp.acquire()
            clear(lp)
            guard.release()
            repr(lp); lp.available()
            for call in (lp.acquire, lp.try_acquire):
                try:
                    call()
                except RuntimeError as error:
                    assert "garbage collector" in str(error)
            if hasattr(lp, "take"):
                try:
                    lp.take()
                except RuntimeError as error:
                    assert "garbage collector" in str(error)
        gc.collect()
        print("ok")
        """
    )
    assert output.strip() == "ok"


def test_a_cycle_through_a_pool_is_collected() -> None:
    """pool -> factory -> holder -> pool: only the collector frees it, and it does."""
    import gc
    import weakref

    class Holder:
        pool: Any = None

        def make(self) -> bytearray:
            return bytearray(4)

    holder = Holder()
    pool = Pool(2, holder.make, backend="atomic")
    holder.pool = pool
    guard = pool.acquire()
    watched = weakref.ref(pool)
    del pool, holder
    guard.release()
    del guard
    gc.collect()
    assert watched() is None


def test_the_native_module_keeps_no_state_in_c_statics() -> None:
    """Two module objects in one interpreter (the import system's own reload path for a
    multi-phase module) have distinct types: the types live in module state."""
    output = run_child(
        """
        import importlib.util, sys
        import nexus_pool._native as first
        spec = importlib.util.find_spec("nexus_pool._native")
        second = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(second)
        assert second.Pool is not first.Pool and second.Pooled is not first.Pooled
        pool = second.Pool._create(2, bytearray, None, "atomic", 64, 0.0)
        guard = pool.acquire()
        assert type(guard) is second.Pooled
        guard.release()
        assert pool.available() == 2
        print("ok")
        """
    )
    assert output.strip() == "ok"


SUBINTERPRETER_SETUP = """
import nexus_pool
from nexus_pool import local
pool = nexus_pool.Pool(4, bytearray, bytearray.clear)
assert pool.facade == "native", pool.facade
assert pool.backend == "atomic", pool.backend
held = pool.acquire()
bounded = local.BoundedPool(2, bytearray)
assert type(bounded).__module__ == "nexus_pool._native"
from nexus_pool import shared
buffers = shared.SharedBufferPool(2, 4096)
"""

SUBINTERPRETER_WORK = """
import threading
held.release()
for _ in range(ROUNDS):
    guards = [pool.acquire(timeout=10) for _ in range(4)]
    releaser = threading.Thread(target=lambda: [guard.release() for guard in guards])
    releaser.start()
    releaser.join()
    bounded.acquire().release()
    with shared.receive(buffers.acquire().send()) as view:
        view.data[0] = 1
assert pool.available() == 4 and buffers.available() == 2
buffers.close()
"""


class Subinterpreters:
    """``count`` new interpreters (isolated, with their own GIL, where this Python has
    them), each running code in turn: ``run_each`` runs one piece of code in all."""

    def __init__(self, count: int) -> None:
        self.failures: list[str] = []
        if sys.version_info >= (3, 14):
            from concurrent import interpreters  # type: ignore[import-not-found,unused-ignore]

            self._made: list[Any] = [interpreters.create() for _ in range(count)]
        elif sys.version_info >= (3, 13):
            import _interpreters  # type: ignore[import-not-found,unused-ignore]

            self._made = [_interpreters.create() for _ in range(count)]
        else:
            import _xxsubinterpreters  # type: ignore[import-not-found,unused-ignore]

            # isolated=False before 3.12: a legacy subinterpreter, as mod_wsgi-style hosts
            # make (3.11's isolated ones cannot start threads; 3.12's have their own GIL).
            isolated = sys.version_info >= (3, 12)
            self._made = [_xxsubinterpreters.create(isolated=isolated) for _ in range(count)]

    def run(self, index: int, code: str) -> None:
        made = self._made[index]
        if sys.version_info >= (3, 14):
            try:
                made.exec(code)
            except Exception as error:  # ExecutionFailed carries the child's traceback
                self.failures.append(repr(error))
        elif sys.version_info >= (3, 13):
            import _interpreters  # type: ignore[import-not-found,unused-ignore]

            error = _interpreters.exec(made, code)
            if error is not None:
                self.failures.append(repr(error))
        else:
            import _xxsubinterpreters  # type: ignore[import-not-found,unused-ignore]

            try:
                _xxsubinterpreters.run_string(made, code)
            except Exception as error:
                self.failures.append(repr(error))

    def run_each(self, code: str) -> None:
        """In every interpreter: at once, one thread each, where each has its own GIL;
        one after the other before 3.13 (legacy subinterpreters share the main one's GIL,
        and 3.11's threading loses track of a thread that ran one: exit hangs)."""
        if sys.version_info >= (3, 13):
            threads = [threading.Thread(target=self.run, args=(index, code)) for index in range(len(self._made))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        else:
            for index in range(len(self._made)):
                self.run(index, code)

    def close(self) -> None:
        for made in self._made:
            if sys.version_info >= (3, 14):
                made.close()
            elif sys.version_info >= (3, 13):
                import _interpreters  # type: ignore[import-not-found,unused-ignore]

                _interpreters.destroy(made)
            else:
                import _xxsubinterpreters  # type: ignore[import-not-found,unused-ignore]

                _xxsubinterpreters.destroy(made)


def run_in_subinterpreters(count: int, rounds: int) -> None:
    """Native pools in ``count`` interpreters, all alive together, each used in turn."""
    interpreters = Subinterpreters(count)
    try:
        interpreters.run_each(SUBINTERPRETER_SETUP)
        interpreters.run_each(SUBINTERPRETER_WORK.replace("ROUNDS", str(rounds)))
    finally:
        interpreters.close()
    assert not interpreters.failures, interpreters.failures


def test_a_native_pool_in_a_subinterpreter_while_the_main_interpreter_uses_one() -> None:
    pool = Pool(2, bytearray, backend="atomic")
    guard = pool.acquire()
    run_in_subinterpreters(1, rounds=200)
    guard.release()
    assert pool.available() == 2 and pool.facade == "native"


def test_native_pools_in_two_subinterpreters_at_once() -> None:
    pool = Pool(2, bytearray, backend="atomic")
    with pool.acquire():
        run_in_subinterpreters(2, rounds=2000)
    assert pool.available() == 2
