/* nexus_pool._native: the native facade, Pool and Pooled as C extension types.
 *
 * The same contract as the pure-Python facade (nexus_pool/_pool.py), for the `atomic`
 * backend: the free list is the lock-free Treiber stack of nexus_pool_freelist.c, linked
 * into this module and called directly. Acquiring and releasing run no bytecode, so no
 * asynchronous exception can land between taking a slot and handing it to its guard;
 * user code (factory, reset) and the blocking wait are the only Python calls.
 *
 * Ownership: while a slot is free its value sits in pool->values[slot]; while it is
 * lent, the guard owns the value and pool->values[slot] is NULL. So a value that refers
 * to its guard forms a cycle with it alone, and the cyclic GC can collect both: the
 * guard's finalizer returns the slot once. A guard keeps its pool alive; the pool
 * refers to no guard, so a dropped pool frees its values by reference counting.
 *
 * The release claim: the guard's `value` is exchanged for NULL under the guard's
 * critical section on free-threaded builds (the GIL serialises it elsewhere); whoever
 * gets the value returns the slot. release(), __exit__ and the finalizer all claim that
 * way, so a slot is returned once whichever runs first, and a guard holds its value iff
 * `value` is set. Reading the value takes the same critical section: a reader never
 * holds a pointer that a concurrent release could free (a failed reset drops the value).
 *
 * The public classes nexus_pool.Pool and nexus_pool.Pooled are Python base classes;
 * these types are made as their subclasses by _setup(), called by nexus_pool/_facade.py.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

#include "nexus_pool_freelist.h"

/* ---- compatibility shims (CPython 3.10 - 3.14) ------------------------------------- */

/* stats() counters: written by the acquiring thread only, read by any. On free-threaded
 * builds they are relaxed atomics, which a load and a store update: plain moves, no
 * locked instruction (a second acquirer, which is misuse, can only make them miscount). */
#ifdef Py_GIL_DISABLED
#  include <stdatomic.h>
typedef _Atomic int64_t nxp_count;
typedef _Atomic double nxp_seconds;
#  define NXP_GET(counter) atomic_load_explicit(&(counter), memory_order_relaxed)
#  define NXP_SET(counter, value) atomic_store_explicit(&(counter), (value), memory_order_relaxed)
#else
typedef int64_t nxp_count;
typedef double nxp_seconds;
#  define NXP_GET(counter) (counter)
#  define NXP_SET(counter, value) ((counter) = (value))
#endif
#define NXP_ADD(counter, amount) NXP_SET(counter, NXP_GET(counter) + (amount))

#if PY_VERSION_HEX >= 0x030D0000
#  define NXP_BEGIN_CRITICAL_SECTION(op) Py_BEGIN_CRITICAL_SECTION(op)
#  define NXP_END_CRITICAL_SECTION() Py_END_CRITICAL_SECTION()
#else /* the GIL serialises everything a critical section would */
#  define NXP_BEGIN_CRITICAL_SECTION(op) {
#  define NXP_END_CRITICAL_SECTION() }
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

/* ---- what the Python side hands over in _setup() ---------------------------------- */

static PyTypeObject *PoolType;
static PyTypeObject *PooledType;
static PyObject *ReleasedError;  /* nexus_pool.ReleasedError */
static PyObject *PoolExhausted;  /* nexus_pool.PoolExhausted */
static PyObject *PoolShutDown;   /* nexus_pool.PoolShutDown */
static PyObject *shutdown_message;  /* str: what PoolShutDown says */
static PyObject *wait_helper;    /* _slots.wait(take, waiting, wakeup, timeout) -> guard | None */
static PyObject *check_timeout;  /* _facade.check_timeout(timeout) -> float | None, or raises */
static PyObject *value_repr;     /* _facade.value_repr(value) -> str, bounded */
static PyObject *add_note;       /* _slots.add_note(error, note) */
static PyObject *lock_type;      /* threading.Lock */
static PyObject *longest_wait;   /* float: a longer timeout means no limit */
static PyObject *released_message;   /* str: the ReleasedError of a released guard */
static PyObject *collected_message;  /* str: ... of one its finalizer released */
static PyObject *stats_type;     /* nexus_pool.PoolStats */
static PyObject *waiter_type;    /* _slots.Waiter(take, waiting, note_wait) */
static PyObject *monotonic;      /* time.monotonic */

/* ---- the types ---------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    nxp_freelist *stack;   /* which slots are free */
    intptr_t *tickets;     /* tickets[slot]: what nxp_push takes */
    PyObject **values;     /* values[slot]: the value of a free slot; NULL while lent
                              (or when its factory() failed: made on the next acquire) */
    Py_ssize_t capacity;
    PyObject *factory;
    PyObject *reset;       /* NULL: no reset */
    PyObject *name;        /* the backend's name */
    PyObject *waiting;     /* set: tokens of blocked acquirers (see _slots.wait) */
    PyObject *wakeup;      /* threading.Lock used as a binary semaphore */
    PyObject *weakreflist;
    nxp_count acquisitions;   /* the counters of stats() (see PoolStats) */
    nxp_count exhaustions;
    nxp_count high_water;
    nxp_seconds wait_seconds;
    nxp_count shut_down;      /* 1 once shutdown() was called: lend nothing more */
} PoolObject;

