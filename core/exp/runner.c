/* Running an experiment: each point builds its model, compresses it, binds
 * the primitive, checks its output against the reference forward, measures
 * accuracy and latency, and appends one row to the results. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdio.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <unistd.h>

#include <dlas/dlas.h>
#include <dlas/quant.h>

#include "exp_internal.h"
#include "exp_timing.h"
#include "exp_auto.h"
#include "exp_latency.h"
#include "exp_train.h"
#include "../base/heartbeat.h"
#include "results.h"
#include "../base/sysinfo.h"
#include "../base/util.h"
#include "../graph/probe.h"

/* Everything one point holds, released in one place. The stages below fill
 * it in DESIGN.md's order, each reading what the ones before it left. */
struct pointrun {
    struct dlas_experiment *e;
    const struct point *pt;
    struct dlas_row *row;
    int64_t batch;
    struct dlas_rng rng, rng_data, rng_model, rng_comp, rng_prim, rng_backend;
    struct dlas_host host_data, host_model, host_comp, host_prim, host_backend;
    struct dlas_params *p_data, *p_model, *p_prim, *p_fallback, *p_backend;
    const struct dlas_dataset_ops *dops;
    void *dataset;
    struct dlas_dataset_info info;
    struct dlas_graph *graph;
    struct exp_training tr; /* alive from training until the chain has run */
    const struct dlas_backend_ops *bops;
    struct dlas_backend be;
    struct dlas_primitive_choice choice, fb; /* the plan points to them */
    struct exp_candidates cands;             /* an "auto" point's primitives */
    int *layer_prim, *block_mask;            /* and its choice, for the probe's plan too */
    struct exp_auto_choice how;
    struct dlas_plan *plan;
    struct dlas_tunelog *tlog; /* the plan's tuned settings, for the probe's plan too */
    float *images, *out, *ref_out;
    int32_t *labels;
};

static void pointrun_free(struct pointrun *r)
{
    exp_training_free(&r->tr);
    dlas_plan_free(r->plan);
    dlas_tunelog_free(r->tlog);
    if (r->be.ctx)
        r->bops->release(r->be.ctx);
    dlas_graph_free(r->graph);
    if (r->dataset)
        r->dops->close(r->dataset);
    dlas_params_free(r->p_data);
    dlas_params_free(r->p_model);
    dlas_params_free(r->p_prim);
    dlas_params_free(r->p_fallback);
    dlas_params_free(r->p_backend);
    exp_candidates_free(&r->cands);
    free(r->layer_prim);
    free(r->block_mask);
    free(r->images);
    free(r->out);
    free(r->ref_out);
    free(r->labels);
}

static void host_for(struct pointrun *r, struct dlas_host *h, struct dlas_rng *rng,
                     const char *stream, uint64_t seed)
{
    *rng = dlas_rng_derive(&r->rng, dlas_rng_hash(stream));
    dlas_host_init(h, rng, seed);
}

/* One RNG stream per kind of plugin, all derived from the point's seed, so
 * that adding randomness to one plugin does not shift another's. */
static void pointrun_init(struct pointrun *r, struct dlas_experiment *e, const struct point *pt,
                          struct dlas_row *row)
{
    memset(r, 0, sizeof *r);
    r->e = e;
    r->pt = pt;
    r->row = row;
    r->batch = dlas_param_int(e->exp, "batch");
    uint64_t seed = (uint64_t)pt->seed;
    dlas_rng_seed(&r->rng, seed);
    host_for(r, &r->host_data, &r->rng_data, "dataset", seed);
    host_for(r, &r->host_model, &r->rng_model, "model", seed);
    host_for(r, &r->host_comp, &r->rng_comp, "compressor", seed);
    host_for(r, &r->host_prim, &r->rng_prim, "primitive", seed);
    host_for(r, &r->host_backend, &r->rng_backend, "backend", seed);
}

/* Scale by the dataset's per-channel statistics when it knows them. */
static void normalise(const struct dlas_dataset_info *info, float *x, int64_t n)
{
    int64_t plane = (int64_t)info->height * info->width;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < info->channels && c < 4; c++) {
            if (info->std[c] <= 0)
                continue;
            float *p = x + (i * info->channels + c) * plane;
            for (int64_t k = 0; k < plane; k++)
                p[k] = (p[k] - info->mean[c]) / info->std[c];
        }
}

