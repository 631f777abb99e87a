/* nexus_pool's shared-memory buffer pool core (nexus_pool.shared; Linux).
 *
 * Plain C, no Python: nexus_pool_shared_module.c wraps it for Python, and
 * tests/shared/crash_driver.c drives it, built with NXS_CRASH_POINTS, to kill a process
 * at each numbered step. Every symbol is prefixed nxs_.
 *
 * One block of shared memory holds a header, one 64-byte record per slot, a ring of slot
 * references (the block's work queue) and the page-aligned buffers. Each slot's lease
 * word, one 64-bit atomic, is the only truth of who has the slot: it packs generation
 * (32 bits), state (2 bits) and pid (30 bits), and every hand-over is one
 * compare-and-swap on it:
 *     FREE(g) -acquire-> HELD(g+1, acquirer) -send-> TRANSIT(g+1, sender)
 *             -claim-> HELD(g+1, receiver) -release-> FREE(g+1)
 *     HELD(g, producer) -queue-> QUEUED(g, producer) -take-> HELD(g, worker)
 * There is no free list to keep in step with the words: acquiring looks for a FREE word
 * (first where the latest release left a hint, then onwards from where the acquirer last
 * found one), so a process killed at any instruction leaves every slot in exactly one
 * state, and reclaiming a dead holder's slot is one more compare-and-swap. The ring only
 * says where to look: a worker takes the slot a ring entry names by the same kind of
 * compare-and-swap, skips entries that are stale, and when the ring is empty looks at the
 * lease words themselves, so a slot queued by a process killed halfway is still taken. A
 * handle is (slot, generation): a stale, duplicate or foreign one fails its CAS.
 *
 * The block is untrusted input (any process of the same user can write anything into
 * it). Each process keeps its own copy of the geometry (nxs_view), made and checked when
 * it creates or attaches the block; every index read from the block is checked against
 * it before use, and every call first checks that the header still says what the copy
 * says. A block that does not is corrupt: calls return NXS_CORRUPT and touch nothing.
 */

#ifndef NEXUS_POOL_SHARED_H
#define NEXUS_POOL_SHARED_H

#include <stdint.h>

enum {
    NXS_OK = 0,
    NXS_NONE = -1,      /* nothing to take, or the lease is not what the caller says */
    NXS_CORRUPT = -2,   /* the block says something no process of ours writes */
    NXS_TIMED_OUT = 1,  /* a wait: the timeout passed */
    NXS_INTERRUPTED = 2 /* a wait: a signal arrived (EINTR) */
};

enum { NXS_FREE = 0, NXS_HELD = 1, NXS_TRANSIT = 2, NXS_QUEUED = 3 };

#define NXS_MAX_CAPACITY (UINT32_C(1) << 20)
#define NXS_MAX_BUFFER_SIZE (UINT64_C(1) << 40)

/* This process's copy of a block's geometry; only its own fields are trusted. */
typedef struct {
    void *base;      /* the mapping */
    uint64_t mapped; /* bytes mapped at base */
    uint32_t capacity;
    uint32_t ring_size; /* entries in the work queue's ring (2 * capacity) */
    uint64_t buffer_size;
    uint64_t stride;         /* bytes from one buffer to the next (page multiple) */
    uint64_t ring_offset;    /* from base to the ring */
    uint64_t buffers_offset; /* from base to buffer 0 (page multiple) */
    int32_t creator;         /* the pid that made the block */
} nxs_view;

/* Bytes to map for `capacity` buffers of `buffer_size` bytes; 0 if out of range. */
uint64_t nxs_block_size(uint32_t capacity, uint64_t buffer_size);

/* Lay a new block out in `mapped` zeroed bytes at `base`, every slot free, and fill
 * *view. NXS_OK, or NXS_NONE if the sizes are out of range or do not fit. */
int nxs_init(nxs_view *view, void *base, uint64_t mapped, uint32_t capacity, uint64_t buffer_size, int32_t creator);

/* Check the block at `base` (`mapped` bytes) and fill *view from it. NXS_OK, or
 * NXS_CORRUPT if it is no block of ours or its header does not fit the mapping. */
int nxs_attach(nxs_view *view, void *base, uint64_t mapped);

/* NXS_OK if the header still says what *view says, else NXS_CORRUPT. */
int nxs_check(const nxs_view *view);

/* Take a free slot for `pid`: its index, with its new generation in *generation (its
 * filled length set to 0). Looks where the latest release left its hint, then from
 * *cursor on (updated: the acquirer's own place, kept in its process). NXS_NONE if none
 * is free; NXS_CORRUPT. */
int64_t nxs_try_acquire(const nxs_view *view, int32_t pid, uint32_t *cursor, uint32_t *generation);

/* Sleep until a release may have freed a slot (or the pool is shut down), at most
 * timeout_ns (< 0: no limit). NXS_OK: woken, or a slot is free (look again);
 * NXS_TIMED_OUT; NXS_INTERRUPTED; NXS_CORRUPT. */
