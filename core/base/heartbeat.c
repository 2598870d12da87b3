/* The heartbeat: one 64-bit counter in an anonymous shared mapping, made
 * before a point's child is forked, so that the child's increments are seen
 * by the parent without a pipe or a signal. */
#include <stddef.h>
#include <sys/mman.h>

#include "heartbeat.h"

static volatile uint64_t *beats;

void dlas_heartbeat(void)
{
    if (beats)
        __atomic_fetch_add(beats, 1, __ATOMIC_RELAXED);
}

volatile uint64_t *dlas_heartbeat_share(void)
{
    void *p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    beats = p;
    *beats = 0;
    return beats;
}

void dlas_heartbeat_unshare(volatile uint64_t *counter)
{
    if (!counter)
        return;
    if (beats == counter)
        beats = NULL;
    munmap((void *)counter, sizeof(uint64_t));
}
