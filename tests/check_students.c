/* Students derived from a teacher by block substitution: the cheap block
 * types (names, parameter formulas, the graphs they build), finding residual
 * blocks, the moonshine compressor against the wrn model's own cheap
 * variants, the attention-transfer loss against finite differences,
 * BlockSwap's Fisher potential against a finite-difference computation, and
 * the blockswap search (within budget, highest score, same seed same
 * genotype), and hakd's choice on a fake target whose answer brute force
 * finds, and its refusals. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlas/blocks.h>
#include <dlas/dlas.h>
#include <dlas/distil.h>

#include "testutil.h"

static struct dlas_registry *reg;
static struct dlas_rng host_rng;
static struct dlas_host host;

static void host_setup(uint64_t seed)
{
    dlas_rng_seed(&host_rng, seed);
    dlas_host_init(&host, &host_rng, seed);
}

static const struct dlas_component *find(enum dlas_kind kind, const char *name)
{
    const struct dlas_component *c = dlas_registry_find(reg, kind, name);
    ck_assert_msg(c != NULL, "%s '%s' not found: %s", dlas_kind_name(kind), name,
                  dlas_last_error());
    return c;
}

/* Defaults of c's spec with "k=v" settings. */
static struct dlas_params *params(const struct dlas_component *c, const char *const *kv)
{
    struct dlas_params *p = NULL;
    ck_assert_int_eq(dlas_params_defaults(c->params, &p), 0);
    for (int i = 0; kv && kv[i]; i++) {
        char k[64];
        const char *eq = strchr(kv[i], '=');
        ck_assert_ptr_nonnull(eq);
        snprintf(k, sizeof k, "%.*s", (int)(eq - kv[i]), kv[i]);
        ck_assert_msg(dlas_params_set(p, k, eq + 1, "check_students") == 0, "%s: %s", kv[i],
                      dlas_last_error());
    }
    return p;
}

/* A model from the registry, weights initialised. */
static struct dlas_graph *model(const char *name, const char *const *kv, int c, int h, int w,
                                int classes)
{
    const struct dlas_component *m = find(DLAS_KIND_MODEL, name);
    struct dlas_params *p = params(m, kv);
    struct dlas_graph *g = dlas_graph_new();
    host_setup(3);
    int rc = ((const struct dlas_model_ops *)m->ops)->build(&host, p, c, h, w, classes, g);
    dlas_params_free(p);
    ck_assert_msg(rc == 0 && dlas_graph_validate(g) == 0, "%s: %s", name, dlas_last_error());
    struct dlas_rng r;
    dlas_rng_seed(&r, 5);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    return g;
}

static int64_t params_of(const struct dlas_graph *g)
{
    struct dlas_graph_stats st;
    ck_assert_int_eq(dlas_graph_stats(g, &st), 0);
    return st.params;
}

static int64_t conv_weights(const struct dlas_graph *g)
{
    int64_t n = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        if (dlas_graph_node(g, i)->op == DLAS_OP_CONV2D)
            n += dlas_tensor_numel(&dlas_graph_node(g, i)->weight);
    return n;
}

static const char *const all_types[] = {
    "S",        "G(2)",      "G(4)",      "G(8)",      "G(16)",     "G(N/16)",   "G(N/8)",
    "G(N/4)",   "G(N/2)",    "DW",        "B(2)",      "B(4)",      "BG(2,2)",   "BG(2,4)",
    "BG(2,8)",  "BG(2,16)",  "BG(2,N/16)", "BG(2,N/8)", "BG(2,N/4)", "BG(2,N/2)", "BG(4,N/8)",
    "BG(4,N/4)", "BG(4,N/2)", NULL};

/* ---- block types ---------------------------------------------------------- */

