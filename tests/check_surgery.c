/* Graph surgery: channel removal with its ties (residual adds, concats,
 * depthwise convs, flatten into linear), channel groups and block
 * replacement.
 *
 * The numerical oracle: if every weight that reads a channel is zero, the
 * channel cannot affect the output, so removing it must leave the reference
 * forward's output unchanged. Each test zeroes exactly the consumers' weights
 * it expects the rewrite to remove, by hand, and compares. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

static struct dlas_graph *new_graph(void)
{
    struct dlas_graph *g = dlas_graph_new();
    ck_assert_ptr_nonnull(g);
    dlas_clear_error();
    return g;
}

static int id_of(const struct dlas_graph *g, const char *name)
{
    int id = dlas_graph_find(g, name);
    ck_assert_msg(id >= 0, "no node '%s'", name);
    return id;
}

static struct dlas_node *node(const struct dlas_graph *g, const char *name)
{
    return dlas_graph_node(g, id_of(g, name));
}

static void assert_msg_has(const char *needle)
{
    ck_assert_msg(strstr(dlas_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"",
                  dlas_last_error(), needle);
}

static struct dlas_tensor random_input(const struct dlas_graph *g, int64_t batch, uint64_t seed)
{
    const struct dlas_node *in = dlas_graph_node(g, 0);
    int64_t dims[4] = {batch, in->out_shape[0], in->out_shape[1], in->out_shape[2]};
    struct dlas_tensor t;
    ck_assert_int_eq(dlas_tensor_alloc(&t, DLAS_F32, 4, dims), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    dlas_test_fill_uniform(&t, &r, -1.0, 1.0);
    return t;
}

static struct dlas_tensor forward(const struct dlas_graph *g, const struct dlas_tensor *x)
{
    struct dlas_tensor y;
    memset(&y, 0, sizeof y);
    ck_assert_msg(dlas_graph_forward_ref(g, x, &y) == 0, "forward: %s", dlas_last_error());
    return y;
}

static void assert_same_output(const struct dlas_tensor *a, const struct dlas_tensor *b)
{
    ck_assert_int_eq(dlas_tensor_numel(a), dlas_tensor_numel(b));
    double err = dlas_rel_error(dlas_f32(a), dlas_f32(b), dlas_tensor_numel(a));
    ck_assert_msg(err < 1e-5, "output changed: relative error %g", err);
}

/* The rewritten graph still computes `before` on `in`; frees before. */
static void assert_output_kept(const struct dlas_graph *g, const struct dlas_tensor *in,
                               struct dlas_tensor *before)
{
    struct dlas_tensor after = forward(g, in);
    assert_same_output(&after, before);
    dlas_tensor_free(&after);
    dlas_tensor_free(before);
}

/* Zero input channel c of a conv (every group's local column when grouped:
 * the caller passes the global input channel). */
static void zero_conv_input(struct dlas_graph *g, const char *name, int c)
{
    struct dlas_node *n = node(g, name);
    const struct dlas_node *x = dlas_graph_node(g, n->inputs[0]);
    int64_t O = n->weight.dims[0], I = n->weight.dims[1], K = n->weight.dims[2] * n->weight.dims[3];
    int64_t groups = n->attr.conv.groups, icg = x->out_shape[0] / groups, ocg = O / groups;
    float *w = dlas_f32(&n->weight);
    ck_assert_int_eq(I, icg);
    for (int64_t o = 0; o < O; o++) {
        int64_t grp = o / ocg;
        if (c / icg != grp)
            continue;
        for (int64_t k = 0; k < K; k++)
            w[(o * I + c % icg) * K + k] = 0.0f;
    }
}

/* Zero input features [f0, f1) of a linear layer. */
static void zero_linear_input(struct dlas_graph *g, const char *name, int64_t f0, int64_t f1)
{
    struct dlas_node *n = node(g, name);
    int64_t O = n->weight.dims[0], I = n->weight.dims[1];
    float *w = dlas_f32(&n->weight);
    for (int64_t o = 0; o < O; o++)
        for (int64_t f = f0; f < f1; f++)
            w[o * I + f] = 0.0f;
}

static uint8_t *keep_all_but(int64_t n, const int *drop, int n_drop)
{
    uint8_t *k = malloc((size_t)n);
    ck_assert_ptr_nonnull(k);
    memset(k, 1, (size_t)n);
    for (int i = 0; i < n_drop; i++)
        k[drop[i]] = 0;
    return k;
}

static void prune_ok(struct dlas_graph *g, const char *name, const int *drop, int n_drop)
{
    const struct dlas_node *n = node(g, name);
    int64_t w = n->out_shape[0];
    uint8_t *keep = keep_all_but(w, drop, n_drop);
    int rc = dlas_graph_prune_channels(g, id_of(g, name), keep);
    free(keep);
    ck_assert_msg(rc == 0, "prune %s: %s", name, dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(g), 0);
}

static int prune_rc(struct dlas_graph *g, const char *name, const int *drop, int n_drop)
{
    uint8_t *keep = keep_all_but(node(g, name)->out_shape[0], drop, n_drop);
    dlas_clear_error();
    int rc = dlas_graph_prune_channels(g, id_of(g, name), keep);
    free(keep);
    return rc;
}

static void assert_channels(const struct dlas_graph *g, const char *name, int64_t c)
{
    const struct dlas_node *n = node(g, name);
    ck_assert_msg(n->out_shape[0] == c, "'%s' has %lld channels, expected %lld", name,
                  (long long)n->out_shape[0], (long long)c);
}

static void assert_dims4(const struct dlas_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    ck_assert_int_eq(t->ndim, 4);
    ck_assert_int_eq(t->dims[0], a);
    ck_assert_int_eq(t->dims[1], b);
    ck_assert_int_eq(t->dims[2], c);
    ck_assert_int_eq(t->dims[3], d);
}

static int conv(struct dlas_graph *g, const char *name, int in, int out, int k, int stride,
                int groups, int bias)
{
    struct dlas_conv_attr a = dlas_conv(out, k, stride, k / 2);
    a.groups = groups;
    a.bias = bias;
    return dlas_graph_conv2d(g, name, in, &a);
}

