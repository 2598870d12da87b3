/* Compressor "fisher": Fisher pruning (Theis et al. 2018; Crowley et al.
 * 2018). While fine-tuning with the experiment's trainer, every prunable
 * channel accumulates Delta_k = 1/(2N) sum_n (sum_{h,w} a g)^2 over the
 * minibatches (<dlas/saliency.h>), a being the activation where the channel
 * leaves its layer (after conv -> batchnorm -> relu) and g its gradient;
 * every `prune_every` steps the channel of lowest accumulated saliency
 * across the whole network is masked, the sums restart, and so on until the
 * target in parameters, MACs or measured latency is met. The masked
 * channels are then removed physically. The loop itself is the core's
 * (dlas_prune_run); this plugin supplies the saliency. */
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>
#include <dlas/prune.h>
#include <dlas/saliency.h>

struct fisher {
    struct dlas_fisher *acc;
    int *entry_of_group; /* unit group -> accumulator entry */
    int n_groups;
};

/* One accumulator entry per channel group: the activations of its sources
 * (several when the group is tied by residual adds: summed before squaring). */
static int begin(void *state, struct dlas_compress_ctx *ctx, const struct dlas_prune_units *u)
{
    struct fisher *f = state;
    int n_groups = 0;
    for (int64_t i = 0; i < u->n; i++)
        if (u->u[i].group + 1 > n_groups)
            n_groups = u->u[i].group + 1;
    f->n_groups = n_groups;
    f->entry_of_group = malloc((size_t)(n_groups ? n_groups : 1) * sizeof(int));
    int *sizes = malloc((size_t)(n_groups ? n_groups : 1) * sizeof(int));
    const char **names = malloc((size_t)(u->n * 4 + 1) * sizeof(char *));
    int rc = DLAS_OK, n_entries = 0, n_names = 0;
    if (!f->entry_of_group || !sizes || !names)
        rc = dlas_error(DLAS_ERR_NOMEM, "fisher: out of memory");
    for (int k = 0; !rc && k < n_groups; k++)
        f->entry_of_group[k] = -1;
    for (int64_t i = 0; !rc && i < u->n; i++) {
        const struct dlas_prune_unit *x = &u->u[i];
        if (f->entry_of_group[x->group] >= 0)
            continue;
        if (n_names + x->n_acts > u->n * 4) {
            const char **more = realloc(names, (size_t)(n_names + x->n_acts + u->n * 4) *
                                                   sizeof *names);
            if (!more) {
                rc = dlas_error(DLAS_ERR_NOMEM, "fisher: out of memory");
                break;
            }
            names = more;
        }
        f->entry_of_group[x->group] = n_entries;
        sizes[n_entries++] = x->n_acts;
        for (int a = 0; a < x->n_acts; a++)
            names[n_names++] = dlas_graph_node(ctx->graph, x->acts[a])->name;
    }
    if (!rc && n_entries == 0)
        rc = dlas_error(DLAS_ERR_INVALID, "fisher: no prunable channels in this scope");
    if (!rc)
        rc = dlas_fisher_new_tied(ctx->graph, n_entries, sizes, names, &f->acc);
    if (!rc)
        rc = dlas_fisher_attach(f->acc, ctx->trainer);
    free(sizes);
    free(names);
    return rc;
}

/* The saliency summed since the last pruning step, per batch (the authors'
 * fisher / prune_every); channels not yet seen by a backward score 0. */
static int score(void *state, struct dlas_compress_ctx *ctx, const struct dlas_prune_units *u,
                 double *scores)
{
    (void)ctx;
    struct fisher *f = state;
    int64_t batches = dlas_fisher_batches(f->acc);
    for (int64_t i = 0; i < u->n; i++) {
        int64_t ch;
        const double *s = dlas_fisher_saliency(f->acc, f->entry_of_group[u->u[i].group], &ch);
        scores[i] = s && u->u[i].channel < ch ? s[u->u[i].channel] / (batches ? batches : 1) : 0;
    }
    return DLAS_OK;
}

static int after_prune(void *state, struct dlas_compress_ctx *ctx)
{
    (void)ctx;
    dlas_fisher_reset(((struct fisher *)state)->acc);
    return DLAS_OK;
}

static void end(void *state, struct dlas_compress_ctx *ctx)
{
    (void)ctx;
    struct fisher *f = state;
    dlas_fisher_free(f->acc); /* detaches from the trainer */
    f->acc = NULL;
    free(f->entry_of_group);
    f->entry_of_group = NULL;
}

