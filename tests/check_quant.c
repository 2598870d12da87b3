/* Int8 quantisation: the arithmetic of <dlas/quant.h>, the calibration rules
 * of quant-int8 on constructed distributions whose answer is known, the
 * compressor on a small network (batchnorm folded, weights on their grid,
 * ranges), the fake-quantised reference forward, and the quantisation data
 * through a checkpoint (including a hostile one). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlas/checkpoint.h>
#include <dlas/dlas.h>
#include <dlas/quant.h>

#include "../compressors/quant-int8/calib.h"
#include "testutil.h"

static struct dlas_registry *reg;
static struct dlas_host host;
static struct dlas_rng host_rng;

static void host_setup(uint64_t seed)
{
    dlas_test_host(&host, &host_rng, seed, -1);
}

/* ---- arithmetic ---------------------------------------------------------------- */

START_TEST(test_weight_grid)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, 11);
    enum { OC = 7, PER = 37 };
    float w[OC * PER], orig[OC * PER], step[OC];
    for (int i = 0; i < OC * PER; i++)
        w[i] = orig[i] = dlas_rng_normal(&r) * (float)(1 + i / PER);
    for (int k = 0; k < PER; k++)
        w[3 * PER + k] = orig[3 * PER + k] = 0.0f; /* an all-zero (pruned) filter */
    dlas_weight_steps(w, OC, PER, step);
    dlas_weight_round(w, OC, PER, step);
    for (int o = 0; o < OC; o++) {
        ck_assert(step[o] > 0.0f);
        for (int k = 0; k < PER; k++) {
            float d = fabsf(w[o * PER + k] - orig[o * PER + k]);
            /* within half a step (and the float rounding of step * q) */
            ck_assert_msg(d <= 0.5f * step[o] * (1.0f + 1e-5f), "w[%d][%d]: %g from %g, step %g",
                          o, k, (double)w[o * PER + k], (double)orig[o * PER + k],
                          (double)step[o]);
            float q = rintf(w[o * PER + k] / step[o]);
            ck_assert(fabsf(q) <= 127.0f);
            ck_assert_float_eq(w[o * PER + k], step[o] * q); /* exactly on the grid */
        }
    }
    /* the extreme of each filter maps to +-127 */
    for (int o = 0; o < OC; o++) {
        if (o == 3)
            continue;
        float m = 0;
        for (int k = 0; k < PER; k++)
            m = fmaxf(m, fabsf(w[o * PER + k]));
        ck_assert_float_eq_tol(m / step[o], 127.0f, 1e-3f);
    }
}
END_TEST

START_TEST(test_act_quant)
{
    struct dlas_act_quant q;
    ck_assert_int_eq(dlas_act_quant_from_range(-1.0f, 3.0f, &q), 0);
    ck_assert_float_eq_tol(q.scale, 4.0f / 255.0f, 1e-7f);
    ck_assert_int_eq(q.zero_point, 64); /* rint(1 / (4/255)) = rint(63.75) */
    /* ranges are widened to contain 0, so 0 is exact */
    ck_assert_int_eq(dlas_act_quant_from_range(2.0f, 5.0f, &q), 0);
    ck_assert_int_eq(q.zero_point, 0);
    ck_assert_float_eq_tol(q.scale, 5.0f / 255.0f, 1e-7f);
    ck_assert_int_eq(dlas_act_quant_from_range(-4.0f, -1.0f, &q), 0);
    ck_assert_int_eq(q.zero_point, 255);
    ck_assert_int_ne(dlas_act_quant_from_range(NAN, 1.0f, &q), 0);
    ck_assert_int_ne(dlas_act_quant_from_range(0.0f, INFINITY, &q), 0);
    /* round trip within half a step inside the range; saturation outside */
    dlas_act_quant_from_range(-1.0f, 3.0f, &q);
    float x[6] = {-1.0f, 0.0f, 0.7f, 3.0f, 100.0f, -100.0f}, y[6];
    uint8_t u[6];
    dlas_quantize_u8(x, 6, &q, u);
    ck_assert_int_eq(u[1], 64);
    ck_assert_int_eq(u[4], 255);
    ck_assert_int_eq(u[5], 0);
    dlas_fake_quant(x, 6, &q, y);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabsf(y[i] - x[i]) <= 0.5f * q.scale + 1e-6f, "%g -> %g", (double)x[i],
                      (double)y[i]);
    ck_assert_float_eq(y[1], 0.0f);
    float nan = NAN;
    dlas_quantize_u8(&nan, 1, &q, u);
    ck_assert_int_eq(u[0], 64);
}
END_TEST

