/* Conformance suite over every plugin found through the registry.
 *
 * Primitives: each conv2d primitive is run on many seeded random shapes (odd
 * sizes, strides, paddings, dilations, groups up to depthwise, 1x1 to 7x7
 * kernels, batch 1 and 3, with and without bias, dense and pruned weights:
 * random sparsity from 0 to 100%, empty filters and input channels) on
 * the openmp backend at 1 and 2 threads, and compared with dlas_ref_conv2d.
 * A primitive may refuse a shape, but only with a reason. Beyond the numbers,
 * it checks the contract of the ABI: every output element written (the
 * output is poisoned with NaN), nothing written past it, the input left
 * alone, and prepare() keeping its own copy of the weights.
 *
 * Also: the magnitude compressor (exact counts, masks, survivors) and the
 * synthetic dataset (determinism, ranges, refusals, learnability). */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "testutil.h"

/* ---- shared fixtures ----------------------------------------------------- */

static struct dlas_registry *reg;
static struct dlas_rng host_rng;
static struct dlas_host host;

#define MAX_PRIMS 64
static const struct dlas_component *prims[MAX_PRIMS];
static const char *prim_paths[MAX_PRIMS];
static int n_prims;

static void host_setup(uint64_t seed)
{
    dlas_test_host(&host, &host_rng, seed, DLAS_LOG_DEBUG);
}

static const struct dlas_component *find(enum dlas_kind kind, const char *name)
{
    const struct dlas_component *c = dlas_registry_find(reg, kind, name);
    ck_assert_msg(c != NULL, "%s '%s' not found through the registry: %s",
                  dlas_kind_name(kind), name, dlas_last_error());
    return c;
}

/* Defaults of a component's spec with `n` name/value overrides. NULL when
 * the component declares no parameters. */
static struct dlas_params *params_of(const struct dlas_component *c, int n, ...)
{
    if (!c->params)
        return NULL;
    struct dlas_params *p = NULL;
    int rc = dlas_params_defaults(c->params, &p);
    ck_assert_msg(rc == 0, "defaults of '%s': %s", c->name, dlas_last_error());
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);
        rc = dlas_params_set(p, k, v, "check_conformance");
        ck_assert_msg(rc == 0, "'%s': %s = %s: %s", c->name, k, v, dlas_last_error());
    }
    va_end(ap);
    return p;
}

/* ---- the registry finds something to test --------------------------------- */

START_TEST(test_primitives_found)
{
    if (n_prims == 0) {
        const char *path = "", *why = "";
        if (dlas_registry_n_failures(reg))
            dlas_registry_failure(reg, 0, &path, &why);
        ck_abort_msg("no primitive plugins found (DLAS_PLUGIN_PATH=%s; %zu load failures%s%s%s%s):"
                     " the conformance suite would pass vacuously",
                     getenv("DLAS_PLUGIN_PATH") ? getenv("DLAS_PLUGIN_PATH") : "(unset)",
                     dlas_registry_n_failures(reg), *path ? ", first: " : "", path,
                     *why ? ": " : "", why);
    }
    ck_assert_ptr_nonnull(dlas_registry_find(reg, DLAS_KIND_BACKEND, "openmp"));
    /* Every plugin of the build must load: one that does not would drop its
     * primitives from the loop below, and the suite would pass without them. */
    for (size_t i = 0; i < dlas_registry_n_failures(reg); i++) {
        const char *path, *why;
        dlas_registry_failure(reg, i, &path, &why);
        ck_abort_msg("plugin not loaded: %s: %s", path, why);
    }
}
END_TEST

/* ---- primitives ------------------------------------------------------------- */

#define GUARD 16 /* floats each side of the output; 64 bytes keeps alignment */
#define TOL 1e-5
#define RANDOM_CASES 160
#define RANDOM_3X3_CASES 48  /* 3x3 stride 1: what Winograd-style primitives accept */
#define RANDOM_WIDE_CASES 16 /* several 16-channel blocks and a partial one */
#define RANDOM_1X1_CASES 12  /* 1x1, unpadded: hundreds of channels, strided, odd maps */

/* DLAS_CONFORMANCE_FRACTION (0 < f <= 1, default 1) runs that share of each
 * random set: the first draws, the same shapes as a full run. CI's sanitizer
 * stage uses a quarter; its plain run before draws them all. */
static double random_fraction = 1.0;

static int random_count(int n)
{
    int k = (int)(n * random_fraction + 0.5);
    return k < 1 ? 1 : k;
}

/* Tolerances looser than TOL, each with its reason. The bound is a
 * relative error below 1e-4; TOL keeps exact-arithmetic primitives to 1e-5. */
static const struct {
    const char *prim;
    double tol;
    const char *why;
} tolerances[] = {
    /* F(4x4,3x3) interpolates at 0, +-1, +-2 and inf: its transform matrices
     * have entries up to 8 (A^T) and 5 (B^T), so each output is a signed sum
     * of terms up to ~100x larger than itself and float rounding grows by
     * about that factor; the measured worst case on these shapes is ~1e-5,
     * Lavin & Gray report the same order. F(2x2,3x3) stays below TOL. */
    {"winograd", 1e-4, "Winograd F(4x4,3x3) transforms amplify rounding"},
};

static double tolerance_of(const char *prim)
{
    for (size_t i = 0; i < sizeof tolerances / sizeof tolerances[0]; i++)
        if (!strcmp(tolerances[i].prim, prim))
            return tolerances[i].tol;
    return TOL;
}

/* Parameter settings each primitive is also tested with, besides its
 * defaults: the other algorithm variants and register-block shapes, so that
 * a tuned configuration is as conformant as the default one. */
#define MAX_VARIANT_SETS 6
static const struct {
    const char *prim;
    int n; /* key/value pairs */
    const char *kv[2 * MAX_VARIANT_SETS];
} variants[] = {
    {"winograd", 1, {"tile", "2"}},
    {"winograd", 1, {"tile", "4"}},
    {"winograd", 3, {"tile", "4", "oc_vectors", "1", "split", "channels"}},
    {"winograd", 3, {"tile", "2", "tile_block", "5", "chunk", "7"}},
    {"winograd", 4, {"tile", "4", "order", "xi", "chunk", "10", "oc_vectors", "2"}},
    {"winograd", 3, {"tile", "2", "order", "xi", "split", "channels"}},
    {"winograd", 2, {"tile", "4", "order", "blocks"}},
    {"direct", 3, {"oc_vectors", "1", "ow_block", "16", "order", "channels"}},
    {"direct", 3, {"oc_vectors", "3", "reg_w", "3", "reg_h", "2"}},
    {"direct", 3, {"oc_vectors", "1", "reg_w", "4", "reg_h", "4"}},
    /* few input channels: channel blocks instead of the default planes, and
     * planes forced (refused, with the reason, past 4 channels a group) */
    {"direct", 1, {"input", "blocks"}},
    {"direct", 2, {"input", "planes", "oc_vectors", "2"}},
    {"spatial-pack", 5, {"oc_vectors", "1", "reg_h", "4", "reg_w", "4", "tile_h", "8", "tile_w", "12"}},
    {"spatial-pack", 6,
     {"oc_vectors", "4", "reg_h", "1", "reg_w", "7", "tile_h", "3", "tile_w", "7", "order",
      "channels"}},
    {"grouped-spatial-pack", 3, {"oc_block", "1", "vectors", "1", "vectorize", "grid"}},
    {"grouped-spatial-pack", 2, {"oc_block", "4", "vectors", "2"}},
    {"grouped-spatial-pack", 1, {"vectorize", "channels"}},
    {"grouped-spatial-pack", 1, {"vectorize", "rows"}},
    {"sparse-direct", 2, {"vectors", "3", "rows", "2"}},
    {"sparse-direct", 2, {"vectors", "2", "rows", "4"}},
    {"sparse-direct", 2, {"vectors", "5", "rows", "1"}},
    {"sparse-direct", 2, {"aligned", "on", "vectors", "28"}},
    {"sparse-direct", 2, {"aligned", "auto", "rows", "1"}},
    {"sparse-direct", 2, {"order", "channel", "rows", "4"}},
    {"sparse-direct", 1, {"layout", "columns"}},
    {"sparse-direct", 2, {"layout", "columns", "rows", "1"}},
    {"sparse-direct", 3, {"layout", "columns", "rows", "4", "half", "off"}},
    {"sparse-direct", 2, {"row_pad", "own", "rows", "4"}},
    {"pointwise", 1, {"split", "pixels"}},
    {"pointwise", 1, {"split", "channels"}},
    {"sparse-gemm", 2, {"band", "16", "vectors", "1"}},
    {"sparse-gemm", 2, {"band", "80", "vectors", "2"}},
};

static void fill_normal(struct dlas_rng *r, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = dlas_rng_normal(r);
}

static int64_t pick(struct dlas_rng *r, int64_t n) { return (int64_t)dlas_rng_below(r, (uint64_t)n); }

/* A random valid layer; geometry that leaves no output is drawn again. */
static void random_desc(struct dlas_rng *r, struct dlas_conv_desc *d)
{
    static const int ks[] = {1, 3, 5, 7};
    for (;;) {
        memset(d, 0, sizeof *d);
        switch (pick(r, 4)) {
        case 0: d->groups = 1; break;
        case 1: d->groups = 2; break;
        case 2: d->groups = 4; break;
        default: d->groups = 0; break; /* depthwise */
        }
        if (d->groups == 0) {
            d->in_c = 1 + pick(r, 12);
            d->groups = (int)d->in_c;
            d->out_c = d->in_c * (1 + pick(r, 2)); /* channel multiplier 1 or 2 */
        } else {
            d->in_c = d->groups * (1 + pick(r, 6));
            d->out_c = d->groups * (1 + pick(r, 6));
        }
        d->kh = ks[pick(r, 4)];
        d->kw = pick(r, 5) ? d->kh : ks[pick(r, 4)]; /* now and then rectangular */
        d->stride_h = 1 + (int)pick(r, 2);
        d->stride_w = pick(r, 4) ? d->stride_h : 1 + (int)pick(r, 2);
        d->pad_h = (int)pick(r, 4);
        d->pad_w = pick(r, 4) ? d->pad_h : (int)pick(r, 4);
        d->dil_h = 1 + (int)pick(r, 2);
        d->dil_w = pick(r, 4) ? d->dil_h : 1 + (int)pick(r, 2);
        /* Mostly odd sizes: they expose off-by-one errors at the borders. */
        d->in_h = pick(r, 4) ? 2 * pick(r, 10) + 1 : 2 + 2 * pick(r, 9);
        d->in_w = pick(r, 3) ? d->in_h : 1 + pick(r, 19);
        d->batch = pick(r, 2) ? 3 : 1;
        d->has_bias = (int)pick(r, 2);
        if (dlas_conv_desc_finish(d) == 0 && d->out_h >= 1 && d->out_w >= 1)
            return;
    }
}

/* A random 3x3, stride-1, undilated layer (padding 0..3): the family most
 * networks are made of, and the only one Winograd primitives accept. */