/* conv -> bn -> relu, names "<p>", "<p>.bn", "<p>.relu" */
static int cbr(struct dlas_graph *g, const char *p, int in, int out, int k, int stride)
{
    char b[64], r[64];
    snprintf(b, sizeof b, "%s.bn", p);
    snprintf(r, sizeof r, "%s.relu", p);
    int x = conv(g, p, in, out, k, stride, 1, 0);
    x = dlas_graph_batchnorm(g, b, x, 1e-5f);
    return dlas_graph_relu(g, r, x);
}

/* A small ResNet: stem, an identity block (a, b) and a projection block
 * (c, d with shortcut p), global pooling and a classifier. */
static struct dlas_graph *resnet_like(void)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "input", 4, 8, 8);
    int r0 = cbr(g, "stem", x, 8, 3, 1);
    int y = cbr(g, "a", r0, 8, 3, 1);
    y = conv(g, "b", y, 8, 3, 1, 1, 0);
    y = dlas_graph_batchnorm(g, "b.bn", y, 1e-5f);
    y = dlas_graph_add(g, "add1", y, r0);
    int r1 = dlas_graph_relu(g, "r1", y);
    y = cbr(g, "c", r1, 16, 3, 2);
    y = conv(g, "d", y, 16, 3, 1, 1, 0);
    y = dlas_graph_batchnorm(g, "d.bn", y, 1e-5f);
    int s = conv(g, "p", r1, 16, 1, 2, 1, 0);
    s = dlas_graph_batchnorm(g, "p.bn", s, 1e-5f);
    y = dlas_graph_add(g, "add2", y, s);
    y = dlas_graph_relu(g, "r2", y);
    y = dlas_graph_global_avgpool(g, "gap", y);
    y = dlas_graph_flatten(g, "flatten", y);
    dlas_graph_linear(g, "fc", y, 5, 1);
    dlas_test_randomize(g, 11);
    return g;
}

/* ---- channel removal ---------------------------------------------------- */

START_TEST(test_prune_chain)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "input", 3, 8, 8);
    x = conv(g, "conv1", x, 8, 3, 1, 1, 1);
    x = dlas_graph_batchnorm(g, "bn1", x, 1e-5f);
    x = dlas_graph_relu(g, "relu1", x);
    x = conv(g, "conv2", x, 6, 3, 1, 1, 0);
    x = dlas_graph_batchnorm(g, "bn2", x, 1e-5f);
    x = dlas_graph_relu(g, "relu2", x);
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flatten", x);
    dlas_graph_linear(g, "fc", x, 4, 1);
    dlas_test_randomize(g, 1);

    /* masks must be sliced with their tensors: mark element i with i % 7 */
    struct dlas_node *c1 = node(g, "conv1"), *c2 = node(g, "conv2");
    ck_assert_int_eq(dlas_tensor_mask_ensure(&c1->weight), 0);
    ck_assert_int_eq(dlas_tensor_mask_ensure(&c2->weight), 0);
    for (int64_t i = 0; i < dlas_tensor_numel(&c2->weight); i++)
        c2->weight.mask[i] = (uint8_t)(i % 7 != 0);
    dlas_tensor_mask_apply(&c2->weight);
    struct dlas_tensor old_c2;
    ck_assert_int_eq(dlas_tensor_copy(&old_c2, &c2->weight), 0);
    float old_bn1_var[8];
    memcpy(old_bn1_var, dlas_f32(&node(g, "bn1")->running_var), sizeof old_bn1_var);

    zero_conv_input(g, "conv2", 2);
    zero_conv_input(g, "conv2", 5);
    struct dlas_tensor in = random_input(g, 2, 5), before = forward(g, &in);
    struct dlas_graph_stats s0, s1;
    ck_assert_int_eq(dlas_graph_stats(g, &s0), 0);

    int drop[] = {2, 5};
    prune_ok(g, "conv1", drop, 2);
    c1 = node(g, "conv1");
    c2 = node(g, "conv2");
    assert_channels(g, "conv1", 6);
    assert_channels(g, "relu1", 6);
    assert_dims4(&c1->weight, 6, 3, 3, 3);
    ck_assert_int_eq(c1->bias.dims[0], 6);
    ck_assert_int_eq(node(g, "bn1")->running_var.dims[0], 6);
    assert_dims4(&c2->weight, 6, 6, 3, 3);
    ck_assert_int_eq(c1->attr.conv.out_channels, 6);
    ck_assert_ptr_nonnull(c1->weight.mask);

    /* BN entries and conv2's columns follow the kept channels in order */
    static const int kept[6] = {0, 1, 3, 4, 6, 7};
    for (int k = 0; k < 6; k++)
        ck_assert(dlas_f32(&node(g, "bn1")->running_var)[k] == old_bn1_var[kept[k]]);
    for (int o = 0; o < 6; o++)
        for (int k = 0; k < 6; k++)
            for (int e = 0; e < 9; e++) {
                int64_t ni = (o * 6 + k) * 9 + e, oi = (o * 8 + kept[k]) * 9 + e;
                ck_assert(dlas_f32(&c2->weight)[ni] == dlas_f32(&old_c2)[oi]);
                ck_assert_int_eq(c2->weight.mask[ni], old_c2.mask[oi]);
            }
    dlas_tensor_free(&old_c2);

    struct dlas_tensor after = forward(g, &in);
    assert_same_output(&after, &before);

    /* stats: conv1 loses 2 rows (27 weights + bias), bn1 2 x (gamma, beta),
     * conv2 loses 2 input columns of 6 x 9 */
    ck_assert_int_eq(dlas_graph_stats(g, &s1), 0);
    ck_assert_int_eq(s0.params - s1.params, 2 * 28 + 2 * 2 + 2 * 6 * 9);
    ck_assert_int_eq(s0.macs - s1.macs, 2 * 64 * 27 + 6 * 64 * 2 * 9);
    ck_assert_int_eq(s0.weight_bytes - s1.weight_bytes, 4 * (2 * 28 + 2 * 4 + 2 * 6 * 9));
    ck_assert_int_lt(s1.peak_activation_bytes, s0.peak_activation_bytes);

    /* a keep mask of all ones changes nothing */
    uint8_t ones[6] = {1, 1, 1, 1, 1, 1};
    ck_assert_int_eq(dlas_graph_prune_channels(g, id_of(g, "conv1"), ones), 0);
    assert_channels(g, "conv1", 6);
    dlas_tensor_free(&in);
    dlas_tensor_free(&before);
    dlas_tensor_free(&after);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_prune_residual)
{
    /* the stem's channels run through the identity block: removing stem
     * channel 3 removes b's channel 3 and the inputs of a, c and p */
    struct dlas_graph *g = resnet_like();
    zero_conv_input(g, "a", 3);
    zero_conv_input(g, "c", 3);
    zero_conv_input(g, "p", 3);
    struct dlas_tensor in = random_input(g, 2, 7), before = forward(g, &in);
    int drop[] = {3};
    prune_ok(g, "stem", drop, 1);
    assert_channels(g, "stem", 7);
    assert_channels(g, "b", 7);
    assert_channels(g, "add1", 7);
    assert_channels(g, "a", 8);
    assert_dims4(&node(g, "a")->weight, 8, 7, 3, 3);
    assert_dims4(&node(g, "c")->weight, 16, 7, 3, 3);
    assert_dims4(&node(g, "p")->weight, 16, 7, 1, 1);
    assert_output_kept(g, &in, &before);

    /* the same class reached through the block's last conv */
    zero_conv_input(g, "a", 0);
    zero_conv_input(g, "c", 0);
    zero_conv_input(g, "p", 0);
    before = forward(g, &in);
    prune_ok(g, "b", (int[]){0}, 1);
    assert_channels(g, "stem", 6);
    assert_channels(g, "b", 6);
    assert_output_kept(g, &in, &before);

    /* the projection block's stream: d and p tied, read by the classifier */
    zero_linear_input(g, "fc", 5, 6);
    zero_linear_input(g, "fc", 9, 10);
    before = forward(g, &in);
    prune_ok(g, "p", (int[]){5, 9}, 2);
    assert_channels(g, "d", 14);
    assert_channels(g, "p", 14);
    assert_channels(g, "gap", 14);
    ck_assert_int_eq(node(g, "fc")->weight.dims[1], 14);
    assert_output_kept(g, &in, &before);

    /* inside a block: a's channels are read by b only */
    zero_conv_input(g, "b", 1);
    before = forward(g, &in);
    prune_ok(g, "a", (int[]){1}, 1);
    assert_channels(g, "a", 7);
    assert_channels(g, "b", 6);
    assert_output_kept(g, &in, &before);
    dlas_tensor_free(&in);
    dlas_graph_free(g);
}
END_TEST

