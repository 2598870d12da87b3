/* An experiment's "auto" (see exp_auto.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "exp_auto.h"
#include "../infer/auto_choice.h"

int exp_candidates_make(const struct dlas_experiment *e, const struct point *pt,
                        const char *device, struct exp_candidates *c)
{
    memset(c, 0, sizeof *c);
    c->prims = calloc((size_t)e->n_prims + 1, sizeof *c->prims);
    c->params = calloc((size_t)e->n_prims + 1, sizeof *c->params);
    if (!c->prims || !c->params)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int order = 0; order < 2; order++) /* the point's own primitive first */
        for (int i = 0; i < e->n_prims; i++) {
            if ((order == 0) != (i == pt->prim))
                continue;
            const struct instance *in = &e->prims[i];
            const struct dlas_primitive_ops *ops = in->comp->ops;
            if (ops && strcmp(ops->device, device))
                continue; /* it cannot run on this backend */
            struct dlas_params *pp = i == pt->prim ? dlas_point_params(pt, in)
                                                   : dlas_params_clone(in->params);
            if (!pp)
                return dlas_last_status() ? dlas_last_status()
                                          : dlas_error(DLAS_ERR_NOMEM, "out of memory");
            c->params[c->n] = pp;
            c->prims[c->n++] = (struct dlas_primitive_choice){in->label, in->comp, pp};
        }
    return DLAS_OK;
}

void exp_candidates_free(struct exp_candidates *c)
{
    for (int i = 0; i < c->n; i++)
        dlas_params_free(c->params[i]);
    free(c->params);
    free(c->prims);
    memset(c, 0, sizeof *c);
}

int exp_auto_choose(const struct dlas_graph *g, const struct dlas_host *host,
                    const struct dlas_backend *be, const struct exp_candidates *c,
                    const struct dlas_primitive_choice *fallback, int64_t batch, int repeat,
                    const struct dlas_tunelog *tunelog, uint64_t seed, int *layer_prim,
                    int *block_mask, struct exp_auto_choice *how)
{
    memset(how, 0, sizeof *how);
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        layer_prim[i] = -1;
        block_mask[i] = 0;
    }
    if (c->n == 0)
        return DLAS_OK;
    if (auto_choose(g, host, be, c->prims, c->n, fallback, batch, tunelog, seed, NULL,
                    layer_prim, block_mask, &how->runs, &how->unclear, &how->blocks))
        return dlas_error_context("choosing the fastest primitive per layer");
    if (how->blocks)
        return DLAS_OK;
    struct dlas_compare_options o;
    dlas_compare_options_default(&o);
    o.batch = batch;
    o.layers = 0;
    o.check = 0;
    o.repeat = repeat;
    o.warmup = 1;
    o.tunelog = tunelog;
    o.seed = seed;
    struct dlas_compare *cmp = NULL;
    int rc = dlas_compare_run(g, host, be, c->prims, c->n, fallback, &o, &cmp);
    if (rc)
        return dlas_error_context("choosing the fastest primitive per layer");
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        layer_prim[i] = -1;
    for (int k = 0; k < cmp->n_layers; k++)
        layer_prim[cmp->layers[k].node] = cmp->layers[k].best_in_plan;
    dlas_compare_free(cmp);
    return DLAS_OK;
}

void exp_auto_describe(const struct dlas_plan *p, const struct exp_candidates *c, char *s,
                       size_t n)
{
    int *count = calloc((size_t)c->n + 2, sizeof *count);
    size_t at = 0;
    if (n)
        s[0] = '\0';
    for (int i = 0; count && i < dlas_plan_n_nodes(p); i++) {
        int b = dlas_plan_binding_index(p, i);
        if (b >= 0)
            count[b]++;
        else if (b == -2)
            count[c->n]++;
        else if (b == -3 && dlas_plan_conv_desc(p, i)) /* a conv inside a fused block */
            count[c->n + 1]++;
    }
    for (int k = 0; count && k <= c->n + 1 && at < n; k++)
        if (count[k])
            at += (size_t)snprintf(s + at, n - at, "%s%s %d", at ? " " : "",
                                   k < c->n    ? c->prims[k].label
                                   : k == c->n ? "fallback"
                                               : "in fused blocks",
                                   count[k]);
    free(count);
}