/* nexus_pool.local's pools (both kinds): one thread acquires and releases, so the free
 * values are a plain stack. Its critical section (free-threaded builds) guards the stack
 * as a list's guards its items: misuse from other threads cannot corrupt it. */
typedef struct {
    PyObject_HEAD
    PyObject **free;       /* the free values, a stack; a NULL entry is made by factory()
                              when taken (its reset failed, and so did the factory) */
    Py_ssize_t count;      /* free values */
    Py_ssize_t allocated;  /* room in `free` */
    Py_ssize_t capacity;   /* BoundedPool: the fixed number of values; Pool: -1, it grows */
    PyObject *factory;
    PyObject *reset;       /* NULL: no reset */
    PyObject *weakreflist;
} LocalPoolObject;

#define NXP_LOCAL_SLOT (-1)  /* the slot of a local pool's guard */

typedef struct {
    PyObject_HEAD
    PyObject *owner;       /* a PoolObject, or a LocalPoolObject when slot is NXP_LOCAL_SLOT;
                              NULL for a guard made by calling Pooled() */
    PyObject *value;       /* owned while held; NULL once released (the claim) */
    Py_ssize_t slot;
    int collected;         /* the claim was the finalizer's: it was collected unreleased */
} PooledObject;

/* ---- giving a slot back ------------------------------------------------------------- */

/* Wake one blocked acquirer, if any: take its token; a thread's token is a plain object
 * (release the semaphore it sleeps on), an event loop's is a callable that schedules its
 * wake-up (as _slots.wake_token). */
static void
wake_waiter(PoolObject *pool)
{
    if (PySet_GET_SIZE(pool->waiting) == 0)
        return;  /* the common case: nobody waits, a release costs this one test */
    nxp_error saved = nxp_error_take();
    PyObject *token = PySet_Pop(pool->waiting);
    if (token == NULL) {
        PyErr_Clear();  /* another release took it: that one wakes the sleeper */
    }
    else {
        PyObject *done = PyCallable_Check(token)
            ? PyObject_CallNoArgs(token)
            : PyObject_CallMethod(pool->wakeup, "release", NULL);
        if (done == NULL)
            PyErr_Clear();  /* released already (a wake-up is pending), or the loop closed */
        Py_XDECREF(done);
        Py_DECREF(token);
    }
    nxp_error_restore(saved);
}

/* Store `value` (stolen; NULL: the slot has no value) as slot's and push the slot. */
static void
store_and_push(PoolObject *pool, Py_ssize_t slot, PyObject *value)
{
    pool->values[slot] = value;  /* before the push: once pushed, the slot can be taken */
    nxp_push(pool->tickets[slot]);
    wake_waiter(pool);
}

/* Reset `value` (stolen) on this thread for its next lease: the value to store. If reset
 * raised (or was interrupted), never the half-reset value: a fresh factory() one, or NULL
 * (none: made when next taken) if that raised too; *failed is then 1 and the reset's
 * exception is set. */
static PyObject *
renew(PyObject *reset, PyObject *factory, PyObject *value, int *failed)
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
    PyObject *fresh = PyObject_CallNoArgs(factory);
    if (fresh == NULL) {
        nxp_error factory_error = nxp_error_take();
        PyObject *note = PyUnicode_FromFormat(
            "factory() also raised %R while replacing the value; "
            "it will be called again when this slot is next acquired",
            factory_error.exception);
        PyObject *added = NULL;
        if (note != NULL && reset_error.exception != NULL)
            added = PyObject_CallFunctionObjArgs(add_note, reset_error.exception, note, NULL);
        if (added == NULL)
            PyErr_Clear();  /* the note is a courtesy; the reset error still goes up */
        Py_XDECREF(added);
        Py_XDECREF(note);
        nxp_error_forget(factory_error);
    }
    nxp_error_restore(reset_error);
    return fresh;
}

/* Reset `value` (stolen) on this thread and return `slot`. -1 with an exception set if
 * reset raised: the slot went back anyway, with a fresh factory() value. */
static int
give_back(PoolObject *pool, Py_ssize_t slot, PyObject *value)
{
    int failed;
    PyObject *renewed = renew(pool->reset, pool->factory, value, &failed);
    store_and_push(pool, slot, renewed);  /* keeps the exception set */
    return failed ? -1 : 0;
}

/* Push `value` (stolen; NULL: none) on a local pool's stack; -1 and MemoryError if a
 * growing pool found no memory (the value is dropped: such a pool just holds one less). */
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
        }
        else
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

