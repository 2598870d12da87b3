/* An experiment's primitives, backends, compressor chains and settings,
 * for tools that use them outside a run (`dlas compare`, `dlas tune`). */
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "exp_internal.h"

size_t dlas_experiment_n_primitives(const struct dlas_experiment *e)
{
    return e ? (size_t)e->n_sel_prims : 0;
}

int dlas_experiment_primitive(const struct dlas_experiment *e, size_t i, const char **label,
                              const struct dlas_component **comp,
                              const struct dlas_params **params)
{
    if (!e || i >= (size_t)e->n_sel_prims)
        return dlas_error(DLAS_ERR_INVALID, "experiment: no primitive %zu", i);
    const struct instance *p = &e->prims[e->sel_prims[i]];
    *label = p->label;
    *comp = p->comp;
    *params = p->params;
    return DLAS_OK;
}

int dlas_experiment_fallback(const struct dlas_experiment *e, const char **label,
                             const struct dlas_component **comp,
                             const struct dlas_params **params)
{
    if (!e || e->fallback < 0)
        return DLAS_ERR_NOTFOUND;
    const struct instance *p = &e->prims[e->fallback];
    *label = p->label;
    *comp = p->comp;
    *params = p->params;
    return DLAS_OK;
}

size_t dlas_experiment_n_backends(const struct dlas_experiment *e)
{
    return e ? (size_t)e->n_sel_backends : 0;
}

int dlas_experiment_backend(const struct dlas_experiment *e, size_t i, const char **label,
                            const struct dlas_component **comp,
                            const struct dlas_params **params)
{
    if (!e || i >= (size_t)e->n_sel_backends)
        return dlas_error(DLAS_ERR_INVALID, "experiment: no backend %zu", i);
    const struct instance *p = &e->backends[e->sel_backends[i]];
    *label = p->label;
    *comp = p->comp;
    *params = p->params;
    return DLAS_OK;
}

int64_t dlas_experiment_setting_int(const struct dlas_experiment *e, const char *key)
{
    return e && e->exp ? dlas_param_int(e->exp, key) : 0;
}

size_t dlas_experiment_n_chains(const struct dlas_experiment *e)
{
    return e ? (size_t)e->n_sel_chains : 0;
}

const char *dlas_experiment_chain_label(const struct dlas_experiment *e, size_t i)
{
    if (!e || i >= (size_t)e->n_sel_chains)
        return NULL;
    return e->chains[e->sel_chains[i]].label;
}

int dlas_experiment_compress(const struct dlas_experiment *e, size_t i, uint64_t seed,
                             struct dlas_graph *g)
{
    if (!e || !g || i >= (size_t)e->n_sel_chains)
        return dlas_error(DLAS_ERR_INVALID, "experiment: no compressor chain %zu", i);
    const struct chain *ch = &e->chains[e->sel_chains[i]];
    /* the stream a run's point derives for its compressors (runner.c) */
    struct dlas_rng root, rng;
    struct dlas_host host;
    dlas_rng_seed(&root, seed);
    rng = dlas_rng_derive(&root, dlas_rng_hash("compressor"));
    dlas_host_init(&host, &rng, seed);
    struct dlas_report report;
    memset(&report, 0, sizeof report);
    int rc = DLAS_OK;
    for (int s = 0; !rc && s < ch->n; s++) {
        const struct instance *step = &ch->steps[s];
        struct dlas_compress_ctx ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.size = sizeof ctx;
        ctx.host = &host;
        ctx.graph = g;
        ctx.report = &report;
        const struct dlas_compressor_ops *ops = step->comp->ops;
        rc = ops->apply(&ctx, step->params);
        if (rc)
            dlas_error_context("compressor '%s' step %d (%s)", ch->label, s + 1,
                               step->comp->name);
        else if ((rc = dlas_graph_validate(g)))
            dlas_error_context("graph after compressor '%s' step %d", ch->label, s + 1);
    }
    dlas_row_free(&report.row);
    return rc;
}
