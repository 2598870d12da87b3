/* Random graphs through the plan. The plan's pattern matchers (mobile
 * blocks, stems, heads, residual adds run inside convs, pools run first,
 * concats read in place, the blocked layout kept between blocks) and its
 * workspace sizing were each tested on the shapes their authors thought
 * of; this suite builds networks they did not: random chains of the zoo's
 * motifs and their near misses (an activation that differs, a second
 * reader, a stride or padding that breaks the pattern, odd channel counts,
 * 1-pixel maps), plans each with random options, primitives, thread counts
 * (1-4) and maximum batch, and runs it at batches up to that maximum
 * against the core's reference forward: every output written (the output
 * is poisoned), the difference within what rounding explains (check_batch),
 * a second run bit for bit the first. The same for zoo models with random
 * hyperparameters, for random networks pruned at random, and for random
 * networks quantised by the quant-int8 compressor, on the int8 primitives
 * (where the CPU runs them) and fake-quantised on fp32 ones, and for
 * random networks through a pruning compressor with random settings.
 *
 * DLAS_RANDOM_PLANS=N sets how many graphs (default 300; 40 under
 * DLAS_TEST_SUBSET), DLAS_RANDOM_FIRST=F the first one's number (0);
 * DLAS_RANDOM_SEED=S runs graph S alone, as a failure names it (likewise
 * DLAS_RANDOM_ZOO and _ZOO_SEED, DLAS_RANDOM_PRUNED and _PRUNED_SEED,
 * DLAS_RANDOM_INT8 and _INT8_SEED, DLAS_RANDOM_INT8_ZOO and _INT8_ZOO_SEED,
 * DLAS_RANDOM_COMPRESSED and _COMPRESSED_SEED; DLAS_RANDOM_VERBOSE=1 prints
 * each run's difference and bound). A long sweep needs CK_TIMEOUT_MULTIPLIER
 * (the test's limit is 600 s). */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlas/checkpoint.h>
#include <dlas/dlas.h>
#include <dlas/quant.h>

#include "random_graph.h"
#include "testutil.h"

static struct dlas_registry *reg;

/* ---- the plan's side ------------------------------------------------------------ */

static const char *const prim_names[] = {"direct",  "grouped-spatial-pack", "spatial-pack",
                                         "winograd", "im2col-gemm",         "pointwise",
                                         "sparse-direct", "sparse-gemm"};
enum { N_PRIMS = sizeof prim_names / sizeof prim_names[0], MAX_THREADS = 4, MAX_INT8 = 4 };
/* a quantised network's output within this many times its flip_sensitivity
 * at 2^-FLIP_EXP (see check_batch) */
#define FLIP_FACTOR 4.0
#define FLIP_EXP 16

static struct dlas_primitive_choice prims[N_PRIMS];
static struct dlas_params *prim_params[N_PRIMS];
/* the int8 primitives that run on this CPU (none without VNNI) */
static struct dlas_primitive_choice int8_prims[MAX_INT8];
static int n_int8;
static struct dlas_rng host_rng;
static struct dlas_host host;
static struct dlas_backend backends[MAX_THREADS + 1];

static void setup(void)
{
    reg = dlas_test_registry("check_plan_random");
    ck_assert(reg != NULL);
    dlas_test_host(&host, &host_rng, 5, -1);
    for (int k = 0; k < N_PRIMS; k++) {
        const struct dlas_component *c =
            dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, prim_names[k]);
        ck_assert_msg(c != NULL, "primitive %s: %s", prim_names[k], dlas_last_error());
        prim_params[k] = NULL;
        if (c->params)
            ck_assert_int_eq(dlas_params_defaults(c->params, &prim_params[k]), 0);
        prims[k] = (struct dlas_primitive_choice){c->name, c, prim_params[k]};
    }
    n_int8 = 0;
    for (size_t i = 0; i < dlas_registry_count(reg) && n_int8 < MAX_INT8; i++) {
        const struct dlas_component *c = dlas_registry_at(reg, i, NULL, NULL);
        char why[256];
        if (c->kind == DLAS_KIND_PRIMITIVE && dlas_prim_runs_int8(c->ops) &&
            dlas_test_int8_runs(c, why, sizeof why))
            int8_prims[n_int8++] = (struct dlas_primitive_choice){c->name, c, NULL};
    }
    const struct dlas_component *be = dlas_registry_find(reg, DLAS_KIND_BACKEND, "openmp");
    ck_assert(be != NULL);
    for (int t = 1; t <= MAX_THREADS; t++) {
        struct dlas_params *p = NULL;
        char v[8];
        snprintf(v, sizeof v, "%d", t);
        ck_assert_int_eq(dlas_params_defaults(be->params, &p), 0);
        ck_assert_int_eq(dlas_params_set(p, "threads", v, "test"), 0);
        backends[t].ops = be->ops;
        ck_assert_int_eq(backends[t].ops->init(&host, p, &backends[t].ctx), 0);
        dlas_params_free(p);
    }
}

static void teardown(void)
{
    for (int t = 1; t <= MAX_THREADS; t++)
        backends[t].ops->release(backends[t].ctx);
    for (int k = 0; k < N_PRIMS; k++)
        dlas_params_free(prim_params[k]);
    dlas_registry_free(reg);
}

/* What a case plans with, drawn from its own generator after the graph. */
struct setting {
    int threads, n_prims, with_auto;
    int64_t max_batch;
    struct dlas_primitive_choice p[MAX_INT8 + N_PRIMS];
    struct dlas_plan_options po;
    char text[256];
};