int nxs_wait(const nxs_view *view, int64_t timeout_ns);

/* The two wake words: the acquirer's (moved by every release, reclaim and shutdown) and
 * the workers' (moved by every queue, stop marker and shutdown). */
enum { NXS_ACQUIRE_WORD = 0, NXS_QUEUE_WORD = 1 };
uint32_t nxs_word(const nxs_view *view, int which);

/* Busy-wait, with no system call, until wake word `which` moves from `seen`, for at most
 * budget_ns: the ns it took, or -1 if it did not move. What a caller does before it
 * sleeps, when the other side is expected to act within microseconds (a spin costs CPU
 * but saves the kernel's sleep and wake-up). */
int64_t nxs_spin(const nxs_view *view, int which, uint32_t seen, int64_t budget_ns);

/* 1 if the calling thread woke a sleeper (a system call) since it last asked, else 0. The
 * kernel may have put the woken thread on this CPU: spinning now would keep it waiting. */
int nxs_woke_someone(void);

/* Wake every process and thread sleeping in nxs_wait or nxs_wait_queued (they look again). */
void nxs_wake_all(const nxs_view *view);

/* HELD(generation, pid) -> TRANSIT(generation, pid), stamped with CLOCK_MONOTONIC (the
 * clock of Python's time.monotonic on Linux) if, and only if, pid holds it. */
int nxs_send(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid);

/* TRANSIT(generation, anyone) -> HELD(generation, pid). NXS_NONE: stale, duplicate,
 * foreign or reclaimed (the slot is not in transit at that generation). */
int nxs_claim(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid);

/* HELD(generation, pid) -> FREE(generation), then leave the hint and wake a sleeping
 * acquirer. NXS_NONE: not held by pid at that generation (the block is unchanged). */
int nxs_release(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid);

/* HELD(generation, pid) -> QUEUED(generation, pid), stamped, into the block's work queue;
 * wakes a sleeping worker. NXS_NONE: not held by pid at that generation. */
int nxs_queue(const nxs_view *view, uint32_t slot, uint32_t generation, int32_t pid);

/* Take the next queued slot for `pid`: its index, with its generation in *generation.
 * NXS_NONE if the queue is empty; NXS_CORRUPT. */
int64_t nxs_take(const nxs_view *view, int32_t pid, uint32_t *generation);

/* Add a stop marker to the work queue (what a worker's take reports as "no more", after
 * the slots queued before it); wakes the sleeping workers. */
void nxs_stop(const nxs_view *view);

/* 1 if a stop marker was there and this call took it, else 0. */
int nxs_take_stop(const nxs_view *view);

/* Sleep until a slot or a stop marker is queued (or the pool is shut down), at most
 * timeout_ns (< 0: no limit): the results of nxs_wait. */
int nxs_wait_queued(const nxs_view *view, int64_t timeout_ns);

/* Mark the pool shut down (acquisitions end; a flag every process sees) and wake every
 * sleeper. */
void nxs_shutdown(const nxs_view *view);
int nxs_is_shutdown(const nxs_view *view);

/* The filled length of `slot` as its holder set it, clamped to the buffer size (the block
 * is untrusted). */
uint64_t nxs_length(const nxs_view *view, uint32_t slot);
/* Set it: NXS_OK, or NXS_NONE if `length` exceeds the buffer size or the slot does not
 * exist. */
int nxs_set_length(const nxs_view *view, uint32_t slot, uint64_t length);

/* Give back the slots held by processes that no longer exist and, if
 * transit_max_age_ns >= 0, those in transit or queued for longer than that: how many. */
int64_t nxs_reclaim(const nxs_view *view, int64_t transit_max_age_ns);

/* Free slots now (a snapshot), or NXS_CORRUPT. */
int64_t nxs_available(const nxs_view *view);

/* The lease word of `slot` (0 if there is no such slot). */
uint64_t nxs_lease(const nxs_view *view, uint32_t slot);
uint32_t nxs_generation_of(uint64_t lease);
uint32_t nxs_state_of(uint64_t lease);
int32_t nxs_pid_of(uint64_t lease);

/* Monotonic ns of the latest acquire, send, queue, claim or take of `slot` (0 if none). */
uint64_t nxs_since(const nxs_view *view, uint32_t slot);

/* Where buffer `slot` starts: base + nxs_buffer_offset (slot < capacity). */
uint64_t nxs_buffer_offset(const nxs_view *view, uint32_t slot);

/* Whether process `pid` exists (0 and negative pids: no). */
int nxs_process_alive(int32_t pid);

#ifdef NXS_CRASH_POINTS
/* Test builds only: the process kills itself (SIGKILL) on reaching step `point` of the
 * numbered steps (see NXS_STEP in nexus_pool_shared.c); 0: never. */
void nxs_set_crash_point(int point);
#endif

#endif /* NEXUS_POOL_SHARED_H */
