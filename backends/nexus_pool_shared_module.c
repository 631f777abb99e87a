/* nexus_pool._shared_native: the shared-memory pool's Python types, over the core in
 * nexus_pool_shared.c. Mirrors nexus_pool/_shared_base.py (the public SharedBufferPool,
 * whose subclass this module's pool type is) and nexus_pool/_shared.py (receive,
 * receiver and the rest, built on these types).
 *
 * SharedBufferPool (C): one mapping of one block in this process, and this process's
 * checked copy of its geometry (nxs_view). The producer's is made by create(); a worker's
 * by attach() (and an operator's, read-only, by inspect()). It maps the block itself
 * (shm_open, mmap) and unmaps it only in its deallocator: every lease, every buffer view a
 * lease exported (a memoryview, and every slice of it) and every call running on the
 * block holds a reference to it, so the memory stays mapped for as long as anything can
 * touch it. close() only marks the block closed (its pool methods raise from then on),
 * wakes the threads sleeping in it and removes its name.
 *
 * SharedLease: one slot held by this process (acquired, taken from the work queue, or
 * claimed from a handle), with its SharedBuffer while held; release(), send() and the
 * work queue's put() end it. A lease dropped while held releases its slot.
 *
 * SharedBuffer: a slot's bytes with nexus_pool.Buffer's interface; its filled length
 * lives in the slot's record, so a worker sees what the producer filled.
 *
 * WorkQueue: the block's work queue: put() a lease (or None: a stop marker), get() one in
 * any process. Acquire, put, get and release run no Python bytecode.
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
#include <time.h>
#include <unistd.h>

#include "nexus_pool_shared.h"

#if PY_VERSION_HEX >= 0x030D0000
#define NXS_BEGIN_CRITICAL_SECTION(op) Py_BEGIN_CRITICAL_SECTION(op)
#define NXS_END_CRITICAL_SECTION() Py_END_CRITICAL_SECTION()
#else /* the GIL serialises everything a critical section would */
#define NXS_BEGIN_CRITICAL_SECTION(op) {
#define NXS_END_CRITICAL_SECTION() }
#endif

/* A blocked acquire or get sleeps on the futex in slices this long at most: signal
 * handlers (KeyboardInterrupt) run between them, and a get notices a dead producer. */
#define NXS_SLICE_NS INT64_C(50000000)

/* Before it sleeps, a blocked acquire or get spins (busy, no system call) while the other
 * side is likely to act within microseconds: a sleep and a wake-up cost the kernel tens
 * of microseconds on both sides. A thread that has just woken a sleeper does not spin:
 * the kernel may have put the woken one on its CPU. Each pool object adapts its two budgets (acquire, get)
 * to what it sees: a spin that saw the word move sets the budget to at least twice what
 * it took; a spin in vain halves it, and below a couple of microseconds stops spinning
 * but for one short probe every NXS_SPIN_PROBE_EVERY waits. So waits that always end in
 * a sleep (a worker that takes long) cost almost no CPU, and a process that has just
 * woken another does not keep the CPU the kernel may have put the woken one on. A
 * single-CPU machine never spins: the side it waits for cannot run meanwhile. */
#define NXS_SPIN_START_NS INT64_C(20000)
#define NXS_SPIN_FLOOR_NS INT64_C(2000)
#define NXS_SPIN_MAX_NS INT64_C(60000)
#define NXS_SPIN_PROBE_EVERY 16

/* ---- this process ------------------------------------------------------------------- */

/* 1 if spinning can help here: more than one CPU online (set at import). */
static int spinning_helps;

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
    spinning_helps = sysconf(_SC_NPROCESSORS_ONLN) > 1;
    refresh_pid();
    pthread_atfork(NULL, NULL, refresh_pid);
}

static int64_t
monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + (int64_t)now.tv_nsec;
}

/* ---- module state ------------------------------------------------------------------- */

typedef struct {
    PyTypeObject *pool_type;
    PyTypeObject *lease_type;
    PyTypeObject *buffer_type;
    PyTypeObject *slot_buffer_type;
    PyTypeObject *queue_type;
    PyObject *released_error;  /* nexus_pool.ReleasedError */
    PyObject *corrupted_error; /* nexus_pool.SharedBlockCorrupted */
    PyObject *shut_down_error; /* nexus_pool.PoolShutDown */
    PyObject *producer_gone;   /* nexus_pool.shared.ProducerGone */
    PyObject *empty_error;     /* queue.Empty */
    PyObject *handle_type;     /* nexus_pool.shared.Handle */
    PyObject *stats_type;      /* nexus_pool.PoolStats */
    PyObject *exhausted;       /* _shared_base.exhausted(pool, waited) -> PoolExhausted */
    PyObject *check_timeout;   /* _checks.check_timeout(timeout) -> float | None */
} nxs_state;

static inline nxs_state *
state_of(PyTypeObject *type)
{
    return (nxs_state *)PyType_GetModuleState(type);
}

#define STATE(object) state_of(Py_TYPE(object))

/* ---- objects ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD nxs_view view; /* base == NULL: not mapped (a failed constructor) */
    PyObject *name;              /* str: the block's name, without the leading slash */
    _Atomic int closed;          /* close() was called: pool operations raise */
    int readonly;                /* mapped for inspection only (inspect): nothing may write */
    int owner;                   /* made here (create): close() and the deallocator remove the name */
    _Atomic uint32_t cursor;     /* where the acquirer looks first (its own, never shared) */
    /* stats(): kept by the acquiring thread (relaxed atomics: readers are other threads) */
    _Atomic int64_t acquisitions, exhaustions, high_water, wait_ns;
    _Atomic int64_t spin_budget_ns[2];             /* indexed by NXS_ACQUIRE_WORD, NXS_QUEUE_WORD */
    _Atomic uint32_t spin_skipped[2];              /* waits without a spin since the last probe */
    _Atomic int64_t spins, spins_in_vain, spin_ns; /* what spinning cost and saved */
    PyObject *weakreflist;
} BlockObject;

typedef struct {
    PyObject_HEAD BlockObject *block; /* strong: keeps the mapping */
    uint32_t slot;
    PyObject *data; /* the memoryview over the slot, while the lease holds it */
    int valid;      /* 1 while its lease holds the slot; under its critical section */
} BufferObject;

typedef struct {
    PyObject_HEAD BlockObject *block; /* strong: keeps the mapping */
    uint32_t slot;
    uint32_t generation;
    BufferObject *buffer; /* the slot's buffer while held; NULL once ended */
} LeaseObject;

typedef struct {
    PyObject_HEAD BlockObject *block; /* strong: keeps the mapping */
    uint32_t slot;
} SlotBufferObject;

typedef struct {
    PyObject_HEAD BlockObject *block; /* strong: keeps the mapping */
} QueueObject;

