"""How a pool's slots are owned, given back, and brought back when their owner vanishes.

The pure-Python facade (``_pool.py``) is built on this module. The rules:

**One owner per slot, always held.** Each slot is owned by one :class:`Lease` object,
and that object is always held by something: the backend's free list while the slot is
free, one guard while it is lent, or a local variable for the few bytecodes in between.
Ownership moves in single C-level steps (a deque ``pop``, a dict store; see the backend
contract), so no bytecode ever runs while a slot is owned by nothing.

**A lease that dies brings its slot back.** A lease object dies without being given back
when its guard is dropped or collected unreleased, or when an exception cut an acquire
or a release short (a ``KeyboardInterrupt`` raised by a signal handler, say, which lands
between bytecodes and drops whatever a local variable held). Then, in this order:

1. the lease's finalizer hands its value to the lease's :class:`Record`: one call of C
   code (no Python frame, so no signal lands in it, and no error's traceback can keep
   the dying lease alive);
2. the record, a weak reference to the lease, is queued on ``Home.dead`` by its
   callback, ``deque.append``: C code, which no signal can interrupt, so the slot is
   never lost;
3. a second weak reference (the record's ``trigger``) revives the queued slots on the
   thread where the lease died: ``reset`` the value (or make a fresh one), give a new
   lease to the free list, wake a waiting acquirer. Reset errors go to
   ``sys.unraisablehook``, as for any finalizer. If this step is interrupted or cannot
   run, the records stay queued, and the next release, acquisition from an empty pool,
   wait or ``available()`` revives them; an interrupted revival drops the frames of its
   error's traceback first, so that a hook that keeps the error keeps no lease.

When memory runs out as a lease dies, CPython may skip its weak reference callbacks
altogether; the slot's current record is then dead but was never queued. Every revival
also looks for such records (one pass in C over ``Home.records``), so the same calls
bring those slots back.

Reviving a record claims its successor's place with ``dict.setdefault``, so a record is
revived exactly once, whichever threads try at once.

**Exactly once, even in cycles.** A guard collected by the cyclic GC (in a cycle, or
with a value that refers back to it) loses its lease in the same collection. The
collector runs the weak reference callbacks first (the record is queued; reviving waits
for the end of the collection, see ``_note_collection``), then the finalisers:
the lease's finalizer takes the value out of the lease, so a guard that the value (or
some finaliser) brings back to life can no longer reach it: reading its value raises
``ReleasedError``, and its ``release()`` gives nothing back (a quiet no-op, since the
slot went home already). While a collection runs,
``release()`` also checks that its lease is alive (``record() is lease``), because
another finaliser of the same collection may release it before the lease's finalizer ran.

**No cycles.** Nothing here refers back to a guard, and a lease refers only to its record,
which refers to the home only weakly. A dropped pool frees its values by reference
counting alone.

**Remaining windows**, all reachable only by a tracer that raises before *any* bytecode,
never by a signal (CPython runs signal handlers only at function entry, after a call
returns and at backward jumps); ``tests/interrupts/test_injection.py`` finds and lists
them: ``AtomicFreeList.give`` between parking a lease and pushing its slot; the first and
the last instruction of an ``except`` block (an exception raised there escapes CPython's
exception table, and the frame and its leases stay referenced as the thread's handled
exception); ``Pooled.release`` between entering its ``except`` block and marking the
value as half-reset. And one that signals can reach but that only delays: a callback
(a gc callback, or the trigger) that runs *inside* a revival, triggered by an allocation
or a reference count there, and is interrupted, reports an error whose traceback reaches
the revival's frame through ``f_back``; a hook that keeps that error keeps the lease
being revived until it lets the error go.
"""

from __future__ import annotations

import gc
import operator
import threading
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from operator import attrgetter, methodcaller
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, final

from ._backends._contract import FreeList, LeaseWatcher
from ._errors import PoolShutDown
from ._records import HowAcquired
from ._waiting import SHUTDOWN_MESSAGE, wait, wake_token

if TYPE_CHECKING:
    pass

__all__ = [
    "STALE",
    "Home",
    "Lease",
    "Record",
    "add_note",
    "collecting",
    "collection_running",
]