static int read_batch(struct pointrun *r, const struct dlas_dataset_info *info, int64_t start,
                      int64_t n, int64_t avail)
{
    int64_t idx[4096];
    int64_t done = 0;
    int64_t per = (int64_t)info->channels * info->height * info->width;
    while (done < n) {
        int64_t k = n - done < 4096 ? n - done : 4096;
        for (int64_t i = 0; i < k; i++)
            idx[i] = (start + done + i) % avail;
        int rc = r->dops->read(r->dataset, DLAS_SPLIT_TEST, idx, k, r->images + done * per,
                               r->labels + done);
        if (rc)
            return dlas_error_context("dataset");
        done += k;
    }
    normalise(info, r->images, n);
    return DLAS_OK;
}

static int argmax(const float *v, int64_t n)
{
    int best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = (int)i;
    return best;
}

static void setf(struct dlas_row *row, const char *k, double v)
{
    dlas_row_setf(row, k, "%.6g", v);
}

/* ---- the stages of a point -------------------------------------------------- */

/* dataset: open it with the point's parameters and check its shape */
static int open_dataset(struct pointrun *r)
{
    struct dlas_experiment *e = r->e;
    int rc = DLAS_OK;
    r->p_data = dlas_point_params(r->pt, &e->dataset);
    r->dops = e->dataset.comp->ops;
    if (!r->p_data)
        return dlas_last_status() ? dlas_last_status() : DLAS_ERR_NOMEM;
    if ((rc = r->dops->open(&r->host_data, r->p_data, &r->dataset)) ||
        (rc = r->dops->info(r->dataset, &r->info)))
        return dlas_error_context("dataset '%s'", e->dataset.comp->name), rc;
    const struct dlas_dataset_info *info = &r->info;
    if (info->channels < 1 || info->height < 1 || info->width < 1 || info->classes < 1 ||
        info->n_test < 1)
        return dlas_error(DLAS_ERR_INVALID, "dataset '%s' reports an empty shape or test split",
                          e->dataset.comp->name);
    dlas_row_setf(r->row, "dataset", "%s %dx%dx%d/%d", e->dataset.comp->name, info->channels,
                  info->height, info->width, info->classes);
    return DLAS_OK;
}

/* model: the plugin builds the graph for the dataset's shape; seeded weights */
static int build_model(struct pointrun *r)
{
    const struct instance *model = &r->e->models[r->pt->model];
    r->p_model = dlas_point_params(r->pt, model);
    r->graph = dlas_graph_new();
    if (!r->p_model || !r->graph)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    const struct dlas_model_ops *mops = model->comp->ops;
    const struct dlas_dataset_info *info = &r->info;
    int rc = mops->build(&r->host_model, r->p_model, info->channels, info->height, info->width,
                         info->classes, r->graph);
    if (!rc)
        rc = dlas_graph_status(r->graph);
    if (!rc)
        rc = dlas_graph_validate(r->graph);
    if (rc)
        return dlas_error_context("model '%s'", model->label), rc;
    struct dlas_rng init = dlas_rng_derive(&r->rng, dlas_rng_hash("init"));
    return dlas_graph_init_weights(r->graph, &init);
}

/* models.X.weights: start from trained weights */
static int load_weights(struct pointrun *r)
{
    return exp_load_weights(&r->e->models[r->pt->model], r->graph, r->row);
}

/* experiment.save_models: keep the compressed model */
static int save_model(struct pointrun *r)
{
    return exp_save_model(r->e, r->pt, r->graph, r->row);
}

/* training (or the trained model from the cache), before compression */
static int train_model(struct pointrun *r)
{
    struct dlas_experiment *e = r->e;
    if (dlas_param_int(e->train, "epochs") <= 0)
        return DLAS_OK;
    int rc = exp_train_point(e, r->pt, e->run_dir, r->dops, r->dataset, r->p_data, r->p_model,
                             &r->rng, r->graph, r->row, &r->tr);
    if (rc)
        dlas_error_context("training model '%s'", e->models[r->pt->model].label);
    return rc;
}

/* One compressor of the chain on the graph, which must stay valid. */
static int compress_step(struct pointrun *r, const struct chain *chain, int s,
                         struct dlas_buf *settings, struct dlas_report *report,
                         struct exp_latency *lat)
{
    const struct instance *step = &chain->steps[s];
    struct dlas_params *pp = dlas_point_params(r->pt, step);
    if (!pp)
        return DLAS_ERR_NOMEM;
    char *d = dlas_params_describe(pp);
    dlas_buf_printf(settings, "%s%s{%s}", s ? " -> " : "", step->comp->name, d ? d : "");
    free(d);
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    ctx.host = &r->host_comp;
    ctx.graph = r->graph;
    ctx.report = report;
    ctx.trainer = r->tr.trainer;
    ctx.data = r->tr.data;
    ctx.teacher = r->tr.teacher;
    exp_latency_bind(lat, &ctx);
    const struct dlas_compressor_ops *cops = step->comp->ops;
    int rc = cops->apply(&ctx, pp);
    dlas_params_free(pp);
    if (rc)
        dlas_error_context("compressor '%s' step %d (%s)", chain->label, s + 1, step->comp->name);
    else if ((rc = dlas_graph_validate(r->graph)))
        dlas_error_context("graph after compressor '%s' step %d", chain->label, s + 1);
    return rc;
}