static void draw_setting(struct rg_gen *r, struct setting *s, int quant)
{
    memset(s, 0, sizeof *s);
    s->threads = rg_pick(r, 1, MAX_THREADS);
    s->max_batch = rg_pick(r, 1, 5);
    /* a random nonempty subset of the primitives, in random order */
    int order[N_PRIMS];
    for (int k = 0; k < N_PRIMS; k++)
        order[k] = k;
    for (int k = N_PRIMS - 1; k > 0; k--) {
        int j = rg_pick(r, 0, k), t = order[k];
        order[k] = order[j];
        order[j] = t;
    }
    s->n_prims = rg_pick(r, 1, 3);
    dlas_plan_options_default(&s->po);
    s->po.blocks = !rg_one_in(r, 4);
    s->po.block_nchw = rg_one_in(r, 5);
    s->po.block_schedule = rg_one_in(r, 2) ? 0 : rg_pick(r, 1, 2);
    s->po.block_no_head = rg_one_in(r, 6);
    s->po.block_no_stem = rg_one_in(r, 6);
    s->po.no_residual = rg_one_in(r, 6);
    s->po.no_pool_first = rg_one_in(r, 6);
    s->po.concat_copy = rg_one_in(r, 6);
    s->with_auto = rg_one_in(r, 5);
    int len = snprintf(s->text, sizeof s->text,
                       "%d threads, max batch %lld, blocks %d (nchw %d, schedule %d, no head %d, "
                       "no stem %d), no residual %d, no pool first %d, concat copy %d%s; prims",
                       s->threads, (long long)s->max_batch, s->po.blocks, s->po.block_nchw,
                       s->po.block_schedule, s->po.block_no_head, s->po.block_no_stem,
                       s->po.no_residual, s->po.no_pool_first, s->po.concat_copy,
                       s->with_auto ? ", auto" : "");
    /* a quantised network: its convs on the int8 primitives first (the
     * others refuse fp32 layers), or, one time in four, fake-quantised on
     * fp32 primitives only */
    const int n8 = quant && n_int8 && !rg_one_in(r, 4) ? rg_pick(r, 1, n_int8) : 0;
    const int first8 = n8 ? rg_pick(r, 0, n_int8 - 1) : 0;
    for (int k = 0; k < n8; k++) {
        s->p[k] = int8_prims[(first8 + k) % n_int8];
        if (len > 0 && (size_t)len < sizeof s->text)
            len += snprintf(s->text + len, sizeof s->text - (size_t)len, " %s", s->p[k].label);
    }
    for (int k = 0; k < s->n_prims; k++) {
        s->p[n8 + k] = prims[order[k]];
        if (len > 0 && (size_t)len < sizeof s->text)
            len += snprintf(s->text + len, sizeof s->text - (size_t)len, " %s",
                            prim_names[order[k]]);
    }
    s->n_prims += n8;
}

/* The plan's output for input x (batch images): every float written, a
 * second run bit for bit the first. Returns the output (free() it). */
static float *run_plan(struct dlas_plan *p, const struct dlas_tensor *x, const char *what)
{
    const int64_t batch = x->dims[0], on = dlas_plan_output_numel(p) * batch;
    float *out = malloc((size_t)on * sizeof *out), *again = malloc((size_t)on * sizeof *again);
    for (int64_t i = 0; i < on; i++)
        out[i] = again[i] = NAN;
    ck_assert_msg(dlas_plan_run(p, batch, dlas_f32(x), out) == 0, "%s: run: %s", what,
                  dlas_last_error());
    for (int64_t i = 0; i < on; i++)
        ck_assert_msg(isfinite(out[i]), "%s, batch %lld: output %lld not written: %g", what,
                      (long long)batch, (long long)i, out[i]);
    ck_assert_msg(dlas_plan_run(p, batch, dlas_f32(x), again) == 0, "%s: run: %s", what,
                  dlas_last_error());
    ck_assert_msg(memcmp(out, again, (size_t)on * sizeof *out) == 0,
                  "%s, batch %lld: a second run differs", what, (long long)batch);
    free(again);
    return out;
}

