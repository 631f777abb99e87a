/* Drives the shared-memory core, built with NXS_CRASH_POINTS, to die at a numbered step.
 *
 *   crash_driver NAME POINT OPERATION [SLOT GENERATION]
 *
 * Maps block NAME, sets the crash point (0: none), and runs OPERATION as its own process:
 *   acquire          take a free slot
 *   acquire-send     take a free slot, then send it
 *   acquire-queue    take a free slot, then put it in the block's work queue
 *   claim            claim SLOT GENERATION (in transit)
 *   claim-release    claim it, then release it
 *   take             take the next slot from the block's work queue
 *   reclaim          give back dead holders' slots and every slot in transit or queued
 * The process kills itself (SIGKILL) on reaching POINT; reaching the end prints what it
 * did and exits 0. Built by tests/shared/test_crash_points.py.
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nexus_pool_shared.h"

static int fail(const char *what)
{
    fprintf(stderr, "crash_driver: %s\n", what);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return fail("usage: crash_driver NAME POINT OPERATION [SLOT GENERATION]");
    char path[300];
    snprintf(path, sizeof path, "/%s", argv[1]);
    int fd = shm_open(path, O_RDWR, 0);
    struct stat status;
    if (fd < 0 || fstat(fd, &status) != 0)
        return fail("cannot open the block");
    void *base = mmap(NULL, (size_t)status.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    nxs_view view;
    if (base == MAP_FAILED || nxs_attach(&view, base, (uint64_t)status.st_size) != NXS_OK)
        return fail("no block");
    int32_t pid = (int32_t)getpid();
    nxs_set_crash_point(atoi(argv[2]));
    const char *operation = argv[3];
    uint32_t cursor = 0, generation = 0;
    if (strncmp(operation, "acquire", 7) == 0) {
        int64_t slot = nxs_try_acquire(&view, pid, &cursor, &generation);
        if (slot < 0)
            return fail("nothing to acquire");
        if (strcmp(operation, "acquire-send") == 0 && nxs_send(&view, (uint32_t)slot, generation, pid) != NXS_OK)
            return fail("send refused");
        if (strcmp(operation, "acquire-queue") == 0 && nxs_queue(&view, (uint32_t)slot, generation, pid) != NXS_OK)
            return fail("queue refused");
        printf("%lld %u\n", (long long)slot, generation);
    }
    else if (strcmp(operation, "take") == 0) {
        int64_t slot = nxs_take(&view, pid, &generation);
        if (slot < 0)
            return fail("nothing to take");
        printf("%lld %u\n", (long long)slot, generation);
    }
    else if (strcmp(operation, "claim") == 0 || strcmp(operation, "claim-release") == 0) {
        if (argc < 6)
            return fail("claim needs SLOT GENERATION");
        uint32_t slot = (uint32_t)strtoul(argv[4], NULL, 10);
        generation = (uint32_t)strtoul(argv[5], NULL, 10);
        if (nxs_claim(&view, slot, generation, pid) != NXS_OK)
            return fail("claim refused");
        if (strcmp(operation, "claim-release") == 0 && nxs_release(&view, slot, generation, pid) != NXS_OK)
            return fail("release refused");
        printf("%u %u\n", slot, generation);
    }
    else if (strcmp(operation, "reclaim") == 0) {
        printf("%lld\n", (long long)nxs_reclaim(&view, 0));
    }
    else
        return fail("unknown operation");
    return 0;
}
