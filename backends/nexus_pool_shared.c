/* nexus_pool's shared-memory buffer pool core (see nexus_pool_shared.h).
 *
 * Linux: the blocking wait is a futex on a word in the block (shared, not private:
 * other processes wake it). Sleeper protocol: the acquirer counts itself a sleeper,
 * reads the wake word, looks for a free slot once more, and sleeps only if the word has
 * not moved; a release frees its slot, bumps the word, and calls the kernel only when
 * someone sleeps. All of these are sequentially consistent, so one of the two sees the
 * other.
 *
 * Every pointer into the block is made from this process's nxs_view: base plus an
 * offset computed from the view's own (checked) fields and an index checked against
 * the view's capacity. Values read from the block are never used as sizes or offsets.
 * The mapping at view->base must stay mapped for the whole of every call: the callers
 * see to it (in Python, the Block object that owns the mapping is held by each call).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "nexus_pool_shared.h"

#define NXS_MAGIC UINT64_C(0x324d485350584e4e) /* "NNXPSHM2" */
#define NXS_VERSION 2u
#define NXS_LINE 64u
#define NXS_PAGE 4096u

typedef struct {
    _Alignas(NXS_LINE) _Atomic uint64_t lease;  /* generation << 32 | state << 30 | pid */
    _Atomic uint64_t since;                     /* monotonic ns of the latest acquire, send, claim */
} nxs_slot;

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t capacity;
    uint64_t buffer_size;
    uint64_t buffers_offset;
    int32_t creator;
    _Alignas(NXS_LINE) _Atomic uint32_t hint;   /* index + 1 of the latest released slot; 0: none */
    _Alignas(NXS_LINE) _Atomic uint32_t wake_word;
    _Atomic uint32_t sleepers;
    _Alignas(NXS_LINE) nxs_slot slots[];
} nxs_header;

_Static_assert(sizeof(nxs_slot) == NXS_LINE, "one cache line per slot record");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "64-bit atomics");
_Static_assert(sizeof(nxs_header) % NXS_LINE == 0, "slot records start on a line");

/* ---- crash points (test builds) ----------------------------------------------------- */

#ifdef NXS_CRASH_POINTS
static int crash_point;

void nxs_set_crash_point(int point) { crash_point = point; }

/* Step n of an operation: a test build can die here, as a process killed at that
 * instruction would. */
#  define NXS_STEP(n)                     \
    do {                                  \
        if (crash_point == (n))           \
            raise(SIGKILL);               \
    } while (0)
#else
#  define NXS_STEP(n) ((void)(n))
#endif

/* ---- lease words -------------------------------------------------------------------- */

static inline uint64_t pack(uint32_t generation, uint32_t state, int32_t pid)
{
    return ((uint64_t)generation << 32) | ((uint64_t)state << 30) | ((uint64_t)pid & 0x3fffffffu);
}
uint32_t nxs_generation_of(uint64_t lease) { return (uint32_t)(lease >> 32); }
uint32_t nxs_state_of(uint64_t lease) { return (uint32_t)(lease >> 30) & 3u; }
int32_t nxs_pid_of(uint64_t lease) { return (int32_t)(lease & 0x3fffffffu); }

static inline int valid_state(uint64_t lease) { return nxs_state_of(lease) <= NXS_TRANSIT; }

/* ---- geometry ----------------------------------------------------------------------- */

static uint64_t records_end(uint32_t capacity)
{
    uint64_t records = sizeof(nxs_header) + (uint64_t)capacity * sizeof(nxs_slot);
    return (records + NXS_PAGE - 1) / NXS_PAGE * NXS_PAGE;
}

static uint64_t stride_of(uint64_t buffer_size)
{
    return (buffer_size + NXS_PAGE - 1) / NXS_PAGE * NXS_PAGE;
}

uint64_t nxs_block_size(uint32_t capacity, uint64_t buffer_size)
{
    if (capacity < 1 || capacity > NXS_MAX_CAPACITY || buffer_size < 1 || buffer_size > NXS_MAX_BUFFER_SIZE)
        return 0;
    return records_end(capacity) + (uint64_t)capacity * stride_of(buffer_size);
}