/* x: batch images of g's input shape, N(0, 1) from seed. */
static void normal_input(const struct dlas_graph *g, int64_t batch, uint64_t seed,
                         struct dlas_tensor *x)
{
    const struct dlas_node *in = dlas_graph_node(g, 0);
    int64_t dims[4] = {batch, in->out_shape[0], in->out_shape[1], in->out_shape[2]};
    ck_assert_int_eq(dlas_tensor_alloc(x, DLAS_F32, 4, dims), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    dlas_test_fill_normal(x, &r);
}

/* 1 when a conv of g runs on Winograd in p: its transforms amplify
 * rounding, and the conformance suite allows it 1e-4. */
static int uses_winograd(const struct dlas_plan *p, const struct dlas_graph *g)
{
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        if (!strcmp(dlas_plan_binding(p, i), "winograd"))
            return 1;
    return 0;
}

/* The graph whose reference forward an int8 plan computes: a conv that
 * hands uint8 to the next int8 layer adds its bias in the accumulator, as
 * a whole number of units of s_in * step[o] (dlas_int8_layer_init), so its
 * bias is rounded to that unit here. Everything else about an int8 layer
 * is its fake-quantised fp32 form up to float rounding. */
static struct dlas_graph *int8_reference(const struct dlas_plan *p, const struct dlas_graph *g)
{
    struct dlas_graph *a = dlas_graph_clone(g);
    ck_assert(a != NULL);
    for (int i = 0; i < dlas_graph_n_nodes(a); i++) {
        struct dlas_node *n = dlas_graph_node(a, i);
        struct dlas_act_quant q;
        if (!strstr(dlas_plan_precision(p, i), ">u8") || !n->attr.conv.bias)
            continue;
        ck_assert_int_eq(dlas_node_input_quant(n, &q), 0);
        const float *step = dlas_f32(&n->weight_scale);
        for (int64_t o = 0; o < n->attr.conv.out_channels; o++) {
            const double unit = (double)q.scale * step[o];
            dlas_f32(&n->bias)[o] = (float)(rint(dlas_f32(&n->bias)[o] / unit) * unit);
        }
    }
    return a;
}

/* How far a quantised network's output moves when the roundings of its
 * quantised tensors flip at random: the reference (ref, g's output on x)
 * with every input scale grown, then shrunk, by 2^-e, which moves an
 * element by at most 255 * 2^-e steps and flips those that lay within
 * q * 2^-e steps of a rounding boundary (q its level); the larger change of
 * the two. */
static double flip_sensitivity(const struct dlas_graph *g, const struct dlas_tensor *x,
                               const struct dlas_tensor *ref, int e)
{
    double d = 0;
    for (int sign = -1; sign <= 1; sign += 2) {
        struct dlas_graph *a = dlas_graph_clone(g);
        ck_assert(a != NULL);
        for (int i = 0; i < dlas_graph_n_nodes(a); i++) {
            struct dlas_node *n = dlas_graph_node(a, i);
            if (dlas_node_is_quantised(n))
                dlas_f32(&n->input_quant)[0] *= 1.0f + (float)sign * ldexpf(1.0f, -e);
        }
        struct dlas_tensor out = {0};
        ck_assert_int_eq(dlas_graph_forward_ref(a, x, &out), 0);
        d = fmax(d, rg_max_diff(dlas_f32(&out), dlas_f32(ref), dlas_tensor_numel(&out)));
        dlas_tensor_free(&out);
        dlas_graph_free(a);
    }
    return d;
}

/* The plan against the reference forward at one batch: the largest
 * difference within 2e-5 of the largest output (1e-4 on Winograd), or
 * within 1000 times the reference's own sensitivity to one rounding of
 * every parameter and input (rg_sensitivity), whichever is larger. A
 * network whose output cancels (a small result of large terms) moves by
 * more than 2e-5 of itself under any correct float computation, and the
 * sensitivity measures by how much. One rounding of each of K products
 * moves a sum by about sqrt(K) roundings, while accumulating it in float
 * errs by up to K: over 7,600 networks the difference reached 380 times
 * the sensitivity (graph 7520: convs of ~1000 terms on direct and
 * sparse-direct, 1e-4 of an output that cancels; im2col there 70 times).
 * A wrong index, a row not written or a missed activation exceeds the
 * bound by orders, and a batchnorm folded with 10x its epsilon fails it
 * on the first network.
 *
 * A quantised network (quant) is held to its int8 reference (the graph
 * with the biases of uint8-handing convs rounded, int8_reference), which
 * an int8 plan computes up to float rounding and the rare element whose
 * float and double values straddle a quantisation boundary: one step
 * there. The bound allows for those: 4 times the reference's change when
 * every quantised tensor's scale moves by 2^-16 (flip_sensitivity), which
 * flips a similar handful. Over 600 networks (1,459 runs) the difference
 * reached 0.69 of that change; the median run was within 1e-3 of the float
 * bound. Against the fake-quantised reference alone, with its biases
 * unrounded, it reached 3 times a change that flips a few percent of the
 * elements, and a zero point off by one step passed. With this bound, a
 * zero point off by one step at the fp32 -> int8 boundary fails 31 of the
 * first 60 networks (44 of which run int8 layers). */
static void check_batch(struct dlas_plan *p, const struct dlas_graph *g, int64_t batch,
                        uint64_t seed, int quant, const char *what)
{
    struct dlas_tensor x = {0}, ref = {0};
    normal_input(g, batch, seed ^ 0x5bd1e995u, &x);
    struct dlas_graph *rg = quant ? int8_reference(p, g) : NULL;
    ck_assert_int_eq(dlas_graph_forward_ref(rg ? rg : g, &x, &ref), 0);
    const int64_t on = dlas_plan_output_numel(p) * batch;
    ck_assert_int_eq(on, dlas_tensor_numel(&ref));
    float *out = run_plan(p, &x, what);
    const double diff = rg_max_diff(out, dlas_f32(&ref), on);
    const double big = rg_max_diff(dlas_f32(&ref), NULL, on);
    const double sens = rg_sensitivity(g, &x, seed);
    const double flips = quant ? flip_sensitivity(rg, &x, &ref, FLIP_EXP) : 0;
    const double bound =
        fmax(fmax((uses_winograd(p, g) ? 1e-4 : 2e-5) * big, 1000 * sens), FLIP_FACTOR * flips);
    if (getenv("DLAS_RANDOM_VERBOSE")) /* for a sweep's distribution of diff / bound */
        fprintf(stderr, "%s, batch %lld: difference %.3g, bound %.3g (%.3g of it)\n", what,
                (long long)batch, diff, bound, diff / bound);
    ck_assert_msg(diff <= bound,
                  "%s, batch %lld: the largest difference %.3g is over the bound %.3g (largest "
                  "output %.3g, sensitivity to one rounding %.3g, to flipped quantisation "
                  "roundings %.3g; blocks: %s; converts: %s)",
                  what, (long long)batch, diff, bound, big, sens, flips, dlas_plan_blocks(p),
                  dlas_plan_conversions(p));
    free(out);
    dlas_tensor_free(&x);
    dlas_tensor_free(&ref);
    dlas_graph_free(rg);
}

/* Auto's choices for the setting (a short measurement: the choices only
 * need to be valid ones), into layer_prim and block_mask. */
static void choose_by_auto(const struct dlas_graph *g, struct setting *s, int *layer_prim,
                           int *mask, const char *what)
{
    struct dlas_plan_auto_options ao;
    dlas_plan_auto_options_default(&ao);
    ao.batch = s->max_batch;
    ao.min_runs = 1;
    ao.max_runs = 2;
    struct dlas_plan_auto_report rep = {0};
    ck_assert_msg(dlas_plan_auto_select(g, &host, &backends[s->threads], s->p, s->n_prims,
                                        &prims[4], &ao, layer_prim,
                                        s->po.blocks ? mask : NULL, &rep) == 0,
                  "%s: auto: %s", what, dlas_last_error());
    free(rep.text);
    s->po.layer_prim = layer_prim;
    s->po.block_mask = s->po.blocks ? mask : NULL;
}

/* The graph under test, named on stderr if it crashes the test (a heap
 * overrun that glibc catches at free, a sanitizer's report): Check then
 * names only the test. */
static char current[1100];

static void name_the_graph(int sig)
{
    ssize_t unused = write(STDERR_FILENO, current, strlen(current));
    (void)unused;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* g planned with a setting drawn from r, run against the reference at the
 * setting's largest batch, one image and one between; named `name` (the
 * graph's number and how it was made) in every message. */
static void check_planned(struct dlas_graph *g, struct rg_gen *r, uint64_t seed, int quant,
                          const char *name)
{
    struct setting s;
    draw_setting(r, &s, quant);
    char what[1024];
    snprintf(what, sizeof what, "%s; %s", name, s.text);
    snprintf(current, sizeof current, "crashed in %s\n", what);
    const int nn = dlas_graph_n_nodes(g);
    int *layer_prim = malloc((size_t)nn * sizeof *layer_prim);
    int *mask = calloc((size_t)nn, sizeof *mask);
    if (s.with_auto)
        choose_by_auto(g, &s, layer_prim, mask, what);
    struct dlas_plan *p = NULL;
    ck_assert_msg(dlas_plan_create_ex(g, &host, &backends[s.threads], s.p, s.n_prims, &prims[4],
                                      s.max_batch, &s.po, &p) == 0,
                  "%s: plan: %s", what, dlas_last_error());
    int64_t batches[3] = {s.max_batch, 1, s.max_batch > 2 ? rg_pick(r, 2, (int)s.max_batch - 1) : 0};
    for (int k = 0; k < 3; k++)
        if (batches[k] > 0 && (k == 0 || batches[k] != s.max_batch))
            check_batch(p, g, batches[k], seed, quant, what);
    dlas_plan_free(p);
    free(layer_prim);
    free(mask);
}

static void one_graph(uint64_t seed)
{
    struct rg_gen r;
    struct dlas_graph *g = rg_graph(seed, 0, &r);
    char name[600];
    snprintf(name, sizeof name, "graph %llu (%s)", (unsigned long long)seed, r.log);
    check_planned(g, &r, seed, 0, name);
    dlas_graph_free(g);
}

/* A zoo model with random hyperparameters on a random input, its
 * batchnorms away from identity: the builders' own shapes (widths that
 * round, maps that shrink to a pixel, grouped and bottleneck blocks), which
 * the motifs above only imitate. */
static struct dlas_graph *random_zoo(uint64_t seed, struct rg_gen *r)
{
    memset(r, 0, sizeof *r);
    r->s = seed * 0x9e3779b97f4a7c15ull + 7;
    static const char *const styles[] = {"auto", "imagenet", "cifar"};
    char kv[12][24];
    const char *model;
    int n = 0, c = rg_one_in(r, 4) ? 1 : 3, hw = rg_pick(r, 12, 40);
#define KV(k, ...) (snprintf(kv[n], sizeof kv[n], "%s", k), \
                    snprintf(kv[n + 1], sizeof kv[n + 1], __VA_ARGS__), n += 2)
    switch (rg_pick(r, 0, 4)) {
    case 0:
        model = "mobilenet";
        KV("version", "%d", rg_pick(r, 1, 2));
        KV("width", "%s", (const char *[]){"0.25", "0.35", "0.5", "0.75", "1.0", "1.3"}[rg_pick(r, 0, 5)]);
        KV("style", "%s", styles[rg_pick(r, 0, 2)]);
        break;
    case 1:
        model = "resnet";
        if (rg_one_in(r, 2)) {
            KV("depth", "%d", (int[]){8, 14, 20}[rg_pick(r, 0, 2)]);
            KV("style", "cifar");
        } else {
            const int depth = (int[]){18, 34, 50}[rg_pick(r, 0, 2)];
            KV("depth", "%d", depth);
            KV("style", "%s", styles[rg_pick(r, 1, 2)]);
            hw = rg_pick(r, 12, 36);
            if (depth == 50 && rg_one_in(r, 2)) { /* ResNeXt, or a wide ResNet */
                KV("groups", "%d", (int[]){1, 2, 4, 8, 32}[rg_pick(r, 0, 4)]);
                KV("width_per_group", "%d", (int[]){1, 2, 4, 16, 128}[rg_pick(r, 0, 4)]);
            }
        }
        break;
    case 2:
        model = "densenet";
        KV("depth", "%d", (int[]){16, 22, 40}[rg_pick(r, 0, 2)]);
        KV("growth", "%d", rg_pick(r, 2, 12));
        KV("style", "%s", styles[rg_pick(r, 0, 2)]);
        break;
    case 3:
        model = "wrn";
        KV("depth", "%d", (int[]){10, 16}[rg_pick(r, 0, 1)]);
        KV("width", "%d", rg_pick(r, 1, 2));
        KV("block", "%s", (const char *[]){"basic", "grouped", "bottleneck", "grouped_bottleneck",
                                           "dwsep"}[rg_pick(r, 0, 4)]);
        KV("groups", "%d", (int[]){1, 2, 4}[rg_pick(r, 0, 2)]);
        KV("bottleneck", "%d", rg_pick(r, 1, 4));
        break;
    default:
        model = "vgg";
        KV("depth", "11");
        KV("batchnorm", "%s", rg_one_in(r, 2) ? "true" : "false");
        KV("style", "cifar");
        hw = rg_pick(r, 8, 24);
        break;
    }
#undef KV
    int w = rg_one_in(r, 2) ? hw : rg_pick(r, 12, 40);
    rg_note(r, "%s", model);
    for (int k = 0; k < n; k += 2)
        rg_note(r, " %s=%s", kv[k], kv[k + 1]);
    const struct dlas_component *mc = dlas_registry_find(reg, DLAS_KIND_MODEL, model);
    ck_assert_msg(mc != NULL, "model %s: %s", model, dlas_last_error());
    struct dlas_params *mp = NULL;
    ck_assert_int_eq(dlas_params_defaults(mc->params, &mp), 0);
    for (int k = 0; k < n; k += 2)
        ck_assert_msg(dlas_params_set(mp, kv[k], kv[k + 1], "test") == 0, "%s: %s", r->log,
                      dlas_last_error());
    const int classes = rg_pick(r, 2, 12);
    /* the input shrunk until the model is at most 15 M multiply-adds an
     * image (a ResNet-34 without its stem's strides on 35x35 is 1.2 G: the
     * double-precision reference would take a minute) */
    for (;;) {
        r->g = dlas_graph_new();
        const int rc =
            ((const struct dlas_model_ops *)mc->ops)->build(&host, mp, c, hw, w, classes, r->g);
        if (rc != 0) { /* a model may refuse an input too small for it, with a reason */
            ck_assert_msg(strlen(dlas_last_error()) > 0, "%s: refused without a reason", r->log);
            dlas_graph_free(r->g);
            dlas_params_free(mp);
            return NULL;
        }
        ck_assert_msg(dlas_graph_status(r->g) == 0, "%s: %s", r->log, dlas_last_error());
        struct dlas_graph_stats st;
        ck_assert_int_eq(dlas_graph_stats(r->g, &st), 0);
        if (st.macs <= 15000000 || (hw <= 4 && w <= 4))
            break;
        dlas_graph_free(r->g);
        hw = hw > 4 ? hw * 3 / 4 : hw;
        w = w > 4 ? w * 3 / 4 : w;
    }
    dlas_params_free(mp);
    rg_note(r, ", in %dx%dx%d", c, hw, w);
    rg_randomize(r->g, seed);
    return r->g;
}

static void name_crashes(void)
{
    const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
        signal(sigs[k], name_the_graph);
}

/* A sweep (rg_sweep) whose crash names its case. */
static void sweep(void (*one)(uint64_t), const char *seed_var, const char *count_var, long dflt)
{
    name_crashes();
    rg_sweep(one, seed_var, count_var, dflt);
}

START_TEST(test_random_plans)
{
    sweep(one_graph, "DLAS_RANDOM_SEED", "DLAS_RANDOM_PLANS", dlas_test_subset() ? 40 : 300);
}
END_TEST

static void one_zoo_model(uint64_t seed)
{
    struct rg_gen r;
    struct dlas_graph *g = random_zoo(seed, &r);
    if (!g)
        return;
    char name[600];
    snprintf(name, sizeof name, "zoo model %llu (%s)", (unsigned long long)seed, r.log);
    check_planned(g, &r, seed, 0, name);
    dlas_graph_free(g);
}

/* DLAS_RANDOM_ZOO=N models (default 16; 4 under DLAS_TEST_SUBSET) from
 * DLAS_RANDOM_FIRST; DLAS_RANDOM_ZOO_SEED=S reruns one. */
START_TEST(test_random_zoo)
{
    sweep(one_zoo_model, "DLAS_RANDOM_ZOO_SEED", "DLAS_RANDOM_ZOO", dlas_test_subset() ? 4 : 16);
}
END_TEST

/* ---- pruned networks ------------------------------------------------------------ */

/* g through a checkpoint: saved, loaded (strict) into a copy whose
 * parameters, masks and quantisation were all changed first, the copy's
 * reference output equal to g's, bit for bit. A compressed network's
 * checkpoint holds what the compressors leave: removed channels' shapes,
 * masks, weights on their grid, steps and input parameters. */
static void check_round_trip(const struct dlas_graph *g, uint64_t seed, const char *what)
{
    char dir[256];
    dlas_test_mkdtemp(dir, sizeof dir, "plan-random");
    const char *path = dlas_test_path(dir, "g.ckpt");
    ck_assert_msg(dlas_checkpoint_save_graph(g, path) == 0, "%s: save: %s", what,
                  dlas_last_error());
    struct dlas_graph *c = dlas_graph_clone(g);
    ck_assert(c != NULL);
    rg_randomize(c, seed + 77);
    for (int i = 0; i < dlas_graph_n_nodes(c); i++) {
        struct dlas_node *n = dlas_graph_node(c, i);
        if (dlas_node_is_quantised(n)) {
            dlas_f32(&n->input_quant)[0] *= 1.5f;
            dlas_f32(&n->weight_scale)[0] *= 0.5f;
        }
        free(n->weight.mask); /* a mask the file must bring back */
        n->weight.mask = NULL;
    }
    ck_assert_msg(dlas_checkpoint_load_graph(c, path, DLAS_CKPT_STRICT) == 0, "%s: load: %s",
                  what, dlas_last_error());
    struct dlas_tensor x = {0}, a = {0}, b = {0};
    normal_input(g, 2, seed + 5, &x);
    ck_assert_int_eq(dlas_graph_forward_ref(g, &x, &a), 0);
    ck_assert_int_eq(dlas_graph_forward_ref(c, &x, &b), 0);
    ck_assert_msg(memcmp(dlas_f32(&a), dlas_f32(&b), (size_t)dlas_tensor_numel(&a) * 4) == 0,
                  "%s: the network loaded from its checkpoint computes another output", what);
    dlas_tensor_free(&x);
    dlas_tensor_free(&a);
    dlas_tensor_free(&b);
    dlas_graph_free(c);
    dlas_test_rmtree(dir);
}

/* Some wholes of several parts (a grouped conv's channels, one from every
 * group) masked at once (dlas_prune_mask_whole; a refusal must say why).
 * Draws nothing from r in a network without them. */
static int mask_random_wholes(struct dlas_graph *g, struct rg_gen *r)
{
    struct dlas_prune_units u;
    struct dlas_prune_wholes w;
    ck_assert_msg(dlas_prune_units_find_wholes(g, DLAS_PRUNE_ALL, 1, &u, &w) == 0, "%s: %s",
                  r->log, dlas_last_error());
    int masked = 0;
    for (int64_t k = 0; k < w.n; k++) {
        if (w.first[k + 1] - w.first[k] < 2 || !rg_one_in(r, 3))
            continue;
        if (dlas_prune_mask_whole(g, &u, &w, k) == 0)
            masked++;
        else
            ck_assert_msg(strlen(dlas_last_error()) > 0, "%s: a whole refused without a reason",
                          r->log);
    }
    dlas_prune_wholes_free(&w);
    dlas_prune_units_free(&u);
    return masked;
}

/* Random channels of random groups masked (dlas_graph_mask_channels; a
 * refusal must say why), as a pruner leaves a network while it fine-tunes;
 * returns how many masks took. */
static int mask_random_channels(struct dlas_graph *g, struct rg_gen *r)
{
    struct dlas_channel_group *gr = NULL;
    int ng = 0, masked = 0;
    ck_assert_msg(dlas_graph_channel_groups(g, &gr, &ng) == 0, "%s: groups: %s", r->log,
                  dlas_last_error());
    for (int k = 0; k < ng; k++) {
        if (gr[k].n_prunable == 0 || rg_one_in(r, 3))
            continue;
        const int share = rg_pick(r, 1, 9); /* tenths of the prunable channels */
        for (int64_t c = 0; c < gr[k].n_channels; c++) {
            if (!gr[k].prunable[c] || rg_pick(r, 1, 10) > share)
                continue;
            const struct dlas_node *n = dlas_graph_node(g, gr[k].node[c]);
            const int64_t oc = n->out_shape[0];
            uint8_t *keep = malloc((size_t)oc);
            memset(keep, 1, (size_t)oc);
            keep[gr[k].channel[c]] = 0;
            if (dlas_graph_mask_channels(g, gr[k].node[c], keep) == 0)
                masked++;
            else
                ck_assert_msg(strlen(dlas_last_error()) > 0, "%s: a mask refused without a reason",
                              r->log);
            free(keep);
        }
    }
    dlas_channel_groups_free(gr, ng);
    return masked + mask_random_wholes(g, r);
}

/* Unstructured sparsity: in some convs, a random 50-95% of the weights
 * exactly zero, as magnitude pruning leaves them for the sparse
 * primitives. */
static void zero_random_weights(struct dlas_graph *g, struct rg_gen *r)
{
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_CONV2D || rg_one_in(r, 3))
            continue;
        const int share = rg_pick(r, 50, 95);
        for (int64_t k = 0; k < dlas_tensor_numel(&n->weight); k++)
            if (rg_pick(r, 1, 100) <= share)
                dlas_f32(&n->weight)[k] = 0;
    }
}

