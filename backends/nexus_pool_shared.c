/* nexus_pool's shared-memory buffer pool core (see nexus_pool_shared.h).
 *
 * Linux: the blocking waits are futexes on words in the block (shared, not private:
 * other processes wake them). Sleeper protocol, the same for the acquirer (wake_word) and
 * the workers (queue_word): a sleeper counts itself, reads the word, looks once more, and
 * sleeps only if the word has not moved; the other side changes the state, bumps the
 * word, and calls the kernel only when someone sleeps. All of these are sequentially
 * consistent, so one of the two sees the other.
 *
 * Every pointer into the block is made from this process's nxs_view: base plus an
 * offset computed from the view's own (checked) fields and an index checked against
 * the view's capacity or ring size. Values read from the block are never used as sizes
 * or offsets. The mapping at view->base must stay mapped for the whole of every call: the
 * callers see to it (in Python, the Block object that owns the mapping is held by each
 * call).
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

#define NXS_MAGIC UINT64_C(0x334d485350584e4e) /* "NNXPSHM3" */
#define NXS_VERSION 3u
#define NXS_LINE 64u
#define NXS_PAGE 4096u
#define NXS_SHUT_DOWN 1u /* flags */

typedef struct {
    _Alignas(NXS_LINE) _Atomic uint64_t lease; /* generation << 32 | state << 30 | pid */
    _Atomic uint64_t since;                    /* monotonic ns of the latest acquire, send, queue, claim, take */
    _Atomic uint64_t length;                   /* the filled length, as its holder set it */
} nxs_slot;

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t capacity;
    uint64_t buffer_size;
    uint64_t buffers_offset;
    int32_t creator;
    _Alignas(NXS_LINE) _Atomic uint32_t hint; /* index + 1 of the latest released slot; 0: none */
    _Alignas(NXS_LINE) _Atomic uint32_t wake_word;
    _Atomic uint32_t sleepers;
    _Atomic uint32_t flags;                   /* NXS_SHUT_DOWN */
    _Alignas(NXS_LINE) _Atomic uint64_t tail; /* ring positions written (the producer's end) */
    _Atomic uint32_t stops;                   /* stop markers not taken yet */
    _Alignas(NXS_LINE) _Atomic uint64_t head; /* ring positions taken (the workers' end) */
    _Alignas(NXS_LINE) _Atomic uint32_t queue_word;
    _Atomic uint32_t queue_sleepers;
    _Alignas(NXS_LINE) nxs_slot slots[];
    /* then the ring: 2 * capacity _Atomic uint64_t entries, generation << 32 | slot + 1 */
} nxs_header;

_Static_assert(sizeof(nxs_slot) == NXS_LINE, "one cache line per slot record");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "64-bit atomics");
_Static_assert(sizeof(nxs_header) % NXS_LINE == 0, "slot records start on a line");

/* ---- crash points (test builds) ----------------------------------------------------- */

#ifdef NXS_CRASH_POINTS
static int crash_point;

void
nxs_set_crash_point(int point)
{
    crash_point = point;
}

/* Step n of an operation: a test build can die here, as a process killed at that
 * instruction would. */
#define NXS_STEP(n)             \
    do {                        \
        if (crash_point == (n)) \
            raise(SIGKILL);     \
    } while (0)
#else
#define NXS_STEP(n) ((void)(n))
#endif

/* ---- lease words -------------------------------------------------------------------- */

static inline uint64_t
pack(uint32_t generation, uint32_t state, int32_t pid)
{
    return ((uint64_t)generation << 32) | ((uint64_t)state << 30) | ((uint64_t)pid & 0x3fffffffu);
}
uint32_t
nxs_generation_of(uint64_t lease)
{
    return (uint32_t)(lease >> 32);
}
uint32_t
nxs_state_of(uint64_t lease)
{
    return (uint32_t)(lease >> 30) & 3u;
}
int32_t
nxs_pid_of(uint64_t lease)
{
    return (int32_t)(lease & 0x3fffffffu);
}