static void fill_view(nxs_view *view, void *base, uint64_t mapped, uint32_t capacity, uint64_t buffer_size,
                      int32_t creator)
{
    view->base = base;
    view->mapped = mapped;
    view->capacity = capacity;
    view->buffer_size = buffer_size;
    view->stride = stride_of(buffer_size);
    view->buffers_offset = records_end(capacity);
    view->creator = creator;
}

/* The header and slot records, through the view: the view was checked to cover them. */
static inline nxs_header *header(const nxs_view *view) { return (nxs_header *)view->base; }
static inline nxs_slot *record(const nxs_view *view, uint32_t slot) { return &header(view)->slots[slot]; }

int nxs_init(nxs_view *view, void *base, uint64_t mapped, uint32_t capacity, uint64_t buffer_size, int32_t creator)
{
    uint64_t needed = nxs_block_size(capacity, buffer_size);
    if (needed == 0 || needed > mapped)
        return NXS_NONE;
    nxs_header *block = base;
    block->capacity = capacity;
    block->buffer_size = buffer_size;
    block->buffers_offset = records_end(capacity);
    block->creator = creator;
    for (uint32_t slot = 0; slot < capacity; slot++) {
        atomic_init(&block->slots[slot].lease, pack(0, NXS_FREE, 0));
        atomic_init(&block->slots[slot].since, 0);
    }
    atomic_init(&block->hint, 0);
    atomic_init(&block->wake_word, 0);
    atomic_init(&block->sleepers, 0);
    block->version = NXS_VERSION;
    atomic_thread_fence(memory_order_release);
    block->magic = NXS_MAGIC; /* last: a block is valid once its magic is there */
    fill_view(view, base, mapped, capacity, buffer_size, creator);
    return NXS_OK;
}

int nxs_attach(nxs_view *view, void *base, uint64_t mapped)
{
    if (mapped < sizeof(nxs_header))
        return NXS_CORRUPT;
    /* One read of each field, into locals: the block may change under us. */
    volatile nxs_header *block = base;
    uint64_t magic = block->magic;
    atomic_thread_fence(memory_order_acquire);
    uint32_t version = block->version;
    uint32_t capacity = block->capacity;
    uint64_t buffer_size = block->buffer_size;
    uint64_t buffers_offset = block->buffers_offset;
    int32_t creator = block->creator;
    if (magic != NXS_MAGIC || version != NXS_VERSION)
        return NXS_CORRUPT;
    uint64_t needed = nxs_block_size(capacity, buffer_size);
    if (needed == 0 || needed > mapped || buffers_offset != records_end(capacity))
        return NXS_CORRUPT;
    fill_view(view, base, mapped, capacity, buffer_size, creator);
    return NXS_OK;
}

int nxs_check(const nxs_view *view)
{
    volatile nxs_header *block = header(view);
    if (block->magic != NXS_MAGIC || block->version != NXS_VERSION || block->capacity != view->capacity
        || block->buffer_size != view->buffer_size || block->buffers_offset != view->buffers_offset)
        return NXS_CORRUPT;
    return NXS_OK;
}

uint64_t nxs_buffer_offset(const nxs_view *view, uint32_t slot)
{
    return view->buffers_offset + (uint64_t)slot * view->stride;
}

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* ---- acquiring ---------------------------------------------------------------------- */

/* Take `slot` if it is free: 1 and *generation; 0 if not free; NXS_CORRUPT. */
static int take_if_free(const nxs_view *view, uint32_t slot, int32_t pid, uint32_t *generation)
{
    nxs_slot *entry = record(view, slot);
    uint64_t lease = atomic_load_explicit(&entry->lease, memory_order_acquire);
    if (!valid_state(lease))
        return NXS_CORRUPT;
    if (nxs_state_of(lease) != NXS_FREE)
        return 0;
    uint32_t next = nxs_generation_of(lease) + 1;
    NXS_STEP(11);
    if (!atomic_compare_exchange_strong_explicit(&entry->lease, &lease, pack(next, NXS_HELD, pid),
                                                 memory_order_acq_rel, memory_order_acquire))
        return 0; /* taken meanwhile (another acquirer, or reclaim): look further */
    NXS_STEP(12);
    atomic_store_explicit(&entry->since, monotonic_ns(), memory_order_relaxed);
    NXS_STEP(13);
    *generation = next;
    return 1;
}

