/* Fisher saliency (<dlas/saliency.h>) against a hand computation and
 * against finite differences of the loss, accumulated through the trainer's
 * hooks; and the measured latency a compressor gets (ABI 1.3). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Two samples, two channels, two positions:
 *   sample 0: a = [1 2 | 3 4],  g = [1 1 | 0 -1]
 *   sample 1: a = [5 6 | 7 8],  g = [0.5 0 | 1 1]
 * channel 0: s_0 = 1+2 = 3, s_1 = 2.5   -> (9 + 6.25) / 4 = 3.8125
 * channel 1: s_0 = 0-4 = -4, s_1 = 15  -> (16 + 225) / 4 = 60.25 */
START_TEST(fisher_by_hand)
{
    const float a[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float g[] = {1, 1, 0, -1, 0.5f, 0, 1, 1};
    double d[2] = {1.0, 0.0};
    dlas_fisher_batch(a, g, 2, 2, 2, d);
    ck_assert_double_eq_tol(d[0], 1.0 + 3.8125, 1e-12); /* added, not stored */
    ck_assert_double_eq_tol(d[1], 60.25, 1e-12);
}
END_TEST

static void fill(float *x, int64_t n, struct dlas_rng *r, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * dlas_rng_uniform(r));
}

/* conv(+bias) -> relu (scored) -> conv -> global pool -> linear. Without
 * batchnorm each sample's loss depends on that sample alone. */
static struct dlas_graph *net_ex(uint64_t seed, int tied)
{
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_conv_attr c1 = dlas_conv(4, 3, 1, 1), c2 = dlas_conv(5, 3, 1, 1);
    c1.bias = 1;
    int in = dlas_graph_input(g, "in", 2, 6, 6);
    int x = dlas_graph_conv2d(g, "conv1", in, &c1);
    x = dlas_graph_relu(g, "relu1", x);
    if (tied) { /* a second branch added channel by channel: tied to the first */
        int y = dlas_graph_conv2d(g, "conv1b", in, &c1);
        y = dlas_graph_relu(g, "relu1b", y);
        x = dlas_graph_add(g, "sum", x, y);
    }
    x = dlas_graph_conv2d(g, "conv2", x, &c2);
    x = dlas_graph_relu(g, "relu2", x);
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flat", x);
    dlas_graph_linear(g, "fc", x, 3, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    struct dlas_node *n = dlas_graph_node(g, dlas_graph_find(g, "conv1"));
    fill(dlas_f32(&n->bias), 4, &r, -0.2, 0.3);
    if (tied) {
        n = dlas_graph_node(g, dlas_graph_find(g, "conv1b"));
        fill(dlas_f32(&n->bias), 4, &r, -0.2, 0.3);
    }
    return g;
}
static struct dlas_graph *net(uint64_t seed) { return net_ex(seed, 0); }

/* Cross-entropy of each sample of the reference forward, in double. */
static void sample_losses(const struct dlas_graph *g, const float *x, const int32_t *y, int n,
                          double *loss)
{
    struct dlas_tensor in = {0}, out = {0};
    in.dtype = DLAS_F32;
    in.ndim = 4;
    in.dims[0] = n, in.dims[1] = 2, in.dims[2] = 6, in.dims[3] = 6;
    in.data = (void *)x;
    ck_assert_int_eq(dlas_graph_forward_ref(g, &in, &out), 0);
    const float *o = dlas_f32(&out);
    for (int b = 0; b < n; b++) {
        double m = o[b * 3], s = 0;
        for (int k = 1; k < 3; k++)
            m = fmax(m, o[b * 3 + k]);
        for (int k = 0; k < 3; k++)
            s += exp(o[b * 3 + k] - m);
        loss[b] = m + log(s) - o[b * 3 + y[b]];
    }
    dlas_tensor_free(&out);
}

/* sum_{h,w} a g of sample n is the derivative of its loss with respect to a
 * factor on the channel: conv1's channel k scaled by (1 + e) scales relu1's
 * channel k by (1 + e). The batch-mean loss's gradient is 1/N of it. */
START_TEST(fisher_matches_finite_differences)
{
    enum { N = 4, C = 4 };
    struct dlas_graph *g = net(5);
    struct dlas_rng r;
    dlas_rng_seed(&r, 11);
    float x[N * 2 * 36];
    int32_t y[N] = {0, 2, 1, 2};
    fill(x, N * 2 * 36, &r, -1, 1);

    struct dlas_autograd *a;
    ck_assert_int_eq(dlas_autograd_new(g, N, 1, &a), 0);
    ck_assert_int_eq(dlas_autograd_forward(a, N, x, DLAS_AG_TRAIN), 0);
    int lid = dlas_autograd_logits_node(a);
    dlas_loss_xent(dlas_autograd_act(a, lid), y, N, 3, 0.0, dlas_autograd_grad(a, lid), 1.0);
    ck_assert_int_eq(dlas_autograd_backward(a), 0);
    const char *names[] = {"relu1"};
    struct dlas_fisher *f;
    ck_assert_int_eq(dlas_fisher_new(g, names, 1, &f), 0);
    ck_assert_int_eq(dlas_fisher_accumulate(f, a), 0);
    int64_t ch;
    const double *delta = dlas_fisher_saliency(f, 0, &ch);
    ck_assert_int_eq(ch, C);
    ck_assert_int_eq(dlas_fisher_batches(f), 1);

    struct dlas_node *c1 = dlas_graph_node(g, dlas_graph_find(g, "conv1"));
    const int64_t per = dlas_tensor_numel(&c1->weight) / C;
    const double e = 1e-3;
    int nonzero = 0;
    for (int k = 0; k < C; k++) {
        double lp[N], lm[N], want = 0;
        float *w = dlas_f32(&c1->weight) + k * per, *bias = dlas_f32(&c1->bias) + k;
        float w0[64], b0 = *bias;
        memcpy(w0, w, (size_t)per * sizeof *w);
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            for (int64_t i = 0; i < per; i++)
                w[i] = (float)(w0[i] * (1.0 + sgn * e));
            *bias = (float)(b0 * (1.0 + sgn * e));
            sample_losses(g, x, y, N, sgn > 0 ? lp : lm);
        }
        memcpy(w, w0, (size_t)per * sizeof *w);
        *bias = b0;
        for (int n = 0; n < N; n++) {
            double d = (lp[n] - lm[n]) / (2 * e) / N; /* d(mean loss)/d(factor), sample n */
            want += d * d;
        }
        want /= 2.0 * N;
        nonzero += want > 1e-8;
        ck_assert_msg(fabs(delta[k] - want) <= 2e-2 * want + 1e-7,
                      "channel %d: Delta %.8g, finite differences %.8g", k, delta[k], want);
    }
    ck_assert_int_ge(nonzero, 2); /* the comparison was not 0 == 0 */

