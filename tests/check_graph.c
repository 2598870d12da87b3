/* Graph, reference operators and metrics.
 *
 * Expected values are computed by hand (or by an independent naive loop in
 * this file), never by calling the code under test, and the pooling cases
 * include PyTorch's ceil_mode edge cases where the last window is dropped. */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
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

static void assert_shape(const struct dlas_graph *g, int id, int ndim, int64_t a, int64_t b,
                         int64_t c)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    ck_assert_msg(n != NULL, "node %d missing (last error: %s)", id, dlas_last_error());
    ck_assert_int_eq(n->out_ndim, ndim);
    ck_assert_int_eq(n->out_shape[0], a);
    if (ndim == 3) {
        ck_assert_int_eq(n->out_shape[1], b);
        ck_assert_int_eq(n->out_shape[2], c);
    }
}

static void assert_dims(const struct dlas_tensor *t, int ndim, const int64_t *dims)
{
    ck_assert_ptr_nonnull(t->data);
    ck_assert_int_eq(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_int_eq(t->dims[i], dims[i]);
}

static void assert_msg_has(const char *needle)
{
    ck_assert_msg(strstr(dlas_last_error(), needle) != NULL,
                  "message \"%s\" lacks \"%s\"", dlas_last_error(), needle);
}

static void assert_close(const float *got, const float *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs((double)got[i] - (double)want[i]) <= tol,
                      "element %d: got %.9g, want %.9g", i, (double)got[i], (double)want[i]);
}

static void fill_random(float *x, int64_t n, uint64_t seed)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(2.0 * dlas_rng_uniform(&r) - 1.0);
}

static void fill_tensor(struct dlas_tensor *t, uint64_t seed)
{
    fill_random(dlas_f32(t), dlas_tensor_numel(t), seed);
}

static float *falloc(int64_t n)
{
    float *p = calloc((size_t)n, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Convolution straight from the definition over an explicitly zero-padded
 * copy of the input: a different code path from dlas_ref_conv2d. */
static void naive_conv(int N, int C, int H, int W, const float *x, int O, int kh, int kw, int sh,
                       int sw, int ph, int pw, int dh, int dw, int G, const float *w,
                       const float *b, float *y, int *oh_out, int *ow_out)
{
    int PH = H + 2 * ph, PW = W + 2 * pw;
    int OH = (PH - dh * (kh - 1) - 1) / sh + 1, OW = (PW - dw * (kw - 1) - 1) / sw + 1;
    float *xp = falloc((int64_t)N * C * PH * PW);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++)
                    xp[((n * C + c) * PH + i + ph) * PW + j + pw] =
                        x[((n * C + c) * H + i) * W + j];
    int cg = C / G, og = O / G;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double s = b ? b[o] : 0.0;
                    for (int ci = 0; ci < cg; ci++)
                        for (int u = 0; u < kh; u++)
                            for (int v = 0; v < kw; v++)
                                s += (double)xp[((n * C + (o / og) * cg + ci) * PH + i * sh +
                                                 u * dh) * PW + j * sw + v * dw] *
                                     w[((o * cg + ci) * kh + u) * kw + v];
                    y[((n * O + o) * OH + i) * OW + j] = (float)s;
                }
    free(xp);
    *oh_out = OH;
    *ow_out = OW;
}

/* LeNet-5 as the lenet5 plugin lays it out. */
static int build_lenet(struct dlas_graph *g, int c, int h, int w, int pad, int classes)
{
    struct dlas_conv_attr c1 = dlas_conv(6, 5, 1, pad), c2 = dlas_conv(16, 5, 1, 0);
    struct dlas_pool_attr p = dlas_pool(2, 2, 0);
    c1.bias = c2.bias = 1;
    int x = dlas_graph_input(g, "input", c, h, w);
    x = dlas_graph_conv2d(g, "conv1", x, &c1);
    x = dlas_graph_relu(g, "relu1", x);
    x = dlas_graph_maxpool(g, "pool1", x, &p);
    x = dlas_graph_conv2d(g, "conv2", x, &c2);
    x = dlas_graph_relu(g, "relu2", x);
    x = dlas_graph_maxpool(g, "pool2", x, &p);
    x = dlas_graph_flatten(g, "flatten", x);
    x = dlas_graph_linear(g, "fc1", x, 120, 1);
    x = dlas_graph_relu(g, "relu3", x);
    x = dlas_graph_linear(g, "fc2", x, 84, 1);
    x = dlas_graph_relu(g, "relu4", x);
    return dlas_graph_linear(g, "fc3", x, classes, 1);
}

/* ---- shape inference ---------------------------------------------------- */

/* Small buffers are 64-byte aligned, buffers of 2 MiB or more 2 MiB
 * aligned (unless DLAS_HUGEPAGES=0), all of them zeroed and writable to the
 * last byte (ASan checks the bounds). */
START_TEST(test_aligned_alloc)
{
    const char *e = getenv("DLAS_HUGEPAGES");
    const int huge = !(e && !strcmp(e, "0"));
    const size_t sizes[] = {0, 1, 63, 4096, (2u << 20) - 1, 2u << 20, (3u << 20) + 5};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k] ? sizes[k] : 1;
        unsigned char *p = dlas_aligned_alloc(sizes[k]);
        ck_assert_msg(p != NULL, "%zu bytes", sizes[k]);
        const size_t align = huge && sizes[k] >= (2u << 20) ? 2u << 20 : 64;
        ck_assert_msg((uintptr_t)p % align == 0, "%zu bytes at %p, not %zu-aligned", sizes[k],
                      (void *)p, align);
        /* (one assertion for the block: one per byte took 19 s under ASan) */
        size_t i = 0;
        while (i < n && p[i] == 0)
            i++;
        ck_assert_msg(i == n, "%zu bytes: byte %zu not zeroed", sizes[k], i);
        memset(p, 0xab, n);
        dlas_aligned_free(p);
    }
}
END_TEST

START_TEST(test_conv_shapes)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 3, 32, 32);
    ck_assert_int_eq(x, 0);
    struct dlas_conv_attr a = dlas_conv(16, 3, 1, 1);
    a.bias = 1;
    int c1 = dlas_graph_conv2d(g, "c1", x, &a);
    assert_shape(g, c1, 3, 16, 32, 32);
    assert_dims(&dlas_graph_node(g, c1)->weight, 4, (int64_t[]){16, 3, 3, 3});
    assert_dims(&dlas_graph_node(g, c1)->bias, 1, (int64_t[]){16});

    a = dlas_conv(8, 3, 2, 1);
    int c2 = dlas_graph_conv2d(g, "c2", c1, &a);
    assert_shape(g, c2, 3, 8, 16, 16);
    ck_assert_ptr_null(dlas_graph_node(g, c2)->bias.data);

    a = dlas_conv(16, 3, 1, 2);
    a.dil_h = a.dil_w = 2;
    int c3 = dlas_graph_conv2d(g, "dilated", c1, &a);
    assert_shape(g, c3, 3, 16, 32, 32);

    a = dlas_conv(8, 3, 1, 1);
    a.groups = 4;
    int c4 = dlas_graph_conv2d(g, "grouped", c1, &a);
    assert_shape(g, c4, 3, 8, 32, 32);
    assert_dims(&dlas_graph_node(g, c4)->weight, 4, (int64_t[]){8, 4, 3, 3});

    a = dlas_conv(16, 3, 2, 1);
    a.groups = 16;
    int c5 = dlas_graph_conv2d(g, "depthwise", c1, &a);
    assert_shape(g, c5, 3, 16, 16, 16);
    assert_dims(&dlas_graph_node(g, c5)->weight, 4, (int64_t[]){16, 1, 3, 3});

    /* a graph has one input, and it comes first */
    ck_assert_int_lt(dlas_graph_input(g, NULL, 1, 1, 1), 0);
    dlas_graph_free(g);

    /* non-square everything: h and w must not be mixed up */
    g = new_graph();
    x = dlas_graph_input(g, "in", 2, 7, 9);
    struct dlas_conv_attr r = {5, 1, 7, 2, 1, 0, 3, 1, 1, 1, 0};
    int c6 = dlas_graph_conv2d(g, "rect", x, &r);
    assert_shape(g, c6, 3, 5, 4, 9);
    assert_dims(&dlas_graph_node(g, c6)->weight, 4, (int64_t[]){5, 2, 1, 7});
    ck_assert_int_eq(dlas_graph_status(g), 0);
    dlas_graph_free(g);

    g = new_graph();
    x = dlas_graph_input(g, "in", 3, 224, 224);
    struct dlas_conv_attr stem = {64, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0};
    assert_shape(g, dlas_graph_conv2d(g, "stem", x, &stem), 3, 64, 112, 112);
    dlas_graph_free(g);

    /* dilated 3x3 (extent 5) on 5x5 without padding: exactly one output */
    g = new_graph();
    x = dlas_graph_input(g, "in", 1, 5, 5);
    a = dlas_conv(1, 3, 1, 0);
    a.dil_h = a.dil_w = 2;
    ck_assert_int_ge(dlas_graph_conv2d(g, "d", x, &a), 0);
    assert_shape(g, 1, 3, 1, 1, 1);
    dlas_graph_free(g);
}
END_TEST

