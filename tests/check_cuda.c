/* The GPU backend and primitives, on the device, against the CPU reference.
 *
 * Without the cuda plugins, a driver or a device this suite exits 77 (SKIP)
 * and says why: it never fails for want of a GPU. With one it checks:
 * - every cuda conv2d primitive on fixed and seeded random layers (strides,
 *   paddings, dilations, groups up to depthwise, 1x1 to 7x7, batch 1 and 3,
 *   bias, relu/relu6, pruned weights) against dlas_ref_conv2d: relative
 *   error < 1e-4 in fp32 (TF32 off), every output written (poisoned with
 *   NaN), nothing written around it, at the declared and a smaller batch;
 * - whole networks (ResNet-18, MobileNet-v2, a CIFAR DenseNet with concat,
 *   average pooling and unfolded batchnorms) planned on the cuda backend,
 *   each primitive with cuda-cudnn as fallback and all of them together,
 *   against the reference forward: plain runs, captured-graph replays
 *   (graphs = true: the second run captures, the third replays), timed runs
 *   (CUDA events), and a smaller batch than the plan's;
 * - that a CPU primitive on the cuda backend is refused with the reason;
 * - random networks (tests/random_graph.h) planned on a random subset of
 *   the GPU primitives (cuDNN's implicit GEMM the fallback), CUDA graphs on or off, a
 *   maximum batch of 1-4, run at it and at one image: every output
 *   written, the largest difference within 1e-4 of the largest output or
 *   100 times the reference's change under one rounding of every
 *   parameter and input (rg_sensitivity: a network whose output cancels
 *   is no bug), a second run bit for bit the first. DLAS_RANDOM_PLANS=N (default 60) networks
 *   from DLAS_RANDOM_FIRST; DLAS_RANDOM_SEED=S reruns one. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlas/dlas.h>

#include "random_graph.h"
#include "testutil.h"

#define TOL 1e-4
#define GUARD 16

static struct dlas_registry *reg;
static struct dlas_rng host_rng;
static struct dlas_host host;
static const struct dlas_component *backend_comp;

static void host_setup(uint64_t seed)
{
    dlas_test_host(&host, &host_rng, seed, DLAS_LOG_WARN);
}

static struct dlas_params *defaults_of(const struct dlas_component *c)
{
    struct dlas_params *p = NULL;
    ck_assert_msg(dlas_params_defaults(c->params, &p) == 0, "%s", dlas_last_error());
    return p;
}

static void backend_open(struct dlas_backend *be, struct dlas_params **bp, const char *graphs)
{
    *bp = defaults_of(backend_comp);
    ck_assert_int_eq(dlas_params_set(*bp, "graphs", graphs, "check_cuda"), 0);
    be->ops = backend_comp->ops;
    be->ctx = NULL;
    int rc = be->ops->init(&host, *bp, &be->ctx);
    ck_assert_msg(rc == 0, "cuda backend: %s", dlas_last_error());
}

static void fill_normal(struct dlas_rng *r, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = dlas_rng_normal(r);
}

static int64_t pick(struct dlas_rng *r, int64_t n) { return (int64_t)dlas_rng_below(r, (uint64_t)n); }

static void random_desc(struct dlas_rng *r, struct dlas_conv_desc *d, int only3x3)
{
    static const int ks[] = {1, 3, 5, 7};
    for (;;) {
        memset(d, 0, sizeof *d);
        int kind = (int)pick(r, 4);
        if (kind == 3) { /* depthwise, channel multiplier 1 or 2 */
            d->in_c = 2 + pick(r, 24);
            d->groups = (int)d->in_c;
            d->out_c = d->in_c * (1 + pick(r, 2));
        } else {
            d->groups = kind == 2 ? 4 : kind == 1 ? 2 : 1;
            d->in_c = d->groups * (1 + pick(r, 20));
            d->out_c = d->groups * (1 + pick(r, 40));
        }
        d->kh = only3x3 ? 3 : ks[pick(r, 4)];
        d->kw = only3x3 ? 3 : pick(r, 5) ? d->kh : ks[pick(r, 4)];
        d->stride_h = only3x3 ? 1 : 1 + (int)pick(r, 2);
        d->stride_w = only3x3 ? 1 : pick(r, 4) ? d->stride_h : 1 + (int)pick(r, 2);
        d->pad_h = (int)pick(r, 4);
        d->pad_w = pick(r, 4) ? d->pad_h : (int)pick(r, 4);
        d->dil_h = only3x3 ? 1 : 1 + (int)pick(r, 2);
        d->dil_w = only3x3 ? 1 : pick(r, 4) ? d->dil_h : 1 + (int)pick(r, 2);
        d->in_h = 1 + pick(r, 40);
        d->in_w = pick(r, 3) ? d->in_h : 1 + pick(r, 40);
        d->batch = pick(r, 2) ? 3 : 1;
        d->has_bias = (int)pick(r, 2);
        d->activation = (int)pick(r, 3);
        if (dlas_conv_desc_finish(d) == 0 && d->out_h >= 1 && d->out_w >= 1)
            return;
    }
}