/* DenseNet-like: every layer reads the concatenation of all before it. */
static struct dlas_graph *densenet_like(void)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "input", 3, 8, 8);
    int c0 = conv(g, "conv0", x, 6, 3, 1, 1, 0);
    int y = dlas_graph_batchnorm(g, "l1.bn", c0, 1e-5f);
    y = dlas_graph_relu(g, "l1.relu", y);
    y = conv(g, "l1.conv", y, 4, 3, 1, 1, 0);
    int cat1 = dlas_graph_concat(g, "cat1", 2, (int[]){c0, y});
    y = dlas_graph_batchnorm(g, "l2.bn", cat1, 1e-5f);
    y = dlas_graph_relu(g, "l2.relu", y);
    y = conv(g, "l2.conv", y, 4, 3, 1, 1, 0);
    int cat2 = dlas_graph_concat(g, "cat2", 2, (int[]){cat1, y});
    y = dlas_graph_batchnorm(g, "final.bn", cat2, 1e-5f);
    y = dlas_graph_relu(g, "final.relu", y);
    y = dlas_graph_global_avgpool(g, "gap", y);
    y = dlas_graph_flatten(g, "flatten", y);
    dlas_graph_linear(g, "fc", y, 3, 1);
    dlas_test_randomize(g, 3);
    return g;
}

START_TEST(test_prune_concat)
{
    struct dlas_graph *g = densenet_like();
    /* l1.conv channel 2 is channel 6 + 2 = 8 of cat1 and cat2 */
    zero_conv_input(g, "l2.conv", 8);
    zero_linear_input(g, "fc", 8, 9);
    struct dlas_tensor in = random_input(g, 2, 9), before = forward(g, &in);
    prune_ok(g, "l1.conv", (int[]){2}, 1);
    assert_channels(g, "cat1", 9);
    assert_channels(g, "cat2", 13);
    ck_assert_int_eq(node(g, "l2.bn")->weight.dims[0], 9);
    ck_assert_int_eq(node(g, "final.bn")->weight.dims[0], 13);
    assert_dims4(&node(g, "l2.conv")->weight, 4, 9, 3, 3);
    assert_output_kept(g, &in, &before);

    /* conv0's channel 0 runs through both concats and l1's BN */
    zero_conv_input(g, "l1.conv", 0);
    zero_conv_input(g, "l2.conv", 0);
    zero_linear_input(g, "fc", 0, 1);
    before = forward(g, &in);
    prune_ok(g, "conv0", (int[]){0}, 1);
    assert_channels(g, "conv0", 5);
    assert_channels(g, "cat2", 12);
    ck_assert_int_eq(node(g, "l1.bn")->weight.dims[0], 5);
    assert_output_kept(g, &in, &before);

    /* the last layer's channels: offsets after the shrunken cat1 (8) */
    zero_linear_input(g, "fc", 8 + 3, 8 + 4);
    before = forward(g, &in);
    prune_ok(g, "l2.conv", (int[]){3}, 1);
    assert_channels(g, "cat2", 11);
    assert_output_kept(g, &in, &before);
    dlas_tensor_free(&in);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_prune_depthwise)
{
    for (int mult = 1; mult <= 2; mult++) {
        struct dlas_graph *g = new_graph();
        int x = dlas_graph_input(g, "input", 3, 8, 8);
        x = conv(g, "pw1", x, 8, 1, 1, 1, 0);
        x = dlas_graph_batchnorm(g, "pw1.bn", x, 1e-5f);
        x = dlas_graph_relu6(g, "pw1.relu", x);
        x = conv(g, "dw", x, 8 * mult, 3, 1, 8, 0);
        x = dlas_graph_batchnorm(g, "dw.bn", x, 1e-5f);
        x = dlas_graph_relu6(g, "dw.relu", x);
        x = conv(g, "pw2", x, 6, 1, 1, 1, 1);
        x = dlas_graph_batchnorm(g, "pw2.bn", x, 1e-5f);
        x = dlas_graph_relu(g, "pw2.relu", x);
        x = dlas_graph_global_avgpool(g, "gap", x);
        x = dlas_graph_flatten(g, "flatten", x);
        dlas_graph_linear(g, "fc", x, 2, 1);
        dlas_test_randomize(g, 4);
        /* pw1's channels 1 and 6 feed dw channels 1*m.., 6*m.. */
        for (int j = 0; j < mult; j++) {
            zero_conv_input(g, "pw2", 1 * mult + j);
            zero_conv_input(g, "pw2", 6 * mult + j);
        }
        struct dlas_tensor in = random_input(g, 2, 3), before = forward(g, &in);
        prune_ok(g, "pw1", (int[]){1, 6}, 2);
        const struct dlas_node *dw = node(g, "dw");
        ck_assert_int_eq(dw->attr.conv.groups, 6);
        ck_assert_int_eq(dw->attr.conv.out_channels, 6 * mult);
        assert_dims4(&dw->weight, 6 * mult, 1, 3, 3);
        assert_channels(g, "dw.bn", 6 * mult);
        assert_dims4(&node(g, "pw2")->weight, 6, 6 * mult, 1, 1);
        assert_output_kept(g, &in, &before);

        /* a depthwise conv follows its input: removing its channel removes
         * pw1's; with a multiplier, its sibling channels must go too */
        if (mult == 2) {
            ck_assert_int_ne(prune_rc(g, "dw", (int[]){0}, 1), 0);
            assert_msg_has("kept but is tied to removed channel 0");
            zero_conv_input(g, "pw2", 0);
            zero_conv_input(g, "pw2", 1);
            before = forward(g, &in);
            prune_ok(g, "dw", (int[]){0, 1}, 2);
        } else {
            zero_conv_input(g, "pw2", 0);
            before = forward(g, &in);
            prune_ok(g, "dw", (int[]){0}, 1);
        }
        assert_channels(g, "pw1", 5);
        ck_assert_int_eq(node(g, "dw")->attr.conv.groups, 5);
        assert_output_kept(g, &in, &before);
        dlas_tensor_free(&in);
        dlas_graph_free(g);
    }
}
END_TEST