struct pool_case {
    int in, k, s, p, ceil, want; /* want 0: refused */
};

/* Expected sizes follow PyTorch's pooling_output_shape, including the rule
 * that a ceil_mode window must start inside the input or its left padding. */
static const struct pool_case pool_cases[] = {
    {6, 3, 2, 0, 0, 2},    {6, 3, 2, 0, 1, 3},    {5, 2, 2, 1, 0, 3},
    {5, 2, 2, 1, 1, 3},    /* ceil gives 4, the 4th window starts in padding */
    {8, 3, 3, 1, 0, 3},    {8, 3, 3, 1, 1, 3},    /* the same drop */
    {112, 3, 2, 0, 0, 55}, {112, 3, 2, 0, 1, 56}, /* GoogLeNet's pools */
    {112, 3, 2, 1, 0, 56}, {54, 3, 2, 0, 0, 26},  {54, 3, 2, 0, 1, 27},
    {4, 3, 2, 1, 0, 2},    {4, 3, 2, 1, 1, 3},    {3, 2, 2, 0, 0, 1},
    {3, 2, 2, 0, 1, 2},    {1, 2, 2, 0, 1, 1},    {1, 2, 2, 0, 0, 0},
    {4, 2, 1, 1, 0, 5},    {4, 2, 2, 2, 0, 0}, /* padding over half the kernel */
};

START_TEST(test_pool_shapes)
{
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        const struct pool_case *pc = &pool_cases[i];
        for (int avg = 0; avg < 2; avg++) {
            struct dlas_graph *g = new_graph();
            /* w is fixed at 12, so a mix-up of h and w shows */
            int x = dlas_graph_input(g, "in", 3, pc->in, 12);
            struct dlas_pool_attr a = {pc->k, 2, pc->s, 2, pc->p, 0, pc->ceil, 1};
            int id = avg ? dlas_graph_avgpool(g, "p", x, &a) : dlas_graph_maxpool(g, "p", x, &a);
            if (!pc->want) {
                ck_assert_msg(id < 0, "case %zu: accepted", i);
                assert_msg_has("'p'");
            } else {
                ck_assert_msg(id == 1, "case %zu (%s): %s", i, avg ? "avg" : "max",
                              dlas_last_error());
                const struct dlas_node *n = dlas_graph_node(g, id);
                ck_assert_msg(n->out_shape[1] == pc->want,
                              "case %zu: in %d k %d s %d p %d ceil %d: got %lld, want %d", i,
                              pc->in, pc->k, pc->s, pc->p, pc->ceil,
                              (long long)n->out_shape[1], pc->want);
                ck_assert_int_eq(n->out_shape[0], 3);
                ck_assert_int_eq(n->out_shape[2], 6);
            }
            dlas_graph_free(g);
        }
    }
}
END_TEST

START_TEST(test_other_shapes)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 4, 6, 5);
    int bn = dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    assert_shape(g, bn, 3, 4, 6, 5);
    const struct dlas_node *nb = dlas_graph_node(g, bn);
    ck_assert_float_eq(nb->attr.bn.momentum, 0.1f);
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq(dlas_f32(&nb->weight)[i], 1.0f);
        ck_assert_float_eq(dlas_f32(&nb->bias)[i], 0.0f);
        ck_assert_float_eq(dlas_f32(&nb->running_mean)[i], 0.0f);
        ck_assert_float_eq(dlas_f32(&nb->running_var)[i], 1.0f);
    }
    int r = dlas_graph_relu(g, NULL, bn);
    assert_shape(g, r, 3, 4, 6, 5);
    int r6 = dlas_graph_relu6(g, NULL, r);
    assert_shape(g, r6, 3, 4, 6, 5);
    int d = dlas_graph_dropout(g, NULL, r6, 0.5f);
    assert_shape(g, d, 3, 4, 6, 5);
    int sm = dlas_graph_softmax(g, NULL, d);
    assert_shape(g, sm, 3, 4, 6, 5);
    int ad = dlas_graph_add(g, NULL, sm, x);
    assert_shape(g, ad, 3, 4, 6, 5);
    int cat = dlas_graph_concat(g, "cat", 3, (int[]){ad, x, bn});
    assert_shape(g, cat, 3, 12, 6, 5);
    int gap = dlas_graph_global_avgpool(g, NULL, cat);
    assert_shape(g, gap, 3, 12, 1, 1);
    int f = dlas_graph_flatten(g, NULL, cat);
    assert_shape(g, f, 1, 360, 0, 0);
    int fg = dlas_graph_flatten(g, NULL, gap);
    assert_shape(g, fg, 1, 12, 0, 0);
    int l = dlas_graph_linear(g, "fc", f, 7, 1);
    assert_shape(g, l, 1, 7, 0, 0);
    assert_dims(&dlas_graph_node(g, l)->weight, 2, (int64_t[]){7, 360});
    assert_dims(&dlas_graph_node(g, l)->bias, 1, (int64_t[]){7});
    int l2 = dlas_graph_linear(g, NULL, l, 3, 0);
    ck_assert_ptr_null(dlas_graph_node(g, l2)->bias.data);
    int bn1 = dlas_graph_batchnorm(g, NULL, l2, 1e-5f); /* BatchNorm1d */
    assert_shape(g, bn1, 1, 3, 0, 0);
    int s1 = dlas_graph_softmax(g, NULL, bn1);
    int c1 = dlas_graph_concat(g, NULL, 2, (int[]){s1, fg});
    assert_shape(g, c1, 1, 15, 0, 0);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    ck_assert_int_eq(dlas_graph_output(g), c1);
    ck_assert_int_eq(dlas_graph_n_nodes(g), c1 + 1);

    /* generated names are "<op><id>" */
    ck_assert_str_eq(dlas_graph_node(g, r)->name, "relu2");
    ck_assert_str_eq(dlas_graph_node(g, gap)->name, "global_avgpool8");
    ck_assert_int_eq(dlas_graph_find(g, "cat"), cat);
    ck_assert_int_eq(dlas_graph_find(g, "nope"), -1);
    ck_assert_str_eq(dlas_op_name(DLAS_OP_CONV2D), "conv2d");
    ck_assert_str_eq(dlas_op_name(DLAS_OP_SOFTMAX), "softmax");

    /* consumers: x feeds bn, add, concat; cat feeds gap and flatten */
    ck_assert_int_eq(dlas_graph_n_consumers(g, x), 3);
    ck_assert_int_eq(dlas_graph_n_consumers(g, cat), 2);
    ck_assert_int_eq(dlas_graph_n_consumers(g, c1), 0);
    int dup = dlas_graph_add(g, NULL, c1, c1);
    ck_assert_int_ge(dup, 0);
    ck_assert_int_eq(dlas_graph_n_consumers(g, c1), 1); /* one node, read twice */
    dlas_graph_free(g);
}
END_TEST

/* ---- builder errors ----------------------------------------------------- */

