/* Shared checks, backend queries and the phase runner of the CPU convolution
 * primitives. */
#include <limits.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "prim_common.h"

int pc_fail(const char *prim, char *why, size_t len, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (why && len)
        snprintf(why, len, "%s", msg);
    return dlas_error(status, "%s: %s", prim, msg);
}

int pc_check_desc(const char *prim, const struct dlas_conv_desc *d, char *why, size_t len)
{
    char reason[384];
    if (why && len)
        why[0] = '\0';
    if (dlas_conv_desc_check(d, reason, sizeof reason))
        return pc_fail(prim, why, len, DLAS_ERR_INVALID, "malformed layer: %s", reason);
    /* Offsets are int64_t throughout, but the tap tables and tile indices
     * use int: keep every dimension well inside it. */
    if (d->in_h > (1 << 20) || d->in_w > (1 << 20) || d->in_c > (1 << 24) ||
        d->out_c > (1 << 24) || (int64_t)d->kh * d->kw > (1 << 16))
        return pc_fail(prim, why, len, DLAS_ERR_UNSUPPORTED,
                       "a dimension exceeds this primitive's index range");
    return DLAS_OK;
}

int pc_layouts(const char *prim, const struct dlas_conv_desc *d, int in_layout, int out_layout,
               int res_layout, int c16[3])
{
    const int l[3] = {in_layout, out_layout, res_layout};
    for (int k = 0; k < 3; k++)
        if (l[k] != DLAS_LAYOUT_NCHW && l[k] != DLAS_LAYOUT_C16)
            return pc_fail(prim, NULL, 0, DLAS_ERR_INVALID, "layouts %d, %d, %d", in_layout,
                           out_layout, res_layout);
    for (int k = 0; k < 3; k++)
        c16[k] = l[k] == DLAS_LAYOUT_C16;
    /* a group of whole blocks of 16 lies in C16 as an image of its own
     * channels does (pc_c16_groups) */
    if ((c16[0] || c16[1] || c16[2]) && !pc_c16_groups(d))
        return pc_fail(prim, NULL, 0, DLAS_ERR_UNSUPPORTED,
                       "the C16 layout with %d groups of %d input and %d output channels "
                       "(not multiples of 16)",
                       d->groups, (int)(d->in_c / d->groups), (int)(d->out_c / d->groups));
    return DLAS_OK;
}

int pc_check_not_depthwise(const char *prim, const struct dlas_conv_desc *d, char *why,
                           size_t len)
{
    int rc = pc_check_desc(prim, d, why, len);
    if (rc)
        return rc;
    if (d->groups > 1 && d->in_c == d->groups)
        return pc_fail(prim, why, len, DLAS_ERR_UNSUPPORTED,
                       "depthwise (one input channel per group): vectors over output "
                       "channels would be nearly empty; grouped-spatial-pack handles it");
    return DLAS_OK;
}

int pc_check_prepare(const char *prim, const struct dlas_backend *be,
                     const struct dlas_conv_desc *d, const float *weight, const float *bias)
{
    int rc = pc_check_desc(prim, d, NULL, 0);
    if (rc)
        return rc;
    if (!weight)
        return dlas_error(DLAS_ERR_INVALID, "%s: no weights", prim);
    if (d->has_bias && !bias)
        return dlas_error(DLAS_ERR_INVALID, "%s: the layer has a bias but none was given", prim);
    if (be && be->ops && be->ops->device && strcmp(be->ops->device, "cpu"))
        return dlas_error(DLAS_ERR_UNSUPPORTED, "%s: runs on the cpu, not on a \"%s\" backend",
                          prim, be->ops->device);
    return DLAS_OK;
}

void *pc_conv_alloc(const char *prim, const struct dlas_host *host,
                    const struct dlas_backend *be, const struct dlas_conv_desc *d, size_t size)
{
    struct pc_conv *c = host->alloc(size);
    if (!c) {
        dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate state", prim);
        return NULL;
    }
    c->host = host;
    if (be && be->ops)
        c->be = *be;
    c->d = *d;
    c->cpg = d->in_c / d->groups;
    c->opg = d->out_c / d->groups;
    return c;
}

void pc_conv_free(struct pc_conv *c)
{
    if (c)
        c->host->free(c);
}

int pc_conv_bias(const struct pc_conv *c, const char *prim, const float *bias, int64_t stride,
                 float **out)
{
    const struct dlas_conv_desc *d = &c->d;
    if (!d->has_bias)
        return DLAS_OK;
    float *b = c->host->alloc((size_t)(d->groups * stride) * sizeof(float));
    if (!b)
        return dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate the bias", prim);
    for (int g = 0; g < d->groups; g++)
        memcpy(b + g * stride, bias + g * c->opg, (size_t)c->opg * sizeof(float));
    *out = b;
    return DLAS_OK;
}

int pc_check_run(const char *prim, const void *state, int64_t batch, const float *in,
                 const float *out, const void *ws)
{
    if (!state || batch < 0 || (batch && (!in || !out || !ws)))
        return dlas_error(DLAS_ERR_INVALID,
                          "%s: run() needs state, input, output and workspace", prim);
    return DLAS_OK;
}