START_TEST(test_prune_flatten_linear)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "input", 2, 4, 4);
    x = conv(g, "conv", x, 5, 3, 1, 1, 1);
    x = dlas_graph_relu(g, "relu", x);
    struct dlas_pool_attr pa = dlas_pool(2, 2, 0);
    x = dlas_graph_maxpool(g, "pool", x, &pa);
    x = dlas_graph_flatten(g, "flatten", x);
    x = dlas_graph_linear(g, "fc1", x, 7, 1);
    x = dlas_graph_relu(g, "fc1.relu", x);
    x = dlas_graph_dropout(g, "drop", x, 0.5f);
    dlas_graph_linear(g, "fc2", x, 3, 1);
    dlas_test_randomize(g, 8);
    /* conv channel 2 is features 2*4 .. 2*4+3 after a 2x2 map */
    zero_linear_input(g, "fc1", 8, 12);
    struct dlas_tensor in = random_input(g, 3, 2), before = forward(g, &in);
    prune_ok(g, "conv", (int[]){2}, 1);
    assert_channels(g, "flatten", 16);
    ck_assert_int_eq(node(g, "fc1")->weight.dims[1], 16);
    assert_output_kept(g, &in, &before);

    /* a hidden linear layer's features, through relu and dropout */
    zero_linear_input(g, "fc2", 3, 4);
    before = forward(g, &in);
    prune_ok(g, "fc1", (int[]){3}, 1);
    assert_channels(g, "drop", 6);
    ck_assert_int_eq(node(g, "fc2")->weight.dims[1], 6);
    assert_output_kept(g, &in, &before);
    dlas_tensor_free(&in);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_prune_grouped)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "input", 3, 6, 6);
    x = conv(g, "conv", x, 8, 3, 1, 1, 0);
    x = dlas_graph_relu(g, "relu", x);
    x = conv(g, "gconv", x, 4, 3, 1, 2, 1); /* 2 groups of 4 inputs, 2 outputs */
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flatten", x);
    dlas_graph_linear(g, "fc", x, 2, 1);
    dlas_test_randomize(g, 5);

    /* one channel from one group only would make the groups unequal */
    ck_assert_int_ne(prune_rc(g, "conv", (int[]){1}, 1), 0);
    assert_msg_has("gconv");
    assert_msg_has("each group");
    assert_channels(g, "conv", 8);

    /* one from each group keeps them equal: 2 groups of 3 */
    zero_conv_input(g, "gconv", 1);
    zero_conv_input(g, "gconv", 6);
    struct dlas_tensor in = random_input(g, 2, 1), before = forward(g, &in);
    prune_ok(g, "conv", (int[]){1, 6}, 2);
    const struct dlas_node *gc = node(g, "gconv");
    ck_assert_int_eq(gc->attr.conv.groups, 2);
    assert_dims4(&gc->weight, 4, 3, 3, 3);
    assert_output_kept(g, &in, &before);

    /* its outputs, likewise one per group */
    ck_assert_int_ne(prune_rc(g, "gconv", (int[]){0}, 1), 0);
    assert_msg_has("each group");
    zero_linear_input(g, "fc", 1, 2);
    zero_linear_input(g, "fc", 3, 4);
    before = forward(g, &in);
    prune_ok(g, "gconv", (int[]){1, 3}, 2);
    assert_dims4(&node(g, "gconv")->weight, 2, 3, 3, 3);
    assert_output_kept(g, &in, &before);
    dlas_tensor_free(&in);
    dlas_graph_free(g);
}
END_TEST

/* Everything observable about a graph, to check a refused rewrite left it
 * exactly as it was. */
static void assert_untouched(const struct dlas_graph *g, const struct dlas_graph *ref)
{
    ck_assert_int_eq(dlas_graph_n_nodes(g), dlas_graph_n_nodes(ref));
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *a = dlas_graph_node(g, i), *b = dlas_graph_node(ref, i);
        ck_assert_str_eq(a->name, b->name);
        ck_assert_int_eq(a->out_shape[0], b->out_shape[0]);
        ck_assert_int_eq(dlas_tensor_numel(&a->weight), dlas_tensor_numel(&b->weight));
        if (a->weight.data)
            ck_assert_int_eq(memcmp(a->weight.data, b->weight.data,
                                    dlas_tensor_bytes(&a->weight)), 0);
    }
    ck_assert_int_eq(dlas_graph_validate(g), 0);
}

