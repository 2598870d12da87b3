/* An experiment's models built outside a run, for tools that inspect them
 * (`dlas summary`): the same dataset shape, parameters and weight stream a
 * point of the run would use. */
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "exp_internal.h"

size_t dlas_experiment_n_models(const struct dlas_experiment *e)
{
    return e ? (size_t)e->n_sel_models : 0;
}

const char *dlas_experiment_model_label(const struct dlas_experiment *e, size_t i)
{
    if (!e || i >= (size_t)e->n_sel_models)
        return NULL;
    return e->models[e->sel_models[i]].label;
}

static int dataset_shape(const struct dlas_experiment *e, const struct dlas_host *host,
                         struct dlas_dataset_info *info)
{
    const struct dlas_dataset_ops *ops = e->dataset.comp->ops;
    void *h = NULL;
    memset(info, 0, sizeof *info);
    int rc = ops->open(host, e->dataset.params, &h);
    if (!rc)
        rc = ops->info(h, info);
    if (h)
        ops->close(h);
    if (rc)
        return dlas_error_context("dataset '%s'", e->dataset.comp->name);
    if (info->channels < 1 || info->height < 1 || info->width < 1 || info->classes < 1)
        return dlas_error(DLAS_ERR_INVALID, "dataset '%s' reports an empty shape",
                          e->dataset.comp->name);
    return DLAS_OK;
}

int dlas_experiment_build_model(const struct dlas_experiment *e, size_t i, uint64_t seed,
                                struct dlas_graph **out, int shape[4])
{
    if (!e || !out || i >= (size_t)e->n_sel_models)
        return dlas_error(DLAS_ERR_INVALID, "experiment: no model %zu", i);
    *out = NULL;
    const struct instance *m = &e->models[e->sel_models[i]];
    /* the streams a run derives for this seed (runner.c) */
    struct dlas_rng root, rng_data, rng_model;
    struct dlas_host host_data, host_model;
    dlas_rng_seed(&root, seed);
    rng_data = dlas_rng_derive(&root, dlas_rng_hash("dataset"));
    rng_model = dlas_rng_derive(&root, dlas_rng_hash("model"));
    dlas_host_init(&host_data, &rng_data, seed);
    dlas_host_init(&host_model, &rng_model, seed);

    struct dlas_dataset_info info;
    int rc = dataset_shape(e, &host_data, &info);
    if (rc)
        return rc;
    if (shape) {
        shape[0] = info.channels;
        shape[1] = info.height;
        shape[2] = info.width;
        shape[3] = info.classes;
    }
    struct dlas_graph *g = dlas_graph_new();
    if (!g)
        return DLAS_ERR_NOMEM;
    const struct dlas_model_ops *ops = m->comp->ops;
    rc = ops->build(&host_model, m->params, info.channels, info.height, info.width,
                    info.classes, g);
    if (!rc)
        rc = dlas_graph_status(g);
    if (!rc)
        rc = dlas_graph_validate(g);
    if (!rc) {
        struct dlas_rng init = dlas_rng_derive(&root, dlas_rng_hash("init"));
        rc = dlas_graph_init_weights(g, &init);
    }
    if (rc) {
        dlas_error_context("model '%s'", m->label);
        dlas_graph_free(g);
        return rc;
    }
    *out = g;
    return DLAS_OK;
}
