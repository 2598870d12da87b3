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
#include "../infer/auto_choice.h"

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
    for (int i = 0; i < l->n_prims; i++)
        dlas_params_free(l->p_prims[i]);
    free(l->p_prims);
    free(l->prims);
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

    l->prims = calloc((size_t)e->n_prims + 1, sizeof *l->prims);
    l->p_prims = calloc((size_t)e->n_prims + 1, sizeof *l->p_prims);
    if (!l->prims || !l->p_prims)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int order = 0; order < 2; order++) /* the point's own primitive first */
        for (int i = 0; i < e->n_prims; i++) {
            if ((order == 0) != (i == pt->prim))
                continue;
            const struct instance *in = &e->prims[i];
            const struct dlas_primitive_ops *ops = in->comp->ops;
            if (ops && strcmp(ops->device, l->bops->device))
                continue; /* it cannot run on this backend */
            struct dlas_params *pp = i == pt->prim ? dlas_point_params(pt, in)
                                                   : dlas_params_clone(in->params);
            if (!pp)
                return dlas_last_status() ? dlas_last_status() : DLAS_ERR_NOMEM;
            l->p_prims[l->n_prims] = pp;
            l->prims[l->n_prims++] = (struct dlas_primitive_choice){in->label, in->comp, pp};
        }
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

/* "auto" as a plan chooses it (dlas_plan_auto_select: each conv layer on
 * the primitive that ran it fastest inside whole plans, until the decision
 * is clear, and fused blocks where they beat their layers), as `dlas
 * compare` and bench/vs_ort.py time it; *blocks = 1 then, with block_mask
 * filled. On a device, or where no primitive plans the graph on its own:
 * each conv layer bound to the primitive whose own plan ran it fastest. */
static int choose_auto(struct exp_latency *l, const struct dlas_graph *g, int64_t batch,
                       int repeat, int *layer_prim, int *block_mask, int *blocks)
{
    if (auto_choose(g, &l->host_prim, &l->be, l->prims, l->n_prims,
                    l->e->fallback >= 0 ? &l->fb : NULL, batch, l->tlog, l->seed, layer_prim,
                    block_mask, NULL, NULL, blocks))
        return dlas_error_context("choosing the fastest primitive per layer");
    if (*blocks)
        return DLAS_OK;
    struct dlas_compare_options o;
    dlas_compare_options_default(&o);
    o.batch = batch;
    o.layers = 0;
    o.check = 0;
    o.repeat = repeat;
    o.warmup = 1;
    o.tunelog = l->tlog;
    o.seed = l->seed;
    struct dlas_compare *c = NULL;
    int rc = dlas_compare_run(g, &l->host_prim, &l->be, l->prims, l->n_prims,
                              l->e->fallback >= 0 ? &l->fb : NULL, &o, &c);
    if (rc)
        return dlas_error_context("choosing the fastest primitive per layer");
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        layer_prim[i] = -1;
    for (int k = 0; k < c->n_layers; k++)
        layer_prim[c->layers[k].node] = c->layers[k].best_in_plan;
    dlas_compare_free(c);
    return DLAS_OK;
}

static void describe_binding(const struct exp_latency *l, const struct dlas_plan *p, int autob,
                             char *s, size_t n)
{
    if (!autob) {
        snprintf(s, n, "%s%s", l->n_prims ? l->prims[0].label : "ref",
                 dlas_plan_n_fallbacks(p) ? " (with fallbacks)" : "");
        return;
    }
    int *count = calloc((size_t)l->n_prims + 2, sizeof *count);
    size_t at = (size_t)snprintf(s, n, "auto:");
    for (int i = 0; count && i < dlas_plan_n_nodes(p); i++) {
        int b = dlas_plan_binding_index(p, i);
        if (b >= 0)
            count[b]++;
        else if (b == -2)
            count[l->n_prims]++;
        else if (b == -3 && dlas_plan_conv_desc(p, i)) /* a conv inside a fused block */
            count[l->n_prims + 1]++;
    }
    for (int k = 0; count && k <= l->n_prims + 1 && at < n; k++)
        if (count[k])
            at += (size_t)snprintf(s + at, n - at, " %s %d",
                                   k < l->n_prims    ? l->prims[k].label
                                   : k == l->n_prims ? "fallback"
                                                     : "in fused blocks",
                                   count[k]);
    free(count);
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
    const int autob = (flags & DLAS_LATENCY_AUTO) != 0;

    int *layer_prim = NULL, *block_mask = NULL, blocks = 0;
    float *in = NULL, *o = NULL;
    double *t = NULL, *node = NULL;
    struct dlas_plan *p = NULL;
    if (autob && (!(layer_prim = malloc((size_t)nn * sizeof *layer_prim)) ||
                  !(block_mask = calloc((size_t)nn, sizeof *block_mask))))
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!rc && autob && l->n_prims > 0)
        rc = choose_auto(l, g, batch, repeat, layer_prim, block_mask, &blocks);
    if (!rc) {
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        po.tunelog = l->tlog;
        po.layer_prim = autob ? layer_prim : NULL;
        po.blocks = blocks; /* the fused blocks auto kept */
        po.block_mask = blocks ? block_mask : NULL;
        rc = dlas_plan_create_ex(g, &l->host_prim, &l->be, l->prims, autob ? l->n_prims :
                                 (l->n_prims ? 1 : 0), e->fallback >= 0 ? &l->fb : NULL, batch,
                                 &po, &p);
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
