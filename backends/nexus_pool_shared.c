/* nexus_pool's shared-memory buffer pool core (see nexus_pool_shared.h).
 *
 * Linux: the blocking wait is a futex on a word in the block (shared, not private:
 * other processes wake it). Sleeper protocol as the in-process pool's: the acquirer
 * counts itself a sleeper, reads the wake word, looks at the stack once more, and
 * sleeps only if the word has not moved; a release pushes, bumps the word, and calls
 * the kernel only when someone sleeps.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "nexus_pool_shared.h"

#define NXS_MAGIC UINT64_C(0x314d485350584e4e) /* "NNXPSHM1" */
#define NXS_VERSION 1u
#define NXS_LINE 64u
#define NXS_PAGE 4096u
#define NXS_MAX_CAPACITY (1u << 20)

enum { NXS_FREE = 0, NXS_HELD = 1, NXS_TRANSIT = 2 };

typedef struct {
    _Alignas(NXS_LINE) _Atomic uint64_t lease;  /* generation << 32 | state << 30 | pid */
    _Atomic uint32_t next;                      /* index + 1 of the slot below; 0: none */
    _Atomic uint64_t transit_since;             /* monotonic ns of the latest send */
} nxs_slot;

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t capacity;
    uint64_t buffer_size;
    uint64_t buffers_offset;
    uint64_t mapped;
    int32_t creator;
    _Alignas(NXS_LINE) _Atomic uint64_t head;   /* tag << 32 | top index + 1 (0: empty) */
    _Atomic int64_t free_count;
    _Alignas(NXS_LINE) _Atomic uint32_t wake_word;
    _Atomic uint32_t sleepers;
    _Alignas(NXS_LINE) nxs_slot slots[];
} nxs_header;

_Static_assert(sizeof(nxs_slot) == NXS_LINE, "one cache line per slot record");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "64-bit atomics");

static inline uint64_t pack(uint32_t generation, uint32_t state, int32_t pid)
{
    return ((uint64_t)generation << 32) | ((uint64_t)state << 30) | ((uint64_t)pid & 0x3fffffffu);
}
static inline uint32_t generation_of(uint64_t lease) { return (uint32_t)(lease >> 32); }
static inline uint32_t state_of(uint64_t lease) { return (uint32_t)(lease >> 30) & 3u; }
static inline int32_t pid_of(uint64_t lease) { return (int32_t)(lease & 0x3fffffffu); }

static uint64_t buffers_offset(uint32_t capacity)
{
    uint64_t records = sizeof(nxs_header) + (uint64_t)capacity * sizeof(nxs_slot);
    return (records + NXS_PAGE - 1) / NXS_PAGE * NXS_PAGE;
}

static uint64_t stride(uint64_t buffer_size)
{
    return (buffer_size + NXS_PAGE - 1) / NXS_PAGE * NXS_PAGE;
}

uint64_t nxs_block_size(uint32_t capacity, uint64_t buffer_size)
{
    if (capacity < 1 || capacity > NXS_MAX_CAPACITY || buffer_size < 1 || buffer_size > (UINT64_C(1) << 40))
        return 0;
    return buffers_offset(capacity) + (uint64_t)capacity * stride(buffer_size);
}

int nxs_init(void *base, uint64_t mapped, uint32_t capacity, uint64_t buffer_size, int32_t creator)
{
    uint64_t needed = nxs_block_size(capacity, buffer_size);
    if (needed == 0 || needed > mapped)
        return -1;
    nxs_header *block = base;
    block->capacity = capacity;
    block->buffer_size = buffer_size;
    block->buffers_offset = buffers_offset(capacity);
    block->mapped = mapped;
    block->creator = creator;
    for (uint32_t slot = 0; slot < capacity; slot++) {
        atomic_init(&block->slots[slot].lease, pack(0, NXS_FREE, 0));
        atomic_init(&block->slots[slot].next, slot + 1 < capacity ? slot + 2 : 0);
        atomic_init(&block->slots[slot].transit_since, 0);
    }
    atomic_init(&block->head, 1);  /* slot 0 on top */
    atomic_init(&block->free_count, capacity);
    atomic_init(&block->wake_word, 0);
    atomic_init(&block->sleepers, 0);
    block->version = NXS_VERSION;
    atomic_thread_fence(memory_order_release);
    block->magic = NXS_MAGIC;  /* last: a block is valid once its magic is there */
    return 0;
}

int nxs_check(void *base, uint64_t mapped)
{
    nxs_header *block = base;
    if (mapped < sizeof(nxs_header) || block->magic != NXS_MAGIC || block->version != NXS_VERSION)
        return -1;
    uint64_t needed = nxs_block_size(block->capacity, block->buffer_size);
    return needed != 0 && needed <= mapped ? 0 : -1;
}

uint32_t nxs_capacity(void *base) { return ((nxs_header *)base)->capacity; }
uint64_t nxs_buffer_size(void *base) { return ((nxs_header *)base)->buffer_size; }
int32_t nxs_creator(void *base) { return ((nxs_header *)base)->creator; }

uint64_t nxs_buffer_offset(void *base, uint32_t slot)
{
    nxs_header *block = base;
    return block->buffers_offset + (uint64_t)slot * stride(block->buffer_size);
}

