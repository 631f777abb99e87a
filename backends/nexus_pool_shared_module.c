/* nexus_pool._shared_native: the shared-memory pool's Python types, over the core in
 * nexus_pool_shared.c. Mirrors the readable Python side in nexus_pool/_shared.py, which
 * builds the public SharedBufferPool, receive() and the operators' tools on them.
 *
 * Block: one mapping of one block in this process, and this process's checked copy of
 * its geometry (nxs_view). It maps the block itself (shm_open, mmap) and unmaps it only
 * in its deallocator: every lease, every buffer view a lease exported (a memoryview, and
 * every slice of it) and every call running on the block holds a reference to it, so
 * the memory stays mapped for as long as anything can touch it. close() only marks the
 * block closed (its pool methods raise from then on) and wakes the threads sleeping in
 * wait(); the name is removed by unlink().
 *
 * Lease: one slot held by this process (acquired here, or claimed from a handle), with a
 * memoryview of the slot's bytes (exported by a SlotBuffer) while held; release() and
 * send() end it and release that view. A lease dropped while held releases its slot.
 *
 * Multi-phase initialisation, types and the Python objects used in module state, one
 * per interpreter; the only C static is this process's pid, which is no Python object.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nexus_pool_shared.h"

#if PY_VERSION_HEX >= 0x030D0000
#  define NXS_BEGIN_CRITICAL_SECTION(op) Py_BEGIN_CRITICAL_SECTION(op)
#  define NXS_END_CRITICAL_SECTION() Py_END_CRITICAL_SECTION()
#else /* the GIL serialises everything a critical section would */
#  define NXS_BEGIN_CRITICAL_SECTION(op) {
#  define NXS_END_CRITICAL_SECTION() }
#endif

/* ---- this process ------------------------------------------------------------------- */

/* getpid() is a system call; a fork gives the child its own value (pthread_atfork). */
static _Atomic int32_t own_pid;

static void
refresh_pid(void)
{
    atomic_store(&own_pid, (int32_t)getpid());
}

static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

static void
register_fork_handler(void)
{
    refresh_pid();
    pthread_atfork(NULL, NULL, refresh_pid);
}

/* ---- module state ------------------------------------------------------------------- */

typedef struct {
    PyTypeObject *block_type;
    PyTypeObject *lease_type;
    PyTypeObject *slot_buffer_type;
    PyObject *released_error;   /* nexus_pool.ReleasedError */
    PyObject *corrupted_error;  /* nexus_pool.SharedBlockCorrupted */
    PyObject *handle_type;      /* nexus_pool.shared.Handle */
} nxs_state;

static inline nxs_state *
state_of(PyTypeObject *type)
{
    return (nxs_state *)PyType_GetModuleState(type);
}

#define STATE(object) state_of(Py_TYPE(object))

/* ---- objects ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    nxs_view view;         /* base == NULL: not mapped (a failed constructor) */
    PyObject *name;        /* str: the block's name, without the leading slash */
    _Atomic int closed;    /* close() was called: pool operations raise */
    int readonly;          /* mapped for inspection only (Block.inspect): nothing may write */
    _Atomic uint32_t cursor;  /* where the acquirer looks first (its own, never shared) */
    PyObject *weakreflist;
} BlockObject;

typedef struct {
    PyObject_HEAD
    BlockObject *block;    /* strong: keeps the mapping */
    uint32_t slot;
    uint32_t generation;
    PyObject *view;        /* the memoryview over the slot while held; NULL once ended */
    int held;              /* 1 while this process holds the slot through this lease */
} LeaseObject;

static PyObject *
refuse_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwargs))
{
    PyErr_Format(PyExc_TypeError,
                 "%s objects are made by nexus_pool.shared (SharedBufferPool, receive), not directly",
                 type->tp_name);
    return NULL;
}

/* ---- errors ------------------------------------------------------------------------- */