static const struct dlas_conv_desc fixed_cases[] = {
    /* batch, in c/h/w, out c/h/w, kh kw sh sw ph pw dh dw groups bias act, no
     * quantisation, sparsity 0 */
    {2, 3, 64, 64, 64, 0, 0, 7, 7, 2, 2, 3, 3, 1, 1, 1, 1, 1, NULL, 0},      /* ResNet stem */
    {2, 64, 28, 28, 64, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 0},     /* 3x3 body */
    {2, 64, 28, 28, 128, 0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1, 0, NULL, 0},    /* strided shortcut */
    {2, 96, 15, 15, 96, 0, 0, 3, 3, 2, 2, 1, 1, 1, 1, 96, 1, 2, NULL, 0},    /* MobileNet dw s2 */
    {1, 144, 14, 14, 24, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, NULL, 0},    /* pointwise */
    {3, 32, 17, 13, 40, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0},     /* odd sizes */
    {1, 16, 9, 9, 16, 0, 0, 3, 3, 1, 1, 2, 2, 2, 2, 4, 1, 1, NULL, 0},       /* dilated groups */
    {1, 4, 1, 1, 4, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, NULL, 0},         /* 1x1 map */
};
#define N_FIXED (int)(sizeof fixed_cases / sizeof fixed_cases[0])

struct tally {
    int run, refused;
    double max_err;
};

static void check_case(const struct dlas_component *c, const struct dlas_params *pp,
                       const struct dlas_backend *be, const struct dlas_conv_desc *d,
                       struct dlas_rng *r, int case_no, struct tally *t)
{
    const struct dlas_primitive_ops *ops = c->ops;
    char shape[160], why[512] = "", ctx[400];
    dlas_conv_desc_format(d, shape, sizeof shape);
    int pruned = pick(r, 3) == 0;
    snprintf(ctx, sizeof ctx, "'%s' case %d: %s batch %lld %s%s", c->name, case_no, shape,
             (long long)d->batch, d->has_bias ? "bias" : "no bias", pruned ? " pruned" : "");
    int rc = ops->supports(d, pp, why, sizeof why);
    if (rc) {
        ck_assert_msg(rc == DLAS_ERR_UNSUPPORTED, "%s: supports() %s: %s", ctx,
                      dlas_status_name(rc), why);
        ck_assert_msg(why[0], "%s: refused without a reason", ctx);
        t->refused++;
        return;
    }
    const int64_t n_in = d->batch * d->in_c * d->in_h * d->in_w;
    const int64_t out_img = d->out_c * d->out_h * d->out_w, n_out = d->batch * out_img;
    const int64_t wn = d->out_c * (d->in_c / d->groups) * d->kh * d->kw;
    float *in = malloc((size_t)n_in * sizeof(float)), *w = malloc((size_t)wn * sizeof(float));
    float *bias = malloc((size_t)d->out_c * sizeof(float));
    float *ref = malloc((size_t)n_out * sizeof(float));
    float *out = malloc((size_t)(n_out + 2 * GUARD) * sizeof(float));
    ck_assert(in && w && bias && ref && out);
    fill_normal(r, in, n_in);
    fill_normal(r, w, wn);
    if (pruned)
        for (int64_t i = 0; i < wn; i++)
            if (pick(r, 2))
                w[i] = 0.0f;
    fill_normal(r, bias, d->out_c);
    dlas_ref_conv2d(d, d->batch, in, w, d->has_bias ? bias : NULL, ref);