START_TEST(test_type_names)
{
    static const char *const pairs[][2] = {
        {"S", "S"},          {"Conv", "S"},           {"G(4)", "G(4)"},
        {"DConvA4", "G(4)"}, {"DConvG16", "G(N/16)"}, {"G(N/16)", "G(N/16)"},
        {"G(N)", "DW"},      {"DConv", "DW"},         {" DW ", "DW"},
        {"B(2)", "B(2)"},    {"ConvB4", "B(4)"},      {"BG(2,4)", "BG(2,4)"},
        {"A4B2", "BG(2,4)"}, {"G16B2", "BG(2,N/16)"}, {"BG( 4 , N/2 )", "BG(4,N/2)"},
        {"G8B4", "BG(4,N/8)"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        struct dlas_block_type t;
        char buf[32];
        ck_assert_msg(dlas_block_type_parse(pairs[i][0], &t) == 0, "%s: %s", pairs[i][0],
                      dlas_last_error());
        ck_assert_str_eq(dlas_block_type_name(&t, buf, sizeof buf), pairs[i][1]);
        struct dlas_block_type u; /* the canonical name reads back the same */
        ck_assert_int_eq(dlas_block_type_parse(buf, &u), 0);
        ck_assert_int_eq(memcmp(&t, &u, sizeof t), 0);
    }
    static const char *const bad[] = {"", "X", "G()", "G(0)", "G(4", "B(x)", "BG(2)",
                                      "BG(2,)", "DConvA", "A4", "G(N/0)", "S(1)", NULL};
    for (int i = 0; bad[i]; i++) {
        ck_assert_msg(dlas_block_type_parse(bad[i], NULL) == DLAS_ERR_INVALID, "'%s' accepted",
                      bad[i]);
        ck_assert_ptr_nonnull(strstr(dlas_last_error(), "unknown block type"));
    }
}
END_TEST

/* The papers' formulas, for a block of N -> N channels, conv weights only. */
START_TEST(test_type_formulas)
{
    const int ks[] = {3, 5};
    for (int N = 16; N <= 256; N *= 2)
        for (int ki = 0; ki < 2; ki++) {
            const int64_t k = ks[ki], n = N, k2 = k * k;
            struct dlas_block_type t;
            ck_assert_int_eq(dlas_block_type_parse("S", &t), 0);
            ck_assert_int_eq(dlas_block_type_params(&t, N, N, (int)k, 0), 2 * n * n * k2);
            for (int g = 2; g <= 16; g *= 2) {
                char s[32];
                snprintf(s, sizeof s, "G(%d)", g);
                ck_assert_int_eq(dlas_block_type_parse(s, &t), 0);
                ck_assert_int_eq(dlas_block_type_params(&t, N, N, (int)k, 0),
                                 2 * (n * n * k2 / g + n * n));
                for (int b = 2; b <= 4; b *= 2) {
                    snprintf(s, sizeof s, "BG(%d,%d)", b, g);
                    ck_assert_int_eq(dlas_block_type_parse(s, &t), 0);
                    int64_t m = n / b;
                    if (m % g) {
                        ck_assert_int_eq(dlas_block_type_params(&t, N, N, (int)k, 0), -1);
                        continue;
                    }
                    ck_assert_int_eq(dlas_block_type_params(&t, N, N, (int)k, 0),
                                     m * m * k2 / g + 2 * n * n / b);
                }
            }
            for (int b = 2; b <= 8; b *= 2) {
                char s[32];
                snprintf(s, sizeof s, "B(%d)", b);
                ck_assert_int_eq(dlas_block_type_parse(s, &t), 0);
                ck_assert_int_eq(dlas_block_type_params(&t, N, N, (int)k, 0),
                                 (n / b) * (n / b) * k2 + 2 * n * n / b);
            }
            ck_assert_int_eq(dlas_block_type_parse("DW", &t), 0);
            ck_assert_int_eq(dlas_block_type_params(&t, N, N, (int)k, 0),
                             2 * (n * k2 + n * n));
        }
    /* groups that do not divide the channels do not fit */
    struct dlas_block_type t;
    ck_assert_int_eq(dlas_block_type_parse("G(3)", &t), 0);
    ck_assert_int_eq(dlas_block_type_params(&t, 16, 16, 3, 0), -1);
    ck_assert_int_eq(dlas_block_type_check(&t, 16, 16), DLAS_ERR_INVALID);
}
END_TEST

/* Every type substituted into every block of a WRN changes the graph's
 * parameters by exactly what dlas_block_type_params says (BN included), and
 * its convolution weights by the formula's (BN excluded). */
START_TEST(test_type_built_counts)
{
    const char *const kv[] = {"depth=16", "width=2", NULL};
    struct dlas_graph *t = model("wrn", kv, 1, 12, 12, 4);
    struct dlas_residual_block *b = NULL;
    int n = 0;
    ck_assert_int_eq(dlas_graph_residual_blocks(t, &b, &n), 0);
    ck_assert_int_eq(n, 6);
    const int64_t P = params_of(t), C = conv_weights(t);
    int built = 0;
    for (int i = 0; i < n; i++) {
        struct dlas_block_type S = {DLAS_BLOCK_STANDARD, 0, 0, 0};
        ck_assert_int_eq(b[i].trunk_params,
                         dlas_block_type_params(&S, b[i].in_c, b[i].out_c, b[i].k, 1));
        for (int j = 0; all_types[j]; j++) {
            struct dlas_block_type ty;
            ck_assert_int_eq(dlas_block_type_parse(all_types[j], &ty), 0);
            int64_t with = dlas_block_type_params(&ty, b[i].in_c, b[i].out_c, b[i].k, 1);
            int64_t conv = dlas_block_type_params(&ty, b[i].in_c, b[i].out_c, b[i].k, 0);
            struct dlas_graph *g = dlas_graph_clone(t);
            int rc = dlas_graph_substitute_block(g, &b[i], &ty, NULL);
            if (with < 0) {
                ck_assert_int_eq(rc, DLAS_ERR_INVALID);
                ck_assert_int_eq(params_of(g), P); /* untouched */
            } else {
                ck_assert_msg(rc == 0, "%s in %s: %s", all_types[j], b[i].prefix,
                              dlas_last_error());
                ck_assert_int_eq(dlas_graph_validate(g), 0);
                ck_assert_int_eq(params_of(g), P - b[i].trunk_params + with);
                ck_assert_int_eq(conv_weights(g),
                                 C - dlas_block_type_params(&S, b[i].in_c, b[i].out_c, b[i].k, 0) +
                                     conv);
                built++;
            }
            dlas_graph_free(g);
        }
    }
    ck_assert_int_gt(built, 6 * 18);
    free(b);
    dlas_graph_free(t);
}
END_TEST

/* Blocks of WRN (pre-activation, with and without projections) and of the
 * CIFAR ResNet (post-activation, downsample with BN) are found; a network
 * without residual blocks has none. */
START_TEST(test_find_blocks)
{
    const char *const wrn[] = {"depth=22", "width=1", NULL};
    struct dlas_graph *g = model("wrn", wrn, 3, 16, 16, 10);
    struct dlas_residual_block *b = NULL;
    int n = 0;
    ck_assert_int_eq(dlas_graph_residual_blocks(g, &b, &n), 0);
    ck_assert_int_eq(n, 9);
    ck_assert_str_eq(b[0].add, "block1.0.layer.0.add");
    ck_assert_str_eq(b[0].prefix, "block1.0.layer.0");
    ck_assert_str_eq(b[0].conv[0], "block1.0.layer.0.conv1.conv");
    ck_assert_str_eq(b[0].conv[1], "block1.0.layer.0.conv2.conv");
    ck_assert_int_eq(b[3].in_c, 16);
    ck_assert_int_eq(b[3].out_c, 32);
    ck_assert_int_eq(b[3].stride, 2);
    int ends = 0;
    for (int i = 0; i < n; i++)
        ends += b[i].stage_end;
    ck_assert_int_eq(ends, 3);
    ck_assert(b[2].stage_end && b[5].stage_end && b[8].stage_end);
    ck_assert_int_eq(dlas_residual_block_probe(g, &b[0]),
                     dlas_graph_find(g, "block1.0.layer.0.conv2.conv"));
    free(b);
    dlas_graph_free(g);

    const char *const r20[] = {"depth=20", NULL};
    g = model("resnet", r20, 3, 16, 16, 10);
    ck_assert_int_eq(dlas_graph_residual_blocks(g, &b, &n), 0);
    ck_assert_int_eq(n, 9);
    for (int i = 0; i < n; i++) { /* the trunk ends in the second conv's BN */
        const struct dlas_node *p = dlas_graph_node(g, dlas_residual_block_probe(g, &b[i]));
        ck_assert_int_eq(p->op, DLAS_OP_BATCHNORM);
    }
    free(b);
    dlas_graph_free(g);

    g = model("lenet5", NULL, 1, 28, 28, 10);
    ck_assert_int_eq(dlas_graph_residual_blocks(g, &b, &n), 0);
    ck_assert_int_eq(n, 0);
    free(b);
    dlas_graph_free(g);
}
END_TEST

/* ---- moonshine -------------------------------------------------------------- */

static int compress(const char *name, struct dlas_graph *g, const char *const *kv)
{
    const struct dlas_component *c = find(DLAS_KIND_COMPRESSOR, name);
    struct dlas_params *p = params(c, kv);
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    host_setup(11);
    ctx.host = &host;
    ctx.graph = g;
    int rc = ((const struct dlas_compressor_ops *)c->ops)->apply(&ctx, p);
    dlas_params_free(p);
    return rc;
}

/* Moonshine's student of a WRN teacher is node for node the wrn plugin's
 * network of that block type: every block has the requested type, and the
 * depth and widths are the teacher's. */
START_TEST(test_moonshine_is_wrn_variant)
{
    static const struct {
        const char *block;
        const char *wrn[4];
        const char *probe; /* a node each block must hold, with its groups */
        int groups;
    } cases[] = {
        {"G(4)", {"block=grouped", "groups=4"}, "conv2.convdw", 4},
        {"DConvG8", {"block=grouped", "group_size=8"}, "conv1.convdw", -8},
        {"DW", {"block=dwsep"}, "conv2.convdw", -1},
        {"B(2)", {"block=bottleneck", "bottleneck=2"}, "conv1.conv1x1_up", 1},
        {"BG(2,4)", {"block=grouped_bottleneck", "bottleneck=2", "groups=4"}, "conv1.conv", 4},
        {"S", {"block=basic"}, "conv2.conv", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *base[] = {"depth=16", "width=2", NULL};
        struct dlas_graph *s = model("wrn", base, 1, 12, 12, 4);
        struct dlas_graph *teacher = dlas_graph_clone(s);
        char bk[64];
        snprintf(bk, sizeof bk, "block=\"%s\"", cases[i].block);
        const char *kv[] = {bk, "epochs=0", NULL};
        ck_assert_msg(compress("moonshine", s, kv) == 0, "%s: %s", cases[i].block,
                      dlas_last_error());
        const char *wk[8] = {"depth=16", "width=2"};
        for (int j = 0; j < 4 && cases[i].wrn[j]; j++)
            wk[2 + j] = cases[i].wrn[j];
        struct dlas_graph *w = model("wrn", wk, 1, 12, 12, 4);
        ck_assert_int_eq(dlas_graph_validate(s), 0);
        ck_assert_int_eq(params_of(s), params_of(w));
        ck_assert_int_eq(dlas_graph_n_nodes(s), dlas_graph_n_nodes(w));
        for (int id = 0; id < dlas_graph_n_nodes(w); id++) {
            const struct dlas_node *a = dlas_graph_node(w, id);
            int sid = dlas_graph_find(s, a->name);
            ck_assert_msg(sid >= 0, "%s: the student lacks '%s'", cases[i].block, a->name);
            const struct dlas_node *b = dlas_graph_node(s, sid);
            ck_assert_int_eq(a->op, b->op);
            ck_assert_int_eq(memcmp(a->out_shape, b->out_shape, sizeof a->out_shape), 0);
            if (a->op == DLAS_OP_CONV2D)
                ck_assert_int_eq(a->attr.conv.groups, b->attr.conv.groups);
        }
        /* the requested type in every block; the teacher's depth and widths */
        struct dlas_residual_block *tb = NULL;
        int nt = 0;
        ck_assert_int_eq(dlas_graph_residual_blocks(teacher, &tb, &nt), 0);
        for (int j = 0; j < nt; j++) {
            char nm[DLAS_NAME_MAX + 32];
            snprintf(nm, sizeof nm, "%s.%s", tb[j].prefix, cases[i].probe);
            int id = dlas_graph_find(s, nm);
            ck_assert_msg(id >= 0, "%s: no '%s'", cases[i].block, nm);
            const struct dlas_node *c = dlas_graph_node(s, id);
            int want = cases[i].groups > 0 ? cases[i].groups
                                           : (int)dlas_graph_node(s, c->inputs[0])->out_shape[0] /
                                                 -cases[i].groups;
            ck_assert_int_eq(c->attr.conv.groups, want);
            const struct dlas_node *ta = dlas_graph_node(teacher, dlas_graph_find(teacher, tb[j].add));
            const struct dlas_node *sa = dlas_graph_node(s, dlas_graph_find(s, tb[j].add));
            ck_assert_int_eq(memcmp(ta->out_shape, sa->out_shape, sizeof ta->out_shape), 0);
        }
        free(tb);
        dlas_graph_free(w);
        dlas_graph_free(teacher);
        dlas_graph_free(s);
    }
}
END_TEST

/* Post-activation ResNet blocks take every type too; the student runs. */
START_TEST(test_moonshine_resnet)
{
    const char *r20[] = {"depth=20", NULL};
    for (int j = 0; all_types[j]; j++) {
        struct dlas_graph *g = model("resnet", r20, 3, 16, 16, 10);
        char bk[64];
        snprintf(bk, sizeof bk, "block=\"%s\"", all_types[j]);
        const char *kv[] = {bk, "epochs=0", NULL};
        int rc = compress("moonshine", g, kv);
        struct dlas_block_type t;
        ck_assert_int_eq(dlas_block_type_parse(all_types[j], &t), 0);
        if (dlas_block_type_params(&t, 16, 16, 3, 1) < 0) { /* e.g. BG(2,16) on 16 channels */
            ck_assert_int_eq(rc, DLAS_ERR_INVALID);
            dlas_graph_free(g);
            continue;
        }
        ck_assert_msg(rc == 0, "%s: %s", all_types[j], dlas_last_error());
        struct dlas_tensor in = {0}, out = {0};
        int64_t dims[4] = {2, 3, 16, 16};
        ck_assert_int_eq(dlas_tensor_alloc(&in, DLAS_F32, 4, dims), 0);
        float *x = in.data;
        for (int i = 0; i < 2 * 3 * 16 * 16; i++)
            x[i] = (float)((i * 37) % 101) / 101.0f;
        ck_assert_msg(dlas_graph_forward_ref(g, &in, &out) == 0, "%s", dlas_last_error());
        for (int64_t i = 0; i < dlas_tensor_numel(&out); i++)
            ck_assert(isfinite(((float *)out.data)[i]));
        dlas_tensor_free(&in);
        dlas_tensor_free(&out);
        dlas_graph_free(g);
    }
}
END_TEST

START_TEST(test_moonshine_refuses)
{
    struct dlas_graph *g = model("lenet5", NULL, 1, 28, 28, 10);
    const char *kv[] = {"block=\"G(4)\"", "epochs=0", NULL};
    ck_assert_int_eq(compress("moonshine", g, kv), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "no residual blocks"));
    dlas_graph_free(g);

    const char *w[] = {"depth=10", "width=1", NULL};
    g = model("wrn", w, 1, 12, 12, 4);
    int64_t p = params_of(g);
    const char *g3[] = {"block=\"G(3)\"", "epochs=0", NULL};
    ck_assert_int_eq(compress("moonshine", g, g3), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "block1.0.layer.0"));
    ck_assert_int_eq(params_of(g), p); /* nothing changed */
    const char *bad[] = {"block=\"Q(2)\"", "epochs=0", NULL};
    ck_assert_int_eq(compress("moonshine", g, bad), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "unknown block type 'Q(2)'"));
    /* training the student needs a teacher (the experiment's training) */
    const char *train[] = {"block=\"G(4)\"", "epochs=1", NULL};
    ck_assert_int_eq(compress("moonshine", g, train), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "train.epochs"));
    dlas_graph_free(g);
}
END_TEST

