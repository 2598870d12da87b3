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

#include <stdio.h>

#include <dlas/plugin.h>
#include <dlas/train.h>

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
                      value ? value : "(null)",
                      n == 2 ? "global, layer" : !strcmp(name, "mode") ? "oneshot, gradual, iterative"
                                                                         : "conv, linear, all");
}

enum { SCOPE_GLOBAL, SCOPE_LAYER };
enum { INCLUDE_CONV, INCLUDE_LINEAR, INCLUDE_ALL };

/* The selection: which tensors are pruned, in node order. */
struct selection {
    const struct dlas_host *host;
    struct target *ts;
    int nt, scope;
    int64_t total;
};

static int select_targets(struct dlas_compress_ctx *ctx, const struct dlas_params *p,
                          struct selection *sel)
{
    const struct dlas_host *host = ctx->host;
    struct dlas_graph *g = ctx->graph;
    const char *scope_s = p ? dlas_param_str(p, "scope") : "global";
    const char *include_s = p ? dlas_param_str(p, "include") : "all";
    int skip_first = p ? dlas_param_bool(p, "skip_first") : 0;
    int skip_last = p ? dlas_param_bool(p, "skip_last") : 0;
    static const char *const scopes[] = {"global", "layer"};
    static const char *const includes[] = {"conv", "linear", "all"};
    int scope = SCOPE_GLOBAL, include = INCLUDE_ALL, rc;
    if ((rc = check_choice(scope_s, "scope", scopes, 2, &scope)) ||
        (rc = check_choice(include_s, "include", includes, 3, &include)))
        return rc;
    memset(sel, 0, sizeof *sel);
    sel->host = host;
    sel->scope = scope;

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
        sel->total += n;
    }
    if (!rc && nt == 0)
        rc = dlas_error(DLAS_ERR_INVALID,
                        "magnitude: nothing to prune: no %s weights selected (include = %s, "
                        "skip_first = %s, skip_last = %s)",
                        include == INCLUDE_ALL ? "conv or linear" : include_s, include_s,
                        skip_first ? "true" : "false", skip_last ? "true" : "false");
    if (rc) {
        host->free(ts);
        return rc;
    }
    sel->ts = ts;
    sel->nt = nt;
    return DLAS_OK;
}

static int64_t masked_count(const struct selection *sel)
{
    int64_t m = 0;
    for (int j = 0; j < sel->nt; j++)
        for (int64_t i = 0; i < sel->ts[j].n; i++)
            m += !sel->ts[j].t->mask[i];
    return m;
}

/* Prune the selection to `sparsity` (never reviving a pruned weight);
 * returns the sparsity reached. The graph's tensors are the selection's,
 * which stay valid while the graph is not rewritten. */
static int prune_to(struct selection *sel, double sparsity, double *achieved)
{
    int rc = DLAS_OK;
    if (sel->scope == SCOPE_GLOBAL)
        rc = prune_scope(sel->host, sel->ts, sel->nt, prune_count(sparsity, sel->total));
    else
        for (int j = 0; j < sel->nt && !rc; j++)
            rc = prune_scope(sel->host, &sel->ts[j], 1, prune_count(sparsity, sel->ts[j].n));
    if (!rc && achieved)
        *achieved = sel->total ? (double)masked_count(sel) / (double)sel->total : 0.0;
    return rc;
}

/* Zhu & Gupta's cubic schedule: s_k = s_f + (s_i - s_f)(1 - k/n)^3. */
static double gradual_sparsity(double s_i, double s_f, int64_t k, int64_t n)
{
    double x = 1.0 - (double)k / (double)n;
    return s_f + (s_i - s_f) * x * x * x;
}

/* Deep Compression's iterations: each removes the same fraction of the
 * weights still there, s_i = 1 - (1 - s_f)^(i/k). */
static double iterative_sparsity(double s_f, int64_t i, int64_t k)
{
    return 1.0 - pow(1.0 - s_f, (double)i / (double)k);
}

enum { MODE_ONESHOT, MODE_GRADUAL, MODE_ITERATIVE };

struct schedule_run {
    struct selection *sel;
    double s_i, s_f;
    int64_t every, n, recover, steps, k;
    char hist[4096];
    size_t hist_len;
    int rc;
};

static void note(struct schedule_run *r, int64_t step, double s)
{
    if (r->hist_len < sizeof r->hist)
        r->hist_len += (size_t)snprintf(r->hist + r->hist_len, sizeof r->hist - r->hist_len,
                                        "%s%lld:%.6f", r->hist_len ? " " : "", (long long)step, s);
}

/* Gradual: prune at steps 0, every, ..., n*every; stop `recover` later. */
static int gradual_step(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    (void)s;
    struct schedule_run *r = ctx;
    r->steps++;
    if (r->k < r->n && r->steps % r->every == 0) {
        double got;
        r->k++;
        int rc = prune_to(r->sel, gradual_sparsity(r->s_i, r->s_f, r->k, r->n), &got);
        if (rc)
            return rc;
        note(r, r->steps, got);
    }
    if (r->k >= r->n && r->steps >= r->n * r->every + r->recover)
        dlas_trainer_stop(t);
    return DLAS_OK;
}

static int stop_after(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    (void)s;
    struct schedule_run *r = ctx;
    if (++r->steps >= r->recover)
        dlas_trainer_stop(t);
    return DLAS_OK;
}