static void random_desc_3x3(struct dlas_rng *r, struct dlas_conv_desc *d)
{
    for (;;) {
        random_desc(r, d);
        d->kh = d->kw = 3;
        d->stride_h = d->stride_w = 1;
        d->dil_h = d->dil_w = 1;
        d->pad_h = d->pad_w = (int)pick(r, 4);
        if (dlas_conv_desc_finish(d) == 0 && d->out_h >= 1 && d->out_w >= 1)
            return;
    }
}

/* Channel counts past one 16-wide vector block, not multiples of it. */
static void random_desc_wide(struct dlas_rng *r, struct dlas_conv_desc *d)
{
    for (;;) {
        random_desc(r, d);
        d->groups = pick(r, 4) ? 1 : 2;
        d->in_c = d->groups * (8 + pick(r, 30));
        d->out_c = d->groups * (8 + pick(r, 40));
        if (dlas_conv_desc_finish(d) == 0 && d->out_h >= 1 && d->out_w >= 1)
            return;
    }
}

/* A random 1x1 unpadded layer (what `pointwise` takes): channel counts
 * past one pass of input channels (256) and one block of output channels,
 * neither a multiple of a vector, stride 1..3, and maps whose pixel count
 * leaves a part-filled strip. */
static void random_desc_1x1(struct dlas_rng *r, struct dlas_conv_desc *d)
{
    for (;;) {
        random_desc(r, d);
        d->kh = d->kw = 1;
        d->pad_h = d->pad_w = 0;
        d->groups = pick(r, 4) ? 1 : 2;
        d->in_c = d->groups * (pick(r, 2) ? 1 + pick(r, 40) : 200 + pick(r, 400));
        d->out_c = d->groups * (pick(r, 2) ? 1 + pick(r, 40) : 90 + pick(r, 150));
        d->stride_h = 1 + (int)pick(r, 3);
        d->stride_w = pick(r, 3) ? d->stride_h : 1 + (int)pick(r, 3);
        d->in_h = 1 + pick(r, 13);
        d->in_w = 1 + pick(r, 13);
        if (dlas_conv_desc_finish(d) == 0 && d->out_h >= 1 && d->out_w >= 1)
            return;
    }
}

/* Fixed shapes that random draws may miss: the 1x1 shortcut, the ResNet stem,
 * MobileNet's depthwise stride 2, one big enough that primitives take
 * their threaded paths, and narrow maps with many output channels. */
static const struct dlas_conv_desc fixed_cases[] = {
    /* batch, in c/h/w, out c/h/w (filled), kh kw sh sw ph pw dh dw groups bias activation
     * quant, weight_sparsity (set per case from the drawn weights) */
    {1, 16, 9, 9, 24, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, NULL, 0.0f},
    {3, 16, 9, 9, 24, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, NULL, 0.0f},
    {3, 8, 11, 11, 8, 0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1, 0, NULL, 0.0f},
    {1, 3, 31, 31, 8, 0, 0, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0, 0, NULL, 0.0f},
    {3, 12, 15, 15, 12, 0, 0, 3, 3, 2, 2, 1, 1, 1, 1, 12, 1, 0, NULL, 0.0f},
    {1, 8, 13, 13, 16, 0, 0, 5, 5, 1, 1, 4, 4, 2, 2, 4, 1, 0, NULL, 0.0f},
    {1, 32, 17, 17, 32, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0.0f},
    {3, 32, 17, 17, 32, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, NULL, 0.0f},
    {5, 16, 21, 19, 8, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1, 0, NULL, 0.0f},
    {1, 4, 1, 1, 4, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0.0f},
    {1, 2, 2, 3, 3, 0, 0, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 0, NULL, 0.0f},
    /* narrow maps with many output channels: `direct` blocks two rows of
     * three channel vectors (the last block part-filled; 5 rows: a short
     * last row block) */
    {1, 24, 4, 4, 500, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0.0f},
    {3, 24, 5, 4, 500, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, NULL, 0.0f},
    /* many images of a small map, then one image fewer in the workspace the
     * full batch asked for (a primitive sharing out a batch's pixels must
     * not need more for fewer) */
    {33, 8, 3, 3, 8, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, NULL, 0.0f},
    /* `direct` and `winograd` pack a small input once a thread
     * (PC_PRIVATE_PACK_MAX_BYTES, 192 KiB) and a larger one once, shared:
     * 2 x 225 KiB packed, shared at either batch; 2 x 113 KiB, shared at
     * batch 2 and a copy a thread at batch 1, in batch 2's workspace */
    {2, 32, 40, 40, 16, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0.0f},
    {2, 16, 40, 40, 16, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, NULL, 0.0f},
    /* band packing at a batch whose packed input outgrows the threads'
     * copies (PC_BAND_MAX_BYTES, 4 MiB): `winograd` packs 1.4 MB an image
     * (two blocks of 16 channels, the second part-filled), two images a
     * copy, so a thread's half of five images takes two windows; `direct`
     * packs one image at a time, and moves on mid-batch */
    {5, 17, 104, 104, 8, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0.0f},
    /* groups of whole blocks of 16 channels (ResNeXt's later stages): C16
     * reads and writes them in place (pc_c16_groups), as 3x3, strided 3x3
     * and 1x1 layers; then groups of 8, which C16 must refuse */
    {2, 64, 9, 10, 64, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1, 0, NULL, 0.0f},
    {1, 64, 11, 11, 96, 0, 0, 3, 3, 2, 2, 1, 1, 1, 1, 2, 0, 0, NULL, 0.0f},
    {3, 64, 7, 6, 32, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 2, 1, 0, NULL, 0.0f},
    {1, 48, 8, 8, 48, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 3, 1, 0, NULL, 0.0f},
    {1, 32, 8, 8, 32, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 4, 1, 0, NULL, 0.0f},
};
#define N_FIXED (int)(sizeof fixed_cases / sizeof fixed_cases[0])

/* How a case prunes its weights (zeros, as magnitude leaves them):
 * `level` of them at random, then `empty_filters` whole output channels and
 * `empty_inputs` whole input channels (of every filter). level < 0: draw
 * all three. */
struct prune_spec {
    double level;
    int empty_filters, empty_inputs;
};

/* Prune w (layer d) per ps, or as drawn when ps->level < 0: from dense to
 * 99% and all-zero, now and then whole filters and input channels. Writes
 * what it did to desc and returns the fraction of zeros. */
static double sparsify(struct dlas_rng *r, const struct dlas_conv_desc *d, float *w,
                       struct prune_spec ps, char *desc, size_t len)
{
    static const double levels[] = {0.5, 0.8, 0.9, 0.95, 0.99, 1.0};
    const int64_t cpg = d->in_c / d->groups, taps = (int64_t)d->kh * d->kw;
    const int64_t wn = d->out_c * cpg * taps;
    if (ps.level < 0) {
        int k = (int)pick(r, 8);
        ps.level = k < 6 ? levels[k] : dlas_rng_uniform(r);
        ps.empty_filters = pick(r, 3) ? 0 : (int)(1 + pick(r, d->out_c));
        ps.empty_inputs = pick(r, 4) ? 0 : (int)(1 + pick(r, cpg));
    }
    for (int64_t i = 0; i < wn; i++)
        if (dlas_rng_uniform(r) < ps.level)
            w[i] = 0.0f;
    for (int f = 0; f < ps.empty_filters && f < d->out_c; f++) {
        int64_t oc = pick(r, d->out_c);
        memset(w + oc * cpg * taps, 0, (size_t)(cpg * taps) * sizeof(float));
    }
    for (int k = 0; k < ps.empty_inputs && k < cpg; k++) {
        int64_t ic = pick(r, cpg);
        for (int64_t oc = 0; oc < d->out_c; oc++)
            memset(w + (oc * cpg + ic) * taps, 0, (size_t)taps * sizeof(float));
    }
    int64_t zeros = 0;
    for (int64_t i = 0; i < wn; i++)
        zeros += w[i] == 0.0f;
    double sp = wn ? (double)zeros / (double)wn : 0.0;
    snprintf(desc, len, ", pruned weights (level %.2f, %d empty filters, %d empty inputs: "
             "sparsity %.3f)", ps.level, ps.empty_filters, ps.empty_inputs, sp);
    return sp;
}

struct prim_tally {
    int run, refused, runs_checked;
    int c16; /* layers run with a C16 layout (set_layouts) */
    /* 0: every choice of C16 layouts on every shape (the defaults); 1: one
     * choice a shape, in turn (the variants: their kernels differ from the
     * defaults', not the layouts' code, and seven choices on every shape
     * made this suite the slowest under the sanitizers) */
    int c16_in_turn;
    int unavailable; /* refusals for want of hardware or a library */
    double max_err;
};

/* relu or relu6 (enum dlas_activation) of x, as the reference applies it */
static float act_ref(float x, int act)
{
    if (act != DLAS_ACT_NONE && x < 0.0f)
        x = 0.0f;
    return act == DLAS_ACT_RELU6 && x > 6.0f ? 6.0f : x;
}

/* run_residual (DLAS_PRIM_RESIDUAL) on a prepared layer: out = act(conv +
 * bias + res) against the reference conv without the activation, plus res,
 * then the activation; with res a buffer of its own (the output poisoned)
 * and with res the output itself, as a plan may pass it. */
static void check_residual(const struct dlas_primitive_ops *ops, void *st,
                           const struct dlas_backend *be, const struct dlas_conv_desc *d,
                           const float *in, const float *w_ref, const float *bias_ref,
                           struct dlas_rng *r, const char *ctx, struct prim_tally *tally)
{
    const int64_t n = d->batch * d->out_c * d->out_h * d->out_w;
    struct dlas_conv_desc pre = *d;
    pre.activation = DLAS_ACT_NONE;
    float *ref = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *res = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *out = dlas_aligned_alloc((size_t)n * sizeof(float));
    ck_assert(ref && res && out);
    dlas_ref_conv2d(&pre, d->batch, in, w_ref, d->has_bias ? bias_ref : NULL, ref);
    fill_normal(r, res, n);
    double scale = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ref[i] += res[i];
        scale = fmax(scale, fabs(ref[i]));
        ref[i] = act_ref(ref[i], d->activation);
    }
    size_t wsb = ops->workspace(st, d->batch);
    void *ws = wsb ? be->ops->alloc(be->ctx, wsb) : NULL;
    ck_assert_msg(!wsb || ws, "%s: cannot allocate %zu bytes of workspace", ctx, wsb);
    for (int alias = 0; alias <= 1; alias++) {
        for (int64_t i = 0; i < n; i++)
            out[i] = alias ? res[i] : NAN;
        int rc = ops->run_residual(st, d->batch, in, alias ? out : res, out, ws, NULL);
        ck_assert_msg(rc == 0, "%s, residual%s: run_residual() failed: %s", ctx,
                      alias ? " in place" : "", dlas_last_error());
        double diff = 0.0;
        for (int64_t i = 0; i < n; i++) {
            ck_assert_msg(isfinite(out[i]), "%s, residual: output %lld not written", ctx,
                          (long long)i);
            diff = fmax(diff, fabs((double)out[i] - (double)ref[i]));
        }
        double err = diff / fmax(scale, 1e-30);
        ck_assert_msg(err < TOL, "%s, residual%s: relative error %.3g >= %g", ctx,
                      alias ? " in place" : "", err, TOL);
        tally->runs_checked++;
    }
    if (ws)
        be->ops->free(be->ctx, ws);
    dlas_aligned_free(ref);
    dlas_aligned_free(res);
    dlas_aligned_free(out);
}