START_TEST(test_requant)
{
    static const double ms[] = {0.3, 1e-4, 0.999999, 1.0, 7.5, 3.0e-9};
    struct dlas_rng r;
    dlas_rng_seed(&r, 5);
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        int32_t mult;
        int shift;
        ck_assert_int_eq(dlas_requant_multiplier(ms[i], &mult, &shift), 0);
        ck_assert(mult >= (1 << 30));
        ck_assert(shift >= 1 && shift <= 62);
        long double exact = (long double)mult / powl(2.0L, shift);
        ck_assert_msg(fabsl(exact - ms[i]) <= ms[i] * 1e-9L, "m %g", ms[i]);
        for (int k = 0; k < 2000; k++) {
            int32_t acc = (int32_t)dlas_rng_below(&r, 1u << 30) - (1 << 29);
            if (k < 4)
                acc = (int32_t[]){0, 1, -1, (1 << 29) - 1}[k];
            /* half up: floor(acc * m + 1/2) with m the multiplier's exact value */
            long double want = floorl((long double)acc * exact + 0.5L);
            if (want > INT32_MAX)
                want = INT32_MAX;
            if (want < INT32_MIN)
                want = INT32_MIN;
            ck_assert_int_eq(dlas_requant(acc, mult, shift), (int64_t)want);
        }
    }
    int32_t mult;
    int shift;
    ck_assert_int_ne(dlas_requant_multiplier(0.0, &mult, &shift), 0);
    ck_assert_int_ne(dlas_requant_multiplier(1e12, &mult, &shift), 0);
}
END_TEST

/* ---- calibration on constructed distributions ----------------------------------- */

/* 100000 values and 10 outliers at +-50: uniform in [0, 1] (a flat bulk) or
 * half-normal with sigma 1 (the shape of a relu's output), on one side or
 * both (sign). */
static float *skewed(int64_t *n, int sign, int normal)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, 99);
    *n = 100010;
    float *x = malloc((size_t)*n * sizeof *x);
    for (int64_t i = 0; i < 100000; i++)
        x[i] = (normal ? fabsf(dlas_rng_normal(&r)) : (float)dlas_rng_uniform(&r)) *
               (sign && (i & 1) ? -1.0f : 1.0f);
    for (int64_t i = 100000; i < *n; i++)
        x[i] = sign && (i & 1) ? -50.0f : 50.0f;
    return x;
}

static void calibrate(const float *x, int64_t n, enum calib_method m, double pct, float *lo,
                      float *hi)
{
    struct calib c;
    calib_init(&c);
    /* in two halves, as batches arrive */
    calib_observe_range(&c, x, n / 2);
    calib_observe_range(&c, x + n / 2, n - n / 2);
    calib_begin_hist(&c, m);
    calib_observe_hist(&c, x, n / 2);
    calib_observe_hist(&c, x + n / 2, n - n / 2);
    calib_range(&c, m, pct, lo, hi);
}

START_TEST(test_calib_unsigned)
{
    int64_t n;
    float *x = skewed(&n, 0, 0), lo, hi;
    calibrate(x, n, CALIB_MINMAX, 0, &lo, &hi);
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_float_eq(hi, 50.0f);
    /* 99.9% of the values are below ~0.999: within a bin (50/2048) of it */
    calibrate(x, n, CALIB_PERCENTILE, 99.9, &lo, &hi);
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_msg(fabsf(hi - 0.9991f) < 0.03f, "percentile: hi %g", (double)hi);
    /* KL compares shapes: a flat bulk loses nothing when its bins merge,
     * so keeping the outliers costs nothing and the threshold stays at 50 */
    calibrate(x, n, CALIB_ENTROPY, 0, &lo, &hi);
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_msg(hi > 45.0f, "entropy, flat bulk: hi %g", (double)hi);
    free(x);
    /* a half-normal bulk loses its shape when 50 / 255 wide levels cover
     * it: KL clips the outliers, at a few sigma (TensorRT's behaviour) */
    x = skewed(&n, 0, 1);
    calibrate(x, n, CALIB_ENTROPY, 0, &lo, &hi);
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_msg(hi > 2.5f && hi < 8.0f, "entropy, half-normal bulk: hi %g", (double)hi);
    calibrate(x, n, CALIB_PERCENTILE, 99.0, &lo, &hi);
    ck_assert_msg(fabsf(hi - 2.576f) < 0.05f, "percentile 99 of a half-normal: hi %g", (double)hi);
    /* a relu's output: half exact zeros, half a half-normal, no outliers
     * (max ~4.4). The zeros are exact on any grid and must not drive the
     * threshold down to the smallest tried (max / 8) */
    for (int64_t i = 0; i < n; i += 2)
        x[i] = 0.0f;
    for (int64_t i = 100000; i < n; i++)
        x[i] = 0.0f;
    calibrate(x, n, CALIB_ENTROPY, 0, &lo, &hi);
    ck_assert_msg(hi > 2.0f, "entropy, relu output: hi %g clips the bulk", (double)hi);
    free(x);
}
END_TEST