    void *st = NULL;
    rc = ops->prepare(&host, be, d, w, d->has_bias ? bias : NULL, pp, &st);
    if (rc == DLAS_ERR_UNSUPPORTED && !strcmp(c->name, "cuda-cudnn")) {
        /* a named cuDNN algorithm that cuDNN does not offer for this shape */
        ck_assert_msg(dlas_last_error()[0], "%s: refused without a reason", ctx);
        ck_assert_ptr_null(st);
        t->refused++;
        free(in);
        free(w);
        free(bias);
        free(ref);
        free(out);
        return;
    }
    ck_assert_msg(rc == 0, "%s: prepare: %s", ctx, dlas_last_error());
    for (int64_t i = 0; i < wn; i++) /* prepare keeps its own copy */
        w[i] = NAN;
    float *din = be->ops->alloc(be->ctx, (size_t)n_in * sizeof(float));
    float *dout = be->ops->alloc(be->ctx, (size_t)(n_out + 2 * GUARD) * sizeof(float));
    ck_assert(din && dout);
    ck_assert_int_eq(be->ops->copy_in(be->ctx, din, in, (size_t)n_in * sizeof(float)), 0);
    int64_t batches[2] = {d->batch, d->batch > 1 ? 1 : 0};
    for (int bi = 0; bi < 2 && batches[bi]; bi++) {
        const int64_t nb = batches[bi], n = nb * out_img;
        for (int64_t i = 0; i < n_out + 2 * GUARD; i++)
            out[i] = NAN;
        for (int i = 0; i < GUARD; i++)
            out[i] = out[GUARD + n + i] = 1234.5f;
        ck_assert_int_eq(be->ops->copy_in(be->ctx, dout, out,
                                          (size_t)(n_out + 2 * GUARD) * sizeof(float)),
                         0);
        size_t wsb = ops->workspace(st, nb);
        void *ws = wsb ? be->ops->alloc(be->ctx, wsb) : NULL;
        ck_assert(!wsb || ws);
        rc = ops->run(st, nb, din, dout + GUARD, ws, NULL);
        ck_assert_msg(rc == 0, "%s: run batch %lld: %s", ctx, (long long)nb, dlas_last_error());
        ck_assert_msg(be->ops->sync(be->ctx) == 0, "%s: %s", ctx, dlas_last_error());
        ck_assert_int_eq(be->ops->copy_out(be->ctx, out, dout,
                                           (size_t)(n_out + 2 * GUARD) * sizeof(float)),
                         0);
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(isfinite(out[GUARD + i]), "%s batch %lld: output %lld not written: %g",
                          ctx, (long long)nb, (long long)i, (double)out[GUARD + i]);
        for (int i = 0; i < GUARD; i++)
            ck_assert_msg(out[i] == 1234.5f && out[GUARD + n + i] == 1234.5f,
                          "%s batch %lld: wrote outside the output", ctx, (long long)nb);
        double err = dlas_rel_error(out + GUARD, ref, n);
        ck_assert_msg(err < TOL, "%s batch %lld: relative error %.3g >= %g", ctx, (long long)nb,
                      err, TOL);
        if (err > t->max_err)
            t->max_err = err;
        if (ws)
            be->ops->free(be->ctx, ws);
    }
    ops->release(st);
    be->ops->free(be->ctx, din);
    be->ops->free(be->ctx, dout);
    t->run++;
    free(in);
    free(w);
    free(bias);
    free(ref);
    free(out);
}

/* Variants besides the defaults, so tuned settings are as conformant. */
static const struct {
    const char *prim, *key, *value;
} variants[] = {
    {"cuda-winograd", "tile", "2"},       {"cuda-winograd", "images", "1"},
    {"cuda-direct", "oc_block", "4"},     {"cuda-direct", "tile", "8x16"},
    {"cuda-direct", "ic_chunk", "3"},     {"cuda-direct", "oc_block", "32"},
    {"cuda-depthwise", "per_thread", "4"}, {"cuda-depthwise", "per_thread", "2"},
    {"cuda-im2col-gemm", "images", "1"},  {"cuda-cudnn", "algo", "heuristic"},
    {"cuda-cudnn", "algo", "implicit-gemm"}, {"cuda-cudnn", "algo", "gemm"},
    {"cuda-cudnn", "algo", "fft-tiling"},    {"cuda-cudnn", "algo", "winograd-nonfused"},
};