/* Reset `value` (stolen) and keep it in the local pool: as give_back. */
static int
local_give_back(LocalPoolObject *pool, PyObject *value)
{
    int failed;
    PyObject *renewed = renew(pool->reset, pool->factory, value, &failed);
    if (!failed)
        return local_push(pool, renewed);
    nxp_error reset_error = nxp_error_take();
    if (local_push(pool, renewed) < 0)
        PyErr_Clear();  /* the reset's error is the one to report */
    nxp_error_restore(reset_error);
    return -1;
}

/* Give back the value `guard` claimed, to whichever kind of pool it came from. */
static int
return_value(PooledObject *guard, PyObject *value)
{
    if (guard->slot == NXP_LOCAL_SLOT)
        return local_give_back((LocalPoolObject *)guard->owner, value);
    return give_back((PoolObject *)guard->owner, guard->slot, value);
}

/* The release claim: the value, if this call won it (NULL otherwise). */
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

/* A new reference to the value while the guard holds it, else NULL. */
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

static PyObject *
released_error(PooledObject *guard)
{
    /* A guard its finalizer released, then brought back to life (by its value, or a
     * finalizer of the same collection), says so, as the pure facade's does. */
    PyErr_SetObject(ReleasedError, guard->collected ? collected_message : released_message);
    return NULL;
}

