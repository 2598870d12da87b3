/* Int8 primitives (every component declaring DLAS_PRIM_INT8): bit-exact
 * against the integer reference dlas_ref_conv2d_int8 on random layers
 * (scales, zero points, saturating outputs, strides, padding, dilation,
 * groups, batch > 1, relu/relu6, uint8 and f32 outputs) on 1 and 2
 * threads with poisoned outputs, and within one quantisation step of the
 * fake-quantised fp32 layer; then a quantised network through the plan,
 * int8 against fp32 primitives, with the boundaries the plan reports. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>
#include <dlas/quant.h>

#include "testutil.h"

static struct dlas_registry *reg;
static struct dlas_host host;
static struct dlas_rng host_rng;
static const struct dlas_component *prims[8];
static int n_prims;

static void host_setup(uint64_t seed)
{
    dlas_test_host(&host, &host_rng, seed, -1);
}

static int64_t pick(struct dlas_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)dlas_rng_below(r, (uint64_t)(hi - lo + 1));
}

static struct dlas_backend backend(int threads)
{
    const struct dlas_component *bc = dlas_registry_find(reg, DLAS_KIND_BACKEND, "openmp");
    ck_assert_msg(bc != NULL, "%s", dlas_last_error());
    struct dlas_params *p = NULL;
    ck_assert_int_eq(dlas_params_defaults(bc->params, &p), 0);
    char t[8];
    snprintf(t, sizeof t, "%d", threads);
    ck_assert_int_eq(dlas_params_set(p, "threads", t, "test"), 0);
    struct dlas_backend be = {bc->ops, NULL};
    ck_assert_int_eq(be.ops->init(&host, p, &be.ctx), 0);
    dlas_params_free(p);
    return be;
}

struct tally {
    int run, refused;
};

static void one_case(const struct dlas_component *c, const struct dlas_params *params,
                     const struct dlas_backend *be, struct dlas_rng *r, int case_no, int threads,
                     struct tally *t)
{
    const struct dlas_primitive_ops *ops = c->ops;
    struct dlas_conv_desc d;
    memset(&d, 0, sizeof d);
    d.groups = case_no % 7 == 3 ? 2 : 1;
    d.batch = pick(r, 1, 3);
    d.in_c = d.groups * pick(r, 1, 21);
    /* now and then more than one block of 64 output channels, and a partial one */
    d.out_c = d.groups * (case_no % 9 == 4 ? pick(r, 50, 140) : pick(r, 1, 19));
    d.kh = d.kw = (int)(case_no % 5 == 0 ? 1 : case_no % 5 == 4 ? 5 : 3);
    d.stride_h = d.stride_w = (int)pick(r, 1, 3);
    d.dil_h = d.dil_w = case_no % 6 == 5 ? 2 : 1;
    d.pad_h = (int)pick(r, 0, 2);
    d.pad_w = (int)pick(r, 0, 2);
    d.in_h = pick(r, d.kh * d.dil_h, 19);
    d.in_w = pick(r, d.kw * d.dil_w, 37);
    d.has_bias = case_no % 4 != 1;
    d.activation = (int)(case_no % 3);
    ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
    const int64_t K = d.in_c / d.groups * d.kh * d.kw;
    const int64_t nw = d.out_c * K, nin = d.batch * d.in_c * d.in_h * d.in_w,
                  nout = d.batch * d.out_c * d.out_h * d.out_w;
    float *w = malloc((size_t)nw * sizeof *w), *bias = malloc((size_t)d.out_c * sizeof *bias);
    float *step = malloc((size_t)d.out_c * sizeof *step);
    for (int64_t i = 0; i < nw; i++)
        w[i] = dlas_rng_normal(r);
    if (case_no % 8 == 2) /* a pruned filter: all zero */
        for (int64_t i = 0; i < K; i++)
            w[i] = 0.0f;
    for (int64_t o = 0; o < d.out_c; o++)
        bias[o] = 3.0f * dlas_rng_normal(r);
    dlas_weight_steps(w, d.out_c, K, step);
    dlas_weight_round(w, d.out_c, K, step);
    struct dlas_conv_quant q;
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.in.scale = 0.002f + (float)dlas_rng_uniform(r) * 0.1f;
    q.in.zero_point = (int32_t)pick(r, 0, 255);
    q.weight_step = step;
    q.out_u8 = case_no % 2 == 0;
    /* a narrow output range saturates often; a wide one rarely */
    float range = case_no % 4 == 0 ? 0.5f : 40.0f;
    q.out.scale = range / 255.0f * (0.5f + (float)dlas_rng_uniform(r));
    q.out.zero_point = (int32_t)pick(r, 0, 255);
    d.quant = &q;

    uint8_t *in = malloc((size_t)nin);
    for (int64_t i = 0; i < nin; i++) /* extremes often: saturation of the products */
        in[i] = i % 11 == 0 ? 255 : i % 13 == 0 ? 0 : (uint8_t)dlas_rng_below(r, 256);
    char why[512] = "";
    int rc = ops->supports(&d, params, why, sizeof why);
    if (rc) {
        ck_assert_msg(rc == DLAS_ERR_UNSUPPORTED || rc == DLAS_ERR_UNAVAILABLE,
                      "'%s' case %d: supports() -> %s", c->name, case_no, dlas_status_name(rc));
        ck_assert_msg(why[0], "'%s' case %d: refused without a reason", c->name, case_no);
        t->refused++;
        goto out;
    }
    struct dlas_int8_layer L;
    ck_assert_int_eq(dlas_int8_layer_init(&L, &d, w, d.has_bias ? bias : NULL, &q), 0);
    size_t osz = q.out_u8 ? 1 : sizeof(float);
    void *want = malloc((size_t)nout * osz), *got = malloc((size_t)nout * osz);
    dlas_ref_conv2d_int8(&L, d.batch, in, want);
    void *state = NULL;
    rc = ops->prepare(&host, be, &d, w, d.has_bias ? bias : NULL, params, &state);
    ck_assert_msg(rc == 0, "'%s' case %d: prepare: %s", c->name, case_no, dlas_last_error());
    size_t wsz = ops->workspace(state, d.batch);
    void *ws = wsz ? dlas_aligned_alloc(wsz) : NULL;
    memset(got, 0xA7, (size_t)nout * osz); /* poison: NaN-free but never a result by luck */
    if (!q.out_u8)
        for (int64_t i = 0; i < nout; i++)
            ((float *)got)[i] = NAN;
    rc = ops->run_int8(state, d.batch, in, got, ws, NULL);
    ck_assert_msg(rc == 0, "'%s' case %d: run: %s", c->name, case_no, dlas_last_error());
    char desc[160];
    dlas_conv_desc_format(&d, desc, sizeof desc);
    for (int64_t i = 0; i < nout; i++) {
        if (q.out_u8)
            ck_assert_msg(((uint8_t *)got)[i] == ((uint8_t *)want)[i],
                          "'%s' %d threads, case %d (%s, batch %lld, u8 out): element %lld is "
                          "%d, reference %d",
                          c->name, threads, case_no, desc, (long long)d.batch, (long long)i,
                          ((uint8_t *)got)[i], ((uint8_t *)want)[i]);
        else
            ck_assert_msg(((float *)got)[i] == ((float *)want)[i],
                          "'%s' %d threads, case %d (%s, batch %lld, f32 out): element %lld is "
                          "%g, reference %g",
                          c->name, threads, case_no, desc, (long long)d.batch, (long long)i,
                          (double)((float *)got)[i], (double)((float *)want)[i]);
    }
    /* within one step of the fake-quantised fp32 layer */
    float *xf = malloc((size_t)nin * sizeof *xf), *yf = malloc((size_t)nout * sizeof *yf);
    dlas_dequantize_u8(in, nin, &q.in, xf);
    struct dlas_conv_desc df = d;
    df.quant = NULL;
    dlas_ref_conv2d(&df, d.batch, xf, w, d.has_bias ? bias : NULL, yf);
    double ymax = 1e-6;
    for (int64_t i = 0; i < nout; i++)
        ymax = fmax(ymax, fabs(yf[i]));
    for (int64_t i = 0; i < nout; i++) {
        double g, ref = yf[i];
        if (q.out_u8) {
            g = q.out.scale * (((uint8_t *)got)[i] - q.out.zero_point);
            double lo = q.out.scale * (L.lo - q.out.zero_point),
                   hi = q.out.scale * (L.hi - q.out.zero_point);
            ref = ref < lo ? lo : ref > hi ? hi : ref;
            ck_assert_msg(fabs(g - ref) <= q.out.scale * 1.0001,
                          "'%s' case %d: element %lld: %g vs fake-quant %g (step %g)", c->name,
                          case_no, (long long)i, g, ref, (double)q.out.scale);
        } else {
            g = ((float *)got)[i];
            ck_assert_msg(fabs(g - ref) <= 1e-4 * ymax,
                          "'%s' case %d: element %lld: %g vs fake-quant %g", c->name, case_no,
                          (long long)i, g, ref);
        }
    }
    free(xf);
    free(yf);
    dlas_aligned_free(ws);
    ops->release(state);
    dlas_int8_layer_free(&L);
    free(want);
    free(got);
    t->run++;