/* ---- geometry ----------------------------------------------------------------------- */

static uint64_t
ring_offset_of(uint32_t capacity)
{
    return sizeof(nxs_header) + (uint64_t)capacity * sizeof(nxs_slot);
}

static uint64_t
records_end(uint32_t capacity)
{
    uint64_t end = ring_offset_of(capacity) + 2 * (uint64_t)capacity * sizeof(uint64_t);
    return (end + NXS_PAGE - 1) / NXS_PAGE * NXS_PAGE;
}

static uint64_t
stride_of(uint64_t buffer_size)
{
    return (buffer_size + NXS_PAGE - 1) / NXS_PAGE * NXS_PAGE;
}

uint64_t
nxs_block_size(uint32_t capacity, uint64_t buffer_size)
{
    if (capacity < 1 || capacity > NXS_MAX_CAPACITY || buffer_size < 1 || buffer_size > NXS_MAX_BUFFER_SIZE)
        return 0;
    return records_end(capacity) + (uint64_t)capacity * stride_of(buffer_size);
}

static void
fill_view(nxs_view *view, void *base, uint64_t mapped, uint32_t capacity, uint64_t buffer_size, int32_t creator)
{
    view->base = base;
    view->mapped = mapped;
    view->capacity = capacity;
    view->ring_size = 2 * capacity;
    view->buffer_size = buffer_size;
    view->stride = stride_of(buffer_size);
    view->ring_offset = ring_offset_of(capacity);
    view->buffers_offset = records_end(capacity);
    view->creator = creator;
}

/* The header, slot records and ring entries, through the view: the view was checked to
 * cover them, and every index is checked before it is used. */
static inline nxs_header *
header(const nxs_view *view)
{
    return (nxs_header *)view->base;
}
static inline nxs_slot *
record(const nxs_view *view, uint32_t slot)
{
    return &header(view)->slots[slot];
}
static inline _Atomic uint64_t *
ring_entry(const nxs_view *view, uint64_t position)
{
    return (_Atomic uint64_t *)((char *)view->base + view->ring_offset) + position % view->ring_size;
}

int
nxs_init(nxs_view *view, void *base, uint64_t mapped, uint32_t capacity, uint64_t buffer_size, int32_t creator)
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
        atomic_init(&block->slots[slot].length, 0);
    }
    atomic_init(&block->hint, 0);
    atomic_init(&block->wake_word, 0);
    atomic_init(&block->sleepers, 0);
    atomic_init(&block->flags, 0);
    atomic_init(&block->tail, 0);
    atomic_init(&block->stops, 0);
    atomic_init(&block->head, 0);
    atomic_init(&block->queue_word, 0);
    atomic_init(&block->queue_sleepers, 0);
    fill_view(view, base, mapped, capacity, buffer_size, creator);
    for (uint64_t position = 0; position < view->ring_size; position++)
        atomic_init(ring_entry(view, position), 0);
    block->version = NXS_VERSION;
    atomic_thread_fence(memory_order_release);
    block->magic = NXS_MAGIC; /* last: a block is valid once its magic is there */
    return NXS_OK;
}

int
nxs_attach(nxs_view *view, void *base, uint64_t mapped)
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

int
nxs_check(const nxs_view *view)
{
    volatile nxs_header *block = header(view);
    if (block->magic != NXS_MAGIC || block->version != NXS_VERSION || block->capacity != view->capacity ||
        block->buffer_size != view->buffer_size || block->buffers_offset != view->buffers_offset)
        return NXS_CORRUPT;
    return NXS_OK;
}

uint64_t
nxs_buffer_offset(const nxs_view *view, uint32_t slot)
{
    return view->buffers_offset + (uint64_t)slot * view->stride;
}

