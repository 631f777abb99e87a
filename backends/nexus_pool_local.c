/* nexus_pool._native's local pools: nexus_pool.local's Pool (it grows) and BoundedPool as
 * C types. Mirrors nexus_pool/_local.py (the pure implementation, which also serves the
 * `debug` backend); the public base classes are in nexus_pool/_local_base.py.
 *
 * Not a translation unit of its own: nexus_pool_native.c #includes this file where the
 * local pools' section belongs, after the guard type and the thread-safe pool, whose
 * helpers (guards, holders, renewing a value) these pools share, and before the module
 * definition, which registers their types. One thread acquires and releases, so a
 * pool's free values are a plain stack (on free-threaded builds under the pool's critical
 * section, so that misuse from two threads cannot corrupt it); a guard going back to its
 * local pool is handled with the guard's code (local_reset_and_give_back in
 * nexus_pool_native.c).
 */

/* Take the top free value: 1 and *value (a new reference, or NULL: make one), or 0.
 * `pool` is kept alive by the caller; its stack is guarded by its critical section. */
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

static PyObject *
local_cleared_error(void)
{
    PyErr_SetString(PyExc_RuntimeError, "this local pool was torn down by the garbage collector (it was part of an "
                                        "unreachable reference cycle)");
    return NULL;
}

/* A new value from the pool's factory, or NULL with an exception. `pool` is kept alive by the caller. */
static PyObject *
local_make(LocalPoolObject *pool)
{
    if (pool->factory == NULL)
        return local_cleared_error();
    return PyObject_CallNoArgs(pool->factory);
}

/* A guard on a free value; with `grow`, on a new factory() value when none is free.
 * NULL with no exception: none free (and not growing). `pool` is kept alive by the caller;
 * its stack is guarded by its critical section. */
static PyObject *
local_lend(LocalPoolObject *pool, int grow)
{
    PyObject *value = NULL;
    int found = local_pop(pool, &value);
    if (!found && !grow)
        return NULL;
    if (value == NULL) {
        value = local_make(pool);
        if (value == NULL) {
            if (found) { /* the entry stays free, still to be made */
                nxp_error error = nxp_error_take();
                if (local_push(pool, NULL) < 0)
                    PyErr_Clear();
                nxp_error_restore(error);
            }
            return NULL;
        }
    }
    PyObject *guard = new_guard(STATE(pool)->pooled_type, (PyObject *)pool, value, NXP_LOCAL_SLOT);
    if (guard == NULL) {
        nxp_error error = nxp_error_take();
        if (local_push(pool, value) < 0)
            PyErr_Clear();
        nxp_error_restore(error);
        return NULL;
    }
    PooledObject *lent = (PooledObject *)guard; /* ours alone until returned */
    lent->acquired_ns = nxp_now_ns();
    lent->thread = NXP_THREAD_IDENT();
    if (sample_now(&pool->sampler))
        caller_site(STATE(pool), &lent->site);
    NXP_BEGIN_CRITICAL_SECTION(pool);
    lent->lent_next = pool->lent;
    if (pool->lent != NULL)
        pool->lent->lent_previous = lent;
    pool->lent = lent;
    NXP_END_CRITICAL_SECTION();
    return guard;
}

/* _holding() for a local pool: one record per lent guard, its slot None. `self` is kept
 * alive by this call; the guards on its list are alive while they are on it (each unlinks
 * itself, under the same critical section, before its value comes back). */
static PyObject *
LocalPool_holding(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    nxp_state *state = STATE(self);
    PyObject *records = PyList_New(0);
    if (records == NULL)
        return NULL;
    int64_t now = nxp_now_ns();
    int failed = 0;
    NXP_BEGIN_CRITICAL_SECTION(self);
    for (PooledObject *guard = self->lent; guard != NULL && !failed; guard = guard->lent_next) {
        int64_t held = now - guard->acquired_ns;
        PyObject *site = site_tuple(guard->site.code, guard->site.line);
        PyObject *record = site == NULL
                               ? NULL
                               : Py_BuildValue("(OdkNO)", Py_None, held > 0 ? held / 1e9 : 0.0,
                                               (unsigned long)guard->thread, site, state->how_names[NXP_LOCAL]);
        failed = record == NULL || PyList_Append(records, record) < 0;
        Py_XDECREF(record);
    }
    NXP_END_CRITICAL_SECTION();
    if (failed) {
        Py_DECREF(records);
        return NULL;
    }
    return records;
}