out:
    free(in);
    free(w);
    free(bias);
    free(step);
}

START_TEST(test_int8_primitive)
{
    const struct dlas_component *c = prims[_i];
    host_setup(77);
    for (int threads = 1; threads <= 2; threads++) {
        struct dlas_backend be = backend(threads);
        struct dlas_rng r;
        dlas_rng_seed(&r, dlas_rng_hash(c->name) ^ 0x1e8);
        struct tally t = {0, 0};
        for (int k = 0; k < 60; k++)
            one_case(c, NULL, &be, &r, k, threads, &t);
        fprintf(stderr, "int8: %-12s threads %d: %d layers bit-exact, %d refused\n", c->name,
                threads, t.run, t.refused);
        ck_assert_msg(t.run > 0 || t.refused == 60, "'%s' ran nothing", c->name);
        be.ops->release(be.ctx);
    }
}
END_TEST

/* Every value of every knob, each on random layers: a layout or tile the
 * automatic choice never picks for these shapes is still checked. */
START_TEST(test_int8_knobs)
{
    static const char *const settings[][2] = {
        {"lanes", "positions"}, {"lanes", "channels"}, {"vectors", "1"},
        {"vectors", "2"},       {"vectors", "3"}};
    const struct dlas_component *c = prims[_i];
    host_setup(78);
    for (size_t k = 0; k < sizeof settings / sizeof settings[0]; k++) {
        struct dlas_params *p = NULL;
        if (!c->params || dlas_params_defaults(c->params, &p) ||
            dlas_params_set(p, settings[k][0], settings[k][1], "test")) {
            dlas_clear_error(); /* a knob this primitive does not have */
            dlas_params_free(p);
            continue;
        }
        for (int threads = 1; threads <= 2; threads++) {
            struct dlas_backend be = backend(threads);
            struct dlas_rng r;
            dlas_rng_seed(&r, dlas_rng_hash(c->name) ^ (0x2e8 + k));
            struct tally t = {0, 0};
            for (int n = 0; n < 30; n++)
                one_case(c, p, &be, &r, n, threads, &t);
            fprintf(stderr, "int8: %-12s %s=%s threads %d: %d layers bit-exact, %d refused\n",
                    c->name, settings[k][0], settings[k][1], threads, t.run, t.refused);
            ck_assert_msg(t.run > 0, "'%s' %s=%s ran nothing", c->name, settings[k][0],
                          settings[k][1]);
            be.ops->release(be.ctx);
        }
        dlas_params_free(p);
    }
}
END_TEST

