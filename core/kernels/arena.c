/* The fused kernels' buffers (pc_alloc_floats, pc_kernels.h): those of
 * 64 KiB or more in 2 MiB chunks advised as huge pages.
 *
 * A fused block's packed weights are 0.1-2 MB each (MobileNet-v2's 7x7
 * blocks 0.6-1.8 MB, its head 6.7 MB), read once an inference at batch 1:
 * a stream through 4 KiB pages takes a TLB miss every 4 KiB, and the
 * hardware prefetcher stops at each page's end. Placed apart, each in its
 * own malloc'd run, none of them fills a 2 MiB page that transparent huge
 * pages could back; here they share chunks that can be. (Measured with
 * bench_plan profile, MobileNet-v2 at batch 1: one thread 6.01-6.17 ms ->
 * 5.89-5.91, the head 0.51-0.55 -> 0.45-0.46 ms and the 7x7 blocks 3-5%
 * faster; two threads 1-1.4%.)
 *
 * A chunk is handed out front to back and released when the last buffer
 * in it is freed; its space is not reused before that. Buffers larger than
 * a chunk get a run of whole chunks of their own. Smaller buffers, and all
 * of them with DLAS_HUGEPAGES=0 in the environment (as for core/base's
 * tensors), come from aligned_alloc. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../base/hugepages.h"
#include "pc_kernels.h"

#define CHUNK ((size_t)2 << 20)
#define MIN_BYTES ((size_t)64 << 10)

struct chunk {
    char *base;
    size_t size, used;
    int64_t live; /* buffers in it not yet freed */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct chunk *chunks;
static int64_t n_chunks, cap_chunks;
static int64_t current = -1; /* the chunk handed out from, or -1 */

/* A new chunk (or run of chunks) of size bytes; its index, or -1. */
static int64_t chunk_new(size_t size)
{
    if (n_chunks == cap_chunks) {
        int64_t cap = cap_chunks ? 2 * cap_chunks : 16;
        struct chunk *c = realloc(chunks, (size_t)cap * sizeof *c);
        if (!c)
            return -1;
        chunks = c;
        cap_chunks = cap;
    }
    void *p = NULL;
    if (posix_memalign(&p, CHUNK, size))
        return -1;
    (void)madvise(p, size, MADV_HUGEPAGE); /* advice: without THP it changes nothing */
    chunks[n_chunks] = (struct chunk){p, size, 0, 0};
    return n_chunks++;
}

/* bytes (a multiple of 64) from the current chunk, a new one, or a run of
 * its own; NULL when out of memory. */
static void *arena_alloc(size_t bytes)
{
    int64_t k;
    if (bytes > CHUNK) {
        k = chunk_new((bytes + CHUNK - 1) & ~(CHUNK - 1));
    } else {
        if (current < 0 || chunks[current].size - chunks[current].used < bytes)
            current = chunk_new(CHUNK);
        k = current;
    }
    if (k < 0)
        return NULL;
    char *p = chunks[k].base + chunks[k].used;
    chunks[k].used += bytes;
    chunks[k].live++;
    return p;
}

/* The chunk p was handed out from, or -1 (an aligned_alloc buffer). */
static int64_t chunk_of(const void *p)
{
    for (int64_t k = 0; k < n_chunks; k++)
        if ((const char *)p >= chunks[k].base && (const char *)p < chunks[k].base + chunks[k].size)
            return k;
    return -1;
}

float *pc_alloc_floats(int64_t n)
{
    if (n > ((int64_t)1 << 56)) /* no machine has it, and the sizes below must not wrap */
        return NULL;
    const size_t bytes = ((size_t)(n > 0 ? n : 1) * sizeof(float) + 63) / 64 * 64;
    void *p = NULL;
    if (bytes >= MIN_BYTES && huge_pages_wanted()) {
        pthread_mutex_lock(&lock);
        p = arena_alloc(bytes);
        pthread_mutex_unlock(&lock);
    } else {
        p = aligned_alloc(64, bytes);
    }
    if (p)
        memset(p, 0, bytes);
    return p;
}

void pc_free_floats(float *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&lock);
    const int64_t k = chunk_of(p);
    if (k >= 0 && --chunks[k].live == 0) {
        free(chunks[k].base);
        chunks[k] = chunks[--n_chunks]; /* the last one takes its place */
        if (current == k)
            current = -1;
        else if (current == n_chunks)
            current = k;
    }
    pthread_mutex_unlock(&lock);
    if (k < 0)
        free(p);
}

int64_t pc_arena_chunks(void)
{
    pthread_mutex_lock(&lock);
    const int64_t n = n_chunks;
    pthread_mutex_unlock(&lock);
    return n;
}