/* run_prologue (DLAS_PRIM_PROLOGUE) on a prepared layer that takes one:
 * the input given channel by channel, from two buffers of their own (the
 * parts of a concatenation: each channel's image stride is its part's,
 * not the layer's), and each value taken as pact(x * scale[c] + shift[c]),
 * against the reference conv of the transformed input; the output
 * poisoned, the parts left as they were. */
static void check_prologue(const struct dlas_primitive_ops *ops, void *st,
                           const struct dlas_backend *be, const struct dlas_conv_desc *d,
                           const float *in, const float *w_ref, const float *bias_ref,
                           struct dlas_rng *r, const char *ctx, struct prim_tally *tally)
{
    const int64_t plane = d->in_h * d->in_w, C = d->in_c, n_in = d->batch * C * plane;
    const int64_t n = d->batch * d->out_c * d->out_h * d->out_w;
    const int pact = (int)pick(r, 3); /* none, relu, relu6 */
    const int64_t c0 = C > 1 ? 1 + pick(r, C - 1) : C; /* part 0: channels [0, c0) */
    float *xt = dlas_aligned_alloc((size_t)n_in * sizeof(float));
    float *part[2] = {dlas_aligned_alloc((size_t)(d->batch * c0 * plane + 1) * sizeof(float)),
                      dlas_aligned_alloc((size_t)(d->batch * (C - c0) * plane + 1) * sizeof(float))};
    float *ref = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *out = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *scale = malloc((size_t)C * sizeof(float)), *shift = malloc((size_t)C * sizeof(float));
    const float **chan = malloc((size_t)C * sizeof *chan);
    int64_t *bstride = malloc((size_t)C * sizeof *bstride);
    ck_assert(xt && part[0] && part[1] && ref && out && scale && shift && chan && bstride);
    for (int64_t c = 0; c < C; c++) {
        scale[c] = 0.5f + (float)dlas_rng_uniform(r);
        shift[c] = 0.3f * dlas_rng_normal(r);
        const int k = c >= c0;
        const int64_t nk = k ? C - c0 : c0, ck = k ? c - c0 : c;
        chan[c] = part[k] + ck * plane;
        bstride[c] = nk * plane;
        for (int64_t b = 0; b < d->batch; b++)
            for (int64_t i = 0; i < plane; i++) {
                const float x = in[(b * C + c) * plane + i];
                part[k][b * bstride[c] + ck * plane + i] = x;
                xt[(b * C + c) * plane + i] = act_ref(x * scale[c] + shift[c], pact);
            }
    }
    dlas_ref_conv2d(d, d->batch, xt, w_ref, d->has_bias ? bias_ref : NULL, ref);
    size_t wsb = ops->workspace(st, d->batch);
    void *ws = wsb ? be->ops->alloc(be->ctx, wsb) : NULL;
    ck_assert_msg(!wsb || ws, "%s: cannot allocate %zu bytes of workspace", ctx, wsb);
    for (int64_t i = 0; i < n; i++)
        out[i] = NAN;
    struct dlas_conv_prologue pro = {chan, bstride, scale, shift, pact};
    int rc = ops->run_prologue(st, d->batch, &pro, out, ws, NULL);
    ck_assert_msg(rc == 0, "%s, prologue: run_prologue() failed: %s", ctx, dlas_last_error());
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(isfinite(out[i]), "%s, prologue: output %lld not written", ctx,
                      (long long)i);
    for (int64_t c = 0; c < C; c++) /* the parts are read, never written */
        for (int64_t b = 0; b < d->batch; b++)
            ck_assert(!memcmp(chan[c] + b * bstride[c], in + (b * C + c) * plane,
                              (size_t)plane * sizeof(float)));
    double err = dlas_rel_error(out, ref, n);
    ck_assert_msg(err < TOL, "%s, prologue (act %d, parts of %lld and %lld channels): relative "
                  "error %.3g >= %g", ctx, pact, (long long)c0, (long long)(C - c0), err, TOL);
    tally->runs_checked++;
    if (ws)
        be->ops->free(be->ctx, ws);
    dlas_aligned_free(xt);
    dlas_aligned_free(part[0]);
    dlas_aligned_free(part[1]);
    dlas_aligned_free(ref);
    dlas_aligned_free(out);
    free(scale);
    free(shift);
    free(chan);
    free(bstride);
}

/* ---- the C16 layout (set_layouts, ABI 1.9) ---------------------------------- */

/* x (NCHW, batch x C x hw) into C16 (dlas_layout); the lanes past C poisoned
 * (NaN), so that a reader that used them fails. */
static void to_c16(const float *x, int64_t batch, int64_t C, int64_t hw, float *y)
{
    const int64_t cb = (C + 15) / 16;
    for (int64_t i = 0; i < batch * cb * hw * 16; i++)
        y[i] = NAN;
    for (int64_t n = 0; n < batch; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < hw; i++)
                y[((n * cb + c / 16) * hw + i) * 16 + c % 16] = x[(n * C + c) * hw + i];
}

static void from_c16(const float *y, int64_t batch, int64_t C, int64_t hw, float *x)
{
    const int64_t cb = (C + 15) / 16;
    for (int64_t n = 0; n < batch; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < hw; i++)
                x[(n * C + c) * hw + i] = y[((n * cb + c / 16) * hw + i) * 16 + c % 16];
}

/* max |out - ref| over max |pre|, the outputs before the activation (as
 * run_case scales relu6) */
static double c16_error(const float *out, const float *ref, const float *pre, int64_t n)
{
    double diff = 0.0, top = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(out[i]), "output %lld not written (or not finite): %g",
                      (long long)i, (double)out[i]);
        diff = fmax(diff, fabs((double)out[i] - (double)ref[i]));
        top = fmax(top, fabs((double)pre[i]));
    }
    return diff / top;
}

/* A prepared layer whose primitive declares DLAS_PRIM_C16: every choice of
 * layouts for input, output and residual with C16 somewhere, through run()
 * and (where it adds residuals) run_residual(), against the reference; the
 * spare lanes of C16 inputs and residuals poisoned, the output poisoned,
 * the workspace asked again each time. Then back to NCHW, which must run as
 * before. A choice the state refuses must be DLAS_ERR_UNSUPPORTED; C16
 * throughout must be taken where the layer has one group, or groups whose
 * channels are whole blocks of 16. Under
 * tally->c16_in_turn the layer gets one choice, the next after the last
 * shape's. */
static void check_c16(const struct dlas_primitive_ops *ops, void *st,
                      const struct dlas_backend *be, const struct dlas_conv_desc *d,
                      const float *in, const float *w_ref, const float *bias_ref,
                      struct dlas_rng *r, const char *ctx, double tol, struct prim_tally *tally)
{
    const int64_t B = d->batch, ihw = d->in_h * d->in_w, ohw = d->out_h * d->out_w;
    const int64_t n = B * d->out_c * ohw;
    const int64_t n_in16 = B * ((d->in_c + 15) / 16) * 16 * ihw;
    const int64_t n_out16 = B * ((d->out_c + 15) / 16) * 16 * ohw;
    const int residual = dlas_prim_runs_residual(ops);
    struct dlas_conv_desc pre_d = *d;
    pre_d.activation = DLAS_ACT_NONE;
    float *pre = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *pre_res = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *ref = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *ref_res = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *res = dlas_aligned_alloc((size_t)n * sizeof(float));
    float *res16 = dlas_aligned_alloc((size_t)n_out16 * sizeof(float));
    float *in16 = dlas_aligned_alloc((size_t)n_in16 * sizeof(float));
    float *out16 = dlas_aligned_alloc((size_t)n_out16 * sizeof(float));
    float *out = dlas_aligned_alloc((size_t)n * sizeof(float));
    ck_assert(pre && pre_res && ref && ref_res && res && res16 && in16 && out16 && out);
    dlas_ref_conv2d(&pre_d, B, in, w_ref, d->has_bias ? bias_ref : NULL, pre);
    fill_normal(r, res, n);
    for (int64_t i = 0; i < n; i++) {
        pre_res[i] = pre[i] + res[i];
        ref[i] = act_ref(pre[i], d->activation);
        ref_res[i] = act_ref(pre_res[i], d->activation);
    }
    to_c16(in, B, d->in_c, ihw, in16);
    to_c16(res, B, d->out_c, ohw, res16);
    int taken = 0;
    const int only = tally->c16_in_turn ? 1 + tally->run % 7 : 0;
    for (int k = 1; k < 8; k++) { /* bits: input, output, residual in C16 */
        if (only && k != only)
            continue;
        const int ic = k & 1, oc = (k >> 1) & 1, rcl = (k >> 2) & 1;
        int rc = ops->set_layouts(st, ic ? DLAS_LAYOUT_C16 : DLAS_LAYOUT_NCHW,
                                  oc ? DLAS_LAYOUT_C16 : DLAS_LAYOUT_NCHW,
                                  rcl ? DLAS_LAYOUT_C16 : DLAS_LAYOUT_NCHW);
        if (rc) {
            /* C16 throughout: taken wherever a group is whole blocks of 16 */
            const int whole = d->groups == 1 || ((d->in_c / d->groups) % 16 == 0 &&
                                                 (d->out_c / d->groups) % 16 == 0);
            ck_assert_msg(rc == DLAS_ERR_UNSUPPORTED && (!whole || k != 7),
                          "%s, layouts %d/%d/%d: set_layouts() refused: %s", ctx, ic, oc, rcl,
                          dlas_last_error());
            continue;
        }
        taken++;
        size_t wsb = ops->workspace(st, B);
        void *ws = wsb ? be->ops->alloc(be->ctx, wsb) : NULL;
        ck_assert_msg(!wsb || ws, "%s: cannot allocate %zu bytes of workspace", ctx, wsb);
        for (int with_res = 0; with_res <= residual; with_res++) {
            float *o = oc ? out16 : out;
            for (int64_t i = 0; i < (oc ? n_out16 : n); i++)
                o[i] = NAN;
            const float *x = ic ? in16 : in, *rr = rcl ? res16 : res;
            rc = with_res ? ops->run_residual(st, B, x, rr, o, ws, NULL)
                          : ops->run(st, B, x, o, ws, NULL);
            ck_assert_msg(rc == 0, "%s, layouts %d/%d/%d%s: run failed: %s", ctx, ic, oc, rcl,
                          with_res ? ", residual" : "", dlas_last_error());
            if (oc)
                from_c16(out16, B, d->out_c, ohw, out);
            double err = c16_error(out, with_res ? ref_res : ref, with_res ? pre_res : pre, n);
            ck_assert_msg(err < tol, "%s, layouts in %s, out %s, residual %s%s: relative error "
                          "%.3g >= %g", ctx, ic ? "c16" : "nchw", oc ? "c16" : "nchw",
                          rcl ? "c16" : "nchw", with_res ? " (added)" : "", err, tol);
            tally->runs_checked++;
        }
        if (ws)
            be->ops->free(be->ctx, ws);
    }
    /* a layout that is neither, on any side, is an error of the caller's */
    for (int side = 0; side < 3; side++) {
        int l[3] = {DLAS_LAYOUT_NCHW, DLAS_LAYOUT_NCHW, DLAS_LAYOUT_NCHW};
        l[side] = side == 1 ? -1 : DLAS_LAYOUT_C16 + 1 + side;
        int rc = ops->set_layouts(st, l[0], l[1], l[2]);
        ck_assert_msg(rc == DLAS_ERR_INVALID, "%s: set_layouts(%d, %d, %d) gave %d, not "
                      "DLAS_ERR_INVALID", ctx, l[0], l[1], l[2], rc);
    }
    ck_assert_int_eq(ops->set_layouts(st, DLAS_LAYOUT_NCHW, DLAS_LAYOUT_NCHW, DLAS_LAYOUT_NCHW),
                     0);
    size_t wsb = ops->workspace(st, B);
    void *ws = wsb ? be->ops->alloc(be->ctx, wsb) : NULL;
    for (int64_t i = 0; i < n; i++)
        out[i] = NAN;
    ck_assert_int_eq(ops->run(st, B, in, out, ws, NULL), 0);
    double err = c16_error(out, ref, pre, n);
    ck_assert_msg(err < tol, "%s, back to NCHW: relative error %.3g >= %g", ctx, err, tol);
    if (ws)
        be->ops->free(be->ctx, ws);
    tally->c16 += taken > 0;
    dlas_aligned_free(pre);
    dlas_aligned_free(pre_res);
    dlas_aligned_free(ref);
    dlas_aligned_free(ref_res);
    dlas_aligned_free(res);
    dlas_aligned_free(res16);
    dlas_aligned_free(in16);
    dlas_aligned_free(out16);
    dlas_aligned_free(out);
}

