/* nexus_pool._native: the native facade, Pool and Pooled as C extension types.
 *
 * Mirrors nexus_pool/_pool.py (the pure-Python facade) for the `atomic` backend; the
 * local pools, which mirror nexus_pool/_local.py, are in nexus_pool_local.c (included).
 * The free list is the lock-free Treiber stack of nexus_pool_freelist.c, compiled into
 * this module and called directly. Acquiring and
 * releasing run no bytecode, so no asynchronous exception can land between taking a slot
 * and handing it to its guard; user code (factory, reset) and the blocking wait are the
 * only Python calls.
 *
 * Ownership: while a slot is free its value sits in pool->values[slot]; while it is
 * lent, the guard owns the value and pool->values[slot] is NULL. So a value that refers
 * to its guard forms a cycle with it alone, and the cyclic GC can collect both: the
 * guard's finalizer returns the slot once. A guard keeps its pool alive (guard->owner is
 * a strong reference); the pool refers to no guard, so a dropped pool frees its values by
 * reference counting.
 *
 * The release claim: the guard's `value` is exchanged for NULL under the guard's
 * critical section on free-threaded builds (the GIL serialises it elsewhere); whoever
 * gets the value returns the slot. release(), __exit__ and the finalizer all claim that
 * way, so a slot is returned once whichever runs first, and a guard holds its value iff
 * `value` is set. Reading the value takes the same critical section: a reader never
 * holds a pointer that a concurrent release could free (a failed reset drops the value).
 *
 * Life cycle: the types refuse tp_new (and so object.__new__ and copyreg's
 * reconstructor); a pool is made only by Pool._create (on Pool, or on BufferPool, its one
 * subclass: nexus_pool.BufferPool's native implementation), which makes every part, the
 * values included, before the object exists, so the garbage collector (gc.get_objects())
 * never shows a pool that is not whole. tp_clear (the collector breaking a cycle through
 * a pool) leaves the pool shut down, never half usable.
 *
 * Module: multi-phase initialisation (PEP 489) with the types and every Python object
 * this code uses in module state (PEP 573/630), so each interpreter, subinterpreters
 * included, has its own; no C static holds a Python object. The module imports what it
 * needs itself: the public base classes (nexus_pool._base, _guard, _buffers, _local_base),
 * the argument checks (_checks), the errors, the waiting helpers (_waiting, _slots), the holder
 * records' helpers (_holders) and PoolStats; none of them imports this module back.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <time.h>

/* The free list is compiled into this file, not linked: its pop and push are then inlined
 * into the acquire and release paths (a few ns of a ~60 ns cycle). The cffi module of the
 * pure facade's atomic backend compiles the same file on its own. */
#include "nexus_pool_freelist.c"

/* ---- compatibility shims (CPython 3.10 - 3.14) ------------------------------------- */

/* stats() counters: written by the acquiring thread only, read by any. On free-threaded
 * builds they are relaxed atomics, which a load and a store update: plain moves, no
 * locked instruction (a second acquirer, which is misuse, can only make them miscount). */
#ifdef Py_GIL_DISABLED
#include <stdatomic.h>
typedef _Atomic int64_t nxp_count;
typedef _Atomic double nxp_seconds;
#define NXP_GET(counter) atomic_load_explicit(&(counter), memory_order_relaxed)
#define NXP_SET(counter, value) atomic_store_explicit(&(counter), (value), memory_order_relaxed)
#else
typedef int64_t nxp_count;
typedef double nxp_seconds;
#define NXP_GET(counter) (counter)
#define NXP_SET(counter, value) ((counter) = (value))
#endif
#define NXP_ADD(counter, amount) NXP_SET(counter, NXP_GET(counter) + (amount))

#if PY_VERSION_HEX >= 0x030D0000
#define NXP_BEGIN_CRITICAL_SECTION(op) Py_BEGIN_CRITICAL_SECTION(op)
#define NXP_END_CRITICAL_SECTION() Py_END_CRITICAL_SECTION()
#else /* the GIL serialises everything a critical section would */
#define NXP_BEGIN_CRITICAL_SECTION(op) {
#define NXP_END_CRITICAL_SECTION() }
#endif

/* The exception being raised, set aside while more Python code runs, then restored. */
typedef struct {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exception;
#else
    PyObject *type, *exception, *traceback;
#endif
} nxp_error;

static nxp_error
nxp_error_take(void)
{
    nxp_error error;
#if PY_VERSION_HEX >= 0x030C0000
    error.exception = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&error.type, &error.exception, &error.traceback);
    if (error.type != NULL) {
        PyErr_NormalizeException(&error.type, &error.exception, &error.traceback);
        if (error.traceback != NULL)
            PyException_SetTraceback(error.exception, error.traceback);
    }
#endif
    return error;
}

static void
nxp_error_restore(nxp_error error)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(error.exception);
#else
    PyErr_Restore(error.type, error.exception, error.traceback);
#endif
}

static void
nxp_error_forget(nxp_error error)
{
#if PY_VERSION_HEX >= 0x030C0000
    Py_XDECREF(error.exception);
#else
    Py_XDECREF(error.type);
    Py_XDECREF(error.exception);
    Py_XDECREF(error.traceback);
#endif
}

/* An exception is being raised: make `earlier` (taken before) its __context__, as Python
 * chains an exception raised while another is handled. */
static void
nxp_error_chain(nxp_error earlier)
{
    if (earlier.exception == NULL) {
        nxp_error_forget(earlier);
        return;
    }
    nxp_error current = nxp_error_take();
    if (current.exception != NULL && current.exception != earlier.exception)
        PyException_SetContext(current.exception, Py_NewRef(earlier.exception));
    nxp_error_forget(earlier);
    nxp_error_restore(current);
}

/* The calling thread's ident, as threading.get_ident() gives it: PyThread_get_thread_ident
 * without the call (pthread_self reads a register). */
#ifdef _POSIX_THREADS
#include <pthread.h>
#define NXP_THREAD_IDENT() ((int64_t)(unsigned long)pthread_self())
#else
#define NXP_THREAD_IDENT() ((int64_t)PyThread_get_thread_ident())
#endif

/* Nanoseconds of a monotonic clock that is cheap to read: ages of holders need a few
 * milliseconds of resolution, and the coarse clock costs a quarter of the fine one. */
static inline int64_t
nxp_now_ns(void)
{
    struct timespec now;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
#else
    clock_gettime(CLOCK_MONOTONIC, &now);
#endif
    return (int64_t)now.tv_sec * 1000000000 + (int64_t)now.tv_nsec;
}

/* ---- module state ------------------------------------------------------------------- */

typedef struct {
    PyTypeObject *pool_type;
    PyTypeObject *buffer_pool_type; /* pool_type and nexus_pool._buffers.BufferPool */
    PyTypeObject *pooled_type;
    PyTypeObject *local_pool_type;
    PyTypeObject *local_bounded_type;
    PyObject *released_error;         /* nexus_pool.ReleasedError */
    PyObject *pool_shut_down;         /* nexus_pool.PoolShutDown */
    PyObject *shutdown_message;       /* str: what PoolShutDown says */
    PyObject *released_message;       /* str: the ReleasedError of a released guard */
    PyObject *collected_message;      /* str: ... of a guard its finalizer released */
    PyObject *local_exhausted_reason; /* str: why a local BoundedPool's acquire() does not wait */
    PyObject *local_what;             /* str: what its exhaustion message calls its values */
    PyObject *wait_helper;            /* _waiting.wait(take, waiting, wakeup, timeout) -> guard | None */
    PyObject *check_timeout;          /* _checks.check_timeout(timeout) -> float | None, or raises */
    PyObject *value_repr;             /* _guard.value_repr(value) -> str, bounded */
    PyObject *add_note;               /* _slots.add_note(error, note) */
    PyObject *lock_type;              /* threading.Lock */
    PyObject *stats_type;             /* nexus_pool.PoolStats */
    PyObject *waiter_type;            /* _waiting.Waiter(take, waiting, note_wait) */
    PyObject *monotonic;              /* time.monotonic */
    PyObject *exhausted_error;        /* _holders.exhausted(capacity, holders, waited) -> PoolExhausted */
    PyObject *warn_held;              /* _holders.warn_held_too_long(holders, threshold, pool) */
    PyObject *internal_prefix;        /* str: frames of files whose path starts so are nexus_pool's own */
    PyObject *how_names[3];           /* "sync", "async", "local": see enum nxp_how */
    double longest_wait;              /* a longer timeout means no limit (_checks.LONGEST_WAIT) */
} nxp_state;

static struct PyModuleDef native_module;