/* `block` is kept alive by the caller. */
static PyObject *
corrupted(BlockObject *block)
{
    PyErr_Format(STATE(block)->corrupted_error,
                 "shared block %R is corrupt: its header or a slot's record holds values that no "
                 "nexus_pool process writes (another process wrote into it); it is not used any further",
                 block->name);
    return NULL;
}

/* `block` is kept alive by the caller. */
static PyObject *
closed_error(BlockObject *block)
{
    PyErr_Format(PyExc_ValueError, "the shared pool %R is closed", block->name);
    return NULL;
}

/* NULL and the error for a negative core result. `block` is kept alive by the caller. */
static PyObject *
core_error(BlockObject *block, int64_t result)
{
    if (result == NXS_CORRUPT)
        return corrupted(block);
    PyErr_Format(PyExc_SystemError, "nexus_pool.shared: unexpected result %lld", (long long)result);
    return NULL;
}

/* `block` is kept alive by the caller. */
static int
check_open(BlockObject *block)
{
    if (atomic_load(&block->closed)) {
        closed_error(block);
        return -1;
    }
    return 0;
}

/* check_open(), and that the block may be written (it was not mapped for inspection).
 * `block` is kept alive by the caller. */
static int
check_writable(BlockObject *block)
{
    if (block->readonly) {
        PyErr_Format(PyExc_ValueError, "shared block %R was opened read-only, for inspection", block->name);
        return -1;
    }
    return check_open(block);
}

/* ---- Lease -------------------------------------------------------------------------- */

/* `lease` is kept alive by the caller. */
static PyObject *
ended_error(LeaseObject *lease)
{
    PyErr_SetString(STATE(lease)->released_error, "this shared lease was released or sent");
    return NULL;
}

/* End the lease here: 1 if it was held (and is now ours to release or send), 0 if it
 * had ended already. Its memoryview is released: a view kept past this point would
 * alias the next lease of the slot (the slices and exports a user still holds keep the
 * mapping, so they touch mapped memory, never freed memory). `lease` is kept alive by
 * the caller. */
static int
end_lease(LeaseObject *lease)
{
    PyObject *view;
    int held;
    NXS_BEGIN_CRITICAL_SECTION(lease);
    held = lease->held;
    lease->held = 0;
    view = lease->view;
    lease->view = NULL;
    NXS_END_CRITICAL_SECTION();
    if (view != NULL) {
        PyObject *done = PyObject_CallMethod(view, "release", NULL);
        if (done == NULL)
            PyErr_Clear();  /* exported further (numpy, memoryview(view)): those stay valid */
        Py_XDECREF(done);
        Py_DECREF(view);
    }
    return held;
}

/* `self` is kept alive by this call; the view returned keeps the mapping itself. */
static PyObject *
Lease_buffer(LeaseObject *self, void *Py_UNUSED(closure))
{
    PyObject *view;
    NXS_BEGIN_CRITICAL_SECTION(self);
    view = Py_XNewRef(self->view);
    NXS_END_CRITICAL_SECTION();
    return view != NULL ? view : ended_error(self);
}

/* `self` is kept alive by this call; the mapping by its strong reference lease->block. */
static PyObject *
Lease_release(LeaseObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    /* Also __exit__: takes and ignores up to three arguments. */
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "release() takes at most 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!end_lease(self)) {
        PyErr_SetString(STATE(self)->released_error, "this shared lease was released or sent already");
        return NULL;
    }
    int result = nxs_release(&self->block->view, self->slot, self->generation, atomic_load(&own_pid));
    if (result == NXS_CORRUPT)
        return corrupted(self->block);
    if (result != NXS_OK) {
        PyErr_SetString(STATE(self)->released_error, "this shared lease was reclaimed: it is no longer held here");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* `self` is kept alive by this call; the mapping by its strong reference lease->block. */
static PyObject *
Lease_send(LeaseObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!end_lease(self)) {
        PyErr_SetString(STATE(self)->released_error, "this shared lease was released or sent already");
        return NULL;
    }
    int result = nxs_send(&self->block->view, self->slot, self->generation, atomic_load(&own_pid));
    if (result == NXS_CORRUPT)
        return corrupted(self->block);
    if (result != NXS_OK) {
        PyErr_SetString(STATE(self)->released_error, "this shared lease was reclaimed: it is no longer held here");
        return NULL;
    }
    return PyObject_CallFunction(STATE(self)->handle_type, "OII", self->block->name, (unsigned int)self->slot,
                                 (unsigned int)self->generation);
}