START_TEST(test_builder_errors)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 16, 8, 8);
    struct dlas_conv_attr a = dlas_conv(16, 3, 1, 1);
    a.groups = 3;
    int bad = dlas_graph_conv2d(g, "badgroups", x, &a);
    ck_assert_int_eq(bad, -DLAS_ERR_INVALID);
    assert_msg_has("conv2d 'badgroups'");
    assert_msg_has("groups");
    ck_assert_int_eq(dlas_graph_status(g), DLAS_ERR_INVALID);
    ck_assert_int_eq(dlas_graph_n_nodes(g), 1); /* the failed node is not kept */

    /* sticky: later calls fail without replacing the first message */
    char first[512];
    snprintf(first, sizeof first, "%s", dlas_last_error());
    int r = dlas_graph_relu(g, "fine", x);
    ck_assert_int_lt(r, 0);
    ck_assert_str_eq(dlas_last_error(), first);
    ck_assert_int_eq(dlas_graph_n_nodes(g), 1);
    ck_assert_int_ne(dlas_graph_validate(g), 0);
    dlas_graph_free(g);

    /* a negative input propagates unchanged */
    g = new_graph();
    x = dlas_graph_input(g, "in", 3, 8, 8);
    dlas_error(DLAS_ERR_NOTFOUND, "something upstream");
    ck_assert_int_eq(dlas_graph_relu(g, NULL, -DLAS_ERR_NOTFOUND), -DLAS_ERR_NOTFOUND);
    ck_assert_str_eq(dlas_last_error(), "something upstream");
    ck_assert_int_eq(dlas_graph_status(g), DLAS_ERR_NOTFOUND);
    dlas_graph_free(g);

    struct {
        const char *want;
    } cases[] = {{"groups"},       {"shapes differ"}, {"duplicate node name 'c'"},
                 {"flatten"},      {"does not exist"}, {"larger than the padded input"},
                 {"all but chan"}, {"one input"},      {"out_features"},
                 {"p = 1.5"}};
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        g = new_graph();
        x = dlas_graph_input(g, "in", 8, 6, 6);
        struct dlas_conv_attr c = dlas_conv(12, 3, 1, 1);
        int conv = dlas_graph_conv2d(g, "c", x, &c);
        ck_assert_int_ge(conv, 0);
        int rc = 0;
        switch (i) {
        case 0:
            c.groups = 8; /* divides 8 inputs, not 12 outputs */
            rc = dlas_graph_conv2d(g, "g", x, &c);
            break;
        case 1: rc = dlas_graph_add(g, "sum", x, conv); break;
        case 2: rc = dlas_graph_relu(g, "c", x); break;
        case 3: rc = dlas_graph_linear(g, "fc", conv, 10, 1); break;
        case 4: rc = dlas_graph_relu(g, "r", 7); break;
        case 5:
            c = dlas_conv(4, 9, 1, 1);
            rc = dlas_graph_conv2d(g, "big", x, &c);
            break;
        case 6: {
            struct dlas_pool_attr p = dlas_pool(2, 2, 0);
            int pooled = dlas_graph_maxpool(g, "mp", conv, &p);
            rc = dlas_graph_concat(g, "cat", 2, (int[]){conv, pooled});
            break;
        }
        case 7: rc = dlas_graph_input(g, "in2", 1, 2, 2); break;
        case 8: rc = dlas_graph_linear(g, "fc", dlas_graph_flatten(g, NULL, x), 0, 1); break;
        case 9: rc = dlas_graph_dropout(g, "drop", x, 1.5f); break;
        }
        ck_assert_msg(rc < 0, "case %d accepted", i);
        ck_assert_int_eq(dlas_graph_status(g), -rc);
        assert_msg_has(cases[i].want);
        dlas_graph_free(g);
    }

    /* the node name appears in shape errors */
    g = new_graph();
    x = dlas_graph_input(g, "in", 8, 6, 6);
    int l = dlas_graph_relu(g, NULL, x);
    dlas_graph_add(g, "residual", l, dlas_graph_global_avgpool(g, NULL, x));
    assert_msg_has("add 'residual'");
    dlas_graph_free(g);

    /* generated names step around names a model chose */
    g = new_graph();
    x = dlas_graph_input(g, "relu1", 1, 4, 4);
    int rr = dlas_graph_relu(g, NULL, x);
    ck_assert_int_eq(rr, 1);
    ck_assert_str_ne(dlas_graph_node(g, rr)->name, "relu1");
    ck_assert_int_eq(dlas_graph_find(g, dlas_graph_node(g, rr)->name), rr);
    /* names too long are refused, not truncated */
    char longname[DLAS_NAME_MAX + 4];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_lt(dlas_graph_relu(g, longname, x), 0);
    dlas_graph_free(g);
}
END_TEST

/* ---- convolution descriptors and the reference convolution -------------- */

START_TEST(test_conv_desc)
{
    struct dlas_conv_desc d = {.batch = 1, .in_c = 64, .in_h = 56, .in_w = 56, .out_c = 64,
                               .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
                               .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1};
    ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
    ck_assert_int_eq(d.out_h, 56);
    ck_assert_int_eq(d.out_w, 56);
    ck_assert_int_eq(dlas_conv_desc_macs(&d), 64LL * 56 * 56 * 64 * 9);
    char buf[128];
    dlas_conv_desc_format(&d, buf, sizeof buf);
    ck_assert_str_eq(buf, "64x56x56 -> 64x56x56 k3x3 s1 p1 d1 g1");

    d.groups = 64;
    d.stride_h = 2;
    d.kw = 1;
    d.pad_w = 0;
    ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
    ck_assert_int_eq(d.out_h, 28);
    ck_assert_int_eq(d.out_w, 56);
    ck_assert_int_eq(dlas_conv_desc_macs(&d), 64LL * 28 * 56 * 1 * 3 * 1);
    dlas_conv_desc_format(&d, buf, sizeof buf);
    ck_assert_str_eq(buf, "64x56x56 -> 64x28x56 k3x1 s2x1 p1x0 d1 g64");

    struct dlas_conv_desc e = d;
    e.groups = 5;
    ck_assert_int_eq(dlas_conv_desc_finish(&e), DLAS_ERR_INVALID);
    e = d;
    e.out_c = 0;
    ck_assert_int_eq(dlas_conv_desc_finish(&e), DLAS_ERR_INVALID);
    e = d;
    e.stride_w = 0;
    ck_assert_int_eq(dlas_conv_desc_finish(&e), DLAS_ERR_INVALID);
    e = d;
    e.pad_h = -1;
    ck_assert_int_eq(dlas_conv_desc_finish(&e), DLAS_ERR_INVALID);
    /* 1 - 3 + 0 = -2: truncating division would wrongly give one output */
    e = d;
    e.in_h = 1;
    e.kh = 3;
    e.pad_h = 0;
    e.stride_h = 2;
    ck_assert_int_eq(dlas_conv_desc_finish(&e), DLAS_ERR_INVALID);
    e = d;
    e.in_w = 3;
    e.kw = 3;
    e.dil_w = 2; /* extent 5 > 3 */
    ck_assert_int_eq(dlas_conv_desc_finish(&e), DLAS_ERR_INVALID);
}
END_TEST

START_TEST(test_ref_conv_hand)
{
    /* 1x1x3x3 input 1..9, 2x2 kernel [[1,0],[0,1]] plus bias 0.5 */
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[4] = {1, 0, 0, 1};
    const float b[1] = {0.5f};
    struct dlas_conv_desc d = {.batch = 1, .in_c = 1, .in_h = 3, .in_w = 3, .out_c = 1,
                               .kh = 2, .kw = 2, .stride_h = 1, .stride_w = 1, .dil_h = 1,
                               .dil_w = 1, .groups = 1, .has_bias = 1};
    ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
    float y[16];
    dlas_ref_conv2d(&d, 1, x, w, b, y);
    assert_close(y, (const float[]){6.5f, 8.5f, 12.5f, 14.5f}, 4, 0);

    /* padding 1, stride 2, 3x3 all-ones: sums of clipped windows */
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    d.kh = d.kw = 3;
    d.pad_h = d.pad_w = 1;
    d.stride_h = d.stride_w = 2;
    ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
    ck_assert_int_eq(d.out_h, 2);
    dlas_ref_conv2d(&d, 1, x, ones, NULL, y);
    assert_close(y, (const float[]){1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 4 + 5 + 7 + 8, 5 + 6 + 8 + 9},
                 4, 0);

    /* dilation 2 on 3x3: the kernel's corners only */
    d.kh = d.kw = 2;
    d.pad_h = d.pad_w = 0;
    d.stride_h = d.stride_w = 1;
    d.dil_h = d.dil_w = 2;
    ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
    ck_assert_int_eq(d.out_h, 1);
    dlas_ref_conv2d(&d, 1, x, (const float[]){1, 10, 100, 1000}, NULL, y);
    assert_close(y, (const float[]){1 + 30 + 700 + 9000}, 1, 0);

    /* groups 2, 1x1: each output channel sees only its own input channel;
     * batch 2 checks the per-image offsets */
    const float x2[2 * 2 * 2] = {1, 2, 3, 4, /* image 0: c0 = 1,2  c1 = 3,4 */
                                 5, 6, 7, 8};
    struct dlas_conv_desc g2 = {.batch = 2, .in_c = 2, .in_h = 1, .in_w = 2, .out_c = 4,
                                .kh = 1, .kw = 1, .stride_h = 1, .stride_w = 1, .dil_h = 1,
                                .dil_w = 1, .groups = 2};
    ck_assert_int_eq(dlas_conv_desc_finish(&g2), 0);
    dlas_ref_conv2d(&g2, 2, x2, (const float[]){1, -1, 10, 100}, NULL, y);
    assert_close(y,
                 (const float[]){1, 2, -1, -2, 30, 40, 300, 400, 5, 6, -5, -6, 70, 80, 700, 800},
                 16, 0);
}
END_TEST