T = TypeVar("T")


STALE: Final[Any] = object()
"""The value of a slot that has none: its ``factory()`` failed, or its lease died before
handing the value over. The slot is free; its next acquisition calls ``factory()``."""

collecting: list[bool] = [False]
"""``collecting[0]`` is true while the cyclic garbage collector runs (see the module doc).

Set by ``_note_collection``, a Python gc callback, which a signal can cut short; so it is
only ever trusted through :func:`collection_running`, which notices a collection that
ended without clearing it."""

_revive_after_collection: list[weakref.ref[Home[Any]]] = []
"""Homes whose leases died during the running collection; revived when it ends."""

_phase_info: dict[str, dict[str, int]] = {}
"""The info the collector passed with its latest "start" and "stop": recorded by a C
callable (``operator.setitem``), which no signal can cut short."""

_stop_before_start: list[object] = [None]
"""The "stop" info that preceded the running collection's "start"."""


def _note_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _stop_before_start[0] = _phase_info.get("stop")  # before the flag: see collection_running
        collecting[0] = True
        return
    _collection_ended()


def _collection_ended() -> None:
    collecting[0] = False
    while True:
        try:
            home_ref = _revive_after_collection.pop()
        except IndexError:  # empty, or emptied by another thread meanwhile
            return
        home = home_ref()
        if home is not None:
            revive_forgetting_frames(home)


def collection_running() -> bool:
    """Whether the cyclic garbage collector is running (on any thread)."""
    if not collecting[0]:
        return False
    if _phase_info.get("stop") is not _stop_before_start[0]:
        _collection_ended()  # it ended, but a signal cut our "stop" callback short
        return False
    return True


gc.callbacks.append(partial(operator.setitem, _phase_info))  # first: runs before _note_collection
gc.callbacks.append(_note_collection)


@final
class Lease(Generic[T]):
    """Owns one slot and, while alive, its value (see the module docstring)."""

    __slots__ = ("__weakref__", "acquired", "box", "handover", "how", "record", "site", "slot", "thread")

    slot: int
    acquired: float | None
    """``time.monotonic()`` when it was lent (set last); ``None`` while free."""
    thread: int
    """The ident of the thread that acquired it."""
    how: HowAcquired
    site: tuple[str, int, str] | None
    """Where it was acquired, when recorded (see ``_holders.py``)."""
    box: dict[str, T]
    """``{"value": value}`` while this lease holds the slot's value; empty once handed over."""
    record: Record[T]
    handover: Callable[[], object]
    """Moves the value from ``box`` to ``record.handed``: one call of C code (``list.extend``
    over ``map`` over ``dict.pop``), so no signal can land inside it."""

    @property
    def value(self) -> T:
        try:
            return self.box["value"]
        except KeyError:
            raise AttributeError("value") from None  # handed over: this lease died

    @value.setter
    def value(self, value: T) -> None:
        self.box["value"] = value

    # The finalizer is no Python function: a signal handler can raise at the entry of
    # one, and a sys.unraisablehook that keeps the error would keep its frame, and with
    # it this lease, alive, its slot owned by nothing. CPython finds __del__ as a
    # descriptor (the property's getter, attrgetter, in C) and calls what it gives (the
    # handover, C) with no argument. Refcount death runs it before the weak references
    # act: the revived slot keeps its value (and resets it). In a collected cycle it runs
    # after them, and only makes the value unreachable through this lease.
    __del__ = property(attrgetter("handover"))