static int fisher_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    struct dlas_prune_options o;
    dlas_prune_options_default(&o);
    int rc;
    if ((rc = dlas_prune_metric_parse(dlas_param_str(p, "target"), &o.metric)) ||
        (rc = dlas_prune_scope_parse(dlas_param_str(p, "scope"), &o.scope)))
        return dlas_error_context("fisher");
    o.ratio = dlas_param_float(p, "ratio");
    o.absolute = dlas_param_float(p, "absolute");
    o.latency_flags = dlas_param_bool(p, "latency_auto") ? DLAS_LATENCY_AUTO : 0;
    o.per_step = dlas_param_int(p, "channels_per_step");
    o.interval = dlas_param_int(p, "prune_every");
    o.lr = dlas_param_float(p, "lr");
    o.beta = dlas_param_float(p, "beta");
    o.evaluate = dlas_param_bool(p, "evaluate");
    o.round_to = (int)dlas_param_int(p, "round_to");
    o.include_linear = dlas_param_bool(p, "include_linear");
    o.history_csv = dlas_param_str(p, "history_csv");
    o.save_path = dlas_param_str(p, "save");
    if (o.interval < 1)
        return dlas_error(DLAS_ERR_INVALID, "fisher: prune_every must be >= 1 (the saliency "
                          "is accumulated over training steps)");
    struct fisher f;
    memset(&f, 0, sizeof f);
    struct dlas_pruner pr = {sizeof pr, "fisher", &f, begin, score, after_prune, end};
    return dlas_prune_run(ctx, &pr, &o);
}

static const struct dlas_param_spec fisher_params[] = {
    {"target", DLAS_PARAM_ENUM, 0, "params", 0, 0, "params|macs|latency",
     "what the goal counts: parameters, MACs, or the measured latency of the pruned network on "
     "the experiment's primitive and backend"},
    {"ratio", DLAS_PARAM_FLOAT, DLAS_PARAM_TUNABLE, "0.5", 0.001, 1.0, NULL,
     "goal as a fraction of the unpruned cost (used when absolute is 0)"},
    {"absolute", DLAS_PARAM_FLOAT, 0, "0", 0, 1e15, NULL,
     "goal as a count (params, MACs per sample) or milliseconds per batch; 0: use ratio"},
    {"latency_auto", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "time latency with each conv on the fastest of the experiment's primitives (auto)"},
    {"prune_every", DLAS_PARAM_INT, 0, "100", 1, 1e9, NULL,
     "training steps between pruning steps (the saliency is summed over them)"},
    {"channels_per_step", DLAS_PARAM_INT, 0, "1", 1, 1e6, NULL,
     "channels removed at each pruning step (the paper: 1)"},
    {"scope", DLAS_PARAM_ENUM, 0, "internal", 0, 0, "internal|all",
     "internal: channels inside blocks (reaching no add or concat), as the authors' code; all: "
     "also residual streams and concatenated features, as tied groups"},
    {"beta", DLAS_PARAM_FLOAT, 0, "0", 0, 1e6, NULL,
     "compute penalty (Theis et al.): prune the lowest Delta_k - beta * MACs saved by k"},
    {"lr", DLAS_PARAM_FLOAT, 0, "0.0008", 0, 10, NULL,
     "learning rate while pruning (constant; 0: the training recipe's)"},
    {"include_linear", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "also prune features of hidden linear layers"},
    {"round_to", DLAS_PARAM_INT, 0, "0", 0, 1024, NULL,
     "at the end, round each layer's channels down to a multiple of this (0: off)"},
    {"evaluate", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "report test accuracy before and after pruning"},
    {"history_csv", DLAS_PARAM_STRING, 0, "\"\"", 0, 0, NULL,
     "write every pruning step (layer, channel, score, cost) to this CSV file"},
    {"save", DLAS_PARAM_STRING, 0, "\"\"", 0, 0, NULL,
     "write the pruned network (weights, and channels per layer as prune.arch.<layer>) to "
     "this checkpoint"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops fisher_ops = {sizeof(struct dlas_compressor_ops),
                                                      fisher_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "fisher",
     "Fisher pruning: remove the channel of lowest Fisher saliency while fine-tuning, to a "
     "target in params, MACs or measured latency",
     "L. Theis, I. Korshunova, A. Tejani, F. Huszar. Faster gaze prediction with dense networks "
     "and Fisher pruning. arXiv:1801.05787, 2018; E. J. Crowley, J. Turner, A. Storkey, "
     "M. O'Boyle. A Closer Look at Structured Pruning for Neural Network Compression. "
     "arXiv:1810.04622, 2018",
     fisher_params, &fisher_ops},
};

DLAS_PLUGIN("fisher", "0.1.0", "Fisher pruning", components)