/* `self` is kept alive by this call. */
static PyObject *
Lease_enter(LeaseObject *self, PyObject *Py_UNUSED(ignored))
{
    return Lease_buffer(self, NULL);
}

static PyObject *
Lease_reduce_ex(PyObject *self, PyObject *Py_UNUSED(protocol))
{
    PyErr_SetString(PyExc_TypeError, "a SharedLease stays in its process: send() it and pass the Handle");
    return NULL;
}

/* `self` is kept alive by this call. */
static PyObject *
Lease_repr(LeaseObject *self)
{
    int held;
    NXS_BEGIN_CRITICAL_SECTION(self);
    held = self->held;
    NXS_END_CRITICAL_SECTION();
    return PyUnicode_FromFormat("<SharedLease slot=%u generation=%u %s>", (unsigned int)self->slot,
                                (unsigned int)self->generation, held ? "held" : "ended");
}

/* A lease dropped while held gives its slot back, as a dropped guard does. CPython keeps
 * `self` alive while its finalizer runs; the mapping by self->block. */
static void
Lease_finalize(LeaseObject *self)
{
    if (self->block == NULL || !self->held)
        return;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (end_lease(self))
        nxs_release(&self->block->view, self->slot, self->generation, atomic_load(&own_pid));
    PyErr_Restore(type, value, traceback);
}

/* The collector calls this with every thread stopped; `self` is alive until it returns. */
static int
Lease_traverse(LeaseObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->block);
    Py_VISIT(self->view);
    return 0;
}

static int
Lease_clear(LeaseObject *self)
{
    /* The finalizer ran first (PEP 442): a held lease gave its slot back already. `self`
     * is alive until the collector is done with it. */
    Py_CLEAR(self->view);
    Py_CLEAR(self->block);
    return 0;
}