START_TEST(test_refuses_fp32)
{
    const struct dlas_component *c = prims[_i];
    const struct dlas_primitive_ops *ops = c->ops;
    struct dlas_conv_desc d = {.batch = 1, .in_c = 8, .in_h = 8, .in_w = 8, .out_c = 8, .kh = 3,
                               .kw = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                               .dil_h = 1, .dil_w = 1, .groups = 1};
    dlas_conv_desc_finish(&d);
    char why[256] = "";
    int rc = ops->supports(&d, NULL, why, sizeof why);
    ck_assert_msg(rc == DLAS_ERR_UNSUPPORTED || rc == DLAS_ERR_UNAVAILABLE, "%s", why);
    ck_assert(why[0] != '\0');
}
END_TEST

/* ---- through the plan ------------------------------------------------------------- */

static struct dlas_graph *quantised_net(void)
{
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "x", 3, 12, 12);
    struct dlas_conv_attr a = dlas_conv(16, 3, 1, 1);
    a.bias = 1;
    int c1 = dlas_graph_conv2d(g, "c1", x, &a);
    int r1 = dlas_graph_relu(g, "r1", c1);
    struct dlas_conv_attr a2 = dlas_conv(24, 3, 2, 1);
    a2.bias = 1;
    int c2 = dlas_graph_conv2d(g, "c2", r1, &a2);
    int r2 = dlas_graph_relu(g, "r2", c2);
    struct dlas_conv_attr a3 = dlas_conv(24, 3, 1, 1);
    a3.bias = 1;
    int c3 = dlas_graph_conv2d(g, "c3", r2, &a3);
    int s = dlas_graph_add(g, "sum", c3, r2);
    int r3 = dlas_graph_relu(g, "r3", s);
    int c4 = dlas_graph_conv2d(g, "c4", r3, &a3);
    int gp = dlas_graph_global_avgpool(g, "gap", c4);
    int f = dlas_graph_flatten(g, "flat", gp);
    dlas_graph_linear(g, "fc", f, 5, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 31);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    /* quantise c1..c4 by hand: inputs are the network input (signed) or relu outputs */
    const char *names[] = {"c1", "c2", "c3", "c4"};
    const float scales[] = {4.0f / 255, 3.0f / 255, 2.5f / 255, 3.5f / 255};
    const int zps[] = {128, 0, 0, 0};
    for (int k = 0; k < 4; k++) {
        struct dlas_node *n = dlas_graph_node(g, dlas_graph_find(g, names[k]));
        int64_t oc = n->attr.conv.out_channels, per = dlas_tensor_numel(&n->weight) / oc;
        float step[64];
        for (int64_t o = 0; o < oc; o++)
            dlas_f32(&n->bias)[o] = 0.1f * dlas_rng_normal(&r);
        dlas_weight_steps(dlas_f32(&n->weight), oc, per, step);
        dlas_weight_round(dlas_f32(&n->weight), oc, per, step);
        struct dlas_act_quant q = {scales[k], zps[k]};
        ck_assert_int_eq(dlas_node_set_quant(n, step, &q), 0);
    }
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    return g;
}