    /* a second batch adds; reset clears */
    ck_assert_int_eq(dlas_autograd_forward(a, N, x, DLAS_AG_TRAIN), 0);
    dlas_loss_xent(dlas_autograd_act(a, lid), y, N, 3, 0.0, dlas_autograd_grad(a, lid), 1.0);
    ck_assert_int_eq(dlas_autograd_backward(a), 0);
    double before = delta[0];
    ck_assert_int_eq(dlas_fisher_accumulate(f, a), 0);
    delta = dlas_fisher_saliency(f, 0, &ch);
    ck_assert_double_eq_tol(delta[0], 2 * before, 1e-9 * before + 1e-15);
    ck_assert_int_eq(dlas_fisher_batches(f), 2);
    dlas_fisher_reset(f);
    delta = dlas_fisher_saliency(f, 0, &ch);
    ck_assert(delta[0] == 0.0 && dlas_fisher_batches(f) == 0);

    /* after pruning a channel the node's sums start again at its new size */
    uint8_t keep[C] = {1, 0, 1, 1};
    ck_assert_int_eq(dlas_graph_prune_channels(g, dlas_graph_find(g, "conv1"), keep), 0);
    ck_assert_int_eq(dlas_autograd_forward(a, N, x, DLAS_AG_TRAIN), 0);
    lid = dlas_autograd_logits_node(a);
    dlas_loss_xent(dlas_autograd_act(a, lid), y, N, 3, 0.0, dlas_autograd_grad(a, lid), 1.0);
    ck_assert_int_eq(dlas_autograd_backward(a), 0);
    ck_assert_int_eq(dlas_fisher_accumulate(f, a), 0);
    dlas_fisher_saliency(f, 0, &ch);
    ck_assert_int_eq(ch, C - 1);
    dlas_fisher_free(f);
    dlas_autograd_free(a);
    dlas_graph_free(g);
}
END_TEST