/* ---- attention transfer ------------------------------------------------------ */

static double at_loss_d(const double *s, int64_t cs, const float *t, int64_t ct, int64_t n,
                        int64_t hw)
{
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double qs[64], qt[64], ns = 0, nt = 0;
        for (int64_t j = 0; j < hw; j++) {
            qs[j] = qt[j] = 0;
            for (int64_t c = 0; c < cs; c++)
                qs[j] += s[(i * cs + c) * hw + j] * s[(i * cs + c) * hw + j] / (double)cs;
            for (int64_t c = 0; c < ct; c++)
                qt[j] += (double)t[(i * ct + c) * hw + j] * t[(i * ct + c) * hw + j] / (double)ct;
            ns += qs[j] * qs[j];
            nt += qt[j] * qt[j];
        }
        for (int64_t j = 0; j < hw; j++) {
            double d = qs[j] / sqrt(ns) - qt[j] / sqrt(nt);
            total += d * d;
        }
    }
    return total / (double)(n * hw);
}

/* at(x) = normalise(mean_c x^2), L = mean (at_s - at_t)^2: value and
 * gradient against a float64 definition and its central differences. */
START_TEST(test_at_gradient)
{
    enum { N = 3, CS = 4, CT = 6, HW = 10 };
    float s[N * CS * HW], t[N * CT * HW], g[N * CS * HW];
    double sd[N * CS * HW];
    struct dlas_rng r;
    dlas_rng_seed(&r, 21);
    for (int i = 0; i < N * CS * HW; i++)
        sd[i] = s[i] = (float)(dlas_rng_uniform(&r) * 2 - 1);
    for (int i = 0; i < N * CT * HW; i++)
        t[i] = (float)(dlas_rng_uniform(&r) * 2 - 1);
    memset(g, 0, sizeof g);
    const double scale = 750.0; /* Moonshine's beta*3/n at 4 points, after the trainer's /2 */
    double L = dlas_loss_at(s, CS, t, CT, N, HW, g, scale);
    ck_assert_double_eq_tol(L, at_loss_d(sd, CS, t, CT, N, HW), 1e-6 * fabs(L) + 1e-9);
    double gmax = 0;
    for (int i = 0; i < N * CS * HW; i++)
        gmax = fmax(gmax, fabs(g[i]));
    ck_assert(gmax > 0);
    for (int i = 0; i < N * CS * HW; i++) {
        const double h = 1e-5, x = sd[i];
        sd[i] = x + h;
        double up = at_loss_d(sd, CS, t, CT, N, HW);
        sd[i] = x - h;
        double dn = at_loss_d(sd, CS, t, CT, N, HW);
        sd[i] = x;
        double fd = scale * (up - dn) / (2 * h);
        ck_assert_msg(fabs(fd - g[i]) <= 1e-3 * gmax + 1e-6, "d/ds[%d]: %g vs %g", i, g[i], fd);
    }
}
END_TEST