START_TEST(test_ref_conv_random)
{
    /* N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, G, bias */
    static const int cases[][15] = {
        {1, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* plain 3x3 */
        {2, 4, 9, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2, 0},   /* strided, grouped */
        {1, 8, 5, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8, 1},   /* depthwise */
        {3, 2, 11, 8, 3, 5, 3, 2, 1, 2, 0, 1, 2, 1, 1},  /* 5x3, mixed stride and dilation */
        {1, 6, 10, 10, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 0}, /* dilated, grouped */
        {2, 5, 4, 4, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},   /* 1x1 */
        {1, 4, 6, 13, 4, 1, 7, 1, 3, 0, 3, 1, 1, 4, 1},  /* 1x7 */
        {1, 1, 3, 3, 2, 3, 3, 3, 3, 0, 0, 1, 1, 1, 0},   /* one output pixel */
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *c = cases[t];
        struct dlas_conv_desc d = {.batch = c[0], .in_c = c[1], .in_h = c[2], .in_w = c[3],
                                   .out_c = c[4], .kh = c[5], .kw = c[6], .stride_h = c[7],
                                   .stride_w = c[8], .pad_h = c[9], .pad_w = c[10],
                                   .dil_h = c[11], .dil_w = c[12], .groups = c[13],
                                   .has_bias = c[14]};
        ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
        int64_t nx = d.batch * d.in_c * d.in_h * d.in_w;
        int64_t nw = d.out_c * (d.in_c / d.groups) * d.kh * d.kw;
        float *x = falloc(nx), *w = falloc(nw), *b = falloc(d.out_c);
        fill_random(x, nx, 100 + t);
        fill_random(w, nw, 200 + t);
        fill_random(b, d.out_c, 300 + t);
        int oh, ow;
        int64_t ny = d.batch * d.out_c * d.out_h * d.out_w;
        float *want = falloc(ny), *got = falloc(ny);
        naive_conv(c[0], c[1], c[2], c[3], x, c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11],
                   c[12], c[13], w, c[14] ? b : NULL, want, &oh, &ow);
        ck_assert_int_eq(oh, d.out_h);
        ck_assert_int_eq(ow, d.out_w);
        dlas_ref_conv2d(&d, d.batch, x, w, c[14] ? b : NULL, got);
        double err = dlas_rel_error(got, want, ny);
        ck_assert_msg(err < 1e-6, "case %zu: relative error %g", t, err);
        free(x);
        free(w);
        free(b);
        free(want);
        free(got);
    }
}
END_TEST

START_TEST(test_rel_error)
{
    const float a[3] = {1, 2, 3}, b[3] = {1, 2, 4};
    ck_assert_double_eq_tol(dlas_rel_error(a, b, 3), 0.25, 1e-12);
    ck_assert_double_eq(dlas_rel_error(a, a, 3), 0.0);
    const float z[2] = {0, 0};
    ck_assert_double_eq(dlas_rel_error(z, z, 2), 0.0);
    const float n[3] = {1, NAN, 3};
    ck_assert(isinf(dlas_rel_error(n, a, 3)));
    ck_assert(isinf(dlas_rel_error(a, n, 3)));
    ck_assert(isinf(dlas_rel_error(n, n, 3)));
}
END_TEST

/* ---- per-node reference forward ----------------------------------------- */

/* Run one node of g over `batch` samples and compare with want. */
static void run_node(const struct dlas_graph *g, int id, int64_t batch, const float *const *in,
                     const float *want, double tol)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    int64_t m = batch;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    float *out = falloc(m);
    for (int64_t i = 0; i < m; i++)
        out[i] = -12345.0f; /* every element must be written */
    ck_assert_msg(dlas_ref_node_forward(g, id, batch, in, out) == 0, "%s", dlas_last_error());
    assert_close(out, want, (int)m, tol);
    free(out);
}

START_TEST(test_forward_pointwise)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 2, 1, 3);
    int r = dlas_graph_relu(g, NULL, x);
    int r6 = dlas_graph_relu6(g, NULL, x);
    int d = dlas_graph_dropout(g, NULL, x, 0.5f);
    int f = dlas_graph_flatten(g, NULL, x);
    int a = dlas_graph_add(g, NULL, x, r);
    int bn = dlas_graph_batchnorm(g, "bn", x, 0.0f);
    int gap = dlas_graph_global_avgpool(g, NULL, x);
    int sm = dlas_graph_softmax(g, NULL, x);
    ck_assert_int_eq(dlas_graph_status(g), 0);

    const float xin[6] = {-1.5f, 3, 7, 0, -0.0f, 6.5f};
    const float *in1[1] = {xin};
    run_node(g, r, 1, in1, (const float[]){0, 3, 7, 0, 0, 6.5f}, 0);
    run_node(g, r6, 1, in1, (const float[]){0, 3, 6, 0, 0, 6}, 0);
    run_node(g, d, 1, in1, xin, 0);
    run_node(g, f, 1, in1, xin, 0);
    const float *in2[2] = {xin, (const float[]){0, 3, 7, 0, 0, 6.5f}};
    run_node(g, a, 1, in2, (const float[]){-1.5f, 6, 14, 0, 0, 13}, 0);
    run_node(g, gap, 1, in1, (const float[]){8.5f / 3, 6.5f / 3}, 1e-6);

    /* torch.relu keeps NaN */
    float nanin[6] = {NAN, 1, 1, 1, 1, 1}, nanout[6];
    ck_assert_int_eq(dlas_ref_node_forward(g, r, 1, (const float *const[]){nanin}, nanout), 0);
    ck_assert(isnan(nanout[0]));

    /* inference batchnorm: (x - mean) / sqrt(var + eps) * gamma + beta */
    struct dlas_node *nb = dlas_graph_node(g, bn);
    memcpy(nb->weight.data, (const float[]){2, 1}, 8);
    memcpy(nb->bias.data, (const float[]){1, 0}, 8);
    memcpy(nb->running_mean.data, (const float[]){1, -1}, 8);
    memcpy(nb->running_var.data, (const float[]){4, 0.25f}, 8);
    run_node(g, bn, 1, in1, (const float[]){-1.5f, 3, 7, 2, 2, 15}, 1e-6);
    nb->attr.bn.eps = 5.0f; /* var + eps = 9 for channel 0 */
    run_node(g, bn, 1, in1,
             (const float[]){-2.5f / 3 * 2 + 1, 2.0f / 3 * 2 + 1, 6.0f / 3 * 2 + 1,
                             1 / sqrtf(5.25f), 1 / sqrtf(5.25f), 7.5f / sqrtf(5.25f)},
             1e-6);

    /* softmax over channels at each of the 3 positions */
    const float sx[6] = {0, logf(2), 5, logf(3), 0, 5};
    run_node(g, sm, 1, (const float *const[]){sx},
             (const float[]){0.25f, 2.0f / 3, 0.5f, 0.75f, 1.0f / 3, 0.5f}, 1e-6);
    dlas_graph_free(g);

    /* softmax over features, stable for large inputs, batch 2 */
    g = new_graph();
    x = dlas_graph_input(g, "in", 3, 1, 1);
    f = dlas_graph_flatten(g, NULL, x);
    sm = dlas_graph_softmax(g, NULL, f);
    const float big[6] = {1000, 1000 + logf(2), 1000 + logf(3), 0, 0, 0};
    run_node(g, sm, 2, (const float *const[]){big},
             (const float[]){1.0f / 6, 2.0f / 6, 3.0f / 6, 1.0f / 3, 1.0f / 3, 1.0f / 3}, 1e-5);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_forward_pool)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 1, 4, 4);
    struct dlas_pool_attr a = dlas_pool(3, 2, 1);
    a.ceil_mode = 1;
    a.count_include_pad = 1;
    int avg_in = dlas_graph_avgpool(g, "avg_in", x, &a);
    a.count_include_pad = 0;
    int avg_ex = dlas_graph_avgpool(g, "avg_ex", x, &a);
    int mx = dlas_graph_maxpool(g, "max", x, &a);
    a.ceil_mode = 0;
    int mx_floor = dlas_graph_maxpool(g, "max_floor", x, &a);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    assert_shape(g, avg_in, 3, 1, 3, 3);
    assert_shape(g, mx_floor, 3, 1, 2, 2);

    float xin[16], neg[16];
    for (int i = 0; i < 16; i++) {
        xin[i] = (float)(i + 1);
        neg[i] = -(float)(i + 1);
    }
    /* ceil_mode windows: rows/cols {0,1}, {1,2,3}, {3} of a 1-padded 4x4;
     * the padded extents (the count_include_pad divisors) are 3, 3, 2 since
     * the last window is clipped at the far padding edge. */
    run_node(g, avg_in, 1, (const float *const[]){xin},
             (const float[]){14.0f / 9, 30.0f / 9, 12.0f / 6, 57.0f / 9, 99.0f / 9, 36.0f / 6,
                             27.0f / 6, 45.0f / 6, 16.0f / 4},
             1e-6);
    run_node(g, avg_ex, 1, (const float *const[]){xin},
             (const float[]){14.0f / 4, 30.0f / 6, 12.0f / 2, 57.0f / 6, 99.0f / 9, 36.0f / 3,
                             27.0f / 2, 45.0f / 3, 16.0f},
             1e-6);
    /* all-negative input: padding must not act as a zero */
    run_node(g, mx, 1, (const float *const[]){neg},
             (const float[]){-1, -2, -4, -5, -6, -8, -13, -14, -16}, 0);
    run_node(g, mx_floor, 1, (const float *const[]){neg}, (const float[]){-1, -2, -5, -6}, 0);
    /* NaN wins in max pooling, as in PyTorch */
    neg[5] = NAN;
    float out[9];
    ck_assert_int_eq(dlas_ref_node_forward(g, mx, 1, (const float *const[]){neg}, out), 0);
    ck_assert(isnan(out[0]) && isnan(out[4]) && !isnan(out[8]));
    dlas_graph_free(g);

    /* ceil_mode with no padding: the overhanging window's divisor is only its
     * in-bounds part even with count_include_pad (PyTorch's behaviour) */
    g = new_graph();
    x = dlas_graph_input(g, "in", 1, 3, 3);
    struct dlas_pool_attr c = dlas_pool(2, 2, 0);
    c.ceil_mode = 1;
    int p = dlas_graph_avgpool(g, "p", x, &c);
    run_node(g, p, 1, (const float *const[]){xin}, (const float[]){3, 4.5f, 7.5f, 9}, 1e-6);
    dlas_graph_free(g);

    /* padding 1, k2 s2, floor, on 1..9: divisors 4 with count_include_pad */
    g = new_graph();
    x = dlas_graph_input(g, "in", 2, 3, 3);
    struct dlas_pool_attr q = dlas_pool(2, 2, 1);
    int pi = dlas_graph_avgpool(g, "pi", x, &q);
    q.count_include_pad = 0;
    int pe = dlas_graph_avgpool(g, "pe", x, &q);
    float x2[36];
    for (int i = 0; i < 36; i++)
        x2[i] = (float)(i % 9 + 1) * (i / 9 + 1); /* image/channel k holds (1..9)*(k+1) */
    float want_i[16], want_e[16];
    const float bi[4] = {0.25f, 1.25f, 2.75f, 7}, be[4] = {1, 2.5f, 5.5f, 7};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 4; j++) {
            want_i[k * 4 + j] = bi[j] * (k + 1);
            want_e[k * 4 + j] = be[j] * (k + 1);
        }
    run_node(g, pi, 2, (const float *const[]){x2}, want_i, 1e-5);
    run_node(g, pe, 2, (const float *const[]){x2}, want_e, 1e-5);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_forward_linear_concat_conv)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 2, 1, 1);
    int f = dlas_graph_flatten(g, NULL, x);
    int l = dlas_graph_linear(g, "fc", f, 3, 1);
    struct dlas_node *nl = dlas_graph_node(g, l);
    memcpy(nl->weight.data, (const float[]){1, 2, 3, 4, 5, 6}, 24);
    memcpy(nl->bias.data, (const float[]){1, 0, -1}, 12);
    run_node(g, l, 2, (const float *const[]){(const float[]){1, -1, 2, 0.5f}},
             (const float[]){0, -1, -2, 4, 8, 12}, 0);
    dlas_graph_free(g);

    /* concat keeps each sample's blocks together: batch 2, C 1 + 2 */
    g = new_graph();
    x = dlas_graph_input(g, "in", 1, 1, 2);
    struct dlas_conv_attr ca = dlas_conv(2, 1, 1, 0);
    ca.bias = 1;
    int c = dlas_graph_conv2d(g, "c", x, &ca);
    int cat = dlas_graph_concat(g, "cat", 2, (int[]){x, c});
    assert_shape(g, cat, 3, 3, 1, 2);
    const float xa[4] = {1, 2, 3, 4};           /* two images of 1x1x2 */
    const float xc[8] = {10, 20, 30, 40, 50, 60, 70, 80}; /* two images of 2x1x2 */
    run_node(g, cat, 2, (const float *const[]){xa, xc},
             (const float[]){1, 2, 10, 20, 30, 40, 3, 4, 50, 60, 70, 80}, 0);
    /* the conv node: weight [2,1,1,1] = {2, -1}, bias {0.5, 0} */
    struct dlas_node *nc = dlas_graph_node(g, c);
    memcpy(nc->weight.data, (const float[]){2, -1}, 8);
    memcpy(nc->bias.data, (const float[]){0.5f, 0}, 8);
    run_node(g, c, 2, (const float *const[]){xa},
             (const float[]){2.5f, 4.5f, -1, -2, 6.5f, 8.5f, -3, -4}, 0);
    /* the input node has no forward */
    float dummy[4];
    ck_assert_int_ne(dlas_ref_node_forward(g, x, 1, (const float *const[]){xa}, dummy), 0);
    dlas_graph_free(g);
}
END_TEST

