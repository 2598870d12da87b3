/* Whether large buffers may be advised to the kernel as huge-page memory
 * (core/base/tensor.c's tensors and buffers, core/kernels/arena.c's
 * kernel buffers): yes, unless DLAS_HUGEPAGES=0 is in the environment.
 * Header-only, so that the kernels (linked without libdlas into the
 * primitives and their tests) read the same switch; each file that
 * includes it reads the environment once. */
#ifndef DLAS_BASE_HUGEPAGES_H
#define DLAS_BASE_HUGEPAGES_H

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static inline int huge_pages_wanted(void)
{
    /* atomic: threads may ask at once (they all store the same answer) */
    static _Atomic int on = -1;
    int v = atomic_load_explicit(&on, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("DLAS_HUGEPAGES");
        v = !(e && !strcmp(e, "0"));
        atomic_store_explicit(&on, v, memory_order_relaxed);
    }
    return v;
}

#endif