/* ---- Fisher potential --------------------------------------------------------- */

/* input 1x6x6 -> stem conv 3x3 (4) -> one pre-activation block -> add ->
 * global average pool -> linear (3). Nothing after the probe mixes samples,
 * so each sample's share of the loss can be differentiated on its own. */
static struct dlas_graph *tiny_net(void)
{
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_conv_attr c3 = dlas_conv(4, 3, 1, 1);
    int x = dlas_graph_input(g, "input", 1, 6, 6);
    int stem = dlas_graph_conv2d(g, "stem", x, &c3);
    int y = dlas_graph_batchnorm(g, "b.bn1", stem, 1e-5f);
    y = dlas_graph_relu(g, "b.relu1", y);
    y = dlas_graph_conv2d(g, "b.conv1", y, &c3);
    y = dlas_graph_batchnorm(g, "b.bn2", y, 1e-5f);
    y = dlas_graph_relu(g, "b.relu2", y);
    y = dlas_graph_conv2d(g, "b.conv2", y, &c3);
    y = dlas_graph_add(g, "b.add", stem, y);
    y = dlas_graph_global_avgpool(g, "gap", y);
    y = dlas_graph_flatten(g, "flat", y);
    dlas_graph_linear(g, "fc", y, 3, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 9);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    /* BN away from identity, so its batch statistics matter */
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_BATCHNORM)
            continue;
        for (int c = 0; c < 4; c++) {
            ((float *)n->weight.data)[c] = 0.5f + 0.25f * (float)c;
            ((float *)n->bias.data)[c] = 0.1f * (float)(c - 1);
        }
    }
    return g;
}

/* Per-sample cross-entropy of the train-mode forward. */
static void per_sample_ce(struct dlas_graph *g, int n, const float *x, const int32_t *y,
                          double *ce)
{
    struct dlas_autograd *a = NULL;
    ck_assert_int_eq(dlas_autograd_new(g, n, 1, &a), 0);
    ck_assert_int_eq(dlas_autograd_forward(a, n, x, DLAS_AG_TRAIN | DLAS_AG_KEEP_STATS |
                                                        DLAS_AG_NO_GRAD), 0);
    const float *lg = dlas_autograd_act(a, dlas_autograd_logits_node(a));
    for (int i = 0; i < n; i++) {
        double m = -INFINITY, s = 0;
        for (int k = 0; k < 3; k++)
            m = fmax(m, lg[i * 3 + k]);
        for (int k = 0; k < 3; k++)
            s += exp(lg[i * 3 + k] - m);
        ce[i] = m + log(s) - lg[i * 3 + y[i]];
    }
    dlas_autograd_free(a);
}