START_TEST(test_prune_refused)
{
    /* a block whose shortcut is the network input */
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "input", 4, 6, 6);
    int y = conv(g, "a", x, 4, 3, 1, 1, 0);
    y = dlas_graph_add(g, "add", y, x);
    y = conv(g, "b", y, 6, 3, 1, 1, 0);
    y = dlas_graph_softmax(g, "softmax", y);
    y = conv(g, "c", y, 3, 1, 1, 1, 0);
    y = dlas_graph_global_avgpool(g, "gap", y);
    y = dlas_graph_flatten(g, "flatten", y);
    dlas_graph_linear(g, "fc", y, 2, 0);
    dlas_test_randomize(g, 2);
    struct dlas_graph *ref = dlas_graph_clone(g);

    ck_assert_int_eq(prune_rc(g, "a", (int[]){1}, 1), DLAS_ERR_UNSUPPORTED);
    assert_msg_has("channel 1 of conv2d 'a' is tied to the network input 'input' through add "
                   "'add'");
    assert_untouched(g, ref);
    ck_assert_int_eq(prune_rc(g, "b", (int[]){0}, 1), DLAS_ERR_UNSUPPORTED);
    assert_msg_has("softmax 'softmax'");
    ck_assert_int_eq(prune_rc(g, "fc", (int[]){0}, 1), DLAS_ERR_UNSUPPORTED);
    assert_msg_has("the network output 'fc'");
    ck_assert_int_ne(prune_rc(g, "c", (int[]){0, 1, 2}, 3), 0);
    assert_msg_has("no channels");
    assert_untouched(g, ref);

    uint8_t keep[4] = {1, 1, 1, 1};
    ck_assert_int_ne(dlas_graph_prune_channels(g, id_of(g, "add"), keep), 0);
    assert_msg_has("only conv2d and linear");
    ck_assert_int_ne(dlas_graph_prune_channels(g, id_of(g, "a"), NULL), 0);
    ck_assert_int_ne(dlas_graph_prune_channels(g, 99, keep), 0);
    ck_assert_int_ne(dlas_graph_prune_channels(NULL, 1, keep), 0);
    assert_untouched(g, ref);
    dlas_graph_free(ref);
    dlas_graph_free(g);
}
END_TEST

/* ---- channel groups ----------------------------------------------------- */

static void assert_members(const struct dlas_graph *g, const struct dlas_channel_group *gr,
                           const char *const *names, int n)
{
    ck_assert_int_eq(gr->n_members, n);
    for (int i = 0; i < n; i++)
        ck_assert_str_eq(dlas_graph_node(g, gr->members[i])->name, names[i]);
}

START_TEST(test_channel_groups)
{
    struct dlas_graph *g = resnet_like();
    struct dlas_channel_group *gr;
    int n;
    ck_assert_int_eq(dlas_graph_channel_groups(g, &gr, &n), 0);
    ck_assert_int_eq(n, 5);
    assert_members(g, &gr[0], (const char *[]){"stem", "b"}, 2);
    assert_members(g, &gr[1], (const char *[]){"a"}, 1);
    assert_members(g, &gr[2], (const char *[]){"c"}, 1);
    assert_members(g, &gr[3], (const char *[]){"d", "p"}, 2);
    assert_members(g, &gr[4], (const char *[]){"fc"}, 1);
    ck_assert_int_eq(gr[0].n_channels, 8);
    ck_assert_int_eq(gr[0].n_prunable, 8);
    for (int k = 0; k < 8; k++) {
        ck_assert_int_eq(gr[0].node[k], id_of(g, "stem"));
        ck_assert_int_eq(gr[0].channel[k], k);
    }
    ck_assert_int_eq(gr[3].n_channels, 16);
    ck_assert_int_eq(gr[4].n_channels, 5);
    ck_assert_int_eq(gr[4].n_prunable, 0); /* the output */
    dlas_channel_groups_free(gr, n);
    dlas_graph_free(g);

    /* a concat added to a wider conv ties two sources to halves of a third */
    g = new_graph();
    int x = dlas_graph_input(g, "input", 3, 4, 4);
    int a = conv(g, "A", x, 4, 1, 1, 1, 0), b = conv(g, "B", x, 4, 1, 1, 1, 0);
    int c = conv(g, "C", x, 8, 1, 1, 1, 0);
    int cat = dlas_graph_concat(g, "cat", 2, (int[]){a, b});
    int s = dlas_graph_add(g, "sum", cat, c);
    s = conv(g, "head", s, 2, 1, 1, 1, 0);
    dlas_test_randomize(g, 6);
    ck_assert_int_eq(dlas_graph_channel_groups(g, &gr, &n), 0);
    ck_assert_int_eq(n, 2);
    assert_members(g, &gr[0], (const char *[]){"A", "B", "C"}, 3);
    ck_assert_int_eq(gr[0].n_channels, 8);
    ck_assert_int_eq(gr[0].node[5], id_of(g, "B"));
    ck_assert_int_eq(gr[0].channel[5], 1);
    ck_assert_int_eq(gr[0].n_prunable, 8);
    ck_assert_int_eq(gr[1].n_prunable, 0);
    /* removing independent channel 5 through B takes C's channel 5 too */
    zero_conv_input(g, "head", 5);
    struct dlas_tensor in = random_input(g, 1, 4), before = forward(g, &in);
    prune_ok(g, "B", (int[]){(int)gr[0].channel[5]}, 1);
    assert_channels(g, "C", 7);
    assert_channels(g, "B", 3);
    assert_output_kept(g, &in, &before);
    dlas_tensor_free(&in);
    dlas_channel_groups_free(gr, n);
    dlas_graph_free(g);
}
END_TEST

/* ---- block replacement -------------------------------------------------- */

/* A plain conv-bn-relu in place of a residual block. */
static int plain_block(void *ctx, struct dlas_graph *g, int in)
{
    const int *channels = ctx;
    int x = conv(g, "a", in, *channels, 3, 1, 1, 0); /* reuses a name of the old block */
    x = dlas_graph_batchnorm(g, "a.bn", x, 1e-5f);
    return dlas_graph_relu(g, "a.relu", x);
}

static int identity_block(void *ctx, struct dlas_graph *g, int in)
{
    (void)ctx, (void)g;
    return in;
}