static void check_case_pruned(const struct dlas_component *c, const struct dlas_params *pp,
                              const struct dlas_backend *be, int threads,
                              const struct dlas_conv_desc *d, struct dlas_rng *r, int case_no,
                              const struct prune_spec *prune, struct prim_tally *tally)
{
    const struct dlas_primitive_ops *ops = c->ops;
    char shape[160], why[512];
    dlas_conv_desc_format(d, shape, sizeof shape);
    char ctx[600], pdesc[160] = "";
    /* the weights are drawn first: the layer carries their sparsity, as a
     * plan's does (dlas_conv_desc.weight_sparsity) */
    const int64_t wn = d->out_c * (d->in_c / d->groups) * d->kh * d->kw;
    float *w = dlas_aligned_alloc((size_t)wn * sizeof(float));
    ck_assert(w);
    fill_normal(r, w, wn);
    int pruned = prune || (int)pick(r, 3) == 0;
    struct dlas_conv_desc dsp = *d;
    if (pruned) {
        struct prune_spec drawn = {-1, 0, 0};
        dsp.weight_sparsity = (float)sparsify(r, d, w, prune ? *prune : drawn, pdesc, sizeof pdesc);
        d = &dsp;
    }
    /* A primitive that applies activations itself gets a relu or relu6 on
     * every third layer (the reference applies it too). */
    struct dlas_conv_desc dact = *d;
    if (dlas_prim_applies_activation(ops) && pick(r, 3) == 0) {
        dact.activation = pick(r, 2) ? DLAS_ACT_RELU : DLAS_ACT_RELU6;
        d = &dact;
        dlas_conv_desc_format(d, shape, sizeof shape);
    }
    snprintf(ctx, sizeof ctx, "primitive '%s', threads %d, case %d: %s, batch %lld, %s%s",
             c->name, threads, case_no, shape, (long long)d->batch,
             d->has_bias ? "bias" : "no bias", pdesc);

    memset(why, 0, sizeof why);
    int rc = ops->supports(d, pp, why, sizeof why);
    if (rc) {
        ck_assert_msg(rc == DLAS_ERR_UNSUPPORTED || rc == DLAS_ERR_UNAVAILABLE,
                      "%s: supports() returned %s for a valid layer", ctx, dlas_status_name(rc));
        ck_assert_msg(why[0] != '\0', "%s: refused without a reason", ctx);
        tally->refused++;
        tally->unavailable += rc == DLAS_ERR_UNAVAILABLE;
        dlas_aligned_free(w);
        return;
    }

    const int64_t in_img = d->in_c * d->in_h * d->in_w, out_img = d->out_c * d->out_h * d->out_w;
    const int64_t n_in = d->batch * in_img, n_out = d->batch * out_img;
    float *in = dlas_aligned_alloc((size_t)n_in * sizeof(float));
    float *in_keep = dlas_aligned_alloc((size_t)n_in * sizeof(float));
    float *w_ref = dlas_aligned_alloc((size_t)wn * sizeof(float));
    float *bias = dlas_aligned_alloc((size_t)d->out_c * sizeof(float));
    float *bias_ref = dlas_aligned_alloc((size_t)d->out_c * sizeof(float));
    float *ref = dlas_aligned_alloc((size_t)n_out * sizeof(float));
    float *out_buf = dlas_aligned_alloc((size_t)(n_out + 2 * GUARD) * sizeof(float));
    ck_assert(in && in_keep && w && w_ref && bias && bias_ref && ref && out_buf);
    float *out = out_buf + GUARD;

    fill_normal(r, in, n_in);
    memcpy(in_keep, in, (size_t)n_in * sizeof(float));
    memcpy(w_ref, w, (size_t)wn * sizeof(float));
    fill_normal(r, bias, d->out_c);
    memcpy(bias_ref, bias, (size_t)d->out_c * sizeof(float));
    dlas_ref_conv2d(d, d->batch, in, w_ref, d->has_bias ? bias_ref : NULL, ref);
    /* Errors are relative to the largest output; relu6 caps the outputs at
     * 6 while the rounding comes from sums that can be far larger (a 7x7
     * layer with 22 input channels reaches ~30), so there the scale is the
     * largest output before the activation. */
    double scale = 0.0;
    if (d->activation == DLAS_ACT_RELU6) {
        struct dlas_conv_desc pre = *d;
        pre.activation = DLAS_ACT_NONE;
        float *ref_pre = dlas_aligned_alloc((size_t)n_out * sizeof(float));
        ck_assert(ref_pre);
        dlas_ref_conv2d(&pre, d->batch, in, w_ref, d->has_bias ? bias_ref : NULL, ref_pre);
        for (int64_t i = 0; i < n_out; i++)
            scale = fmax(scale, fabs(ref_pre[i]));
        dlas_aligned_free(ref_pre);
    }

    void *st = NULL;
    rc = ops->prepare(&host, be, d, w, d->has_bias ? bias : NULL, pp, &st);
    ck_assert_msg(rc == 0, "%s: prepare() failed after supports() accepted: %s", ctx,
                  dlas_last_error());
    /* run() must use its own prepared copy, not the caller's buffers. */
    for (int64_t i = 0; i < wn; i++)
        w[i] = NAN;
    for (int64_t i = 0; i < d->out_c; i++)
        bias[i] = NAN;

    /* The declared batch, then a smaller one (the plan's last partial
     * batch), both in the workspace the declared batch asked for, as a
     * plan allocates it. */
    int64_t batches[2] = {d->batch, d->batch > 1 ? d->batch - 1 : 0};
    size_t wsb = ops->workspace(st, d->batch);
    /* A run of fewer images fits in it: a smaller batch never asks for
     * more (a plan sizes one workspace for its largest batch). */
    for (int64_t nb = 1; nb < d->batch; nb++)
        ck_assert_msg(ops->workspace(st, nb) <= wsb,
                      "%s: workspace(%lld) = %zu > workspace(%lld) = %zu", ctx, (long long)nb,
                      ops->workspace(st, nb), (long long)d->batch, wsb);
    void *ws = wsb ? be->ops->alloc(be->ctx, wsb) : NULL;
    ck_assert_msg(!wsb || ws, "%s: cannot allocate %zu bytes of workspace", ctx, wsb);
    for (int bi = 0; bi < 2 && batches[bi]; bi++) {
        const int64_t nb = batches[bi], n = nb * out_img;
        for (int64_t i = 0; i < n_out + 2 * GUARD; i++)
            out_buf[i] = NAN;
        for (int i = 0; i < GUARD; i++)
            out_buf[i] = out[n + i] = 1234.5f;
        struct dlas_profile prof;
        memset(&prof, 0, sizeof prof);
        rc = ops->run(st, nb, in, out, ws, (case_no & 1) ? &prof : NULL);
        ck_assert_msg(rc == 0, "%s, run batch %lld: run() failed: %s", ctx, (long long)nb,
                      dlas_last_error());
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(isfinite(out[i]),
                          "%s, run batch %lld: output %lld not written (or not finite): %g",
                          ctx, (long long)nb, (long long)i, (double)out[i]);
        for (int i = 0; i < GUARD; i++)
            ck_assert_msg(out_buf[i] == 1234.5f && out[n + i] == 1234.5f,
                          "%s, run batch %lld: wrote outside the output", ctx, (long long)nb);
        ck_assert_msg(!memcmp(in, in_keep, (size_t)n_in * sizeof(float)),
                      "%s: run() modified its input", ctx);
        double err = dlas_rel_error(out, ref, n), tol = tolerance_of(c->name);
        if (scale > 0) { /* relu6: against the pre-activation scale (above) */
            double diff = 0.0, top = 0.0;
            for (int64_t i = 0; i < n; i++) {
                diff = fmax(diff, fabs((double)out[i] - (double)ref[i]));
                top = fmax(top, fabs((double)ref[i]));
            }
            err = diff / fmax(fmax(top, scale), 1e-30);
        }
        ck_assert_msg(err < tol, "%s, run batch %lld: relative error %.3g >= %g", ctx,
                      (long long)nb, err, tol);
        if (err > tally->max_err)
            tally->max_err = err;
        ck_assert_msg(prof.n >= 0 && prof.n <= DLAS_PROFILE_MAX, "%s: profile has %d phases",
                      ctx, prof.n);
        tally->runs_checked++;
    }
    if (ws)
        be->ops->free(be->ctx, ws);
    if (dlas_prim_runs_residual(ops))
        check_residual(ops, st, be, d, in, w_ref, bias_ref, r, ctx, tally);
    if (dlas_prim_runs_prologue(ops) && ops->takes_prologue(st))
        check_prologue(ops, st, be, d, in, w_ref, bias_ref, r, ctx, tally);
    if (dlas_prim_sets_layouts(ops))
        check_c16(ops, st, be, d, in, w_ref, bias_ref, r, ctx, tolerance_of(c->name), tally);
    ops->release(st);
    tally->run++;

    dlas_aligned_free(in);
    dlas_aligned_free(in_keep);
    dlas_aligned_free(w);
    dlas_aligned_free(w_ref);
    dlas_aligned_free(bias);
    dlas_aligned_free(bias_ref);
    dlas_aligned_free(ref);
    dlas_aligned_free(out_buf);
}