/* ---- metrics ------------------------------------------------------------ */

START_TEST(test_stats_lenet)
{
    struct dlas_graph *g = new_graph();
    build_lenet(g, 1, 28, 28, 2, 10);
    ck_assert_msg(dlas_graph_status(g) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    assert_shape(g, dlas_graph_find(g, "pool2"), 3, 16, 5, 5);
    assert_shape(g, dlas_graph_find(g, "flatten"), 1, 400, 0, 0);

    ck_assert_int_eq(dlas_node_params(g, dlas_graph_find(g, "conv1")), 156);
    ck_assert_int_eq(dlas_node_params(g, dlas_graph_find(g, "conv2")), 2416);
    ck_assert_int_eq(dlas_node_params(g, dlas_graph_find(g, "fc1")), 48120);
    ck_assert_int_eq(dlas_node_params(g, dlas_graph_find(g, "relu1")), 0);
    ck_assert_int_eq(dlas_node_macs(g, dlas_graph_find(g, "conv1")), 6 * 28 * 28 * 25);
    ck_assert_int_eq(dlas_node_macs(g, dlas_graph_find(g, "conv2")), 16 * 10 * 10 * 6 * 25);
    ck_assert_int_eq(dlas_node_macs(g, dlas_graph_find(g, "fc2")), 120 * 84);
    ck_assert_int_eq(dlas_node_macs(g, dlas_graph_find(g, "pool1")), 0);

    struct dlas_graph_stats s;
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    ck_assert_int_eq(s.params, 61706);
    ck_assert_int_eq(s.macs, 117600 + 240000 + 48000 + 10080 + 840);
    ck_assert_int_eq(s.weight_bytes, 61706 * 4);
    ck_assert_int_eq(s.nonzero, 0); /* builders zero everything but BN */

    struct dlas_rng rng;
    dlas_rng_seed(&rng, 7);
    ck_assert_int_eq(dlas_graph_init_weights(g, &rng), 0);
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    ck_assert_int_eq(s.nonzero, 61706 - 6 - 16); /* conv biases start at zero */

    /* masked elements do not count, even before the mask is applied */
    struct dlas_node *c1 = dlas_graph_node(g, dlas_graph_find(g, "conv1"));
    ck_assert_int_eq(dlas_tensor_mask_ensure(&c1->weight), 0);
    for (int i = 0; i < 10; i++)
        c1->weight.mask[i * 3] = 0;
    ck_assert_int_eq(dlas_node_nonzero(g, dlas_graph_find(g, "conv1")), 150 - 10);
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    ck_assert_int_eq(s.nonzero, 61706 - 22 - 10);
    ck_assert_int_eq(s.params, 61706);
    dlas_graph_free(g);

    /* padding 0 on 32x32 is the paper's geometry, same parameter count */
    g = new_graph();
    build_lenet(g, 1, 32, 32, 0, 10);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    ck_assert_int_eq(s.params, 61706);
    dlas_graph_free(g);
}
END_TEST

/* FLOPs by the convention stated in graph.h, worked out by hand for LeNet:
 * conv and linear 2 per MAC + 1 per biased output, relu 1 and 2x2 pooling 4
 * per output element. */
START_TEST(test_stats_flops_dtypes)
{
    struct dlas_graph *g = new_graph();
    build_lenet(g, 1, 28, 28, 2, 10);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    ck_assert_int_eq(dlas_node_flops(g, dlas_graph_find(g, "conv1")), 2 * 117600 + 6 * 784);
    ck_assert_int_eq(dlas_node_flops(g, dlas_graph_find(g, "relu1")), 6 * 784);
    ck_assert_int_eq(dlas_node_flops(g, dlas_graph_find(g, "pool1")), 6 * 196 * 4);
    ck_assert_int_eq(dlas_node_flops(g, dlas_graph_find(g, "flatten")), 0);
    ck_assert_int_eq(dlas_node_flops(g, dlas_graph_find(g, "fc3")), 2 * 840 + 10);
    ck_assert_int_eq(dlas_graph_flops(g), 239904 + 4704 + 4704 + 481600 + 1600 + 1600 +
                                              96120 + 120 + 20244 + 84 + 1690);
    ck_assert_int_eq(dlas_node_weight_bytes(g, dlas_graph_find(g, "conv2")), 2416 * 4);

    /* a quantised layer is counted at its own dtype, apart from the rest */
    struct dlas_node *fc1 = dlas_graph_node(g, dlas_graph_find(g, "fc1"));
    int64_t dims[2] = {120, 400};
    dlas_tensor_free(&fc1->weight);
    ck_assert_int_eq(dlas_tensor_alloc(&fc1->weight, DLAS_I8, 2, dims), 0);
    struct dlas_graph_stats s;
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    ck_assert_int_eq(dlas_graph_weight_bytes_of(g, DLAS_I8), 48000);
    ck_assert_int_eq(dlas_graph_weight_bytes_of(g, DLAS_F32), (61706 - 48000) * 4);
    ck_assert_int_eq(dlas_graph_weight_bytes_of(g, DLAS_F64), 0);
    ck_assert_int_eq(s.weight_bytes, 48000 + (61706 - 48000) * 4);
    ck_assert_int_eq(s.params, 61706);
    dlas_graph_free(g);

    /* batchnorm 2 per element, add 1, global pooling 1 per input element */
    g = new_graph();
    int x = dlas_graph_input(g, "in", 4, 5, 5);
    int bn = dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    int a = dlas_graph_add(g, "add", bn, x);
    int gp = dlas_graph_global_avgpool(g, "gap", a);
    ck_assert_int_eq(dlas_node_flops(g, bn), 200);
    ck_assert_int_eq(dlas_node_flops(g, a), 100);
    ck_assert_int_eq(dlas_node_flops(g, gp), 100);
    ck_assert_int_eq(dlas_graph_flops(g), 400);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_stats_bn_bytes)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 3, 8, 8);
    struct dlas_conv_attr a = dlas_conv(8, 3, 1, 1);
    int c = dlas_graph_conv2d(g, "c", x, &a);
    int bn = dlas_graph_batchnorm(g, "bn", c, 1e-5f);
    ck_assert_int_ge(bn, 0);
    struct dlas_graph_stats s;
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    ck_assert_int_eq(s.params, 8 * 3 * 9 + 2 * 8);         /* running stats excluded */
    ck_assert_int_eq(s.weight_bytes, (8 * 3 * 9 + 4 * 8) * 4); /* but stored */
    ck_assert_int_eq(s.nonzero, 8); /* gamma = 1; running_var is not a parameter */
    ck_assert_int_eq(s.macs, 8 * 8 * 8 * 3 * 9);

    /* grouped conv MACs divide by groups */
    a = dlas_conv(8, 3, 2, 1);
    a.groups = 4;
    int gc = dlas_graph_conv2d(g, "gc", bn, &a);
    ck_assert_int_eq(dlas_node_macs(g, gc), 8 * 4 * 4 * 2 * 9);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_peak_activation)
{
    /* in (64 B) -> conv a (128) -> relu b (128) -> add(a, b) (128) -> flatten (128)
     * live after each step: 64; 192 then in freed -> 128; 256 (a kept for the
     * add); 384 then a, b freed -> 128; 256 then add freed -> 128. */
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 1, 4, 4);
    struct dlas_conv_attr ca = dlas_conv(2, 3, 1, 1);
    int a = dlas_graph_conv2d(g, "a", x, &ca);
    int b = dlas_graph_relu(g, "b", a);
    int s = dlas_graph_add(g, "s", a, b);
    dlas_graph_flatten(g, "f", s);
    struct dlas_graph_stats st;
    ck_assert_int_eq(dlas_graph_stats(g, &st), 0);
    ck_assert_int_eq(st.peak_activation_bytes, 384);
    dlas_graph_free(g);

    /* a chain holds two neighbours at a time: in (1x16x16 = 1024 B) + c
     * (8x16x16 = 8192 B) = 9216, then c + p (8x8x8 = 2048 B) = 10240 */
    g = new_graph();
    x = dlas_graph_input(g, "in", 1, 16, 16);
    ca = dlas_conv(8, 3, 1, 1);
    int c = dlas_graph_conv2d(g, "c", x, &ca);
    struct dlas_pool_attr pa = dlas_pool(2, 2, 0);
    int p = dlas_graph_maxpool(g, "p", c, &pa);
    int r = dlas_graph_relu(g, "r", p);
    dlas_graph_relu(g, "r2", r);
    ck_assert_int_eq(dlas_graph_stats(g, &st), 0);
    ck_assert_int_eq(st.peak_activation_bytes, 8192 + 2048);
    dlas_graph_free(g);

    /* a skip connection keeps the input (4x4x4 = 256 B) alive across the
     * branch: in + c1 + c2, then in + c2 + sum, so three at once */
    g = new_graph();
    x = dlas_graph_input(g, "in", 4, 4, 4);
    ca = dlas_conv(4, 3, 1, 1);
    int c1 = dlas_graph_conv2d(g, "c1", x, &ca);
    int c2 = dlas_graph_conv2d(g, "c2", c1, &ca);
    dlas_graph_add(g, "sum", c2, x);
    ck_assert_int_eq(dlas_graph_stats(g, &st), 0);
    ck_assert_int_eq(st.peak_activation_bytes, 3 * 256);
    dlas_graph_free(g);
}
END_TEST