@final
class Record(weakref.ref, Generic[T]):  # type: ignore[type-arg]  # weakref.ref[Lease] is not subclassable on 3.10
    """What it takes to bring a slot back if its lease dies: a weak reference to the lease.

    ``home.records[slot]`` keeps each slot's current record reachable (possibly through
    ``succession``), so that its callbacks run even when the lease dies in a collected
    cycle. ``handed`` holds the value only once the lease has handed it over (its
    finalizer): while the slot is lent, nothing reachable from the pool refers to the
    value, so a value that refers to its guard is collected with it.
    """

    __slots__ = ("fresh_value_needed", "handed", "slot", "succession", "trigger")

    slot: int
    handed: list[T]
    """Empty, or ``[value]`` once the lease died (``STALE`` if it held none)."""
    fresh_value_needed: bool  # True while a reset is under way: if it is cut short, replace the value
    trigger: weakref.ref[Lease[T]]
    succession: dict[str, Record[T]]
    """Empty, or ``{"next": the record that replaced this one}``: reviving claims it with
    ``setdefault``, which exactly one thread wins."""

    def latest(self) -> Record[T]:
        """The end of this record's succession: the slot's current record."""
        record = self
        while (successor := record.succession.get("next")) is not None:
            record = successor
        return record


def _revive_soon(home_ref: weakref.ref[Home[Any]], _dead_lease: object) -> None:
    """The trigger's callback: revive the dead leases' slots now, on this thread."""
    home = home_ref()
    if home is not None:
        revive_forgetting_frames(home)


def revive_forgetting_frames(home: Home[Any]) -> None:
    """``home.revive_dead()`` where an error goes to ``sys.unraisablehook``: a weak
    reference callback or a gc callback."""
    try:
        home.revive_dead()
    except BaseException as error:
        # Interrupted (a signal handler's KeyboardInterrupt, a MemoryError): the hook may
        # keep the error for good (pytest's plugin and many logging set-ups do), and the
        # frames of its traceback hold the lease being revived. Let them go first (a store,
        # where no signal lands), so that the lease dies and its slot comes back; then
        # those of the errors it chains.
        error.__traceback__ = None
        forget_frames(error)
        raise