static const struct dlas_component *cuda_prims[32];
static int n_cuda_prims;

START_TEST(test_primitive)
{
    const struct dlas_component *c = cuda_prims[_i];
    host_setup(77);
    struct dlas_backend be;
    struct dlas_params *bp;
    backend_open(&be, &bp, "true");
    for (int v = -1; v < (int)(sizeof variants / sizeof variants[0]); v++) {
        if (v >= 0 && strcmp(variants[v].prim, c->name))
            continue;
        struct dlas_params *pp = defaults_of(c);
        if (v >= 0)
            ck_assert_int_eq(dlas_params_set(pp, variants[v].key, variants[v].value, "check"), 0);
        struct dlas_rng r;
        dlas_rng_seed(&r, dlas_rng_hash(c->name) ^ (uint64_t)(v + 7));
        struct tally t = {0, 0, 0};
        for (int k = 0; k < N_FIXED; k++) {
            struct dlas_conv_desc d = fixed_cases[k];
            ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
            check_case(c, pp, &be, &d, &r, k, &t);
        }
        for (int k = 0; k < (v < 0 ? 60 : 20); k++) {
            struct dlas_conv_desc d;
            random_desc(&r, &d, k % 3 == 0);
            check_case(c, pp, &be, &d, &r, N_FIXED + k, &t);
        }
        fprintf(stderr, "check_cuda: %-18s %-22s %3d run, %3d refused, max rel. error %.2g\n",
                c->name, v < 0 ? "defaults" : variants[v].value, t.run, t.refused, t.max_err);
        ck_assert_msg(t.run > 0, "'%s' refused every layer", c->name);
        dlas_params_free(pp);
    }
    be.ops->release(be.ctx);
    dlas_params_free(bp);
}
END_TEST

/* ---- whole networks ---------------------------------------------------------- */

static struct dlas_graph *build(const char *model, const char *key, const char *val, int c,
                                int h, int w, int classes)
{
    const struct dlas_component *mc = dlas_registry_find(reg, DLAS_KIND_MODEL, model);
    ck_assert_msg(mc != NULL, "model %s: %s", model, dlas_last_error());
    struct dlas_params *p = defaults_of(mc);
    if (key)
        ck_assert_int_eq(dlas_params_set(p, key, val, "check"), 0);
    struct dlas_graph *g = dlas_graph_new();
    ck_assert_msg(((const struct dlas_model_ops *)mc->ops)->build(&host, p, c, h, w, classes, g) ==
                      0,
                  "%s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_infer_shapes(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 5);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    /* batchnorm statistics away from the identity, so folding is tested */
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_BATCHNORM)
            continue;
        float *gm = dlas_f32(&n->weight), *bt = dlas_f32(&n->bias);
        float *mu = dlas_f32(&n->running_mean), *var = dlas_f32(&n->running_var);
        for (int64_t k = 0; k < n->out_shape[0]; k++) {
            gm[k] = 0.5f + dlas_rng_uniform(&r);
            bt[k] = 0.2f * dlas_rng_normal(&r);
            mu[k] = 0.1f * dlas_rng_normal(&r);
            var[k] = 0.5f + dlas_rng_uniform(&r);
        }
    }
    dlas_params_free(p);
    return g;
}