static void check_case(const struct dlas_component *c, const struct dlas_params *pp,
                       const struct dlas_backend *be, int threads,
                       const struct dlas_conv_desc *d, struct dlas_rng *r, int case_no,
                       struct prim_tally *tally)
{
    check_case_pruned(c, pp, be, threads, d, r, case_no, NULL, tally);
}

START_TEST(test_primitive)
{
    ck_assert_int_lt(_i, n_prims);
    const struct dlas_component *c = prims[_i];
    const struct dlas_primitive_ops *ops = c->ops;
    ck_assert_msg(ops && ops->size >= sizeof *ops, "primitive '%s' (%s): ops table too short",
                  c->name, prim_paths[_i]);
    ck_assert_msg(ops->op && ops->device && ops->supports && ops->prepare && ops->workspace &&
                      ops->run && ops->release,
                  "primitive '%s': incomplete ops table", c->name);
    if (dlas_prim_runs_int8(ops)) { /* fp32 layers are refused by design */
        fprintf(stderr, "conformance: '%s' runs int8 layers: tests/check_int8 checks it\n",
                c->name);
        return;
    }
    if (strcmp(ops->op, "conv2d") || strcmp(ops->device, "cpu")) {
        fprintf(stderr, "conformance: skipping '%s' (op %s on %s: not a cpu conv2d)\n", c->name,
                ops->op, ops->device);
        return;
    }
    host_setup(1234);
    const struct dlas_component *bc = find(DLAS_KIND_BACKEND, "openmp");
    /* the defaults, then each variant listed for this primitive */
    int vlist[16], nv = 0;
    vlist[nv++] = -1;
    for (int k = 0; k < (int)(sizeof variants / sizeof variants[0]) && nv < 16; k++)
        if (!strcmp(variants[k].prim, c->name))
            vlist[nv++] = k;
    for (int vi = 0; vi < nv; vi++) {
    struct dlas_params *pp = params_of(c, 0);
    char vdesc[256] = "defaults";
    if (vlist[vi] >= 0) {
        size_t used = 0;
        for (int k = 0; k < variants[vlist[vi]].n; k++) {
            const char *key = variants[vlist[vi]].kv[2 * k], *val = variants[vlist[vi]].kv[2 * k + 1];
            int rc = dlas_params_set(pp, key, val, "check_conformance variants");
            ck_assert_msg(rc == 0, "'%s': %s = %s: %s", c->name, key, val, dlas_last_error());
            used += (size_t)snprintf(vdesc + used, sizeof vdesc - used, "%s%s=%s", k ? "," : "",
                                     key, val);
        }
    }
    /* variants run at one thread count: threading is the defaults' job */
    static const int thread_counts[] = {1, 2};
    for (int ti = vi ? 1 : 0; ti < 2; ti++) {
        int threads = thread_counts[ti];
        char tbuf[16];
        snprintf(tbuf, sizeof tbuf, "%d", threads);
        struct dlas_params *bp = params_of(bc, 1, "threads", tbuf);
        struct dlas_backend be = {bc->ops, NULL};
        int rc = be.ops->init(&host, bp, &be.ctx);
        ck_assert_msg(rc == 0, "openmp backend, threads %d: %s", threads, dlas_last_error());
        ck_assert_int_eq(be.ops->threads(be.ctx), threads);

        /* The same shapes at both thread counts: a difference is threading's. */
        struct dlas_rng r;
        dlas_rng_seed(&r, dlas_rng_hash(c->name) ^ 0x5eed);
        struct prim_tally tally = {.c16_in_turn = vi > 0};
        for (int k = 0; k < N_FIXED; k++) {
            struct dlas_conv_desc d = fixed_cases[k];
            ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
            check_case(c, pp, &be, threads, &d, &r, k, &tally);
        }
        for (int k = 0; k < random_count(RANDOM_CASES); k++) {
            struct dlas_conv_desc d;
            random_desc(&r, &d);
            check_case(c, pp, &be, threads, &d, &r, N_FIXED + k, &tally);
        }
        for (int k = 0; k < random_count(RANDOM_3X3_CASES); k++) {
            struct dlas_conv_desc d;
            random_desc_3x3(&r, &d);
            check_case(c, pp, &be, threads, &d, &r, N_FIXED + RANDOM_CASES + k, &tally);
        }
        for (int k = 0; k < random_count(RANDOM_WIDE_CASES); k++) {
            struct dlas_conv_desc d;
            random_desc_wide(&r, &d);
            check_case(c, pp, &be, threads, &d, &r,
                       N_FIXED + RANDOM_CASES + RANDOM_3X3_CASES + k, &tally);
        }
        for (int k = 0; k < random_count(RANDOM_1X1_CASES); k++) {
            struct dlas_conv_desc d;
            random_desc_1x1(&r, &d);
            check_case(c, pp, &be, threads, &d, &r,
                       N_FIXED + RANDOM_CASES + RANDOM_3X3_CASES + RANDOM_WIDE_CASES + k, &tally);
        }
        fprintf(stderr,
                "conformance: %-20s threads %d: %d shapes run (%d runs checked, %d in C16), "
                "%d refused, max rel. error %.2g (%s)\n",
                c->name, threads, tally.run, tally.runs_checked, tally.c16, tally.refused,
                tally.max_err, vdesc);
        ck_assert_msg(!dlas_prim_sets_layouts(ops) || tally.c16 > 0 || !tally.run,
                      "primitive '%s' declares C16 but took it on no shape", c->name);
        /* a variant this build cannot offer (e.g. an AVX-512 path) may be
         * unavailable throughout; anything else must run some shapes */
        ck_assert_msg(tally.run > 0 || tally.unavailable == tally.refused,
                      "primitive '%s' (%s) refused every shape", c->name, vdesc);
        be.ops->release(be.ctx);
        dlas_params_free(bp);
    }
    dlas_params_free(pp);
    }
}
END_TEST

/* Every primitive at fixed sparsities, dense to fully pruned, on shapes
 * with several output-channel and position blocks, strides, dilation,
 * groups, depthwise, 1x1, batch > 1: what the sparse primitives must get
 * exactly right (empty rows, fully pruned filters and input channels) and
 * the dense ones must not mind. */
static const struct dlas_conv_desc sparse_cases[] = {
    /* batch, in c/h/w, out c/h/w (filled), kh kw sh sw ph pw dh dw groups bias activation
     * quant, weight_sparsity (set per case from the drawn weights) */
    {1, 32, 13, 13, 40, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0.0f},
    {3, 24, 15, 17, 16, 0, 0, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 0, NULL, 0.0f},
    {2, 16, 11, 11, 16, 0, 0, 3, 3, 1, 1, 2, 2, 2, 2, 2, 1, 0, NULL, 0.0f},
    {1, 12, 9, 9, 12, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 12, 1, 0, NULL, 0.0f},
    {2, 64, 7, 7, 72, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, NULL, 0.0f},
    {2, 8, 20, 20, 24, 0, 0, 5, 5, 2, 1, 2, 3, 1, 1, 1, 1, 0, NULL, 0.0f},
};
#define N_SPARSE_CASES (int)(sizeof sparse_cases / sizeof sparse_cases[0])