int64_t nxs_try_acquire(const nxs_view *view, int32_t pid, uint32_t *cursor, uint32_t *generation)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    uint32_t capacity = view->capacity;
    uint32_t hint = atomic_load_explicit(&header(view)->hint, memory_order_relaxed);
    if (hint >= 1 && hint <= capacity) { /* the block says so: checked before use */
        int taken = take_if_free(view, hint - 1, pid, generation);
        if (taken != 0)
            return taken < 0 ? taken : (int64_t)(hint - 1);
    }
    uint32_t start = *cursor < capacity ? *cursor : 0;
    for (uint32_t step = 0; step < capacity; step++) {
        uint32_t slot = start + step < capacity ? start + step : start + step - capacity;
        int taken = take_if_free(view, slot, pid, generation);
        if (taken < 0)
            return taken;
        if (taken) {
            *cursor = slot + 1 < capacity ? slot + 1 : 0;
            return slot;
        }
    }
    return NXS_NONE;
}

int64_t nxs_available(const nxs_view *view)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    int64_t free_slots = 0;
    for (uint32_t slot = 0; slot < view->capacity; slot++) {
        uint64_t lease = atomic_load_explicit(&record(view, slot)->lease, memory_order_relaxed);
        if (!valid_state(lease))
            return NXS_CORRUPT;
        free_slots += nxs_state_of(lease) == NXS_FREE;
    }
    return free_slots;
}

int nxs_wait(const nxs_view *view, int64_t timeout_ns)
{
    nxs_header *block = header(view);
    atomic_fetch_add(&block->sleepers, 1);
    uint32_t word = atomic_load(&block->wake_word);
    int64_t free_slots = nxs_available(view);
    int result = free_slots < 0 ? (int)free_slots : NXS_OK;
    if (free_slots == 0) {
        struct timespec limit, *limit_pointer = NULL;
        if (timeout_ns >= 0) {
            limit.tv_sec = (time_t)(timeout_ns / 1000000000);
            limit.tv_nsec = (long)(timeout_ns % 1000000000);
            limit_pointer = &limit;
        }
        if (syscall(SYS_futex, &block->wake_word, FUTEX_WAIT, word, limit_pointer, NULL, 0) != 0) {
            if (errno == ETIMEDOUT)
                result = NXS_TIMED_OUT;
            else if (errno == EINTR)
                result = NXS_INTERRUPTED;
            /* EAGAIN: the word moved, a release came: look again */
        }
    }
    atomic_fetch_sub(&block->sleepers, 1);
    return result;
}

