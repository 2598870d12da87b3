/* Compressor "l1-channel": filter pruning by the L1 norm of the weights (Li,
 * Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets",
 * ICLR 2017). A filter's score is sum |w| over its weights (for channels
 * tied across layers, over every filter of the class). Either the same
 * fraction of every layer's filters goes at once (mode = "layer", as the
 * paper's per-layer pruning), or filters are ranked across the network and
 * removed until a target in parameters, MACs or measured latency is met
 * (mode = "global", through the core's pruning loop), optionally with
 * fine-tuning between steps (prune_every > 0: the paper's "prune and
 * retrain iteratively"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>
#include <dlas/prune.h>

struct l1 {
    int normalize;
};

/* sum |w| of row c of a source's weight (masked entries are zero anyway). */
static double row_l1(const struct dlas_node *n, int64_t c, int64_t *count)
{
    const struct dlas_tensor *t = &n->weight;
    const int64_t per = dlas_tensor_numel(t) / t->dims[0];
    const float *w = (const float *)t->data + c * per;
    double s = 0.0;
    for (int64_t i = 0; i < per; i++)
        s += fabs((double)w[i]);
    *count += per;
    return s;
}

static int score(void *state, struct dlas_compress_ctx *ctx, const struct dlas_prune_units *u,
                 double *scores)
{
    const struct l1 *st = state;
    for (int64_t i = 0; i < u->n; i++) {
        const struct dlas_prune_unit *x = &u->u[i];
        double s = 0.0;
        int64_t count = 0;
        for (int k = 0; k < x->n_acts; k++) {
            const struct dlas_node *n = dlas_graph_node(ctx->graph, x->sources[k]);
            if (n->weight.dtype != DLAS_F32 || !n->weight.data)
                return dlas_error(DLAS_ERR_UNSUPPORTED,
                                  "l1-channel: '%s' has no f32 weights (prune before quantising)",
                                  n->name);
            s += row_l1(n, x->channel, &count);
        }
        scores[i] = st->normalize && count ? s / (double)count : s;
    }
    return DLAS_OK;
}

/* Mask the k lowest-scoring live wholes of layer `node` (that of a whole's
 * first part), ties to the earlier; one that surgery refuses (the layer's
 * last channel, a group's) is passed over. */
static int mask_lowest(struct dlas_graph *g, const struct dlas_prune_units *u,
                       const struct dlas_prune_wholes *w, const double *score, int node,
                       int64_t k, uint8_t *tried)
{
    for (int64_t masked = 0; masked < k;) {
        int64_t best = -1;
        for (int64_t j = 0; j < w->n; j++)
            if (!tried[j] && u->u[w->part[w->first[j]]].node == node &&
                dlas_prune_whole_live(g, u, w, j) && (best < 0 || score[j] < score[best]))
                best = j;
        if (best < 0)
            return DLAS_OK;
        tried[best] = 1;
        int rc = dlas_prune_mask_whole(g, u, w, best);
        if (rc == DLAS_ERR_INVALID || rc == DLAS_ERR_UNSUPPORTED)
            dlas_clear_error();
        else if (rc)
            return rc;
        else
            masked++;
    }
    return DLAS_OK;
}

/* mode = "layer": the same fraction of every layer's prunable filters (of
 * its wholes: a grouped conv's filters go one from every group at once). */
