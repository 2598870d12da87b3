/* The machine probe around a point's timed runs (see exp_probe.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dlas/status.h>

#include "exp_probe.h"
#include "../base/fma_loop.h"

double exp_fma_probe(int threads)
{
    if (threads < 1)
        threads = 1;
    double r[3];
    for (int k = 0; k < 3; k++) /* ~1 ms each on a 115 GFLOP/s core */
        r[k] = fma_loop_rate(threads, 300000) / threads;
    /* the median of three */
    double lo = r[0] < r[1] ? r[0] : r[1], hi = r[0] < r[1] ? r[1] : r[0];
    return r[2] < lo ? lo : r[2] > hi ? hi : r[2];
}

static struct exp_probe_best *find(const struct exp_probes *p, const char *host, int threads)
{
    for (int i = 0; i < p->n; i++)
        if (p->v[i].threads == threads && !strcmp(p->v[i].host, host))
            return &p->v[i];
    return NULL;
}

double exp_probes_best(const struct exp_probes *p, const char *host, int threads)
{
    const struct exp_probe_best *b = host ? find(p, host, threads) : NULL;
    return b ? b->gflops : 0;
}

/* The row's host, thread count and probe; 0 when it has none of them. */
static int row_probe(const struct dlas_row *row, const char **host, int *threads, double *g)
{
    const char *st = dlas_row_get(row, "status"), *h = dlas_row_get(row, "hostname"),
               *th = dlas_row_get(row, "threads"), *pg = dlas_row_get(row, "probe_gflops_per_thread");
    if (!st || strcmp(st, "ok") || !h || !th || !pg || !*pg)
        return 0;
    *host = h;
    *threads = atoi(th);
    *g = atof(pg);
    return *threads > 0 && *g > 0;
}

int exp_probes_note(struct exp_probes *p, const struct dlas_row *row)
{
    const char *host;
    int threads;
    double g;
    if (!row_probe(row, &host, &threads, &g))
        return DLAS_OK;
    struct exp_probe_best *b = find(p, host, threads);
    if (!b) {
        if (p->n == p->cap) {
            int cap = p->cap ? 2 * p->cap : 8;
            struct exp_probe_best *v = realloc(p->v, (size_t)cap * sizeof *v);
            if (!v)
                return dlas_error(DLAS_ERR_NOMEM, "out of memory");
            p->v = v;
            p->cap = cap;
        }
        b = &p->v[p->n++];
        snprintf(b->host, sizeof b->host, "%s", host);
        b->threads = threads;
        b->gflops = 0;
    }
    if (g > b->gflops)
        b->gflops = g;
    return DLAS_OK;
}

int exp_probes_flag(const struct exp_probes *p, struct dlas_row *row)
{
    const char *host;
    int threads;
    double g;
    if (!row_probe(row, &host, &threads, &g))
        return 0;
    double best = exp_probes_best(p, host, threads);
    const char *why = dlas_row_get(row, "timing_noise");
    if (!(best > 0) || g >= EXP_PROBE_FULL * best || (why && strstr(why, "FMA rate")))
        return 0;
    char text[512];
    snprintf(text, sizeof text,
             "%s%sthe machine gave %.0f%% of its best FMA rate (%.1f of %.1f GFLOP/s a thread)",
             why ? why : "", why && *why ? "; " : "", 100 * g / best, g, best);
    dlas_row_set(row, "timing_noise", text);
    dlas_row_set(row, "timing_noisy", "1");
    return 1;
}

void exp_probes_free(struct exp_probes *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}