/* The state of the module that made `type` (one of this module's types: only Pool can be
 * subclassed, and only the types this module makes can have instances). The type keeps
 * its module alive, and every instance keeps its type. */
static inline nxp_state *
state_of(PyTypeObject *type)
{
    return (nxp_state *)PyType_GetModuleState(type);
}

#define STATE(object) state_of(Py_TYPE(object))

/* ---- the objects -------------------------------------------------------------------- */

/* A Pool keeps the memory of a few of its dead guards and makes its next guards in it,
 * instead of freeing and allocating one per acquisition: that pays for recording who
 * holds each slot (holders()). GIL builds only (the GIL serialises the spares); only
 * guards the collector never finalized are kept, whose memory is exactly as fresh. */
#define NXP_SPARE_GUARDS 8

enum nxp_how { NXP_SYNC = 0, NXP_ASYNC = 1, NXP_LOCAL = 2 };

/* Where an acquisition happened, when it was recorded: the caller's code and where in it.
 * From 3.11 the instruction's offset, turned into a line only when holders() asks (the
 * line table's walk is most of what recording a site would otherwise cost). */
typedef struct {
    PyObject *code; /* a code object (strong), or NULL: not recorded */
    int line;       /* the line; from 3.11, the offset of the instruction (f_lasti) */
} nxp_site;

/* Who holds a slot of a Pool, written by the acquiring thread at each acquisition and
 * read by any thread (holders(), stats(), the leak check): relaxed atomics on
 * free-threaded builds. The site changes under the pool's critical section. */
typedef struct {
    nxp_count acquired_ns; /* nxp_now_ns() at the acquisition */
    nxp_count thread;      /* the acquiring thread's ident (PyThread_get_thread_ident) */
    nxp_count serial;      /* which acquisition of the pool it was (1, 2, ...) */
    nxp_count how;         /* enum nxp_how */
    nxp_site site;         /* recorded for acquisition number site_serial */
    int64_t site_serial;
} nxp_holding;

/* How a pool samples acquire sites: every `period`-th on average (0: never, 1: always),
 * at random intervals, so that a periodic pattern of call sites cannot hide one. Kept by
 * the acquiring thread (atomics on free-threaded builds: a second acquirer, which is
 * misuse, only samples differently). */
typedef struct {
    int64_t period;
    nxp_count countdown; /* acquisitions until the next recorded one */
    nxp_count random;    /* xorshift64 state */
} nxp_sampler;

typedef struct {
    PyObject_HEAD nxp_freelist *stack; /* which slots are free; owned, freed by dealloc */
    intptr_t *tickets;                 /* tickets[slot]: what nxp_push takes */
    PyObject **values;                 /* values[slot]: the value of a free slot; NULL while lent
                              (or when its factory() failed: made on the next acquire) */
    Py_ssize_t capacity;
    PyObject *factory; /* NULL only once the collector cleared the pool */
    PyObject *reset;   /* NULL: no reset */
    PyObject *name;    /* the backend's name */
    PyObject *waiting; /* set: tokens of blocked acquirers (see _waiting.wait); NULL once cleared */
    PyObject *wakeup;  /* threading.Lock used as a binary semaphore */
    PyObject *weakreflist;
    nxp_count acquisitions; /* the counters of stats() (see PoolStats) */
    nxp_count exhaustions;
    nxp_count high_water;
    nxp_seconds wait_seconds;
    nxp_count shut_down;      /* 1 once shutdown() was called, or the collector cleared
                                 the pool: lend nothing more */
    PyTypeObject *guard_type; /* the module's Pooled type, looked up once: a strong reference */
    nxp_holding *holding;     /* holding[slot]: who holds it (meaningful while it is leased) */
    nxp_sampler sampler;
    int64_t warn_after_ns;   /* warn about guards held longer; 0: never */
    nxp_count next_check_ns; /* when the acquire path next looks for them */
    nxp_count last_check_ns; /* when it last looked */
#ifndef Py_GIL_DISABLED
    struct PooledObject *spare_guards[NXP_SPARE_GUARDS]; /* memory of dead guards, reused */
    int spare_count;
#endif
} PoolObject;

/* nexus_pool.local's pools (both kinds): one thread acquires and releases, so the free
 * values are a plain stack. Its critical section (free-threaded builds) guards the stack
 * as a list's guards its items: misuse from other threads cannot corrupt it. */
typedef struct {
    PyObject_HEAD PyObject **free; /* the free values, a stack; a NULL entry is made by factory()
                              when taken (its reset failed, and so did the factory) */
    Py_ssize_t count;              /* free values */
    Py_ssize_t allocated;          /* room in `free` */
    Py_ssize_t capacity;           /* BoundedPool: the fixed number of values; Pool: -1, it grows */
    PyObject *factory;             /* NULL only once the collector cleared the pool */
    PyObject *reset;               /* NULL: no reset */
    PyObject *weakreflist;
    struct PooledObject *lent; /* the guards holding a value, a list through their
                                   lent_next/lent_previous (borrowed: a guard unlinks itself
                                   when its value comes back); under the critical section */
    nxp_sampler sampler;
} LocalPoolObject;

#define NXP_LOCAL_SLOT (-1) /* the slot of a local pool's guard */

/* What `collected` says of a guard whose value is gone. */
enum {
    NXP_RELEASED = 0,           /* released by release() or __exit__ */
    NXP_COLLECTED = 1,          /* its finalizer returned the slot: release() is a quiet no-op */
    NXP_COLLECTED_RELEASED = 2, /* ... and release() was called once since */
};

typedef struct PooledObject {
    PyObject_HEAD PyObject *owner; /* a PoolObject, or a LocalPoolObject when slot is NXP_LOCAL_SLOT;
                              a strong reference: the guard keeps its pool alive */
    PyObject *value;               /* owned while held; NULL once released (the claim) */
    Py_ssize_t slot;
    int collected; /* see the enum above; guarded as `value` is */
    /* A local pool's guard only (a Pool keeps this per slot): who holds the value, and its
     * place in its pool's list of lent guards, both under the pool's critical section. */
    int64_t acquired_ns;
    int64_t thread;
    nxp_site site;
    struct PooledObject *lent_next, *lent_previous;
} PooledObject;

static PyObject *
refuse_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwargs))
{
    /* Also what object.__new__(type) and copyreg's reconstructor meet: CPython refuses
     * object.__new__ for a type whose own tp_new is not object's. */
    PyErr_Format(PyExc_TypeError,
                 "%s objects are made by their pool, not directly: use nexus_pool.Pool(...), "
                 "nexus_pool.BufferPool(...), nexus_pool.local.Pool(...) or nexus_pool.local.BoundedPool(...)",
                 type->tp_name);
    return NULL;
}

/* ---- who holds what ----------------------------------------------------------------- */

static int64_t
next_interval(nxp_sampler *sampler)
{
    if (sampler->period <= 1)
        return 1;
    uint64_t x = (uint64_t)NXP_GET(sampler->random);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    NXP_SET(sampler->random, (int64_t)x);
    return 1 + (int64_t)(x % (uint64_t)(2 * sampler->period - 1)); /* mean: period */
}

static void
sampler_init(nxp_sampler *sampler, int64_t period, uint64_t seed)
{
    sampler->period = period;
    NXP_SET(sampler->random, (int64_t)(seed | 1));
    NXP_SET(sampler->countdown, next_interval(sampler));
}

/* 1 if this acquisition's site is to be recorded. */
static inline int
sample_now(nxp_sampler *sampler)
{
    if (sampler->period == 0)
        return 0;
    int64_t left = NXP_GET(sampler->countdown) - 1;
    if (left > 0) {
        NXP_SET(sampler->countdown, left);
        return 0;
    }
    NXP_SET(sampler->countdown, next_interval(sampler));
    return 1;
}

/* The innermost Python frame outside nexus_pool's private modules (the caller's, also through
 * acquire_async's coroutine): its code (a new reference) and line in *site, or no code.
 * Each frame is held by a reference taken here while it is looked at. */