/* compressors, in chain order; what they report becomes columns */
static int compress(struct pointrun *r)
{
    const struct chain *chain = &r->e->chains[r->pt->chain];
    struct dlas_buf settings = {0};
    struct dlas_report report;
    memset(&report, 0, sizeof report);
    struct exp_latency lat; /* what a compressor's latency() times on */
    exp_latency_init(&lat, r->e, r->pt, &r->rng, (uint64_t)r->pt->seed);
    int rc = DLAS_OK;
    for (int s = 0; !rc && s < chain->n; s++)
        rc = compress_step(r, chain, s, &settings, &report, &lat);
    exp_latency_free(&lat);
    exp_training_free(&r->tr); /* its activations are not needed to measure inference */
    dlas_row_set(r->row, "compressor_settings", settings.s ? settings.s : "none");
    dlas_buf_free(&settings);
    for (size_t i = 0; i < report.row.n; i++)
        dlas_row_set(r->row, report.row.keys[i], report.row.vals[i]);
    dlas_row_free(&report.row);
    return rc;
}

/* size of the compressed model: params, non-zeros, MACs, bytes */
static int record_stats(struct pointrun *r)
{
    struct dlas_graph_stats st;
    int rc = dlas_graph_stats(r->graph, &st);
    if (rc)
        return rc;
    struct dlas_row *row = r->row;
    dlas_row_setf(row, "params", "%lld", (long long)st.params);
    dlas_row_setf(row, "nonzero_params", "%lld", (long long)st.nonzero);
    setf(row, "sparsity", st.params ? 1.0 - (double)st.nonzero / (double)st.params : 0.0);
    dlas_row_setf(row, "macs", "%lld", (long long)st.macs);
    dlas_row_setf(row, "weight_bytes", "%lld", (long long)st.weight_bytes);
    dlas_row_setf(row, "peak_activation_bytes", "%lld", (long long)st.peak_activation_bytes);
    return DLAS_OK;
}

/* backend: threads, device, clock */
static int init_backend(struct pointrun *r)
{
    const struct instance *backend = &r->e->backends[r->pt->backend];
    r->p_backend = dlas_point_params(r->pt, backend);
    r->bops = backend->comp->ops;
    int rc = r->p_backend ? r->bops->init(&r->host_backend, r->p_backend, &r->be.ctx)
                          : DLAS_ERR_NOMEM;
    if (rc)
        dlas_error_context("backend '%s'", backend->label);
    r->be.ops = r->bops;
    char *d = r->p_backend ? dlas_params_describe(r->p_backend) : NULL;
    dlas_row_set(r->row, "backend_settings", d);
    free(d);
    if (!rc)
        dlas_row_setf(r->row, "threads", "%d", r->bops->threads(r->be.ctx));
    /* the accelerator's model, driver and library versions */
    const struct dlas_backend_ops *dev = dlas_backend_device_ops(&r->be);
    char desc[512] = "";
    if (!rc && dev && dev->describe && !dev->describe(r->be.ctx, desc, sizeof desc))
        dlas_row_set(r->row, "device", desc);
    return rc;
}

/* The point's primitive ("ref" when none), which must run on the backend's
 * device. */
static int choose_primitive(struct pointrun *r, struct dlas_primitive_choice *choice)
{
    const struct instance *prim = &r->e->prims[r->pt->prim];
    const struct instance *backend = &r->e->backends[r->pt->backend];
    r->p_prim = dlas_point_params(r->pt, prim);
    *choice = (struct dlas_primitive_choice){prim->label, prim->comp, r->p_prim};
    char *d = r->p_prim ? dlas_params_describe(r->p_prim) : NULL;
    dlas_row_set(r->row, "primitive_settings", d);
    free(d);
    const struct dlas_primitive_ops *pops = prim->comp->ops;
    if (pops && strcmp(pops->device, r->bops->device))
        return dlas_error(DLAS_ERR_UNSUPPORTED, "primitive '%s' runs on %s, backend '%s' is %s",
                          prim->label, pops->device, backend->label, r->bops->device);
    return DLAS_OK;
}