/* Delta_c = 1/(2N) sum_n (sum_hw a g)^2 with sum_hw a g = d(loss)/d(e) where
 * channel c of the probe is scaled by (1 + e): central differences of each
 * sample's loss share (its CE / N) in e, with the probe conv's output
 * channel c scaled through its weights. */
START_TEST(test_fisher_potential_fd)
{
    enum { N = 5 };
    struct dlas_graph *g = tiny_net();
    struct dlas_residual_block *b = NULL;
    int nb = 0;
    ck_assert_int_eq(dlas_graph_residual_blocks(g, &b, &nb), 0);
    ck_assert_int_eq(nb, 1);
    float x[N * 36];
    int32_t y[N] = {0, 2, 1, 1, 0};
    struct dlas_rng r;
    dlas_rng_seed(&r, 4);
    for (int i = 0; i < N * 36; i++)
        x[i] = (float)(dlas_rng_uniform(&r) * 2 - 1);
    double pot = -1;
    ck_assert_msg(dlas_fisher_potential(g, b, nb, N, x, y, 1, &pot) == 0, "%s", dlas_last_error());

    struct dlas_node *conv = dlas_graph_node(g, dlas_graph_find(g, "b.conv2"));
    float *w = conv->weight.data;
    const int per = 4 * 9; /* weights of one output channel */
    double expect = 0.0;
    for (int c = 0; c < 4; c++) {
        const double h = 1e-2;
        float keep[36];
        double up[N], dn[N];
        memcpy(keep, w + c * per, sizeof keep);
        for (int i = 0; i < per; i++)
            w[c * per + i] = (float)(keep[i] * (1 + h));
        per_sample_ce(g, N, x, y, up);
        for (int i = 0; i < per; i++)
            w[c * per + i] = (float)(keep[i] * (1 - h));
        per_sample_ce(g, N, x, y, dn);
        memcpy(w + c * per, keep, sizeof keep);
        double d = 0;
        for (int i = 0; i < N; i++) {
            double s = (up[i] - dn[i]) / (2 * h) / N;
            d += s * s;
        }
        expect += fabs(d / (2.0 * N));
    }
    ck_assert_msg(expect > 0 && fabs(pot - expect) <= 2e-3 * expect,
                  "Fisher potential %.9g, finite differences %.9g", pot, expect);
    free(b);
    dlas_graph_free(g);
}
END_TEST

/* The Fisher potential written out the plain way: a fresh autograd, a full
 * backward (parameter gradients too), dlas_fisher_batch at every probe. */
static double fisher_reference(struct dlas_graph *g, const struct dlas_residual_block *b, int nb,
                               int n, const float *x, const int32_t *y)
{
    struct dlas_autograd *a = NULL;
    ck_assert_int_eq(dlas_autograd_new(g, n, 1, &a), 0);
    int probe[64];
    ck_assert_int_le(nb, 64);
    for (int k = 0; k < nb; k++) {
        probe[k] = dlas_residual_block_probe(g, &b[k]);
        ck_assert_int_ge(probe[k], 0);
        ck_assert_int_eq(dlas_autograd_keep(a, probe[k]), 0);
    }
    ck_assert_int_eq(dlas_autograd_forward(a, n, x, DLAS_AG_TRAIN | DLAS_AG_KEEP_STATS), 0);
    int lid = dlas_autograd_logits_node(a);
    dlas_loss_xent(dlas_autograd_act(a, lid), y, n, dlas_graph_node(g, lid)->out_shape[0], 0.0,
                   dlas_autograd_grad(a, lid), 1.0);
    ck_assert_int_eq(dlas_autograd_backward(a), 0);
    double total = 0.0;
    for (int k = 0; k < nb; k++) {
        const struct dlas_node *pn = dlas_graph_node(g, probe[k]);
        int64_t c = pn->out_shape[0];
        double *delta = calloc((size_t)c, sizeof *delta);
        dlas_fisher_batch(dlas_autograd_act(a, probe[k]), dlas_autograd_grad(a, probe[k]), n, c,
                          pn->out_shape[1] * pn->out_shape[2], delta);
        double block = 0.0;
        for (int64_t i = 0; i < c; i++)
            block += fabs(delta[i]);
        total += block;
        free(delta);
    }
    dlas_autograd_free(a);
    return total;
}

/* Candidates scored in turn through one autograd (dlas_autograd_set_graph,
 * dlas_fisher_potential_with: BlockSwap's search) score exactly as each
 * scored alone the plain way, whatever came before: bigger and smaller
 * graphs, in an arena left dirty by the previous candidate. */
START_TEST(test_fisher_potential_reuse)
{
    enum { N = 6 };
    const char *w[] = {"depth=10", "width=2", NULL};
    struct dlas_graph *teacher = model("wrn", w, 1, 12, 12, 3);
    struct dlas_residual_block *b = NULL;
    int nb = 0;
    ck_assert_int_eq(dlas_graph_residual_blocks(teacher, &b, &nb), 0);
    ck_assert_int_ge(nb, 2);
    float x[N * 144];
    int32_t y[N];
    struct dlas_rng r;
    dlas_rng_seed(&r, 11);
    for (int i = 0; i < N * 144; i++)
        x[i] = (float)(dlas_rng_uniform(&r) * 2 - 1);
    for (int i = 0; i < N; i++)
        y[i] = i % 3;
    /* per block: a type, in an order that grows, shrinks and mixes */
    const char *plan[][2] = {{"S", "S"},       {"DW", "G(2)"},  {"B(2)", "BG(2,2)"},
                             {"S", "DW"},      {"G(N/2)", "S"}, {"BG(2,2)", "B(4)"}};
    const int n_plan = (int)(sizeof plan / sizeof plan[0]);
    struct dlas_autograd *a = NULL;
    struct dlas_graph *held = NULL;
    for (int c = 0; c < n_plan; c++) {
        struct dlas_graph *g = dlas_graph_clone(teacher);
        for (int k = 0; k < nb; k++) {
            struct dlas_block_type t;
            ck_assert_int_eq(dlas_block_type_parse(plan[c][k % 2], &t), 0);
            ck_assert_msg(dlas_graph_substitute_block(g, &b[k], &t, NULL) == 0, "%s",
                          dlas_last_error());
        }
        struct dlas_rng wr;
        dlas_rng_seed(&wr, 100 + (uint64_t)c);
        ck_assert_int_eq(dlas_graph_init_weights(g, &wr), 0);
        if (a)
            ck_assert_msg(dlas_autograd_set_graph(a, g) == 0, "%s", dlas_last_error());
        else
            ck_assert_int_eq(dlas_autograd_new(g, N, 1, &a), 0);
        dlas_graph_free(held);
        held = g;
        double reused = -1, alone = -2, plain = fisher_reference(g, b, nb, N, x, y);
        ck_assert_msg(dlas_fisher_potential_with(a, b, nb, N, x, y, &reused) == 0, "%s",
                      dlas_last_error());
        ck_assert_msg(dlas_fisher_potential(g, b, nb, N, x, y, 1, &alone) == 0, "%s",
                      dlas_last_error());
        ck_assert_msg(plain > 0 && reused == plain && alone == plain,
                      "candidate %d: reused %.17g, alone %.17g, plain %.17g", c, reused, alone,
                      plain);
    }
    ck_assert_int_eq(dlas_autograd_set_graph(a, NULL), DLAS_ERR_INVALID);
    dlas_autograd_free(a);
    dlas_graph_free(held);
    dlas_graph_free(teacher);
    free(b);
}
END_TEST