/* ---- whole-graph operations --------------------------------------------- */

static void assert_tensor_equal(const struct dlas_tensor *a, const struct dlas_tensor *b)
{
    ck_assert_int_eq(a->ndim, b->ndim);
    ck_assert_int_eq(a->dtype, b->dtype);
    ck_assert_int_eq(!a->data, !b->data);
    if (!a->data)
        return;
    ck_assert_ptr_ne(a->data, b->data);
    for (int i = 0; i < a->ndim; i++)
        ck_assert_int_eq(a->dims[i], b->dims[i]);
    ck_assert_int_eq(memcmp(a->data, b->data, dlas_tensor_bytes(a)), 0);
    ck_assert_int_eq(!a->mask, !b->mask);
    if (a->mask) {
        ck_assert_ptr_ne(a->mask, b->mask);
        ck_assert_int_eq(memcmp(a->mask, b->mask, (size_t)dlas_tensor_numel(a)), 0);
    }
}

/* Two nodes of one name are refused, the first such pair in node order
 * named (the check sorts the names: a large graph is validated often). */
START_TEST(test_duplicate_names)
{
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 2, 4, 4);
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        x = dlas_graph_relu(g, name, x);
    }
    ck_assert_int_eq(dlas_graph_status(g), 0);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    /* nodes 5 and 6 renamed "r1" (node 2): node 5 is the first repeat */
    snprintf(dlas_graph_node(g, 6)->name, DLAS_NAME_MAX, "r1");
    snprintf(dlas_graph_node(g, 5)->name, DLAS_NAME_MAX, "r1");
    ck_assert_int_eq(dlas_graph_validate(g), DLAS_ERR_INVALID);
    ck_assert_str_eq(dlas_last_error(), "graph: nodes 2 and 5 are both named 'r1'");
    snprintf(dlas_graph_node(g, 5)->name, DLAS_NAME_MAX, "r4b");
    ck_assert_int_eq(dlas_graph_validate(g), DLAS_ERR_INVALID);
    ck_assert_str_eq(dlas_last_error(), "graph: nodes 2 and 6 are both named 'r1'");
    snprintf(dlas_graph_node(g, 6)->name, DLAS_NAME_MAX, "in");
    ck_assert_int_eq(dlas_graph_validate(g), DLAS_ERR_INVALID);
    ck_assert_str_eq(dlas_last_error(), "graph: nodes 0 and 6 are both named 'in'");
    snprintf(dlas_graph_node(g, 6)->name, DLAS_NAME_MAX, "out");
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_clone)
{
    struct dlas_graph *g = new_graph();
    int out = build_lenet(g, 3, 32, 32, 2, 7);
    int bn = dlas_graph_batchnorm(g, "bn", out, 1e-3f);
    int cat = dlas_graph_concat(g, "cat", 2, (int[]){bn, out});
    ck_assert_int_ge(cat, 0);
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 3);
    ck_assert_int_eq(dlas_graph_init_weights(g, &rng), 0);
    struct dlas_node *c2 = dlas_graph_node(g, dlas_graph_find(g, "conv2"));
    ck_assert_int_eq(dlas_tensor_mask_ensure(&c2->weight), 0);
    c2->weight.mask[5] = 0;
    dlas_tensor_mask_apply(&c2->weight);

    struct dlas_graph *h = dlas_graph_clone(g);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(dlas_graph_n_nodes(h), dlas_graph_n_nodes(g));
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *a = dlas_graph_node(g, i), *b = dlas_graph_node(h, i);
        ck_assert_str_eq(a->name, b->name);
        ck_assert_int_eq(a->op, b->op);
        ck_assert_int_eq(a->n_inputs, b->n_inputs);
        if (a->n_inputs) {
            ck_assert_ptr_ne(a->inputs, b->inputs);
            ck_assert_int_eq(memcmp(a->inputs, b->inputs, (size_t)a->n_inputs * sizeof(int)), 0);
        }
        ck_assert_int_eq(a->out_ndim, b->out_ndim);
        ck_assert_int_eq(memcmp(a->out_shape, b->out_shape, sizeof a->out_shape), 0);
        ck_assert_int_eq(memcmp(&a->attr, &b->attr, sizeof a->attr), 0);
        assert_tensor_equal(&a->weight, &b->weight);
        assert_tensor_equal(&a->bias, &b->bias);
        assert_tensor_equal(&a->running_mean, &b->running_mean);
        assert_tensor_equal(&a->running_var, &b->running_var);
    }
    ck_assert_int_eq(dlas_graph_validate(h), 0);

    /* independent: changing the clone leaves the original alone */
    float before = dlas_f32(&c2->weight)[0];
    dlas_f32(&dlas_graph_node(h, dlas_graph_find(h, "conv2"))->weight)[0] = before + 1.0f;
    ck_assert_float_eq(dlas_f32(&c2->weight)[0], before);
    ck_assert_int_ge(dlas_graph_relu(h, "extra", cat), 0);
    ck_assert_int_eq(dlas_graph_n_nodes(g), cat + 1);
    dlas_graph_free(g);
    dlas_graph_free(h);

    /* a failed graph's status is cloned too */
    g = new_graph();
    dlas_graph_input(g, "in", 1, 2, 2);
    dlas_graph_linear(g, "fc", 0, 3, 1);
    h = dlas_graph_clone(g);
    ck_assert_int_eq(dlas_graph_status(h), DLAS_ERR_INVALID);
    dlas_graph_free(g);
    dlas_graph_free(h);
}
END_TEST