static float *run_plan(struct dlas_graph *g, const char *prim, int threads, const float *x,
                       int64_t batch, const char **prec)
{
    const struct dlas_component *c = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, prim);
    const struct dlas_component *fb = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, "im2col-gemm");
    ck_assert(c && fb);
    struct dlas_primitive_choice ch = {prim, c, NULL}, fch = {"im2col", fb, NULL};
    struct dlas_backend be = backend(threads);
    struct dlas_plan *p;
    int rc = dlas_plan_create(g, &host, &be, &ch, 1, &fch, batch, &p);
    ck_assert_msg(rc == 0, "plan: %s", dlas_last_error());
    float *y = malloc((size_t)(batch * dlas_plan_output_numel(p)) * sizeof *y);
    rc = dlas_plan_run(p, batch, x, y);
    ck_assert_msg(rc == 0, "run: %s", dlas_last_error());
    for (int i = 0; prec && i < dlas_plan_n_nodes(p); i++)
        prec[i] = dlas_plan_precision(p, i);
    dlas_plan_free(p);
    be.ops->release(be.ctx);
    return y;
}

/* n values from N(0, 1), seeded: a batch of the network's inputs. */
static float *normal_input(int64_t n, uint64_t seed)
{
    float *x = malloc((size_t)n * sizeof *x);
    ck_assert(x != NULL);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = dlas_rng_normal(&r);
    return x;
}