/* ---- blockswap ----------------------------------------------------------------- */

struct bs_run {
    struct dlas_rng rng;
    struct dlas_host host;
    struct dlas_params *dp;
    struct dlas_data *data;
    struct dlas_trainer *trainer;
    struct dlas_graph *g, *teacher;
};

static void bs_open(struct bs_run *r)
{
    memset(r, 0, sizeof *r);
    const struct dlas_component *c = find(DLAS_KIND_DATASET, "synthetic");
    dlas_rng_seed(&r->rng, 1);
    dlas_host_init(&r->host, &r->rng, 1);
    const char *kv[] = {"train_size=96", "test_size=32", "height=12", "width=12", "classes=4",
                        NULL};
    r->dp = params(c, kv);
    struct dlas_data_options o;
    dlas_data_options_default(&o);
    o.seed = 7;
    o.batch = 16;
    o.workers = 0;
    ck_assert_msg(dlas_data_open_component(c, &r->host, r->dp, &o, &r->data) == 0, "%s",
                  dlas_last_error());
    const char *w[] = {"depth=16", "width=1", NULL};
    r->g = model("wrn", w, 1, 12, 12, 4);
    r->teacher = dlas_graph_clone(r->g);
    struct dlas_train_options to;
    dlas_test_train_options(&to, 16, 0.1);
    ck_assert_int_eq(dlas_trainer_new(r->g, r->data, &to, &r->trainer), 0);
}

static void bs_close(struct bs_run *r)
{
    dlas_trainer_free(r->trainer);
    dlas_data_close(r->data);
    dlas_params_free(r->dp);
    dlas_graph_free(r->g);
    dlas_graph_free(r->teacher);
}

static int bs_apply(struct bs_run *r, uint64_t seed, const char *const *kv)
{
    const struct dlas_component *c = find(DLAS_KIND_COMPRESSOR, "blockswap");
    struct dlas_params *p = params(c, kv);
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    host_setup(seed);
    ctx.host = &host;
    ctx.graph = r->g;
    ctx.trainer = r->trainer;
    ctx.data = r->data;
    ctx.teacher = r->teacher;
    int rc = ((const struct dlas_compressor_ops *)c->ops)->apply(&ctx, p);
    dlas_params_free(p);
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* The chosen genotype lies within the budget, was counted right, and scored
 * highest of the samples; the same seed chooses the same genotype. */
START_TEST(test_blockswap_search)
{
    char log1[256], log2[256], log3[256];
    snprintf(log1, sizeof log1, "/tmp/check_students_%d_a.csv", (int)getpid());
    snprintf(log2, sizeof log2, "/tmp/check_students_%d_b.csv", (int)getpid());
    snprintf(log3, sizeof log3, "/tmp/check_students_%d_c.csv", (int)getpid());
    char l1[300], l2[300], l3[300];
    snprintf(l1, sizeof l1, "log=\"%s\"", log1);
    snprintf(l2, sizeof l2, "log=\"%s\"", log2);
    snprintf(l3, sizeof l3, "log=\"%s\"", log3);

    struct bs_run r;
    bs_open(&r);
    const int64_t P = params_of(r.teacher);
    const char *kv[] = {"budget=0.5", "samples=12", "fisher_batch=16", "epochs=0", l1, NULL};
    ck_assert_msg(bs_apply(&r, 5, kv) == 0, "%s", dlas_last_error());
    const int64_t built = params_of(r.g);
    ck_assert_int_eq(dlas_graph_validate(r.g), 0);
    bs_close(&r);
    const double lo = 0.5 * (double)P * 0.975, hi = 0.5 * (double)P * 1.025;
    ck_assert_msg(built >= lo && built <= hi, "built %lld outside %.0f..%.0f", (long long)built,
                  lo, hi);

    char *text = slurp(log1);
    int rows = 0, chosen = -1;
    double best = -1, chosen_f = -2;
    long long chosen_p = -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "sample,", 7))
            continue;
        int idx, ch;
        long long p;
        double f;
        ck_assert_int_eq(sscanf(line, "%d,%lld,%lf,%d,", &idx, &p, &f, &ch), 4);
        ck_assert_msg(p >= lo && p <= hi, "sample %d: %lld parameters outside the budget", idx, p);
        ck_assert(f > 0);
        best = fmax(best, f);
        if (ch) {
            chosen = idx;
            chosen_f = f;
            chosen_p = p;
        }
        rows++;
    }
    free(text);
    ck_assert_int_eq(rows, 12);
    ck_assert_int_ge(chosen, 0);
    ck_assert(chosen_f == best);
    ck_assert_int_eq(chosen_p, built);

    /* same seed, same samples and scores; another seed, other samples */
    bs_open(&r);
    const char *kv2[] = {"budget=0.5", "samples=12", "fisher_batch=16", "epochs=0", l2, NULL};
    ck_assert_msg(bs_apply(&r, 5, kv2) == 0, "%s", dlas_last_error());
    bs_close(&r);
    bs_open(&r);
    const char *kv3[] = {"budget=0.5", "samples=12", "fisher_batch=16", "epochs=0", l3, NULL};
    ck_assert_msg(bs_apply(&r, 6, kv3) == 0, "%s", dlas_last_error());
    bs_close(&r);
    char *a = slurp(log1), *b = slurp(log2), *c = slurp(log3);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    free(a);
    free(b);
    free(c);
    remove(log1);
    remove(log2);
    remove(log3);
}
END_TEST