static void check_net(struct dlas_graph *g, const char *name, int64_t batch)
{
    const struct dlas_node *in0 = dlas_graph_node(g, 0);
    int64_t per = in0->out_shape[0] * in0->out_shape[1] * in0->out_shape[2];
    struct dlas_tensor x = {0}, ref = {0};
    x.dtype = DLAS_F32;
    x.ndim = 4;
    x.dims[0] = batch;
    for (int k = 0; k < 3; k++)
        x.dims[k + 1] = in0->out_shape[k];
    float *input = malloc((size_t)(per * batch) * sizeof(float));
    ck_assert(input);
    struct dlas_rng r;
    dlas_rng_seed(&r, 11);
    fill_normal(&r, input, per * batch);
    x.data = input;
    ck_assert_int_eq(dlas_graph_forward_ref(g, &x, &ref), 0);
    int64_t out_n = dlas_tensor_numel(&ref);
    float *out = malloc((size_t)out_n * sizeof(float));
    ck_assert(out);

    struct dlas_primitive_choice ch[32];
    struct dlas_params *pp[32];
    for (int k = 0; k < n_cuda_prims; k++) {
        pp[k] = defaults_of(cuda_prims[k]);
        ch[k] = (struct dlas_primitive_choice){cuda_prims[k]->name, cuda_prims[k], pp[k]};
    }
    const struct dlas_component *cudnn = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, "cuda-cudnn");
    ck_assert(cudnn != NULL);
    struct dlas_params *fp = defaults_of(cudnn);
    struct dlas_primitive_choice fb = {"cuda-cudnn", cudnn, fp};
    for (int gi = 0; gi < 2; gi++) {
        struct dlas_backend be;
        struct dlas_params *bp;
        backend_open(&be, &bp, gi ? "true" : "false");
        for (int k = -1; k < n_cuda_prims; k++) { /* -1: all of them */
            struct dlas_plan *plan = NULL;
            int rc = dlas_plan_create(g, &host, &be, k < 0 ? ch : &ch[k], k < 0 ? n_cuda_prims : 1,
                                      &fb, batch, &plan);
            ck_assert_msg(rc == 0, "%s, %s: plan: %s", name, k < 0 ? "all" : ch[k].label,
                          dlas_last_error());
            for (int rep = 0; rep < 3; rep++) { /* eager, captured, replayed */
                for (int64_t i = 0; i < out_n; i++)
                    out[i] = NAN;
                ck_assert_msg(dlas_plan_run(plan, batch, input, out) == 0, "%s: %s", name,
                              dlas_last_error());
                double err = dlas_rel_error(out, dlas_f32(&ref), out_n);
                ck_assert_msg(err < TOL, "%s, %s, graphs=%d, run %d: relative error %.3g", name,
                              k < 0 ? "all" : ch[k].label, gi, rep, err);
            }
            double *ns = calloc((size_t)dlas_plan_n_nodes(plan), sizeof *ns);
            ck_assert_int_eq(dlas_plan_run_timed(plan, batch, input, out, ns), 0);
            double total = 0;
            for (int i = 0; i < dlas_plan_n_nodes(plan); i++) {
                ck_assert_msg(ns[i] >= 0, "negative node time");
                total += ns[i];
            }
            ck_assert_msg(total > 0, "%s: timed run measured nothing", name);
            ck_assert(dlas_rel_error(out, dlas_f32(&ref), out_n) < TOL);
            free(ns);
            if (batch > 1) { /* a smaller batch than planned: the first sample */
                ck_assert_msg(dlas_plan_run(plan, 1, input, out) == 0, "%s, %s, batch 1 of %lld: %s",
                              name, k < 0 ? "all" : ch[k].label, (long long)batch, dlas_last_error());
                ck_assert(dlas_rel_error(out, dlas_f32(&ref), out_n / batch) < TOL);
            }
            dlas_plan_free(plan);
        }
        /* a CPU primitive cannot run on the device: refused, with the reason */
        const struct dlas_component *cpu = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, "im2col-gemm");
        if (cpu) {
            struct dlas_params *cp = defaults_of(cpu);
            struct dlas_primitive_choice cc = {"im2col-gemm", cpu, cp};
            struct dlas_plan *plan = NULL;
            ck_assert_int_eq(dlas_plan_create(g, &host, &be, &cc, 1, NULL, batch, &plan),
                             DLAS_ERR_UNSUPPORTED);
            ck_assert_msg(strstr(dlas_last_error(), "runs on cpu"), "%s", dlas_last_error());
            dlas_params_free(cp);
        } else
            dlas_clear_error();
        be.ops->release(be.ctx);
        dlas_params_free(bp);
    }
    fprintf(stderr, "check_cuda: %s batch %lld: every plan within %g of the reference\n", name,
            (long long)batch, TOL);
    for (int k = 0; k < n_cuda_prims; k++)
        dlas_params_free(pp[k]);
    dlas_params_free(fp);
    dlas_tensor_free(&ref);
    free(input);
    free(out);
}