START_TEST(test_primitive_sparsity)
{
    const struct dlas_component *c = prims[_i];
    const struct dlas_primitive_ops *ops = c->ops;
    if (strcmp(ops->op, "conv2d") || strcmp(ops->device, "cpu") || dlas_prim_runs_int8(ops))
        return; /* int8 primitives refuse fp32 layers by design: tests/check_int8 */
    static const struct prune_spec specs[] = {
        {0.0, 0, 0},  {0.5, 0, 0},  {0.8, 0, 0}, {0.9, 0, 0},
        {0.95, 0, 0}, {0.99, 0, 0}, {1.0, 0, 0}, {0.9, 3, 2},
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    host_setup(77);
    const struct dlas_component *bc = find(DLAS_KIND_BACKEND, "openmp");
    /* the defaults, and each packed-input layout a primitive offers: every
     * layout must get the empty rows and pruned filters right */
    static const char *const layouts[] = {NULL, "flat", "columns"};
    int has_layout = 0;
    for (const struct dlas_param_spec *sp = c->params; sp && sp->name; sp++)
        has_layout |= !strcmp(sp->name, "layout");
    for (int li = 0; li < (has_layout ? 3 : 1); li++) {
    struct dlas_params *pp =
        layouts[li] ? params_of(c, 1, "layout", layouts[li]) : params_of(c, 0);
    for (int threads = 1; threads <= 2; threads++) {
        char tbuf[16];
        snprintf(tbuf, sizeof tbuf, "%d", threads);
        struct dlas_params *bp = params_of(bc, 1, "threads", tbuf);
        struct dlas_backend be = {bc->ops, NULL};
        ck_assert_int_eq(be.ops->init(&host, bp, &be.ctx), 0);
        struct dlas_rng r;
        dlas_rng_seed(&r, dlas_rng_hash(c->name) ^ 0x5a45);
        struct prim_tally tally = {0};
        for (int k = 0; k < N_SPARSE_CASES; k++)
            for (int l = 0; l < n_specs; l++) {
                struct dlas_conv_desc d = sparse_cases[k];
                ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
                check_case_pruned(c, pp, &be, threads, &d, &r, k * n_specs + l, &specs[l],
                                  &tally);
            }
        fprintf(stderr,
                "conformance: %-20s threads %d: sparsity 0-100%%: %d shapes run, %d refused, "
                "max rel. error %.2g (layout %s)\n",
                c->name, threads, tally.run, tally.refused, tally.max_err,
                layouts[li] ? layouts[li] : "default");
        ck_assert_msg(tally.run > 0 || tally.unavailable == tally.refused,
                      "primitive '%s' refused every sparse case", c->name);
        be.ops->release(be.ctx);
        dlas_params_free(bp);
    }
    dlas_params_free(pp);
    }
    /* a primitive with a break-even threshold refuses the layers below it,
     * saying why, and takes those above */
    for (const struct dlas_param_spec *sp = c->params; sp && sp->name; sp++) {
        if (strcmp(sp->name, "min_sparsity"))
            continue;
        struct dlas_params *mp = params_of(c, 1, "min_sparsity", "0.6");
        struct dlas_conv_desc d = sparse_cases[0];
        ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
        char why[512] = "";
        d.weight_sparsity = 0.5f;
        ck_assert_int_eq(ops->supports(&d, mp, why, sizeof why), DLAS_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(why, "min_sparsity"), "'%s': reason '%s'", c->name, why);
        d.weight_sparsity = 0.9f;
        ck_assert_msg(ops->supports(&d, mp, why, sizeof why) == DLAS_OK, "'%s': %s", c->name,
                      why);
        dlas_params_free(mp);
    }
}
END_TEST

/* Out of memory in prepare(): every host allocation in turn fails; each
 * failure returns DLAS_ERR_NOMEM with a message, leaves no state and frees
 * everything allocated before it (counted here, so the check holds without
 * a leak checker too). */
static int oom_budget;
static long oom_live;

static void *oom_alloc(size_t bytes)
{
    if (oom_budget-- <= 0)
        return NULL;
    void *q = dlas_aligned_alloc(bytes);
    if (q)
        oom_live++;
    return q;
}

static void oom_free(void *q)
{
    if (q)
        oom_live--;
    dlas_aligned_free(q);
}

START_TEST(test_primitive_out_of_memory)
{
    const struct dlas_component *c = prims[_i];
    const struct dlas_primitive_ops *ops = c->ops;
    if (strcmp(ops->op, "conv2d") || strcmp(ops->device, "cpu") || dlas_prim_runs_int8(ops))
        return;
    static const struct dlas_conv_desc cases[] = {
        {2, 20, 9, 9, 36, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0.0f},  /* dense 3x3 */
        {1, 32, 8, 8, 32, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 32, 1, 0, NULL, 0.0f}, /* depthwise */
        {2, 40, 7, 7, 24, 0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 1, 0, NULL, 0.0f},  /* 1x1 strided */
    };
    host_setup(91);
    const struct dlas_component *bc = find(DLAS_KIND_BACKEND, "openmp");
    struct dlas_backend be = {bc->ops, NULL};
    struct dlas_params *bp = params_of(bc, 0);
    ck_assert_int_eq(be.ops->init(&host, bp, &be.ctx), 0);
    struct dlas_params *pp = params_of(c, 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 0x00ff);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct dlas_conv_desc d = cases[k];
        ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
        const int64_t wn = d.out_c * (d.in_c / d.groups) * d.kh * d.kw;
        float *w = malloc((size_t)wn * sizeof *w), *b = malloc((size_t)d.out_c * sizeof *b);
        ck_assert(w && b);
        for (int64_t i = 0; i < wn; i++) /* half the weights pruned */
            w[i] = i % 2 ? 0.0f : (float)dlas_rng_uniform(&r) - 0.5f;
        for (int64_t i = 0; i < d.out_c; i++)
            b[i] = (float)dlas_rng_uniform(&r);
        d.weight_sparsity = 0.5f;
        char why[512];
        if (ops->supports(&d, pp, why, sizeof why) == DLAS_OK) {
            host.alloc = oom_alloc;
            host.free = oom_free;
            int rc = DLAS_ERR_NOMEM;
            for (oom_budget = 0; rc == DLAS_ERR_NOMEM && oom_budget < 64;) {
                const int budget = oom_budget;
                void *st = (void *)&st;
                oom_live = 0;
                rc = ops->prepare(&host, &be, &d, w, b, pp, &st);
                if (rc == DLAS_OK) {
                    ops->release(st);
                } else {
                    ck_assert_msg(rc == DLAS_ERR_NOMEM,
                                  "'%s', case %zu, %d allocations allowed: status %d (%s)", c->name,
                                  k, budget, rc, dlas_last_error());
                    ck_assert_msg(st == NULL, "'%s': a failed prepare() left a state", c->name);
                    ck_assert_msg(*dlas_last_error(), "'%s': out of memory, no message",
                                  c->name);
                }
                ck_assert_msg(oom_live == 0,
                              "'%s', case %zu, %d allocations allowed: %ld blocks not freed",
                              c->name, k, budget, oom_live);
                oom_budget = budget + 1;
            }
            ck_assert_msg(rc == DLAS_OK, "'%s', case %zu: prepare() still failing: %s", c->name,
                          k, dlas_last_error());
            /* the state itself is one allocation, so at least one failed */
            ck_assert_int_gt(oom_budget, 1);
            fprintf(stderr, "conformance: %-20s case %zu: each of %d allocations failed in turn\n",
                    c->name, k, oom_budget - 1);
            host.alloc = dlas_aligned_alloc;
            host.free = dlas_aligned_free;
        }
        free(w);
        free(b);
    }
    dlas_params_free(pp);
    be.ops->release(be.ctx);
    dlas_params_free(bp);
}
END_TEST

/* ---- backend ---------------------------------------------------------------- */

struct cover {
    int *hits;
    int bad_thread;
    int threads;
};

static void cover_fn(void *arg, int64_t begin, int64_t end, int thread)
{
    struct cover *cv = arg;
    if (thread < 0 || thread >= cv->threads)
        cv->bad_thread = 1;
    for (int64_t i = begin; i < end; i++)
        cv->hits[i]++; /* ranges are disjoint, so no two threads share an i */
}

START_TEST(test_backend_openmp)
{
    host_setup(1);
    const struct dlas_component *bc = find(DLAS_KIND_BACKEND, "openmp");
    const struct dlas_backend_ops *ops = bc->ops;
    ck_assert_str_eq(ops->device, "cpu");
    for (int threads = 0; threads <= 3; threads++) {
        char tbuf[16];
        snprintf(tbuf, sizeof tbuf, "%d", threads);
        struct dlas_params *bp = params_of(bc, 1, "threads", tbuf);
        void *ctx = NULL;
        ck_assert_int_eq(ops->init(&host, bp, &ctx), 0);
        int t = ops->threads(ctx);
        ck_assert_int_eq(t, threads ? threads : omp_get_num_procs());
        static const int64_t ns[] = {0, 1, 2, 3, 7, 1000};
        for (int k = 0; k < 6; k++) {
            int hits[1000] = {0};
            struct cover cv = {hits, 0, t};
            ops->parallel_for(ctx, ns[k], cover_fn, &cv);
            ck_assert_int_eq(cv.bad_thread, 0);
            for (int64_t i = 0; i < ns[k]; i++)
                ck_assert_msg(hits[i] == 1, "threads %d, n %lld: index %lld ran %d times", t,
                              (long long)ns[k], (long long)i, hits[i]);
        }
        void *p = ops->alloc(ctx, 1000);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq((int)((uintptr_t)p % 64), 0);
        ops->free(ctx, p);
        double t0 = ops->now(ctx), t1 = ops->now(ctx);
        ck_assert(t1 >= t0 && t0 > 0);
        ck_assert_int_eq(ops->sync(ctx), 0);
        ops->release(ctx);
        dlas_params_free(bp);
    }
    /* A binding is accepted: the backend pins the pool's threads itself
     * (OMP_PROC_BIND, when the environment sets it, takes precedence). */
    struct dlas_params *bp = params_of(bc, 2, "threads", "1", "bind", "spread");
    void *ctx = NULL;
    ck_assert_msg(ops->init(&host, bp, &ctx) == 0, "bind = spread: %s", dlas_last_error());
    ops->release(ctx);
    dlas_params_free(bp);
}
END_TEST

/* ---- magnitude compressor ------------------------------------------------------ */

static struct dlas_graph *small_net(uint64_t seed)
{
    struct dlas_graph *g = dlas_graph_new();
    ck_assert_ptr_nonnull(g);
    int x = dlas_graph_input(g, "in", 3, 12, 12);
    struct dlas_conv_attr a = dlas_conv(8, 3, 1, 1);
    x = dlas_graph_conv2d(g, "conv1", x, &a);
    x = dlas_graph_batchnorm(g, "bn1", x, 1e-5f);
    x = dlas_graph_relu(g, "relu1", x);
    a = dlas_conv(16, 3, 2, 1);
    a.bias = 1;
    x = dlas_graph_conv2d(g, "conv2", x, &a);
    x = dlas_graph_relu(g, "relu2", x);
    a = dlas_conv(16, 3, 1, 1);
    a.groups = 16;
    x = dlas_graph_conv2d(g, "dw3", x, &a);
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flat", x);
    x = dlas_graph_linear(g, "fc1", x, 12, 1);
    x = dlas_graph_relu(g, "relu3", x);
    x = dlas_graph_linear(g, "fc2", x, 10, 1);
    ck_assert_msg(x >= 0 && dlas_graph_status(g) == 0, "building the test graph: %s",
                  dlas_last_error());
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    ck_assert_msg(dlas_graph_init_weights(g, &r) == 0, "init: %s", dlas_last_error());
    return g;
}

/* The same rule as the plugin documents: floor(s * n), absorbing the
 * representation error of a decimal sparsity. */
static int64_t expected_pruned(double s, int64_t n)
{
    return (int64_t)floor(s * (double)n * (1.0 + 1e-12));
}

static int is_prunable(const struct dlas_node *nd)
{
    return nd->op == DLAS_OP_CONV2D || nd->op == DLAS_OP_LINEAR;
}

/* Copies of every conv/linear weight, by node id (NULL elsewhere). */
static float **snapshot(const struct dlas_graph *g)
{
    int nn = dlas_graph_n_nodes(g);
    float **s = calloc((size_t)nn, sizeof *s);
    for (int id = 0; id < nn; id++) {
        const struct dlas_node *nd = dlas_graph_node(g, id);
        if (!is_prunable(nd))
            continue;
        int64_t n = dlas_tensor_numel(&nd->weight);
        s[id] = malloc((size_t)n * sizeof(float));
        memcpy(s[id], nd->weight.data, (size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(s[id][i] != 0.0f, "test graph: initial weight exactly 0");
    }
    return s;
}

static void free_snapshot(const struct dlas_graph *g, float **s)
{
    for (int id = 0; id < dlas_graph_n_nodes(g); id++)
        free(s[id]);
    free(s);
}

static int64_t masked_count(const struct dlas_tensor *t)
{
    int64_t n = dlas_tensor_numel(t), m = 0;
    for (int64_t i = 0; i < n; i++)
        m += t->mask && !t->mask[i];
    return m;
}

/* In node `id` (or all prunable nodes when id < 0): pruned entries are zero
 * with mask 0, kept ones hold their original value, and no kept weight is
 * smaller in |w| than a pruned one. Returns the number pruned. */
static int64_t check_masks(const struct dlas_graph *g, float **orig, int id_only)
{
    float max_pruned = -1.0f, min_kept = INFINITY;
    int64_t pruned = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        const struct dlas_node *nd = dlas_graph_node(g, id);
        if (!orig[id] || (id_only >= 0 && id != id_only))
            continue;
        const float *w = nd->weight.data;
        for (int64_t i = 0; i < dlas_tensor_numel(&nd->weight); i++) {
            int off = nd->weight.mask && !nd->weight.mask[i];
            float a = fabsf(orig[id][i]);
            if (off) {
                ck_assert_msg(w[i] == 0.0f, "%s[%lld] masked but %g", nd->name, (long long)i,
                              (double)w[i]);
                pruned++;
                if (a > max_pruned)
                    max_pruned = a;
            } else {
                ck_assert_msg(w[i] == orig[id][i], "%s[%lld] kept but changed", nd->name,
                              (long long)i);
                if (a < min_kept)
                    min_kept = a;
            }
        }
    }
    ck_assert_msg(max_pruned <= min_kept,
                  "a weight of |w| %g was pruned while one of |w| %g was kept",
                  (double)max_pruned, (double)min_kept);
    return pruned;
}

static int64_t prunable_total(const struct dlas_graph *g)
{
    int64_t n = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++)
        if (is_prunable(dlas_graph_node(g, id)))
            n += dlas_tensor_numel(&dlas_graph_node(g, id)->weight);
    return n;
}