/* The masked network and the network with the masked channels removed
 * compute the same output (the removed channels added exact zeros to the
 * reference's double sums); the pruned one, its weights made sparse too,
 * through a random plan. */
static void one_pruned(uint64_t seed)
{
    struct rg_gen r;
    struct dlas_graph *g = rg_graph(seed, 0, &r);
    const int masked = mask_random_channels(g, &r);
    char name0[620];
    snprintf(name0, sizeof name0, "masked graph %llu (%s)", (unsigned long long)seed, r.log);
    check_round_trip(g, seed, name0);
    snprintf(name0, sizeof name0, "graph %llu (%s)", (unsigned long long)seed, r.log);
    const int64_t removed = dlas_test_remove_masked_exact(g, seed, name0);
    ck_assert_msg(masked == 0 ? removed == 0 : removed > 0, "graph %llu: %d masks, %lld removed",
                  (unsigned long long)seed, masked, (long long)removed);
    zero_random_weights(g, &r);
    char name[700];
    snprintf(name, sizeof name, "graph %llu (%s), %lld channels removed, sparse",
             (unsigned long long)seed, r.log, (long long)removed);
    check_planned(g, &r, seed, 0, name);
    dlas_graph_free(g);
}

/* DLAS_RANDOM_PRUNED=N graphs (default 100; 20 under DLAS_TEST_SUBSET) from
 * DLAS_RANDOM_FIRST; DLAS_RANDOM_PRUNED_SEED=S reruns one. */