/* Scale channel k of conv1 and conv1b together: the derivative is the sum
 * of both relus' products, squared per sample. */
START_TEST(fisher_tied_matches_finite_differences)
{
    enum { N = 3, C = 4 };
    struct dlas_graph *g = net_ex(8, 1);
    struct dlas_rng r;
    dlas_rng_seed(&r, 12);
    float x[N * 2 * 36];
    int32_t y[N] = {1, 0, 2};
    fill(x, N * 2 * 36, &r, -1, 1);
    struct dlas_autograd *a;
    ck_assert_int_eq(dlas_autograd_new(g, N, 1, &a), 0);
    ck_assert_int_eq(dlas_autograd_forward(a, N, x, DLAS_AG_TRAIN), 0);
    int lid = dlas_autograd_logits_node(a);
    dlas_loss_xent(dlas_autograd_act(a, lid), y, N, 3, 0.0, dlas_autograd_grad(a, lid), 1.0);
    ck_assert_int_eq(dlas_autograd_backward(a), 0);
    const char *names[] = {"relu1", "relu1b", "relu1"};
    const int sizes[] = {2, 1};
    struct dlas_fisher *f;
    ck_assert_int_eq(dlas_fisher_new_tied(g, 2, sizes, names, &f), 0);
    ck_assert_int_eq(dlas_fisher_n_nodes(f), 2);
    ck_assert_int_eq(dlas_fisher_accumulate(f, a), 0);
    int64_t ch;
    const double *delta = dlas_fisher_saliency(f, 0, &ch), *alone = dlas_fisher_saliency(f, 1, &ch);
    ck_assert_int_eq(ch, C);
    struct dlas_node *na = dlas_graph_node(g, dlas_graph_find(g, "conv1"));
    struct dlas_node *nb = dlas_graph_node(g, dlas_graph_find(g, "conv1b"));
    const int64_t per = dlas_tensor_numel(&na->weight) / C;
    const double e = 1e-3;
    int differs = 0;
    for (int k = 0; k < C; k++) {
        double lp[N], lm[N], want = 0;
        float wa[64], wb[64], ba = dlas_f32(&na->bias)[k], bb = dlas_f32(&nb->bias)[k];
        memcpy(wa, dlas_f32(&na->weight) + k * per, (size_t)per * sizeof(float));
        memcpy(wb, dlas_f32(&nb->weight) + k * per, (size_t)per * sizeof(float));
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            for (int64_t i = 0; i < per; i++) {
                dlas_f32(&na->weight)[k * per + i] = (float)(wa[i] * (1.0 + sgn * e));
                dlas_f32(&nb->weight)[k * per + i] = (float)(wb[i] * (1.0 + sgn * e));
            }
            dlas_f32(&na->bias)[k] = (float)(ba * (1.0 + sgn * e));
            dlas_f32(&nb->bias)[k] = (float)(bb * (1.0 + sgn * e));
            sample_losses(g, x, y, N, sgn > 0 ? lp : lm);
        }
        memcpy(dlas_f32(&na->weight) + k * per, wa, (size_t)per * sizeof(float));
        memcpy(dlas_f32(&nb->weight) + k * per, wb, (size_t)per * sizeof(float));
        dlas_f32(&na->bias)[k] = ba;
        dlas_f32(&nb->bias)[k] = bb;
        for (int n = 0; n < N; n++) {
            double d = (lp[n] - lm[n]) / (2 * e) / N;
            want += d * d;
        }
        want /= 2.0 * N;
        ck_assert_msg(fabs(delta[k] - want) <= 2e-2 * want + 1e-7,
                      "channel %d: Delta %.8g, finite differences %.8g", k, delta[k], want);
        differs += fabs(alone[k] - want) > 5e-2 * want;
    }
    ck_assert_int_ge(differs, 1); /* one node alone is not the tied answer */
    dlas_fisher_free(f);
    dlas_autograd_free(a);
    dlas_graph_free(g);
}
END_TEST