static PyObject *
refuse_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwargs))
{
    PyErr_Format(PyExc_TypeError,
                 "%s objects are made by nexus_pool.shared (SharedBufferPool, receive, receiver), not directly",
                 type->tp_name);
    return NULL;
}

/* ---- errors (each: `block` is kept alive by the caller) ------------------------------ */

static PyObject *
corrupted(BlockObject *block)
{
    PyErr_Format(STATE(block)->corrupted_error,
                 "shared block %R is corrupt: its header or a slot's record holds values that no "
                 "nexus_pool process writes (another process wrote into it); it is not used any further",
                 block->name);
    return NULL;
}

static PyObject *
closed_error(BlockObject *block)
{
    PyErr_Format(PyExc_ValueError, "the shared pool %R is closed", block->name);
    return NULL;
}

static PyObject *
shut_down_error(BlockObject *block)
{
    PyErr_Format(STATE(block)->shut_down_error,
                 "the shared pool %R was shut down: it lends nothing more (releases are still accepted)", block->name);
    return NULL;
}

static PyObject *
core_error(BlockObject *block, int64_t result)
{
    if (result == NXS_CORRUPT)
        return corrupted(block);
    PyErr_Format(PyExc_SystemError, "nexus_pool.shared: unexpected result %lld", (long long)result);
    return NULL;
}

static int
check_open(BlockObject *block)
{
    if (atomic_load(&block->closed)) {
        closed_error(block);
        return -1;
    }
    return 0;
}

/* check_open(), and that the block may be written (it was not mapped for inspection). */
static int
check_writable(BlockObject *block)
{
    if (block->readonly) {
        PyErr_Format(PyExc_ValueError, "shared block %R was opened read-only, for inspection", block->name);
        return -1;
    }
    return check_open(block);
}

/* ---- SlotBuffer: what a buffer's memoryview exports ---------------------------------- */

/* One slot's bytes, for the buffer protocol. A separate object from the buffer and the
 * lease, so that the memoryview refers back to neither (no cycle: a dropped lease is
 * finalized at once); its strong reference to the block keeps the bytes mapped for as
 * long as any view or slice of them exists. `self` is kept alive by the caller, then by
 * the Py_buffer. */
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
    {Py_tp_doc, "The bytes of one slot of a shared block (what SharedBuffer.data views)."},
    {0, NULL},
};

static PyType_Spec SlotBuffer_spec = {
    "nexus_pool._shared_native.SlotBuffer", sizeof(SlotBufferObject), 0, Py_TPFLAGS_DEFAULT, SlotBuffer_slots,
};

/* A memoryview of `slot` of `block`, or NULL. `block` is kept alive by the caller; the
 * view keeps it (through its exporter) from here on. */
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

/* ---- SharedBuffer -------------------------------------------------------------------- */

static PyObject *
buffer_ended(BufferObject *buffer)
{
    if (PyErr_Occurred()) /* held_data() could not make the view */
        return NULL;
    PyErr_SetString(STATE(buffer)->released_error,
                    "this shared buffer's lease was released or sent: the buffer belongs to the pool again");
    return NULL;
}

/* A new reference to the buffer's memoryview while its lease holds it, else NULL (no
 * exception, or the exception of making the view). The view is made on first use: a
 * lease passed on without touching its bytes costs no view. `self` is kept alive by the
 * caller. */
static PyObject *
held_data(BufferObject *self)
{
    PyObject *data = NULL;
    NXS_BEGIN_CRITICAL_SECTION(self);
    if (self->valid) {
        if (self->data == NULL)
            self->data = slot_view(self->block, self->slot);
        data = Py_XNewRef(self->data);
    }
    NXS_END_CRITICAL_SECTION();
    return data;
}

/* `self` is kept alive by this call; the view returned keeps the mapping itself. */
static PyObject *
Buffer_data(BufferObject *self, void *Py_UNUSED(closure))
{
    PyObject *data = held_data(self);
    return data != NULL ? data : buffer_ended(self);
}

/* `self` is kept alive by this call. */
static PyObject *
Buffer_size(BufferObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->block->view.buffer_size);
}

/* `self` is kept alive by this call; the mapping by self->block. */
static PyObject *
Buffer_get_length(BufferObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(nxs_length(&self->block->view, self->slot));
}

/* Set the filled length (in the slot's record): `self` is kept alive by this call. */
static int
set_length(BufferObject *self, PyObject *value)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "length cannot be deleted");
        return -1;
    }
    PyObject *index = PyNumber_Index(value);
    if (index == NULL)
        return -1;
    long long length = PyLong_AsLongLong(index);
    Py_DECREF(index);
    if (length == -1 && PyErr_Occurred())
        return -1;
    uint64_t size = self->block->view.buffer_size;
    if (length < 0 || (uint64_t)length > size) {
        PyErr_Format(PyExc_ValueError, "length must be between 0 and the buffer's size %llu, got %lld",
                     (unsigned long long)size, length);
        return -1;
    }
    int valid;
    NXS_BEGIN_CRITICAL_SECTION(self);
    valid = self->valid;
    NXS_END_CRITICAL_SECTION();
    if (!valid) {
        buffer_ended(self);
        return -1;
    }
    nxs_set_length(&self->block->view, self->slot, (uint64_t)length);
    return 0;
}

static int
Buffer_set_length(BufferObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    return set_length(self, value);
}

/* data[:length], without copying. `self` is kept alive by this call. */
static PyObject *
Buffer_filled(BufferObject *self, void *Py_UNUSED(closure))
{
    PyObject *data = held_data(self);
    if (data == NULL)
        return buffer_ended(self);
    PyObject *end = PyLong_FromUnsignedLongLong(nxs_length(&self->block->view, self->slot));
    PyObject *slice = end == NULL ? NULL : PySlice_New(NULL, end, NULL);
    PyObject *filled = slice == NULL ? NULL : PyObject_GetItem(data, slice);
    Py_XDECREF(slice);
    Py_XDECREF(end);
    Py_DECREF(data);
    return filled;
}

/* Store `got` as the length and return it as an int. */
static PyObject *
filled_to(BufferObject *self, Py_ssize_t got)
{
    nxs_set_length(&self->block->view, self->slot, (uint64_t)got);
    return PyLong_FromSsize_t(got);
}

/* view[start:] as a new memoryview. */
static PyObject *
tail_of(PyObject *data, Py_ssize_t start)
{
    PyObject *first = PyLong_FromSsize_t(start);
    PyObject *slice = first == NULL ? NULL : PySlice_New(first, NULL, NULL);
    PyObject *tail = slice == NULL ? NULL : PyObject_GetItem(data, slice);
    Py_XDECREF(slice);
    Py_XDECREF(first);
    return tail;
}

