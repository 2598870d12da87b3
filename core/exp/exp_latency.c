/* Measured latency for compressors (ABI 1.3's dlas_compress_ctx.latency):
 * plan a graph as the experiment point will be planned after its chain and
 * time it, so that a pruner can stop at a latency target on the real
 * primitive and backend, not at a channel count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "exp_latency.h"
#include "../base/util.h"
#include "exp_auto.h"

void exp_latency_init(struct exp_latency *l, const struct dlas_experiment *e,
                      const struct point *pt, const struct dlas_rng *root, uint64_t seed)
{
    memset(l, 0, sizeof *l);
    l->e = e;
    l->pt = pt;
    l->seed = seed;
    /* streams of their own, so measuring never shifts the point's others */
    l->rng_prim = dlas_rng_derive(root, dlas_rng_hash("compressor-latency-primitive"));
    l->rng_backend = dlas_rng_derive(root, dlas_rng_hash("compressor-latency-backend"));
    dlas_host_init(&l->host_prim, &l->rng_prim, seed);
    dlas_host_init(&l->host_backend, &l->rng_backend, seed);
}

void exp_latency_free(struct exp_latency *l)
{
    if (l->be.ctx)
        l->bops->release(l->be.ctx);
    dlas_params_free(l->p_backend);
    dlas_tunelog_free(l->tlog);
    exp_candidates_free(&l->cands);
    dlas_params_free(l->p_fb);
    memset(l, 0, sizeof *l);
}

/* The backend, the primitives (the point's first, then every other one the
 * experiment defines, for "auto"), the fallback and the tuning log. */
static int make_ready(struct exp_latency *l)
{
    if (l->ready)
        return DLAS_OK;
    const struct dlas_experiment *e = l->e;
    const struct point *pt = l->pt;
    const struct instance *backend = &e->backends[pt->backend];
    int rc = DLAS_OK;
    l->bops = backend->comp->ops;
    if (!(l->p_backend = dlas_point_params(pt, backend)))
        return dlas_last_status() ? dlas_last_status() : DLAS_ERR_NOMEM;
    if ((rc = l->bops->init(&l->host_backend, l->p_backend, &l->be.ctx))) {
        l->be.ctx = NULL;
        return dlas_error_context("backend '%s'", backend->label);
    }
    l->be.ops = l->bops;
    if ((rc = exp_candidates_make(e, pt, l->bops->device, &l->cands)))
        return rc;
    if (e->fallback >= 0) {
        const struct instance *f = &e->prims[e->fallback];
        if (!(l->p_fb = dlas_params_clone(f->params)))
            return DLAS_ERR_NOMEM;
        l->fb = (struct dlas_primitive_choice){f->label, f->comp, l->p_fb};
    }
    const char *tuning = dlas_param_str(e->exp, "tuning");
    if (tuning && !strcmp(tuning, "log") &&
        (rc = dlas_tunelog_load(dlas_param_str(e->exp, "tuning_log"), 0, &l->tlog)))
        return dlas_error_context("tuning = \"log\"");
    l->ready = 1;
    return DLAS_OK;
}

/* 1 when the point has a primitive of its own (cands.prims[0]), 0 for a
 * point on the core reference */
static int own_prims(const struct exp_latency *l)
{
    return l->pt->prim >= 0 && l->cands.n > 0;
}

static void describe_binding(const struct exp_latency *l, const struct dlas_plan *p, int autob,
                             char *s, size_t n)
{
    if (autob) {
        int k = snprintf(s, n, "auto: ");
        if (k >= 0 && (size_t)k < n)
            exp_auto_describe(p, &l->cands, s + k, n - (size_t)k);
    } else
        snprintf(s, n, "%s%s", own_prims(l) ? l->cands.prims[0].label : "ref",
                 dlas_plan_n_fallbacks(p) ? " (with fallbacks)" : "");
}

