/* Pruning targets in parameters, MACs or measured latency, and the pruned
 * architecture as a string (see <dlas/prune.h>). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/prune.h>
#include <dlas/status.h>

static const char *const metric_names[] = {"params", "macs", "latency"};

int dlas_prune_metric_parse(const char *s, enum dlas_prune_metric *out)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, metric_names[i])) {
            *out = (enum dlas_prune_metric)i;
            return DLAS_OK;
        }
    return dlas_error(DLAS_ERR_INVALID, "target = \"%s\" is not one of params, macs, latency",
                      s ? s : "(null)");
}

const char *dlas_prune_metric_name(enum dlas_prune_metric m)
{
    return (unsigned)m < 3 ? metric_names[m] : "?";
}

void dlas_prune_cost_format(enum dlas_prune_metric m, double v, char *buf, size_t len)
{
    if (m == DLAS_PRUNE_LATENCY)
        snprintf(buf, len, "%.3f ms", v * 1e3);
    else if (v >= 1e6)
        snprintf(buf, len, "%.3fM %s", v / 1e6, m == DLAS_PRUNE_MACS ? "MACs" : "params");
    else
        snprintf(buf, len, "%.0f %s", v, m == DLAS_PRUNE_MACS ? "MACs" : "params");
}

static double median3(double a, double b, double c)
{
    double lo = a < b ? a : b, hi = a < b ? b : a;
    return c < lo ? lo : c > hi ? hi : c;
}

/* Add latency readings of `pruned` to m[*n] (each itself a median of the
 * experiment's repeats) until there are `k`. */
static int read_latency(struct dlas_prune_target *t, struct dlas_compress_ctx *ctx,
                        const struct dlas_graph *pruned, double *m, int *n, int k)
{
    for (; *n < k; (*n)++) {
        int rc = dlas_compress_latency(ctx, pruned, t->latency_flags, &t->last, NULL);
        if (rc)
            return dlas_error_context("measuring the pruned network's latency");
        m[*n] = t->last.median_s;
        t->measurements++;
    }
    return DLAS_OK;
}

/* The latency of a pruned copy. On a shared machine one reading can land
 * on a quiet or a busy moment, and a pruning run must neither set its goal
 * from one unlucky reading nor stop on one lucky one: the start (settle) is
 * the median of three readings; later a reading at or under the goal is
 * checked by two more and the median of the three counts. */
static int latency_of(struct dlas_prune_target *t, struct dlas_compress_ctx *ctx,
                      const struct dlas_graph *pruned, int settle, double *v)
{
    double m[3] = {0}; /* read_latency fills n of them */
    int n = 0;
    int rc = read_latency(t, ctx, pruned, m, &n, settle ? 3 : 1);
    if (!rc && !settle && m[0] <= t->goal)
        rc = read_latency(t, ctx, pruned, m, &n, 3);
    if (!rc)
        *v = n == 3 ? median3(m[0], m[1], m[2]) : m[0];
    return rc;
}

static int cost_of(struct dlas_prune_target *t, struct dlas_compress_ctx *ctx, int settle,
                   double *v)
{
    struct dlas_graph_stats s;
    struct dlas_graph *pruned = NULL;
    int rc = dlas_prune_cost(ctx->graph, &s, t->metric == DLAS_PRUNE_LATENCY ? &pruned : NULL);
    if (rc)
        return rc;
    if (t->metric == DLAS_PRUNE_PARAMS)
        *v = (double)s.params;
    else if (t->metric == DLAS_PRUNE_MACS)
        *v = (double)s.macs;
    else {
        rc = latency_of(t, ctx, pruned, settle, v);
        dlas_graph_free(pruned);
        return rc;
    }
    t->measurements++;
    return DLAS_OK;
}

int dlas_prune_target_init(struct dlas_prune_target *t, struct dlas_compress_ctx *ctx,
                           enum dlas_prune_metric metric, double ratio, double absolute,
                           unsigned latency_flags)
{
    if (!t || !ctx || !ctx->graph)
        return dlas_error(DLAS_ERR_INVALID, "prune target: no context or graph");
    memset(t, 0, sizeof *t);
    t->metric = metric;
    t->latency_flags = latency_flags;
    if (absolute < 0 || (absolute == 0 && !(ratio > 0 && ratio <= 1)))
        return dlas_error(DLAS_ERR_INVALID,
                          "prune target: ratio = %g must be in (0, 1], or absolute > 0", ratio);
    int rc = cost_of(t, ctx, 1, &t->start);
    if (rc)
        return rc;
    t->now = t->start;
    /* absolute latency is given in milliseconds, kept in seconds */
    t->goal = absolute > 0 ? (metric == DLAS_PRUNE_LATENCY ? absolute * 1e-3 : absolute)
                           : ratio * t->start;
    return DLAS_OK;
}

int dlas_prune_target_measure(struct dlas_prune_target *t, struct dlas_compress_ctx *ctx,
                              int *met)
{
    int rc = cost_of(t, ctx, 0, &t->now);
    if (!rc && met)
        *met = t->now <= t->goal;
    return rc;
}

char *dlas_prune_arch_string(const struct dlas_graph *g, const struct dlas_graph *before)
{
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_CONV2D && n->op != DLAS_OP_LINEAR)
            continue;
        int64_t live = dlas_prune_live_channels(g, i), was = -1;
        if (before) {
            int j = dlas_graph_find(before, n->name);
            if (j >= 0)
                was = dlas_graph_node(before, j)->out_shape[0];
        }
        char item[DLAS_NAME_MAX + 48];
        int k = was >= 0 ? snprintf(item, sizeof item, "%s%s:%lld/%lld", len ? " " : "", n->name,
                                    (long long)live, (long long)was)
                         : snprintf(item, sizeof item, "%s%s:%lld", len ? " " : "", n->name,
                                    (long long)live);
        if (len + (size_t)k + 1 > cap) {
            while (len + (size_t)k + 1 > cap)
                cap *= 2;
            char *t = realloc(s, cap);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        memcpy(s + len, item, (size_t)k + 1);
        len += (size_t)k;
    }
    return s;
}