START_TEST(test_calib_signed)
{
    int64_t n;
    float *x = skewed(&n, 1, 0), lo, hi;
    calibrate(x, n, CALIB_MINMAX, 0, &lo, &hi);
    ck_assert_float_eq(lo, -50.0f);
    ck_assert_float_eq(hi, 50.0f);
    calibrate(x, n, CALIB_PERCENTILE, 99.9, &lo, &hi);
    ck_assert_msg(fabsf(hi - 0.998f) < 0.06f && fabsf(lo + 0.998f) < 0.06f,
                  "percentile: [%g, %g]", (double)lo, (double)hi);
    free(x);
    x = skewed(&n, 1, 1);
    calibrate(x, n, CALIB_ENTROPY, 0, &lo, &hi);
    ck_assert_msg(hi > 2.5f && hi < 8.0f && lo < -2.5f && lo > -8.0f, "entropy: [%g, %g]",
                  (double)lo, (double)hi);
    free(x);
}
END_TEST

START_TEST(test_kl_uniform)
{
    /* a histogram with no tail: nothing to clip, the threshold is the end */
    int64_t h[1024];
    for (int i = 0; i < 1024; i++)
        h[i] = 100;
    ck_assert_int_eq(calib_kl_threshold(h, 1024, 128), 1024);
}
END_TEST

/* ---- the compressor on a small network -------------------------------------------- */

static struct dlas_graph *small_net(void)
{
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "x", 3, 10, 10);
    struct dlas_conv_attr a = dlas_conv(8, 3, 1, 1);
    int c1 = dlas_graph_conv2d(g, "c1", x, &a);
    int b1 = dlas_graph_batchnorm(g, "b1", c1, 1e-5f);
    int r1 = dlas_graph_relu(g, "r1", b1);
    struct dlas_conv_attr a2 = dlas_conv(16, 3, 2, 1);
    int c2 = dlas_graph_conv2d(g, "c2", r1, &a2);
    int b2 = dlas_graph_batchnorm(g, "b2", c2, 1e-5f);
    int r2 = dlas_graph_relu(g, "r2", b2);
    struct dlas_conv_attr a3 = dlas_conv(16, 1, 1, 0);
    int c3 = dlas_graph_conv2d(g, "c3", r2, &a3); /* reads r2 like c4: one tensor */
    struct dlas_conv_attr a4 = dlas_conv(16, 3, 1, 1);
    int c4 = dlas_graph_conv2d(g, "c4", r2, &a4);
    int s = dlas_graph_add(g, "sum", c3, c4);
    int gp = dlas_graph_global_avgpool(g, "gap", s);
    int f = dlas_graph_flatten(g, "flat", gp);
    dlas_graph_linear(g, "fc", f, 5, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 3);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    /* batchnorms away from identity, so folding shows */
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        struct dlas_node *n = dlas_graph_node(g, id);
        if (n->op != DLAS_OP_BATCHNORM)
            continue;
        for (int64_t c = 0; c < n->out_shape[0]; c++) {
            dlas_f32(&n->weight)[c] = 0.5f + (float)dlas_rng_uniform(&r);
            dlas_f32(&n->bias)[c] = 0.2f * dlas_rng_normal(&r);
            dlas_f32(&n->running_mean)[c] = 0.1f * dlas_rng_normal(&r);
            dlas_f32(&n->running_var)[c] = 0.5f + (float)dlas_rng_uniform(&r);
        }
    }
    return g;
}

/* The compressor's defaults (the first conv kept fp32), 2 batches of
 * Gaussian inputs. */
static void apply_quant(struct dlas_graph *g, const char *calibration)
{
    dlas_test_quantise(reg, &host, g, calibration, 2, 1, 0);
}