static int measure(struct dlas_compress_ctx *ctx, const struct dlas_graph *g, unsigned flags,
                   struct dlas_latency *out, double *node_seconds)
{
    struct exp_latency *l = ctx ? ctx->latency_state : NULL;
    if (!l || !g || !out)
        return dlas_error(DLAS_ERR_INVALID, "latency: NULL %s", !l ? "state" : !g ? "graph" : "output");
    memset(out, 0, sizeof *out);
    int rc = dlas_graph_validate(g);
    if (rc)
        return dlas_error_context("latency: the graph to time");
    if ((rc = make_ready(l)))
        return rc;
    const struct dlas_experiment *e = l->e;
    int64_t batch = dlas_param_int(e->exp, "batch");
    int warmup = (int)dlas_param_int(e->exp, "warmup");
    int repeat = (int)dlas_param_int(e->exp, "repeat");
    if (repeat < 1)
        repeat = 1;
    const int nn = dlas_graph_n_nodes(g);
    /* a point that sweeps "auto" is timed as auto whatever the caller asks */
    const int autob = (flags & DLAS_LATENCY_AUTO) != 0 || l->pt->prim == POINT_AUTO;

    int *layer_prim = NULL, *block_mask = NULL;
    struct exp_auto_choice how = {0};
    float *in = NULL, *o = NULL;
    double *t = NULL, *node = NULL;
    struct dlas_plan *p = NULL;
    if (autob && (!(layer_prim = malloc((size_t)nn * sizeof *layer_prim)) ||
                  !(block_mask = calloc((size_t)nn, sizeof *block_mask))))
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!rc && autob)
        rc = exp_auto_choose(g, &l->host_prim, &l->be, &l->cands,
                             e->fallback >= 0 ? &l->fb : NULL, batch, repeat, l->tlog, l->seed,
                             layer_prim, block_mask, &how);
    if (!rc) {
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        po.tunelog = l->tlog;
        po.layer_prim = autob ? layer_prim : NULL;
        po.blocks = how.blocks; /* the fused blocks auto kept */
        po.block_mask = how.blocks ? block_mask : NULL;
        rc = dlas_plan_create_ex(g, &l->host_prim, &l->be, l->cands.prims,
                                 autob ? l->cands.n : own_prims(l),
                                 e->fallback >= 0 ? &l->fb : NULL, batch, &po, &p);
        if (rc)
            dlas_error_context("latency: planning the graph");
    }
    const struct dlas_node *first = dlas_graph_node(g, 0);
    int64_t per = first->out_shape[0] * first->out_shape[1] * first->out_shape[2];
    if (!rc) {
        in = malloc((size_t)(per * batch) * sizeof *in);
        o = malloc((size_t)(dlas_plan_output_numel(p) * batch) * sizeof *o);
        t = malloc((size_t)repeat * sizeof *t);
        node = calloc((size_t)nn, sizeof *node);
        if (!in || !o || !t || !node)
            rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        struct dlas_rng r = dlas_rng_derive(&l->rng_prim, dlas_rng_hash("input"));
        for (int64_t i = 0; i < per * batch; i++)
            in[i] = (float)dlas_rng_uniform(&r) * 2.0f - 1.0f;
    }
    for (int i = 0; !rc && i < warmup; i++)
        rc = dlas_plan_run(p, batch, in, o);
    for (int i = 0; !rc && i < repeat; i++) {
        double t0 = l->bops->now(l->be.ctx);
        rc = dlas_plan_run(p, batch, in, o);
        t[i] = l->bops->now(l->be.ctx) - t0;
    }
    /* per-node times in runs of their own: the synchronisation a timed run
     * adds between nodes must not inflate the end-to-end figures */
    for (int i = 0; !rc && node_seconds && i < repeat; i++)
        rc = dlas_plan_run_timed(p, batch, in, o, node);
    if (!rc) {
        qsort(t, (size_t)repeat, sizeof *t, dlas_cmp_double);
        out->median_s = repeat % 2 ? t[repeat / 2] : 0.5 * (t[repeat / 2 - 1] + t[repeat / 2]);
        out->min_s = t[0];
        out->max_s = t[repeat - 1];
        out->runs = repeat;
        out->batch = batch;
        out->threads = l->bops->threads(l->be.ctx);
        describe_binding(l, p, autob, out->binding, sizeof out->binding);
        for (int i = 0; node_seconds && i < nn; i++)
            node_seconds[i] = node[i] / repeat;
    }
    dlas_plan_free(p);
    free(layer_prim);
    free(block_mask);
    free(in);
    free(o);
    free(t);
    free(node);
    return rc;
}

void exp_latency_bind(struct exp_latency *l, struct dlas_compress_ctx *ctx)
{
    ctx->latency = measure;
    ctx->latency_state = l;
}
