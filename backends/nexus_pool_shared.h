/* nexus_pool's shared-memory buffer pool core (nexus_pool.shared; Linux first).
 *
 * cffi's cdef() reads this file as it is: declarations only. Include <stdint.h> first.
 *
 * One block of shared memory holds a header, one 64-byte record per slot and the
 * page-aligned buffers. The free slots form the same tagged Treiber stack as
 * nexus_pool_freelist.c, but index-based inside the block, so every process that maps
 * it (at any address) shares it: lock-free 64-bit atomics are address-free.
 *
 * Each slot's lease word packs generation (32 bits), state (2 bits) and holder pid (30
 * bits). Every hand-over is one compare-and-swap on it:
 *     FREE(g) -acquire-> HELD(g+1, acquirer) -send-> TRANSIT(g+1, sender)
 *             -claim-> HELD(g+1, receiver) -release-> FREE(g+1), pushed.
 * A handle is (slot, generation): a stale, duplicate or foreign one fails its CAS.
 * Every symbol is prefixed nxs_.
 */

/* Bytes to map for `capacity` buffers of `buffer_size` bytes; 0 if out of range. */
uint64_t nxs_block_size(uint32_t capacity, uint64_t buffer_size);

/* Lay a new block out in `mapped` zeroed bytes at `base`: every slot free, popping
 * 0, 1, 2, ... first. 0, or -1 if the sizes do not fit. */
int nxs_init(void *base, uint64_t mapped, uint32_t capacity, uint64_t buffer_size, int32_t creator);

/* 0 if `base` holds a block (right magic and version) that fits in `mapped` bytes. */
int nxs_check(void *base, uint64_t mapped);

uint32_t nxs_capacity(void *base);
uint64_t nxs_buffer_size(void *base);
int32_t nxs_creator(void *base);
uint64_t nxs_buffer_offset(void *base, uint32_t slot);  /* from base; page-aligned */

/* Take a free slot for `pid`: its index, its new generation in *generation; -1 if
 * none is free. Never blocks. */
int64_t nxs_try_acquire(void *base, int32_t pid, uint32_t *generation);

/* Sleep until a release may have freed a slot, at most timeout_ns (< 0: no limit).
 * 0: woken, or a slot is free (look again); 1: timed out; 2: interrupted (EINTR). */
int nxs_wait(void *base, int64_t timeout_ns);

/* HELD(generation, pid) -> TRANSIT(generation, pid), stamped with CLOCK_MONOTONIC (the
 * clock of Python's time.monotonic on Linux). 0, or -1. */
int nxs_send(void *base, uint32_t slot, uint32_t generation, int32_t pid);

/* TRANSIT(generation, anyone) -> HELD(generation, pid). 0, or -1 (stale, duplicate,
 * foreign: the slot is not in transit at that generation). */
int nxs_claim(void *base, uint32_t slot, uint32_t generation, int32_t pid);

/* HELD(generation, pid) -> FREE(generation), push, wake a sleeping acquirer. 0, or -1
 * (not held by pid at that generation: the block is unchanged). */
int nxs_release(void *base, uint32_t slot, uint32_t generation, int32_t pid);

/* Give back the slots held by processes that no longer exist and, if
 * transit_max_age_ns >= 0, slots in transit for longer than that. How many. */
int64_t nxs_reclaim(void *base, int64_t transit_max_age_ns);

/* Free slots now (a snapshot). */
int64_t nxs_available(void *base);

/* The lease word of `slot` (for tests and introspection): generation << 32 | state << 30 | pid. */
uint64_t nxs_lease(void *base, uint32_t slot);
