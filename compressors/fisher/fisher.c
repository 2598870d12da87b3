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
    int rc = dlas_prune_options_from_params(&o, p, "fisher");
    if (rc)
        return rc;
    if (o.interval < 1)
        return dlas_error(DLAS_ERR_INVALID, "fisher: prune_every must be >= 1 (the saliency "
                          "is accumulated over training steps)");
    struct fisher f;
    memset(&f, 0, sizeof f);
    struct dlas_pruner pr = {sizeof pr, "fisher", &f, begin, score, after_prune, end};
    return dlas_prune_run(ctx, &pr, &o);
}

static const struct dlas_param_spec fisher_params[] = {
    DLAS_PRUNE_PARAMS_GOAL,
    DLAS_PRUNE_PARAMS_STEPS("100", 1,
                            "training steps between pruning steps (the saliency is summed over "
                            "them)"),
    {"beta", DLAS_PARAM_FLOAT, 0, "0", 0, 1e6, NULL,
     "compute penalty (Theis et al.): prune the lowest Delta_k - beta * MACs saved by k"},
    DLAS_PRUNE_PARAMS_RUN,
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