START_TEST(test_resnet18)
{
    host_setup(3);
    struct dlas_graph *g = build("resnet", "depth", "18", 3, 96, 96, 100);
    check_net(g, "resnet18", 2);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_mobilenet_v2)
{
    host_setup(3);
    struct dlas_graph *g = build("mobilenet", "version", "2", 3, 64, 64, 10);
    check_net(g, "mobilenet-v2", 3);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_densenet_softmax)
{
    host_setup(3);
    struct dlas_graph *g = build("densenet", "depth", "40", 3, 32, 32, 10);
    /* a softmax at the end, as a deployed classifier has */
    ck_assert(dlas_graph_softmax(g, "prob", dlas_graph_output(g)) >= 0);
    ck_assert_int_eq(dlas_graph_infer_shapes(g), 0);
    check_net(g, "densenet-40+softmax", 2);
    dlas_graph_free(g);
}
END_TEST

/* A primitive's defaults; for cuda-cudnn, its implicit GEMM. Its default
 * (`find`) takes the fastest algorithm of a timing, which may be an FFT or
 * a non-fused Winograd one, rounding differently, and differs from run to
 * run: one network of a sweep of 4,000 was 2.2e-4 off its reference, and
 * 3e-7 to 6e-7 in three runs of it alone. A choice by timing would make a
 * random network's tolerance a matter of chance; test_primitive checks
 * every algorithm on single layers. */
static struct dlas_params *cudnn_gemm(const struct dlas_component *c)
{
    struct dlas_params *p = defaults_of(c);
    if (!strcmp(c->name, "cuda-cudnn"))
        ck_assert_int_eq(dlas_params_set(p, "algo", "implicit-gemm", "check_cuda"), 0);
    return p;
}

static void random_network(uint64_t seed)
{
    struct rg_gen r;
    struct dlas_graph *g = rg_graph(seed, 0, &r);
    const int graphs = rg_one_in(&r, 2);
    const int64_t max_batch = rg_pick(&r, 1, 4);
    struct dlas_primitive_choice ch[32];
    struct dlas_params *pp[32];
    int n = 0;
    for (int k = 0; k < n_cuda_prims; k++)
        if (rg_one_in(&r, 2)) {
            pp[n] = cudnn_gemm(cuda_prims[k]);
            ch[n] = (struct dlas_primitive_choice){cuda_prims[k]->name, cuda_prims[k], pp[n]};
            n++;
        }
    const struct dlas_component *cudnn = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, "cuda-cudnn");
    ck_assert(cudnn != NULL);
    struct dlas_params *fp = cudnn_gemm(cudnn);
    struct dlas_primitive_choice fb = {"cuda-cudnn", cudnn, fp};
    char what[900];
    int len = snprintf(what, sizeof what, "network %llu (%s; graphs %d, max batch %lld; prims",
                       (unsigned long long)seed, r.log, graphs, (long long)max_batch);
    for (int k = 0; k < n && len > 0 && (size_t)len < sizeof what; k++)
        len += snprintf(what + len, sizeof what - (size_t)len, " %s", ch[k].label);
    struct dlas_backend be;
    struct dlas_params *bp;
    backend_open(&be, &bp, graphs ? "true" : "false");
    struct dlas_plan *plan = NULL;
    ck_assert_msg(dlas_plan_create(g, &host, &be, n ? ch : &fb, n ? n : 1, &fb, max_batch,
                                   &plan) == 0,
                  "%s): plan: %s", what, dlas_last_error());
    const struct dlas_node *in = dlas_graph_node(g, 0);
    for (int64_t batch = max_batch; batch >= 1; batch = batch > 1 ? 1 : 0) {
        int64_t dims[4] = {batch, in->out_shape[0], in->out_shape[1], in->out_shape[2]};
        struct dlas_tensor x = {0}, ref = {0};
        ck_assert_int_eq(dlas_tensor_alloc(&x, DLAS_F32, 4, dims), 0);
        struct dlas_rng xr;
        dlas_rng_seed(&xr, seed + 17);
        dlas_test_fill_normal(&x, &xr);
        ck_assert_int_eq(dlas_graph_forward_ref(g, &x, &ref), 0);
        const int64_t on = dlas_tensor_numel(&ref);
        ck_assert_int_eq(on, dlas_plan_output_numel(plan) * batch);
        float *out[2];
        for (int run = 0; run < 2; run++) { /* with graphs: captured, then replayed */
            out[run] = malloc((size_t)on * sizeof(float));
            for (int64_t i = 0; i < on; i++)
                out[run][i] = NAN;
            ck_assert_msg(dlas_plan_run(plan, batch, dlas_f32(&x), out[run]) == 0, "%s): %s",
                          what, dlas_last_error());
        }
        for (int64_t i = 0; i < on; i++)
            ck_assert_msg(isfinite(out[0][i]), "%s), batch %lld: output %lld not written", what,
                          (long long)batch, (long long)i);
        const double diff = rg_max_diff(out[0], dlas_f32(&ref), on);
        const double big = rg_max_diff(dlas_f32(&ref), NULL, on);
        const double sens = rg_sensitivity(g, &x, seed);
        ck_assert_msg(diff <= fmax(TOL * big, 100 * sens),
                      "%s), batch %lld: the largest difference %.3g is over %g of the largest "
                      "output %.3g and 100 times the sensitivity to one rounding %.3g",
                      what, (long long)batch, diff, TOL, big, sens);
        ck_assert_msg(memcmp(out[0], out[1], (size_t)on * sizeof(float)) == 0,
                      "%s), batch %lld: a second run differs", what, (long long)batch);
        free(out[0]);
        free(out[1]);
        dlas_tensor_free(&x);
        dlas_tensor_free(&ref);
    }
    dlas_plan_free(plan);
    be.ops->release(be.ctx);
    dlas_params_free(bp);
    for (int k = 0; k < n; k++)
        dlas_params_free(pp[k]);
    dlas_params_free(fp);
    dlas_graph_free(g);
}