START_TEST(test_compressor)
{
    host_setup(21);
    struct dlas_graph *g = small_net(), *orig = dlas_graph_clone(g);
    struct dlas_tensor in = {0}, y0 = {0}, y1 = {0};
    int64_t dims[4] = {2, 3, 10, 10};
    ck_assert_int_eq(dlas_tensor_alloc(&in, DLAS_F32, 4, dims), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 8);
    dlas_test_fill_normal(&in, &r);
    ck_assert_int_eq(dlas_graph_forward_ref(orig, &in, &y0), 0);

    apply_quant(g, "minmax");
    /* both batchnorms folded */
    ck_assert_int_eq(dlas_graph_n_nodes(g), dlas_graph_n_nodes(orig) - 2);
    ck_assert_int_lt(dlas_graph_find(g, "b1"), 0);
    ck_assert_int_lt(dlas_graph_find(g, "b2"), 0);
    /* the first conv stays fp32 (skip_first), the others are int8 */
    ck_assert(!dlas_node_is_quantised(dlas_graph_node(g, dlas_graph_find(g, "c1"))));
    const char *names[] = {"c2", "c3", "c4"};
    struct dlas_act_quant q[3];
    for (int k = 0; k < 3; k++) {
        struct dlas_node *n = dlas_graph_node(g, dlas_graph_find(g, names[k]));
        ck_assert_msg(dlas_node_is_quantised(n), "%s not quantised", names[k]);
        ck_assert_int_eq(dlas_node_input_quant(n, &q[k]), 0);
        /* every input is a relu output: zero point 0 */
        ck_assert_int_eq(q[k].zero_point, 0);
        const float *w = dlas_f32(&n->weight), *st = dlas_f32(&n->weight_scale);
        int64_t oc = n->attr.conv.out_channels, per = dlas_tensor_numel(&n->weight) / oc;
        for (int64_t o = 0; o < oc; o++)
            for (int64_t i = 0; i < per; i++)
                ck_assert_float_eq(w[o * per + i], st[o] * rintf(w[o * per + i] / st[o]));
    }
    /* c3 and c4 read one tensor, so they share its parameters */
    ck_assert_float_eq(q[1].scale, q[2].scale);
    /* the folded, quantised network stays close to the original */
    ck_assert_int_eq(dlas_graph_forward_ref(g, &in, &y1), 0);
    double err = dlas_rel_error(dlas_f32(&y1), dlas_f32(&y0), dlas_tensor_numel(&y0));
    ck_assert_msg(err < 0.05, "quantised forward off by %g", err);
    ck_assert_msg(err > 0.0, "the reference forward ignores the quantisation");
    dlas_tensor_free(&y1);

    /* the minmax range of c2's input is what the calibration saw: rerun on
     * a fresh copy with entropy, whose range can only be narrower */
    struct dlas_graph *g2 = dlas_graph_clone(orig);
    apply_quant(g2, "entropy");
    struct dlas_act_quant qe;
    ck_assert_int_eq(dlas_node_input_quant(dlas_graph_node(g2, dlas_graph_find(g2, "c2")), &qe), 0);
    ck_assert(qe.scale <= q[0].scale * 1.0001f);
    dlas_graph_free(g2);
    dlas_tensor_free(&in);
    dlas_tensor_free(&y0);
    dlas_graph_free(orig);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_ref_fake_quant)
{
    /* one quantised conv: the reference forward is the conv of the
     * fake-quantised input */
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "x", 4, 6, 5);
    struct dlas_conv_attr a = dlas_conv(3, 3, 1, 1);
    a.bias = 1;
    dlas_graph_conv2d(g, "c", x, &a);
    struct dlas_rng r;
    dlas_rng_seed(&r, 4);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    struct dlas_node *n = dlas_graph_node(g, 1);
    float step[3];
    dlas_weight_steps(dlas_f32(&n->weight), 3, 36, step);
    dlas_weight_round(dlas_f32(&n->weight), 3, 36, step);
    struct dlas_act_quant q = {0.05f, 20};
    ck_assert_int_eq(dlas_node_set_quant(n, step, &q), 0);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    int64_t dims[4] = {1, 4, 6, 5};
    struct dlas_tensor in = {0}, y = {0};
    dlas_tensor_alloc(&in, DLAS_F32, 4, dims);
    for (int i = 0; i < 120; i++)
        dlas_f32(&in)[i] = 2.0f * dlas_rng_normal(&r);
    ck_assert_int_eq(dlas_graph_forward_ref(g, &in, &y), 0);
    float fq[120], want[3 * 30];
    dlas_fake_quant(dlas_f32(&in), 120, &q, fq);
    struct dlas_conv_desc d = {.batch = 1, .in_c = 4, .in_h = 6, .in_w = 5, .out_c = 3, .kh = 3,
                               .kw = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                               .dil_h = 1, .dil_w = 1, .groups = 1, .has_bias = 1};
    dlas_conv_desc_finish(&d);
    dlas_ref_conv2d(&d, 1, fq, dlas_f32(&n->weight), dlas_f32(&n->bias), want);
    for (int i = 0; i < 90; i++)
        ck_assert_float_eq(dlas_f32(&y)[i], want[i]);
    /* malformed parameters are refused by validation */
    dlas_f32(&n->input_quant)[1] = 300.0f;
    ck_assert_int_ne(dlas_graph_validate(g), 0);
    dlas_f32(&n->input_quant)[1] = 20.0f;
    dlas_f32(&n->weight_scale)[1] = -1.0f;
    ck_assert_int_ne(dlas_graph_validate(g), 0);
    dlas_tensor_free(&in);
    dlas_tensor_free(&y);
    dlas_graph_free(g);
}
END_TEST