/* A count returned by readinto/recv_into: >= 0, or -1 (None: nothing yet), or -2 (error). */
static Py_ssize_t
count_of(PyObject *result)
{
    if (result == NULL)
        return -2;
    if (result == Py_None) {
        Py_DECREF(result);
        return -1;
    }
    Py_ssize_t count = PyNumber_AsSsize_t(result, PyExc_OverflowError);
    Py_DECREF(result);
    if (count == -1 && PyErr_Occurred())
        return -2;
    return count < 0 ? 0 : count;
}

/* readinto(source, *, fill=True): as nexus_pool.Buffer.readinto. `self` is kept alive by
 * this call; the memoryview (held while it reads) keeps the mapping. */
static PyObject *
Buffer_readinto(BufferObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"source", "fill", NULL};
    PyObject *source;
    int fill = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$p:readinto", keywords, &source, &fill))
        return NULL;
    PyObject *data = held_data(self);
    if (data == NULL)
        return buffer_ended(self);
    Py_ssize_t size = (Py_ssize_t)self->block->view.buffer_size;
    Py_ssize_t got = count_of(PyObject_CallMethod(source, "readinto", "O", data));
    if (got == -1)
        got = 0;
    while (got > 0 && fill && got < size) {
        PyObject *tail = tail_of(data, got);
        Py_ssize_t count = tail == NULL ? -2 : count_of(PyObject_CallMethod(source, "readinto", "O", tail));
        Py_XDECREF(tail);
        if (count == -2) {
            got = -2;
            break;
        }
        if (count <= 0) /* 0: end of input; -1 (None): nothing yet, non-blocking */
            break;
        got += count;
    }
    Py_DECREF(data);
    if (got == -2)
        return NULL;
    return filled_to(self, got > size ? size : got);
}

/* recv_into(sock, *, fill=False): as nexus_pool.Buffer.recv_into. As readinto. */
static PyObject *
Buffer_recv_into(BufferObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"sock", "fill", NULL};
    PyObject *sock;
    int fill = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$p:recv_into", keywords, &sock, &fill))
        return NULL;
    PyObject *data = held_data(self);
    if (data == NULL)
        return buffer_ended(self);
    Py_ssize_t size = (Py_ssize_t)self->block->view.buffer_size, got = 0;
    while (got < size) {
        PyObject *tail = got == 0 ? Py_NewRef(data) : tail_of(data, got);
        Py_ssize_t count = tail == NULL ? -2 : count_of(PyObject_CallMethod(sock, "recv_into", "On", tail, size - got));
        Py_XDECREF(tail);
        if (count == -2) {
            Py_DECREF(data);
            return NULL;
        }
        if (count <= 0)
            break;
        got += count;
        if (!fill)
            break;
    }
    Py_DECREF(data);
    return filled_to(self, got > size ? size : got);
}

/* write(data): append after the filled part. `self` is kept alive by this call. */
static PyObject *
Buffer_write(BufferObject *self, PyObject *bytes)
{
    PyObject *data = held_data(self);
    if (data == NULL)
        return buffer_ended(self);
    Py_buffer source;
    if (PyObject_GetBuffer(bytes, &source, PyBUF_SIMPLE) < 0) {
        Py_DECREF(data);
        return NULL;
    }
    uint64_t start = nxs_length(&self->block->view, self->slot), size = self->block->view.buffer_size;
    PyObject *result = NULL;
    if ((uint64_t)source.len > size - start) {
        PyErr_Format(PyExc_ValueError, "%zd bytes do not fit: %llu of the buffer's %llu are filled", source.len,
                     (unsigned long long)start, (unsigned long long)size);
    } else {
        char *base = (char *)self->block->view.base + nxs_buffer_offset(&self->block->view, self->slot);
        memcpy(base + start, source.buf, (size_t)source.len);
        nxs_set_length(&self->block->view, self->slot, start + (uint64_t)source.len);
        result = PyLong_FromSsize_t(source.len);
    }
    PyBuffer_Release(&source);
    Py_DECREF(data);
    return result;
}

/* len(buffer): the filled length. `self` is kept alive by the caller. */
static Py_ssize_t
Buffer_len(BufferObject *self)
{
    return (Py_ssize_t)nxs_length(&self->block->view, self->slot);
}

/* `self` is kept alive by this call. */
static PyObject *
Buffer_repr(BufferObject *self)
{
    return PyUnicode_FromFormat("<SharedBuffer %llu of %llu bytes filled>",
                                (unsigned long long)nxs_length(&self->block->view, self->slot),
                                (unsigned long long)self->block->view.buffer_size);
}

static PyObject *
Buffer_reduce_ex(PyObject *self, PyObject *Py_UNUSED(protocol))
{
    PyErr_SetString(PyExc_TypeError,
                    "a SharedBuffer belongs to its pool: put its lease in the work queue, send() it, or copy "
                    "bytes(buffer.filled)");
    return NULL;
}