int pc_threads(const struct dlas_backend *be)
{
    if (!be || !be->ops || !be->ops->threads)
        return 1;
    int t = be->ops->threads(be->ctx);
    return t < 1 ? 1 : t;
}

double pc_now(const struct dlas_backend *be)
{
    if (be && be->ops && be->ops->now)
        return be->ops->now(be->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void pc_prof_add(struct dlas_profile *p, const char *phase, double seconds)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->phase[i], phase)) {
            p->seconds[i] += seconds;
            return;
        }
    if (p->n < DLAS_PROFILE_MAX) {
        p->phase[p->n] = phase;
        p->seconds[p->n++] = seconds;
    }
}

/* Shares of at most this many threads live on the stack; more threads
 * than that split the work statically. */
#define STACK_SHARES 64

/* The compute phase on thread id of the nt that take work, reading the
 * input packed at packed: work_team divides it itself; work's items are
 * shared (dlas_share) when sh is set, else split statically. */
static void phase_work(const struct pc_phases *ph, const float *packed, struct dlas_share *sh,
                       int id, int nt)
{
    if (ph->work_team) {
        ph->work_team(ph->ctx, packed, id, nt);
        return;
    }
    int64_t b, e;
    if (sh) {
        while (dlas_share_next(sh, nt, id, &b, &e))
            ph->work(ph->ctx, packed, b, e);
        return;
    }
    pc_split(ph->work_n, id, nt, &b, &e);
    if (b < e)
        ph->work(ph->ctx, packed, b, e);
}

void pc_run_items(const struct dlas_backend *be, int t, int64_t n, pc_items_fn fn,
                  const void *ctx)
{
    if (n <= 0)
        return;
    if (t > n)
        t = (int)n;
    if (t <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    struct dlas_share stack[STACK_SHARES] __attribute__((aligned(64))), *sh = stack;
    if (t > STACK_SHARES && !(sh = malloc((size_t)t * sizeof *sh))) {
        sh = stack; /* out of memory: fewer workers */
        t = STACK_SHARES;
    }
    dlas_share_init(sh, n, t);
#pragma omp parallel num_threads(pc_threads(be))
    {
        /* a team smaller than asked takes the missing workers' shares too */
        int id = omp_get_thread_num(), nt = pc_workers(omp_get_num_threads(), t);
        int64_t b, e;
        while (id < nt && dlas_share_next(sh, t, id, &b, &e))
            fn(ctx, b, e, id);
    }
    if (sh != stack)
        free(sh);
}

void pc_run_phases(const struct dlas_backend *be, int max_threads, const struct pc_phases *ph,
                   struct dlas_profile *prof)
{
    const int team = pc_threads(be);
    int t = team; /* threads that take work (pc_workers) */
    if (max_threads > 0 && t > max_threads)
        t = max_threads;
    /* the workspace has a copy for each of these t (pc_pack_ws_floats) */
    const int private_pack = ph->pack_n > 0 && pc_pack_copies(t, 1, ph->copy_floats) > 1;
    if (!ph->work_team && t > ph->work_n)
        t = ph->work_n > 0 ? (int)ph->work_n : 1;
    const int copies = private_pack && t > 1 ? t : 1;
    double t0 = prof ? pc_now(be) : 0, t1 = 0;
    if (t <= 1) {
        if (ph->pack_n > 0)
            ph->pack(ph->ctx, ph->packed, 0, ph->pack_n);
        if (prof)
            t1 = pc_now(be);
        phase_work(ph, ph->packed, NULL, 0, 1);
    } else {
        struct dlas_share shares[STACK_SHARES] __attribute__((aligned(64)));
        /* items are shared (a thread that is done takes what another has
         * not started: threads packing their own copies start at different
         * times) while the shares fit on the stack */
        const int shared = !ph->work_team && t <= STACK_SHARES;
        if (shared)
            dlas_share_init(shares, ph->work_n, t);
#pragma omp parallel num_threads(team)
        {
            int id = omp_get_thread_num(), all = omp_get_num_threads();
            int nt = pc_workers(all, t);
            const float *packed = ph->packed;
            if (copies > 1) {
                /* a small input: each worker packs all of it into a copy
                 * of its own, and nobody waits for anybody */
                if (id < nt) {
                    float *own = ph->packed + id * ph->copy_floats;
                    ph->pack(ph->ctx, own, 0, ph->pack_n);
                    packed = own;
                }
            } else {
                /* packing has no per-thread buffers: the whole team shares it */
                int64_t b, e;
                pc_split(ph->pack_n, id, all, &b, &e);
                if (b < e)
                    ph->pack(ph->ctx, ph->packed, b, e);
                /* nothing packed, nothing to wait for (a barrier costs a few
                 * microseconds on a VM: a small layer's whole packing) */
                if (ph->pack_n > 0) {
#pragma omp barrier
                }
            }
            if (prof && id == 0)
                t1 = pc_now(be);
            /* a team smaller than asked takes the missing threads' shares too */
            if (id < nt)
                phase_work(ph, packed, shared ? shares : NULL, id, shared ? t : nt);
        }
    }
    if (prof) {
        double t2 = pc_now(be);
        pc_prof_add(prof, "pack", t1 - t0);
        pc_prof_add(prof, ph->work_phase, t2 - t1);
    }
}
