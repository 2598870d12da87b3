/* Compressor "activation": activation-based structured pruning (K. Zhao,
 * A. Jain, M. Zhao, "Automatic Attention Pruning: Improving and Automating
 * Model Pruning using Attentions", AISTATS 2023, and "Iterative
 * Activation-based Structured Pruning", 2022). A filter's importance is
 * the mean of its activation attention map over calibration samples:
 * theta_k = mean_{n,h,w} |a_nkhw|^p, a being the channel's output where it
 * leaves its layer (after conv -> batchnorm -> relu), p = 2 by default (the
 * attention maps of Zagoruyko and Komodakis). Filters of lowest importance
 * are removed, iteratively, with fine-tuning between steps when the
 * experiment trains, until a target in parameters, MACs or measured
 * latency (the core's pruning loop). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>
#include <dlas/prune.h>
#include <dlas/train.h>

struct act {
    double p;
    int64_t batches, batch;
    struct dlas_data *data;
};

/* |x|^p without pow() in the common cases. */
static inline double powp(double x, double p)
{
    x = fabs(x);
    return p == 2.0 ? x * x : p == 1.0 ? x : pow(x, p);
}

static int score(void *state, struct dlas_compress_ctx *ctx, const struct dlas_prune_units *u,
                 double *scores)
{
    struct act *st = state;
    struct dlas_graph *g = ctx->graph;
    const struct dlas_dataset_info *info = dlas_data_info(st->data);
    const int64_t per = (int64_t)info->channels * info->height * info->width;
    int64_t avail = dlas_data_size(st->data, DLAS_DATA_TRAIN);
    int64_t batch = st->batch < avail ? st->batch : avail;
    struct dlas_autograd *a = NULL;
    float *x = malloc((size_t)(per * (batch > 0 ? batch : 1)) * sizeof *x);
    int rc = x ? dlas_autograd_new(g, batch > 0 ? batch : 1, 0, &a)
               : dlas_error(DLAS_ERR_NOMEM, "activation: out of memory");
    if (!rc && batch < 1)
        rc = dlas_error(DLAS_ERR_INVALID, "activation: no training samples to calibrate on");
    int64_t seen = 0;
    for (int64_t b = 0; !rc && b < st->batches && (b + 1) * batch <= avail; b++) {
        /* the first calibration batches of the training split, unaugmented,
         * the network in inference mode */
        if ((rc = dlas_data_read(st->data, DLAS_DATA_TRAIN, b * batch, batch, x, NULL)) ||
            (rc = dlas_autograd_forward(a, batch, x, DLAS_AG_NO_GRAD)))
            break;
        for (int64_t i = 0; i < u->n; i++) {
            const struct dlas_prune_unit *v = &u->u[i];
            for (int k = 0; k < v->n_acts; k++) {
                const struct dlas_node *n = dlas_graph_node(g, v->acts[k]);
                const float *y = dlas_autograd_act(a, v->acts[k]);
                if (!y) {
                    rc = dlas_error(DLAS_ERR_INTERNAL, "activation: no activation of '%s'",
                                    n->name);
                    break;
                }
                const int64_t c = n->out_shape[0];
                const int64_t hw = n->out_ndim == 3 ? n->out_shape[1] * n->out_shape[2] : 1;
                double s = 0.0;
                for (int64_t m = 0; m < batch; m++) {
                    const float *q = y + (m * c + v->channel) * hw;
                    for (int64_t j = 0; j < hw; j++)
                        s += powp(q[j], st->p);
                }
                scores[i] += s / (double)hw / (double)v->n_acts;
            }
            if (rc)
                break;
        }
        seen += batch;
    }
    for (int64_t i = 0; !rc && i < u->n; i++)
        scores[i] /= (double)(seen ? seen : 1);
    dlas_autograd_free(a);
    free(x);
    return rc;
}

static int act_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    struct dlas_prune_options o;
    int rc = dlas_prune_options_from_params(&o, p, "activation");
    if (rc)
        return rc;
    if (ctx->size < offsetof(struct dlas_compress_ctx, data) + sizeof ctx->data || !ctx->data)
        return dlas_error(DLAS_ERR_INVALID,
                          "activation: needs the experiment's data to calibrate on (set "
                          "train.epochs > 0)");
    struct act st = {dlas_param_float(p, "p"), dlas_param_int(p, "calibration_batches"),
                     dlas_param_int(p, "calibration_batch"), ctx->data};
    struct dlas_pruner pr = {sizeof pr, "activation", &st, NULL, score, NULL, NULL};
    return dlas_prune_run(ctx, &pr, &o);
}

static const struct dlas_param_spec act_params[] = {
    DLAS_PRUNE_PARAMS_GOAL,
    {"p", DLAS_PARAM_FLOAT, 0, "2", 0.5, 8, NULL, "exponent of the attention map |a|^p"},
    {"calibration_batches", DLAS_PARAM_INT, 0, "4", 1, 1e6, NULL,
     "training batches (unaugmented) the attention is averaged over at every pruning step"},
    {"calibration_batch", DLAS_PARAM_INT, 0, "64", 1, 1e5, NULL, "samples per calibration batch"},
    DLAS_PRUNE_PARAMS_STEPS("100", 0,
                            "training steps between pruning steps (0: no fine-tuning in "
                            "between)"),
    DLAS_PRUNE_PARAMS_RUN,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops act_ops = {sizeof(struct dlas_compressor_ops), act_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "activation",
     "activation-based structured pruning: remove filters of lowest mean attention |a|^p",
     "K. Zhao, A. Jain, M. Zhao. Automatic Attention Pruning: Improving and Automating Model "
     "Pruning using Attentions. AISTATS 2023; K. Zhao, A. Jain, M. Zhao. Iterative "
     "Activation-based Structured Pruning, 2022",
     act_params, &act_ops},
};

DLAS_PLUGIN("activation", "0.1.0", "activation-based pruning", components)