START_TEST(test_random_networks)
{
    host_setup(5);
    rg_sweep(random_network, "DLAS_RANDOM_SEED", "DLAS_RANDOM_PLANS", 60);
}
END_TEST

int main(void)
{
    reg = dlas_test_registry("check_cuda");
    if (!reg)
        return 1;
    backend_comp = dlas_registry_find(reg, DLAS_KIND_BACKEND, "cuda");
    if (!backend_comp) {
        fprintf(stderr, "check_cuda: SKIP: the cuda backend was not built (configure "
                        "--with-cuda)\n");
        dlas_registry_free(reg);
        return 77;
    }
    /* Probe the device in a child: CUDA does not survive a fork, and Check
     * forks every test, so this process must not initialise it. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        host_setup(1);
        void *ctx = NULL;
        struct dlas_params *bp = NULL;
        dlas_params_defaults(backend_comp->params, &bp);
        const struct dlas_backend_ops *ops = backend_comp->ops;
        int rc = ops->init(&host, bp, &ctx);
        if (rc) {
            fprintf(stderr, "check_cuda: SKIP: %s (%s)\n", dlas_last_error(), dlas_status_name(rc));
            _exit(rc == DLAS_ERR_UNAVAILABLE ? 77 : 1);
        }
        char desc[512] = "";
        ops->describe(ctx, desc, sizeof desc);
        fprintf(stderr, "check_cuda: %s\n", desc);
        ops->release(ctx);
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        dlas_registry_free(reg);
        return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 77 ? 77 : 1;
    }
    for (size_t i = 0; i < dlas_registry_count(reg) && n_cuda_prims < 32; i++) {
        const struct dlas_component *c = dlas_registry_at(reg, i, NULL, NULL);
        if (c && c->kind == DLAS_KIND_PRIMITIVE &&
            !strcmp(((const struct dlas_primitive_ops *)c->ops)->device, "cuda"))
            cuda_prims[n_cuda_prims++] = c;
    }
    Suite *s = suite_create("cuda");
    TCase *tc = dlas_test_case(s, "primitives", NULL, NULL, 600);
    tcase_add_loop_test(tc, test_primitive, 0, n_cuda_prims);
    TCase *tn = dlas_test_case(s, "networks", NULL, NULL, 600);
    tcase_add_test(tn, test_resnet18);
    tcase_add_test(tn, test_mobilenet_v2);
    tcase_add_test(tn, test_densenet_softmax);
    tcase_add_test(tn, test_random_networks);
    int failed = dlas_test_run(s);
    dlas_registry_free(reg);
    return failed;
}
