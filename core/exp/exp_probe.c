/* The machine probe around a point's timed runs (see exp_probe.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dlas/status.h>

#include "exp_probe.h"
#include "../base/fma_loop.h"
#include "../base/line_trip.h"

static double median3(const double *r)
{
    double lo = r[0] < r[1] ? r[0] : r[1], hi = r[0] < r[1] ? r[1] : r[0];
    return r[2] < lo ? lo : r[2] > hi ? hi : r[2];
}

double exp_fma_probe(int threads)
{
    if (threads < 1)
        threads = 1;
    double r[3];
    for (int k = 0; k < 3; k++) /* ~1 ms each on a 115 GFLOP/s core */
        r[k] = fma_loop_rate(threads, 300000) / threads;
    return median3(r);
}

double exp_line_probe(int threads)
{
    if (threads < 2)
        return 0;
    double r[3];
    for (int k = 0; k < 3; k++) /* 0.1-1.4 ms each */
        r[k] = line_trip_ns(2000);
    return median3(r);
}

int exp_probe_short(double g, double line, double best, double line_best)
{
    return (best > 0 && g < EXP_PROBE_FULL * best ? EXP_PROBE_LOW_FMA : 0) |
           (line_best > 0 && line > EXP_PROBE_NEAR * line_best ? EXP_PROBE_APART : 0);
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

double exp_probes_best_line(const struct exp_probes *p, const char *host, int threads)
{
    const struct exp_probe_best *b = host ? find(p, host, threads) : NULL;
    return b ? b->line_ns : 0;
}

/* The row's host, thread count and probe (its round trip, 0 when it has
 * none); 0 when it has none of the first three. */
static int row_probe(const struct dlas_row *row, const char **host, int *threads, double *g,
                     double *line)
{
    const char *st = dlas_row_get(row, "status"), *h = dlas_row_get(row, "hostname"),
               *th = dlas_row_get(row, "threads"), *pg = dlas_row_get(row, "probe_gflops_per_thread"),
               *pl = dlas_row_get(row, "probe_line_ns");
    if (!st || strcmp(st, "ok") || !h || !th || !pg || !*pg)
        return 0;
    *host = h;
    *threads = atoi(th);
    *g = atof(pg);
    *line = pl && *pl ? atof(pl) : 0;
    if (!(*line > 0)) /* also NaN */
        *line = 0;
    return *threads > 0 && *g > 0;
}

int exp_probes_note(struct exp_probes *p, const struct dlas_row *row)
{
    const char *host;
    int threads;
    double g, line;
    if (!row_probe(row, &host, &threads, &g, &line))
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
        b->line_ns = 0;
    }
    if (g > b->gflops)
        b->gflops = g;
    if (line > 0 && (!(b->line_ns > 0) || line < b->line_ns))
        b->line_ns = line;
    return DLAS_OK;
}

/* Append "; " and the formatted text to the row's timing_noise, and flag
 * the row noisy. */
static void add_noise(struct dlas_row *row, const char *what)
{
    const char *why = dlas_row_get(row, "timing_noise");
    char text[512];
    snprintf(text, sizeof text, "%s%s%s", why ? why : "", why && *why ? "; " : "", what);
    dlas_row_set(row, "timing_noise", text);
    dlas_row_set(row, "timing_noisy", "1");
}

int exp_probes_flag(const struct exp_probes *p, struct dlas_row *row)
{
    const char *host;
    int threads;
    double g, line;
    if (!row_probe(row, &host, &threads, &g, &line))
        return 0;
    const struct exp_probe_best *b = find(p, host, threads);
    if (!b)
        return 0;
    int changed = 0;
    char what[256];
    const int low = exp_probe_short(g, line, b->gflops, b->line_ns);
    const char *why = dlas_row_get(row, "timing_noise");
    if ((low & EXP_PROBE_LOW_FMA) && !(why && strstr(why, "FMA rate"))) {
        snprintf(what, sizeof what,
                 "the machine gave %.0f%% of its best FMA rate (%.1f of %.1f GFLOP/s a thread)",
                 100 * g / b->gflops, g, b->gflops);
        add_noise(row, what);
        changed = 1;
    }
    why = dlas_row_get(row, "timing_noise");
    if ((low & EXP_PROBE_APART) && !(why && strstr(why, "threads apart"))) {
        snprintf(what, sizeof what,
                 "threads apart (a cache line's round trip %.0f ns, %.1fx the shortest seen)",
                 line, line / b->line_ns);
        add_noise(row, what);
        changed = 1;
    }
    return changed;
}

void exp_probes_free(struct exp_probes *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}