static int compress(const struct dlas_component *c, struct dlas_graph *g, struct dlas_params *p)
{
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    ctx.host = &host;
    ctx.graph = g;
    ctx.report = NULL; /* no experiment row here; the plugin must cope */
    int rc = ((const struct dlas_compressor_ops *)c->ops)->apply(&ctx, p);
    dlas_params_free(p);
    return rc;
}

START_TEST(test_magnitude_global)
{
    host_setup(7);
    const struct dlas_component *c = find(DLAS_KIND_COMPRESSOR, "magnitude");
    struct dlas_graph *g = small_net(11);
    float **orig = snapshot(g);
    struct dlas_graph_stats before, after;
    ck_assert_int_eq(dlas_graph_stats(g, &before), 0);
    const int64_t n = prunable_total(g), k = expected_pruned(0.3, n);

    int rc = compress(c, g, params_of(c, 2, "sparsity", "0.3", "scope", "global"));
    ck_assert_msg(rc == 0, "magnitude: %s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_stats(g, &after), 0);
    ck_assert_int_eq(after.params, before.params);
    ck_assert_int_eq(after.nonzero, before.nonzero - k);
    ck_assert_int_eq(check_masks(g, orig, -1), k);

    /* Biases and batch norm are never pruned. */
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        const struct dlas_node *nd = dlas_graph_node(g, id);
        ck_assert_msg(nd->bias.mask == NULL || masked_count(&nd->bias) == 0,
                      "%s: bias pruned", nd->name);
        if (nd->op == DLAS_OP_BATCHNORM)
            ck_assert_int_eq(masked_count(&nd->weight), 0);
    }

    /* Again at 0.5: already-masked weights count, so the total is exact. */
    rc = compress(c, g, params_of(c, 1, "sparsity", "0.5"));
    ck_assert_msg(rc == 0, "magnitude: %s", dlas_last_error());
    ck_assert_int_eq(check_masks(g, orig, -1), expected_pruned(0.5, n));
    ck_assert_int_eq(dlas_graph_stats(g, &after), 0);
    ck_assert_int_eq(after.nonzero, before.nonzero - expected_pruned(0.5, n));

    /* A lower target never revives weights. */
    rc = compress(c, g, params_of(c, 1, "sparsity", "0.1"));
    ck_assert_msg(rc == 0, "magnitude: %s", dlas_last_error());
    ck_assert_int_eq(check_masks(g, orig, -1), expected_pruned(0.5, n));

    free_snapshot(g, orig);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_magnitude_layer)
{
    host_setup(7);
    const struct dlas_component *c = find(DLAS_KIND_COMPRESSOR, "magnitude");
    struct dlas_graph *g = small_net(12);
    float **orig = snapshot(g);
    struct dlas_graph_stats before, after;
    ck_assert_int_eq(dlas_graph_stats(g, &before), 0);

    int rc = compress(c, g, params_of(c, 2, "sparsity", "0.3", "scope", "layer"));
    ck_assert_msg(rc == 0, "magnitude: %s", dlas_last_error());
    int64_t total = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        const struct dlas_node *nd = dlas_graph_node(g, id);
        if (!is_prunable(nd))
            continue;
        int64_t k = expected_pruned(0.3, dlas_tensor_numel(&nd->weight));
        ck_assert_msg(check_masks(g, orig, id) == k, "%s: %lld pruned, expected %lld",
                      nd->name, (long long)check_masks(g, orig, id), (long long)k);
        total += k;
    }
    ck_assert_int_eq(dlas_graph_stats(g, &after), 0);
    ck_assert_int_eq(after.nonzero, before.nonzero - total);
    free_snapshot(g, orig);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_magnitude_selection)
{
    host_setup(7);
    const struct dlas_component *c = find(DLAS_KIND_COMPRESSOR, "magnitude");
    struct dlas_graph *g = small_net(13);
    float **orig = snapshot(g);
    int conv1 = dlas_graph_find(g, "conv1"), fc1 = dlas_graph_find(g, "fc1"),
        fc2 = dlas_graph_find(g, "fc2");
    ck_assert(conv1 >= 0 && fc1 >= 0 && fc2 >= 0);

    int rc = compress(c, g, params_of(c, 3, "sparsity", "0.5", "skip_first", "true",
                                      "skip_last", "true"));
    ck_assert_msg(rc == 0, "magnitude: %s", dlas_last_error());
    ck_assert_int_eq(masked_count(&dlas_graph_node(g, conv1)->weight), 0);
    ck_assert_int_eq(masked_count(&dlas_graph_node(g, fc2)->weight), 0);
    int64_t n = prunable_total(g) - dlas_tensor_numel(&dlas_graph_node(g, conv1)->weight) -
                dlas_tensor_numel(&dlas_graph_node(g, fc2)->weight);
    int64_t pruned = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++)
        if (orig[id])
            pruned += check_masks(g, orig, id);
    ck_assert_int_eq(pruned, expected_pruned(0.5, n));
    free_snapshot(g, orig);
    dlas_graph_free(g);

    /* include = conv leaves the linear layers alone. */
    g = small_net(14);
    orig = snapshot(g);
    rc = compress(c, g, params_of(c, 2, "sparsity", "0.4", "include", "conv"));
    ck_assert_msg(rc == 0, "magnitude: %s", dlas_last_error());
    ck_assert_int_eq(masked_count(&dlas_graph_node(g, dlas_graph_find(g, "fc1"))->weight), 0);
    ck_assert_int_eq(masked_count(&dlas_graph_node(g, dlas_graph_find(g, "fc2"))->weight), 0);
    free_snapshot(g, orig);
    dlas_graph_free(g);

    /* Nothing selected is a configuration error, said so. */
    g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 1, 5, 5);
    struct dlas_conv_attr a = dlas_conv(2, 3, 1, 1);
    x = dlas_graph_conv2d(g, "only_conv", x, &a);
    ck_assert(x >= 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 3);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    rc = compress(c, g, params_of(c, 1, "include", "linear"));
    ck_assert_int_eq(rc, DLAS_ERR_INVALID);
    ck_assert_msg(strstr(dlas_last_error(), "nothing to prune"), "message: %s",
                  dlas_last_error());
    dlas_graph_free(g);
}
END_TEST

/* Ties (equal |w|) go to the lower index, so the count stays exact. */
START_TEST(test_magnitude_ties)
{
    host_setup(7);
    const struct dlas_component *c = find(DLAS_KIND_COMPRESSOR, "magnitude");
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 1, 4, 4);
    x = dlas_graph_flatten(g, "flat", x);
    x = dlas_graph_linear(g, "fc", x, 10, 0);
    ck_assert_msg(x >= 0, "%s", dlas_last_error());
    struct dlas_rng r;
    dlas_rng_seed(&r, 3);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    struct dlas_tensor *w = &dlas_graph_node(g, x)->weight;
    int64_t n = dlas_tensor_numel(w); /* 160 */
    float *d = w->data;
    for (int64_t i = 0; i < n; i++)
        d[i] = (i % 2 ? -1.0f : 1.0f) * (float)(1 + i % 4); /* 40 of each |w| 1..4 */
    int rc = compress(c, g, params_of(c, 1, "sparsity", "0.3")); /* 48: 40 ones + 8 twos */
    ck_assert_msg(rc == 0, "magnitude: %s", dlas_last_error());
    int64_t twos = 0;
    for (int64_t i = 0; i < n; i++) {
        int off = !w->mask[i];
        if (i % 4 == 0)
            ck_assert_msg(off, "|w| = 1 at %lld kept", (long long)i);
        else if (i % 4 == 1 && off) {
            ck_assert_msg(i < 4 * 8, "tie broken towards a later index (%lld)", (long long)i);
            twos++;
        } else
            ck_assert_msg(!off || i % 4 == 1, "|w| > 2 pruned at %lld", (long long)i);
    }
    ck_assert_int_eq(twos, 8);
    dlas_graph_free(g);
}
END_TEST

/* ---- synthetic dataset ------------------------------------------------------- */

struct ds {
    const struct dlas_dataset_ops *ops;
    void *h;
    struct dlas_dataset_info info;
    int64_t pix;
};

static struct ds ds_open(struct dlas_params *p)
{
    const struct dlas_component *c = find(DLAS_KIND_DATASET, "synthetic");
    struct ds d;
    memset(&d, 0, sizeof d);
    d.ops = c->ops;
    int rc = d.ops->open(&host, p, &d.h);
    ck_assert_msg(rc == 0, "synthetic: open: %s", dlas_last_error());
    ck_assert_int_eq(d.ops->info(d.h, &d.info), 0);
    d.pix = (int64_t)d.info.channels * d.info.height * d.info.width;
    dlas_params_free(p);
    return d;
}

static void ds_read(struct ds *d, enum dlas_split split, const int64_t *idx, int64_t n,
                    float *img, int32_t *lab)
{
    int rc = d->ops->read(d->h, split, idx, n, img, lab);
    ck_assert_msg(rc == 0, "synthetic: read: %s", dlas_last_error());
}