static uint64_t
monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Sleep on `word` unless it moved from `seen` (futex), at most timeout_ns (< 0: no limit). */
static int
sleep_on(_Atomic uint32_t *word, uint32_t seen, int64_t timeout_ns)
{
    struct timespec limit, *limit_pointer = NULL;
    if (timeout_ns >= 0) {
        limit.tv_sec = (time_t)(timeout_ns / 1000000000);
        limit.tv_nsec = (long)(timeout_ns % 1000000000);
        limit_pointer = &limit;
    }
    if (syscall(SYS_futex, word, FUTEX_WAIT, seen, limit_pointer, NULL, 0) != 0) {
        if (errno == ETIMEDOUT)
            return NXS_TIMED_OUT;
        if (errno == EINTR)
            return NXS_INTERRUPTED;
        /* EAGAIN: the word moved: look again */
    }
    return NXS_OK;
}

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

/* Whether this thread made a FUTEX_WAKE since it last asked (nxs_woke_someone). */
static _Thread_local int woke_someone;

int
nxs_woke_someone(void)
{
    int woke = woke_someone;
    woke_someone = 0;
    return woke;
}

static _Atomic uint32_t *
word_of(const nxs_view *view, int which)
{
    return which == NXS_QUEUE_WORD ? &header(view)->queue_word : &header(view)->wake_word;
}

uint32_t
nxs_word(const nxs_view *view, int which)
{
    return atomic_load(word_of(view, which));
}

int64_t
nxs_spin(const nxs_view *view, int which, uint32_t seen, int64_t budget_ns)
{
    _Atomic uint32_t *word = word_of(view, which);
    uint64_t started = monotonic_ns();
    for (;;) {
        /* Read the clock only every few dozen looks: a look is one cache-line load. */
        for (int look = 0; look < 32; look++) {
            if (atomic_load_explicit(word, memory_order_acquire) != seen)
                return (int64_t)(monotonic_ns() - started);
            cpu_relax();
        }
        if (monotonic_ns() - started >= (uint64_t)budget_ns)
            return -1;
    }
}

/* Bump `word` and wake up to `count` sleepers if `sleepers` says there are any. */
static void
wake_on(_Atomic uint32_t *word, _Atomic uint32_t *sleepers, int count)
{
    /* seq_cst: ordered against the sleeper's count-then-read. */
    atomic_fetch_add(word, 1);
    if (atomic_load(sleepers) > 0) {
        syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
        woke_someone = 1;
    }
}

/* ---- acquiring ---------------------------------------------------------------------- */

/* Take `slot` if it is free: 1 and *generation; 0 if not free. */
static int
take_if_free(const nxs_view *view, uint32_t slot, int32_t pid, uint32_t *generation)
{
    nxs_slot *entry = record(view, slot);
    uint64_t lease = atomic_load_explicit(&entry->lease, memory_order_acquire);
    if (nxs_state_of(lease) != NXS_FREE)
        return 0;
    uint32_t next = nxs_generation_of(lease) + 1;
    NXS_STEP(11);
    if (!atomic_compare_exchange_strong_explicit(&entry->lease, &lease, pack(next, NXS_HELD, pid), memory_order_acq_rel,
                                                 memory_order_acquire))
        return 0; /* taken meanwhile (another acquirer, or reclaim): look further */
    NXS_STEP(12);
    atomic_store_explicit(&entry->since, monotonic_ns(), memory_order_relaxed);
    atomic_store_explicit(&entry->length, 0, memory_order_relaxed);
    NXS_STEP(13);
    *generation = next;
    return 1;
}

int64_t
nxs_try_acquire(const nxs_view *view, int32_t pid, uint32_t *cursor, uint32_t *generation)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    uint32_t capacity = view->capacity;
    uint32_t hint = atomic_load_explicit(&header(view)->hint, memory_order_relaxed);
    if (hint >= 1 && hint <= capacity && take_if_free(view, hint - 1, pid, generation)) /* checked first */
        return (int64_t)(hint - 1);
    uint32_t start = *cursor < capacity ? *cursor : 0;
    for (uint32_t step = 0; step < capacity; step++) {
        uint32_t slot = start + step < capacity ? start + step : start + step - capacity;
        if (take_if_free(view, slot, pid, generation)) {
            *cursor = slot + 1 < capacity ? slot + 1 : 0;
            return slot;
        }
    }
    return NXS_NONE;
}