static void
Lease_dealloc(LeaseObject *self)
{
    /* Nobody refers to the lease any more; its memory is ours until tp_free. */
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return;  /* resurrected */
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Lease_clear(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef Lease_methods[] = {
    {"release", (PyCFunction)(void (*)(void))Lease_release, METH_FASTCALL,
     "Give the buffer back to its pool, from whichever process holds it."},
    {"send", (PyCFunction)Lease_send, METH_NOARGS,
     "End the lease here; the picklable Handle a worker receives it by."},
    {"__exit__", (PyCFunction)(void (*)(void))Lease_release, METH_FASTCALL, "release()"},
    {"__enter__", (PyCFunction)Lease_enter, METH_NOARGS, "The buffer."},
    {"__reduce_ex__", (PyCFunction)Lease_reduce_ex, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Lease_getset[] = {
    {"buffer", (getter)Lease_buffer, NULL, "The slot's bytes, writable; ReleasedError once released or sent.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Lease_members[] = {
    {"slot", T_UINT, offsetof(LeaseObject, slot), READONLY, "The slot's index in its block."},
    {"generation", T_UINT, offsetof(LeaseObject, generation), READONLY, "Which lease of the slot this is."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Lease_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, Lease_dealloc},
    {Py_tp_finalize, Lease_finalize},
    {Py_tp_traverse, Lease_traverse},
    {Py_tp_clear, Lease_clear},
    {Py_tp_repr, Lease_repr},
    {Py_tp_methods, Lease_methods},
    {Py_tp_getset, Lease_getset},
    {Py_tp_members, Lease_members},
    {Py_tp_doc, "A lease on one shared buffer: buffer, release(), with, send()."},
    {0, NULL},
};

static PyType_Spec Lease_spec = {
    "nexus_pool.shared.SharedLease",
    sizeof(LeaseObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    Lease_slots,
};

/* ---- SlotBuffer: what a lease's memoryview exports --------------------------------- */

/* One slot's bytes, for the buffer protocol. A separate object from the lease, so that
 * the lease's memoryview does not refer back to the lease (no cycle: a dropped lease is
 * finalized at once); its strong reference to the block keeps the bytes mapped for as
 * long as any view or slice of them exists. */
typedef struct {
    PyObject_HEAD
    BlockObject *block;
    uint32_t slot;
} SlotBufferObject;

/* `self` is kept alive by the caller, and then by the Py_buffer, which holds it until
 * released; its block keeps the mapping. */
static int
SlotBuffer_getbuffer(SlotBufferObject *self, Py_buffer *buffer, int flags)
{
    nxs_view *view = &self->block->view;
    char *start = (char *)view->base + nxs_buffer_offset(view, self->slot);
    return PyBuffer_FillInfo(buffer, (PyObject *)self, start, (Py_ssize_t)view->buffer_size, 0, flags);
}

static void
SlotBuffer_dealloc(SlotBufferObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_CLEAR(self->block);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyType_Slot SlotBuffer_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, SlotBuffer_dealloc},
    {Py_bf_getbuffer, SlotBuffer_getbuffer},
    {Py_tp_doc, "The bytes of one slot of a shared block (what SharedLease.buffer views)."},
    {0, NULL},
};

static PyType_Spec SlotBuffer_spec = {
    "nexus_pool._shared_native.SlotBuffer",
    sizeof(SlotBufferObject),
    0,
    Py_TPFLAGS_DEFAULT,
    SlotBuffer_slots,
};

/* A memoryview of `slot` of `block`, or NULL.
 * `block` is kept alive by the caller; the view keeps it (through its exporter) from here on. */
static PyObject *
slot_view(BlockObject *block, uint32_t slot)
{
    SlotBufferObject *exporter = PyObject_New(SlotBufferObject, STATE(block)->slot_buffer_type);
    if (exporter == NULL)
        return NULL;
    exporter->block = (BlockObject *)Py_NewRef(block);
    exporter->slot = slot;
    PyObject *view = PyMemoryView_FromObject((PyObject *)exporter);
    Py_DECREF(exporter);
    return view;
}

/* A new lease on `slot` of `block`, held by this process, with its memoryview. On
 * failure the slot is released again. `block` is kept alive by the caller, then by the
 * lease. */
static PyObject *
new_lease(BlockObject *block, uint32_t slot, uint32_t generation)
{
    LeaseObject *lease = PyObject_GC_New(LeaseObject, STATE(block)->lease_type);
    if (lease == NULL) {
        nxs_release(&block->view, slot, generation, atomic_load(&own_pid));
        return NULL;
    }
    lease->block = (BlockObject *)Py_NewRef(block);
    lease->slot = slot;
    lease->generation = generation;
    lease->held = 1;
    lease->view = NULL;
    PyObject_GC_Track((PyObject *)lease);
    PyObject *view = slot_view(block, slot);
    if (view == NULL) {
        Py_DECREF(lease);  /* its finalizer releases the slot */
        return NULL;
    }
    lease->view = view;
    return (PyObject *)lease;
}

/* ---- Block -------------------------------------------------------------------------- */

/* Map `size` bytes of the open descriptor `fd`: the address, or NULL and OSError. */
static void *
map_descriptor(int fd, uint64_t size, int writable)
{
    void *base = mmap(NULL, (size_t)size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    return base;
}

static PyObject *
shm_path(PyObject *name)
{
    return PyUnicode_FromFormat("/%U", name);
}

/* A new Block object that owns the mapping (`base`, `view` filled). */
static PyObject *
wrap_block(PyTypeObject *type, PyObject *name, const nxs_view *view)
{
    BlockObject *block = (BlockObject *)type->tp_alloc(type, 0);
    if (block == NULL) {
        munmap(view->base, (size_t)view->mapped);
        return NULL;
    }
    block->view = *view;
    block->name = Py_NewRef(name);
    return (PyObject *)block;
}

static int
check_name(PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "name must be a str, not %s", Py_TYPE(name)->tp_name);
        return -1;
    }
    Py_ssize_t length = PyUnicode_GetLength(name);
    if (length < 1 || length > 250 || PyUnicode_FindChar(name, '/', 0, length, 1) >= 0) {
        PyErr_Format(PyExc_ValueError, "name must be 1 to 250 characters without '/', got %R", name);
        return -1;
    }
    return 0;
}

/* Block.create(name, capacity, size): a new block, every slot free; the name must not
 * exist yet. */
static PyObject *
Block_create(PyTypeObject *type, PyObject *args)
{
    PyObject *name;
    unsigned long long capacity, size;
    if (!PyArg_ParseTuple(args, "UKK:create", &name, &capacity, &size) || check_name(name) < 0)
        return NULL;
    uint64_t total = capacity > NXS_MAX_CAPACITY ? 0 : nxs_block_size((uint32_t)capacity, size);
    if (total == 0) {
        PyErr_Format(PyExc_ValueError, "capacity and size out of range: %llu buffers of %llu bytes", capacity, size);
        return NULL;
    }
    PyObject *path = shm_path(name);
    if (path == NULL)
        return NULL;
    int fd = shm_open(PyUnicode_AsUTF8(path), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, name);
        Py_DECREF(path);
        return NULL;
    }
    void *base = NULL;
    if (ftruncate(fd, (off_t)total) != 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, name);
    }
    else
        base = map_descriptor(fd, total, 1);
    close(fd);
    if (base == NULL) {
        shm_unlink(PyUnicode_AsUTF8(path));
        Py_DECREF(path);
        return NULL;
    }
    nxs_view view;
    nxs_init(&view, base, total, (uint32_t)capacity, size, atomic_load(&own_pid));
    PyObject *block = wrap_block(type, name, &view);
    if (block == NULL)
        shm_unlink(PyUnicode_AsUTF8(path));
    Py_DECREF(path);
    return block;
}

/* Map an existing block, checked (SharedBlockCorrupted if it is no block of ours or does
 * not fit its size); `writable` 0: read-only, for inspection. */
static PyObject *
open_block(PyTypeObject *type, PyObject *name, int writable)
{
    if (check_name(name) < 0)
        return NULL;
    PyObject *path = shm_path(name);
    if (path == NULL)
        return NULL;
    int fd = shm_open(PyUnicode_AsUTF8(path), writable ? O_RDWR : O_RDONLY, 0);
    Py_DECREF(path);
    if (fd < 0)
        return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, name);
    struct stat status;
    void *base = NULL;
    if (fstat(fd, &status) != 0)
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, name);
    else if (status.st_size < 1)
        PyErr_Format(state_of(type)->corrupted_error, "shared memory %R is empty: it holds no nexus_pool block", name);
    else
        base = map_descriptor(fd, (uint64_t)status.st_size, writable);
    close(fd);
    if (base == NULL)
        return NULL;
    nxs_view view;
    if (nxs_attach(&view, base, (uint64_t)status.st_size) != NXS_OK) {
        munmap(base, (size_t)status.st_size);
        PyErr_Format(state_of(type)->corrupted_error,
                     "shared memory %R holds no nexus_pool block of this version, or one that does not fit "
                     "its size", name);
        return NULL;
    }
    BlockObject *block = (BlockObject *)wrap_block(type, name, &view);
    if (block != NULL)
        block->readonly = !writable;
    return (PyObject *)block;
}

