/* random-prune: an out-of-tree compressor plugin, built against an installed
 * dlas through pkg-config. Copy this folder, rename, and edit apply().
 *
 * It prunes a fraction of every conv and linear weight tensor uniformly at
 * random: the baseline that structured and saliency-based pruning methods are
 * compared against (Liu et al., "Rethinking the Value of Network Pruning",
 * ICLR 2019). Randomness comes from the host's RNG, so runs are reproducible
 * from the experiment seed. */
#include <dlas/plugin.h>

static const struct dlas_param_spec params[] = {
    {"fraction", DLAS_PARAM_FLOAT, 0, "0.5", 0, 1, NULL,
     "fraction of each weight tensor set to zero"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    double fraction = dlas_param_float(p, "fraction");
    int64_t pruned = 0;
    for (int id = 0; id < dlas_graph_n_nodes(ctx->graph); id++) {
        struct dlas_node *n = dlas_graph_node(ctx->graph, id);
        if (n->op != DLAS_OP_CONV2D && n->op != DLAS_OP_LINEAR)
            continue;
        int rc = dlas_tensor_mask_ensure(&n->weight);
        if (rc)
            return rc;
        int64_t count = dlas_tensor_numel(&n->weight);
        for (int64_t i = 0; i < count; i++)
            if (dlas_rng_uniform(ctx->host->rng) < fraction && n->weight.mask[i]) {
                n->weight.mask[i] = 0;
                pruned++;
            }
        dlas_tensor_mask_apply(&n->weight);
    }
    ctx->host->log(DLAS_LOG_INFO, "random-prune: %lld weights pruned", (long long)pruned);
    return dlas_report_num(ctx->report, "random_prune.pruned", (double)pruned);
}

static const struct dlas_compressor_ops ops = {sizeof ops, apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "random-prune",
     "unstructured random pruning (a baseline)",
     "Liu et al., Rethinking the Value of Network Pruning, ICLR 2019", params, &ops}};

DLAS_PLUGIN("random-prune", "1.0", "template: an out-of-tree pruning plugin", components)