START_TEST(test_plan)
{
    host_setup(5);
    struct dlas_graph *g = quantised_net();
    const int64_t batch = 3, nin = batch * 3 * 12 * 12;
    float *x = normal_input(nin, 9);
    struct dlas_tensor in = {0}, ref = {0};
    int64_t dims[4] = {batch, 3, 12, 12};
    dlas_tensor_alloc(&in, DLAS_F32, 4, dims);
    memcpy(in.data, x, (size_t)nin * sizeof *x);
    ck_assert_int_eq(dlas_graph_forward_ref(g, &in, &ref), 0);
    const char *prec[64];
    /* fp32 primitives fake-quantise: the reference forward, up to rounding */
    float *yf = run_plan(g, "im2col-gemm", 1, x, batch, prec);
    ck_assert_str_eq(prec[dlas_graph_find(g, "c2")], "int8-fake");
    double e = dlas_rel_error(yf, dlas_f32(&ref), batch * 5);
    ck_assert_msg(e < 1e-4, "fake-quant plan vs reference: %g", e);
    for (int k = 0; k < n_prims; k++)
        for (int threads = 1; threads <= 2; threads++) {
            float *yi = run_plan(g, prims[k]->name, threads, x, batch, prec);
            /* c1 reads the network input (quantised by the plan), hands uint8
             * to c2; c2's output feeds c3 and the add: f32; c3 feeds the add:
             * f32; c4 reads the relu of the add (quantised by the plan) and
             * feeds the pooling: f32 */
            ck_assert_str_eq(prec[dlas_graph_find(g, "c1")], "int8 f32>u8");
            ck_assert_str_eq(prec[dlas_graph_find(g, "c2")], "int8 u8>f32");
            ck_assert_str_eq(prec[dlas_graph_find(g, "c3")], "int8 f32>f32");
            ck_assert_str_eq(prec[dlas_graph_find(g, "c4")], "int8 f32>f32");
            double ei = dlas_rel_error(yi, yf, batch * 5);
            fprintf(stderr, "int8: plan with %s, %d threads: rel. error %.3g vs fake-quant\n",
                    prims[k]->name, threads, ei);
            /* one step of c2's and c3's output scales, diluted by the pooling */
            ck_assert_msg(ei < 0.05, "%s: int8 plan vs fake-quant: %g", prims[k]->name, ei);
            free(yi);
        }
    free(yf);
    free(x);
    dlas_tensor_free(&in);
    dlas_tensor_free(&ref);
    dlas_graph_free(g);
}
END_TEST

/* A conv whose bias the int32 accumulator cannot hold: with its input
 * scale at 1e-9, c1's bias of ~0.1 is ~1e10 units of s_in * step, over the
 * 2^29 that a uint8 output adds in int32. The layer used to clamp it to
 * 2^29 in silence (a pruned network's nearly dead channel, calibrated to a
 * tiny range, was 0.05 off end to end: check_plan_random's compressed graph
 * 692). dlas_int8_layer_init now refuses a uint8 output there, and the plan
 * has c1 hand f32 on, adding the bias in float: the network matches the
 * fake-quantised reference. */