START_TEST(fisher_refuses_bad_nodes)
{
    struct dlas_graph *g = net(1);
    struct dlas_fisher *f = NULL;
    const char *bad[] = {"nope"};
    ck_assert_int_eq(dlas_fisher_new(g, bad, 1, &f), DLAS_ERR_INVALID);
    ck_assert_ptr_null(f);
    ck_assert(strstr(dlas_last_error(), "nope"));
    ck_assert_int_eq(dlas_fisher_new(g, NULL, 0, &f), DLAS_ERR_INVALID);
    dlas_graph_free(g);
}
END_TEST

/* ---- through the trainer ------------------------------------------------ */

static struct dlas_registry *reg;
static char tmpdir[256];

static void setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "saliency");
    reg = dlas_test_registry_at("check_saliency", getenv("DLAS_FIXTURES"));
    ck_assert_ptr_nonnull(reg);
}

static void teardown(void)
{
    dlas_registry_free(reg);
    dlas_test_rmtree(tmpdir);
}

struct manual {
    int id;
    double sum[8];
    int calls;
};

/* The same sum computed here, in the hook after the accumulator's. */
static int manual_hook(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    struct manual *m = ctx;
    struct dlas_autograd *a = dlas_trainer_autograd(t);
    const struct dlas_node *n = dlas_graph_node(dlas_trainer_graph(t), m->id);
    const int64_t C = n->out_shape[0], S = n->out_shape[1] * n->out_shape[2];
    const float *x = dlas_autograd_act(a, m->id), *gr = dlas_autograd_grad(a, m->id);
    for (int64_t c = 0; c < C; c++)
        for (int64_t b = 0; b < s->n; b++) {
            double v = 0;
            for (int64_t i = 0; i < S; i++)
                v += (double)x[(b * C + c) * S + i] * gr[(b * C + c) * S + i];
            m->sum[c] += v * v / (2.0 * (double)s->n);
        }
    m->calls++;
    return 0;
}

START_TEST(fisher_through_trainer_hooks)
{
    static const char *const kv[] = {"train_size", "128", "test_size", "32", "channels", "2",
                                     "height", "6", "width", "6", "classes", "3", NULL};
    struct dlas_data_options dopt;
    dlas_data_options_default(&dopt);
    dopt.batch = 16;
    dopt.workers = 1;
    struct dlas_test_data syn;
    struct dlas_data *d = dlas_test_data_open(&syn, reg, "synthetic", kv, &dopt);

    struct dlas_graph *g = net(3);
    struct dlas_train_options o;
    dlas_test_train_options(&o, 16, 0.05);
    o.max_steps = 3;
    struct dlas_trainer *t;
    ck_assert_int_eq(dlas_trainer_new(g, d, &o, &t), 0);
    const char *names[] = {"relu1", "relu2"};
    struct dlas_fisher *f;
    ck_assert_int_eq(dlas_fisher_new(g, names, 2, &f), 0);
    ck_assert_int_eq(dlas_fisher_attach(f, t), 0);
    ck_assert_int_eq(dlas_fisher_attach(f, t), DLAS_ERR_INVALID);
    struct manual m = {dlas_graph_find(g, "relu1"), {0}, 0};
    struct dlas_train_hook h = {sizeof h, &m, NULL, manual_hook, NULL, NULL};
    ck_assert_int_eq(dlas_trainer_add_hook(t, &h), 0);
    ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(m.calls, 3);
    ck_assert_int_eq(dlas_fisher_batches(f), 3);
    int64_t ch;
    const double *s = dlas_fisher_saliency(f, 0, &ch);
    ck_assert_int_eq(ch, 4);
    for (int k = 0; k < 4; k++)
        ck_assert_msg(fabs(s[k] - m.sum[k]) <= 1e-9 * m.sum[k] + 1e-18, "%d: %g vs %g", k, s[k],
                      m.sum[k]);
    dlas_fisher_saliency(f, 1, &ch);
    ck_assert_int_eq(ch, 5);
    ck_assert_str_eq(dlas_fisher_node(f, 1), "relu2");

    /* detached, it sees no more steps (and freeing it leaves no hook behind) */
    dlas_fisher_detach(f);
    ck_assert_int_eq(dlas_trainer_reset(t, &o), 0);
    ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_fisher_batches(f), 3);
    ck_assert_int_eq(m.calls, 6);
    ck_assert_int_eq(dlas_fisher_attach(f, t), 0);
    dlas_fisher_free(f);
    ck_assert_int_eq(dlas_trainer_reset(t, &o), 0);
    ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_trainer_remove_hooks(t, &m), 1);
    dlas_trainer_free(t);
    dlas_graph_free(g);
    dlas_test_data_close(&syn);
}
END_TEST