static void
caller_site(nxp_state *state, nxp_site *site)
{
    site->code = NULL;
    site->line = 0;
    PyFrameObject *frame = PyEval_GetFrame(); /* borrowed: the running frame */
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int ours = PyUnicode_Tailmatch(code->co_filename, state->internal_prefix, 0, PY_SSIZE_T_MAX, -1);
        if (ours == 0) {
            site->code = (PyObject *)code;
#if PY_VERSION_HEX >= 0x030B0000
            site->line = PyFrame_GetLasti(frame);
#else
            site->line = PyFrame_GetLineNumber(frame);
#endif
            break;
        }
        Py_DECREF(code);
        if (ours < 0) {
            PyErr_Clear(); /* a site is a courtesy */
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
}

/* (filename, line, function) of a recorded site, or None. */
static PyObject *
site_tuple(PyObject *code_object, int line)
{
    if (code_object == NULL)
        Py_RETURN_NONE;
    PyCodeObject *code = (PyCodeObject *)code_object; /* kept alive by the caller's reference */
#if PY_VERSION_HEX >= 0x030B0000
    line = PyCode_Addr2Line(code, line);
#endif
    return Py_BuildValue("(OiO)", code->co_filename, line, code->co_name);
}

/* ---- giving a slot back ------------------------------------------------------------- */

/* Wake one blocked acquirer, if any: take its token; a thread's token is a plain object
 * (release the semaphore it sleeps on), an event loop's is a callable that schedules its
 * wake-up (as _waiting.wake_token, whose rules these are: an ordinary error of a callable
 * token means its loop closed, a RuntimeError of the semaphore a wake-up is pending; any
 * other exception, a KeyboardInterrupt say, goes up, chained to the one pending).
 * 0, or -1 with that exception set. `pool` is kept alive by the caller. */
static int
wake_waiter(PoolObject *pool)
{
    if (pool->waiting == NULL || PySet_GET_SIZE(pool->waiting) == 0)
        return 0; /* the common case: nobody waits, a release costs this one test */
    nxp_error pending = nxp_error_take();
    int result = 0;
    PyObject *token = PySet_Pop(pool->waiting);
    if (token == NULL) {
        PyErr_Clear(); /* another release took it: that one wakes the sleeper */
    } else {
        int callable = PyCallable_Check(token);
        PyObject *done = callable ? PyObject_CallNoArgs(token) : PyObject_CallMethod(pool->wakeup, "release", NULL);
        Py_DECREF(token);
        if (done != NULL)
            Py_DECREF(done);
        else if (PyErr_ExceptionMatches(callable ? PyExc_Exception : PyExc_RuntimeError))
            PyErr_Clear();
        else
            result = -1;
    }
    if (result < 0)
        nxp_error_chain(pending);
    else
        nxp_error_restore(pending);
    return result;
}

/* Store `value` (stolen; NULL: the slot has no value) as slot's, push the slot, and wake
 * a waiter. -1 if the wake-up raised (the slot is back regardless); an exception already
 * set stays set. `pool` (and so its arrays) is kept alive by the caller. */
static int
store_and_push(PoolObject *pool, Py_ssize_t slot, PyObject *value)
{
    pool->values[slot] = value; /* before the push: once pushed, the slot can be taken */
    nxp_push(pool->tickets[slot]);
    return wake_waiter(pool);
}

/* Reset `value` (stolen) on this thread for its next lease: the value to store. If reset
 * raised (or was interrupted), never the half-reset value: a fresh factory() one, or NULL
 * (none: made when next taken) if that raised too; *failed is then 1 and the reset's
 * exception is set. `owner`, the pool, is kept alive by the caller. */
static PyObject *
renew(PyObject *owner, PyObject *reset, PyObject *factory, PyObject *value, int *failed)
{
    *failed = 0;
    if (reset == NULL)
        return value;
    PyObject *result = PyObject_CallOneArg(reset, value);
    if (result != NULL) {
        Py_DECREF(result);
        return value;
    }
    *failed = 1;
    nxp_error reset_error = nxp_error_take();
    Py_DECREF(value);
    PyObject *fresh = factory == NULL ? NULL : PyObject_CallNoArgs(factory);
    if (fresh == NULL && factory != NULL) {
        nxp_error factory_error = nxp_error_take();
        PyObject *note = PyUnicode_FromFormat("factory() also raised %R while replacing the value; "
                                              "it will be called again when this slot is next acquired",
                                              factory_error.exception);
        PyObject *added = NULL;
        PyObject *add_note = STATE(owner)->add_note;
        if (note != NULL && reset_error.exception != NULL && add_note != NULL)
            added = PyObject_CallFunctionObjArgs(add_note, reset_error.exception, note, NULL);
        if (added == NULL)
            PyErr_Clear(); /* the note is a courtesy; the reset error still goes up */
        Py_XDECREF(added);
        Py_XDECREF(note);
        nxp_error_forget(factory_error);
    }
    nxp_error_restore(reset_error);
    return fresh;
}

/* Reset `value` (stolen) on this thread and return `slot`: the reset of the pure facade's
 * PurePooled.release, then its Home.give_back (store_and_push: keep the value, push the
 * slot, wake a waiter). -1 with an exception set if reset raised (the slot went back
 * anyway, with a fresh factory() value) or the wake-up did. `pool` is kept alive by the
 * guard that held the value. */
static int
reset_and_give_back(PoolObject *pool, Py_ssize_t slot, PyObject *value)
{
    int failed;
    PyObject *renewed = renew((PyObject *)pool, pool->reset, pool->factory, value, &failed);
    int woken = store_and_push(pool, slot, renewed); /* keeps the reset's exception set */
    return failed || woken < 0 ? -1 : 0;
}

/* Push `value` (stolen; NULL: none) on a local pool's stack; -1 and MemoryError if a
 * growing pool found no memory (the value is dropped: such a pool just holds one less).
 * `pool` is kept alive by the caller; its stack is guarded by its critical section. */
static int
local_push(LocalPoolObject *pool, PyObject *value)
{
    int grown = 0;
    NXP_BEGIN_CRITICAL_SECTION(pool);
    if (pool->count == pool->allocated) {
        /* only a growing pool gets here: a bounded one has room for all its values */
        Py_ssize_t room = pool->allocated * 2 + 8;
        PyObject **larger = PyMem_Realloc(pool->free, (size_t)room * sizeof(PyObject *));
        if (larger != NULL) {
            pool->free = larger;
            pool->allocated = room;
        } else
            grown = -1;
    }
    if (grown == 0)
        pool->free[pool->count++] = value;
    NXP_END_CRITICAL_SECTION();
    if (grown < 0) {
        Py_XDECREF(value);
        PyErr_NoMemory();
    }
    return grown;
}

/* Reset `value` (stolen) and keep it in the local pool: as reset_and_give_back. */
static int
local_reset_and_give_back(LocalPoolObject *pool, PyObject *value)
{
    int failed;
    PyObject *renewed = renew((PyObject *)pool, pool->reset, pool->factory, value, &failed);
    if (!failed)
        return local_push(pool, renewed);
    nxp_error reset_error = nxp_error_take();
    if (local_push(pool, renewed) < 0)
        PyErr_Clear(); /* the reset's error is the one to report */
    nxp_error_restore(reset_error);
    return -1;
}

/* Take a local pool's guard off its pool's list of lent guards, if it is on it, and drop
 * its site. `guard` and its pool (guard->owner) are kept alive by the caller. */
static void
local_unlink(PooledObject *guard)
{
    LocalPoolObject *pool = (LocalPoolObject *)guard->owner;
    PyObject *code;
    NXP_BEGIN_CRITICAL_SECTION(pool);
    if (guard->lent_previous != NULL)
        guard->lent_previous->lent_next = guard->lent_next;
    else if (pool->lent == guard)
        pool->lent = guard->lent_next;
    if (guard->lent_next != NULL)
        guard->lent_next->lent_previous = guard->lent_previous;
    guard->lent_next = guard->lent_previous = NULL;
    code = guard->site.code;
    guard->site.code = NULL;
    NXP_END_CRITICAL_SECTION();
    Py_XDECREF(code);
}

/* Give back the value `guard` claimed, to whichever kind of pool it came from (the
 * guard's strong reference keeps that pool alive). */
static int
return_value(PooledObject *guard, PyObject *value)
{
    if (guard->slot == NXP_LOCAL_SLOT) {
        local_unlink(guard);
        return local_reset_and_give_back((LocalPoolObject *)guard->owner, value);
    }
    return reset_and_give_back((PoolObject *)guard->owner, guard->slot, value);
}

/* The release claim: the value, if this call won it (NULL otherwise). `guard` is kept
 * alive by the caller. */
static PyObject *
claim(PooledObject *guard, int collected)
{
    PyObject *value;
    NXP_BEGIN_CRITICAL_SECTION(guard);
    value = guard->value;
    guard->value = NULL;
    if (value != NULL)
        guard->collected = collected;
    NXP_END_CRITICAL_SECTION();
    return value;
}

/* A release() that claimed nothing: 1 if it is the first since the guard's finalizer
 * returned the slot (quietly done: the user did nothing wrong, e.g. a finalizer of the
 * same collection released it), 0 if it is an error. `guard` is kept alive by the caller. */
static int
quiet_release(PooledObject *guard)
{
    int quiet = 0;
    NXP_BEGIN_CRITICAL_SECTION(guard);
    if (guard->collected == NXP_COLLECTED) {
        guard->collected = NXP_COLLECTED_RELEASED;
        quiet = 1;
    }
    NXP_END_CRITICAL_SECTION();
    return quiet;
}

/* A new reference to the value while the guard holds it, else NULL. `guard` is kept alive
 * by the caller; the value, once read under the critical section, by that new reference. */
static PyObject *
held_value(PooledObject *guard)
{
    PyObject *value;
    NXP_BEGIN_CRITICAL_SECTION(guard);
    value = Py_XNewRef(guard->value);
    NXP_END_CRITICAL_SECTION();
    return value;
}

/* ---- Pooled ------------------------------------------------------------------------- */

/* `guard` (and its type, which keeps the module's state) is kept alive by the caller. */
static PyObject *
released_error(PooledObject *guard, int reading)
{
    /* A guard its finalizer released, then brought back to life (by its value, or a
     * finalizer of the same collection), says so when read, as the pure facade's does. */
    nxp_state *state = STATE(guard);
    int collected = guard->collected != NXP_RELEASED && reading;
    PyObject *message = collected ? state->collected_message : state->released_message;
    PyErr_SetObject(state->released_error != NULL ? state->released_error : PyExc_RuntimeError,
                    message != NULL ? message : Py_None);
    return NULL;
}

/* `self` is kept alive by this call; its pool by its strong reference guard->owner. */
static PyObject *
Pooled_release(PooledObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    /* Also __exit__: takes and ignores up to three arguments. */
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "release() takes at most 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *value = claim(self, NXP_RELEASED);
    if (value == NULL) {
        if (quiet_release(self))
            Py_RETURN_NONE;
        return released_error(self, 0);
    }
    if (return_value(self, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* `self` is kept alive by this call. */
static PyObject *
Pooled_value(PooledObject *self, void *Py_UNUSED(closure))
{
    PyObject *value = held_value(self);
    if (value == NULL)
        return released_error(self, 1);
    return value;
}

/* `self` is kept alive by this call. */
static PyObject *
Pooled_enter(PooledObject *self, PyObject *Py_UNUSED(ignored))
{
    return Pooled_value(self, NULL);
}

/* `self` is kept alive by this call; the value by the new reference held_value() returns. */
static PyObject *
Pooled_repr(PooledObject *self)
{
    PyObject *value = held_value(self);
    if (value == NULL)
        return PyUnicode_FromString("<Pooled (released)>");
    nxp_state *state = STATE(self);
    PyObject *shown = state->value_repr != NULL ? PyObject_CallOneArg(state->value_repr, value) : PyObject_Repr(value);
    Py_DECREF(value);
    if (shown == NULL)
        return NULL;
    PyObject *text = self->slot == NXP_LOCAL_SLOT
                         ? PyUnicode_FromFormat("<Pooled local value=%S>", shown)
                         : PyUnicode_FromFormat("<Pooled slot=%zd value=%S>", self->slot, shown);
    Py_DECREF(shown);
    return text;
}

static PyObject *
Pooled_reduce_ex(PyObject *self, PyObject *Py_UNUSED(protocol))
{
    PyErr_SetString(PyExc_TypeError,
                    "Pooled guards cannot be copied or pickled: a copy would be a second lease on one slot");
    return NULL;
}

/* A guard dropped or collected unreleased returns its slot (reset errors: unraisable).
 * CPython keeps `self` alive while its finalizer runs; its pool by guard->owner. */
static void
Pooled_finalize(PooledObject *self)
{
    PyObject *value = claim(self, NXP_COLLECTED);
    if (value == NULL)
        return; /* released already: the common case, one test */
    nxp_error saved = nxp_error_take();
    if (return_value(self, value) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    nxp_error_restore(saved);
}

/* The collector calls this with every thread stopped; `self` is alive until it returns. */
static int
Pooled_traverse(PooledObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->owner);
    Py_VISIT(self->value); /* the collector runs with every other thread stopped */
    Py_VISIT(self->site.code);
    return 0;
}

static int
Pooled_clear(PooledObject *self)
{
    /* The finalizer ran first (PEP 442), so a held guard's value went home already (and a
     * local guard left its pool's list). `self` is alive until the collector is done. */
    if (self->slot == NXP_LOCAL_SLOT && self->owner != NULL)
        local_unlink(self);
    Py_CLEAR(self->value);
    Py_CLEAR(self->owner);
    return 0;
}

static void
Pooled_dealloc(PooledObject *self)
{
    /* Nobody else refers to the guard any more; its memory is ours until tp_free. A
     * released guard, the common case, skips the finalizer call altogether. */
    if (self->value != NULL && PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* resurrected by the finalizer */
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
#ifndef Py_GIL_DISABLED
    PoolObject *pool = self->slot == NXP_LOCAL_SLOT ? NULL : (PoolObject *)self->owner;
    if (pool != NULL && pool->spare_count < NXP_SPARE_GUARDS && self->value == NULL &&
        !PyObject_GC_IsFinalized((PyObject *)self)) {
        /* Kept by its pool (held alive by self->owner until the last line): the pool's
         * dealloc frees its spares, this one included. */
        pool->spare_guards[pool->spare_count++] = self;
        self->owner = NULL;
        Py_DECREF(type);
        Py_DECREF(pool);
        return;
    }
#endif
    Pooled_clear(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef Pooled_methods[] = {
    {"release", (PyCFunction)(void (*)(void))Pooled_release, METH_FASTCALL,
     "Reset the value on this thread and return its slot to the pool."},
    {"__exit__", (PyCFunction)(void (*)(void))Pooled_release, METH_FASTCALL, "release()"},
    {"__enter__", (PyCFunction)Pooled_enter, METH_NOARGS, "The pooled value."},
    {"__reduce_ex__", (PyCFunction)Pooled_reduce_ex, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Pooled_getset[] = {
    {"value", (getter)Pooled_value, NULL, "The pooled value; ReleasedError once released.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Pooled_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, Pooled_dealloc},
    {Py_tp_finalize, Pooled_finalize},
    {Py_tp_traverse, Pooled_traverse},
    {Py_tp_clear, Pooled_clear},
    {Py_tp_repr, Pooled_repr},
    {Py_tp_methods, Pooled_methods},
    {Py_tp_getset, Pooled_getset},
    {Py_tp_doc, "A lease on one pooled value (the native facade's guard)."},
    {0, NULL},
};

static PyType_Spec Pooled_spec = {
    "nexus_pool._native.Pooled", sizeof(PooledObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, Pooled_slots,
};

/* A new guard holding `value` (stolen) for `owner`'s `slot`, tracked by the collector
 * only once it is whole. NULL and an exception if memory ran out (`value` is then
 * still the caller's). The guard keeps `owner` alive from here on. */
static PyObject *
new_guard(PyTypeObject *guard_type, PyObject *owner, PyObject *value, Py_ssize_t slot)
{
    PooledObject *guard;
#ifndef Py_GIL_DISABLED
    PoolObject *pool = slot == NXP_LOCAL_SLOT ? NULL : (PoolObject *)owner;
    if (pool != NULL && pool->spare_count > 0) {
        guard = pool->spare_guards[--pool->spare_count];
        PyObject_Init((PyObject *)guard, guard_type); /* a reference to its type, as new */
    } else
#endif
        guard = PyObject_GC_New(PooledObject, guard_type);
    if (guard == NULL)
        return NULL;
    guard->owner = Py_NewRef(owner);
    guard->value = value; /* not yet shared with any other thread */
    guard->slot = slot;
    guard->collected = NXP_RELEASED;
    guard->acquired_ns = guard->thread = 0;
    guard->site.code = NULL;
    guard->site.line = 0;
    guard->lent_next = guard->lent_previous = NULL;
    PyObject_GC_Track((PyObject *)guard);
    return (PyObject *)guard;
}

/* ---- Pool --------------------------------------------------------------------------- */

/* `pool` is kept alive by the caller. */
static PyObject *
shut_down_error(PoolObject *pool)
{
    nxp_state *state = STATE(pool);
    if (pool->factory == NULL)
        PyErr_SetString(state->pool_shut_down, "this pool was torn down by the garbage collector (it was part of an "
                                               "unreachable reference cycle): it lends nothing more");
    else
        PyErr_SetObject(state->pool_shut_down, state->shutdown_message);
    return NULL;
}

/* The guards whose age crossed warn_after since the acquire path last looked (acquired
 * in (last look - warn_after, now - warn_after]), so that each is warned about once:
 * a PoolLeakWarning each. -1 if a warning raised (warnings turned into errors). `pool` is
 * kept alive by the caller. */
static int
warn_held_too_long(PoolObject *pool, int64_t now)
{
    int64_t threshold = pool->warn_after_ns;
    int64_t last = NXP_GET(pool->last_check_ns);
    NXP_SET(pool->last_check_ns, now);
    NXP_SET(pool->next_check_ns, now + threshold / 4);
    PyObject *slots = NULL;
    for (Py_ssize_t slot = 0; slot < pool->capacity; slot++) {
        int64_t acquired = NXP_GET(pool->holding[slot].acquired_ns);
        if (!nxp_is_leased(pool->stack, slot) || acquired <= last - threshold || acquired > now - threshold)
            continue;
        PyObject *number = PyLong_FromSsize_t(slot);
        if (number == NULL || (slots == NULL && (slots = PySet_New(NULL)) == NULL) || PySet_Add(slots, number) < 0) {
            Py_XDECREF(number);
            Py_XDECREF(slots);
            return -1;
        }
        Py_DECREF(number);
    }
    if (slots == NULL)
        return 0;
    PyObject *done = PyObject_CallFunction(STATE(pool)->warn_held, "OdO", (PyObject *)pool, threshold / 1e9, slots);
    Py_DECREF(slots);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* Record who took `slot` (this thread, now, how; the caller's site when sampled) as
 * acquisition number `serial`. `pool` is kept alive by the caller. */
static void
note_holder(PoolObject *pool, Py_ssize_t slot, int64_t now, int64_t serial, int how)
{
    nxp_holding *holding = &pool->holding[slot];
    NXP_SET(holding->acquired_ns, now);
    NXP_SET(holding->thread, NXP_THREAD_IDENT());
    NXP_SET(holding->serial, serial);
    NXP_SET(holding->how, how);
    if (!sample_now(&pool->sampler))
        return;
    nxp_site site;
    caller_site(STATE(pool), &site);
    PyObject *replaced;
    NXP_BEGIN_CRITICAL_SECTION(pool);
    replaced = holding->site.code;
    holding->site = site;
    holding->site_serial = serial;
    NXP_END_CRITICAL_SECTION();
    Py_XDECREF(replaced);
}

/* Take a free slot and make its guard: the new guard, NULL with no exception when every
 * slot is out, NULL with an exception if the pool is shut down, or factory() (for a slot
 * without value) or the allocation failed (the slot is then free again), or a leak
 * warning raised (before anything was taken). `pool` (its stack and arrays) is kept alive
 * by the caller. */
static PyObject *
take(PoolObject *pool, int how)
{
    if (NXP_GET(pool->shut_down))
        return shut_down_error(pool);
    int64_t now = nxp_now_ns();
    if (pool->warn_after_ns > 0 && now >= NXP_GET(pool->next_check_ns) && warn_held_too_long(pool, now) < 0)
        return NULL;
    int64_t slot = nxp_pop(pool->stack);
    if (slot < 0)
        return NULL;
    PyObject *value = pool->values[slot];
    pool->values[slot] = NULL;
    if (value == NULL) {
        value = PyObject_CallNoArgs(pool->factory);
        if (value == NULL) {
            store_and_push(pool, (Py_ssize_t)slot, NULL); /* still without value */
            return NULL;
        }
    }
    PyObject *guard = new_guard(pool->guard_type, (PyObject *)pool, value, (Py_ssize_t)slot);
    if (guard == NULL) {
        store_and_push(pool, (Py_ssize_t)slot, value);
        return NULL;
    }
    int64_t serial = NXP_GET(pool->acquisitions) + 1;
    NXP_SET(pool->acquisitions, serial);
    note_holder(pool, (Py_ssize_t)slot, now, serial, how);
    int64_t in_use = (int64_t)pool->capacity - nxp_available(pool->stack);
    if (in_use > NXP_GET(pool->high_water))
        NXP_SET(pool->high_water, in_use);
    return guard;
}

/* `self` is kept alive by this call; take() derefs only its stack and arrays, freed by its dealloc alone. */
static PyObject *
Pool_try_acquire(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = take(self, NXP_SYNC);
    if (guard == NULL && !PyErr_Occurred()) {
        NXP_ADD(self->exhaustions, 1);
        Py_RETURN_NONE;
    }
    return guard;
}

/* _take(): try_acquire() without counting an exhaustion; what a waiting acquirer calls.
 * `self` is kept alive by this call (its bound method, held by the waiter). */
static PyObject *
Pool_take(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = take(self, NXP_SYNC);
    if (guard == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return guard;
}

/* _take_async(): _take() for acquire_async's waiter: the holder is recorded as "async".
 * `self` is kept alive by this call (its bound method, held by the waiter). */
static PyObject *
Pool_take_async(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = take(self, NXP_ASYNC);
    if (guard == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return guard;
}

/* Count one exhaustion and the seconds waited (a float object; an error sets nothing).
 * `self` is kept alive by the caller. */
static void
note_wait(PoolObject *self, PyObject *seconds)
{
    NXP_ADD(self->exhaustions, 1);
    double waited = PyFloat_AsDouble(seconds);
    if (waited == -1.0 && PyErr_Occurred())
        PyErr_Clear(); /* a statistic is never worth an error */
    else
        NXP_ADD(self->wait_seconds, waited);
}

/* `self` is kept alive by this call. */
static PyObject *
Pool_note_wait(PoolObject *self, PyObject *seconds)
{
    note_wait(self, seconds);
    Py_RETURN_NONE;
}

/* _waiter() -> _waiting.Waiter: what acquire_async needs (see nexus_pool/_async.py). `self`
 * is kept alive by this call; the Waiter holds its own references (bound methods, the set). */
static PyObject *
Pool_waiter(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->waiting == NULL)
        return shut_down_error(self);
    PyObject *take_method = PyObject_GetAttrString((PyObject *)self, "_take_async");
    PyObject *note_method = PyObject_GetAttrString((PyObject *)self, "_note_wait");
    PyObject *waiter = NULL;
    if (take_method != NULL && note_method != NULL)
        waiter = PyObject_CallFunctionObjArgs(STATE(self)->waiter_type, take_method, self->waiting, note_method, NULL);
    Py_XDECREF(take_method);
    Py_XDECREF(note_method);
    return waiter;
}

/* shutdown(): lend nothing more; wake every waiting acquirer, whose next look raises.
 * `self` is kept alive by this call. */
static PyObject *
Pool_shutdown(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    NXP_SET(self->shut_down, 1);
    while (self->waiting != NULL && PySet_GET_SIZE(self->waiting) > 0) {
        if (wake_waiter(self) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* `self` is kept alive by this call. */
static PyObject *
Pool_is_shutdown(PoolObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong((long)NXP_GET(self->shut_down));
}

/* `self` is kept alive by this call (its stack lives as long as it does). */
static PyObject *
Pool_stats(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t in_use = self->capacity - (Py_ssize_t)nxp_available(self->stack);
    int64_t now = nxp_now_ns(), oldest = -1;
    for (Py_ssize_t slot = 0; slot < self->capacity; slot++) {
        if (nxp_is_leased(self->stack, slot)) {
            int64_t held = now - NXP_GET(self->holding[slot].acquired_ns);
            if (held > oldest)
                oldest = held;
        }
    }
    PyObject *oldest_held = oldest < 0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(oldest > 0 ? oldest / 1e9 : 0.0);
    if (oldest_held == NULL)
        return NULL;
    PyObject *stats =
        PyObject_CallFunction(STATE(self)->stats_type, "nnLLLdN", self->capacity, in_use,
                              (long long)NXP_GET(self->high_water), (long long)NXP_GET(self->acquisitions),
                              (long long)NXP_GET(self->exhaustions), (double)NXP_GET(self->wait_seconds), oldest_held);
    return stats;
}

/* _holding() -> [(slot, seconds, thread ident, site or None, how)]: the raw records behind
 * holders(), one per leased slot. `self` is kept alive by this call; each recorded code
 * object is referenced while its tuple is made. */
static PyObject *
Pool_holding(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    nxp_state *state = STATE(self);
    PyObject *records = PyList_New(0);
    if (records == NULL)
        return NULL;
    int64_t now = nxp_now_ns();
    for (Py_ssize_t slot = 0; slot < self->capacity; slot++) {
        if (!nxp_is_leased(self->stack, slot))
            continue;
        nxp_holding *holding = &self->holding[slot];
        int64_t held = now - NXP_GET(holding->acquired_ns);
        int64_t how = NXP_GET(holding->how);
        PyObject *code = NULL;
        int line = 0;
        NXP_BEGIN_CRITICAL_SECTION(self);
        if (holding->site_serial == NXP_GET(holding->serial) && holding->site.code != NULL) {
            code = Py_NewRef(holding->site.code);
            line = holding->site.line;
        }
        NXP_END_CRITICAL_SECTION();
        PyObject *site = site_tuple(code, line);
        Py_XDECREF(code);
        PyObject *record =
            site == NULL
                ? NULL
                : Py_BuildValue("(ndkNO)", slot, held > 0 ? held / 1e9 : 0.0, (unsigned long)NXP_GET(holding->thread),
                                site, state->how_names[how >= 0 && how <= NXP_LOCAL ? how : NXP_SYNC]);
        if (record == NULL || PyList_Append(records, record) < 0) {
            Py_XDECREF(record);
            Py_DECREF(records);
            return NULL;
        }
        Py_DECREF(record);
    }
    return records;
}

/* `self` is kept alive by the caller. */
/* Raise PoolExhausted: every slot is out, who holds them (self.holders()), and how long
 * it waited (the timeout as given; NULL: it did not wait). `self` is kept alive by the
 * caller. */
static PyObject *
exhausted(PoolObject *self, PyObject *timeout)
{
    PyObject *holders = PyObject_CallMethod((PyObject *)self, "holders", NULL);
    if (holders == NULL)
        return NULL;
    PyObject *error = PyObject_CallFunction(STATE(self)->exhausted_error, "nOO", self->capacity, holders,
                                            timeout == NULL ? Py_None : timeout);
    Py_DECREF(holders);
    if (error == NULL)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(error), error);
    Py_DECREF(error);
    return NULL;
}

/* `timeout` as the pure facade reads it: *seconds is a new reference to the number to wait
 * (the object given, or the checked one), or NULL for no limit; *zero tells timeout == 0.
 * `pool` is kept alive by the caller. */
static int
read_timeout(PoolObject *pool, PyObject *timeout, PyObject **seconds, int *zero)
{
    *seconds = NULL;
    *zero = 0;
    if (timeout == Py_None)
        return 0;
    nxp_state *state = STATE(pool);
    double value = -1.0;
    if (PyFloat_CheckExact(timeout)) {
        value = PyFloat_AS_DOUBLE(timeout);
    } else if (PyLong_CheckExact(timeout)) {
        int overflow;
        long long whole = PyLong_AsLongLongAndOverflow(timeout, &overflow);
        if (!overflow && whole >= 0)
            value = (double)whole;
    }
    if (value >= 0.0 && value <= state->longest_wait) { /* false for NaN */
        *seconds = Py_NewRef(timeout);
        *zero = value == 0.0;
        return 0;
    }
    /* Anything else (negative, NaN, huge, bool, other types): the pure facade's check. */
    PyObject *checked = PyObject_CallOneArg(state->check_timeout, timeout);
    if (checked == NULL)
        return -1;
    if (checked == Py_None) {
        Py_DECREF(checked);
        return 0;
    }
    *seconds = checked;
    *zero = PyFloat_AsDouble(checked) == 0.0;
    return 0;
}

/* `self` is kept alive by this call; the wait helper holds its own references to what it is given. */
static PyObject *
Pool_acquire(PoolObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *timeout = Py_None;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs + nkw > 1) {
        PyErr_SetString(PyExc_TypeError, "acquire() takes at most 1 argument (timeout)");
        return NULL;
    }
    if (nkw == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "timeout") != 0) {
        PyErr_Format(PyExc_TypeError, "acquire() got an unexpected keyword argument %R", PyTuple_GET_ITEM(kwnames, 0));
        return NULL;
    }
    if (nargs + nkw == 1)
        timeout = args[0];
    PyObject *seconds;
    int zero;
    if (read_timeout(self, timeout, &seconds, &zero) < 0)
        return NULL;
    PyObject *guard = take(self, NXP_SYNC);
    if (guard != NULL || PyErr_Occurred()) {
        Py_XDECREF(seconds);
        return guard;
    }
    if (zero) {
        Py_DECREF(seconds);
        NXP_ADD(self->exhaustions, 1);
        return exhausted(self, NULL);
    }
    if (self->waiting == NULL) {
        Py_XDECREF(seconds);
        return shut_down_error(self);
    }
    /* Every slot is out: wait in Python, which runs the eval loop now and then (signals,
     * and on free-threaded builds the deallocation of guards other threads dropped). */
    nxp_state *state = STATE(self);
    PyObject *take_method = PyObject_GetAttrString((PyObject *)self, "_take");
    PyObject *started = take_method == NULL ? NULL : PyObject_CallNoArgs(state->monotonic);
    if (started == NULL) {
        Py_XDECREF(take_method);
        Py_XDECREF(seconds);
        return NULL;
    }
    guard = PyObject_CallFunctionObjArgs(state->wait_helper, take_method, self->waiting, self->wakeup,
                                         seconds == NULL ? Py_None : seconds, NULL);
    Py_DECREF(take_method);
    /* Count the wait whatever happened (a signal may have ended it), keeping the error. */
    nxp_error saved = nxp_error_take();
    PyObject *ended = PyObject_CallNoArgs(state->monotonic);
    PyObject *waited = ended == NULL ? NULL : PyNumber_Subtract(ended, started);
    if (waited != NULL)
        note_wait(self, waited);
    else
        PyErr_Clear();
    Py_XDECREF(waited);
    Py_XDECREF(ended);
    Py_DECREF(started);
    nxp_error_restore(saved);
    if (guard == Py_None) {
        Py_DECREF(guard);
        guard = exhausted(self, seconds == NULL ? Py_None : seconds);
    }
    Py_XDECREF(seconds);
    return guard;
}

/* `self` is kept alive by this call (its stack lives as long as it does). */
static PyObject *
Pool_available(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(nxp_available(self->stack));
}

static PyObject *
Pool_handoff(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_NONE; /* ownership is checked by the debug backend only */
}

/* `self` is kept alive by this call. */
static PyObject *
Pool_capacity(PoolObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->capacity);
}

/* `self` is kept alive by this call. reset is set at creation and dropped only by tp_clear,
 * which runs with every other thread stopped (as the release path reads it). */
static PyObject *
Pool_reset(PoolObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->reset != NULL ? self->reset : Py_None);
}

/* `self` is kept alive by this call. */
static PyObject *
Pool_backend(PoolObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static PyObject *
Pool_facade(PoolObject *self, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString("native");
}

/* `self` is kept alive by this call (its stack lives as long as it does). */
static PyObject *
Pool_repr(PoolObject *self)
{
    return PyUnicode_FromFormat("<nexus_pool.Pool capacity=%zd available=%lld backend=%R>", self->capacity,
                                (long long)nxp_available(self->stack), self->name);
}

static PyObject *
Pool_reduce_ex(PyObject *self, PyObject *Py_UNUSED(protocol))
{
    PyErr_SetString(PyExc_TypeError, "Pool objects cannot be copied or pickled: they own their values");
    return NULL;
}

/* The collector calls this with every thread stopped; `self` is alive until it returns. */
static int
Pool_traverse(PoolObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->factory);
    Py_VISIT(self->reset);
    Py_VISIT(self->name);
    Py_VISIT(self->waiting);
    Py_VISIT(self->wakeup);
    Py_VISIT(self->guard_type);
    for (Py_ssize_t slot = 0; slot < self->capacity; slot++) {
        Py_VISIT(self->values[slot]);
        Py_VISIT(self->holding[slot].site.code);
    }
    return 0;
}

/* The collector breaks a cycle through the pool: drop what can hold references back (the
 * callables, the values, async waiters' tokens) and shut the pool down, so that any code
 * that still reaches it meets PoolShutDown. The stack, the name and the lock stay, which
 * keeps available(), repr() and the releases of guards still out safe. `self` is alive
 * until the collector is done with it. */
static int
Pool_clear(PoolObject *self)
{
    NXP_SET(self->shut_down, 1);
    Py_CLEAR(self->factory);
    Py_CLEAR(self->reset);
    Py_CLEAR(self->waiting);
    for (Py_ssize_t slot = 0; slot < self->capacity; slot++)
        Py_CLEAR(self->values[slot]);
    return 0;
}

static void
Pool_dealloc(PoolObject *self)
{
    /* Nobody refers to the pool any more (every guard holds a reference): its memory and
     * its stack are ours to free. */
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    Pool_clear(self);
    Py_CLEAR(self->name);
    Py_CLEAR(self->wakeup);
    Py_CLEAR(self->guard_type);
#ifndef Py_GIL_DISABLED
    while (self->spare_count > 0)
        PyObject_GC_Del(self->spare_guards[--self->spare_count]);
#endif
    for (Py_ssize_t slot = 0; slot < self->capacity; slot++)
        Py_CLEAR(self->holding[slot].site.code);
    PyMem_Free(self->holding);
    PyMem_Free(self->values);
    PyMem_Free(self->tickets);
    nxp_destroy(self->stack);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

/* `count` values made by `factory()`, in order: a new array, or NULL with the factory's
 * error (what was made is freed). User code runs here, before any pool object exists. */
static PyObject **
make_values(PyObject *factory, Py_ssize_t count)
{
    PyObject **values = PyMem_Calloc((size_t)count, sizeof(PyObject *));
    if (values == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *value = PyObject_CallNoArgs(factory);
        if (value == NULL) {
            while (index > 0)
                Py_DECREF(values[--index]);
            PyMem_Free(values);
            return NULL;
        }
        values[index] = value;
    }
    return values;
}

static void
free_values(PyObject **values, Py_ssize_t count)
{
    if (values == NULL)
        return;
    for (Py_ssize_t index = 0; index < count; index++)
        Py_XDECREF(values[index]);
    PyMem_Free(values);
}

/* Pool._create(capacity, factory, reset, name): called by nexus_pool.Pool once it has
 * checked the arguments. Makes the capacity values, then every other part, and only then
 * the pool object, which needs no allocation more: it is whole when the collector first
 * sees it. Every failure frees what was made. */
static PyObject *
Pool_create(PyTypeObject *type, PyObject *const *args, Py_ssize_t nargs)
{
    /* Pool is a base type only for BufferPool: a subclass made elsewhere has no module
     * state, and gets no instance. */
    PyObject *module = PyType_GetModule(type); /* borrowed */
    nxp_state *state = module != NULL && PyModule_GetDef(module) == &native_module ? PyModule_GetState(module) : NULL;
    if (state == NULL || (type != state->pool_type && type != state->buffer_pool_type)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s cannot make pools: use nexus_pool.Pool(...) or nexus_pool.BufferPool(...)",
                     type->tp_name);
        return NULL;
    }
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "_create(capacity, factory, reset, name, sample_period, warn_after)");
        return NULL;
    }
    Py_ssize_t period = PyLong_AsSsize_t(args[4]);
    double warn_after = PyFloat_AsDouble(args[5]);
    if ((period == -1 || warn_after == -1.0) && PyErr_Occurred())
        return NULL;
    if (period < 0 || !(warn_after >= 0.0 && warn_after < 1e9)) {
        PyErr_SetString(PyExc_ValueError, "sample_period must be >= 0 and warn_after in [0, 1e9) seconds");
        return NULL;
    }
    Py_ssize_t capacity = PyLong_AsSsize_t(args[0]);
    if (capacity == -1 && PyErr_Occurred())
        return NULL;
    if (capacity < 1 || capacity > nxp_max_capacity()) {
        PyErr_Format(PyExc_ValueError, "capacity out of range: %zd", capacity);
        return NULL;
    }
    PyObject *factory = args[1], *reset = args[2];
    if (!PyCallable_Check(factory) || (reset != Py_None && !PyCallable_Check(reset))) {
        PyErr_SetString(PyExc_TypeError, "factory must be callable, and reset callable or None");
        return NULL;
    }
    PyObject **values = make_values(factory, capacity); /* in slot order, as the pure facade */
    if (values == NULL)
        return NULL;
    intptr_t *tickets = PyMem_Calloc((size_t)capacity, sizeof(intptr_t));
    nxp_holding *holding = PyMem_Calloc((size_t)capacity, sizeof(nxp_holding));
    nxp_freelist *stack = nxp_create(capacity);
    PyObject *waiting = NULL, *wakeup = NULL, *locked = NULL;
    if (tickets == NULL || holding == NULL || stack == NULL) {
        PyErr_NoMemory();
        goto failed;
    }
    for (Py_ssize_t slot = 0; slot < capacity; slot++)
        tickets[slot] = nxp_ticket(stack, slot);
    if ((waiting = PySet_New(NULL)) == NULL || (wakeup = PyObject_CallNoArgs(state->lock_type)) == NULL)
        goto failed;
    if ((locked = PyObject_CallMethod(wakeup, "acquire", NULL)) == NULL) /* empty: no wake-up pending */
        goto failed;
    Py_DECREF(locked);
    PoolObject *self = (PoolObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        goto failed;
    self->stack = stack;
    self->tickets = tickets;
    self->values = values;
    self->capacity = capacity;
    self->factory = Py_NewRef(factory);
    self->reset = reset == Py_None ? NULL : Py_NewRef(reset);
    self->name = Py_NewRef(args[3]);
    self->waiting = waiting;
    self->wakeup = wakeup;
    self->guard_type = (PyTypeObject *)Py_NewRef(state->pooled_type);
    int64_t now = nxp_now_ns();
    for (Py_ssize_t slot = 0; slot < capacity; slot++) {
        holding[slot].site_serial = -1;
        NXP_SET(holding[slot].acquired_ns, now);
    }
    self->holding = holding;
    sampler_init(&self->sampler, period, (uint64_t)(uintptr_t)self ^ (uint64_t)now);
    self->warn_after_ns = (int64_t)(warn_after * 1e9);
    NXP_SET(self->last_check_ns, now);
    NXP_SET(self->next_check_ns, now);
    return (PyObject *)self;
failed:
    free_values(values, capacity);
    PyMem_Free(tickets);
    PyMem_Free(holding);
    nxp_destroy(stack);
    Py_XDECREF(waiting);
    Py_XDECREF(wakeup);
    return NULL;
}

static PyMethodDef Pool_methods[] = {
    {"try_acquire", (PyCFunction)Pool_try_acquire, METH_NOARGS,
     "A guard on a free value, or None at once when every slot is out."},
    {"acquire", (PyCFunction)(void (*)(void))Pool_acquire, METH_FASTCALL | METH_KEYWORDS,
     "A guard on a free value, waiting up to timeout seconds (None: no limit)."},
    {"available", (PyCFunction)Pool_available, METH_NOARGS, "How many slots are free now."},
    {"handoff", (PyCFunction)Pool_handoff, METH_NOARGS, "Give up ownership (checked by debug only)."},
    {"stats", (PyCFunction)Pool_stats, METH_NOARGS, "A snapshot of this pool's counters (a PoolStats)."},
    {"shutdown", (PyCFunction)Pool_shutdown, METH_NOARGS,
     "Lend nothing more: acquisitions raise PoolShutDown; releases are still accepted."},
    {"_take", (PyCFunction)Pool_take, METH_NOARGS, NULL},
    {"_take_async", (PyCFunction)Pool_take_async, METH_NOARGS, NULL},
    {"_holding", (PyCFunction)Pool_holding, METH_NOARGS, NULL},
    {"_note_wait", (PyCFunction)Pool_note_wait, METH_O, NULL},
    {"_waiter", (PyCFunction)Pool_waiter, METH_NOARGS, NULL},
    {"__reduce_ex__", (PyCFunction)Pool_reduce_ex, METH_O, NULL},
    {"_create", (PyCFunction)(void (*)(void))Pool_create, METH_FASTCALL | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Pool_getset[] = {
    {"capacity", (getter)Pool_capacity, NULL, "The number of slots, fixed at construction.", NULL},
    {"_reset", (getter)Pool_reset, NULL, "The reset the pool was made with (None: none).", NULL},
    {"backend", (getter)Pool_backend, NULL, "The name of the backend in use.", NULL},
    {"facade", (getter)Pool_facade, NULL, "'native': this pool is the C implementation.", NULL},
    {"is_shutdown", (getter)Pool_is_shutdown, NULL, "Whether shutdown() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Pool_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(PoolObject, weakreflist), READONLY, NULL},
    {"_waiting", T_OBJECT, offsetof(PoolObject, waiting), READONLY, "tokens of blocked acquirers"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Pool_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, Pool_dealloc},
    {Py_tp_traverse, Pool_traverse},
    {Py_tp_clear, Pool_clear},
    {Py_tp_repr, Pool_repr},
    {Py_tp_methods, Pool_methods},
    {Py_tp_getset, Pool_getset},
    {Py_tp_members, Pool_members},
    {Py_tp_doc, "A fixed set of values (the native facade's pool)."},
    {0, NULL},
};

static PyType_Spec Pool_spec = {
    "nexus_pool._native.Pool",
    sizeof(PoolObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE, /* a base for BufferPool */
    Pool_slots,
};

/* nexus_pool.BufferPool's native implementation: a Pool whose bases put the public
 * class's size, zero and repr first (see native_exec). Same layout, same slots. */
static PyType_Slot BufferPool_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, Pool_dealloc},
    {Py_tp_traverse, Pool_traverse},
    {Py_tp_clear, Pool_clear},
    {Py_tp_doc, "A fixed set of byte buffers (the native facade's buffer pool)."},
    {0, NULL},
};

static PyType_Spec BufferPool_spec = {
    "nexus_pool._native.BufferPool", sizeof(PoolObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, BufferPool_slots,
};

/* ---- local pools (nexus_pool.local) ------------------------------------------------- */

/* In a file of their own, which mirrors nexus_pool/_local.py; see there. */
#include "nexus_pool_local.c"

/* ---- module ------------------------------------------------------------------------- */

/* A new reference to module_name.attribute, or NULL with an exception. */
static PyObject *
import_attribute(const char *module_name, const char *attribute)
{
    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL)
        return NULL;
    PyObject *value = PyObject_GetAttrString(module, attribute);
    Py_DECREF(module);
    return value;
}

/* A new type from `spec` whose one base is module_name.base_name, added to `module` as
 * `public_name`; a new reference, or NULL. */
static PyTypeObject *
make_type(PyObject *module, PyType_Spec *spec, const char *module_name, const char *base_name, const char *public_name)
{
    PyObject *base = import_attribute(module_name, base_name);
    if (base == NULL)
        return NULL;
    PyObject *type = PyType_FromModuleAndSpec(module, spec, base);
    Py_DECREF(base);
    if (type == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, public_name, type) < 0) {
        Py_DECREF(type);
        return NULL;
    }
    return (PyTypeObject *)type;
}

static int
native_exec(PyObject *module)
{
    nxp_state *state = PyModule_GetState(module);
    PyObject *longest_wait = NULL;
    if (!(state->released_error = import_attribute("nexus_pool._errors", "ReleasedError")) ||
        !(state->pool_shut_down = import_attribute("nexus_pool._errors", "PoolShutDown")) ||
        !(state->shutdown_message = import_attribute("nexus_pool._waiting", "SHUTDOWN_MESSAGE")) ||
        !(state->wait_helper = import_attribute("nexus_pool._waiting", "wait")) ||
        !(state->add_note = import_attribute("nexus_pool._slots", "add_note")) ||
        !(state->waiter_type = import_attribute("nexus_pool._waiting", "Waiter")) ||
        !(state->released_message = import_attribute("nexus_pool._guard", "RELEASED_MESSAGE")) ||
        !(state->collected_message = import_attribute("nexus_pool._guard", "COLLECTED_MESSAGE")) ||
        !(state->check_timeout = import_attribute("nexus_pool._checks", "check_timeout")) ||
        !(state->value_repr = import_attribute("nexus_pool._guard", "value_repr")) ||
        !(state->local_exhausted_reason = import_attribute("nexus_pool._local_base", "EXHAUSTED_REASON")) ||
        !(state->local_what = import_attribute("nexus_pool._local_base", "LOCAL_WHAT")) ||
        !(state->stats_type = import_attribute("nexus_pool._stats", "PoolStats")) ||
        !(state->lock_type = import_attribute("threading", "Lock")) ||
        !(state->monotonic = import_attribute("time", "monotonic")) ||
        !(state->exhausted_error = import_attribute("nexus_pool._holders", "exhausted")) ||
        !(state->warn_held = import_attribute("nexus_pool._holders", "warn_crossed")) ||
        !(state->internal_prefix = import_attribute("nexus_pool._holders", "INTERNAL_PREFIX")) ||
        !(state->how_names[NXP_SYNC] = PyUnicode_InternFromString("sync")) ||
        !(state->how_names[NXP_ASYNC] = PyUnicode_InternFromString("async")) ||
        !(state->how_names[NXP_LOCAL] = PyUnicode_InternFromString("local")) ||
        !(longest_wait = import_attribute("nexus_pool._checks", "LONGEST_WAIT")))
        return -1;
    state->longest_wait = PyFloat_AsDouble(longest_wait);
    Py_DECREF(longest_wait);
    if (state->longest_wait == -1.0 && PyErr_Occurred())
        return -1;
    if (PyModule_AddIntConstant(module, "MAX_CAPACITY", (long)nxp_max_capacity()) < 0)
        return -1;
    if (!(state->pool_type = make_type(module, &Pool_spec, "nexus_pool._base", "Pool", "Pool")) ||
        !(state->pooled_type = make_type(module, &Pooled_spec, "nexus_pool._guard", "Pooled", "Pooled")) ||
        !(state->local_pool_type = make_type(module, &LocalPool_spec, "nexus_pool._local_base", "Pool", "LocalPool")) ||
        !(state->local_bounded_type =
              make_type(module, &LocalBounded_spec, "nexus_pool._local_base", "BoundedPool", "LocalBoundedPool")))
        return -1;
    /* The public BufferPool first: its size, zero and __repr__ come before Pool's. */
    PyObject *public_buffer_pool = import_attribute("nexus_pool._buffers", "BufferPool");
    if (public_buffer_pool == NULL)
        return -1;
    PyObject *bases = PyTuple_Pack(2, public_buffer_pool, (PyObject *)state->pool_type);
    Py_DECREF(public_buffer_pool);
    if (bases == NULL)
        return -1;
    state->buffer_pool_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &BufferPool_spec, bases);
    Py_DECREF(bases);
    if (state->buffer_pool_type == NULL ||
        PyModule_AddObjectRef(module, "BufferPool", (PyObject *)state->buffer_pool_type) < 0)
        return -1;
    return 0;
}

static int
native_traverse(PyObject *module, visitproc visit, void *arg)
{
    nxp_state *state = PyModule_GetState(module);
    if (state == NULL)
        return 0;
    Py_VISIT(state->pool_type);
    Py_VISIT(state->buffer_pool_type);
    Py_VISIT(state->pooled_type);
    Py_VISIT(state->local_pool_type);
    Py_VISIT(state->local_bounded_type);
    Py_VISIT(state->released_error);
    Py_VISIT(state->pool_shut_down);
    Py_VISIT(state->shutdown_message);
    Py_VISIT(state->released_message);
    Py_VISIT(state->collected_message);
    Py_VISIT(state->local_exhausted_reason);
    Py_VISIT(state->local_what);
    Py_VISIT(state->wait_helper);
    Py_VISIT(state->check_timeout);
    Py_VISIT(state->value_repr);
    Py_VISIT(state->add_note);
    Py_VISIT(state->lock_type);
    Py_VISIT(state->stats_type);
    Py_VISIT(state->waiter_type);
    Py_VISIT(state->monotonic);
    Py_VISIT(state->exhausted_error);
    Py_VISIT(state->warn_held);
    Py_VISIT(state->internal_prefix);
    for (int how = 0; how < 3; how++)
        Py_VISIT(state->how_names[how]);
    return 0;
}

/* Only the collector calls this, when the module is unreachable, and with it its types
 * and every object of theirs: none of them can run user code any more. */
static int
native_clear(PyObject *module)
{
    nxp_state *state = PyModule_GetState(module);
    if (state == NULL)
        return 0;
    Py_CLEAR(state->pool_type);
    Py_CLEAR(state->buffer_pool_type);
    Py_CLEAR(state->pooled_type);
    Py_CLEAR(state->local_pool_type);
    Py_CLEAR(state->local_bounded_type);
    Py_CLEAR(state->released_error);
    Py_CLEAR(state->pool_shut_down);
    Py_CLEAR(state->shutdown_message);
    Py_CLEAR(state->released_message);
    Py_CLEAR(state->collected_message);
    Py_CLEAR(state->local_exhausted_reason);
    Py_CLEAR(state->local_what);
    Py_CLEAR(state->wait_helper);
    Py_CLEAR(state->check_timeout);
    Py_CLEAR(state->value_repr);
    Py_CLEAR(state->add_note);
    Py_CLEAR(state->lock_type);
    Py_CLEAR(state->stats_type);
    Py_CLEAR(state->waiter_type);
    Py_CLEAR(state->monotonic);
    Py_CLEAR(state->exhausted_error);
    Py_CLEAR(state->warn_held);
    Py_CLEAR(state->internal_prefix);
    for (int how = 0; how < 3; how++)
        Py_CLEAR(state->how_names[how]);
    return 0;
}

static void
native_free(void *module)
{
    native_clear((PyObject *)module);
}

static PyModuleDef_Slot native_slots[] = {
    {Py_mod_exec, native_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* Module state only, no C statics: each interpreter, with its own GIL too, has its own. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Everything shared is guarded by critical sections or lock-free atomics. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "nexus_pool._native",
    .m_doc = "The native facade: Pool and Pooled (and the local pools) as C extension types "
             "(see nexus_pool/_facade.py).",
    .m_size = sizeof(nxp_state),
    .m_slots = native_slots,
    .m_traverse = native_traverse,
    .m_clear = native_clear,
    .m_free = native_free,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