def forget_frames(error: BaseException) -> None:
    """Drop the tracebacks of ``error`` and of the errors it chains, and with them the
    frames (and their local variables) they keep alive."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += (current.__context__, current.__cause__)


# Calling each weak reference in C: operator.call exists from 3.11.
_referent: Final[Callable[[weakref.ref[Any]], object]] = getattr(operator, "call", methodcaller("__call__"))


def add_note(error: BaseException, note: str) -> None:
    if hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(note)


@final
class _Unraisable:
    """An exception to hand to ``sys.unraisablehook``, as CPython does for finalizers.

    The hook's default implementation accepts only arguments CPython made itself, so the
    exception is raised from a weak reference callback, which CPython then reports
    ("Exception ignored in: <description>").
    """

    __slots__ = ("description", "error")

    def __init__(self, error: BaseException, description: str) -> None:
        self.error = error
        self.description = description

    def __call__(self, _ref: object) -> None:
        raise self.error

    def __repr__(self) -> str:
        return self.description

    def report(self) -> None:
        carrier = _Carrier()
        ref = weakref.ref(carrier, self)
        del carrier  # the callback runs, and is reported, here
        del ref


@final
class _Carrier:
    __slots__ = ("__weakref__",)


@final
class Home(Generic[T]):
    """A pool's slots, values and waiting room, shared by the pool and its guards.

    Guards keep it (and so every value) alive after their pool is gone.
    """

    __slots__ = (
        "__weakref__",
        "capacity",
        "dead",
        "factory",
        "freelist",
        "give",
        "ready",
        "records",
        "ref",
        "reset",
        "revive_soon",
        "shut_down",
        "take",
        "waiting",
        "wakeup",
        "watcher",
    )

    def __init__(
        self,
        capacity: int,
        factory: Callable[[], T],
        reset: Callable[[T], object] | None,
        freelist_class: type[FreeList[Lease[T]]],
    ) -> None:
        values = [factory() for _ in range(capacity)]
        self.ready = False  # leases dropped while this constructor fails need no revival
        self.shut_down = False
        self.capacity = capacity
        self.factory = factory
        self.reset = reset
        self.dead: deque[Record[T]] = deque()
        # A blocked acquirer adds its token to `waiting`, then looks once more before
        # it sleeps on `wakeup`; a release gives its lease back, then takes a token out
        # of `waiting` (set.pop: one release per token) and wakes the sleeper. One of
        # the two sees the other, and a burst of releases wakes the sleeper once.
        # `wakeup` is a lock used as a binary semaphore: released means "a wake-up is
        # pending". Unlike a queue's get, Lock.acquire keeps its deadline when signals
        # interrupt it.
        self.waiting: set[object] = set()
        self.wakeup = threading.Lock()
        self.wakeup.acquire()
        self.ref = weakref.ref(self)
        self.revive_soon = partial(_revive_soon, self.ref)
        leases = [self._new_lease(slot, value) for slot, value in enumerate(values)]
        # records[slot] leads to the slot's current record (Record.latest); reviving a
        # slot moves it on, but the succession, not this list, is what counts.
        self.records = [lease.record for lease in leases]
        self.freelist = freelist_class(leases)
        self.take = self.freelist.take
        self.give = self.freelist.give
        self.watcher: LeaseWatcher | None = self.freelist.watcher
        self.ready = True

    def _new_lease(self, slot: int, value: T) -> Lease[T]:
        box = {"value": value}
        handed: list[T] = []
        lease: Lease[T] = Lease()
        lease.handover = partial(handed.extend, map(box.pop, ("value",), (STALE,)))
        lease.box = box
        lease.slot = slot
        lease.acquired = None
        lease.site = None
        # Callbacks of weak references run newest first: the record (queue the slot,
        # in C) must run before the trigger (revive the queued slots).
        trigger = weakref.ref(lease, self.revive_soon)
        record: Record[T] = Record(lease, self.dead.append)
        record.slot = slot
        record.handed = handed
        record.fresh_value_needed = False
        record.trigger = trigger
        record.succession = {}
        lease.record = record
        return lease

    # Giving slots back

    def give_back(self, lease: Lease[T]) -> None:
        """Store ``lease`` in the free list and wake a waiting acquirer."""
        lease.acquired = None  # first: holders() no longer lists it
        status = self.give(lease)
        if status:
            self.freelist.settle(lease, status)
        if self.waiting:
            self.wake()

    def wake(self) -> None:
        """Wake the acquirer whose token this takes; safe anywhere, finalizers included."""
        try:
            token = self.waiting.pop()
        except KeyError:
            return  # another release took it: that one wakes the sleeper
        wake_token(token, self.wakeup)

    def recover(self, lease: Lease[T], reset_error: BaseException) -> None:
        """``reset`` raised during a release: give the slot back with a fresh value."""
        try:
            lease.value = self.factory()
        except BaseException as factory_error:
            lease.value = STALE
            add_note(
                reset_error,
                f"factory() also raised {factory_error!r} while replacing the value; "
                "it will be called again when this slot is next acquired",
            )
        lease.record.fresh_value_needed = False
        self.give_back(lease)

    def remake(self, lease: Lease[T]) -> None:
        """Acquiring a slot that has no value (``STALE``): make one on this thread."""
        try:
            lease.value = self.factory()
        except BaseException:
            self.give_back(lease)  # still stale: the next acquisition tries again
            raise
        lease.record.fresh_value_needed = False

    # Reviving the slots of dead leases

    def revive_dead(self) -> None:
        """Bring back the slots of the dead leases queued on ``dead``.

        Any thread may call this, at any time, concurrently or reentrantly (a reset that
        drops another guard): each record is revived at most once. Interrupted, it
        leaves the rest queued for the next call.
        """
        if not self.ready:
            return
        if collection_running():
            # The collector runs weak reference callbacks before finalizers, and other
            # threads run meanwhile: a lease it found dead may not have handed its value
            # over yet. Revive once the collection is done, to reset the lease's own
            # value rather than replace it.
            _revive_after_collection.append(self.ref)
            return
        dead = self.dead
        while dead:
            try:
                record = dead[0]
            except IndexError:  # another thread emptied it meanwhile
                break
            # A record cut short while being made was never anybody's successor.
            slot = getattr(record, "slot", None)
            if slot is not None and self.records[slot].latest() is record and not self._revive(record):
                _revive_after_collection.append(self.ref)  # left queued: see _revive
                return
            with suppress(ValueError):  # removed by another thread that revived it too
                dead.remove(record)
        if None in map(_referent, self.records):
            self._revive_unqueued()

    def _revive_unqueued(self) -> None:
        """Revive the slots whose lease died without queueing its record.

        A lease's weak reference callbacks queue its record, but CPython skips them when
        memory runs out as the lease dies (``PyObject_ClearWeakRefs`` cannot allocate the
        tuple of callbacks), and ``deque.append`` can fail the same way. A slot is then
        owned by nothing, and only its dead record tells: a slot whose current record is
        dead is neither free nor lent. Reviving claims the record as the queue does.
        """
        records = self.records
        for slot, record in enumerate(records):
            latest = record.latest()
            if latest is not record:
                records[slot] = latest  # the shortcut fell behind a revival cut short
            if latest() is None and not self._revive(latest):
                _revive_after_collection.append(self.ref)
                return

    def _revive(self, record: Record[T]) -> bool:
        """Bring ``record``'s slot back; False if that must wait for the running collection.

        A collection that found the lease dead queues its record before it runs the
        lease's finalizer, and other threads run meanwhile (always on free-threaded
        builds): a record with no value handed over may be waiting for it. The check at
        the top of ``revive_dead`` is not enough, since a collection may start while the
        queue is being emptied; so it is made again here, for the record at hand, and the
        handed value read once more if no collection runs (the one that queued the record
        is then over, and so is the finalizer).
        """
        slot = record.slot
        handed = record.handed
        # One read (C): another thread reviving the same record at once may clear it.
        value = STALE if record.fresh_value_needed else next(iter(handed), STALE)
        if value is STALE and not record.fresh_value_needed:
            if collection_running():
                return False
            value = next(iter(handed), STALE)
        lease = self._new_lease(slot, value)
        successor = lease.record
        if record.succession.setdefault("next", successor) is not successor:
            return True  # another thread revived this slot first; this lease dies unregistered
        # From here an interruption only drops `lease`, whose record is now current.
        self.records[slot] = successor  # a shortcut; the succession already says so
        handed.clear()  # the old record must not keep the value reachable
        failure = self._renew(lease)
        self.give_back(lease)
        if self.watcher is not None:
            try:
                self.watcher.collected(slot)
            except Exception as error:  # e.g. warnings turned into errors
                _Unraisable(error, f"the debug check of slot {slot}, returned by garbage collection").report()
        if failure is not None:
            failure.report()
        return True

    def _renew(self, lease: Lease[T]) -> _Unraisable | None:
        """Reset the revived value, or replace it; what failed, to report once the slot is back."""
        record = lease.record
        reset = self.reset
        if lease.value is not STALE:
            if reset is None:
                return None
            record.fresh_value_needed = True  # a reset cut short is never run again
            try:
                reset(lease.value)
            except Exception as error:
                failure = _Unraisable(
                    error, f"reset() of the value of slot {lease.slot}, returned by garbage collection"
                )
            else:
                record.fresh_value_needed = False
                return None
        else:
            failure = None
        try:
            lease.value = self.factory()
        except Exception as error:
            lease.value = STALE
            return failure or _Unraisable(error, f"factory() making a new value for slot {lease.slot}")
        record.fresh_value_needed = False
        return failure

    # Waiting for a free slot

    def take_revived(self) -> Lease[T] | None:
        """After ``take`` found the free list empty: revive dead slots and take again."""
        self.revive_dead()
        try:
            return self.take()
        except LookupError:
            return None

    def take_or_none(self) -> Lease[T] | None:
        """A free lease (reviving dead slots if need be), or None; ``PoolShutDown`` after
        ``shutdown()`` (every way of acquiring, waiting ones included, comes here)."""
        if self.shut_down:
            raise PoolShutDown(SHUTDOWN_MESSAGE)
        try:
            return self.take()
        except LookupError:
            return self.take_revived()

    def shutdown(self) -> None:
        """Lend nothing more, and wake every waiting acquirer (its next look raises)."""
        self.shut_down = True
        while self.waiting:
            self.wake()

    def wait_for_lease(self, timeout: float | None) -> Lease[T] | None:
        """Take a lease, sleeping until one is free, at most ``timeout`` seconds (``None``: no limit)."""
        return wait(self.take_or_none, self.waiting, self.wakeup, timeout)