START_TEST(test_infer_validate)
{
    struct dlas_graph *g = new_graph();
    build_lenet(g, 1, 28, 28, 2, 10);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    ck_assert_int_eq(dlas_graph_infer_shapes(g), 0);

    /* surgery: conv1 keeps 4 of its 6 channels */
    struct dlas_node *c1 = dlas_graph_node(g, dlas_graph_find(g, "conv1"));
    c1->attr.conv.out_channels = 4;
    ck_assert_int_ne(dlas_graph_validate(g), 0);
    assert_msg_has("conv1"); /* its weight no longer matches */
    dlas_tensor_free(&c1->weight);
    dlas_tensor_free(&c1->bias);
    ck_assert_int_eq(dlas_tensor_alloc(&c1->weight, DLAS_F32, 4, (int64_t[]){4, 1, 5, 5}), 0);
    ck_assert_int_eq(dlas_tensor_alloc(&c1->bias, DLAS_F32, 1, (int64_t[]){4}), 0);
    ck_assert_int_ne(dlas_graph_validate(g), 0); /* its recorded shape is stale */
    assert_msg_has("conv2d 'conv1'");
    assert_msg_has("stale");
    ck_assert_int_ne(dlas_graph_infer_shapes(g), 0); /* conv2 still expects 6 inputs */
    assert_msg_has("conv2d 'conv2'");
    assert_msg_has("weight is 16x6x5x5, expected 16x4x5x5");
    struct dlas_node *c2 = dlas_graph_node(g, dlas_graph_find(g, "conv2"));
    dlas_tensor_free(&c2->weight);
    ck_assert_int_eq(dlas_tensor_alloc(&c2->weight, DLAS_F32, 4, (int64_t[]){16, 4, 5, 5}), 0);
    ck_assert_msg(dlas_graph_infer_shapes(g) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    assert_shape(g, dlas_graph_find(g, "pool1"), 3, 4, 14, 14);
    struct dlas_graph_stats s;
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    ck_assert_int_eq(s.params, 61706 - 2 * 26 - 16 * 2 * 25);

    /* a BN whose running stats have the wrong length is named */
    dlas_graph_free(g);
    g = new_graph();
    int x = dlas_graph_input(g, "in", 3, 4, 4);
    int bn = dlas_graph_batchnorm(g, "bn1", x, 1e-5f);
    struct dlas_node *nb = dlas_graph_node(g, bn);
    dlas_tensor_free(&nb->running_var);
    ck_assert_int_eq(dlas_tensor_alloc(&nb->running_var, DLAS_F32, 1, (int64_t[]){2}), 0);
    ck_assert_int_eq(dlas_graph_validate(g), DLAS_ERR_INVALID);
    assert_msg_has("batchnorm 'bn1'");
    assert_msg_has("running_var");
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_init_weights)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 32, 8, 8);
    struct dlas_conv_attr a = dlas_conv(64, 3, 1, 1);
    a.bias = 1;
    int c = dlas_graph_conv2d(g, "c", x, &a);
    a = dlas_conv(32, 3, 1, 1);
    a.groups = 32; /* depthwise: fan_out is still out_c * kh * kw */
    int dw = dlas_graph_conv2d(g, "dw", x, &a);
    int bn = dlas_graph_batchnorm(g, "bn", c, 1e-5f);
    int f = dlas_graph_flatten(g, NULL, bn);
    int l = dlas_graph_linear(g, "fc", f, 100, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_node *nc = dlas_graph_node(g, c);
    ck_assert_int_eq(dlas_tensor_mask_ensure(&nc->weight), 0);
    nc->weight.mask[17] = 0;
    /* BN left dirty so init must reset it */
    fill_tensor(&dlas_graph_node(g, bn)->weight, 1);
    fill_tensor(&dlas_graph_node(g, bn)->running_mean, 2);
    fill_tensor(&nc->bias, 3);

    struct dlas_rng rng;
    dlas_rng_seed(&rng, 42);
    ck_assert_int_eq(dlas_graph_init_weights(g, &rng), 0);

    struct {
        int id;
        double std;
    } convs[] = {{c, sqrt(2.0 / (64 * 9))}, {dw, sqrt(2.0 / (32 * 9))}};
    for (int k = 0; k < 2; k++) {
        const struct dlas_tensor *w = &dlas_graph_node(g, convs[k].id)->weight;
        int64_t n = dlas_tensor_numel(w);
        double s1 = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) {
            s1 += dlas_f32(w)[i];
            s2 += (double)dlas_f32(w)[i] * dlas_f32(w)[i];
        }
        double mean = s1 / n, sd = sqrt(s2 / n - mean * mean);
        /* 18432 and 288 samples: allow ~4 standard errors */
        double tol = 4.0 / sqrt(2.0 * n);
        ck_assert_msg(fabs(sd / convs[k].std - 1) < tol, "conv %d: std %g, want %g", k, sd,
                      convs[k].std);
        ck_assert_msg(fabs(mean) < 4 * convs[k].std / sqrt((double)n), "conv %d: mean %g", k,
                      mean);
    }
    ck_assert_float_eq(dlas_f32(&nc->weight)[17], 0.0f);
    for (int i = 0; i < 64; i++)
        ck_assert_float_eq(dlas_f32(&nc->bias)[i], 0.0f);

    const struct dlas_node *nl = dlas_graph_node(g, l);
    double bound = 1.0 / sqrt(64.0 * 64), s2 = 0, maxabs = 0;
    int64_t n = dlas_tensor_numel(&nl->weight);
    for (int64_t i = 0; i < n; i++) {
        double v = dlas_f32(&nl->weight)[i];
        s2 += v * v;
        maxabs = fmax(maxabs, fabs(v));
    }
    ck_assert(maxabs <= bound);
    ck_assert(maxabs > 0.99 * bound);
    ck_assert_double_eq_tol(sqrt(s2 / n), bound / sqrt(3.0), 0.01 * bound);
    for (int i = 0; i < 100; i++) {
        double v = dlas_f32(&nl->bias)[i];
        ck_assert(fabs(v) <= bound && v != 0.0);
    }
    const struct dlas_node *nb = dlas_graph_node(g, bn);
    for (int i = 0; i < 64; i++) {
        ck_assert_float_eq(dlas_f32(&nb->weight)[i], 1.0f);
        ck_assert_float_eq(dlas_f32(&nb->bias)[i], 0.0f);
        ck_assert_float_eq(dlas_f32(&nb->running_mean)[i], 0.0f);
        ck_assert_float_eq(dlas_f32(&nb->running_var)[i], 1.0f);
    }

    /* the same seed gives the same weights */
    struct dlas_graph *h = dlas_graph_clone(g);
    dlas_rng_seed(&rng, 42);
    ck_assert_int_eq(dlas_graph_init_weights(h, &rng), 0);
    ck_assert_int_eq(memcmp(nl->weight.data, dlas_graph_node(h, l)->weight.data,
                            dlas_tensor_bytes(&nl->weight)),
                     0);
    dlas_graph_free(h);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_forward_graph)
{
    /* in 2x6x6 -> conv(4, 3x3, p1, bias) -> bn -> relu -> maxpool 2 ->
     * conv(4, 3x3, p1, groups 2) -> add(pool) -> gap -> flatten -> fc(3) -> softmax */
    enum { N = 2, C = 2, H = 6, O = 4, K = 3 };
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", C, H, H);
    struct dlas_conv_attr a = dlas_conv(O, 3, 1, 1);
    a.bias = 1;
    int c1 = dlas_graph_conv2d(g, "c1", x, &a);
    int bn = dlas_graph_batchnorm(g, "bn", c1, 1e-5f);
    int r = dlas_graph_relu(g, "r", bn);
    struct dlas_pool_attr pa = dlas_pool(2, 2, 0);
    int p = dlas_graph_maxpool(g, "p", r, &pa);
    a = dlas_conv(O, 3, 1, 1);
    a.groups = 2;
    int c2 = dlas_graph_conv2d(g, "c2", p, &a);
    int s = dlas_graph_add(g, "s", c2, p);
    int gap = dlas_graph_global_avgpool(g, "gap", s);
    int f = dlas_graph_flatten(g, "f", gap);
    int fc = dlas_graph_linear(g, "fc", f, K, 1);
    dlas_graph_softmax(g, "sm", fc);
    ck_assert_int_eq(dlas_graph_status(g), 0);

    struct dlas_rng rng;
    dlas_rng_seed(&rng, 11);
    ck_assert_int_eq(dlas_graph_init_weights(g, &rng), 0);
    struct dlas_node *nb = dlas_graph_node(g, bn);
    fill_tensor(&nb->weight, 21);
    fill_tensor(&nb->bias, 22);
    fill_tensor(&nb->running_mean, 23);
    for (int i = 0; i < O; i++)
        dlas_f32(&nb->running_var)[i] = 0.5f + i;
    fill_tensor(&dlas_graph_node(g, c1)->bias, 24);

    struct dlas_tensor in = {0}, out = {0};
    ck_assert_int_eq(dlas_tensor_alloc(&in, DLAS_F32, 4, (int64_t[]){N, C, H, H}), 0);
    fill_tensor(&in, 5);
    ck_assert_msg(dlas_graph_forward_ref(g, &in, &out) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(out.ndim, 2);
    ck_assert_int_eq(out.dims[0], N);
    ck_assert_int_eq(out.dims[1], K);

    /* the same by hand */
    const float *X = dlas_f32(&in);
    float y1[N * O * H * H], y2[N * O * 3 * 3], y3[N * O * 3 * 3];
    int oh, ow;
    naive_conv(N, C, H, H, X, O, 3, 3, 1, 1, 1, 1, 1, 1, 1,
               dlas_f32(&dlas_graph_node(g, c1)->weight), dlas_f32(&dlas_graph_node(g, c1)->bias),
               y1, &oh, &ow);
    ck_assert_int_eq(oh, H);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < H * H; i++) {
                float *v = &y1[(n * O + o) * H * H + i];
                double t = (*v - dlas_f32(&nb->running_mean)[o]) /
                               sqrt(dlas_f32(&nb->running_var)[o] + 1e-5) *
                               dlas_f32(&nb->weight)[o] +
                           dlas_f32(&nb->bias)[o];
                *v = t > 0 ? (float)t : 0.0f;
            }
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    const float *b = &y1[(n * O + o) * H * H];
                    float m = b[2 * i * H + 2 * j];
                    m = fmaxf(m, b[2 * i * H + 2 * j + 1]);
                    m = fmaxf(m, b[(2 * i + 1) * H + 2 * j]);
                    m = fmaxf(m, b[(2 * i + 1) * H + 2 * j + 1]);
                    y2[((n * O + o) * 3 + i) * 3 + j] = m;
                }
    naive_conv(N, O, 3, 3, y2, O, 3, 3, 1, 1, 1, 1, 1, 1, 2,
               dlas_f32(&dlas_graph_node(g, c2)->weight), NULL, y3, &oh, &ow);
    const struct dlas_node *nf = dlas_graph_node(g, fc);
    for (int n = 0; n < N; n++) {
        double feat[O], logits[K], mx = -INFINITY, sum = 0;
        for (int o = 0; o < O; o++) {
            feat[o] = 0;
            for (int i = 0; i < 9; i++)
                feat[o] += (double)y3[(n * O + o) * 9 + i] + y2[(n * O + o) * 9 + i];
            feat[o] /= 9;
        }
        for (int k = 0; k < K; k++) {
            logits[k] = dlas_f32(&nf->bias)[k];
            for (int o = 0; o < O; o++)
                logits[k] += (double)dlas_f32(&nf->weight)[k * O + o] * feat[o];
            mx = fmax(mx, logits[k]);
        }
        for (int k = 0; k < K; k++)
            sum += exp(logits[k] - mx);
        for (int k = 0; k < K; k++) {
            double want = exp(logits[k] - mx) / sum;
            ck_assert_msg(fabs(dlas_f32(&out)[n * K + k] - want) < 1e-5,
                          "sample %d class %d: got %g want %g", n, k,
                          (double)dlas_f32(&out)[n * K + k], want);
        }
    }
    dlas_tensor_free(&out);

    /* a wrongly shaped input is refused */
    struct dlas_tensor bad = {0};
    ck_assert_int_eq(dlas_tensor_alloc(&bad, DLAS_F32, 4, (int64_t[]){1, C, H, H + 1}), 0);
    ck_assert_int_eq(dlas_graph_forward_ref(g, &bad, &out), DLAS_ERR_INVALID);
    dlas_tensor_free(&bad);
    dlas_tensor_free(&in);
    dlas_graph_free(g);

    /* a 3-D output keeps N x C x H x W, and a dead branch is harmless */
    g = new_graph();
    x = dlas_graph_input(g, "in", 1, 2, 2);
    dlas_graph_relu6(g, "dead", x);
    dlas_graph_relu(g, "r", x);
    ck_assert_int_eq(dlas_tensor_alloc(&in, DLAS_F32, 4, (int64_t[]){3, 1, 2, 2}), 0);
    for (int i = 0; i < 12; i++)
        dlas_f32(&in)[i] = (float)(i - 6);
    ck_assert_int_eq(dlas_graph_forward_ref(g, &in, &out), 0);
    ck_assert_int_eq(out.ndim, 4);
    ck_assert_int_eq(out.dims[0], 3);
    ck_assert_int_eq(out.dims[3], 2);
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq(dlas_f32(&out)[i], i < 6 ? 0.0f : (float)(i - 6));
    dlas_tensor_free(&out);
    dlas_tensor_free(&in);
    dlas_graph_free(g);
}
END_TEST