static int mag_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    if (!ctx || !ctx->graph || !ctx->host)
        return dlas_error(DLAS_ERR_INVALID, "magnitude: no graph or host in the context");
    const struct dlas_host *host = ctx->host;
    double sparsity = p ? dlas_param_float(p, "sparsity") : 0.5;
    if (!(sparsity >= 0.0 && sparsity <= 0.999))
        return dlas_error(DLAS_ERR_INVALID, "magnitude: sparsity = %g is outside 0..0.999",
                          sparsity);
    static const char *const modes[] = {"oneshot", "gradual", "iterative"};
    int mode = MODE_ONESHOT, rc;
    if (p && (rc = check_choice(dlas_param_str(p, "mode"), "mode", modes, 3, &mode)))
        return rc;
    int trains = ctx->size >= offsetof(struct dlas_compress_ctx, trainer) + sizeof ctx->trainer &&
                 ctx->trainer;
    if (mode != MODE_ONESHOT && !trains)
        return dlas_error(DLAS_ERR_INVALID,
                          "magnitude: mode = \"%s\" trains between pruning steps, but the "
                          "experiment does not train (set train.epochs > 0)",
                          modes[mode]);
    struct selection sel;
    if ((rc = select_targets(ctx, p, &sel)))
        return rc;
    int64_t masked_before = masked_count(&sel);
    double achieved = 0.0;
    struct schedule_run r;
    memset(&r, 0, sizeof r);
    r.sel = &sel;
    r.s_f = sparsity;
    if (mode == MODE_ONESHOT) {
        rc = prune_to(&sel, sparsity, &achieved);
    } else if (mode == MODE_GRADUAL) {
        r.s_i = dlas_param_float(p, "initial_sparsity");
        r.every = dlas_param_int(p, "prune_every");
        r.n = dlas_param_int(p, "prune_steps");
        r.recover = dlas_param_int(p, "recover_steps");
        if (r.s_i > sparsity)
            rc = dlas_error(DLAS_ERR_INVALID, "magnitude: initial_sparsity %g > sparsity %g",
                            r.s_i, sparsity);
        if (!rc && !(rc = prune_to(&sel, r.s_i, &achieved))) { /* k = 0, before training */
            note(&r, 0, achieved);
            rc = dlas_trainer_fit_steps(ctx->trainer, "magnitude", dlas_param_float(p, "lr"),
                                        r.n * r.every + r.recover, gradual_step, &r);
        }
        if (!rc && r.k < r.n)
            rc = dlas_error(DLAS_ERR_INTERNAL, "magnitude: training ended after %lld of %lld "
                            "pruning steps", (long long)r.k, (long long)r.n);
    } else {
        int64_t k = dlas_param_int(p, "iterations");
        for (int64_t i = 1; i <= k && !rc; i++) {
            if ((rc = prune_to(&sel, iterative_sparsity(sparsity, i, k), &achieved)))
                break;
            note(&r, i, achieved);
            r.steps = 0;
            r.recover = dlas_param_int(p, "retrain_steps");
            if (r.recover > 0)
                rc = dlas_trainer_fit_steps(ctx->trainer, "magnitude", dlas_param_float(p, "lr"),
                                            r.recover, stop_after, &r);
        }
    }
    if (!rc)
        achieved = sel.total ? (double)masked_count(&sel) / (double)sel.total : 0.0;
    int64_t pruned = rc ? 0 : masked_count(&sel), total = sel.total;
    int nt = sel.nt;
    host->free(sel.ts);
    if (rc)
        return rc;

    host->log(DLAS_LOG_INFO,
              "magnitude: %lld of %lld weights pruned (sparsity %.4f, target %.4f, %s, %s "
              "scope, %d layers)",
              (long long)pruned, (long long)total, achieved, sparsity, modes[mode],
              sel.scope == SCOPE_GLOBAL ? "global" : "layer", nt);
    if (masked_before > prune_count(sparsity, total))
        host->log(DLAS_LOG_WARN,
                  "magnitude: %lld weights were already pruned, more than the target %.4f asks "
                  "for; pruned weights are never revived",
                  (long long)masked_before, sparsity);
    if (ctx->report) {
        if ((rc = dlas_report_num(ctx->report, "magnitude.sparsity_achieved", achieved)) ||
            (rc = dlas_report_num(ctx->report, "magnitude.pruned", (double)pruned)))
            return rc;
        if (mode != MODE_ONESHOT &&
            (rc = dlas_report_str(ctx->report, "magnitude.schedule", r.hist)))
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
    {"mode", DLAS_PARAM_ENUM, 0, "oneshot", 0, 0, "oneshot|gradual|iterative",
     "oneshot: prune once; gradual: Zhu & Gupta's cubic schedule while training; iterative: "
     "Deep Compression's prune -> retrain iterations"},
    {"initial_sparsity", DLAS_PARAM_FLOAT, 0, "0", 0, 0.999, NULL,
     "gradual: s_i, the sparsity at the first pruning step"},
    {"prune_every", DLAS_PARAM_INT, 0, "100", 1, 1e9, NULL,
     "gradual: training steps between pruning steps (Delta t)"},
    {"prune_steps", DLAS_PARAM_INT, 0, "10", 1, 1e6, NULL,
     "gradual: pruning steps n after the first (s_n = sparsity)"},
    {"recover_steps", DLAS_PARAM_INT, 0, "0", 0, 1e12, NULL,
     "gradual: training steps after the last pruning step"},
    {"iterations", DLAS_PARAM_INT, 0, "3", 1, 1000, NULL,
     "iterative: prune -> retrain rounds; round i reaches 1 - (1 - sparsity)^(i/iterations)"},
    {"retrain_steps", DLAS_PARAM_INT, 0, "200", 0, 1e12, NULL,
     "iterative: training steps after each round"},
    {"lr", DLAS_PARAM_FLOAT, 0, "0", 0, 10, NULL,
     "gradual and iterative: constant learning rate while training (0: the recipe's)"},
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