START_TEST(test_synthetic_basics)
{
    host_setup(42);
    const struct dlas_component *c = find(DLAS_KIND_DATASET, "synthetic");
    struct ds d = ds_open(params_of(c, 0));
    ck_assert_int_eq(d.info.channels, 1);
    ck_assert_int_eq(d.info.height, 28);
    ck_assert_int_eq(d.info.width, 28);
    ck_assert_int_eq(d.info.classes, 10);
    ck_assert_int_eq(d.info.n_train, 1024);
    ck_assert_int_eq(d.info.n_test, 256);

    enum { N = 16 };
    int64_t fwd[N], rev[N];
    for (int i = 0; i < N; i++)
        fwd[i] = 100 + 37 * i;
    for (int i = 0; i < N; i++)
        rev[i] = fwd[N - 1 - i];
    float *a = malloc(N * d.pix * sizeof(float)), *b = malloc(N * d.pix * sizeof(float));
    int32_t la[N], lb[N], lc[N];
    ds_read(&d, DLAS_SPLIT_TRAIN, fwd, N, a, la);
    ds_read(&d, DLAS_SPLIT_TRAIN, fwd, N, b, lb);
    ck_assert(!memcmp(a, b, N * d.pix * sizeof(float)) && !memcmp(la, lb, sizeof la));
    ds_read(&d, DLAS_SPLIT_TRAIN, rev, N, b, lb);
    for (int i = 0; i < N; i++) {
        ck_assert(!memcmp(a + i * d.pix, b + (N - 1 - i) * d.pix, d.pix * sizeof(float)));
        ck_assert_int_eq(la[i], lb[N - 1 - i]);
    }
    ds_read(&d, DLAS_SPLIT_TRAIN, fwd, N, NULL, lc); /* labels only */
    ck_assert(!memcmp(la, lc, sizeof la));
    for (int64_t i = 0; i < N * d.pix; i++)
        ck_assert_msg(a[i] >= 0.0f && a[i] <= 1.0f, "pixel %g outside [0,1]", (double)a[i]);
    for (int i = 0; i < N; i++)
        ck_assert(la[i] >= 0 && la[i] < 10);

    /* The test split is other data. */
    ds_read(&d, DLAS_SPLIT_TEST, fwd, 4, b, lb);
    ck_assert(memcmp(a, b, 4 * d.pix * sizeof(float)));

    /* Refusals: past the end of either split, negative. */
    int64_t bad[3] = {5, 1024, 6};
    ck_assert_int_eq(d.ops->read(d.h, DLAS_SPLIT_TRAIN, bad, 3, a, la), DLAS_ERR_INVALID);
    ck_assert_msg(strstr(dlas_last_error(), "1024"), "message: %s", dlas_last_error());
    int64_t edge = 255, past = 256, neg = -1;
    ds_read(&d, DLAS_SPLIT_TEST, &edge, 1, a, la);
    ck_assert_int_eq(d.ops->read(d.h, DLAS_SPLIT_TEST, &past, 1, a, la), DLAS_ERR_INVALID);
    ck_assert_int_eq(d.ops->read(d.h, DLAS_SPLIT_TRAIN, &neg, 1, a, la), DLAS_ERR_INVALID);

    /* Every label in range over the whole split. */
    int64_t *all = malloc(1024 * sizeof *all);
    int32_t *labs = malloc(1024 * sizeof *labs);
    int seen[10] = {0};
    for (int i = 0; i < 1024; i++)
        all[i] = i;
    ds_read(&d, DLAS_SPLIT_TRAIN, all, 1024, NULL, labs);
    for (int i = 0; i < 1024; i++) {
        ck_assert(labs[i] >= 0 && labs[i] < 10);
        seen[labs[i]]++;
    }
    for (int k = 0; k < 10; k++)
        ck_assert_msg(seen[k] > 50, "class %d has only %d of 1024 samples", k, seen[k]);
    free(all);
    free(labs);
    d.ops->close(d.h);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_synthetic_seeds_and_threads)
{
    const struct dlas_component *c = find(DLAS_KIND_DATASET, "synthetic");
    enum { N = 64 };
    int64_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = i;
    /* 3 x 17 x 13: channels and a non-square image. */
    host_setup(7);
    struct ds a = ds_open(params_of(c, 3, "channels", "3", "height", "17", "width", "13"));
    ck_assert_int_eq(a.pix, 3 * 17 * 13);
    host_setup(99);
    struct ds b = ds_open(params_of(c, 4, "channels", "3", "height", "17", "width", "13",
                                    "seed", "7"));
    struct ds o = ds_open(params_of(c, 4, "channels", "3", "height", "17", "width", "13",
                                    "seed", "8"));
    float *x = malloc(N * a.pix * sizeof(float)), *y = malloc(N * a.pix * sizeof(float));
    int32_t lx[N], ly[N];
    /* seed 0 follows the experiment seed: host 7 == seed 7. */
    ds_read(&a, DLAS_SPLIT_TRAIN, idx, N, x, lx);
    ds_read(&b, DLAS_SPLIT_TRAIN, idx, N, y, ly);
    ck_assert(!memcmp(x, y, N * a.pix * sizeof(float)) && !memcmp(lx, ly, sizeof lx));
    ds_read(&o, DLAS_SPLIT_TRAIN, idx, N, y, ly);
    ck_assert(memcmp(x, y, N * a.pix * sizeof(float)));

    /* Reading from two threads at once gives the serial bytes. */
    memset(y, 0, N * a.pix * sizeof(float));
    int fails = 0;
#pragma omp parallel for num_threads(2) reduction(+ : fails) schedule(static, 1)
    for (int i = 0; i < N; i++)
        fails += a.ops->read(a.h, DLAS_SPLIT_TRAIN, &idx[i], 1, y + i * a.pix, &ly[i]) != 0;
    ck_assert_int_eq(fails, 0);
    ck_assert(!memcmp(x, y, N * a.pix * sizeof(float)) && !memcmp(lx, ly, sizeof lx));
    a.ops->close(a.h);
    b.ops->close(b.h);
    o.ops->close(o.h);
    free(x);
    free(y);

    /* Many classes: prototypes are regenerated per sample rather than
     * cached; still deterministic and in range. */
    host_setup(5);
    struct ds m = ds_open(params_of(c, 4, "classes", "100000", "height", "16", "width", "16",
                                    "train_size", "100"));
    x = malloc(4 * m.pix * sizeof(float));
    y = malloc(4 * m.pix * sizeof(float));
    int64_t j[4] = {3, 99, 0, 3};
    ds_read(&m, DLAS_SPLIT_TRAIN, j, 4, x, lx);
    ds_read(&m, DLAS_SPLIT_TRAIN, j, 4, y, ly);
    ck_assert(!memcmp(x, y, 4 * m.pix * sizeof(float)));
    ck_assert(!memcmp(x, x + 3 * m.pix, m.pix * sizeof(float)));
    for (int i = 0; i < 4; i++)
        ck_assert(lx[i] >= 0 && lx[i] < 100000);
    for (int64_t i = 0; i < 4 * m.pix; i++)
        ck_assert(x[i] >= 0.0f && x[i] <= 1.0f);
    m.ops->close(m.h);
    free(x);
    free(y);
}
END_TEST

/* Learnable: nearest class mean, fitted on train, classifies test well. */
START_TEST(test_synthetic_learnable)
{
    host_setup(3);
    const struct dlas_component *c = find(DLAS_KIND_DATASET, "synthetic");
    struct ds d = ds_open(params_of(c, 0));
    const int64_t nt = d.info.n_train, ne = d.info.n_test, k = d.info.classes;
    int64_t *idx = malloc((size_t)nt * sizeof *idx);
    float *img = malloc((size_t)(nt * d.pix) * sizeof(float));
    int32_t *lab = malloc((size_t)nt * sizeof *lab);
    double *mean = calloc((size_t)(k * d.pix), sizeof *mean);
    int64_t *count = calloc((size_t)k, sizeof *count);
    for (int64_t i = 0; i < nt; i++)
        idx[i] = i;
    ds_read(&d, DLAS_SPLIT_TRAIN, idx, nt, img, lab);
    for (int64_t i = 0; i < nt; i++) {
        count[lab[i]]++;
        for (int64_t p = 0; p < d.pix; p++)
            mean[lab[i] * d.pix + p] += img[i * d.pix + p];
    }
    for (int64_t cl = 0; cl < k; cl++)
        for (int64_t p = 0; p < d.pix; p++)
            mean[cl * d.pix + p] /= count[cl] ? (double)count[cl] : 1.0;
    ds_read(&d, DLAS_SPLIT_TEST, idx, ne, img, lab);
    int64_t right = 0;
    for (int64_t i = 0; i < ne; i++) {
        double best = INFINITY;
        int64_t arg = -1;
        for (int64_t cl = 0; cl < k; cl++) {
            double dist = 0;
            for (int64_t p = 0; p < d.pix; p++) {
                double e = img[i * d.pix + p] - mean[cl * d.pix + p];
                dist += e * e;
            }
            if (dist < best) {
                best = dist;
                arg = cl;
            }
        }
        right += arg == lab[i];
    }
    ck_assert_msg(right > ne * 9 / 10, "nearest mean classifies only %lld of %lld",
                  (long long)right, (long long)ne);
    d.ops->close(d.h);
    free(idx);
    free(img);
    free(lab);
    free(mean);
    free(count);
}
END_TEST

/* ---- main ------------------------------------------------------------------ */

int main(void)
{
    const char *f = getenv("DLAS_CONFORMANCE_FRACTION");
    if (f) {
        char *end;
        random_fraction = strtod(f, &end);
        if (end == f || *end || !(random_fraction > 0.0 && random_fraction <= 1.0)) {
            fprintf(stderr, "check_conformance: DLAS_CONFORMANCE_FRACTION='%s': want a number "
                            "in (0, 1]\n", f);
            return 1;
        }
        fprintf(stderr, "check_conformance: %.0f%% of each random shape set "
                        "(DLAS_CONFORMANCE_FRACTION)\n", 100.0 * random_fraction);
    }
    if (!(reg = dlas_test_registry("check_conformance")))
        return 1;
    for (size_t i = 0; i < dlas_registry_n_failures(reg); i++) {
        const char *path, *why;
        dlas_registry_failure(reg, i, &path, &why);
        fprintf(stderr, "check_conformance: plugin not loaded: %s: %s\n", path, why);
    }
    for (size_t i = 0; i < dlas_registry_count(reg) && n_prims < MAX_PRIMS; i++) {
        const struct dlas_plugin *pl;
        const char *path;
        const struct dlas_component *c = dlas_registry_at(reg, i, &pl, &path);
        if (c && c->kind == DLAS_KIND_PRIMITIVE) {
            prim_paths[n_prims] = path;
            prims[n_prims++] = c;
        }
    }
    fprintf(stderr, "check_conformance: %d primitive component(s) found\n", n_prims);

    Suite *s = suite_create("conformance");
    TCase *tc = dlas_test_case(s, "registry", NULL, NULL, 0);
    tcase_add_test(tc, test_primitives_found);
    tcase_add_test(tc, test_backend_openmp);

    tc = dlas_test_case(s, "primitives", NULL, NULL, 600);
    tcase_add_loop_test(tc, test_primitive, 0, n_prims);
    tcase_add_loop_test(tc, test_primitive_sparsity, 0, n_prims);

    tc = dlas_test_case(s, "out-of-memory", NULL, NULL, 0);
    tcase_add_loop_test(tc, test_primitive_out_of_memory, 0, n_prims);

    tc = dlas_test_case(s, "magnitude", NULL, NULL, 0);
    tcase_add_test(tc, test_magnitude_global);
    tcase_add_test(tc, test_magnitude_layer);
    tcase_add_test(tc, test_magnitude_selection);
    tcase_add_test(tc, test_magnitude_ties);

    tc = dlas_test_case(s, "synthetic", NULL, NULL, 120);
    tcase_add_test(tc, test_synthetic_basics);
    tcase_add_test(tc, test_synthetic_seeds_and_threads);
    tcase_add_test(tc, test_synthetic_learnable);

    int failed = dlas_test_run(s);
    dlas_registry_free(reg);
    return failed;
}
