/* Backend "openmp": CPU threads through the OpenMP runtime, with OpenBLAS
 * (the OpenMP build) held to the same thread count so that a GEMM issued by
 * a primitive never oversubscribes the cores the backend was given. */
#define _GNU_SOURCE /* sched_getaffinity, pthread_setaffinity_np */
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cblas.h>

#include <dlas/plugin.h>
#include <dlas/tensor.h>

struct be_ctx {
    const struct dlas_host *host;
    int threads;
    char bind[8];
};

/* Below this many iterations a parallel region costs more than it saves; the
 * callers' iterations are coarse (images, channel blocks), so keep it low. */
#define MIN_PARALLEL_N 2

static int pin_threads(struct be_ctx *c, int spread);

static int be_init(const struct dlas_host *host, const struct dlas_params *p, void **out)
{
    *out = NULL;
    int64_t threads = p ? dlas_param_int(p, "threads") : 0;
    const char *bind = p ? dlas_param_str(p, "bind") : NULL;
    if (!bind)
        bind = "none";
    if (threads < 0 || threads > 1024)
        return dlas_error(DLAS_ERR_INVALID, "openmp: threads = %lld is outside 0..1024",
                          (long long)threads);
    if (strcmp(bind, "none") && strcmp(bind, "close") && strcmp(bind, "spread"))
        return dlas_error(DLAS_ERR_INVALID,
                          "openmp: bind = \"%s\" is not one of none, close, spread", bind);
    if (threads == 0)
        threads = omp_get_num_procs();
    if (threads < 1)
        threads = 1;

    struct be_ctx *c = host->alloc(sizeof *c);
    if (!c)
        return dlas_error(DLAS_ERR_NOMEM, "openmp: cannot allocate the backend context");
    c->host = host;
    c->threads = (int)threads;
    snprintf(c->bind, sizeof c->bind, "%s", bind);

    /* libgomp reads OMP_PROC_BIND once, when the runtime starts (before any
     * plugin is loaded), and offers no call to change the binding later. When
     * the environment sets it, it is in effect and says so; otherwise the
     * threads of the pool are pinned here, each to one CPU the process may
     * run on: close = consecutive CPUs, spread = evenly spaced ones. libgomp
     * keeps the same OS threads for later regions of up to this size, so the
     * pinning lasts (OpenBLAS's OpenMP build runs on the same pool). */
    if (strcmp(bind, "none")) {
        const char *env = getenv("OMP_PROC_BIND");
        if (env && *env && strcasecmp(env, bind))
            host->log(DLAS_LOG_WARN,
                      "openmp: bind = \"%s\" requested but OMP_PROC_BIND=%s is in effect", bind,
                      env);
        else if (!env || !*env) {
            int rc = pin_threads(c, !strcmp(bind, "spread"));
            if (rc) {
                host->free(c);
                return rc;
            }
        }
    }

    /* OpenBLAS's OpenMP build sizes each GEMM from omp_get_max_threads() of
     * the calling thread, and openblas_set_num_threads() sets that too. */
    omp_set_num_threads(c->threads);
    openblas_set_num_threads(c->threads);
    *out = c;
    return DLAS_OK;
}

/* Pin the pool's c->threads threads, thread i to one allowed CPU. */
static int pin_threads(struct be_ctx *c, int spread)
{
    cpu_set_t avail;
    if (sched_getaffinity(0, sizeof avail, &avail))
        return dlas_error(DLAS_ERR_UNAVAILABLE, "openmp: cannot read the CPU affinity mask");
    int cpus[CPU_SETSIZE], n = 0;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &avail))
            cpus[n++] = i;
    if (n < 1)
        return dlas_error(DLAS_ERR_UNAVAILABLE, "openmp: no CPU in the affinity mask");
    int failed = 0;