/* Block.attach(name): map an existing block to use it. */
static PyObject *
Block_attach(PyTypeObject *type, PyObject *name)
{
    return open_block(type, name, 1);
}

/* Block.inspect(name): map an existing block read-only, to look at it (operators' tools):
 * nothing done through it can write into the block. */
static PyObject *
Block_inspect(PyTypeObject *type, PyObject *name)
{
    return open_block(type, name, 0);
}

/* `self` is kept alive by this call; the mapping lives until its dealloc, and the new
 * lease keeps it. */
static PyObject *
Block_try_acquire(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_writable(self) < 0)
        return NULL;
    uint32_t cursor = atomic_load_explicit(&self->cursor, memory_order_relaxed);
    uint32_t generation = 0;
    int64_t slot = nxs_try_acquire(&self->view, atomic_load(&own_pid), &cursor, &generation);
    if (slot == NXS_NONE)
        Py_RETURN_NONE;
    if (slot < 0)
        return core_error(self, slot);
    atomic_store_explicit(&self->cursor, cursor, memory_order_relaxed);
    return new_lease(self, (uint32_t)slot, generation);
}

/* wait(seconds): sleep until a release may have freed a slot, at most that long, with
 * the GIL released. 0: look again; 1: timed out; 2: interrupted (the caller runs signal
 * handlers). ValueError if the block is closed, before or during the wait. */