START_TEST(test_blockswap_refuses)
{
    struct bs_run r;
    bs_open(&r);
    int64_t p = params_of(r.g);
    const char *tiny[] = {"budget=0.01", "samples=4", "epochs=0", NULL};
    ck_assert_int_eq(bs_apply(&r, 5, tiny), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "out of reach"));
    const char *over[] = {"budget=3", "samples=4", "epochs=0", NULL};
    ck_assert_int_eq(bs_apply(&r, 5, over), DLAS_ERR_INVALID);
    const char *pick[] = {"budget=0.5", "samples=2", "fisher_batch=8", "pick=5", "epochs=0",
                          NULL};
    ck_assert_int_eq(bs_apply(&r, 5, pick), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "pick"));
    ck_assert_int_eq(params_of(r.g), p); /* nothing changed */
    bs_close(&r);

    /* no data: the Fisher potential cannot be measured */
    const char *w[] = {"depth=10", "width=1", NULL};
    struct dlas_graph *g = model("wrn", w, 1, 12, 12, 4);
    const char *kv[] = {"budget=0.5", "epochs=0", NULL};
    ck_assert_int_eq(compress("blockswap", g, kv), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "train.epochs"));
    dlas_graph_free(g);
}
END_TEST

/* ---- hakd ---------------------------------------------------------------------- */

/* A fake target on which grouped convolutions run 8 times slower per MAC
 * than dense ones: a student chosen by MACs would pick G(g), one chosen by
 * the (fake) kernel picks bottlenecks. Node times are MACs x cost. */
static double fake_cost(const struct dlas_node *n)
{
    return n->op == DLAS_OP_CONV2D && n->attr.conv.groups > 1 ? 8e-9 : 1e-9;
}

static int fake_latency(struct dlas_compress_ctx *ctx, const struct dlas_graph *g, unsigned flags,
                        struct dlas_latency *out, double *node_seconds)
{
    double t = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        double s = (double)dlas_node_macs(g, id) * fake_cost(dlas_graph_node(g, id));
        if (node_seconds)
            node_seconds[id] = s;
        t += s;
    }
    memset(out, 0, sizeof *out);
    out->median_s = out->min_s = out->max_s = t;
    out->runs = 1;
    out->batch = 1;
    out->threads = 1;
    snprintf(out->binding, sizeof out->binding, "fake");
    return DLAS_OK;
}

static double fake_total(const struct dlas_graph *g)
{
    struct dlas_latency l;
    fake_latency(NULL, g, 0, &l, NULL);
    return l.median_s;
}

static int hakd_apply_on(struct dlas_graph *g, const char *const *kv, int with_latency)
{
    const struct dlas_component *c = find(DLAS_KIND_COMPRESSOR, "hakd");
    struct dlas_params *p = params(c, kv);
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    host_setup(11);
    ctx.host = &host;
    ctx.graph = g;
    ctx.latency = with_latency ? fake_latency : NULL;
    int rc = ((const struct dlas_compressor_ops *)c->ops)->apply(&ctx, p);
    dlas_params_free(p);
    return rc;
}

static int hakd_apply(struct dlas_graph *g, const char *const *kv)
{
    return hakd_apply_on(g, kv, 1);
}

/* For each budget frac[f] (of the teacher on the fake target): the fewest
 * cheap stages any assignment needs to meet it, and the most parameters
 * among those. Found by trying every assignment of S and hakd's default
 * types to the 3 stages (once for all the budgets: each try builds a
 * student). */
static void hakd_brute_force(const struct dlas_graph *t, const double *frac, int nf,
                             int *min_sub, int64_t *max_params)
{
    static const char *const ty[] = {"S", "G(2)", "G(4)", "G(8)", "G(16)", "DW", "B(2)",
                                     "B(4)", "BG(2,2)", "BG(2,4)"};
    struct dlas_residual_block *b = NULL;
    int nb = 0;
    ck_assert_int_eq(dlas_graph_residual_blocks(t, &b, &nb), 0);
    const double T = fake_total(t);
    for (int f = 0; f < nf; f++)
        min_sub[f] = 4, max_params[f] = -1;
    for (int k = 0; k < 1000; k++) {
        int a[3] = {k % 10, k / 10 % 10, k / 100}, sub = (a[0] > 0) + (a[1] > 0) + (a[2] > 0);
        struct dlas_graph *g = dlas_graph_clone(t);
        int ok = 1, stage = 0;
        for (int i = 0; i < nb && ok; i++) {
            struct dlas_block_type bt;
            ck_assert_int_eq(dlas_block_type_parse(ty[a[stage]], &bt), 0);
            ok = dlas_graph_substitute_block(g, &b[i], &bt, NULL) == 0;
            stage += b[i].stage_end;
        }
        dlas_clear_error();
        const double cost = ok ? fake_total(g) : 0;
        const int64_t params = ok ? params_of(g) : 0;
        for (int f = 0; f < nf; f++)
            if (ok && cost <= frac[f] * T &&
                (sub < min_sub[f] || (sub == min_sub[f] && params > max_params[f]))) {
                min_sub[f] = sub;
                max_params[f] = params;
            }
        dlas_graph_free(g);
    }
    free(b);
}

/* Within the budget on the (fake) target, with the fewest cheap stages any
 * assignment needs and, of those, the most parameters; the kernel's cost,
 * not the MACs, decides (grouped convolutions are slow there). */
START_TEST(test_hakd_latency_choice)
{
    const char *w[] = {"depth=10", "width=2", NULL};
    struct dlas_graph *t = model("wrn", w, 1, 12, 12, 4);
    const double T = fake_total(t);
    const double fracs[] = {0.8, 0.6};
    int min_subs[2];
    int64_t max_paramss[2];
    hakd_brute_force(t, fracs, 2, min_subs, max_paramss);
    for (int f = 0; f < 2; f++) {
        char lat[32];
        snprintf(lat, sizeof lat, "latency=%g", fracs[f]);
        const char *kv[] = {lat, "epochs=0", NULL};
        struct dlas_graph *g = dlas_graph_clone(t);
        ck_assert_msg(hakd_apply(g, kv) == 0, "%s", dlas_last_error());
        ck_assert_int_eq(dlas_graph_validate(g), 0);
        ck_assert_msg(fake_total(g) <= fracs[f] * T, "%g > %g", fake_total(g), fracs[f] * T);
        const int min_sub = min_subs[f];
        const int64_t max_params = max_paramss[f];
        ck_assert_int_le(min_sub, 3);
        int sub = 0;
        const char *blk[3] = {"block1.0.layer.0", "block2.0.layer.0", "block3.0.layer.0"};
        for (int s = 0; s < 3; s++) {
            char nm[64];
            snprintf(nm, sizeof nm, "%s.conv2.conv", blk[s]);
            sub += dlas_graph_find(g, nm) < 0;
        }
        ck_assert_int_eq(sub, min_sub);
        ck_assert_int_eq(params_of(g), max_params);
        dlas_graph_free(g);
    }
    /* an unreachable budget is refused, naming the fastest student */
    const char *tight[] = {"latency=0.01", "epochs=0", NULL};
    struct dlas_graph *g = dlas_graph_clone(t);
    ck_assert_int_eq(hakd_apply(g, tight), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "fastest"));
    ck_assert_int_eq(params_of(g), params_of(t));
    dlas_graph_free(g);
    dlas_graph_free(t);
}
END_TEST