static int clashing_block(void *ctx, struct dlas_graph *g, int in)
{
    (void)ctx;
    return conv(g, "fc", in, 8, 1, 1, 1, 0);
}

static int failing_block(void *ctx, struct dlas_graph *g, int in)
{
    (void)ctx;
    struct dlas_conv_attr a = dlas_conv(8, 99, 1, 0);
    return dlas_graph_conv2d(g, "huge", in, &a);
}

START_TEST(test_replace_block)
{
    struct dlas_graph *g = resnet_like();
    struct dlas_tensor in = random_input(g, 2, 3), y0 = forward(g, &in);
    struct dlas_graph_stats s0, s1;
    ck_assert_int_eq(dlas_graph_stats(g, &s0), 0);
    int n0 = dlas_graph_n_nodes(g), ch = 8;

    ck_assert_msg(dlas_graph_replace_block(g, "stem.relu", "r1", plain_block, &ch) == 0, "%s",
                  dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    /* a, a.bn, a.relu, b, b.bn, add1, r1 became a, a.bn, a.relu */
    ck_assert_int_eq(dlas_graph_n_nodes(g), n0 - 4);
    ck_assert_int_lt(dlas_graph_find(g, "b"), 0);
    ck_assert_int_lt(dlas_graph_find(g, "r1"), 0);
    ck_assert_int_eq(node(g, "c")->inputs[0], id_of(g, "a.relu"));
    ck_assert_int_eq(node(g, "p")->inputs[0], id_of(g, "a.relu"));
    for (int i = 1; i < dlas_graph_n_nodes(g); i++)
        for (int k = 0; k < dlas_graph_node(g, i)->n_inputs; k++)
            ck_assert_int_lt(dlas_graph_node(g, i)->inputs[k], i);
    struct dlas_tensor y1 = forward(g, &in);
    ck_assert_int_eq(y1.ndim, y0.ndim);
    ck_assert_int_eq(y1.dims[1], y0.dims[1]);
    ck_assert_int_eq(dlas_graph_stats(g, &s1), 0);
    ck_assert_int_eq(s0.params - s1.params, 8 * 8 * 9 + 2 * 8); /* b and b.bn */
    dlas_tensor_free(&y1);

    /* the new block's channels can be pruned like any others */
    zero_conv_input(g, "c", 2);
    zero_conv_input(g, "p", 2);
    y1 = forward(g, &in);
    prune_ok(g, "a", (int[]){2}, 1);
    struct dlas_tensor y2 = forward(g, &in);
    assert_same_output(&y2, &y1);
    dlas_tensor_free(&y1);
    dlas_tensor_free(&y2);

    dlas_tensor_free(&y0);
    dlas_tensor_free(&in);
    dlas_graph_free(g);

    /* an empty block: the residual branch loses its second conv, the add
     * reads the first one's activation */
    g = resnet_like();
    in = random_input(g, 2, 3);
    ck_assert_msg(dlas_graph_replace_block(g, "a.relu", "b.bn", identity_block, NULL) == 0,
                  "%s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_n_nodes(g), n0 - 2);
    ck_assert_int_eq(node(g, "add1")->inputs[0], id_of(g, "a.relu"));
    y1 = forward(g, &in);
    dlas_tensor_free(&y1);
    dlas_tensor_free(&in);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_replace_block_graph)
{
    /* the residual block rebuilt as a graph of its own with the same
     * weights must compute exactly what it replaced */
    struct dlas_graph *g = resnet_like();
    struct dlas_tensor in = random_input(g, 2, 3), y0 = forward(g, &in);
    struct dlas_graph *blk = new_graph();
    int x = dlas_graph_input(blk, "x", 8, 8, 8);
    int y = cbr(blk, "a", x, 8, 3, 1);
    y = conv(blk, "b", y, 8, 3, 1, 1, 0);
    y = dlas_graph_batchnorm(blk, "b.bn", y, 1e-5f);
    y = dlas_graph_add(blk, "add1", y, x);
    dlas_graph_relu(blk, "r1", y);
    ck_assert_int_eq(dlas_graph_status(blk), 0);
    static const char *const with_params[] = {"a", "a.bn", "b", "b.bn"};
    for (int i = 0; i < 4; i++) {
        struct dlas_node *d = node(blk, with_params[i]), *s = node(g, with_params[i]);
        dlas_tensor_free(&d->weight);
        dlas_tensor_free(&d->bias);
        dlas_tensor_free(&d->running_mean);
        dlas_tensor_free(&d->running_var);
        ck_assert_int_eq(dlas_tensor_copy(&d->weight, &s->weight), 0);
        ck_assert_int_eq(dlas_tensor_copy(&d->bias, &s->bias), 0);
        ck_assert_int_eq(dlas_tensor_copy(&d->running_mean, &s->running_mean), 0);
        ck_assert_int_eq(dlas_tensor_copy(&d->running_var, &s->running_var), 0);
    }
    ck_assert_msg(dlas_graph_replace_block_graph(g, "stem.relu", "r1", blk) == 0, "%s",
                  dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(blk), 0); /* the block itself is untouched */
    struct dlas_tensor y1 = forward(g, &in);
    ck_assert_int_eq(memcmp(y0.data, y1.data, dlas_tensor_bytes(&y0)), 0);

    /* a block whose output shape differs is refused, graph untouched */
    struct dlas_graph *ref = dlas_graph_clone(g), *wide = new_graph();
    x = dlas_graph_input(wide, "x", 8, 8, 8);
    conv(wide, "w", x, 12, 3, 1, 1, 0);
    ck_assert_int_ne(dlas_graph_replace_block_graph(g, "stem.relu", "r1", wide), 0);
    assert_msg_has("the new block outputs 12x8x8");
    assert_msg_has("8x8x8");
    assert_untouched(g, ref);
    dlas_graph_free(wide);
    dlas_graph_free(ref);
    dlas_tensor_free(&y0);
    dlas_tensor_free(&y1);
    dlas_tensor_free(&in);
    dlas_graph_free(blk);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_replace_block_refused)
{
    struct dlas_graph *g = resnet_like();
    struct dlas_graph *ref = dlas_graph_clone(g);
    int ch = 8;
    /* add1 reads the stem, which is outside a block that starts at a */
    ck_assert_int_ne(dlas_graph_replace_block(g, "a", "r1", plain_block, &ch), 0);
    assert_msg_has("'add1' in the block reads 'stem.relu', which is outside it");
    assert_untouched(g, ref);
    /* the shortcut p reads r1 from outside a block that ends at c */
    ck_assert_int_ne(dlas_graph_replace_block(g, "stem.relu", "c.relu", plain_block, &ch), 0);
    assert_msg_has("reads 'r1' inside the block");
    ck_assert_int_ne(dlas_graph_replace_block(g, "c", "a", plain_block, &ch), 0);
    assert_msg_has("does not depend on");
    ck_assert_int_ne(dlas_graph_replace_block(g, "nope", "r1", plain_block, &ch), 0);
    assert_msg_has("no node named 'nope'");
    ck_assert_int_ne(dlas_graph_replace_block(g, "stem.relu", "r1", clashing_block, NULL), 0);
    assert_msg_has("'fc' has the name of node");
    ck_assert_int_ne(dlas_graph_replace_block(g, "stem.relu", "r1", failing_block, NULL), 0);
    assert_msg_has("building the new block");
    assert_msg_has("huge");
    ck_assert_int_ne(dlas_graph_replace_block(g, "flatten", "fc", identity_block, NULL), 0);
    assert_msg_has("flat vector");
    ch = 16;
    ck_assert_int_ne(dlas_graph_replace_block(g, "stem.relu", "r1", plain_block, &ch), 0);
    assert_msg_has("outputs 16x8x8");
    assert_untouched(g, ref);
    dlas_graph_free(ref);
    dlas_graph_free(g);
}
END_TEST

/* ---- the model zoo ------------------------------------------------------ */

/* Prune real topologies (torchvision-style ResNet, DenseNet, MobileNet,
 * WRN with every block kind, VGG) group by group. The oracle needs no
 * knowledge of the ties: a probe copy whose weights encode their own row
 * and column, pruned alike, tells which output channels each layer lost;
 * silencing exactly those in the original (zero rows of convs and linears,
 * zero gamma and beta of batchnorms) must compute what the pruned graph
 * computes. A rewrite that removed rows and columns inconsistently, or
 * missed a tied tensor, fails the comparison. */

static void encode(struct dlas_graph *g)
{
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op == DLAS_OP_BATCHNORM) {
            for (int64_t c = 0; c < n->running_var.dims[0]; c++)
                dlas_f32(&n->running_var)[c] = (float)(c + 1);
        } else if (n->weight.data) {
            int64_t O = n->weight.dims[0], I = n->weight.dims[1];
            int64_t K = dlas_tensor_numel(&n->weight) / (O * I);
            ck_assert_int_lt(O, 4096);
            ck_assert_int_lt(I, 4096);
            for (int64_t o = 0; o < O; o++)
                for (int64_t c = 0; c < I; c++)
                    for (int64_t k = 0; k < K; k++)
                        dlas_f32(&n->weight)[(o * I + c) * K + k] = (float)(o * 4096 + c);
        }
    }
}