static void
Buffer_dealloc(BufferObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_CLEAR(self->data);
    Py_CLEAR(self->block);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef Buffer_methods[] = {
    {"readinto", (PyCFunction)(void (*)(void))Buffer_readinto, METH_VARARGS | METH_KEYWORDS,
     "Read from source into the buffer, from its start; the byte count, 0 at end of input."},
    {"recv_into", (PyCFunction)(void (*)(void))Buffer_recv_into, METH_VARARGS | METH_KEYWORDS,
     "Receive from a socket into the buffer, from its start; the byte count, 0 once closed."},
    {"write", (PyCFunction)Buffer_write, METH_O, "Append data after the filled part; ValueError if it does not fit."},
    {"__reduce_ex__", (PyCFunction)Buffer_reduce_ex, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Buffer_getset[] = {
    {"data", (getter)Buffer_data, NULL, "The whole buffer, writable (a memoryview of shared memory).", NULL},
    {"size", (getter)Buffer_size, NULL, "The fixed size in bytes.", NULL},
    {"length", (getter)Buffer_get_length, (setter)Buffer_set_length,
     "How many bytes, from the start, hold data (kept in the block: every process sees it).", NULL},
    {"filled", (getter)Buffer_filled, NULL, "The filled part, data[:length], without copying.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Buffer_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, Buffer_dealloc},
    {Py_tp_repr, Buffer_repr},
    {Py_tp_methods, Buffer_methods},
    {Py_tp_getset, Buffer_getset},
    {Py_sq_length, Buffer_len},
    {Py_tp_doc, "A shared buffer: nexus_pool.Buffer's interface over a slot of a shared block."},
    {0, NULL},
};

static PyType_Spec Buffer_spec = {
    "nexus_pool.shared.SharedBuffer", sizeof(BufferObject), 0, Py_TPFLAGS_DEFAULT, Buffer_slots,
};

/* ---- SharedLease -------------------------------------------------------------------- */

/* End the lease here: 1 if it was held (and is now ours to release, send or queue), 0 if
 * it had ended already. Its buffer stops working and the buffer's memoryview is released:
 * a view kept past this point would alias the next lease of the slot (the slices and
 * exports a user still holds keep the mapping, so they touch mapped memory, never freed
 * memory). `lease` is kept alive by the caller. */
static int
end_lease(LeaseObject *lease)
{
    BufferObject *buffer;
    NXS_BEGIN_CRITICAL_SECTION(lease);
    buffer = lease->buffer;
    lease->buffer = NULL;
    NXS_END_CRITICAL_SECTION();
    if (buffer == NULL)
        return 0;
    PyObject *data;
    NXS_BEGIN_CRITICAL_SECTION(buffer);
    buffer->valid = 0;
    data = buffer->data;
    buffer->data = NULL;
    NXS_END_CRITICAL_SECTION();
    if (data != NULL) {
        PyObject *done = PyObject_CallMethod(data, "release", NULL);
        if (done == NULL)
            PyErr_Clear(); /* exported further (numpy, memoryview(view)): those stay valid */
        Py_XDECREF(done);
        Py_DECREF(data);
    }
    Py_DECREF(buffer);
    return 1;
}

/* A new reference to the lease's buffer while held, else NULL. `self` is kept alive by
 * the caller. */
static PyObject *
held_buffer(LeaseObject *self)
{
    PyObject *buffer;
    NXS_BEGIN_CRITICAL_SECTION(self);
    buffer = Py_XNewRef((PyObject *)self->buffer);
    NXS_END_CRITICAL_SECTION();
    return buffer;
}

static PyObject *
lease_ended(LeaseObject *lease)
{
    PyErr_SetString(STATE(lease)->released_error, "this shared lease was released or sent");
    return NULL;
}

/* `self` is kept alive by this call. */
static PyObject *
Lease_value(LeaseObject *self, void *Py_UNUSED(closure))
{
    PyObject *buffer = held_buffer(self);
    return buffer != NULL ? buffer : lease_ended(self);
}

/* `self` is kept alive by this call (deprecated: value.data). */
static PyObject *
Lease_buffer(LeaseObject *self, void *Py_UNUSED(closure))
{
    if (PyErr_WarnEx(PyExc_DeprecationWarning, "SharedLease.buffer is deprecated: use .value.data (or .value)", 1) < 0)
        return NULL;
    PyObject *buffer = held_buffer(self);
    if (buffer == NULL)
        return lease_ended(self);
    PyObject *data = Buffer_data((BufferObject *)buffer, NULL);
    Py_DECREF(buffer);
    return data;
}

static PyObject *
reclaimed_error(LeaseObject *lease)
{
    PyErr_SetString(STATE(lease)->released_error, "this shared lease was reclaimed: it is no longer held here");
    return NULL;
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
    if (result != NXS_OK)
        return reclaimed_error(self);
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
    if (result != NXS_OK)
        return reclaimed_error(self);
    return PyObject_CallFunction(STATE(self)->handle_type, "OII", self->block->name, (unsigned int)self->slot,
                                 (unsigned int)self->generation);
}

static PyObject *
Lease_reduce_ex(PyObject *self, PyObject *Py_UNUSED(protocol))
{
    PyErr_SetString(PyExc_TypeError,
                    "a SharedLease stays in its process: put it in the pool's work queue, or send() it and pass "
                    "the Handle");
    return NULL;
}

/* `self` is kept alive by this call. */
static PyObject *
Lease_repr(LeaseObject *self)
{
    PyObject *buffer = held_buffer(self);
    int held = buffer != NULL;
    Py_XDECREF(buffer);
    return PyUnicode_FromFormat("<SharedLease slot=%u generation=%u %s>", (unsigned int)self->slot,
                                (unsigned int)self->generation, held ? "held" : "ended");
}

/* A lease dropped while held gives its slot back, as a dropped guard does. CPython keeps
 * `self` alive while its finalizer runs; the mapping by self->block. */
static void
Lease_finalize(LeaseObject *self)
{
    if (self->block == NULL || self->buffer == NULL)
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
    Py_VISIT(self->buffer);
    return 0;
}

static int
Lease_clear(LeaseObject *self)
{
    /* The finalizer ran first (PEP 442): a held lease gave its slot back already. `self`
     * is alive until the collector is done with it. */
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->block);
    return 0;
}

static void
Lease_dealloc(LeaseObject *self)
{
    /* Nobody refers to the lease any more; its memory is ours until tp_free. */
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* resurrected */
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
     "End the lease here; the picklable Handle a worker receives it by (through any queue)."},
    {"__exit__", (PyCFunction)(void (*)(void))Lease_release, METH_FASTCALL, "release()"},
    {"__enter__", (PyCFunction)Lease_value, METH_NOARGS, "The buffer."},
    {"__reduce_ex__", (PyCFunction)Lease_reduce_ex, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Lease_getset[] = {
    {"value", (getter)Lease_value, NULL, "The buffer (a SharedBuffer); ReleasedError once released or sent.", NULL},
    {"buffer", (getter)Lease_buffer, NULL, "Deprecated: value.data.", NULL},
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
    {Py_tp_doc, "A lease on one shared buffer: value, release(), with, send()."},
    {0, NULL},
};

static PyType_Spec Lease_spec = {
    "nexus_pool.shared.SharedLease", sizeof(LeaseObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, Lease_slots,
};

/* A new lease on `slot` of `block`, held by this process, with its buffer. On failure
 * the slot is released again. `block` is kept alive by the caller, then by the lease. */
static PyObject *
new_lease(BlockObject *block, uint32_t slot, uint32_t generation)
{
    nxs_state *state = STATE(block);
    BufferObject *buffer = PyObject_New(BufferObject, state->buffer_type);
    LeaseObject *lease = buffer == NULL ? NULL : PyObject_GC_New(LeaseObject, state->lease_type);
    if (lease == NULL) {
        if (buffer != NULL) {
            buffer->block = NULL;
            buffer->data = NULL;
            Py_DECREF(buffer);
        }
        nxs_release(&block->view, slot, generation, atomic_load(&own_pid));
        return NULL;
    }
    buffer->block = (BlockObject *)Py_NewRef(block);
    buffer->slot = slot;
    buffer->data = NULL; /* made on first use (held_data) */
    buffer->valid = 1;
    lease->block = (BlockObject *)Py_NewRef(block);
    lease->slot = slot;
    lease->generation = generation;
    lease->buffer = buffer;
    PyObject_GC_Track((PyObject *)lease);
    return (PyObject *)lease;
}

/* ---- the pool ----------------------------------------------------------------------- */

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

/* A new pool object that owns the mapping (`view` filled), made whole before anything
 * else can see it. */
static PyObject *
wrap_block(PyTypeObject *type, PyObject *name, const nxs_view *view, int owner, int readonly)
{
    BlockObject *block = (BlockObject *)type->tp_alloc(type, 0);
    if (block == NULL) {
        munmap(view->base, (size_t)view->mapped);
        return NULL;
    }
    block->view = *view;
    block->name = Py_NewRef(name);
    block->owner = owner;
    block->readonly = readonly;
    int64_t budget = spinning_helps ? NXS_SPIN_START_NS : 0;
    atomic_store(&block->spin_budget_ns[NXS_ACQUIRE_WORD], budget);
    atomic_store(&block->spin_budget_ns[NXS_QUEUE_WORD], budget);
    return (PyObject *)block;
}

/* Spin on wake word `which` (seen before the caller's last look failed) within this
 * pool's budget, the GIL released: 1 if it moved (look again), 0 if not (sleep). Adapts
 * the budget (see NXS_SPIN_START_NS). `block` is kept alive by the caller. */
static int
spin_before_sleeping(BlockObject *block, int which, uint32_t seen)
{
    if (nxs_woke_someone() || !spinning_helps)
        return 0;
    int64_t budget = atomic_load_explicit(&block->spin_budget_ns[which], memory_order_relaxed);
    if (budget <= 0) {
        uint32_t skipped = atomic_fetch_add_explicit(&block->spin_skipped[which], 1, memory_order_relaxed) + 1;
        if (skipped % NXS_SPIN_PROBE_EVERY != 0)
            return 0;
        budget = NXS_SPIN_FLOOR_NS; /* a probe: has the other side become quick? */
    }
    int64_t took;
    Py_BEGIN_ALLOW_THREADS took = nxs_spin(&block->view, which, seen, budget);
    Py_END_ALLOW_THREADS atomic_fetch_add_explicit(&block->spins, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&block->spin_ns, took >= 0 ? took : budget, memory_order_relaxed);
    if (took >= 0) {
        int64_t wanted = 2 * took + NXS_SPIN_FLOOR_NS;
        if (wanted > budget)
            budget = wanted < NXS_SPIN_MAX_NS ? wanted : NXS_SPIN_MAX_NS;
    } else {
        atomic_fetch_add_explicit(&block->spins_in_vain, 1, memory_order_relaxed);
        budget = budget / 2 >= NXS_SPIN_FLOOR_NS ? budget / 2 : 0;
    }
    atomic_store_explicit(&block->spin_budget_ns[which], budget, memory_order_relaxed);
    return took >= 0;
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

/* _create(name, capacity, size): a new block, every slot free, owned by this process (its
 * close() and its deallocator remove the name); the name must not exist yet. */
static PyObject *
Block_create(PyTypeObject *type, PyObject *args)
{
    PyObject *name;
    unsigned long long capacity, size;
    if (!PyArg_ParseTuple(args, "UKK:_create", &name, &capacity, &size) || check_name(name) < 0)
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
    if (ftruncate(fd, (off_t)total) != 0)
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, name);
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
    PyObject *block = wrap_block(type, name, &view, 1, 0);
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
                     "its size",
                     name);
        return NULL;
    }
    return wrap_block(type, name, &view, 0, !writable);
}

/* _attach(name): map an existing block to use it (a worker's). */
static PyObject *
Block_attach(PyTypeObject *type, PyObject *name)
{
    return open_block(type, name, 1);
}

/* _inspect(name): map an existing block read-only, to look at it (operators' tools):
 * nothing done through it can write into the block. */
static PyObject *
Block_inspect(PyTypeObject *type, PyObject *name)
{
    return open_block(type, name, 0);
}

/* Count an acquisition for stats(). `block` is kept alive by the caller. */
static void
count_acquisition(BlockObject *block)
{
    atomic_fetch_add_explicit(&block->acquisitions, 1, memory_order_relaxed);
    int64_t free_slots = nxs_available(&block->view);
    int64_t in_use = free_slots < 0 ? 0 : (int64_t)block->view.capacity - free_slots;
    if (in_use > atomic_load_explicit(&block->high_water, memory_order_relaxed))
        atomic_store_explicit(&block->high_water, in_use, memory_order_relaxed);
}

/* One attempt: a new lease, NULL with no exception if none is free, NULL with one. `block`
 * is kept alive by the caller; the new lease keeps it. */
static PyObject *
take_free(BlockObject *block)
{
    if (nxs_is_shutdown(&block->view))
        return shut_down_error(block);
    uint32_t cursor = atomic_load_explicit(&block->cursor, memory_order_relaxed);
    uint32_t generation = 0;
    int64_t slot = nxs_try_acquire(&block->view, atomic_load(&own_pid), &cursor, &generation);
    if (slot == NXS_NONE)
        return NULL;
    if (slot < 0)
        return core_error(block, slot);
    atomic_store_explicit(&block->cursor, cursor, memory_order_relaxed);
    PyObject *lease = new_lease(block, (uint32_t)slot, generation);
    if (lease != NULL)
        count_acquisition(block);
    return lease;
}

/* `self` is kept alive by this call; the mapping lives until its dealloc, and the new
 * lease keeps it. */
static PyObject *
Block_try_acquire(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_writable(self) < 0)
        return NULL;
    PyObject *lease = take_free(self);
    if (lease == NULL && !PyErr_Occurred()) {
        atomic_fetch_add_explicit(&self->exhaustions, 1, memory_order_relaxed);
        Py_RETURN_NONE;
    }
    return lease;
}

/* `timeout` (None: no limit) as ns to wait (-1: no limit), and 0 or -1 with an exception.
 * *zero tells timeout == 0. */
static int
read_timeout(nxs_state *state, PyObject *timeout, int64_t *wait_ns)
{
    *wait_ns = -1;
    if (timeout == Py_None)
        return 0;
    PyObject *checked = PyObject_CallOneArg(state->check_timeout, timeout);
    if (checked == NULL)
        return -1;
    if (checked != Py_None) {
        double seconds = PyFloat_AsDouble(checked);
        *wait_ns = seconds >= 9.2e9 ? INT64_MAX : (int64_t)(seconds * 1e9);
    }
    Py_DECREF(checked);
    return 0;
}

/* Raise PoolExhausted naming the holders; `waited` is the timeout as given (NULL: did not
 * wait). `self` is kept alive by the caller. */
static PyObject *
exhausted_error(BlockObject *self, PyObject *waited)
{
    PyObject *error =
        PyObject_CallFunction(STATE(self)->exhausted, "OO", (PyObject *)self, waited == NULL ? Py_None : waited);
    if (error == NULL)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(error), error);
    Py_DECREF(error);
    return NULL;
}

/* acquire(timeout=None): a lease, waiting on the block's futex (no spinning) in slices
 * with the GIL released, signal handlers run between them. `self` is kept alive by this
 * call (and so its mapping, while a thread sleeps in it). */
static PyObject *
Block_acquire(BlockObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:acquire", keywords, &timeout))
        return NULL;
    if (check_writable(self) < 0)
        return NULL;
    int64_t wait_ns;
    if (read_timeout(STATE(self), timeout, &wait_ns) < 0)
        return NULL;
    uint32_t seen = nxs_word(&self->view, NXS_ACQUIRE_WORD);
    PyObject *lease = take_free(self);
    if (lease != NULL || PyErr_Occurred())
        return lease;
    atomic_fetch_add_explicit(&self->exhaustions, 1, memory_order_relaxed);
    if (wait_ns == 0)
        return exhausted_error(self, NULL);
    int64_t started = monotonic_ns();
    int64_t deadline = wait_ns < 0 ? INT64_MAX : started + wait_ns;
    for (;;) {
        int64_t now = monotonic_ns();
        if (now >= deadline) {
            lease = exhausted_error(self, timeout);
            break;
        }
        if (spin_before_sleeping(self, NXS_ACQUIRE_WORD, seen)) {
            seen = nxs_word(&self->view, NXS_ACQUIRE_WORD);
            if (PyErr_CheckSignals() < 0 || check_open(self) < 0)
                break;
            lease = take_free(self);
            if (lease != NULL || PyErr_Occurred())
                break;
            continue;
        }
        int64_t slice = deadline - now < NXS_SLICE_NS ? deadline - now : NXS_SLICE_NS;
        int result;
        Py_BEGIN_ALLOW_THREADS result = nxs_wait(&self->view, slice);
        Py_END_ALLOW_THREADS if (result < 0)
        {
            lease = core_error(self, result);
            break;
        }
        if (PyErr_CheckSignals() < 0 || check_open(self) < 0)
            break;
        seen = nxs_word(&self->view, NXS_ACQUIRE_WORD);
        lease = take_free(self);
        if (lease != NULL || PyErr_Occurred())
            break;
    }
    atomic_fetch_add_explicit(&self->wait_ns, monotonic_ns() - started, memory_order_relaxed);
    return lease;
}

/* _wait(seconds): sleep until a release may have freed a slot, at most that long, with
 * the GIL released (acquire_async's executor thread). 0: look again; 1: timed out; 2:
 * interrupted. `self`, held by this call, keeps the mapping. */
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
    Py_BEGIN_ALLOW_THREADS result = nxs_wait(&self->view, timeout_ns);
    Py_END_ALLOW_THREADS if (check_open(self) < 0) return NULL;
    if (result < 0)
        return core_error(self, result);
    return PyLong_FromLong(result);
}