START_TEST(test_random_pruned)
{
    sweep(one_pruned, "DLAS_RANDOM_PRUNED_SEED", "DLAS_RANDOM_PRUNED", dlas_test_subset() ? 20 : 100);
}
END_TEST

/* ---- quantised networks -------------------------------------------------------- */

/* The quant-int8 compressor on g, as an experiment runs it (batchnorms
 * folded, weights on their grid, inputs calibrated), with a calibration,
 * first and last layers drawn from r, on Gaussian inputs. */
static void quantise(struct dlas_graph *g, struct rg_gen *r)
{
    static const char *const methods[] = {"minmax", "percentile", "entropy"};
    const char *method = methods[rg_pick(r, 0, 2)];
    const int skip_first = rg_one_in(r, 2), skip_last = rg_one_in(r, 4);
    dlas_test_quantise(reg, &host, g, method, 1, skip_first, skip_last);
    int quantised = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        quantised += dlas_node_is_quantised(dlas_graph_node(g, i));
    rg_note(r, "; int8 %s%s%s, %d convs", method, skip_first ? " skip first" : "",
            skip_last ? " skip last" : "", quantised);
}

static void one_quantised(uint64_t seed)
{
    struct rg_gen r;
    struct dlas_graph *g = rg_graph(seed, 0, &r);
    quantise(g, &r);
    char name[700];
    snprintf(name, sizeof name, "quantised graph %llu (%s)", (unsigned long long)seed, r.log);
    check_planned(g, &r, seed, 1, name);
    dlas_graph_free(g);
}