/* ---- checkpoints ------------------------------------------------------------------- */

START_TEST(test_checkpoint)
{
    host_setup(2);
    struct dlas_graph *g = small_net();
    apply_quant(g, "percentile");
    char path[] = "tests/tmp_quant_XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    ck_assert_int_eq(dlas_checkpoint_save_graph(g, path), 0);
    /* into the network as freshly built and folded (no quantisation yet) */
    struct dlas_graph *h = dlas_graph_clone(g);
    for (int id = 0; id < dlas_graph_n_nodes(h); id++)
        dlas_node_clear_quant(dlas_graph_node(h, id));
    ck_assert_int_eq(dlas_checkpoint_load_graph(h, path, DLAS_CKPT_STRICT), 0);
    int seen = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        struct dlas_node *a = dlas_graph_node(g, id), *b = dlas_graph_node(h, id);
        ck_assert_int_eq(dlas_node_is_quantised(a), dlas_node_is_quantised(b));
        if (!dlas_node_is_quantised(a))
            continue;
        seen++;
        ck_assert(!memcmp(a->weight_scale.data, b->weight_scale.data,
                          dlas_tensor_bytes(&a->weight_scale)));
        ck_assert(!memcmp(a->input_quant.data, b->input_quant.data, 8));
        ck_assert(!memcmp(a->weight.data, b->weight.data, dlas_tensor_bytes(&a->weight)));
    }
    ck_assert_int_eq(seen, 3);
    ck_assert_int_eq(dlas_graph_validate(h), 0);
    dlas_graph_free(h);

    /* a file whose zero point is out of range is refused, the graph untouched */
    struct dlas_ckpt *c;
    ck_assert_int_eq(dlas_ckpt_open(path, &c), 0);
    struct dlas_ckpt_writer *w;
    char bad[sizeof path + 8];
    snprintf(bad, sizeof bad, "%s.bad", path);
    ck_assert_int_eq(dlas_ckpt_writer_open(bad, &w), 0);
    for (size_t i = 0; i < dlas_ckpt_count(c); i++) {
        const struct dlas_ckpt_entry *e = dlas_ckpt_entry_at(c, i);
        void *buf = malloc(e->nbytes);
        ck_assert_int_eq(dlas_ckpt_read(c, e, buf, e->nbytes), 0);
        if (!strcmp(e->name, "c2.input_quant"))
            ((float *)buf)[1] = 256.0f;
        ck_assert_int_eq(dlas_ckpt_writer_add(w, e->name, e->dtype, e->ndim, e->dims, buf), 0);
        free(buf);
    }
    dlas_ckpt_close(c);
    ck_assert_int_eq(dlas_ckpt_writer_commit(w), 0);
    h = dlas_graph_clone(g);
    for (int id = 0; id < dlas_graph_n_nodes(h); id++)
        dlas_node_clear_quant(dlas_graph_node(h, id));
    ck_assert_int_ne(dlas_checkpoint_load_graph(h, bad, DLAS_CKPT_STRICT), 0);
    ck_assert_msg(strstr(dlas_last_error(), "c2.input_quant") != NULL, "%s", dlas_last_error());
    for (int id = 0; id < dlas_graph_n_nodes(h); id++)
        ck_assert(!dlas_node_is_quantised(dlas_graph_node(h, id)));
    dlas_graph_free(h);
    unlink(bad);
    unlink(path);
    dlas_graph_free(g);
}
END_TEST