/* `self` is kept alive by this call. */
static PyObject *
LocalPool_try_acquire(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = local_lend(self, 0);
    if (guard == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return guard;
}

/* `self` is kept alive by this call. */
static PyObject *
LocalPool_acquire(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *guard = local_lend(self, self->capacity < 0);
    if (guard != NULL || PyErr_Occurred())
        return guard;
    /* A BoundedPool with nothing free: PoolExhausted, naming the holders, at once. */
    nxp_state *state = STATE(self);
    PyObject *holders = PyObject_CallMethod((PyObject *)self, "holders", NULL);
    PyObject *arguments = holders == NULL ? NULL : Py_BuildValue("(nOO)", self->capacity, holders, Py_None);
    PyObject *keywords =
        arguments == NULL ? NULL
                          : Py_BuildValue("{sOsO}", "what", state->local_what, "note", state->local_exhausted_reason);
    PyObject *error = keywords == NULL ? NULL : PyObject_Call(state->exhausted_error, arguments, keywords);
    Py_XDECREF(holders);
    Py_XDECREF(arguments);
    Py_XDECREF(keywords);
    if (error != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    return NULL;
}

/* `self` is kept alive by this call. */
static PyObject *
LocalPool_take(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *value = NULL;
    local_pop(self, &value);
    return value != NULL ? value : local_make(self);
}

/* `self` is kept alive by this call. */
static PyObject *
LocalPool_put(LocalPoolObject *self, PyObject *value)
{
    if (local_push(self, Py_NewRef(value)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* `pool` is kept alive by the caller; its stack is guarded by its critical section. */
static Py_ssize_t
local_count(LocalPoolObject *pool)
{
    Py_ssize_t count;
    NXP_BEGIN_CRITICAL_SECTION(pool);
    count = pool->count;
    NXP_END_CRITICAL_SECTION();
    return count;
}

/* `self` is kept alive by this call. */
static PyObject *
LocalPool_available(LocalPoolObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(local_count(self));
}

static PyObject *
LocalPool_backend(LocalPoolObject *self, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString("local");
}

/* `self` is kept alive by this call. */
static PyObject *
LocalPool_capacity(LocalPoolObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->capacity);
}

/* `self` is kept alive by this call. */
static PyObject *
LocalPool_repr(LocalPoolObject *self)
{
    Py_ssize_t count = local_count(self);
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

/* The collector calls this with every thread stopped; `self` is alive until it returns. */
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
    /* `self` is alive until the collector is done with it. */
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
    /* Nobody refers to the pool any more (every guard holds a reference). */
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
 * otherwise its values are made first, before the pool object exists (see Pool_create).
 * nexus_pool.local checked the arguments. */
static PyObject *
LocalPool_create(PyTypeObject *type, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "_create(capacity, factory, reset, sample_period)");
        return NULL;
    }
    Py_ssize_t period = PyLong_AsSsize_t(args[3]);
    if (period == -1 && PyErr_Occurred())
        return NULL;
    if (period < 0) {
        PyErr_SetString(PyExc_ValueError, "sample_period must be >= 0");
        return NULL;
    }
    Py_ssize_t capacity = PyLong_AsSsize_t(args[0]);
    if (capacity == -1 && PyErr_Occurred())
        return NULL;
    if (capacity < -1 || capacity == 0) {
        PyErr_Format(PyExc_ValueError, "capacity out of range: %zd", capacity);
        return NULL;
    }
    PyObject *factory = args[1], *reset = args[2];
    if (!PyCallable_Check(factory) || (reset != Py_None && !PyCallable_Check(reset))) {
        PyErr_SetString(PyExc_TypeError, "factory must be callable, and reset callable or None");
        return NULL;
    }
    PyObject **values = NULL;
    if (capacity > 0) {
        values = make_values(factory, capacity);
        if (values == NULL)
            return NULL;
        /* Made in order 0, 1, 2, ...; reversed so that 0 is taken first, as the pure pool. */
        for (Py_ssize_t low = 0, high = capacity - 1; low < high; low++, high--) {
            PyObject *swapped = values[low];
            values[low] = values[high];
            values[high] = swapped;
        }
    }
    LocalPoolObject *self = (LocalPoolObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        free_values(values, capacity);
        return NULL;
    }
    self->capacity = capacity;
    self->factory = Py_NewRef(factory);
    self->reset = reset == Py_None ? NULL : Py_NewRef(reset);
    self->free = values;
    self->count = self->allocated = capacity > 0 ? capacity : 0;
    sampler_init(&self->sampler, period, (uint64_t)(uintptr_t)self ^ (uint64_t)nxp_now_ns());
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
    {"_holding", (PyCFunction)LocalPool_holding, METH_NOARGS, NULL},
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
    {"_holding", (PyCFunction)LocalPool_holding, METH_NOARGS, NULL},
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
    {Py_tp_new, refuse_new},
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
    {Py_tp_new, refuse_new},
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
    "nexus_pool._native.LocalPool",          sizeof(LocalPoolObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, LocalPool_slots,
};

static PyType_Spec LocalBounded_spec = {
    "nexus_pool._native.LocalBoundedPool",   sizeof(LocalPoolObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, LocalBounded_slots,
};