/* ---- the latency a compressor measures ----------------------------------- */

START_TEST(compressor_measures_latency)
{
    const char *cfg = dlas_test_writef(
        dlas_test_path(tmpdir, "lat.cfg"),
        "experiment = { seeds = [1]; eval_samples = 8; repeat = 3; warmup = 1; batch = 2;\n"
        "  output = { dir = \"%s\"; }; };\n"
        "dataset = { plugin = \"synthetic\"; classes = 4; height = 16; width = 16;\n"
        "  train_size = 64; test_size = 16; };\n"
        "models = { lenet = { plugin = \"lenet5\"; }; };\n"
        "train = { epochs = 0; };\n"
        "compressors = { one = ( { plugin = \"fx-latency\"; } );\n"
        "  best = ( { plugin = \"fx-latency\"; auto = true; } ); };\n"
        "primitives = { im2col = { plugin = \"im2col-gemm\"; };\n"
        "  direct = { plugin = \"direct\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n"
        "sweep = { primitives = [\"direct\"]; };\n",
        dlas_test_path(tmpdir, "results"));
    struct dlas_run_summary sum;
    struct dlas_experiment *e = dlas_test_experiment(cfg, reg, NULL, &sum);
    ck_assert_int_eq(sum.ran, 2);
    ck_assert_int_eq(sum.failed, 0);
    int seen_auto = 0;
    for (size_t i = 0; i < 2; i++) {
        const char *ms = dlas_experiment_result(e, i, "fx_latency_ms");
        const char *b = dlas_experiment_result(e, i, "fx_latency_binding");
        ck_assert_msg(ms && atof(ms) > 0, "point %zu: '%s' (%s)", i, ms ? ms : "",
                      dlas_experiment_result(e, i, "error"));
        ck_assert(atof(dlas_experiment_result(e, i, "fx_latency_min_ms")) <= atof(ms));
        ck_assert_str_eq(dlas_experiment_result(e, i, "fx_latency_runs"), "3");
        ck_assert_str_eq(dlas_experiment_result(e, i, "fx_latency_threads"), "1");
        ck_assert(atof(dlas_experiment_result(e, i, "fx_latency_node_ms")) > 0);
        if (!strncmp(b, "auto:", 5)) {
            seen_auto++;
            /* every conv went to one of the two primitives defined */
            ck_assert_msg(strstr(b, "im2col") || strstr(b, "direct"), "%s", b);
        } else
            ck_assert_msg(!strncmp(b, "direct", 6), "binding '%s'", b);
    }
    ck_assert_int_eq(seen_auto, 1);
    dlas_experiment_free(e);
}
END_TEST

/* Outside an experiment the helper says latency is unavailable. */
START_TEST(latency_unavailable_without_core)
{
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = offsetof(struct dlas_compress_ctx, latency); /* an ABI 1.2 context */
    struct dlas_latency l;
    ck_assert_int_eq(dlas_compress_latency(&ctx, NULL, 0, &l, NULL), DLAS_ERR_UNAVAILABLE);
    ctx.size = sizeof ctx;
    ck_assert_int_eq(dlas_compress_latency(&ctx, NULL, 0, &l, NULL), DLAS_ERR_UNAVAILABLE);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("saliency");
    TCase *tc = dlas_test_case(s, "fisher", NULL, NULL, 0);
    tcase_add_test(tc, fisher_by_hand);
    tcase_add_test(tc, fisher_matches_finite_differences);
    tcase_add_test(tc, fisher_tied_matches_finite_differences);
    tcase_add_test(tc, fisher_refuses_bad_nodes);
    tcase_add_test(tc, latency_unavailable_without_core);
    TCase *tt = dlas_test_case(s, "trainer", setup, teardown, 0);
    tcase_add_test(tt, fisher_through_trainer_hooks);
    tcase_add_test(tt, compressor_measures_latency);
    return s;
}

int main(void) { return dlas_test_run(suite()); }