/* A budget every student meets needs no cheap stage: the student is the
 * teacher. Types that fit no block, a model without residual blocks, and a
 * context that cannot time are refused, and nothing changes. */
START_TEST(test_hakd_refuses)
{
    const char *w[] = {"depth=10", "width=2", NULL};
    struct dlas_graph *t = model("wrn", w, 1, 12, 12, 4);
    struct dlas_graph *g = dlas_graph_clone(t);
    const char *loose[] = {"latency_ms=1e6", "epochs=0", NULL};
    ck_assert_msg(hakd_apply(g, loose) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(params_of(g), params_of(t));
    ck_assert_int_eq(dlas_graph_n_nodes(g), dlas_graph_n_nodes(t));
    dlas_graph_free(g);

    g = dlas_graph_clone(t);
    const char *types[] = {"types=[\"G(3)\"]", "latency=0.5", "epochs=0", NULL};
    ck_assert_int_eq(hakd_apply(g, types), DLAS_ERR_INVALID); /* G(3) fits no block */
    ck_assert_int_eq(params_of(g), params_of(t));
    dlas_graph_free(g);

    g = dlas_graph_clone(t);
    const char *kv[] = {"latency=0.5", "epochs=0", NULL};
    ck_assert_int_eq(hakd_apply_on(g, kv, 0), DLAS_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "latency"));
    ck_assert_int_eq(params_of(g), params_of(t));
    dlas_graph_free(g);
    dlas_graph_free(t);

    g = model("lenet5", NULL, 1, 28, 28, 10);
    ck_assert_int_eq(hakd_apply(g, kv), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "no residual blocks"));
    dlas_graph_free(g);
}
END_TEST


/* Through a real experiment: hakd times on the point's primitive and
 * backend (or "auto"), records how, and a loose budget keeps the teacher
 * while a tight one picks a cheap student that was measured within it. */
START_TEST(test_hakd_in_experiment)
{
    char dir[256], cfg[320], out[320];
    snprintf(dir, sizeof dir, "%s/dlas-hakd-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/hakd.cfg", dir);
    snprintf(out, sizeof out, "%s/results", dir);
    FILE *fp = fopen(cfg, "w");
    ck_assert_ptr_nonnull(fp);
    fprintf(fp,
            "experiment = { seeds = [1]; eval_samples = 8; repeat = 3; warmup = 1; batch = 1;\n"
            "  output = { dir = \"%s\"; }; };\n"
            "dataset = { plugin = \"synthetic\"; classes = 4; height = 12; width = 12;\n"
            "  channels = 1; train_size = 16; test_size = 8; };\n"
            "models = { w = { plugin = \"wrn\"; depth = 10; width = 2; }; };\n"
            "train = { epochs = 0; };\n"
            "compressors = { loose = ( { plugin = \"hakd\"; latency_ms = 1e6; epochs = 0; } );\n"
            "  fast = ( { plugin = \"hakd\"; binding = \"auto\"; latency = 0.9; verify = 50;\n"
            "             types = [\"B(4)\", \"DW\"]; epochs = 0; } ); };\n"
            "primitives = { im2col = { plugin = \"im2col-gemm\"; };\n"
            "  direct = { plugin = \"direct\"; }; };\n"
            "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n"
            "sweep = { primitives = [\"im2col\"]; };\n",
            out);
    fclose(fp);
    struct dlas_experiment *e;
    ck_assert_msg(dlas_experiment_load(cfg, reg, &e) == 0, "%s", dlas_last_error());
    struct dlas_run_options ro;
    dlas_run_options_default(&ro);
    ro.progress = 0;
    struct dlas_run_summary sum;
    ck_assert_msg(dlas_experiment_run(e, &ro, &sum) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(sum.ran, 2);
    for (size_t i = 0; i < 2; i++) {
        const char *on = dlas_experiment_result(e, i, "hakd.timed_on");
        const char *st = dlas_experiment_result(e, i, "hakd.stages");
        ck_assert_msg(on && st, "point %zu: %s", i, dlas_experiment_result(e, i, "error"));
        double ms = atof(dlas_experiment_result(e, i, "hakd.latency_ms"));
        double target = atof(dlas_experiment_result(e, i, "hakd.target_ms"));
        ck_assert(ms > 0 && ms <= target);
        ck_assert_msg(strstr(on, "1 threads, batch 1"), "%s", on);
        if (!strncmp(on, "auto:", 5)) { /* the tight budget: some stage is cheap */
            ck_assert_msg(strstr(st, "B(4)") || strstr(st, "DW"), "%s", st);
        } else {
            ck_assert_msg(!strncmp(on, "im2col", 6), "%s", on);
            ck_assert_str_eq(st, "S S S");
        }
    }
    dlas_experiment_free(e);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("students");
    TCase *tc = tcase_create("students");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_type_names);
    tcase_add_test(tc, test_type_formulas);
    tcase_add_test(tc, test_type_built_counts);
    tcase_add_test(tc, test_find_blocks);
    tcase_add_test(tc, test_moonshine_is_wrn_variant);
    tcase_add_test(tc, test_moonshine_resnet);
    tcase_add_test(tc, test_moonshine_refuses);
    tcase_add_test(tc, test_at_gradient);
    tcase_add_test(tc, test_fisher_potential_fd);
    tcase_add_test(tc, test_fisher_potential_reuse);
    tcase_add_test(tc, test_blockswap_search);
    tcase_add_test(tc, test_blockswap_refuses);
    tcase_add_test(tc, test_hakd_latency_choice);
    tcase_add_test(tc, test_hakd_refuses);
    tcase_add_test(tc, test_hakd_in_experiment);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    reg = dlas_test_registry("check_students");
    if (!reg)
        return 1;
    int rc = dlas_test_run(suite());
    dlas_registry_free(reg);
    return rc;
}