static void one_quantised_zoo(uint64_t seed)
{
    struct rg_gen r;
    struct dlas_graph *g = random_zoo(seed, &r);
    if (!g)
        return;
    quantise(g, &r);
    char name[700];
    snprintf(name, sizeof name, "quantised zoo model %llu (%s)", (unsigned long long)seed, r.log);
    check_planned(g, &r, seed, 1, name);
    dlas_graph_free(g);
}

/* DLAS_RANDOM_INT8=N graphs (default 100; 20 under DLAS_TEST_SUBSET) from
 * DLAS_RANDOM_FIRST; DLAS_RANDOM_INT8_SEED=S reruns one. Where no int8
 * primitive runs (no VNNI), the networks still run fake-quantised. */
START_TEST(test_random_quantised)
{
    if (!n_int8)
        fprintf(stderr, "check_plan_random: no int8 primitive runs here: fake-quantised only\n");
    sweep(one_quantised, "DLAS_RANDOM_INT8_SEED", "DLAS_RANDOM_INT8", dlas_test_subset() ? 20 : 100);
}
END_TEST

/* The zoo's own networks quantised (batchnorms folded into convs, shortcut
 * and block convs sharing an input's parameters): DLAS_RANDOM_INT8_ZOO=N
 * models (default 8; 2 under DLAS_TEST_SUBSET); DLAS_RANDOM_INT8_ZOO_SEED=S
 * reruns one. */