/* _claim(slot, generation): the lease a handle stands for. `self` is kept alive by this
 * call; the new lease keeps the mapping. */
static PyObject *
Block_claim(BlockObject *self, PyObject *args)
{
    unsigned int slot, generation;
    if (!PyArg_ParseTuple(args, "II:_claim", &slot, &generation))
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

/* reclaim(transit_max_age=None). `self` is kept alive by this call. */
static PyObject *
Block_reclaim(BlockObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"transit_max_age", NULL};
    PyObject *max_age = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:reclaim", keywords, &max_age))
        return NULL;
    int64_t max_age_ns = -1;
    if (max_age != Py_None) {
        double seconds = PyFloat_AsDouble(max_age);
        if (seconds == -1.0 && PyErr_Occurred())
            return NULL;
        if (!(seconds >= 0)) {
            PyErr_Format(PyExc_ValueError, "transit_max_age must be >= 0 seconds or None, got %R", max_age);
            return NULL;
        }
        max_age_ns = seconds > 9e9 ? INT64_MAX : (int64_t)(seconds * 1e9);
    }
    if (check_writable(self) < 0)
        return NULL;
    int64_t reclaimed = nxs_reclaim(&self->view, max_age_ns);
    return reclaimed < 0 ? core_error(self, reclaimed) : PyLong_FromLongLong(reclaimed);
}