static PyObject *
Block_wait(BlockObject *self, PyObject *seconds_object)
{
    double seconds = PyFloat_AsDouble(seconds_object);
    if (seconds == -1.0 && PyErr_Occurred())
        return NULL;
    if (check_writable(self) < 0)
        return NULL;
    int64_t timeout_ns = seconds < 0 ? -1 : seconds > 9e9 ? (int64_t)9e18 : (int64_t)(seconds * 1e9);
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = nxs_wait(&self->view, timeout_ns);  /* `self`, held by this call, keeps the mapping */
    Py_END_ALLOW_THREADS
    if (check_open(self) < 0)
        return NULL;
    if (result < 0)
        return core_error(self, result);
    return PyLong_FromLong(result);
}

/* `self` is kept alive by this call; the mapping lives until its dealloc, and the new
 * lease keeps it. */
static PyObject *
Block_claim(BlockObject *self, PyObject *args)
{
    unsigned int slot, generation;
    if (!PyArg_ParseTuple(args, "II:claim", &slot, &generation))
        return NULL;
    if (self->readonly)
        return PyErr_Format(PyExc_ValueError, "shared block %R was opened read-only, for inspection", self->name);
    int result = nxs_claim(&self->view, slot, generation, atomic_load(&own_pid));
    if (result == NXS_CORRUPT)
        return corrupted(self);
    if (result != NXS_OK) {
        PyErr_Format(STATE(self)->released_error,
                     "Handle(name=%R, slot=%u, generation=%u) is stale, a duplicate, or was reclaimed: it is not "
                     "in transit",
                     self->name, slot, generation);
        return NULL;
    }
    return new_lease(self, slot, generation);
}

/* `self` is kept alive by this call (the mapping lives until its dealloc). */
static PyObject *
Block_available(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_open(self) < 0)
        return NULL;
    int64_t free_slots = nxs_available(&self->view);
    return free_slots < 0 ? core_error(self, free_slots) : PyLong_FromLongLong(free_slots);
}

/* `self` is kept alive by this call (the mapping lives until its dealloc). */
static PyObject *
Block_reclaim(BlockObject *self, PyObject *max_age_object)
{
    long long max_age_ns = PyLong_AsLongLong(max_age_object);
    if (max_age_ns == -1 && PyErr_Occurred())
        return NULL;
    if (check_writable(self) < 0)
        return NULL;
    int64_t reclaimed = nxs_reclaim(&self->view, max_age_ns);
    return reclaimed < 0 ? core_error(self, reclaimed) : PyLong_FromLongLong(reclaimed);
}

/* lease_word(slot) -> (state, generation, pid, since_ns): what the block says of a slot
 * (its lease word, and the monotonic ns of its latest acquire, send or claim), for
 * introspection: reported as found, unchecked. `self` is kept alive by this call (the
 * mapping lives until its dealloc). */