START_TEST(test_random_quantised_zoo)
{
    sweep(one_quantised_zoo, "DLAS_RANDOM_INT8_ZOO_SEED", "DLAS_RANDOM_INT8_ZOO",
          dlas_test_subset() ? 2 : 8);
}
END_TEST

/* ---- compressed networks -------------------------------------------------------- */

/* Parameters (weights, biases, batchnorms) of g, and its exact zeros among
 * conv and linear weights. */
static void count_params(const struct dlas_graph *g, int64_t *params, int64_t *zeros)
{
    *params = *zeros = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        const struct dlas_tensor *t[] = {&n->weight, &n->bias, &n->running_mean};
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
            if (t[k]->data)
                *params += dlas_tensor_numel(t[k]);
        if (n->op != DLAS_OP_CONV2D && n->op != DLAS_OP_LINEAR)
            continue;
        for (int64_t j = 0; j < dlas_tensor_numel(&n->weight); j++)
            *zeros += dlas_f32(&n->weight)[j] == 0.0f;
    }
}

/* The compressor `name` on g with the "key=value" settings of sets (NULL
 * ended), as an experiment would apply it without training (no trainer,
 * no data: one-shot). Returns its status; a refusal must say why. */
static int compress(struct dlas_graph *g, const char *name, const char *const *sets,
                    const char *what)
{
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    ctx.host = &host;
    ctx.graph = g;
    const int rc = dlas_test_compress(reg, &ctx, name, sets);
    ck_assert_msg(rc == 0 || strlen(dlas_last_error()) > 0, "%s: refused without a reason", what);
    return rc;
}

/* A random network through a pruning compressor with random settings
 * (l1-channel by layer or globally to a params or MACs goal, either scope,
 * rounded channel counts; magnitude pruning at any sparsity and scope),
 * one-shot: the compressor must leave a valid network with fewer
 * parameters (l1-channel) or more zeros (magnitude), or refuse with a
 * reason; what it leaves goes through a random plan against the
 * reference. The constructed cases of check_prune know each answer; these
 * are the topologies they do not have (dense blocks, grouped and depthwise
 * convs, heads, a node read twice). */