static PyObject *
Pooled_release(PooledObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    /* Also __exit__: takes and ignores up to three arguments. */
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "release() takes at most 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *value = claim(self, 0);
    if (value == NULL)
        return released_error(self);
    if (return_value(self, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Pooled_value(PooledObject *self, void *Py_UNUSED(closure))
{
    PyObject *value = held_value(self);
    if (value == NULL)
        return released_error(self);
    return value;
}

static PyObject *
Pooled_enter(PooledObject *self, PyObject *Py_UNUSED(ignored))
{
    return Pooled_value(self, NULL);
}

static PyObject *
Pooled_repr(PooledObject *self)
{
    PyObject *value = held_value(self);
    if (value == NULL)
        return PyUnicode_FromString("<Pooled (released)>");
    PyObject *shown = PyObject_CallOneArg(value_repr, value);
    Py_DECREF(value);
    if (shown == NULL)
        return NULL;
    PyObject *text = self->slot == NXP_LOCAL_SLOT
        ? PyUnicode_FromFormat("<Pooled local value=%U>", shown)
        : PyUnicode_FromFormat("<Pooled slot=%zd value=%U>", self->slot, shown);
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

/* Pooled(): a guard that holds nothing, as the pure facade's. */
static PyObject *
Pooled_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Pooled() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);  /* zeroed: no value, not collected */
}

/* A guard dropped or collected unreleased returns its slot (reset errors: unraisable). */
static void
Pooled_finalize(PooledObject *self)
{
    PyObject *value = claim(self, 1);
    if (value == NULL)
        return;  /* released already: the common case, one test */
    nxp_error saved = nxp_error_take();
    if (return_value(self, value) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    nxp_error_restore(saved);
}

static int
Pooled_traverse(PooledObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->owner);
    Py_VISIT(self->value);  /* the collector runs with every other thread stopped */
    return 0;
}

static int
Pooled_clear(PooledObject *self)
{
    /* The finalizer ran first (PEP 442), so a held guard's value went home already. */
    Py_CLEAR(self->value);
    Py_CLEAR(self->owner);
    return 0;
}

static void
Pooled_dealloc(PooledObject *self)
{
    /* Nobody else refers to the guard any more. A released guard, the common case, skips
     * the finalizer call altogether. */
    if (self->value != NULL && PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return;  /* resurrected by the finalizer */
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
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
    {Py_tp_new, Pooled_new},
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
    "nexus_pool._native.Pooled",
    sizeof(PooledObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    Pooled_slots,
};

/* ---- Pool --------------------------------------------------------------------------- */

/* Take a free slot and make its guard: the new guard, NULL with no exception when every
 * slot is out, NULL with an exception if factory() (for a slot without value) or the
 * allocation failed; the slot is then free again. */
static PyObject *
take(PoolObject *pool)
{
    if (NXP_GET(pool->shut_down)) {
        PyErr_SetObject(PoolShutDown, shutdown_message);
        return NULL;
    }
    int64_t slot = nxp_pop(pool->stack);
    if (slot < 0)
        return NULL;
    PyObject *value = pool->values[slot];
    pool->values[slot] = NULL;
    if (value == NULL) {
        value = PyObject_CallNoArgs(pool->factory);
        if (value == NULL) {
            store_and_push(pool, (Py_ssize_t)slot, NULL);  /* still without value */
            return NULL;
        }
    }
    PooledObject *guard = PyObject_GC_New(PooledObject, PooledType);
    if (guard == NULL) {
        store_and_push(pool, (Py_ssize_t)slot, value);
        return NULL;
    }
    guard->owner = Py_NewRef((PyObject *)pool);
    guard->value = value;  /* not yet shared with any other thread */
    guard->slot = (Py_ssize_t)slot;
    guard->collected = 0;
    PyObject_GC_Track((PyObject *)guard);
    NXP_ADD(pool->acquisitions, 1);
    int64_t in_use = (int64_t)pool->capacity - nxp_available(pool->stack);
    if (in_use > NXP_GET(pool->high_water))
        NXP_SET(pool->high_water, in_use);
    return (PyObject *)guard;
}

static PyObject *
Pool_try_acquire(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = take(self);
    if (guard == NULL && !PyErr_Occurred()) {
        NXP_ADD(self->exhaustions, 1);
        Py_RETURN_NONE;
    }
    return guard;
}

/* _take(): try_acquire() without counting an exhaustion; what a waiting acquirer calls. */
static PyObject *
Pool_take(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = take(self);
    if (guard == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return guard;
}

/* Count one exhaustion and the seconds waited (a float object; an error sets nothing). */
static void
note_wait(PoolObject *self, PyObject *seconds)
{
    NXP_ADD(self->exhaustions, 1);
    double waited = PyFloat_AsDouble(seconds);
    if (waited == -1.0 && PyErr_Occurred())
        PyErr_Clear();  /* a statistic is never worth an error */
    else
        NXP_ADD(self->wait_seconds, waited);
}

static PyObject *
Pool_note_wait(PoolObject *self, PyObject *seconds)
{
    note_wait(self, seconds);
    Py_RETURN_NONE;
}

/* _waiter() -> _slots.Waiter: what acquire_async needs (see nexus_pool/_async.py). */
static PyObject *
Pool_waiter(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *take_method = PyObject_GetAttrString((PyObject *)self, "_take");
    PyObject *note_method = PyObject_GetAttrString((PyObject *)self, "_note_wait");
    PyObject *waiter = NULL;
    if (take_method != NULL && note_method != NULL)
        waiter = PyObject_CallFunctionObjArgs(waiter_type, take_method, self->waiting, note_method, NULL);
    Py_XDECREF(take_method);
    Py_XDECREF(note_method);
    return waiter;
}

/* shutdown(): lend nothing more; wake every waiting acquirer, whose next look raises. */
static PyObject *
Pool_shutdown(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    NXP_SET(self->shut_down, 1);
    while (PySet_GET_SIZE(self->waiting) > 0)
        wake_waiter(self);
    Py_RETURN_NONE;
}

static PyObject *
Pool_is_shutdown(PoolObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong((long)NXP_GET(self->shut_down));
}

static PyObject *
Pool_stats(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t in_use = self->capacity - (Py_ssize_t)nxp_available(self->stack);
    return PyObject_CallFunction(stats_type, "nnLLLd", self->capacity, in_use,
                                 (long long)NXP_GET(self->high_water),
                                 (long long)NXP_GET(self->acquisitions),
                                 (long long)NXP_GET(self->exhaustions),
                                 (double)NXP_GET(self->wait_seconds));
}

static PyObject *
exhausted(PoolObject *self, PyObject *timeout)
{
    if (timeout == NULL)
        PyErr_Format(PoolExhausted, "all %zd slots are in use", self->capacity);
    else
        PyErr_Format(PoolExhausted, "all %zd slots are in use and none came back within %S s",
                     self->capacity, timeout);
    return NULL;
}

/* `timeout` as the pure facade reads it: *seconds is a new reference to the number to wait
 * (the object given, or the checked one), or NULL for no limit; *zero tells timeout == 0. */
static int
read_timeout(PyObject *timeout, PyObject **seconds, int *zero)
{
    *seconds = NULL;
    *zero = 0;
    if (timeout == Py_None)
        return 0;
    double value = -1.0;
    if (PyFloat_CheckExact(timeout)) {
        value = PyFloat_AS_DOUBLE(timeout);
    }
    else if (PyLong_CheckExact(timeout)) {
        int overflow;
        long long whole = PyLong_AsLongLongAndOverflow(timeout, &overflow);
        if (!overflow && whole >= 0)
            value = (double)whole;
    }
    if (value >= 0.0 && value <= PyFloat_AS_DOUBLE(longest_wait)) {  /* false for NaN */
        *seconds = Py_NewRef(timeout);
        *zero = value == 0.0;
        return 0;
    }
    /* Anything else (negative, NaN, huge, bool, other types): the pure facade's check. */
    PyObject *checked = PyObject_CallOneArg(check_timeout, timeout);
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
        PyErr_Format(PyExc_TypeError, "acquire() got an unexpected keyword argument %R",
                     PyTuple_GET_ITEM(kwnames, 0));
        return NULL;
    }
    if (nargs + nkw == 1)
        timeout = args[0];
    PyObject *seconds;
    int zero;
    if (read_timeout(timeout, &seconds, &zero) < 0)
        return NULL;
    PyObject *guard = take(self);
    if (guard != NULL || PyErr_Occurred()) {
        Py_XDECREF(seconds);
        return guard;
    }
    if (zero) {
        Py_DECREF(seconds);
        NXP_ADD(self->exhaustions, 1);
        return exhausted(self, NULL);
    }
    /* Every slot is out: wait in Python, which runs the eval loop now and then (signals,
     * and on free-threaded builds the deallocation of guards other threads dropped). */
    PyObject *take_method = PyObject_GetAttrString((PyObject *)self, "_take");
    PyObject *started = take_method == NULL ? NULL : PyObject_CallNoArgs(monotonic);
    if (started == NULL) {
        Py_XDECREF(take_method);
        Py_XDECREF(seconds);
        return NULL;
    }
    guard = PyObject_CallFunctionObjArgs(wait_helper, take_method, self->waiting, self->wakeup,
                                         seconds == NULL ? Py_None : seconds, NULL);
    Py_DECREF(take_method);
    /* Count the wait whatever happened (a signal may have ended it), keeping the error. */
    nxp_error saved = nxp_error_take();
    PyObject *ended = PyObject_CallNoArgs(monotonic);
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

static PyObject *
Pool_available(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(nxp_available(self->stack));
}

static PyObject *
Pool_handoff(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_NONE;  /* ownership is checked by the debug backend only */
}

static PyObject *
Pool_capacity(PoolObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->capacity);
}

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

static int
Pool_traverse(PoolObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->factory);
    Py_VISIT(self->reset);
    Py_VISIT(self->name);
    Py_VISIT(self->waiting);
    Py_VISIT(self->wakeup);
    if (self->values != NULL) {
        for (Py_ssize_t slot = 0; slot < self->capacity; slot++)
            Py_VISIT(self->values[slot]);
    }
    return 0;
}

static int
Pool_clear(PoolObject *self)
{
    Py_CLEAR(self->factory);
    Py_CLEAR(self->reset);
    Py_CLEAR(self->name);
    Py_CLEAR(self->waiting);
    Py_CLEAR(self->wakeup);
    if (self->values != NULL) {
        for (Py_ssize_t slot = 0; slot < self->capacity; slot++)
            Py_CLEAR(self->values[slot]);
    }
    return 0;
}

static void
Pool_dealloc(PoolObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    Pool_clear(self);
    PyMem_Free(self->values);
    PyMem_Free(self->tickets);
    if (self->stack != NULL)
        nxp_destroy(self->stack);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

/* Pool._create(capacity, factory, reset, name): called by nexus_pool.Pool once it has
 * checked the arguments; makes the capacity values now. */
static PyObject *
Pool_create(PyTypeObject *type, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "_create(capacity, factory, reset, name)");
        return NULL;
    }
    Py_ssize_t capacity = PyLong_AsSsize_t(args[0]);
    if (capacity == -1 && PyErr_Occurred())
        return NULL;
    if (capacity < 1 || capacity > nxp_max_capacity()) {
        PyErr_Format(PyExc_ValueError, "capacity out of range: %zd", capacity);
        return NULL;
    }
    PoolObject *self = (PoolObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->capacity = capacity;
    self->factory = Py_NewRef(args[1]);
    self->reset = args[2] == Py_None ? NULL : Py_NewRef(args[2]);
    self->name = Py_NewRef(args[3]);
    self->values = PyMem_Calloc((size_t)capacity, sizeof(PyObject *));
    self->tickets = PyMem_Calloc((size_t)capacity, sizeof(intptr_t));
    if (self->values == NULL || self->tickets == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    /* The values first, in slot order, as the pure facade makes them. */
    for (Py_ssize_t slot = 0; slot < capacity; slot++) {
        PyObject *value = PyObject_CallNoArgs(self->factory);
        if (value == NULL) {
            Py_DECREF(self);
            return NULL;
        }
        self->values[slot] = value;
    }
    self->waiting = PySet_New(NULL);
    if (self->waiting == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->wakeup = PyObject_CallNoArgs(lock_type);
    if (self->wakeup == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    PyObject *locked = PyObject_CallMethod(self->wakeup, "acquire", NULL);  /* empty: no wake-up pending */
    if (locked == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_DECREF(locked);
    self->stack = nxp_create(capacity);
    if (self->stack == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t slot = 0; slot < capacity; slot++)
        self->tickets[slot] = nxp_ticket(self->stack, slot);
    return (PyObject *)self;
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
    {"_note_wait", (PyCFunction)Pool_note_wait, METH_O, NULL},
    {"_waiter", (PyCFunction)Pool_waiter, METH_NOARGS, NULL},
    {"__reduce_ex__", (PyCFunction)Pool_reduce_ex, METH_O, NULL},
    {"_create", (PyCFunction)(void (*)(void))Pool_create, METH_FASTCALL | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Pool_getset[] = {
    {"capacity", (getter)Pool_capacity, NULL, "The number of slots, fixed at construction.", NULL},
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
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    Pool_slots,
};

/* ---- local pools (nexus_pool.local) ------------------------------------------------- */

static PyTypeObject *LocalPoolType;     /* nexus_pool.local.Pool's native implementation */
static PyTypeObject *LocalBoundedType;  /* nexus_pool.local.BoundedPool's */
static PyObject *local_exhausted_message;  /* str: a BoundedPool's acquire() found none */

/* Take the top free value: 1 and *value (a new reference, or NULL: make one), or 0. */
static int
local_pop(LocalPoolObject *pool, PyObject **value)
{
    int found = 0;
    NXP_BEGIN_CRITICAL_SECTION(pool);
    if (pool->count > 0) {
        *value = pool->free[--pool->count];
        found = 1;
    }
    NXP_END_CRITICAL_SECTION();
    return found;
}

/* A guard on a free value; with `grow`, on a new factory() value when none is free.
 * NULL with no exception: none free (and not growing). */
static PyObject *
local_lend(LocalPoolObject *pool, int grow)
{
    PyObject *value = NULL;
    int found = local_pop(pool, &value);
    if (!found && !grow)
        return NULL;
    if (value == NULL) {
        value = PyObject_CallNoArgs(pool->factory);
        if (value == NULL) {
            if (found) {  /* the entry stays free, still to be made */
                nxp_error error = nxp_error_take();
                if (local_push(pool, NULL) < 0)
                    PyErr_Clear();
                nxp_error_restore(error);
            }
            return NULL;
        }
    }
    PooledObject *guard = PyObject_GC_New(PooledObject, PooledType);
    if (guard == NULL) {
        nxp_error error = nxp_error_take();
        if (local_push(pool, value) < 0)
            PyErr_Clear();
        nxp_error_restore(error);
        return NULL;
    }
    guard->owner = Py_NewRef((PyObject *)pool);
    guard->value = value;
    guard->slot = NXP_LOCAL_SLOT;
    guard->collected = 0;
    PyObject_GC_Track((PyObject *)guard);
    return (PyObject *)guard;
}

static PyObject *
LocalPool_try_acquire(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = local_lend(self, 0);
    if (guard == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return guard;
}

static PyObject *
LocalPool_acquire(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = local_lend(self, self->capacity < 0);
    if (guard == NULL && !PyErr_Occurred())
        PyErr_Format(PoolExhausted, "all %zd values of this local.BoundedPool are in use; %U",
                     self->capacity, local_exhausted_message);
    return guard;
}

static PyObject *
LocalPool_take(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *value = NULL;
    local_pop(self, &value);
    return value != NULL ? value : PyObject_CallNoArgs(self->factory);
}

static PyObject *
LocalPool_put(LocalPoolObject *self, PyObject *value)
{
    if (local_push(self, Py_NewRef(value)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
LocalPool_available(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t count;
    NXP_BEGIN_CRITICAL_SECTION(self);
    count = self->count;
    NXP_END_CRITICAL_SECTION();
    return PyLong_FromSsize_t(count);
}

static PyObject *
LocalPool_backend(LocalPoolObject *self, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString("local");
}

static PyObject *
LocalPool_capacity(LocalPoolObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->capacity);
}

static PyObject *
LocalPool_repr(LocalPoolObject *self)
{
    Py_ssize_t count;
    NXP_BEGIN_CRITICAL_SECTION(self);
    count = self->count;
    NXP_END_CRITICAL_SECTION();
    if (self->capacity < 0)
        return PyUnicode_FromFormat("<nexus_pool.local.Pool available=%zd backend='local'>", count);
    return PyUnicode_FromFormat("<nexus_pool.local.BoundedPool capacity=%zd available=%zd backend='local'>",
                                self->capacity, count);
}

static PyObject *
LocalPool_reduce_ex(PyObject *self, PyObject *Py_UNUSED(protocol))
{
    PyErr_Format(PyExc_TypeError, "%s objects cannot be copied or pickled: they own their values",
                 ((LocalPoolObject *)self)->capacity < 0 ? "Pool" : "BoundedPool");
    return NULL;
}

static int
LocalPool_traverse(LocalPoolObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->factory);
    Py_VISIT(self->reset);
    for (Py_ssize_t index = 0; index < self->count; index++)
        Py_VISIT(self->free[index]);
    return 0;
}

static int
LocalPool_clear(LocalPoolObject *self)
{
    Py_CLEAR(self->factory);
    Py_CLEAR(self->reset);
    while (self->count > 0) {
        PyObject *value = self->free[--self->count];
        Py_XDECREF(value);
    }
    return 0;
}

static void
LocalPool_dealloc(LocalPoolObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    LocalPool_clear(self);
    PyMem_Free(self->free);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

/* _create(capacity, factory, reset): capacity -1 makes a growing pool (no values yet);
 * otherwise its values are made now. nexus_pool.local checked the arguments. */
static PyObject *
LocalPool_create(PyTypeObject *type, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_create(capacity, factory, reset)");
        return NULL;
    }
    Py_ssize_t capacity = PyLong_AsSsize_t(args[0]);
    if (capacity == -1 && PyErr_Occurred())
        return NULL;
    if (capacity < -1 || capacity == 0) {
        PyErr_Format(PyExc_ValueError, "capacity out of range: %zd", capacity);
        return NULL;
    }
    LocalPoolObject *self = (LocalPoolObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->capacity = capacity;
    self->factory = Py_NewRef(args[1]);
    self->reset = args[2] == Py_None ? NULL : Py_NewRef(args[2]);
    if (capacity < 0)
        return (PyObject *)self;
    self->free = PyMem_Calloc((size_t)capacity, sizeof(PyObject *));
    if (self->free == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->allocated = capacity;
    while (self->count < capacity) {  /* counted as made: a failure frees what was made */
        PyObject *value = PyObject_CallNoArgs(self->factory);
        if (value == NULL) {
            Py_DECREF(self);
            return NULL;
        }
        self->free[self->count++] = value;
    }
    /* Made in order 0, 1, 2, ...; reversed so that 0 is taken first, as the pure pool. */
    for (Py_ssize_t low = 0, high = capacity - 1; low < high; low++, high--) {
        PyObject *swapped = self->free[low];
        self->free[low] = self->free[high];
        self->free[high] = swapped;
    }
    return (PyObject *)self;
}

static PyMethodDef LocalPool_methods[] = {
    {"try_acquire", (PyCFunction)LocalPool_try_acquire, METH_NOARGS,
     "A guard on a free value, or None when none is free (never calls factory)."},
    {"acquire", (PyCFunction)LocalPool_acquire, METH_NOARGS,
     "A guard on a free value, or on a new one made by factory()."},
    {"take", (PyCFunction)LocalPool_take, METH_NOARGS, "A value that leaves the pool for good."},
    {"put", (PyCFunction)LocalPool_put, METH_O, "Add a value to the pool (not reset)."},
    {"available", (PyCFunction)LocalPool_available, METH_NOARGS, "How many values are free now."},
    {"handoff", (PyCFunction)Pool_handoff, METH_NOARGS, "Give up ownership (checked by debug only)."},
    {"__reduce_ex__", (PyCFunction)LocalPool_reduce_ex, METH_O, NULL},
    {"_create", (PyCFunction)(void (*)(void))LocalPool_create, METH_FASTCALL | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef LocalBounded_methods[] = {
    {"try_acquire", (PyCFunction)LocalPool_try_acquire, METH_NOARGS,
     "A guard on a free value, or None when none is free."},
    {"acquire", (PyCFunction)LocalPool_acquire, METH_NOARGS,
     "A guard on a free value; PoolExhausted at once when none is free."},
    {"available", (PyCFunction)LocalPool_available, METH_NOARGS, "How many values are free now."},
    {"handoff", (PyCFunction)Pool_handoff, METH_NOARGS, "Give up ownership (checked by debug only)."},
    {"__reduce_ex__", (PyCFunction)LocalPool_reduce_ex, METH_O, NULL},
    {"_create", (PyCFunction)(void (*)(void))LocalPool_create, METH_FASTCALL | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef LocalPool_getset[] = {
    {"backend", (getter)LocalPool_backend, NULL, "'local': a plain stack, no thread checks.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef LocalBounded_getset[] = {
    {"backend", (getter)LocalPool_backend, NULL, "'local': a plain stack, no thread checks.", NULL},
    {"capacity", (getter)LocalPool_capacity, NULL, "The number of values, fixed at construction.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef LocalPool_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(LocalPoolObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot LocalPool_slots[] = {
    {Py_tp_dealloc, LocalPool_dealloc},
    {Py_tp_traverse, LocalPool_traverse},
    {Py_tp_clear, LocalPool_clear},
    {Py_tp_repr, LocalPool_repr},
    {Py_tp_methods, LocalPool_methods},
    {Py_tp_getset, LocalPool_getset},
    {Py_tp_members, LocalPool_members},
    {Py_tp_doc, "A growing single-thread pool (the native nexus_pool.local.Pool)."},
    {0, NULL},
};

static PyType_Slot LocalBounded_slots[] = {
    {Py_tp_dealloc, LocalPool_dealloc},
    {Py_tp_traverse, LocalPool_traverse},
    {Py_tp_clear, LocalPool_clear},
    {Py_tp_repr, LocalPool_repr},
    {Py_tp_methods, LocalBounded_methods},
    {Py_tp_getset, LocalBounded_getset},
    {Py_tp_members, LocalPool_members},
    {Py_tp_doc, "A fixed single-thread pool (the native nexus_pool.local.BoundedPool)."},
    {0, NULL},
};

static PyType_Spec LocalPool_spec = {
    "nexus_pool._native.LocalPool",
    sizeof(LocalPoolObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    LocalPool_slots,
};

static PyType_Spec LocalBounded_spec = {
    "nexus_pool._native.LocalBoundedPool",
    sizeof(LocalPoolObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    LocalBounded_slots,
};

/* _setup_local(pool_base, bounded_base, exhausted_message) -> (Pool, BoundedPool): the
 * native local pools, as subclasses of nexus_pool.local's public classes. After _setup. */
static PyObject *
native_setup_local(PyObject *module, PyObject *args)
{
    PyObject *pool_base, *bounded_base, *message;
    if (!PyArg_ParseTuple(args, "OOU:_setup_local", &pool_base, &bounded_base, &message))
        return NULL;
    if (PooledType == NULL || LocalPoolType != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_setup_local() needs _setup() first, and runs once");
        return NULL;
    }
    local_exhausted_message = Py_NewRef(message);
    PyObject *bases = PyTuple_Pack(1, pool_base);
    if (bases == NULL)
        return NULL;
    LocalPoolType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &LocalPool_spec, bases);
    Py_DECREF(bases);
    if (LocalPoolType == NULL)
        return NULL;
    bases = PyTuple_Pack(1, bounded_base);
    if (bases == NULL)
        return NULL;
    LocalBoundedType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &LocalBounded_spec, bases);
    Py_DECREF(bases);
    if (LocalBoundedType == NULL)
        return NULL;
    return PyTuple_Pack(2, (PyObject *)LocalPoolType, (PyObject *)LocalBoundedType);
}

/* ---- module ------------------------------------------------------------------------- */

static PyObject *
take_helper(PyObject *helpers, const char *name)
{
    PyObject *value = PyDict_GetItemString(helpers, name);  /* borrowed */
    if (value == NULL) {
        PyErr_Format(PyExc_KeyError, "_setup: missing %s", name);
        return NULL;
    }
    return Py_NewRef(value);
}

/* _setup(pool_base, pooled_base, helpers) -> (Pool, Pooled): make the types as
 * subclasses of the public classes, and keep what the Python side provides. */
static PyObject *
native_setup(PyObject *module, PyObject *args)
{
    PyObject *pool_base, *pooled_base, *helpers;
    if (!PyArg_ParseTuple(args, "OOO!:_setup", &pool_base, &pooled_base, &PyDict_Type, &helpers))
        return NULL;
    if (PoolType != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_setup() was called already");
        return NULL;
    }
    if (!(ReleasedError = take_helper(helpers, "ReleasedError"))
        || !(PoolExhausted = take_helper(helpers, "PoolExhausted"))
        || !(PoolShutDown = take_helper(helpers, "PoolShutDown"))
        || !(shutdown_message = take_helper(helpers, "shutdown_message"))
        || !(wait_helper = take_helper(helpers, "wait"))
        || !(check_timeout = take_helper(helpers, "check_timeout"))
        || !(value_repr = take_helper(helpers, "value_repr"))
        || !(add_note = take_helper(helpers, "add_note"))
        || !(lock_type = take_helper(helpers, "Lock"))
        || !(longest_wait = take_helper(helpers, "longest_wait"))
        || !(released_message = take_helper(helpers, "released_message"))
        || !(collected_message = take_helper(helpers, "collected_message"))
        || !(stats_type = take_helper(helpers, "PoolStats"))
        || !(waiter_type = take_helper(helpers, "Waiter"))
        || !(monotonic = take_helper(helpers, "monotonic")))
        return NULL;
    PyObject *bases = PyTuple_Pack(1, pool_base);
    if (bases == NULL)
        return NULL;
    PoolType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Pool_spec, bases);
    Py_DECREF(bases);
    if (PoolType == NULL)
        return NULL;
    bases = PyTuple_Pack(1, pooled_base);
    if (bases == NULL)
        return NULL;
    PooledType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Pooled_spec, bases);
    Py_DECREF(bases);
    if (PooledType == NULL)
        return NULL;
    return PyTuple_Pack(2, (PyObject *)PoolType, (PyObject *)PooledType);
}

static PyMethodDef native_methods[] = {
    {"_setup", native_setup, METH_VARARGS, NULL},
    {"_setup_local", native_setup_local, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    "nexus_pool._native",
    "The native facade: Pool and Pooled as C extension types (see nexus_pool/_facade.py).",
    -1,  /* one copy per process: the types live in static variables */
    native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL)
        return NULL;
#ifdef Py_GIL_DISABLED
    /* Everything shared is guarded by critical sections or lock-free atomics. */
    PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED);
#endif
    return module;
}
