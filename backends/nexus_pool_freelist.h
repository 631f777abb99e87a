/* nexus_pool's lock-free free list: the native half of the `atomic` backend.
 *
 * cffi's cdef() reads this file as it is, so it holds declarations only: no
 * #include, no include guard, no macros. Include <stdint.h> before it.
 *
 * A free list tracks which of `capacity` slots are free, as an intrusive Treiber
 * stack of slot indices. One thread pops (the pool's acquirer); any thread pushes.
 * Every symbol is prefixed nxp_.
 */

typedef struct nxp_freelist nxp_freelist;

/* A free list of `capacity` slots, all free, popping 0, 1, 2, ... first.
 * NULL if capacity is out of range (1 .. nxp_max_capacity()) or memory ran out. */
nxp_freelist *nxp_create(int64_t capacity);
void nxp_destroy(nxp_freelist *list);
int64_t nxp_max_capacity(void);

/* Take the top slot: its index, or -1 when the list is empty. Never blocks. */
int64_t nxp_pop(nxp_freelist *list);

/* The ticket of `slot`: the one argument nxp_push needs (it locates list and slot).
 * 0 if there is no such slot. Valid as long as the list is. */
intptr_t nxp_ticket(nxp_freelist *list, int64_t slot);

/* Give back the slot named by `ticket`, from any thread. Returns
 *    0  done;
 *   -1  refused: that slot is not leased (a double push), the list is unchanged. */
int nxp_push(intptr_t ticket);

/* Free slots now; a snapshot while other threads push. */
int64_t nxp_available(nxp_freelist *list);

/* 1 if `slot` is leased (taken and not given back yet), 0 if free or out of range. */
int nxp_is_leased(nxp_freelist *list, int64_t slot);

/* Defined by the cffi glue (build_freelist.py), not by nexus_pool_freelist.c:
 * 1 if the calling thread kept its Python thread state (the GIL, on GIL builds)
 * during this call. The glue makes every call above keep it; tests check that. */
int nxp_glue_keeps_thread_state(void);