void nxs_wake_all(const nxs_view *view)
{
    nxs_header *block = header(view);
    atomic_fetch_add(&block->wake_word, 1);
    syscall(SYS_futex, &block->wake_word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- handing over ------------------------------------------------------------------- */

/* After a slot went FREE: leave the hint and wake a sleeping acquirer. */
static void announce_free(const nxs_view *view, uint32_t slot, int first_step)
{
    nxs_header *block = header(view);
    atomic_store_explicit(&block->hint, slot + 1, memory_order_relaxed);
    NXS_STEP(first_step);
    /* seq_cst: ordered against the sleeper's count-then-read (see nxs_wait). */
    atomic_fetch_add(&block->wake_word, 1);
    NXS_STEP(first_step + 1);
    if (atomic_load(&block->sleepers) > 0)
        syscall(SYS_futex, &block->wake_word, FUTEX_WAKE, 1, NULL, NULL, 0);
    NXS_STEP(first_step + 2);
}

int nxs_send(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    if (slot >= view->capacity)
        return NXS_NONE;
    nxs_slot *entry = record(view, slot);
    uint64_t held = pack(generation, NXS_HELD, pid);
    if (atomic_load_explicit(&entry->lease, memory_order_acquire) != held)
        return NXS_NONE; /* not ours: leave its stamp alone */
    NXS_STEP(21);
    atomic_store_explicit(&entry->since, monotonic_ns(), memory_order_relaxed);
    NXS_STEP(22);
    if (!atomic_compare_exchange_strong_explicit(&entry->lease, &held, pack(generation, NXS_TRANSIT, pid),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return NXS_NONE; /* reclaimed meanwhile */
    NXS_STEP(23);
    return NXS_OK;
}

int nxs_claim(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    if (slot >= view->capacity)
        return NXS_NONE;
    nxs_slot *entry = record(view, slot);
    uint64_t current = atomic_load_explicit(&entry->lease, memory_order_acquire);
    for (;;) {
        if (!valid_state(current))
            return NXS_CORRUPT;
        if (nxs_state_of(current) != NXS_TRANSIT || nxs_generation_of(current) != generation)
            return NXS_NONE;
        NXS_STEP(31);
        if (atomic_compare_exchange_weak_explicit(&entry->lease, &current, pack(generation, NXS_HELD, pid),
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    NXS_STEP(32);
    atomic_store_explicit(&entry->since, monotonic_ns(), memory_order_relaxed);
    NXS_STEP(33);
    return NXS_OK;
}

int nxs_release(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    if (slot >= view->capacity)
        return NXS_NONE;
    uint64_t held = pack(generation, NXS_HELD, pid);
    NXS_STEP(41);
    if (!atomic_compare_exchange_strong_explicit(&record(view, slot)->lease, &held, pack(generation, NXS_FREE, 0),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return NXS_NONE;
    NXS_STEP(42);
    announce_free(view, slot, 43);
    return NXS_OK;
}

/* ---- reclaiming --------------------------------------------------------------------- */

int nxs_process_alive(int32_t pid)
{
    if (pid <= 0)
        return 0;
    return kill(pid, 0) == 0 || errno != ESRCH;  /* EPERM: it exists, another user's */
}

int64_t nxs_reclaim(const nxs_view *view, int64_t transit_max_age_ns)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    uint64_t now_ns = monotonic_ns();
    int64_t reclaimed = 0;
    int corrupt = 0;
    for (uint32_t slot = 0; slot < view->capacity; slot++) {
        nxs_slot *entry = record(view, slot);
        uint64_t lease = atomic_load_explicit(&entry->lease, memory_order_acquire);
        if (!valid_state(lease)) {
            corrupt = 1;
            continue;
        }
        uint32_t state = nxs_state_of(lease);
        int stale = 0;
        if (state == NXS_HELD)
            stale = !nxs_process_alive(nxs_pid_of(lease));
        else if (state == NXS_TRANSIT && transit_max_age_ns >= 0) {
            uint64_t since = atomic_load_explicit(&entry->since, memory_order_relaxed);
            stale = now_ns > since && now_ns - since > (uint64_t)transit_max_age_ns;
        }
        if (!stale)
            continue;
        NXS_STEP(51);
        if (atomic_compare_exchange_strong_explicit(&entry->lease, &lease, pack(nxs_generation_of(lease), NXS_FREE, 0),
                                                    memory_order_acq_rel, memory_order_relaxed)) {
            NXS_STEP(52);
            announce_free(view, slot, 53);
            reclaimed++;
        }
    }
    return corrupt ? NXS_CORRUPT : reclaimed;
}

/* ---- introspection ------------------------------------------------------------------ */

uint64_t nxs_lease(const nxs_view *view, uint32_t slot)
{
    return slot < view->capacity ? atomic_load(&record(view, slot)->lease) : 0;
}

uint64_t nxs_since(const nxs_view *view, uint32_t slot)
{
    return slot < view->capacity ? atomic_load_explicit(&record(view, slot)->since, memory_order_relaxed) : 0;
}
