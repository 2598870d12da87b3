/* Compressor "magnitude": unstructured magnitude pruning (Han, Pool, Tran and
 * Dally, 2015). The weights of smallest |w| in conv and linear layers are
 * masked to zero, either against one threshold for the whole network
 * ("global") or layer by layer ("layer").
 *
 * Exactly floor(sparsity * n) weights end up pruned in each scope of n
 * weights: weights already masked by an earlier compressor count as pruned
 * (and are never revived), ties in |w| go to the lower index in node order,
 * so the result does not depend on a sort's stability or the platform. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>

struct target {
    struct dlas_node *node;
    struct dlas_tensor *t;
    int64_t n;
};

/* An already-masked weight ranks below every |w|, so it is selected first. */
static inline float key_of(const struct dlas_tensor *t, int64_t i)
{
    if (t->mask && !t->mask[i])
        return -1.0f;
    return fabsf(((const float *)t->data)[i]);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static inline void swapf(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* The k-th smallest (0-based) of a[0..n), reordering a. Three-way
 * partitioning keeps long runs of equal keys (zeros, masked weights) linear;
 * a depth limit falls back to qsort so no input makes it quadratic. */
static float select_kth(float *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n;
    for (int depth = 0; hi - lo > 16; depth++) {
        if (depth > 2 * 64) {
            qsort(a + lo, (size_t)(hi - lo), sizeof *a, cmp_float);
            return a[k];
        }
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            if (a[i] < pivot)
                swapf(&a[lt++], &a[i++]);
            else if (a[i] > pivot)
                swapf(&a[i], &a[--gt]);
            else
                i++;
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return pivot;
    }
    qsort(a + lo, (size_t)(hi - lo), sizeof *a, cmp_float);
    return a[k];
}

/* floor(sparsity * n), but a sparsity written in decimal (0.29 is stored as
 * 0.28999...) must still prune 29 of 100: absorb that representation error
 * without rounding up any genuinely smaller product. */
static int64_t prune_count(double sparsity, int64_t n)
{
    int64_t k = (int64_t)floor(sparsity * (double)n * (1.0 + 1e-12));
    return k < 0 ? 0 : k > n ? n : k;
}

/* Prune exactly k of the weights of targets ts[0..nt) (one scope). */
static int prune_scope(const struct dlas_host *host, struct target *ts, int nt, int64_t k)
{
    int64_t n = 0;
    for (int j = 0; j < nt; j++)
        n += ts[j].n;
    if (k <= 0 || n == 0)
        return DLAS_OK;

    float *keys = host->alloc((size_t)n * sizeof(float));
    if (!keys)
        return dlas_error(DLAS_ERR_NOMEM, "magnitude: cannot allocate %lld keys", (long long)n);
    int64_t at = 0;
    for (int j = 0; j < nt; j++)
        for (int64_t i = 0; i < ts[j].n; i++)
            keys[at++] = key_of(ts[j].t, i);
    float thr = select_kth(keys, n, k - 1);
    host->free(keys);

    /* Everything below the threshold goes; of the keys equal to it, the
     * first ones in node/index order fill the count up to k exactly. */
    int64_t below = 0;
    for (int j = 0; j < nt; j++)
        for (int64_t i = 0; i < ts[j].n; i++)
            below += key_of(ts[j].t, i) < thr;
    int64_t equal_left = k - below;
    for (int j = 0; j < nt; j++) {
        struct dlas_tensor *t = ts[j].t;
        for (int64_t i = 0; i < ts[j].n; i++) {
            float key = key_of(t, i);
            if (key < thr) {
                t->mask[i] = 0;
            } else if (key == thr && equal_left > 0) {
                t->mask[i] = 0;
                equal_left--;
            }
        }
        dlas_tensor_mask_apply(t);
    }
    return DLAS_OK;
}

static int check_choice(const char *value, const char *name, const char *const *choices,
                        int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (value && !strcmp(value, choices[i])) {
            *out = i;
            return DLAS_OK;
        }
    return dlas_error(DLAS_ERR_INVALID, "magnitude: %s = \"%s\" is not one of %s", name,
                      value ? value : "(null)", n == 2 ? "global, layer" : "conv, linear, all");
}

enum { SCOPE_GLOBAL, SCOPE_LAYER };
enum { INCLUDE_CONV, INCLUDE_LINEAR, INCLUDE_ALL };

static int mag_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    if (!ctx || !ctx->graph || !ctx->host)
        return dlas_error(DLAS_ERR_INVALID, "magnitude: no graph or host in the context");
    const struct dlas_host *host = ctx->host;
    struct dlas_graph *g = ctx->graph;

    double sparsity = p ? dlas_param_float(p, "sparsity") : 0.5;
    const char *scope_s = p ? dlas_param_str(p, "scope") : "global";
    const char *include_s = p ? dlas_param_str(p, "include") : "all";
    int skip_first = p ? dlas_param_bool(p, "skip_first") : 0;
    int skip_last = p ? dlas_param_bool(p, "skip_last") : 0;
    if (!(sparsity >= 0.0 && sparsity <= 0.999))
        return dlas_error(DLAS_ERR_INVALID, "magnitude: sparsity = %g is outside 0..0.999",
                          sparsity);
    static const char *const scopes[] = {"global", "layer"};
    static const char *const includes[] = {"conv", "linear", "all"};
    int scope = SCOPE_GLOBAL, include = INCLUDE_ALL, rc;
    if ((rc = check_choice(scope_s, "scope", scopes, 2, &scope)) ||
        (rc = check_choice(include_s, "include", includes, 3, &include)))
        return rc;

    int nn = dlas_graph_n_nodes(g), first_conv = -1, last_linear = -1;
    for (int id = 0; id < nn; id++) {
        enum dlas_op op = dlas_graph_node(g, id)->op;
        if (op == DLAS_OP_CONV2D && first_conv < 0)
            first_conv = id;
        if (op == DLAS_OP_LINEAR)
            last_linear = id;
    }

    struct target *ts = host->alloc((size_t)(nn > 0 ? nn : 1) * sizeof *ts);
    if (!ts)
        return dlas_error(DLAS_ERR_NOMEM, "magnitude: cannot allocate the layer list");
    int nt = 0;
    rc = DLAS_OK;
    for (int id = 0; id < nn && !rc; id++) {
        struct dlas_node *node = dlas_graph_node(g, id);
        int conv = node->op == DLAS_OP_CONV2D, lin = node->op == DLAS_OP_LINEAR;
        if (!(conv && include != INCLUDE_LINEAR) && !(lin && include != INCLUDE_CONV))
            continue;
        if ((conv && skip_first && id == first_conv) || (lin && skip_last && id == last_linear))
            continue;
        struct dlas_tensor *t = &node->weight;
        int64_t n = dlas_tensor_numel(t);
        if (n == 0) {
            rc = dlas_error(DLAS_ERR_INVALID, "magnitude: node '%s' has no weights (initialise "
                            "the graph before pruning)", node->name);
            break;
        }
        if (t->dtype != DLAS_F32) {
            rc = dlas_error(DLAS_ERR_UNSUPPORTED,
                            "magnitude: node '%s' holds %s weights; prune before quantising",
                            node->name, dlas_dtype_name(t->dtype));
            break;
        }
        const float *w = t->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(w[i]) && !(t->mask && !t->mask[i])) {
                rc = dlas_error(DLAS_ERR_INVALID,
                                "magnitude: node '%s' weight %lld is not finite (%g); the "
                                "model diverged?", node->name, (long long)i, (double)w[i]);
                break;
            }
        if (rc)
            break;
        if ((rc = dlas_tensor_mask_ensure(t))) {
            dlas_error_context("magnitude: node '%s': ", node->name);
            break;
        }
        ts[nt++] = (struct target){node, t, n};
    }
    if (!rc && nt == 0)
        rc = dlas_error(DLAS_ERR_INVALID,
                        "magnitude: nothing to prune: no %s weights selected (include = %s, "
                        "skip_first = %s, skip_last = %s)",
                        include == INCLUDE_ALL ? "conv or linear" : include_s, include_s,
                        skip_first ? "true" : "false", skip_last ? "true" : "false");

    int64_t total = 0, pruned = 0, masked_before = 0;
    for (int j = 0; j < nt && !rc; j++) {
        total += ts[j].n;
        for (int64_t i = 0; i < ts[j].n; i++)
            masked_before += !ts[j].t->mask[i];
    }
    if (!rc && scope == SCOPE_GLOBAL) {
        rc = prune_scope(host, ts, nt, prune_count(sparsity, total));
    } else if (!rc) {
        for (int j = 0; j < nt && !rc; j++)
            rc = prune_scope(host, &ts[j], 1, prune_count(sparsity, ts[j].n));
    }
    for (int j = 0; j < nt && !rc; j++)
        for (int64_t i = 0; i < ts[j].n; i++)
            pruned += !ts[j].t->mask[i];
    host->free(ts);
    if (rc)
        return rc;

    double achieved = total ? (double)pruned / (double)total : 0.0;
    host->log(DLAS_LOG_INFO,
              "magnitude: %lld of %lld weights pruned (sparsity %.4f, target %.4f, %s scope, "
              "%d layers)",
              (long long)pruned, (long long)total, achieved, sparsity, scopes[scope], nt);
    if (masked_before > prune_count(sparsity, total))
        host->log(DLAS_LOG_WARN,
                  "magnitude: %lld weights were already pruned, more than the target %.4f asks "
                  "for; pruned weights are never revived",
                  (long long)masked_before, sparsity);
    if (ctx->report) {
        if ((rc = dlas_report_num(ctx->report, "magnitude.sparsity_achieved", achieved)) ||
            (rc = dlas_report_num(ctx->report, "magnitude.pruned", (double)pruned)))
            return rc;
    }
    return DLAS_OK;
}

static const struct dlas_param_spec mag_params[] = {
    {"sparsity", DLAS_PARAM_FLOAT, DLAS_PARAM_TUNABLE, "0.5", 0.0, 0.999, NULL,
     "fraction of the selected weights to prune"},
    {"scope", DLAS_PARAM_ENUM, 0, "global", 0, 0, "global|layer",
     "one threshold across all selected layers, or the same fraction in each layer"},
    {"include", DLAS_PARAM_ENUM, 0, "all", 0, 0, "conv|linear|all",
     "which layers' weights may be pruned (biases and batch norm never are)"},
    {"skip_first", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL, "leave the first conv unpruned"},
    {"skip_last", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL, "leave the last linear unpruned"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops mag_ops = {sizeof(struct dlas_compressor_ops),
                                                   mag_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "magnitude",
     "unstructured magnitude pruning to a target sparsity, with masks",
     "S. Han, J. Pool, J. Tran, W. J. Dally. Learning both Weights and Connections for "
     "Efficient Neural Networks. NeurIPS 2015 (arXiv:1506.02626)",
     mag_params, &mag_ops},
};

DLAS_PLUGIN("magnitude", "0.1.0", "magnitude pruning", components)