int64_t
nxs_available(const nxs_view *view)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    int64_t free_slots = 0;
    for (uint32_t slot = 0; slot < view->capacity; slot++) {
        uint64_t lease = atomic_load_explicit(&record(view, slot)->lease, memory_order_relaxed);
        free_slots += nxs_state_of(lease) == NXS_FREE;
    }
    return free_slots;
}

int
nxs_is_shutdown(const nxs_view *view)
{
    return (atomic_load(&header(view)->flags) & NXS_SHUT_DOWN) != 0;
}

int
nxs_wait(const nxs_view *view, int64_t timeout_ns)
{
    nxs_header *block = header(view);
    atomic_fetch_add(&block->sleepers, 1);
    uint32_t word = atomic_load(&block->wake_word);
    int64_t free_slots = nxs_available(view);
    int result = free_slots < 0 ? (int)free_slots : NXS_OK;
    if (free_slots == 0 && !nxs_is_shutdown(view))
        result = sleep_on(&block->wake_word, word, timeout_ns);
    atomic_fetch_sub(&block->sleepers, 1);
    return result;
}

void
nxs_wake_all(const nxs_view *view)
{
    nxs_header *block = header(view);
    atomic_fetch_add(&block->wake_word, 1);
    syscall(SYS_futex, &block->wake_word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    atomic_fetch_add(&block->queue_word, 1);
    syscall(SYS_futex, &block->queue_word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void
nxs_shutdown(const nxs_view *view)
{
    atomic_fetch_or(&header(view)->flags, NXS_SHUT_DOWN);
    nxs_wake_all(view);
}

/* ---- handing over ------------------------------------------------------------------- */

/* After a slot went FREE: leave the hint and wake a sleeping acquirer. */
static void
announce_free(const nxs_view *view, uint32_t slot, int first_step)
{
    nxs_header *block = header(view);
    atomic_store_explicit(&block->hint, slot + 1, memory_order_relaxed);
    NXS_STEP(first_step);
    atomic_fetch_add(&block->wake_word, 1); /* seq_cst: see the file's comment */
    NXS_STEP(first_step + 1);
    if (atomic_load(&block->sleepers) > 0) {
        syscall(SYS_futex, &block->wake_word, FUTEX_WAKE, 1, NULL, NULL, 0);
        woke_someone = 1;
    }
    NXS_STEP(first_step + 2);
}

int
nxs_send(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid)
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

/* `state`(generation, anyone) -> HELD(generation, pid), stamped: 1, or 0 if the slot is not
 * in that state at that generation. */
static int
claim_from(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid, uint32_t state, int first_step)
{
    nxs_slot *entry = record(view, slot);
    uint64_t current = atomic_load_explicit(&entry->lease, memory_order_acquire);
    for (;;) {
        if (nxs_state_of(current) != state || nxs_generation_of(current) != generation)
            return 0;
        NXS_STEP(first_step);
        if (atomic_compare_exchange_weak_explicit(&entry->lease, &current, pack(generation, NXS_HELD, pid),
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    NXS_STEP(first_step + 1);
    atomic_store_explicit(&entry->since, monotonic_ns(), memory_order_relaxed);
    NXS_STEP(first_step + 2);
    return 1;
}

int
nxs_claim(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    if (slot >= view->capacity)
        return NXS_NONE;
    return claim_from(view, slot, generation, pid, NXS_TRANSIT, 31) ? NXS_OK : NXS_NONE;
}

int
nxs_release(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid)
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

/* ---- the work queue ----------------------------------------------------------------- */

int
nxs_queue(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    if (slot >= view->capacity)
        return NXS_NONE;
    nxs_header *block = header(view);
    nxs_slot *entry = record(view, slot);
    uint64_t held = pack(generation, NXS_HELD, pid);
    if (atomic_load_explicit(&entry->lease, memory_order_acquire) != held)
        return NXS_NONE;
    atomic_store_explicit(&entry->since, monotonic_ns(), memory_order_relaxed);
    NXS_STEP(61);
    if (!atomic_compare_exchange_strong_explicit(&entry->lease, &held, pack(generation, NXS_QUEUED, pid),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return NXS_NONE; /* reclaimed meanwhile */
    NXS_STEP(62);
    /* The slot is queued (its lease word says so) from here: the ring entry only tells the
     * workers where to look. A second thread queueing at once (misuse) can take the same
     * position: its slot is then found by the workers' look at the lease words. */
    uint64_t position = atomic_load_explicit(&block->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&block->head, memory_order_acquire);
    if (position >= head && position - head >= view->ring_size) {
        /* The ring is full of entries no worker took: stale ones of slots reclaimed or
         * taken by a look at the lease words (live ones are at most capacity, half the
         * ring). Drop the oldest; if its slot is still queued, the look finds it. */
        atomic_compare_exchange_strong_explicit(&block->head, &head, position - view->ring_size + 1,
                                                memory_order_acq_rel, memory_order_relaxed);
    }
    atomic_store_explicit(ring_entry(view, position), ((uint64_t)generation << 32) | (slot + 1), memory_order_relaxed);
    NXS_STEP(63);
    atomic_compare_exchange_strong_explicit(&block->tail, &position, position + 1, memory_order_release,
                                            memory_order_relaxed);
    NXS_STEP(64);
    wake_on(&block->queue_word, &block->queue_sleepers, 1);
    return NXS_OK;
}

/* The queued slot with the oldest stamp, found by looking at every lease word: what a
 * taker falls back on when the ring is empty (a slot queued by a process killed before it
 * wrote its ring entry, or whose entry another queued slot's overwrote). */
static int64_t
oldest_queued(const nxs_view *view, uint32_t *generation)
{
    int64_t found = NXS_NONE;
    uint64_t oldest = UINT64_MAX;
    for (uint32_t slot = 0; slot < view->capacity; slot++) {
        nxs_slot *entry = record(view, slot);
        uint64_t lease = atomic_load_explicit(&entry->lease, memory_order_acquire);
        if (nxs_state_of(lease) != NXS_QUEUED)
            continue;
        uint64_t since = atomic_load_explicit(&entry->since, memory_order_relaxed);
        if (found < 0 || since < oldest) {
            found = slot;
            oldest = since;
            *generation = nxs_generation_of(lease);
        }
    }
    return found;
}

int64_t
nxs_take(const nxs_view *view, int32_t pid, uint32_t *generation)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    nxs_header *block = header(view);
    for (;;) {
        uint64_t position = atomic_load_explicit(&block->head, memory_order_acquire);
        uint64_t tail = atomic_load_explicit(&block->tail, memory_order_acquire);
        if (position >= tail) {
            /* The ring is empty: the lease words may still hold a queued slot. */
            int64_t slot = oldest_queued(view, generation);
            if (slot < 0)
                return NXS_NONE;
            if (claim_from(view, (uint32_t)slot, *generation, pid, NXS_QUEUED, 71))
                return slot;
            continue; /* another worker took it: look again */
        }
        if (tail - position > view->ring_size)
            return NXS_CORRUPT; /* more entries than the ring holds */
        /* Read the entry before taking its position: once the position is taken, the
         * producer may write the ring round to it again. */
        uint64_t reference = atomic_load_explicit(ring_entry(view, position), memory_order_relaxed);
        if (!atomic_compare_exchange_weak_explicit(&block->head, &position, position + 1, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue; /* another worker took this position */
        NXS_STEP(74);
        uint32_t slot_plus_one = (uint32_t)reference;
        uint32_t entry_generation = (uint32_t)(reference >> 32);
        if (slot_plus_one < 1 || slot_plus_one > view->capacity)
            continue; /* not one of ours: skip it (the lease words are the truth) */
        if (claim_from(view, slot_plus_one - 1, entry_generation, pid, NXS_QUEUED, 71)) {
            *generation = entry_generation;
            return slot_plus_one - 1;
        }
        /* stale (taken by a look at the lease words, or reclaimed): the next one */
    }
}

void
nxs_stop(const nxs_view *view)
{
    nxs_header *block = header(view);
    atomic_fetch_add(&block->stops, 1);
    atomic_fetch_add(&block->queue_word, 1);
    syscall(SYS_futex, &block->queue_word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int
nxs_take_stop(const nxs_view *view)
{
    _Atomic uint32_t *stops = &header(view)->stops;
    uint32_t count = atomic_load(stops);
    while (count > 0) {
        if (atomic_compare_exchange_weak(stops, &count, count - 1))
            return 1;
    }
    return 0;
}

int
nxs_wait_queued(const nxs_view *view, int64_t timeout_ns)
{
    nxs_header *block = header(view);
    atomic_fetch_add(&block->queue_sleepers, 1);
    uint32_t word = atomic_load(&block->queue_word);
    int result = NXS_OK;
    uint32_t generation;
    if (atomic_load(&block->head) >= atomic_load(&block->tail) && atomic_load(&block->stops) == 0 &&
        !nxs_is_shutdown(view) && oldest_queued(view, &generation) < 0)
        result = sleep_on(&block->queue_word, word, timeout_ns);
    atomic_fetch_sub(&block->queue_sleepers, 1);
    return result;
}

/* ---- lengths ------------------------------------------------------------------------ */

uint64_t
nxs_length(const nxs_view *view, uint32_t slot)
{
    if (slot >= view->capacity)
        return 0;
    uint64_t length = atomic_load_explicit(&record(view, slot)->length, memory_order_acquire);
    return length <= view->buffer_size ? length : view->buffer_size;
}

int
nxs_set_length(const nxs_view *view, uint32_t slot, uint64_t length)
{
    if (slot >= view->capacity || length > view->buffer_size)
        return NXS_NONE;
    /* release: the bytes written before are visible to whoever reads this length */
    atomic_store_explicit(&record(view, slot)->length, length, memory_order_release);
    return NXS_OK;
}

/* ---- reclaiming --------------------------------------------------------------------- */

int
nxs_process_alive(int32_t pid)
{
    if (pid <= 0)
        return 0;
    return kill(pid, 0) == 0 || errno != ESRCH; /* EPERM: it exists, another user's */
}

int64_t
nxs_reclaim(const nxs_view *view, int64_t transit_max_age_ns)
{
    if (nxs_check(view) != NXS_OK)
        return NXS_CORRUPT;
    uint64_t now_ns = monotonic_ns();
    int64_t reclaimed = 0;
    for (uint32_t slot = 0; slot < view->capacity; slot++) {
        nxs_slot *entry = record(view, slot);
        uint64_t lease = atomic_load_explicit(&entry->lease, memory_order_acquire);
        uint32_t state = nxs_state_of(lease);
        int stale = 0;
        if (state == NXS_HELD)
            stale = !nxs_process_alive(nxs_pid_of(lease));
        else if ((state == NXS_TRANSIT || state == NXS_QUEUED) && transit_max_age_ns >= 0) {
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
    return reclaimed;
}

/* ---- introspection ------------------------------------------------------------------ */

uint64_t
nxs_lease(const nxs_view *view, uint32_t slot)
{
    return slot < view->capacity ? atomic_load(&record(view, slot)->lease) : 0;
}

uint64_t
nxs_since(const nxs_view *view, uint32_t slot)
{
    return slot < view->capacity ? atomic_load_explicit(&record(view, slot)->since, memory_order_relaxed) : 0;
}
