/* Timing a candidate network for hakd on a primitive and backend found by
 * name through the registry: plan it (weights prepared, batchnorm folded,
 * relu fused, as a point's plan), run it `warmup` times untimed and `repeat`
 * times timed on seeded random input, and give the median and each node's
 * mean seconds. This is the minimum hakd needs while the compress context
 * offers no latency service of its own. */
#include <stdlib.h>
#include <string.h>

#include <dlas/plan.h>
#include <dlas/registry.h>

#include "hakd_timer.h"

int hakd_timer_open(const struct dlas_host *host, const char *primitive, int threads,
                    int warmup, int repeat, struct hakd_timer *t)
{
    memset(t, 0, sizeof *t);
    t->host = host;
    t->warmup = warmup;
    t->repeat = repeat;
    t->reg = dlas_registry_new();
    if (!t->reg)
        return dlas_error(DLAS_ERR_NOMEM, "hakd: out of memory");
    int rc = dlas_registry_discover(t->reg, NULL);
    if (rc)
        return dlas_error_context("hakd: plugin discovery");
    t->prim = dlas_registry_find(t->reg, DLAS_KIND_PRIMITIVE, primitive);
    const struct dlas_component *be = dlas_registry_find(t->reg, DLAS_KIND_BACKEND, "openmp");
    if (!t->prim || !be)
        return dlas_error(DLAS_ERR_NOTFOUND, "hakd: no %s '%s' to time students with",
                          t->prim ? "backend" : "primitive", t->prim ? "openmp" : primitive);
    if (t->prim->params && (rc = dlas_params_defaults(t->prim->params, &t->pp)))
        return rc;
    if ((rc = dlas_params_defaults(be->params, &t->bp)))
        return rc;
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    if ((rc = dlas_params_set(t->bp, "threads", th, "hakd")))
        return rc;
    t->be.ops = be->ops;
    if ((rc = t->be.ops->init(host, t->bp, &t->be.ctx)))
        return dlas_error_context("hakd: backend 'openmp'");
    t->be_open = 1;
    return DLAS_OK;
}

void hakd_timer_close(struct hakd_timer *t)
{
    if (t->be_open)
        t->be.ops->release(t->be.ctx);
    dlas_params_free(t->pp);
    dlas_params_free(t->bp);
    dlas_registry_free(t->reg);
    memset(t, 0, sizeof *t);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int hakd_time(struct hakd_timer *t, const struct dlas_graph *g, double *median_s,
              double *node_seconds)
{
    const struct dlas_node *in = dlas_graph_node(g, 0);
    if (!in || in->op != DLAS_OP_INPUT || in->out_ndim != 3)
        return dlas_error(DLAS_ERR_INVALID, "hakd: the graph has no image input");
    int64_t n_in = in->out_shape[0] * in->out_shape[1] * in->out_shape[2];
    struct dlas_primitive_choice choice = {t->prim->name, t->prim, t->pp};
    struct dlas_plan *plan = NULL;
    int rc = dlas_plan_create(g, t->host, &t->be, &choice, 1, NULL, 1, &plan);
    if (rc)
        return dlas_error_context("hakd: planning a student");
    int nn = dlas_plan_n_nodes(plan);
    float *x = malloc((size_t)n_in * sizeof *x);
    float *y = malloc((size_t)dlas_plan_output_numel(plan) * sizeof *y);
    double *runs = malloc((size_t)t->repeat * sizeof *runs);
    double *ns = calloc((size_t)nn, sizeof *ns);
    if (!x || !y || !runs || !ns)
        rc = dlas_error(DLAS_ERR_NOMEM, "hakd: out of memory");
    struct dlas_rng r;
    dlas_rng_seed(&r, 1);
    for (int64_t i = 0; !rc && i < n_in; i++)
        x[i] = (float)dlas_rng_uniform(&r);
    for (int i = 0; !rc && i < t->warmup; i++)
        rc = dlas_plan_run(plan, 1, x, y);
    for (int i = 0; !rc && i < t->repeat; i++) {
        double t0 = t->be.ops->now(t->be.ctx);
        rc = dlas_plan_run_timed(plan, 1, x, y, ns);
        runs[i] = t->be.ops->now(t->be.ctx) - t0;
    }
    if (!rc) {
        qsort(runs, (size_t)t->repeat, sizeof *runs, cmp_double);
        int k = t->repeat;
        *median_s = k % 2 ? runs[k / 2] : 0.5 * (runs[k / 2 - 1] + runs[k / 2]);
        for (int id = 0; node_seconds && id < nn && id < dlas_graph_n_nodes(g); id++)
            node_seconds[id] = ns[id] / t->repeat;
    }
    free(x);
    free(y);
    free(runs);
    free(ns);
    dlas_plan_free(plan);
    return rc;
}
