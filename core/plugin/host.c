/* The host table lent to plugins. The allocator keeps a header in front of
 * each block so frees can be counted and peak memory reported per run. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>
#include <dlas/tensor.h>

#define HEADER 64 /* keeps the user block 64-byte aligned */

static atomic_llong in_use, peak;

static void *host_alloc(size_t bytes)
{
    unsigned char *p = dlas_aligned_alloc(bytes + HEADER);
    if (!p)
        return NULL;
    memcpy(p, &bytes, sizeof bytes);
    long long now = atomic_fetch_add(&in_use, (long long)bytes) + (long long)bytes;
    long long old = atomic_load(&peak);
    while (now > old && !atomic_compare_exchange_weak(&peak, &old, now))
        ;
    return p + HEADER;
}

static void host_free(void *q)
{
    if (!q)
        return;
    unsigned char *p = (unsigned char *)q - HEADER;
    size_t bytes;
    memcpy(&bytes, p, sizeof bytes);
    atomic_fetch_sub(&in_use, (long long)bytes);
    dlas_aligned_free(p);
}

static void host_log(enum dlas_log_level level, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    dlas_log(level, "%s", line);
}

void dlas_host_init(struct dlas_host *h, struct dlas_rng *rng, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    h->size = sizeof *h;
    h->log = host_log;
    h->alloc = host_alloc;
    h->free = host_free;
    h->rng = rng;
    h->seed = seed;
}

int64_t dlas_host_bytes_in_use(void) { return atomic_load(&in_use); }
int64_t dlas_host_bytes_peak(void) { return atomic_load(&peak); }
void dlas_host_reset_peak(void) { atomic_store(&peak, atomic_load(&in_use)); }