/* A quantised conv on an fp32 primitive with the residual add fused into
 * it: the plan fake-quantises the conv's input into scratch and must still
 * hand the primitive the residual. It once called the plain run there and
 * dropped the add (quantised graph 15 of check_plan_random, 40% off). The
 * small network's sum = c3 + c4 fuses into c4 on every primitive that takes
 * a residual; each must match the fake-quantised reference. */
START_TEST(test_fake_quant_residual_in_conv)
{
    host_setup(23);
    struct dlas_graph *g = small_net();
    apply_quant(g, "minmax");
    const int64_t batch = 2;
    struct dlas_tensor in = {0}, ref = {0};
    int64_t dims[4] = {batch, 3, 10, 10};
    ck_assert_int_eq(dlas_tensor_alloc(&in, DLAS_F32, 4, dims), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 12);
    dlas_test_fill_normal(&in, &r);
    ck_assert_int_eq(dlas_graph_forward_ref(g, &in, &ref), 0);
    const struct dlas_component *bc = dlas_registry_find(reg, DLAS_KIND_BACKEND, "openmp");
    const struct dlas_component *fb = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, "im2col-gemm");
    ck_assert(bc && fb);
    struct dlas_backend be = {bc->ops, NULL};
    ck_assert_int_eq(be.ops->init(&host, NULL, &be.ctx), 0);
    struct dlas_primitive_choice fch = {"im2col-gemm", fb, NULL};
    const int sum = dlas_graph_find(g, "sum"), c4 = dlas_graph_find(g, "c4");
    int fused = 0;
    for (size_t i = 0; i < dlas_registry_count(reg); i++) {
        const struct dlas_component *c = dlas_registry_at(reg, i, NULL, NULL);
        if (c->kind != DLAS_KIND_PRIMITIVE || !dlas_prim_runs_residual(c->ops) ||
            dlas_prim_runs_int8(c->ops))
            continue;
        struct dlas_primitive_choice ch = {c->name, c, NULL};
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        struct dlas_plan *p = NULL;
        ck_assert_msg(dlas_plan_create_ex(g, &host, &be, &ch, 1, &fch, batch, &po, &p) == 0,
                      "%s: %s", c->name, dlas_last_error());
        if (strcmp(dlas_plan_binding(p, c4), c->name) || dlas_plan_fused_into(p, sum) != c4) {
            dlas_plan_free(p); /* the primitive does not take c4, or keeps the add apart */
            continue;
        }
        ck_assert_str_eq(dlas_plan_precision(p, c4), "int8-fake");
        float *y = malloc((size_t)dlas_tensor_numel(&ref) * sizeof *y);
        ck_assert_int_eq(dlas_plan_run(p, batch, dlas_f32(&in), y), 0);
        const double e = dlas_rel_error(y, dlas_f32(&ref), dlas_tensor_numel(&ref));
        ck_assert_msg(e < 1e-5, "%s: the add fused into a fake-quantised conv: rel. error %g",
                      c->name, e);
        fused++;
        free(y);
        dlas_plan_free(p);
    }
    ck_assert_msg(fused >= 2, "only %d primitives ran the add inside c4", fused);
    be.ops->release(be.ctx);
    dlas_tensor_free(&in);
    dlas_tensor_free(&ref);
    dlas_graph_free(g);
}
END_TEST

int main(void)
{
    reg = dlas_test_registry("check_quant");
    if (!reg)
        return 1;
    Suite *s = suite_create("quant");
    TCase *tc = dlas_test_case(s, "arithmetic", NULL, NULL, 0);
    tcase_add_test(tc, test_weight_grid);
    tcase_add_test(tc, test_act_quant);
    tcase_add_test(tc, test_requant);
    tc = dlas_test_case(s, "calibration", NULL, NULL, 0);
    tcase_add_test(tc, test_calib_unsigned);
    tcase_add_test(tc, test_calib_signed);
    tcase_add_test(tc, test_kl_uniform);
    tc = dlas_test_case(s, "graph", NULL, NULL, 60);
    tcase_add_test(tc, test_compressor);
    tcase_add_test(tc, test_ref_fake_quant);
    tcase_add_test(tc, test_fake_quant_residual_in_conv);
    tcase_add_test(tc, test_checkpoint);
    int rc = dlas_test_run(s);
    dlas_registry_free(reg);
    return rc;
}