static int prune_layers(struct dlas_compress_ctx *ctx, const struct dlas_prune_options *o,
                        struct l1 *st, double fraction)
{
    struct dlas_graph *g = ctx->graph;
    struct dlas_graph_stats s0, s1;
    struct dlas_prune_units u;
    struct dlas_prune_wholes w;
    int rc = dlas_graph_stats(g, &s0);
    if (!rc)
        rc = dlas_prune_units_find_wholes(g, o->scope, o->include_linear, &u, &w);
    if (rc)
        return rc;
    double *scores = calloc((size_t)(u.n ? u.n : 1), sizeof *scores);
    double *ws = calloc((size_t)(w.n ? w.n : 1), sizeof *ws);
    uint8_t *done = calloc((size_t)(w.n ? w.n : 1), 1), *tried = calloc((size_t)(w.n ? w.n : 1), 1);
    if (!scores || !ws || !done || !tried)
        rc = dlas_error(DLAS_ERR_NOMEM, "l1-channel: out of memory");
    if (!rc)
        rc = score(st, ctx, &u, scores);
    for (int64_t k = 0; !rc && k < w.n; k++)
        ws[k] = dlas_prune_whole_score(&w, scores, k);
    /* layer by layer (by the whole's first part's source) */
    for (int64_t i = 0; !rc && i < w.n; i++) {
        if (done[i])
            continue;
        const int node = u.u[w.part[w.first[i]]].node;
        int64_t n = 0;
        for (int64_t j = i; j < w.n; j++)
            if (u.u[w.part[w.first[j]]].node == node)
                n++, done[j] = 1;
        int64_t k = (int64_t)floor(fraction * (double)n * (1.0 + 1e-12));
        rc = mask_lowest(g, &u, &w, ws, node, k, tried);
    }
    int64_t gone = 0;
    if (!rc)
        rc = dlas_graph_remove_masked_channels(g, &gone);
    if (!rc)
        rc = dlas_graph_stats(g, &s1);
    if (!rc && ctx->report) {
        dlas_report_num(ctx->report, "l1-channel.params_before", (double)s0.params);
        dlas_report_num(ctx->report, "l1-channel.params_after", (double)s1.params);
        dlas_report_num(ctx->report, "l1-channel.macs_before", (double)s0.macs);
        dlas_report_num(ctx->report, "l1-channel.macs_after", (double)s1.macs);
        dlas_report_num(ctx->report, "l1-channel.channels_removed", (double)gone);
    }
    if (!rc)
        ctx->host->log(DLAS_LOG_INFO, "l1-channel: %lld filters removed (%.3g of each layer), "
                       "params %lld -> %lld", (long long)gone, fraction, (long long)s0.params,
                       (long long)s1.params);
    free(scores);
    free(ws);
    free(done);
    free(tried);
    dlas_prune_units_free(&u);
    dlas_prune_wholes_free(&w);
    return rc;
}

static int l1_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    struct dlas_prune_options o;
    int rc = dlas_prune_options_from_params(&o, p, "l1-channel");
    if (rc)
        return rc;
    struct l1 st = {dlas_param_bool(p, "normalize")};
    const char *mode = dlas_param_str(p, "mode");
    if (mode && !strcmp(mode, "layer"))
        return prune_layers(ctx, &o, &st, dlas_param_float(p, "layer_fraction"));
    struct dlas_pruner pr = {sizeof pr, "l1-channel", &st, NULL, score, NULL, NULL};
    return dlas_prune_run(ctx, &pr, &o);
}

static const struct dlas_param_spec l1_params[] = {
    {"mode", DLAS_PARAM_ENUM, 0, "global", 0, 0, "global|layer",
     "global: rank filters across the network until the target (the goal, steps and "
     "round_to apply to it); layer: remove layer_fraction of every layer's filters at once"},
    {"layer_fraction", DLAS_PARAM_FLOAT, DLAS_PARAM_TUNABLE, "0.5", 0, 0.999, NULL,
     "mode = layer: fraction of each layer's prunable filters to remove"},
    DLAS_PRUNE_PARAMS_GOAL,
    DLAS_PRUNE_PARAMS_STEPS("0", 0,
                            "training steps between pruning steps (0: no training, a one-shot "
                            "ranking)"),
    {"normalize", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "global ranking by mean |w| (L1 / weights per filter), so layers of different fan-in "
     "compare; false: the plain L1 norm"},
    DLAS_PRUNE_PARAMS_RUN,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops l1_ops = {sizeof(struct dlas_compressor_ops), l1_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "l1-channel",
     "filter pruning by the L1 norm of each filter's weights, per layer or to a global target",
     "H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf. Pruning Filters for Efficient "
     "ConvNets. ICLR 2017 (arXiv:1608.08710)",
     l1_params, &l1_ops},
};

DLAS_PLUGIN("l1-channel", "0.1.0", "L1-norm filter pruning", components)