/* Silence in g the output channels that the pruned probe no longer has. */
static void silence_removed(struct dlas_graph *g, const struct dlas_graph *probe)
{
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        const struct dlas_node *p = dlas_graph_node(probe, i);
        ck_assert_str_eq(n->name, p->name);
        if (!n->weight.data)
            continue;
        int64_t O = n->weight.dims[0], per = dlas_tensor_numel(&n->weight) / O;
        uint8_t *kept = calloc((size_t)O, 1);
        for (int64_t r = 0; r < p->weight.dims[0]; r++) {
            float v = n->op == DLAS_OP_BATCHNORM
                          ? dlas_f32(&p->running_var)[r] - 1.0f
                          : (float)(int64_t)(dlas_f32(&p->weight)[r * (dlas_tensor_numel(
                                                                          &p->weight) /
                                                                      p->weight.dims[0])] /
                                             4096.0f);
            ck_assert(v >= 0 && v < (float)O);
            kept[(int64_t)v] = 1;
        }
        for (int64_t o = 0; o < O; o++) {
            if (kept[o])
                continue;
            if (n->op == DLAS_OP_BATCHNORM) {
                dlas_f32(&n->weight)[o] = 0.0f;
                dlas_f32(&n->bias)[o] = 0.0f;
                continue;
            }
            memset(dlas_f32(&n->weight) + o * per, 0, (size_t)per * sizeof(float));
            if (n->bias.data)
                dlas_f32(&n->bias)[o] = 0.0f;
        }
        free(kept);
    }
}

/* Remove about a quarter of the prunable channels of every group that has
 * some, checking each step against the silenced original. */
static void prune_all_groups(struct dlas_graph **gp, const char *label)
{
    struct dlas_graph *g = *gp;
    struct dlas_tensor in = random_input(g, 1, 17);
    struct dlas_channel_group *gr;
    int n, pruned = 0, refused = 0;
    ck_assert_msg(dlas_graph_channel_groups(g, &gr, &n) == 0, "%s", dlas_last_error());
    dlas_channel_groups_free(gr, n);
    /* every group that ties several layers, and a sample of the others,
     * to keep deep networks quick */
    const int stride = n > 8 ? n / 8 : 1;
    for (int gi = 0; gi < n; gi++) {
        ck_assert_int_eq(dlas_graph_channel_groups(g, &gr, &n), 0);
        if (gr[gi].n_members == 1 && gi % stride) {
            dlas_channel_groups_free(gr, n);
            continue;
        }
        int node_id = -1;
        int64_t width = 0, want = gr[gi].n_prunable / 4;
        for (int64_t k = 0; k < gr[gi].n_channels && node_id < 0; k++)
            if (gr[gi].prunable[k])
                node_id = gr[gi].node[k];
        uint8_t *keep = NULL;
        if (node_id >= 0 && want > 0) {
            width = dlas_graph_node(g, node_id)->out_shape[0];
            keep = malloc((size_t)width);
            memset(keep, 1, (size_t)width);
            /* spread over the channels so grouped convs lose evenly */
            int64_t dropped = 0;
            for (int64_t k = 0; k < gr[gi].n_channels && dropped < want; k++)
                if (gr[gi].prunable[k] && gr[gi].node[k] == node_id &&
                    gr[gi].channel[k] % 4 == 1) {
                    keep[gr[gi].channel[k]] = 0;
                    dropped++;
                }
        }
        dlas_channel_groups_free(gr, n);
        if (!keep)
            continue;
        struct dlas_graph *probe = dlas_graph_clone(g), *cut = dlas_graph_clone(g);
        encode(probe);
        dlas_clear_error();
        int rc = dlas_graph_prune_channels(probe, node_id, keep);
        if (rc) {
            /* only a grouped conv's evenness may refuse a spread-out mask */
            ck_assert_msg(strstr(dlas_last_error(), "each group") != NULL, "%s: %s", label,
                          dlas_last_error());
            refused++;
            free(keep);
            dlas_graph_free(probe);
            dlas_graph_free(cut);
            continue;
        }
        ck_assert_msg(dlas_graph_prune_channels(cut, node_id, keep) == 0, "%s", dlas_last_error());
        free(keep);
        silence_removed(g, probe);
        struct dlas_tensor want_y = forward(g, &in), got = forward(cut, &in);
        double err = dlas_rel_error(dlas_f32(&got), dlas_f32(&want_y), dlas_tensor_numel(&got));
        ck_assert_msg(err < 1e-5, "%s: group %d (through '%s'): relative error %g", label, gi,
                      dlas_graph_node(g, node_id)->name, err);
        dlas_tensor_free(&want_y);
        dlas_tensor_free(&got);
        dlas_graph_free(probe);
        dlas_graph_free(g);
        g = cut;
        pruned++;
    }
    ck_assert_msg(pruned > 0, "%s: nothing pruned (%d refused)", label, refused);
    dlas_tensor_free(&in);
    *gp = g;
}