/* the tuning log's row: which log, how many layers it tuned */
static void record_tuning(struct pointrun *r, int from_log)
{
    if (!from_log) {
        dlas_row_set(r->row, "tuning", "untuned");
        return;
    }
    int tuned = 0;
    for (int i = 0; i < dlas_plan_n_nodes(r->plan); i++)
        tuned += dlas_plan_layer_settings(r->plan, i)[0] != '\0';
    dlas_row_setf(r->row, "tuning", "log:%s (%d layers tuned)",
                  dlas_param_str(r->e->exp, "tuning_log"), tuned);
}

/* how many conv layers the primitive ran (auto: any of its candidates,
 * fused blocks included): one that ran none measured only its fallback,
 * and the row says so */
static void record_bindings(struct pointrun *r, int have_prim)
{
    const int is_auto = r->pt->prim == POINT_AUTO;
    int convs = 0, own = 0;
    for (int i = 0; i < dlas_plan_n_nodes(r->plan); i++)
        if (dlas_plan_conv_desc(r->plan, i)) {
            int b = dlas_plan_binding_index(r->plan, i);
            convs++;
            own += is_auto ? b >= 0 || b == -3 : b == 0;
        }
    dlas_row_setf(r->row, "primitive_layers", "%d", have_prim ? own : convs);
    dlas_row_setf(r->row, "conv_layers", "%d", convs);
    if (have_prim && convs && !own)
        dlas_log(DLAS_LOG_WARN, "%s: primitive '%s' ran no layer: every conv fell back (%s)",
                 r->pt->id, is_auto ? "auto" : r->choice.label,
                 dlas_plan_fallbacks_grouped(r->plan));
}

/* A plan of g with the point's primitive (auto: its candidates, as it
 * chose them), fallback, backend and tuning. */
static int plan_for(struct pointrun *r, const struct dlas_graph *g, struct dlas_plan **plan)
{
    const struct dlas_primitive_choice *fb = r->e->fallback >= 0 ? &r->fb : NULL;
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.tunelog = r->tlog;
    if (r->pt->prim == POINT_AUTO) {
        po.layer_prim = r->layer_prim;
        po.blocks = r->how.blocks;
        po.block_mask = r->how.blocks ? r->block_mask : NULL;
        return dlas_plan_create_ex(g, &r->host_prim, &r->be, r->cands.prims, r->cands.n, fb,
                                   r->batch, &po, plan);
    }
    int have_prim = r->pt->prim >= 0;
    return dlas_plan_create_ex(g, &r->host_prim, &r->be, have_prim ? &r->choice : NULL,
                               have_prim ? 1 : 0, fb, r->batch, &po, plan);
}

/* An "auto" point: each conv layer on the fastest of the experiment's
 * primitives that run on the backend, as the plan measures it at the
 * experiment's batch (exp_auto.h); the row says what it chose and how. */
static int choose_auto(struct pointrun *r)
{
    struct dlas_experiment *e = r->e;
    int rc = exp_candidates_make(e, r->pt, r->bops->device, &r->cands);
    if (rc)
        return rc;
    if (!r->cands.n)
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "auto: none of the experiment's primitives runs on backend '%s' (%s)",
                          e->backends[r->pt->backend].label, r->bops->device);
    struct dlas_buf names = {0};
    for (int k = 0; k < r->cands.n; k++)
        dlas_buf_printf(&names, "%s%s", k ? "," : "", r->cands.prims[k].label);
    dlas_row_setf(r->row, "primitive_settings", "candidates=%s", names.s ? names.s : "");
    dlas_buf_free(&names);
    int nn = dlas_graph_n_nodes(r->graph);
    r->layer_prim = malloc((size_t)nn * sizeof *r->layer_prim);
    r->block_mask = calloc((size_t)nn, sizeof *r->block_mask);
    if (!r->layer_prim || !r->block_mask)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int64_t repeat = dlas_param_int(e->exp, "repeat");
    return exp_auto_choose(r->graph, &r->host_prim, &r->be, &r->cands,
                           e->fallback >= 0 ? &r->fb : NULL, r->batch,
                           repeat > 0 ? (int)repeat : 1, r->tlog, (uint64_t)r->pt->seed,
                           r->layer_prim, r->block_mask, &r->how);
}