static PyObject *
Block_lease_word(BlockObject *self, PyObject *slot_object)
{
    unsigned long slot = PyLong_AsUnsignedLong(slot_object);
    if (slot == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (slot >= self->view.capacity) {
        PyErr_Format(PyExc_IndexError, "slot %lu out of range (capacity %u)", slot, self->view.capacity);
        return NULL;
    }
    uint64_t lease = nxs_lease(&self->view, (uint32_t)slot);
    return Py_BuildValue("IIiK", nxs_state_of(lease), nxs_generation_of(lease), (int)nxs_pid_of(lease),
                         (unsigned long long)nxs_since(&self->view, (uint32_t)slot));
}

/* close(): pool operations raise from now on; sleepers wake and raise. The mapping
 * stays until nothing refers to this object.
 * `self` is kept alive by this call (the mapping lives until its dealloc). */
static PyObject *
Block_close(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!atomic_exchange(&self->closed, 1) && !self->readonly)
        nxs_wake_all(&self->view);
    Py_RETURN_NONE;
}

/* `self` is kept alive by this call. */
static PyObject *
Block_unlink(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *path = shm_path(self->name);
    if (path == NULL)
        return NULL;
    int result = shm_unlink(PyUnicode_AsUTF8(path));
    Py_DECREF(path);
    if (result != 0 && errno != ENOENT)
        return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, self->name);
    return PyBool_FromLong(result == 0);
}

/* `self` is kept alive by this call. */
static PyObject *
Block_get_capacity(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->view.capacity);
}

/* `self` is kept alive by this call. */
static PyObject *
Block_get_size(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->view.buffer_size);
}

/* `self` is kept alive by this call. */
static PyObject *
Block_get_creator(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(self->view.creator);
}

/* `self` is kept alive by this call. */
static PyObject *
Block_get_closed(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(atomic_load(&self->closed));
}

static PyObject *
Block_reduce_ex(PyObject *self, PyObject *Py_UNUSED(protocol))
{
    PyErr_SetString(PyExc_TypeError, "a shared block's mapping stays in its process: pass its name");
    return NULL;
}

/* `self` is kept alive by this call. */
static PyObject *
Block_repr(BlockObject *self)
{
    return PyUnicode_FromFormat("<shared block %R capacity=%u size=%llu%s>", self->name, self->view.capacity,
                                (unsigned long long)self->view.buffer_size,
                                atomic_load(&self->closed) ? " closed" : "");
}