START_TEST(test_zoo_prune)
{
    static const struct {
        const char *model;
        int c, h, w;
        const char *sets[4];
        int big; /* skipped under DLAS_TEST_SUBSET */
    } cases[] = {
        {"resnet", 3, 16, 16, {"depth=20"}, 0},
        {"resnet", 3, 32, 32, {"depth=18", "style=imagenet"}, 0},
        {"resnet", 3, 32, 32, {"depth=50", "style=imagenet"}, 1},
        {"densenet", 3, 16, 16, {"depth=10", "growth=6"}, 0},
        {"densenet", 3, 64, 64, {"depth=121", "growth=4"}, 0},
        {"mobilenet", 3, 16, 16, {"version=1", "width=0.25"}, 0},
        {"mobilenet", 3, 16, 16, {"version=2", "width=0.25"}, 0},
        {"wrn", 3, 16, 16, {"depth=10", "width=1", "block=basic"}, 0},
        {"wrn", 3, 16, 16, {"depth=10", "width=1", "block=grouped"}, 0},
        {"wrn", 3, 16, 16, {"depth=10", "width=1", "block=bottleneck"}, 0},
        {"wrn", 3, 16, 16, {"depth=10", "width=1", "block=grouped_bottleneck"}, 0},
        {"wrn", 3, 16, 16, {"depth=10", "width=1", "block=dwsep"}, 0},
        {"vgg", 3, 32, 32, {"depth=11", "batchnorm=true"}, 1},
    };
    struct dlas_registry *reg = dlas_registry_new();
    ck_assert_ptr_nonnull(reg);
    ck_assert_int_eq(dlas_registry_discover(reg, NULL), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct dlas_component *comp =
            dlas_registry_find(reg, DLAS_KIND_MODEL, cases[i].model);
        if (!comp) {
            fprintf(stderr, "check_surgery: no model plugin '%s'; not tested\n",
                    cases[i].model);
            continue;
        }
        if (cases[i].big &&
            dlas_test_subset_skips("check_surgery: pruning %s %s", cases[i].model,
                                   cases[i].sets[0]))
            continue;
        char label[256];
        int used = snprintf(label, sizeof label, "%s", cases[i].model);
        struct dlas_params *p;
        ck_assert_int_eq(dlas_params_defaults(comp->params, &p), 0);
        for (int k = 0; k < 4 && cases[i].sets[k]; k++) {
            char key[64];
            const char *eq = strchr(cases[i].sets[k], '=');
            snprintf(key, sizeof key, "%.*s", (int)(eq - cases[i].sets[k]), cases[i].sets[k]);
            ck_assert_msg(dlas_params_set(p, key, eq + 1, "test") == 0, "%s", dlas_last_error());
            used += snprintf(label + used, sizeof label - (size_t)used, " %s", cases[i].sets[k]);
        }
        struct dlas_rng rng;
        struct dlas_host host;
        dlas_rng_seed(&rng, 1);
        dlas_host_init(&host, &rng, 1);
        struct dlas_graph *g = new_graph();
        const struct dlas_model_ops *ops = comp->ops;
        ck_assert_msg(ops->build(&host, p, cases[i].c, cases[i].h, cases[i].w, 10, g) == 0,
                      "%s: %s", label, dlas_last_error());
        dlas_params_free(p);
        dlas_test_randomize(g, 23);
        struct dlas_graph_stats s0, s1;
        ck_assert_int_eq(dlas_graph_stats(g, &s0), 0);
        prune_all_groups(&g, label);
        ck_assert_int_eq(dlas_graph_stats(g, &s1), 0);
        ck_assert_int_lt(s1.params, s0.params);
        ck_assert_int_lt(s1.macs, s0.macs);
        dlas_graph_free(g);
    }
    dlas_registry_free(reg);
}
END_TEST

static Suite *surgery_suite(void)
{
    Suite *s = suite_create("surgery");
    TCase *t = dlas_test_case(s, "channels", NULL, NULL, 0);
    tcase_add_test(t, test_prune_chain);
    tcase_add_test(t, test_prune_residual);
    tcase_add_test(t, test_prune_concat);
    tcase_add_test(t, test_prune_depthwise);
    tcase_add_test(t, test_prune_flatten_linear);
    tcase_add_test(t, test_prune_grouped);
    tcase_add_test(t, test_prune_refused);
    tcase_add_test(t, test_channel_groups);
    t = dlas_test_case(s, "blocks", NULL, NULL, 0);
    tcase_add_test(t, test_replace_block);
    tcase_add_test(t, test_replace_block_graph);
    tcase_add_test(t, test_replace_block_refused);
    t = dlas_test_case(s, "zoo", NULL, NULL, 600);
    tcase_add_test(t, test_zoo_prune);
    return s;
}

int main(void)
{
    return dlas_test_run(surgery_suite());
}