START_TEST(test_bias_over_the_accumulator)
{
    host_setup(7);
    struct dlas_graph *g = quantised_net();
    struct dlas_node *c1 = dlas_graph_node(g, dlas_graph_find(g, "c1"));
    dlas_f32(&c1->input_quant)[0] = 1e-9f;
    ck_assert(!dlas_int8_bias_fits(dlas_f32(&c1->bias), 16, 1e-9f, dlas_f32(&c1->weight_scale)));
    ck_assert(dlas_int8_bias_fits(dlas_f32(&c1->bias), 16, 4.0f / 255, dlas_f32(&c1->weight_scale)));
    /* the layer alone, asked for a uint8 output */
    struct dlas_conv_desc d = {.batch = 1, .in_c = 3, .in_h = 12, .in_w = 12, .out_c = 16, .kh = 3,
                               .kw = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                               .dil_h = 1, .dil_w = 1, .groups = 1, .has_bias = 1};
    dlas_conv_desc_finish(&d);
    struct dlas_conv_quant q = {sizeof q, {1e-9f, 128}, dlas_f32(&c1->weight_scale), 1,
                                {3.0f / 255, 0}};
    struct dlas_int8_layer L;
    ck_assert_int_eq(dlas_int8_layer_init(&L, &d, dlas_f32(&c1->weight), dlas_f32(&c1->bias), &q),
                     DLAS_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(dlas_last_error(), "2^29") != NULL, "%s", dlas_last_error());
    /* through the plan */
    float *x = normal_input(2 * 3 * 12 * 12, 3);
    const int64_t batch = 2;
    const char *prec[64];
    float *yf = run_plan(g, "im2col-gemm", 1, x, batch, NULL);
    for (int k = 0; k < n_prims; k++) {
        float *yi = run_plan(g, prims[k]->name, 2, x, batch, prec);
        ck_assert_str_eq(prec[dlas_graph_find(g, "c1")], "int8 f32>f32");
        ck_assert_str_eq(prec[dlas_graph_find(g, "c2")], "int8 f32>f32");
        const double e = dlas_rel_error(yi, yf, batch * 5);
        ck_assert_msg(e < 0.05, "%s: int8 plan vs fake-quant: %g", prims[k]->name, e);
        free(yi);
    }
    free(yf);
    free(x);
    dlas_graph_free(g);
}
END_TEST

int main(void)
{
    reg = dlas_test_registry("check_int8");
    if (!reg)
        return 1;
    for (size_t i = 0; i < dlas_registry_count(reg) && n_prims < 8; i++) {
        const struct dlas_component *c = dlas_registry_at(reg, i, NULL, NULL);
        if (c->kind == DLAS_KIND_PRIMITIVE && dlas_prim_runs_int8(c->ops))
            prims[n_prims++] = c;
    }
    fprintf(stderr, "check_int8: %d int8 primitive(s)\n", n_prims);
    if (!n_prims) {
        fprintf(stderr, "check_int8: no int8 primitive found\n");
        return 1;
    }
    char why[256] = "";
    if (!dlas_test_int8_runs(prims[0], why, sizeof why)) {
        fprintf(stderr, "check_int8: SKIP: %s\n", why);
        dlas_registry_free(reg);
        return 77;
    }
    Suite *s = suite_create("int8");
    TCase *tc = dlas_test_case(s, "primitives", NULL, NULL, 120);
    tcase_add_loop_test(tc, test_int8_primitive, 0, n_prims);
    tcase_add_loop_test(tc, test_refuses_fp32, 0, n_prims);
    tcase_add_loop_test(tc, test_int8_knobs, 0, n_prims);
    tc = dlas_test_case(s, "plan", NULL, NULL, 120);
    tcase_add_test(tc, test_plan);
    tcase_add_test(tc, test_bias_over_the_accumulator);
    int rc = dlas_test_run(s);
    dlas_registry_free(reg);
    return rc;
}