static void push(nxs_header *block, uint32_t slot)
{
    atomic_fetch_add_explicit(&block->free_count, 1, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&block->head, memory_order_relaxed);
    uint64_t fresh;
    do {
        atomic_store_explicit(&block->slots[slot].next, (uint32_t)head, memory_order_relaxed);
        fresh = (((head >> 32) + 1) << 32) | (uint64_t)(slot + 1);
    } while (!atomic_compare_exchange_weak_explicit(&block->head, &head, fresh, memory_order_release,
                                                    memory_order_relaxed));
    /* seq_cst: ordered against the sleeper's count-then-read (see nxs_wait). */
    atomic_fetch_add(&block->wake_word, 1);
    if (atomic_load(&block->sleepers) > 0)
        syscall(SYS_futex, &block->wake_word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int64_t nxs_try_acquire(void *base, int32_t pid, uint32_t *generation)
{
    nxs_header *block = base;
    uint64_t head = atomic_load_explicit(&block->head, memory_order_acquire);
    uint32_t top;
    for (;;) {
        top = (uint32_t)head;
        if (top == 0)
            return -1;
        uint32_t below = atomic_load_explicit(&block->slots[top - 1].next, memory_order_relaxed);
        uint64_t fresh = (((head >> 32) + 1) << 32) | below;
        if (atomic_compare_exchange_weak_explicit(&block->head, &head, fresh, memory_order_acquire,
                                                  memory_order_acquire))
            break;
    }
    uint32_t slot = top - 1;
    atomic_fetch_sub_explicit(&block->free_count, 1, memory_order_relaxed);
    _Atomic uint64_t *lease = &block->slots[slot].lease;
    uint64_t old = atomic_load_explicit(lease, memory_order_acquire);
    uint32_t next_generation = generation_of(old) + 1;
    atomic_store_explicit(lease, pack(next_generation, NXS_HELD, pid), memory_order_release);
    *generation = next_generation;
    return slot;
}

int nxs_wait(void *base, int64_t timeout_ns)
{
    nxs_header *block = base;
    atomic_fetch_add(&block->sleepers, 1);
    uint32_t word = atomic_load(&block->wake_word);
    int result = 0;
    if (atomic_load(&block->free_count) <= 0) {
        struct timespec limit, *limit_pointer = NULL;
        if (timeout_ns >= 0) {
            limit.tv_sec = (time_t)(timeout_ns / 1000000000);
            limit.tv_nsec = (long)(timeout_ns % 1000000000);
            limit_pointer = &limit;
        }
        if (syscall(SYS_futex, &block->wake_word, FUTEX_WAIT, word, limit_pointer, NULL, 0) != 0) {
            if (errno == ETIMEDOUT)
                result = 1;
            else if (errno == EINTR)
                result = 2;
            /* EAGAIN: the word moved, a release came: look again */
        }
    }
    atomic_fetch_sub(&block->sleepers, 1);
    return result;
}

static int move_lease(nxs_header *block, uint32_t slot, uint64_t expected, uint64_t wanted)
{
    if (slot >= block->capacity)
        return -1;
    return atomic_compare_exchange_strong_explicit(&block->slots[slot].lease, &expected, wanted,
                                                   memory_order_acq_rel, memory_order_relaxed)
               ? 0
               : -1;
}

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

int nxs_send(void *base, uint32_t slot, uint32_t generation, int32_t pid)
{
    nxs_header *block = base;
    if (slot >= block->capacity)
        return -1;
    atomic_store_explicit(&block->slots[slot].transit_since, monotonic_ns(), memory_order_relaxed);
    return move_lease(block, slot, pack(generation, NXS_HELD, pid), pack(generation, NXS_TRANSIT, pid));
}

int nxs_claim(void *base, uint32_t slot, uint32_t generation, int32_t pid)
{
    nxs_header *block = base;
    if (slot >= block->capacity)
        return -1;
    _Atomic uint64_t *lease = &block->slots[slot].lease;
    uint64_t current = atomic_load_explicit(lease, memory_order_acquire);
    for (;;) {
        if (state_of(current) != NXS_TRANSIT || generation_of(current) != generation)
            return -1;
        if (atomic_compare_exchange_weak_explicit(lease, &current, pack(generation, NXS_HELD, pid),
                                                  memory_order_acq_rel, memory_order_acquire))
            return 0;
    }
}

int nxs_release(void *base, uint32_t slot, uint32_t generation, int32_t pid)
{
    nxs_header *block = base;
    if (move_lease(block, slot, pack(generation, NXS_HELD, pid), pack(generation, NXS_FREE, 0)) != 0)
        return -1;
    push(block, slot);
    return 0;
}

static int process_gone(int32_t pid)
{
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

int64_t nxs_reclaim(void *base, int64_t transit_max_age_ns)
{
    nxs_header *block = base;
    uint64_t now_ns = monotonic_ns();
    int64_t reclaimed = 0;
    for (uint32_t slot = 0; slot < block->capacity; slot++) {
        uint64_t lease = atomic_load_explicit(&block->slots[slot].lease, memory_order_acquire);
        uint32_t state = state_of(lease);
        int stale = 0;
        if (state == NXS_HELD)
            stale = process_gone(pid_of(lease));
        else if (state == NXS_TRANSIT && transit_max_age_ns >= 0) {
            uint64_t since = atomic_load_explicit(&block->slots[slot].transit_since, memory_order_relaxed);
            stale = now_ns > since && now_ns - since > (uint64_t)transit_max_age_ns;
        }
        if (stale && move_lease(block, slot, lease, pack(generation_of(lease), NXS_FREE, 0)) == 0) {
            push(block, slot);
            reclaimed++;
        }
    }
    return reclaimed;
}

int64_t nxs_available(void *base)
{
    return atomic_load_explicit(&((nxs_header *)base)->free_count, memory_order_relaxed);
}

uint64_t nxs_lease(void *base, uint32_t slot)
{
    nxs_header *block = base;
    return slot < block->capacity ? atomic_load(&block->slots[slot].lease) : 0;
}