/* ---- the lenet5 plugin, loaded straight from the build tree ------------- */

START_TEST(test_lenet5_plugin)
{
    const char *dir = getenv("DLAS_PLUGIN_PATH");
    char path[4096];
    if (!dir || !*dir) {
        fprintf(stderr, "check_graph: DLAS_PLUGIN_PATH unset; lenet5 plugin not tested\n");
        return;
    }
    snprintf(path, sizeof path, "%.*s/model_lenet5.so", (int)strcspn(dir, ":"), dir);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(so != NULL, "dlopen %s: %s", path, dlerror());
    const struct dlas_plugin *(*entry)(void) =
        (const struct dlas_plugin *(*)(void))dlsym(so, DLAS_PLUGIN_ENTRY_SYMBOL);
    ck_assert_ptr_nonnull(entry);
    const struct dlas_plugin *pl = entry();
    ck_assert_int_eq(pl->abi_major, DLAS_ABI_MAJOR);
    ck_assert_int_eq(pl->n_components, 1);
    const struct dlas_component *comp = &pl->components[0];
    ck_assert_str_eq(comp->name, "lenet5");
    ck_assert_int_eq(comp->kind, DLAS_KIND_MODEL);
    ck_assert_str_eq(comp->params[0].name, "padding");
    ck_assert_str_eq(comp->params[1].name, "width");
    ck_assert_ptr_null(comp->params[2].name);
    const struct dlas_model_ops *ops = comp->ops;

    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    struct dlas_graph *g = new_graph();
    ck_assert_msg(ops->build(&host, NULL, 1, 28, 28, 10, g) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    struct dlas_graph_stats s;
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    ck_assert_int_eq(s.params, 61706);
    ck_assert_int_eq(s.macs, 416520);
    static const char *const names[] = {"input", "conv1", "relu1", "pool1", "conv2",
                                        "relu2", "pool2", "flatten", "fc1", "relu3",
                                        "fc2",  "relu4", "fc3"};
    ck_assert_int_eq(dlas_graph_n_nodes(g), 13);
    for (int i = 0; i < 13; i++)
        ck_assert_int_eq(dlas_graph_find(g, names[i]), i);
    dlas_graph_free(g);

    /* too small an input fails with the layer named */
    g = new_graph();
    ck_assert_int_ne(ops->build(&host, NULL, 3, 8, 8, 10, g), 0);
    assert_msg_has("lenet5");
    assert_msg_has("conv2");
    dlas_graph_free(g);
    dlclose(so);
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *t = dlas_test_case(s, "shapes", NULL, NULL, 0);
    tcase_add_test(t, test_aligned_alloc);
    tcase_add_test(t, test_conv_shapes);
    tcase_add_test(t, test_pool_shapes);
    tcase_add_test(t, test_other_shapes);
    tcase_add_test(t, test_builder_errors);
    tcase_add_test(t, test_infer_validate);
    t = dlas_test_case(s, "ops", NULL, NULL, 0);
    tcase_add_test(t, test_conv_desc);
    tcase_add_test(t, test_ref_conv_hand);
    tcase_add_test(t, test_ref_conv_random);
    tcase_add_test(t, test_rel_error);
    tcase_add_test(t, test_forward_pointwise);
    tcase_add_test(t, test_forward_pool);
    tcase_add_test(t, test_forward_linear_concat_conv);
    tcase_add_test(t, test_forward_graph);
    t = dlas_test_case(s, "graph", NULL, NULL, 0);
    tcase_add_test(t, test_stats_lenet);
    tcase_add_test(t, test_stats_bn_bytes);
    tcase_add_test(t, test_stats_flops_dtypes);
    tcase_add_test(t, test_peak_activation);
    tcase_add_test(t, test_clone);
    tcase_add_test(t, test_duplicate_names);
    tcase_add_test(t, test_init_weights);
    tcase_add_test(t, test_lenet5_plugin);
    return s;
}

int main(void)
{
    return dlas_test_run(graph_suite());
}