/* what auto chose: counts, each layer's primitive, how the choice was made */
static void record_auto(struct pointrun *r)
{
    char counts[1024];
    exp_auto_describe(r->plan, &r->cands, counts, sizeof counts);
    dlas_row_set(r->row, "auto_choice", counts);
    struct dlas_buf b = {0};
    for (int i = 0; i < dlas_plan_n_nodes(r->plan); i++) {
        if (!dlas_plan_conv_desc(r->plan, i))
            continue;
        int k = dlas_plan_binding_index(r->plan, i);
        dlas_buf_printf(&b, "%s%s=%s", b.len ? ";" : "", dlas_graph_node(r->graph, i)->name,
                        k >= 0 ? r->cands.prims[k].label : k == -2 ? "fallback"
                                 : k == -3                        ? "block"
                                                                  : "ref");
    }
    dlas_row_set(r->row, "auto_layers", b.s ? b.s : "");
    dlas_buf_free(&b);
    dlas_row_setf(r->row, "auto_runs", "%d", r->how.runs);
    dlas_row_setf(r->row, "auto_unclear", "%d", r->how.unclear);
}

/* plan: every conv bound to the primitive (or the fallback), weights
 * prepared once, tuned parameters from the log when the experiment asks */
static int make_plan(struct pointrun *r)
{
    struct dlas_experiment *e = r->e;
    const int is_auto = r->pt->prim == POINT_AUTO;
    int have_prim = r->pt->prim >= 0 || is_auto;
    int rc = r->pt->prim >= 0 ? choose_primitive(r, &r->choice) : DLAS_OK;
    if (rc)
        return rc;
    if (e->fallback >= 0) {
        const struct instance *f = &e->prims[e->fallback];
        r->p_fallback = dlas_params_clone(f->params);
        r->fb = (struct dlas_primitive_choice){f->label, f->comp, r->p_fallback};
    }
    const char *tuning = dlas_param_str(e->exp, "tuning");
    if (tuning && !strcmp(tuning, "log") &&
        (rc = dlas_tunelog_load(dlas_param_str(e->exp, "tuning_log"), 0, &r->tlog)))
        return dlas_error_context("tuning = \"log\""), rc;
    if (is_auto && (rc = choose_auto(r)))
        return rc;
    if ((rc = plan_for(r, r->graph, &r->plan)))
        return rc;
    record_tuning(r, r->tlog != NULL);
    record_bindings(r, have_prim);
    if (is_auto)
        record_auto(r);
    dlas_row_setf(r->row, "fallback_layers", "%s", dlas_plan_fallbacks(r->plan));
    if (dlas_plan_n_fallbacks(r->plan))
        dlas_log(DLAS_LOG_INFO, "%s: %d layer(s) fell back: %s", r->pt->id,
                 dlas_plan_n_fallbacks(r->plan), dlas_plan_fallbacks_grouped(r->plan));
    return DLAS_OK;
}

/* The point's first nb evaluation images as a tensor that borrows them (the
 * reference forward's input). */
static void input_view(const struct pointrun *r, int64_t nb, struct dlas_tensor *in)
{
    const int64_t dims[4] = {nb, r->info.channels, r->info.height, r->info.width};
    in->dtype = DLAS_F32;
    in->ndim = 4;
    memcpy(in->dims, dims, sizeof dims);
    in->data = r->images;
}

/* An untrained model's output may not depend on its convolutions (see
 * core/graph/probe.c): the same check again on a copy whose batchnorms are
 * calibrated on this batch, planned with the same primitive, fallback,
 * backend and tuning. The larger error is the row's. */
static int check_on_probe(struct pointrun *r, int64_t nb, int64_t outn, double tol,
                          double *max_err)
{
    struct dlas_graph *probe = NULL;
    struct dlas_plan *plan = NULL;
    struct dlas_tensor in = {0}, ref = {0};
    input_view(r, nb, &in);
    float *out = malloc((size_t)(outn * nb) * sizeof *out);
    int rc = out ? graph_probe(r->graph, r->images, nb, &probe)
                 : dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = plan_for(r, probe, &plan);
    if (!rc)
        rc = dlas_plan_run(plan, nb, r->images, out);
    if (!rc)
        rc = dlas_graph_forward_ref(probe, &in, &ref);
    if (!rc) {
        double err = dlas_rel_error(out, dlas_f32(&ref), outn * nb);
        if (!(err < tol))
            rc = dlas_error(DLAS_ERR_INTERNAL,
                            "the plan's output differs from the reference forward on the "
                            "model with its batchnorms calibrated on the input (max relative "
                            "error %.3g; untrained, its own output is too insensitive to show "
                            "it: %.3g)",
                            err, *max_err);
        if (!(err <= *max_err))
            *max_err = err;
        dlas_row_set(r->row, "agreement_check", "calibrated copy");
    } else
        dlas_error_context("agreement check on a calibrated copy");
    dlas_tensor_free(&ref);
    dlas_plan_free(plan);
    dlas_graph_free(probe);
    free(out);
    return rc;
}