static void one_compressed(uint64_t seed)
{
    struct rg_gen r;
    /* one in four a zoo model: ResNeXt's and the WRN students' grouped
     * blocks, pruned in wholes (a random graph where the model refused its
     * input) */
    struct dlas_graph *g = seed % 4 == 3 ? random_zoo(seed, &r) : NULL;
    if (!g)
        g = rg_graph(seed, 0, &r);
    char set[8][48];
    const char *sets[9];
    int n = 0;
    const int l1 = rg_pick(&r, 0, 2) > 0; /* two in three */
    const char *name = l1 ? "l1-channel" : "magnitude";
#define SET(...) (snprintf(set[n], sizeof set[n], __VA_ARGS__), sets[n] = set[n], n++)
    if (l1) {
        if (rg_one_in(&r, 3)) {
            SET("mode=layer");
            SET("layer_fraction=%.2f", rg_pick(&r, 5, 90) / 100.0);
        } else {
            SET("target=%s", rg_one_in(&r, 2) ? "macs" : "params");
            SET("ratio=%.2f", rg_pick(&r, 30, 95) / 100.0);
            SET("channels_per_step=%d", rg_pick(&r, 1, 8));
            if (rg_one_in(&r, 3))
                SET("round_to=%d", (int[]){2, 4, 8}[rg_pick(&r, 0, 2)]);
            SET("normalize=%s", rg_one_in(&r, 4) ? "false" : "true");
        }
        SET("scope=%s", rg_one_in(&r, 2) ? "all" : "internal");
        SET("include_linear=%s", rg_one_in(&r, 3) ? "true" : "false");
    } else {
        SET("sparsity=%.2f", rg_pick(&r, 10, 95) / 100.0);
        SET("scope=%s", rg_one_in(&r, 2) ? "layer" : "global");
        SET("include=%s", (const char *[]){"conv", "linear", "all"}[rg_pick(&r, 0, 2)]);
        SET("skip_first=%s", rg_one_in(&r, 2) ? "true" : "false");
    }
#undef SET
    sets[n] = NULL;
    char what[900];
    int len = snprintf(what, sizeof what, "compressed graph %llu (%s; %s", (unsigned long long)seed,
                       r.log, name);
    for (int k = 0; k < n && len > 0 && (size_t)len < sizeof what; k++)
        len += snprintf(what + len, sizeof what - (size_t)len, " %s", sets[k]);
    if (len > 0 && (size_t)len < sizeof what)
        snprintf(what + len, sizeof what - (size_t)len, ")");
    int64_t params0, zeros0, params1, zeros1;
    count_params(g, &params0, &zeros0);
    const int rc = compress(g, name, sets, what);
    count_params(g, &params1, &zeros1);
    if (getenv("DLAS_RANDOM_VERBOSE"))
        fprintf(stderr, "%s: %s; parameters %lld -> %lld, zeros %lld -> %lld\n", what,
                rc ? dlas_last_error() : "applied", (long long)params0, (long long)params1,
                (long long)zeros0, (long long)zeros1);
    if (rc == 0) {
        ck_assert_msg(dlas_graph_validate(g) == 0, "%s: left an invalid network: %s", what,
                      dlas_last_error());
        if (l1)
            ck_assert_msg(params1 <= params0, "%s: %lld parameters, %lld before", what,
                          (long long)params1, (long long)params0);
        else
            ck_assert_msg(params1 == params0 && zeros1 >= zeros0, "%s: %lld parameters and %lld "
                          "zeros, %lld and %lld before", what, (long long)params1,
                          (long long)zeros1, (long long)params0, (long long)zeros0);
        /* one in three then quantised too, as a study of pruning then int8 does */
        const int quant = rg_one_in(&r, 3);
        if (quant) {
            quantise(g, &r);
            len = (int)strlen(what);
            snprintf(what + len, sizeof what - (size_t)len, ", then %s",
                     strrchr(r.log, ';') ? strrchr(r.log, ';') + 2 : "int8");
        }
        check_round_trip(g, seed, what);
        check_planned(g, &r, seed, quant, what);
    }
    dlas_graph_free(g);
}

/* DLAS_RANDOM_COMPRESSED=N graphs (default 60; 12 under DLAS_TEST_SUBSET)
 * from DLAS_RANDOM_FIRST; DLAS_RANDOM_COMPRESSED_SEED=S reruns one. */
START_TEST(test_random_compressed)
{
    sweep(one_compressed, "DLAS_RANDOM_COMPRESSED_SEED", "DLAS_RANDOM_COMPRESSED",
          dlas_test_subset() ? 12 : 60);
}
END_TEST

/* The generator makes what it means to: the motifs the plan fuses occur
 * (blocks, a head, a stem among the graphs), so that a change that broke
 * the generator would not leave the sweep testing plain layers only. */
START_TEST(test_generator_reaches_the_fusions)
{
    int blocks = 0, heads = 0, graphs_with_blocks = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        struct rg_gen r;
        struct dlas_graph *g = rg_graph(seed, 0, &r);
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        po.blocks = 1;
        struct dlas_plan *p = NULL;
        ck_assert_msg(dlas_plan_create_ex(g, &host, &backends[1], prims, 1, &prims[4], 1, &po,
                                          &p) == 0,
                      "graph %llu: %s", (unsigned long long)seed, dlas_last_error());
        blocks += dlas_plan_n_blocks(p);
        graphs_with_blocks += dlas_plan_n_blocks(p) > 0;
        heads += strstr(r.log, "head") != NULL;
        dlas_plan_free(p);
        dlas_graph_free(g);
    }
    ck_assert_int_ge(graphs_with_blocks, 10);
    ck_assert_int_ge(blocks, 20);
    ck_assert_int_ge(heads, 4);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plan_random");
    TCase *tc = dlas_test_case(s, "random graphs", setup, teardown, 600);
    tcase_add_test(tc, test_generator_reaches_the_fusions);
    tcase_add_test(tc, test_random_plans);
    tcase_add_test(tc, test_random_zoo);
    tcase_add_test(tc, test_random_pruned);
    tcase_add_test(tc, test_random_quantised);
    tcase_add_test(tc, test_random_quantised_zoo);
    tcase_add_test(tc, test_random_compressed);
    return dlas_test_run(s);
}