/* stats() -> PoolStats. `self` is kept alive by this call. */
static PyObject *
Block_stats(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_open(self) < 0)
        return NULL;
    int64_t free_slots = nxs_available(&self->view);
    if (free_slots < 0)
        return core_error(self, free_slots);
    int64_t now = monotonic_ns(), oldest = -1;
    for (uint32_t slot = 0; slot < self->view.capacity; slot++) {
        if (nxs_state_of(nxs_lease(&self->view, slot)) != NXS_FREE) {
            int64_t held = now - (int64_t)nxs_since(&self->view, slot);
            if (held > oldest)
                oldest = held;
        }
    }
    PyObject *oldest_held = oldest < 0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(oldest / 1e9);
    if (oldest_held == NULL)
        return NULL;
    return PyObject_CallFunction(
        STATE(self)->stats_type, "IlLLLdN", (unsigned int)self->view.capacity, (long)(self->view.capacity - free_slots),
        (long long)atomic_load(&self->high_water), (long long)atomic_load(&self->acquisitions),
        (long long)atomic_load(&self->exhaustions), atomic_load(&self->wait_ns) / 1e9, oldest_held);
}

/* shutdown(): every process sees it; sleepers wake. `self` is kept alive by this call. */
static PyObject *
Block_shutdown(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_writable(self) < 0)
        return NULL;
    nxs_shutdown(&self->view);
    Py_RETURN_NONE;
}

/* lease_word(slot) -> (state, generation, pid, since_ns): what the block says of a slot
 * (its lease word, and the monotonic ns of its latest hand-over), for introspection,
 * reported as found. `self` is kept alive by this call (the mapping lives until its
 * dealloc). */
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

/* Remove the block's name; whether it was there. `self` is kept alive by the caller. */
static int
unlink_name(BlockObject *self)
{
    PyObject *path = shm_path(self->name);
    if (path == NULL)
        return -1;
    int result = shm_unlink(PyUnicode_AsUTF8(path));
    Py_DECREF(path);
    if (result != 0 && errno != ENOENT) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, self->name);
        return -1;
    }
    return result == 0;
}

/* close(): pool operations raise from now on; sleepers of this process wake and raise;
 * the producer's block loses its name. The mapping stays until nothing refers to this
 * object. `self` is kept alive by this call. */