/* The plan's output for the first batch must agree with the reference
 * forward (the oracle); *max_err is their largest relative difference. */
static int check_against_reference(struct pointrun *r, int64_t nb, int64_t outn, double *max_err)
{
    struct dlas_tensor in = {0}, ref = {0};
    input_view(r, nb, &in);
    int rc = dlas_graph_forward_ref(r->graph, &in, &ref);
    /* In an int8 graph both round activations onto uint8 grids, from sums
     * that differ by float rounding (or are exact integers on an int8
     * primitive): a value at a step's edge lands one step apart, and the
     * step propagates. A few steps of the output's range are agreement. */
    double tol = 1e-3;
    for (int i = 0; i < dlas_graph_n_nodes(r->graph); i++)
        if (dlas_node_is_quantised(dlas_graph_node(r->graph, i)))
            tol = 5e-2;
    if (!rc) {
        dlas_row_set(r->row, "agreement_check", "output");
        *max_err = dlas_rel_error(r->out, dlas_f32(&ref), outn * nb);
        if (!(*max_err < tol))
            rc = dlas_error(DLAS_ERR_INTERNAL,
                            "the plan's output differs from the reference forward "
                            "(max relative error %.3g)",
                            *max_err);
    }
    dlas_tensor_free(&ref);
    if (!rc && graph_needs_probe(r->graph))
        rc = check_on_probe(r, nb, outn, tol, max_err);
    return rc;
}

/* accuracy over eval_samples test images, and agreement with the reference */
static int measure_accuracy(struct pointrun *r)
{
    const struct dlas_dataset_info *info = &r->info;
    int64_t batch = r->batch;
    int64_t per = (int64_t)info->channels * info->height * info->width;
    int64_t outn = dlas_plan_output_numel(r->plan);
    r->images = malloc((size_t)(per * batch) * sizeof(float));
    r->labels = malloc((size_t)batch * sizeof(int32_t));
    r->out = malloc((size_t)(outn * batch) * sizeof(float));
    if (!r->images || !r->labels || !r->out)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory for a batch of %lld", (long long)batch);
    int64_t eval = dlas_param_int(r->e->exp, "eval_samples");
    if (eval > info->n_test)
        eval = info->n_test;
    int64_t correct = 0;
    double max_err = 0;
    int rc = DLAS_OK;
    for (int64_t start = 0; !rc && start < (eval ? eval : 1); start += batch) {
        int64_t nb = batch;
        if (eval && start + nb > eval)
            nb = eval - start;
        rc = read_batch(r, info, start, nb, info->n_test);
        if (!rc)
            rc = dlas_plan_run(r->plan, nb, r->images, r->out);
        if (!rc && start == 0)
            rc = check_against_reference(r, nb, outn, &max_err);
        if (rc)
            break;
        for (int64_t i = 0; eval && i < nb; i++)
            correct += argmax(r->out + i * outn, outn) == r->labels[i];
    }
    if (rc)
        return rc;
    dlas_row_setf(r->row, "eval_samples", "%lld", (long long)eval);
    if (eval)
        setf(r->row, "accuracy_top1", (double)correct / (double)eval);
    dlas_row_setf(r->row, "max_rel_err_vs_ref", "%.3g", max_err);
    return DLAS_OK;
}

/* latency over one full batch: warm-up, then `repeat` timed runs, with the
 * spread, load and CPU share that say how much to trust them */
static int measure_latency(struct pointrun *r)
{
    int64_t batch = r->batch;
    int64_t warmup = dlas_param_int(r->e->exp, "warmup"),
            repeat = dlas_param_int(r->e->exp, "repeat");
    int rc = read_batch(r, &r->info, 0, batch, r->info.n_test);
    struct exp_timing timing;
    const int threads = r->bops->threads(r->be.ctx);
    double best = exp_probes_best(&r->e->probes, dlas_sys_hostname(), threads),
           line_best = exp_probes_best_line(&r->e->probes, dlas_sys_hostname(), threads);
    if (!rc && !(rc = exp_time_plan(r->plan, &r->be, batch, r->images, r->out, warmup, repeat,
                                    best, line_best, &timing)))
        exp_timing_row(&timing, batch, r->row);
    if (!rc && timing.probe_wait >= 0.5) /* say why the point took longer */
        dlas_log(DLAS_LOG_INFO,
                 "%s: waited %.1f s for the machine before timing (FMA rate %.0f%% of the best "
                 "probed on this host; threads %.0f ns apart, %.1fx the nearest)",
                 r->pt->id, timing.probe_wait, best > 0 ? 100 * timing.probe / best : 0,
                 timing.line, line_best > 0 ? timing.line / line_best : 0);
    return rc;
}

