/* nexus_pool's lock-free free list (see nexus_pool_freelist.h for the contract).
 *
 * The stack is intrusive: slot i's record holds the index of the slot below it.
 * The head word packs a 32-bit tag above the 32-bit index of the top slot, and
 * every successful pop or push bumps the tag. A compare-and-swap on the head then
 * fails whenever anything happened since it was read, so the classic ABA corruption
 * (pop reads top A and its next B; A and B are popped and A pushed back; the stale
 * CAS installs B although B is in use) cannot happen even if two threads pop at
 * once, which the design forbids but a buggy program may still do.
 *
 * Each slot also has a state word, FREE or LEASED. Push moves it LEASED -> FREE
 * with one CAS before touching the stack, so of two threads pushing the same slot
 * at once exactly one gets in; the other is refused and the stack is untouched.
 */

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "nexus_pool_freelist.h"

#define NXP_NIL UINT32_MAX
#define NXP_CACHE_LINE 64

enum { NXP_FREE = 0, NXP_LEASED = 1 };

typedef struct nxp_slot {
    _Atomic uint32_t next;  /* the slot below this one on the stack, or NXP_NIL */
    _Atomic uint32_t state; /* NXP_FREE or NXP_LEASED */
    nxp_freelist *owner;    /* so that a ticket (this record's address) finds its list */
} nxp_slot;

struct nxp_freelist {
    /* Every pop and push writes this line; keeping the counters beside the head
     * means one contended cache line per operation instead of two. */
    _Alignas(NXP_CACHE_LINE) _Atomic uint64_t head; /* tag << 32 | top index */
    _Atomic int64_t free_count;
    int64_t capacity;
    _Alignas(NXP_CACHE_LINE) nxp_slot slots[];
};

static inline uint64_t
nxp_pack(uint64_t old_head, uint32_t index)
{
    return (((old_head >> 32) + 1) << 32) | index;
}

int64_t
nxp_max_capacity(void)
{
    return INT32_MAX;
}

nxp_freelist *
nxp_create(int64_t capacity)
{
    if (capacity < 1 || capacity > nxp_max_capacity())
        return NULL;
    size_t size = sizeof(nxp_freelist) + (size_t)capacity * sizeof(nxp_slot);
    size = (size + NXP_CACHE_LINE - 1) / NXP_CACHE_LINE * NXP_CACHE_LINE;
    nxp_freelist *list = aligned_alloc(NXP_CACHE_LINE, size);
    if (list == NULL)
        return NULL;
    list->capacity = capacity;
    for (int64_t i = 0; i < capacity; i++) {
        uint32_t next = (i + 1 < capacity) ? (uint32_t)(i + 1) : NXP_NIL;
        atomic_init(&list->slots[i].next, next);
        atomic_init(&list->slots[i].state, NXP_FREE);
        list->slots[i].owner = list;
    }
    atomic_init(&list->free_count, capacity);
    atomic_init(&list->head, 0); /* tag 0, top slot 0 */
    return list;
}

void
nxp_destroy(nxp_freelist *list)
{
    free(list);
}

int64_t
nxp_pop(nxp_freelist *list)
{
    /* seq_cst: a waiting acquirer announces itself before this pop, a releaser looks for
     * announcements after its push (nexus_pool/_slots.py); one of them sees the other. */
    uint64_t head = atomic_load_explicit(&list->head, memory_order_seq_cst);
    for (;;) {
        uint32_t top = (uint32_t)head;
        if (top == NXP_NIL)
            return -1;
        /* May be stale if another popper raced us; the tagged CAS then fails. */
        uint32_t below = atomic_load_explicit(&list->slots[top].next, memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&list->head, &head, nxp_pack(head, below), memory_order_seq_cst,
                                                  memory_order_seq_cst)) {
            atomic_store_explicit(&list->slots[top].state, NXP_LEASED, memory_order_release);
            atomic_fetch_sub_explicit(&list->free_count, 1, memory_order_relaxed);
            return top;
        }
    }
}

intptr_t
nxp_ticket(nxp_freelist *list, int64_t slot)
{
    if (slot < 0 || slot >= list->capacity)
        return 0;
    return (intptr_t)&list->slots[slot];
}

/* One argument, not (list, slot): cffi passes a single argument without building a
 * tuple, which is a third of the cost of a push. */
int
nxp_push(intptr_t ticket)
{
    nxp_slot *slot = (nxp_slot *)ticket;
    nxp_freelist *list = slot->owner;
    uint32_t index = (uint32_t)(slot - list->slots);

    uint32_t leased = NXP_LEASED;
    if (!atomic_compare_exchange_strong_explicit(&slot->state, &leased, NXP_FREE, memory_order_acquire,
                                                 memory_order_relaxed))
        return -1;

    /* Count up before the slot becomes visible, and pop counts down after taking
     * one: the snapshot never drops below the true number of free slots, never
     * goes negative and never exceeds the capacity. */
    atomic_fetch_add_explicit(&list->free_count, 1, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&list->head, memory_order_relaxed);
    do {
        atomic_store_explicit(&slot->next, (uint32_t)head, memory_order_relaxed);
        /* release: the value's reset (done by our caller) happens-before its next pop. */
    } while (!atomic_compare_exchange_weak_explicit(&list->head, &head, nxp_pack(head, index), memory_order_seq_cst,
                                                    memory_order_relaxed));
    return 0;
}

int64_t
nxp_available(nxp_freelist *list)
{
    return atomic_load_explicit(&list->free_count, memory_order_relaxed);
}

int
nxp_is_leased(nxp_freelist *list, int64_t slot)
{
    if (slot < 0 || slot >= list->capacity)
        return 0;
    return atomic_load_explicit(&list->slots[slot].state, memory_order_acquire) == NXP_LEASED;
}