/* The collector calls this with every thread stopped; `self` is alive until it returns. */
static int
Block_traverse(BlockObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void
Block_dealloc(BlockObject *self)
{
    /* Nothing refers to this mapping any more: no lease, no view, no running call. */
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->view.base != NULL)
        munmap(self->view.base, (size_t)self->view.mapped);
    Py_CLEAR(self->name);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef Block_methods[] = {
    {"create", (PyCFunction)Block_create, METH_VARARGS | METH_CLASS,
     "create(name, capacity, size): a new block, every slot free."},
    {"attach", (PyCFunction)Block_attach, METH_O | METH_CLASS, "attach(name): map an existing block, checked."},
    {"inspect", (PyCFunction)Block_inspect, METH_O | METH_CLASS,
     "inspect(name): map an existing block read-only, checked, to look at it."},
    {"try_acquire", (PyCFunction)Block_try_acquire, METH_NOARGS, "A lease on a free slot, or None."},
    {"wait", (PyCFunction)Block_wait, METH_O, "Sleep until a release may have freed a slot (seconds)."},
    {"claim", (PyCFunction)Block_claim, METH_VARARGS, "claim(slot, generation): the lease a handle stands for."},
    {"available", (PyCFunction)Block_available, METH_NOARGS, "Free slots now."},
    {"reclaim", (PyCFunction)Block_reclaim, METH_O, "reclaim(transit_max_age_ns): give back dead holders' slots."},
    {"lease_word", (PyCFunction)Block_lease_word, METH_O, "lease_word(slot) -> (state, generation, pid, since_ns)."},
    {"close", (PyCFunction)Block_close, METH_NOARGS, "Refuse pool operations from now on; wake the sleepers."},
    {"unlink", (PyCFunction)Block_unlink, METH_NOARGS, "Remove the block's name; whether it was there."},
    {"__reduce_ex__", (PyCFunction)Block_reduce_ex, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Block_getset[] = {
    {"capacity", (getter)Block_get_capacity, NULL, "The number of buffers.", NULL},
    {"size", (getter)Block_get_size, NULL, "The size of each buffer in bytes.", NULL},
    {"creator", (getter)Block_get_creator, NULL, "The pid of the process that made the block.", NULL},
    {"closed", (getter)Block_get_closed, NULL, "Whether close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Block_members[] = {
    {"name", T_OBJECT, offsetof(BlockObject, name), READONLY, "The block's name."},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BlockObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Block_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, Block_dealloc},
    {Py_tp_traverse, Block_traverse},
    {Py_tp_repr, Block_repr},
    {Py_tp_methods, Block_methods},
    {Py_tp_getset, Block_getset},
    {Py_tp_members, Block_members},
    {Py_tp_doc, "One mapping of a shared-memory block in this process."},
    {0, NULL},
};

static PyType_Spec Block_spec = {
    "nexus_pool._shared_native.Block",
    sizeof(BlockObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    Block_slots,
};

/* ---- module ------------------------------------------------------------------------- */

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

static int
shared_exec(PyObject *module)
{
    pthread_once(&fork_handler_once, register_fork_handler);
    nxs_state *state = PyModule_GetState(module);
    if (!(state->released_error = import_attribute("nexus_pool._errors", "ReleasedError"))
        || !(state->corrupted_error = import_attribute("nexus_pool._errors", "SharedBlockCorrupted"))
        || !(state->handle_type = import_attribute("nexus_pool._shared_handle", "Handle")))
        return -1;
    state->block_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Block_spec, NULL);
    if (state->block_type == NULL || PyModule_AddObjectRef(module, "Block", (PyObject *)state->block_type) < 0)
        return -1;
    state->slot_buffer_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &SlotBuffer_spec, NULL);
    if (state->slot_buffer_type == NULL)
        return -1;
    state->lease_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Lease_spec, NULL);
    if (state->lease_type == NULL || PyModule_AddObjectRef(module, "SharedLease", (PyObject *)state->lease_type) < 0)
        return -1;
    return 0;
}

static int
shared_traverse(PyObject *module, visitproc visit, void *arg)
{
    nxs_state *state = PyModule_GetState(module);
    if (state == NULL)
        return 0;
    Py_VISIT(state->block_type);
    Py_VISIT(state->lease_type);
    Py_VISIT(state->slot_buffer_type);
    Py_VISIT(state->released_error);
    Py_VISIT(state->corrupted_error);
    Py_VISIT(state->handle_type);
    return 0;
}

static int
shared_clear(PyObject *module)
{
    nxs_state *state = PyModule_GetState(module);
    if (state == NULL)
        return 0;
    Py_CLEAR(state->block_type);
    Py_CLEAR(state->lease_type);
    Py_CLEAR(state->slot_buffer_type);
    Py_CLEAR(state->released_error);
    Py_CLEAR(state->corrupted_error);
    Py_CLEAR(state->handle_type);
    return 0;
}

static void
shared_free(void *module)
{
    shared_clear((PyObject *)module);
}

static PyModuleDef_Slot shared_slots[] = {
    {Py_mod_exec, shared_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef shared_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "nexus_pool._shared_native",
    .m_doc = "The shared-memory pool's types (see nexus_pool/_shared.py).",
    .m_size = sizeof(nxs_state),
    .m_slots = shared_slots,
    .m_traverse = shared_traverse,
    .m_clear = shared_clear,
    .m_free = shared_free,
};

PyMODINIT_FUNC
PyInit__shared_native(void)
{
    return PyModuleDef_Init(&shared_module);
}