/* A point is DESIGN.md's data flow, one stage each; the first that fails
 * ends the point, and its error (with context) is the row's error. */
static const struct point_stage {
    const char *name;
    int (*run)(struct pointrun *r);
} point_stages[] = {
    {"dataset", open_dataset},       {"model", build_model},   {"weights", load_weights},
    {"training", train_model},       {"compression", compress}, {"saving", save_model},
    {"statistics", record_stats},
    {"backend", init_backend},       {"plan", make_plan},      {"accuracy", measure_accuracy},
    {"latency", measure_latency},
};

static int run_point(struct dlas_experiment *e, struct point *pt, struct dlas_row *row)
{
    struct pointrun r;
    pointrun_init(&r, e, pt, row);
    int rc = DLAS_OK;
    for (size_t i = 0; !rc && i < sizeof point_stages / sizeof point_stages[0]; i++) {
        dlas_log(DLAS_LOG_DEBUG, "%s: %s", pt->id, point_stages[i].name);
        rc = point_stages[i].run(&r);
    }
    pointrun_free(&r);
    return rc;
}

/* Fill the columns known before running, so failed rows say what failed. */
static void row_prologue(const struct dlas_experiment *e, const struct point *pt,
                         struct dlas_row *row)
{
    char ts[64];
    dlas_sys_timestamp(ts, sizeof ts);
    dlas_row_set(row, "experiment", e->name);
    dlas_row_set(row, "cell_id", pt->id);
    dlas_row_set(row, "config_hash", pt->hash);
    dlas_row_set(row, "status", "running");
    dlas_row_set(row, "model", e->models[pt->model].label);
    dlas_row_set(row, "model_plugin", e->models[pt->model].comp->name);
    dlas_row_set(row, "compressor", e->chains[pt->chain].label);
    const int is_auto = pt->prim == POINT_AUTO;
    dlas_row_set(row, "primitive", pt->prim >= 0 ? e->prims[pt->prim].label
                                   : is_auto     ? "auto"
                                                 : "ref");
    dlas_row_set(row, "primitive_plugin", pt->prim >= 0 ? e->prims[pt->prim].comp->name
                                          : is_auto     ? "auto"
                                                        : "");
    dlas_row_set(row, "backend", e->backends[pt->backend].label);
    dlas_row_set(row, "backend_plugin", e->backends[pt->backend].comp->name);
    dlas_row_setf(row, "batch", "%lld", (long long)dlas_param_int(e->exp, "batch"));
    dlas_row_setf(row, "seed", "%lld", (long long)pt->seed);
    dlas_row_setf(row, "warmup", "%lld", (long long)dlas_param_int(e->exp, "warmup"));
    dlas_row_setf(row, "repeat", "%lld", (long long)dlas_param_int(e->exp, "repeat"));
    dlas_row_set(row, "dlas_version", dlas_version());
    dlas_row_set(row, "git_revision", dlas_revision());
    dlas_row_set(row, "cpu_model", dlas_sys_cpu_model());
    dlas_row_set(row, "blas", dlas_sys_blas());
    dlas_row_set(row, "hostname", dlas_sys_hostname());
    dlas_row_set(row, "timestamp", ts);
    exp_point_columns(e, pt, row);
}

static void run_inline(struct dlas_experiment *e, struct point *pt, struct dlas_row *row)
{
    dlas_clear_error();
    int rc = run_point(e, pt, row);
    /* missing hardware (a GPU backend without a GPU) skips the point with
     * the reason; a rerun tries it again */
    dlas_row_set(row, "status", !rc ? "ok" : rc == DLAS_ERR_UNAVAILABLE ? "unavailable" : "failed");
    dlas_row_set(row, "error", rc ? dlas_last_error() : "");
}

/* The watch over a point's child: a wall-clock limit when the experiment
 * sets point_timeout, else a limit on time without progress (heartbeats)
 * that grows with the longest pause the point has shown. */
struct watch {
    double limit;            /* point_timeout; 0: auto */
    double stall_min;        /* auto: the least pause that counts as a hang */
    volatile uint64_t *beats;
    double start, last_beat, longest_pause;
    uint64_t seen;
};

/* Seconds without progress after which a point counts as hung, when the
 * experiment gives no point_timeout. DLAS_POINT_STALL_MIN lowers it for the
 * tests; nothing else should need to. */
static double stall_floor(void)
{
    const char *env = getenv("DLAS_POINT_STALL_MIN");
    double v = env ? atof(env) : 0;
    return v > 0 ? v : 3600.0;
}