static PyObject *
Block_close(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (atomic_exchange(&self->closed, 1))
        Py_RETURN_NONE;
    if (!self->readonly)
        nxs_wake_all(&self->view);
    if (self->owner && unlink_name(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* `self` is kept alive by this call. */
static PyObject *
Block_get_name(BlockObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static PyObject *
Block_get_capacity(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->view.capacity);
}

static PyObject *
Block_get_size(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->view.buffer_size);
}

static PyObject *
Block_get_creator(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(self->view.creator);
}

static PyObject *
Block_get_closed(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(atomic_load(&self->closed));
}

static PyObject *
Block_get_is_shutdown(BlockObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(nxs_is_shutdown(&self->view));
}

/* The block's work queue (a new WorkQueue object, cheap: it holds the block). `self` is
 * kept alive by this call, then by the queue. */
static PyObject *
Block_get_queue(BlockObject *self, void *Py_UNUSED(closure))
{
    QueueObject *queue = PyObject_New(QueueObject, STATE(self)->queue_type);
    if (queue == NULL)
        return NULL;
    queue->block = (BlockObject *)Py_NewRef(self);
    return (PyObject *)queue;
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
    /* Nothing refers to this mapping any more: no lease, no view, no queue, no running
     * call. A producer's block dropped without close() loses its name here. */
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->owner && !atomic_load(&self->closed) && self->name != NULL) {
        PyObject *type_, *value, *traceback;
        PyErr_Fetch(&type_, &value, &traceback);
        if (unlink_name(self) < 0)
            PyErr_Clear();
        PyErr_Restore(type_, value, traceback);
    }
    if (self->view.base != NULL)
        munmap(self->view.base, (size_t)self->view.mapped);
    Py_CLEAR(self->name);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef Block_methods[] = {
    {"_create", (PyCFunction)Block_create, METH_VARARGS | METH_CLASS,
     "_create(name, capacity, size): a new block, every slot free."},
    {"_attach", (PyCFunction)Block_attach, METH_O | METH_CLASS, "_attach(name): map an existing block, checked."},
    {"_inspect", (PyCFunction)Block_inspect, METH_O | METH_CLASS,
     "_inspect(name): map an existing block read-only, checked, to look at it."},
    {"try_acquire", (PyCFunction)Block_try_acquire, METH_NOARGS, "A lease on a free buffer, or None at once."},
    {"acquire", (PyCFunction)(void (*)(void))Block_acquire, METH_VARARGS | METH_KEYWORDS,
     "A lease, waiting (futex, no spinning) up to timeout seconds for a release."},
    {"_wait", (PyCFunction)Block_wait, METH_O, "Sleep until a release may have freed a buffer (seconds)."},
    {"_claim", (PyCFunction)Block_claim, METH_VARARGS, "_claim(slot, generation): the lease a handle stands for."},
    {"available", (PyCFunction)Block_available, METH_NOARGS, "Free buffers now (a snapshot)."},
    {"reclaim", (PyCFunction)(void (*)(void))Block_reclaim, METH_VARARGS | METH_KEYWORDS,
     "Give back the buffers of processes that died (and, with transit_max_age, stuck ones). How many."},
    {"stats", (PyCFunction)Block_stats, METH_NOARGS, "A snapshot of this pool's counters (a PoolStats)."},
    {"shutdown", (PyCFunction)Block_shutdown, METH_NOARGS,
     "Lend nothing more (every process sees it); releases and takes go on."},
    {"lease_word", (PyCFunction)Block_lease_word, METH_O, "lease_word(slot) -> (state, generation, pid, since_ns)."},
    {"close", (PyCFunction)Block_close, METH_NOARGS, "Close the pool (and remove the producer's block name)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Block_getset[] = {
    {"name", (getter)Block_get_name, NULL, "The block's name: what handles carry, and what workers attach by.", NULL},
    {"capacity", (getter)Block_get_capacity, NULL, "The number of buffers.", NULL},
    {"size", (getter)Block_get_size, NULL, "The size of each buffer in bytes.", NULL},
    {"creator", (getter)Block_get_creator, NULL, "The pid of the process that made the block.", NULL},
    {"closed", (getter)Block_get_closed, NULL, "Whether close() was called.", NULL},
    {"is_shutdown", (getter)Block_get_is_shutdown, NULL, "Whether shutdown() was called (by any process).", NULL},
    {"queue", (getter)Block_get_queue, NULL, "The block's work queue: put(lease), get().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Block_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BlockObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Block_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, Block_dealloc},
    {Py_tp_traverse, Block_traverse},
    {Py_tp_methods, Block_methods},
    {Py_tp_getset, Block_getset},
    {Py_tp_members, Block_members},
    {Py_tp_doc, "A shared-memory buffer pool's block, mapped in this process (the C implementation)."},
    {0, NULL},
};

static PyType_Spec Block_spec = {
    "nexus_pool._shared_native.SharedBufferPool", sizeof(BlockObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,      Block_slots,
};

/* ---- WorkQueue ---------------------------------------------------------------------- */

/* put(lease or None): queue a lease held by this process (it ends here), or a stop
 * marker. `self` is kept alive by this call; the lease's block by the lease. */
static PyObject *
Queue_put(QueueObject *self, PyObject *item)
{
    BlockObject *block = self->block;
    if (check_writable(block) < 0)
        return NULL;
    if (item == Py_None) {
        nxs_stop(&block->view);
        Py_RETURN_NONE;
    }
    nxs_state *state = STATE(self);
    if (!Py_IS_TYPE(item, state->lease_type)) {
        PyErr_Format(PyExc_TypeError, "put() takes a SharedLease or None, not %s", Py_TYPE(item)->tp_name);
        return NULL;
    }
    LeaseObject *lease = (LeaseObject *)item;
    if (lease->block->view.base != block->view.base && PyUnicode_Compare(lease->block->name, block->name) != 0) {
        PyErr_Format(PyExc_ValueError, "this lease belongs to shared block %R, not to %R", lease->block->name,
                     block->name);
        return NULL;
    }
    if (!end_lease(lease)) {
        PyErr_SetString(state->released_error, "this shared lease was released or sent already");
        return NULL;
    }
    int result = nxs_queue(&lease->block->view, lease->slot, lease->generation, atomic_load(&own_pid));
    if (result == NXS_CORRUPT)
        return corrupted(lease->block);
    if (result != NXS_OK)
        return reclaimed_error(lease);
    Py_RETURN_NONE;
}

/* get(timeout=None): the next queued lease, now held by this process; None for a stop
 * marker, or once the pool is shut down and nothing is left; queue.Empty after timeout;
 * ProducerGone if the producer died and nothing is left. Sleeps on the block's futex in
 * slices, with the GIL released. `self` is kept alive by this call (and so the mapping,
 * while a thread sleeps in it). */
static PyObject *
queue_get(QueueObject *self, int64_t wait_ns)
{
    BlockObject *block = self->block;
    nxs_state *state = STATE(self);
    int64_t deadline = wait_ns < 0 ? INT64_MAX : monotonic_ns() + wait_ns;
    for (;;) {
        if (check_writable(block) < 0)
            return NULL;
        uint32_t seen = nxs_word(&block->view, NXS_QUEUE_WORD);
        uint32_t generation = 0;
        int64_t slot = nxs_take(&block->view, atomic_load(&own_pid), &generation);
        if (slot >= 0)
            return new_lease(block, (uint32_t)slot, generation);
        if (slot != NXS_NONE)
            return core_error(block, slot);
        if (nxs_take_stop(&block->view) || nxs_is_shutdown(&block->view))
            Py_RETURN_NONE;
        int64_t now = monotonic_ns();
        if (now < deadline && spin_before_sleeping(block, NXS_QUEUE_WORD, seen)) {
            if (PyErr_CheckSignals() < 0)
                return NULL;
            continue;
        }
        if (!nxs_process_alive(block->view.creator)) {
            PyErr_Format(state->producer_gone, "the process that made shared block %R has died", block->name);
            return NULL;
        }
        now = monotonic_ns();
        if (now >= deadline) {
            PyErr_SetNone(state->empty_error);
            return NULL;
        }
        int64_t slice = deadline - now < NXS_SLICE_NS ? deadline - now : NXS_SLICE_NS;
        int result;
        Py_BEGIN_ALLOW_THREADS result = nxs_wait_queued(&block->view, slice);
        Py_END_ALLOW_THREADS if (result < 0) return core_error(block, result);
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

static PyObject *
Queue_get(QueueObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:get", keywords, &timeout))
        return NULL;
    int64_t wait_ns;
    if (read_timeout(STATE(self), timeout, &wait_ns) < 0)
        return NULL;
    return queue_get(self, wait_ns);
}

static PyObject *
Queue_iter(QueueObject *self)
{
    return Py_NewRef((PyObject *)self);
}

/* The next lease, up to a stop marker (or the pool's shutdown). */
static PyObject *
Queue_next(QueueObject *self)
{
    PyObject *lease = queue_get(self, -1);
    if (lease == Py_None) {
        Py_DECREF(lease);
        return NULL; /* StopIteration */
    }
    return lease;
}

/* `self` is kept alive by this call. */
static PyObject *
Queue_repr(QueueObject *self)
{
    return PyUnicode_FromFormat("<nexus_pool.shared.WorkQueue of %R>", self->block->name);
}

static PyObject *
Queue_reduce_ex(PyObject *self, PyObject *Py_UNUSED(protocol))
{
    PyErr_SetString(PyExc_TypeError,
                    "a WorkQueue is a view of its block in this process: pass the pool's name, and call "
                    "nexus_pool.shared.receiver(name) in the worker");
    return NULL;
}

static void
Queue_dealloc(QueueObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_CLEAR(self->block);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef Queue_methods[] = {
    {"put", (PyCFunction)Queue_put, METH_O,
     "Queue a lease held here (it ends here: a worker takes it), or None: a stop marker."},
    {"get", (PyCFunction)(void (*)(void))Queue_get, METH_VARARGS | METH_KEYWORDS,
     "The next queued lease (held here now); None for a stop marker or a shut-down pool drained; "
     "queue.Empty after timeout; ProducerGone if its producer died."},
    {"__reduce_ex__", (PyCFunction)Queue_reduce_ex, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Queue_slots[] = {
    {Py_tp_new, refuse_new},
    {Py_tp_dealloc, Queue_dealloc},
    {Py_tp_repr, Queue_repr},
    {Py_tp_iter, Queue_iter},
    {Py_tp_iternext, Queue_next},
    {Py_tp_methods, Queue_methods},
    {Py_tp_doc, "A shared block's work queue: put leases in, get them out, in any process."},
    {0, NULL},
};

static PyType_Spec Queue_spec = {
    "nexus_pool.shared.WorkQueue", sizeof(QueueObject), 0, Py_TPFLAGS_DEFAULT, Queue_slots,
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
add_type(PyObject *module, PyTypeObject **slot, PyType_Spec *spec, PyObject *base, const char *public_name)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, base);
    if (*slot == NULL)
        return -1;
    return public_name == NULL ? 0 : PyModule_AddObjectRef(module, public_name, (PyObject *)*slot);
}

static int
shared_exec(PyObject *module)
{
    pthread_once(&fork_handler_once, register_fork_handler);
    nxs_state *state = PyModule_GetState(module);
    PyObject *pool_base = NULL;
    if (!(state->released_error = import_attribute("nexus_pool._errors", "ReleasedError")) ||
        !(state->corrupted_error = import_attribute("nexus_pool._errors", "SharedBlockCorrupted")) ||
        !(state->shut_down_error = import_attribute("nexus_pool._errors", "PoolShutDown")) ||
        !(state->producer_gone = import_attribute("nexus_pool._errors", "ProducerGone")) ||
        !(state->empty_error = import_attribute("queue", "Empty")) ||
        !(state->handle_type = import_attribute("nexus_pool._shared_handle", "Handle")) ||
        !(state->stats_type = import_attribute("nexus_pool._stats", "PoolStats")) ||
        !(state->exhausted = import_attribute("nexus_pool._shared_base", "exhausted")) ||
        !(state->check_timeout = import_attribute("nexus_pool._checks", "check_timeout")) ||
        !(pool_base = import_attribute("nexus_pool._shared_base", "SharedBufferPool")))
        return -1;
    int failed = add_type(module, &state->pool_type, &Block_spec, pool_base, "SharedBufferPool") < 0 ||
                 add_type(module, &state->slot_buffer_type, &SlotBuffer_spec, NULL, NULL) < 0 ||
                 add_type(module, &state->buffer_type, &Buffer_spec, NULL, "SharedBuffer") < 0 ||
                 add_type(module, &state->lease_type, &Lease_spec, NULL, "SharedLease") < 0 ||
                 add_type(module, &state->queue_type, &Queue_spec, NULL, "WorkQueue") < 0;
    Py_DECREF(pool_base);
    return failed ? -1 : 0;
}

static int
shared_traverse(PyObject *module, visitproc visit, void *arg)
{
    nxs_state *state = PyModule_GetState(module);
    if (state == NULL)
        return 0;
    Py_VISIT(state->pool_type);
    Py_VISIT(state->lease_type);
    Py_VISIT(state->buffer_type);
    Py_VISIT(state->slot_buffer_type);
    Py_VISIT(state->queue_type);
    Py_VISIT(state->released_error);
    Py_VISIT(state->corrupted_error);
    Py_VISIT(state->shut_down_error);
    Py_VISIT(state->producer_gone);
    Py_VISIT(state->empty_error);
    Py_VISIT(state->handle_type);
    Py_VISIT(state->stats_type);
    Py_VISIT(state->exhausted);
    Py_VISIT(state->check_timeout);
    return 0;
}

/* Only the collector calls this, when the module is unreachable, and with it its types
 * and every object of theirs. */
static int
shared_clear(PyObject *module)
{
    nxs_state *state = PyModule_GetState(module);
    if (state == NULL)
        return 0;
    Py_CLEAR(state->pool_type);
    Py_CLEAR(state->lease_type);
    Py_CLEAR(state->buffer_type);
    Py_CLEAR(state->slot_buffer_type);
    Py_CLEAR(state->queue_type);
    Py_CLEAR(state->released_error);
    Py_CLEAR(state->corrupted_error);
    Py_CLEAR(state->shut_down_error);
    Py_CLEAR(state->producer_gone);
    Py_CLEAR(state->empty_error);
    Py_CLEAR(state->handle_type);
    Py_CLEAR(state->stats_type);
    Py_CLEAR(state->exhausted);
    Py_CLEAR(state->check_timeout);
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
    .m_doc = "The shared-memory pool's types (see nexus_pool/_shared_base.py and nexus_pool/_shared.py).",
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