#pragma omp parallel num_threads(c->threads) reduction(+ : failed)
    {
        int id = omp_get_thread_num(), nt = omp_get_num_threads();
        int slot = spread ? (int)((long)id * n / nt) % n : id % n;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[slot], &one);
        failed += pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0;
    }
    if (failed)
        return dlas_error(DLAS_ERR_UNAVAILABLE, "openmp: could not pin %d of %d threads",
                          failed, c->threads);
    c->host->log(DLAS_LOG_DEBUG, "openmp: %d threads pinned (%s) to %d CPUs", c->threads,
                 spread ? "spread" : "close", n);
    return DLAS_OK;
}

static int be_threads(void *ctx) { return ((struct be_ctx *)ctx)->threads; }

/* Shares of at most this many threads live on the stack. */
#define STACK_SHARES 64

static void be_parallel_for(void *ctx, int64_t n, dlas_range_fn fn, void *arg)
{
    struct be_ctx *c = ctx;
    if (n <= 0)
        return;
    int t = c->threads;
    if (t > n)
        t = (int)n;
    if (t <= 1 || n < MIN_PARALLEL_N) {
        fn(arg, 0, n, 0);
        return;
    }
    /* Each thread owns the contiguous share a static split gives it and the
     * others take what it has not started (dlas_share). The team is always
     * the whole pool, even when n < threads: libgomp ends the pool threads a
     * smaller team leaves out and creates them again for the next larger
     * one, so teams sized by n cost a pthread_create per thread in most
     * calls on 4 or more threads. */
    struct dlas_share stack[STACK_SHARES] __attribute__((aligned(64))), *sh = stack;
    if (t > STACK_SHARES && !(sh = malloc((size_t)t * sizeof *sh))) {
        sh = stack; /* out of memory: the first STACK_SHARES threads share it all */
        t = STACK_SHARES;
    }
    dlas_share_init(sh, n, t);
#pragma omp parallel num_threads(c->threads)
    {
        int id = omp_get_thread_num();
        int nt = omp_get_num_threads(); /* the runtime may give fewer than asked */
        if (nt > t)
            nt = t;
        int64_t b, e;
        /* a team smaller than asked: its threads also take the missing ones' shares */
        while (id < nt && dlas_share_next(sh, t, id, &b, &e))
            fn(arg, b, e, id);
    }
    if (sh != stack)
        free(sh);
}

static void *be_alloc(void *ctx, size_t bytes) { return dlas_aligned_alloc(bytes); }

static void be_free(void *ctx, void *p) { dlas_aligned_free(p); }

static int be_sync(void *ctx) { return DLAS_OK; }

static double be_now(void *ctx)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void be_release(void *ctx)
{
    struct be_ctx *c = ctx;
    if (c)
        c->host->free(c);
}

static const struct dlas_param_spec be_params[] = {
    {"threads", DLAS_PARAM_INT, 0, "0", 0, 1024, NULL,
     "worker threads; 0 = every processor OpenMP reports (omp_get_num_procs)"},
    {"bind", DLAS_PARAM_ENUM, 0, "none", 0, 0, "none|close|spread",
     "pin the threads to CPUs: close = consecutive ones, spread = evenly spaced ones, "
     "none = leave them to the scheduler (OMP_PROC_BIND, when set, takes precedence)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_backend_ops be_ops = {
    .size = sizeof(struct dlas_backend_ops),
    .device = "cpu",
    .init = be_init,
    .threads = be_threads,
    .parallel_for = be_parallel_for,
    .alloc = be_alloc,
    .free = be_free,
    .sync = be_sync,
    .now = be_now,
    .release = be_release,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_BACKEND, "openmp",
     "CPU threads through OpenMP; OpenBLAS kept at the same thread count",
     "OpenMP Application Programming Interface, version 4.5 (OpenMP ARB, 2015)", be_params,
     &be_ops},
};

DLAS_PLUGIN("openmp", "0.1.0", "OpenMP CPU backend", components)