/* 0 while the child may go on; else the message for its row. */
static int watch_expired(struct watch *w, double now, char *why, size_t len)
{
    if (w->limit > 0) {
        if (now - w->start < w->limit)
            return 0;
        snprintf(why, len, "timed out after %.0f s (experiment.point_timeout)", w->limit);
        return 1;
    }
    if (!w->beats)
        return 0;
    uint64_t b = __atomic_load_n(w->beats, __ATOMIC_RELAXED);
    if (b != w->seen) {
        double pause = now - w->last_beat;
        if (pause > w->longest_pause)
            w->longest_pause = pause;
        w->seen = b;
        w->last_beat = now;
        return 0;
    }
    double allowed = 10 * w->longest_pause > w->stall_min ? 10 * w->longest_pause : w->stall_min;
    if (now - w->last_beat < allowed)
        return 0;
    snprintf(why, len,
             "timed out after %.0f s: no progress for %.0f s (auto limit: max(%.0f s, 10x the "
             "longest pause); set experiment.point_timeout to choose)",
             now - w->start, now - w->last_beat, w->stall_min);
    return 1;
}

/* Read the child's row from fd until it closes, or until the watch says
 * the child has hung: then kill its process group and say why. */
static int read_watched(int fd, pid_t pid, struct watch *w, struct dlas_buf *got, char *why,
                        size_t len)
{
    char chunk[8192];
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        int ready = poll(&pf, 1, 1000);
        if (ready < 0 && errno != EINTR)
            return 0;
        if (ready > 0) {
            ssize_t n = read(fd, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return 0;
            dlas_buf_printf(got, "%.*s", (int)n, chunk);
            continue;
        }
        if (watch_expired(w, dlas_now(), why, len)) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            return 1;
        }
    }
}

/* Run the point in a child: the row comes back through a pipe, and a signal
 * becomes a failed row instead of the end of the sweep; so does a hang
 * (point_timeout). */
static void run_isolated(struct dlas_experiment *e, struct point *pt, struct dlas_row *row)
{
    int fd[2];
    if (pipe(fd)) {
        run_inline(e, pt, row);
        return;
    }
    struct watch w = {dlas_param_float(e->exp, "point_timeout"), stall_floor(), NULL, 0, 0, 0, 0};
    w.beats = w.limit > 0 ? NULL : dlas_heartbeat_share();
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        dlas_heartbeat_unshare(w.beats);
        run_inline(e, pt, row);
        return;
    }
    if (pid == 0) {
        /* Its own process group, so that a timeout kills whatever it started;
         * and it dies with this process (a killed sweep, or MPI rank, leaves
         * no point running on). */
        setpgid(0, 0);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
#endif
        close(fd[0]);
        run_inline(e, pt, row);
        char *text = dlas_row_encode(row);
        size_t len = text ? strlen(text) : 0, off = 0;
        while (off < len) {
            ssize_t n = write(fd[1], text + off, len - off);
            if (n <= 0 && errno != EINTR)
                break;
            if (n > 0)
                off += (size_t)n;
        }
        _exit(0);
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    close(fd[1]);
    w.start = w.last_beat = dlas_now();
    struct dlas_buf got = {0};
    char why[512] = "";
    int timed_out = read_watched(fd[0], pid, &w, &got, why, sizeof why);
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    dlas_heartbeat_unshare(w.beats);
    struct dlas_row child = {0};
    if (!timed_out && got.s && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        dlas_row_decode(got.s, &child) == DLAS_OK && dlas_row_get(&child, "status")) {
        for (size_t i = 0; i < child.n; i++)
            dlas_row_set(row, child.keys[i], child.vals[i]);
    } else {
        dlas_row_set(row, "status", "failed");
        if (timed_out)
            dlas_row_set(row, "error", why);
        else if (WIFSIGNALED(status))
            dlas_row_setf(row, "error", "crashed: signal %d (%s)", WTERMSIG(status),
                          strsignal(WTERMSIG(status)));
        else
            dlas_row_setf(row, "error", "child process ended with status %d and no result",
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    dlas_row_free(&child);
    dlas_buf_free(&got);
}

void exp_run_point(struct dlas_experiment *e, struct point *pt, int isolate)
{
    dlas_row_free(&pt->result);
    row_prologue(e, pt, &pt->result);
    if (isolate)
        run_isolated(e, pt, &pt->result);
    else
        run_inline(e, pt, &pt->result);
}

void exp_run_point_failed(struct dlas_experiment *e, struct point *pt, const char *why)
{
    dlas_row_free(&pt->result);
    row_prologue(e, pt, &pt->result);
    dlas_row_set(&pt->result, "status", "failed");
    dlas_row_set(&pt->result, "error", why);
}
