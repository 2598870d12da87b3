/* The pruning compressors on constructed cases whose answer is known:
 * l1-channel removes the smallest-norm filters (by |w|, not signed sums),
 * fisher the channel of lowest saliency, activation the one of lowest
 * attention; gradual magnitude follows the cubic schedule; a latency target
 * is met on the measured plan; fine-tuning is a chain step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static struct dlas_registry *reg;
static char tmpdir[256];

static void setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "prune");
    reg = dlas_test_registry("check_prune");
    ck_assert_ptr_nonnull(reg);
}

static void teardown(void)
{
    dlas_registry_free(reg);
    dlas_test_rmtree(tmpdir);
}

/* in 1x8x8 -> conv1 (6) -> bn1 -> relu1 -> conv2 (5) -> bn2 -> relu2 -> gap
 * -> flat -> fc (4 classes) */
static struct dlas_graph *net(uint64_t seed)
{
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_conv_attr c1 = dlas_conv(6, 3, 1, 1), c2 = dlas_conv(5, 3, 1, 1);
    int x = dlas_graph_input(g, "in", 1, 8, 8);
    x = dlas_graph_conv2d(g, "conv1", x, &c1);
    x = dlas_graph_batchnorm(g, "bn1", x, 1e-5f);
    x = dlas_graph_relu(g, "relu1", x);
    x = dlas_graph_conv2d(g, "conv2", x, &c2);
    x = dlas_graph_batchnorm(g, "bn2", x, 1e-5f);
    x = dlas_graph_relu(g, "relu2", x);
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flat", x);
    dlas_graph_linear(g, "fc", x, 4, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    return g;
}

static struct dlas_node *node(struct dlas_graph *g, const char *name)
{
    int id = dlas_graph_find(g, name);
    ck_assert_msg(id >= 0, "no node %s", name);
    return dlas_graph_node(g, id);
}

/* Which of the original rows of `before` the pruned weight kept, in order. */
static int kept_rows(const struct dlas_node *before, const struct dlas_node *after, int *rows,
                     double tol)
{
    int64_t per = dlas_tensor_numel(&before->weight) / before->weight.dims[0];
    int n = 0;
    for (int64_t r = 0; r < after->weight.dims[0]; r++)
        for (int64_t q = 0; q < before->weight.dims[0]; q++) {
            const float *a = dlas_f32(&after->weight) + r * per;
            const float *b = dlas_f32(&before->weight) + q * per;
            int same = 1;
            for (int64_t i = 0; i < per && same; i++)
                same = fabs(a[i] - b[i]) <= tol * (fabs(b[i]) + 1e-3);
            if (same) {
                rows[n++] = (int)q;
                break;
            }
        }
    return n;
}

/* The rows of `layer` that pruning kept are exactly want[0..n) of before's. */
static void assert_kept(struct dlas_graph *before, struct dlas_graph *g, const char *layer,
                        double tol, const int *want, int n)
{
    int rows[64];
    ck_assert_int_lt(node(before, layer)->weight.dims[0], 65);
    ck_assert_int_eq(kept_rows(node(before, layer), node(g, layer), rows, tol), n);
    for (int k = 0; k < n; k++)
        ck_assert_msg(rows[k] == want[k], "%s: kept row %d is %d, want %d", layer, k, rows[k],
                      want[k]);
}

static int64_t params_of(const struct dlas_graph *g)
{
    struct dlas_graph_stats s;
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    return s.params;
}

/* "absolute=N": a params goal `fewer` below g's count now. */
static void absolute_goal(char *buf, size_t len, const struct dlas_graph *g, int64_t fewer)
{
    snprintf(buf, len, "absolute=%lld", (long long)(params_of(g) - fewer));
}

static int apply(const char *name, struct dlas_compress_ctx *ctx, const char *const *sets)
{
    return dlas_test_compress(reg, ctx, name, sets);
}

/* What a compressor is applied with: a host and a context on graph g;
 * world_open adds training data and a trainer. */
struct world {
    struct dlas_test_data syn; /* the host, and training data after world_open */
    struct dlas_trainer *trainer;
    struct dlas_graph *g;
    struct dlas_compress_ctx ctx;
};

static void world_bare(struct world *w, struct dlas_graph *g)
{
    memset(w, 0, sizeof *w);
    dlas_rng_seed(&w->syn.rng, 1);
    dlas_host_init(&w->syn.host, &w->syn.rng, 1);
    w->g = g;
    w->ctx.size = sizeof w->ctx;
    w->ctx.host = &w->syn.host;
    w->ctx.graph = g;
}

static void world_open(struct world *w, struct dlas_graph *g)
{
    world_bare(w, g);
    static const char *const kv[] = {"train_size", "256", "test_size", "64", "height", "8",
                                     "width", "8", "classes", "4", NULL};
    struct dlas_data_options dopt;
    dlas_data_options_default(&dopt);
    dopt.batch = 32;
    dopt.workers = 1;
    dlas_test_data_open(&w->syn, reg, "synthetic", kv, &dopt);
    struct dlas_train_options o;
    dlas_test_train_options(&o, 32, 0.05);
    ck_assert_int_eq(dlas_trainer_new(g, w->syn.data, &o, &w->trainer), 0);
    w->ctx.trainer = w->trainer;
    w->ctx.data = w->syn.data;
}

static void world_close(struct world *w)
{
    dlas_trainer_free(w->trainer);
    dlas_test_data_close(&w->syn);
}

/* Row r of conv1 scaled so that |w| sums rank 2 < 0 < 5 < 4 < 1 < 3; row 4
 * has mostly negative weights: its signed sum is the smallest of all, its
 * L1 norm is in the middle, so a ranking by signed sums (the BayesWatch
 * code's l1_prune) removes another set than one by |w|. */
static void rank_conv1(struct dlas_graph *g)
{
    static const float scale[6] = {0.5f, 2.0f, 0.1f, 3.0f, 1.5f, 1.0f};
    struct dlas_node *c1 = node(g, "conv1");
    for (int r = 0; r < 6; r++)
        for (int i = 0; i < 9; i++) {
            float v = scale[r] * (float)(1 + (i * 7 + r) % 5) / 5.0f;
            dlas_f32(&c1->weight)[r * 9 + i] = r == 4 && i != 0 ? -v : v;
        }
}

START_TEST(l1_layer_removes_smallest_norms)
{
    struct dlas_graph *g = net(1);
    rank_conv1(g);
    struct dlas_graph *before = dlas_graph_clone(g);
    struct world w;
    world_bare(&w, g);
    const char *sets[] = {"mode=layer", "layer_fraction=0.5", NULL};
    ck_assert_msg(apply("l1-channel", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(node(g, "conv1")->out_shape[0], 3);
    ck_assert_int_eq(node(g, "conv2")->out_shape[0], 3); /* floor(5 / 2) = 2 gone */
    /* 2, 0, 5 went: the smallest |w| (signed sums would take 4, 2, 0) */
    assert_kept(before, g, "conv1", 0, (const int[]){1, 3, 4}, 3);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    dlas_graph_free(before);
    dlas_graph_free(g);
}
END_TEST

/* Global ranking to a params target: removal follows the norms across
 * layers (normalised by filter size) and stops at the goal. */
START_TEST(l1_global_stops_at_params_target)
{
    struct dlas_graph *g = net(2);
    rank_conv1(g);
    /* conv2's filters are made large, so conv1's go first */
    struct dlas_node *c2 = node(g, "conv2");
    for (int64_t i = 0; i < dlas_tensor_numel(&c2->weight); i++)
        dlas_f32(&c2->weight)[i] = 5.0f + (float)(i % 7);
    const int64_t params0 = params_of(g);
    struct dlas_graph *before = dlas_graph_clone(g);
    struct world w;
    world_bare(&w, g);
    /* one conv1 channel is 9 + 2 (bn) + 5*9 (conv2's inputs) = 56 params */
    char goal[64];
    absolute_goal(goal, sizeof goal, g, 2 * 56);
    const char *sets[] = {"target=params", goal, NULL};
    ck_assert_msg(apply("l1-channel", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(params_of(g), params0 - 2 * 56);
    /* 2, 0 went (signed sums would take 4, 2) */
    assert_kept(before, g, "conv1", 0, (const int[]){1, 3, 4, 5}, 4);
    ck_assert_int_eq(node(g, "conv2")->out_shape[0], 5);
    dlas_graph_free(before);
    dlas_graph_free(g);
}
END_TEST

/* in (1x8x8) -> conv1 (8) -> relu1 -> gconv (8, 2 groups) -> relu2 -> conv3 (6)
 * -> relu3 -> gap -> flat -> fc (4 classes) */
static struct dlas_graph *grouped_net(uint64_t seed)
{
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_conv_attr c1 = dlas_conv(8, 3, 1, 1), c2 = dlas_conv(8, 3, 1, 1),
                          c3 = dlas_conv(6, 1, 1, 0);
    c2.groups = 2;
    c2.bias = 1;
    int x = dlas_graph_input(g, "in", 1, 8, 8);
    x = dlas_graph_relu(g, "relu1", dlas_graph_conv2d(g, "conv1", x, &c1));
    x = dlas_graph_relu(g, "relu2", dlas_graph_conv2d(g, "gconv", x, &c2));
    x = dlas_graph_relu(g, "relu3", dlas_graph_conv2d(g, "conv3", x, &c3));
    x = dlas_graph_flatten(g, "flat", dlas_graph_global_avgpool(g, "gap", x));
    dlas_graph_linear(g, "fc", x, 4, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    return g;
}

/* Scale row r of a layer's weight by scale[r]. */
static void scale_rows(struct dlas_node *n, const float *scale)
{
    const int64_t per = dlas_tensor_numel(&n->weight) / n->weight.dims[0];
    for (int64_t r = 0; r < n->weight.dims[0]; r++)
        for (int64_t i = 0; i < per; i++)
            dlas_f32(&n->weight)[r * per + i] *= scale[r];
}

/* The masked network against the same with its masked channels removed:
 * exactly the same output on a random input, want_removed channels gone. */
static void assert_removal_exact(struct dlas_graph *g, int64_t want_removed)
{
    ck_assert_int_eq(dlas_test_remove_masked_exact(g, 9, "masked network"), want_removed);
}

/* A grouped conv of 2 groups of 4 loses as many channels from each group:
 * the channels it reads (conv1's) and writes go in wholes {j, j + 4}, one
 * class from each group; conv3's stand alone. dlas_prune_units_find lists
 * those alone (the channels of a whole could not go one by one); masking
 * wholes is accepted, and the masked network computes exactly what the
 * network with those channels removed does. */
START_TEST(wholes_of_grouped_convs)
{
    struct dlas_graph *g = grouped_net(4);
    const int conv1 = dlas_graph_find(g, "conv1"), gconv = dlas_graph_find(g, "gconv"),
              conv3 = dlas_graph_find(g, "conv3");
    struct dlas_prune_units u;
    ck_assert_int_eq(dlas_prune_units_find(g, DLAS_PRUNE_ALL, 0, &u), 0);
    ck_assert_int_eq(u.n, 6);
    for (int64_t i = 0; i < u.n; i++)
        ck_assert_int_eq(u.u[i].node, conv3);
    dlas_prune_units_free(&u);
    char note[256];
    ck_assert_int_eq(dlas_prune_grouped_note(g, note, sizeof note), 1);
    ck_assert_msg(strstr(note, "'gconv'") != NULL, "%s", note);
    struct dlas_prune_wholes w;
    ck_assert_int_eq(dlas_prune_units_find_wholes(g, DLAS_PRUNE_ALL, 0, &u, &w), 0);
    ck_assert_int_eq(u.n, 22);
    ck_assert_int_eq(w.n, 14);
    int per_node[3] = {0, 0, 0};
    for (int64_t k = 0; k < w.n; k++) {
        const struct dlas_prune_unit *a = &u.u[w.part[w.first[k]]];
        const int64_t parts = w.first[k + 1] - w.first[k];
        ck_assert_int_eq(parts, a->node == conv3 ? 1 : 2);
        per_node[a->node == conv1 ? 0 : a->node == gconv ? 1 : 2]++;
        if (parts == 2) { /* one channel of each group, at the same place */
            const struct dlas_prune_unit *b = &u.u[w.part[w.first[k] + 1]];
            ck_assert_int_eq(b->node, a->node);
            ck_assert_int_eq(b->channel, a->channel + 4);
        }
        for (int64_t p = w.first[k]; p < w.first[k + 1]; p++)
            ck_assert_int_eq(w.whole_of[w.part[p]], k);
    }
    ck_assert(per_node[0] == 4 && per_node[1] == 4 && per_node[2] == 6);
    /* mask one whole of conv1's, one of gconv's, one of conv3's */
    for (int64_t k = 0; k < w.n; k++) {
        const struct dlas_prune_unit *a = &u.u[w.part[w.first[k]]];
        if ((a->node == conv1 && a->channel == 1) || (a->node == gconv && a->channel == 3) ||
            (a->node == conv3 && a->channel == 0)) {
            ck_assert_msg(dlas_prune_mask_whole(g, &u, &w, k) == 0, "%s", dlas_last_error());
            ck_assert_int_eq(dlas_prune_whole_live(g, &u, &w, k), 0);
        }
    }
    ck_assert(dlas_graph_channel_masked(g, conv1, 5) && dlas_graph_channel_masked(g, gconv, 7));
    ck_assert(!dlas_graph_channel_masked(g, conv1, 0) && !dlas_graph_channel_masked(g, gconv, 6));
    /* a part alone is refused */
    uint8_t keep[8];
    memset(keep, 1, sizeof keep);
    keep[0] = 0;
    ck_assert_int_ne(dlas_graph_mask_channels(g, conv1, keep), 0);
    ck_assert_msg(strstr(dlas_last_error(), "different number") != NULL, "%s", dlas_last_error());
    dlas_prune_wholes_free(&w);
    dlas_prune_units_free(&u);

    assert_removal_exact(g, 5);
    ck_assert_int_eq(node(g, "conv1")->out_shape[0], 6);
    ck_assert_int_eq(node(g, "gconv")->out_shape[0], 6);
    ck_assert_int_eq(node(g, "gconv")->attr.conv.groups, 2);
    ck_assert_int_eq(node(g, "conv3")->out_shape[0], 5);
    dlas_graph_free(g);
}
END_TEST

/* A conv of 4 groups of 2 reading concat(convA, convB) (4 channels each):
 * one channel from every group is convA's 0 and 2 and convB's 0 and 2, a
 * whole of 4 parts in two layers, masked at once. */
START_TEST(wholes_across_a_concat)
{
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_conv_attr c = dlas_conv(4, 3, 1, 1), gc = dlas_conv(8, 3, 1, 1);
    gc.groups = 4;
    int x = dlas_graph_input(g, "in", 1, 6, 6);
    int a = dlas_graph_relu(g, "reluA", dlas_graph_conv2d(g, "convA", x, &c));
    int b = dlas_graph_relu(g, "reluB", dlas_graph_conv2d(g, "convB", x, &c));
    int ins[2] = {a, b};
    x = dlas_graph_concat(g, "cat", 2, ins);
    x = dlas_graph_relu(g, "relu", dlas_graph_conv2d(g, "gconv", x, &gc));
    x = dlas_graph_flatten(g, "flat", dlas_graph_global_avgpool(g, "gap", x));
    dlas_graph_linear(g, "fc", x, 3, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 7);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    const int conv_a = dlas_graph_find(g, "convA"), conv_b = dlas_graph_find(g, "convB");
    struct dlas_prune_units u;
    struct dlas_prune_wholes w;
    ck_assert_int_eq(dlas_prune_units_find_wholes(g, DLAS_PRUNE_ALL, 0, &u, &w), 0);
    ck_assert_int_eq(u.n, 16);
    ck_assert_int_eq(w.n, 4); /* two of the concat's, two of gconv's */
    int64_t target = -1;
    for (int64_t k = 0; k < w.n; k++) {
        ck_assert_int_eq(w.first[k + 1] - w.first[k], 4);
        const struct dlas_prune_unit *p = &u.u[w.part[w.first[k]]];
        if (p->node == conv_a && p->channel == 0)
            target = k;
    }
    ck_assert_int_ge(target, 0);
    int64_t got[4][2];
    for (int p = 0; p < 4; p++) {
        const struct dlas_prune_unit *x1 = &u.u[w.part[w.first[target] + p]];
        got[p][0] = x1->node;
        got[p][1] = x1->channel;
    }
    const int64_t want[4][2] = {{conv_a, 0}, {conv_a, 2}, {conv_b, 0}, {conv_b, 2}};
    for (int p = 0; p < 4; p++)
        ck_assert_msg(got[p][0] == want[p][0] && got[p][1] == want[p][1],
                      "part %d: node %lld channel %lld", p, (long long)got[p][0],
                      (long long)got[p][1]);
    ck_assert_msg(dlas_prune_mask_whole(g, &u, &w, target) == 0, "%s", dlas_last_error());
    dlas_prune_wholes_free(&w);
    dlas_prune_units_free(&u);
    assert_removal_exact(g, 4);
    ck_assert_int_eq(node(g, "convA")->out_shape[0], 2);
    ck_assert_int_eq(node(g, "convB")->out_shape[0], 2);
    ck_assert_int_eq(node(g, "gconv")->attr.conv.groups, 4);
    ck_assert_int_eq(node(g, "gconv")->weight.dims[1], 1);
    dlas_graph_free(g);
}
END_TEST

/* ResNeXt-50 (4 groups of 4 in the first stage) on a CIFAR-sized input:
 * l1-channel by layer, internal scope, takes half of each block's conv1
 * and conv2 wholes (4 channels each, one from every group), so every
 * block's inner width halves and its 3x3 keeps its 4 groups. */
START_TEST(l1_layer_halves_resnext_blocks)
{
    const struct dlas_component *mc = dlas_registry_find(reg, DLAS_KIND_MODEL, "resnet");
    ck_assert_ptr_nonnull(mc);
    struct dlas_params *mp = NULL;
    ck_assert_int_eq(dlas_params_defaults(mc->params, &mp), 0);
    ck_assert_int_eq(dlas_params_set(mp, "depth", "50", "test"), 0);
    ck_assert_int_eq(dlas_params_set(mp, "groups", "4", "test"), 0);
    ck_assert_int_eq(dlas_params_set(mp, "width_per_group", "4", "test"), 0);
    ck_assert_int_eq(dlas_params_set(mp, "style", "cifar", "test"), 0);
    struct world w;
    struct dlas_graph *g = dlas_graph_new();
    world_bare(&w, g);
    ck_assert_msg(((const struct dlas_model_ops *)mc->ops)->build(w.ctx.host, mp, 3, 8, 8, 10, g) ==
                      0, "%s", dlas_last_error());
    dlas_params_free(mp);
    ck_assert_int_eq(dlas_graph_init_weights(g, w.ctx.host->rng), 0);
    const char *sets[] = {"mode=layer", "layer_fraction=0.5", NULL};
    ck_assert_msg(apply("l1-channel", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    static const int blocks[4] = {3, 4, 6, 3};
    for (int st = 0; st < 4; st++)
        for (int b = 0; b < blocks[st]; b++) {
            char c1[64], c2[64];
            snprintf(c1, sizeof c1, "layer%d.%d.conv1", st + 1, b);
            snprintf(c2, sizeof c2, "layer%d.%d.conv2", st + 1, b);
            const int64_t inner = 16 << st; /* 4 groups of 4, doubling */
            ck_assert_msg(node(g, c1)->out_shape[0] == inner / 2, "%s: %lld of %lld", c1,
                          (long long)node(g, c1)->out_shape[0], (long long)inner);
            ck_assert_int_eq(node(g, c2)->out_shape[0], inner / 2);
            ck_assert_int_eq(node(g, c2)->attr.conv.groups, 4);
        }
    dlas_graph_free(g);
}
END_TEST

/* l1-channel by layer takes half of every layer's wholes, ranked by their
 * parts' mean norm: conv1's {2, 6} (0.3, 0.3) and {0, 4} (1.0, 0.9) go,
 * not row 1, the smallest alone, whose partner 5 is the largest; gconv's
 * {0, 4} and {3, 7} go (means 0.2, 0.525). A pruner that scored channels
 * alone would choose row 1, and have its removal refused. */
START_TEST(l1_layer_prunes_grouped_convs_by_wholes)
{
    struct dlas_graph *g = grouped_net(5);
    /* every row the same |w| pattern, so the scales decide */
    struct dlas_node *c1 = node(g, "conv1"), *gc = node(g, "gconv");
    for (int64_t i = 0; i < dlas_tensor_numel(&c1->weight); i++)
        dlas_f32(&c1->weight)[i] = (i % 2 ? 1.0f : -1.0f) * (float)(1 + i % 9 % 4);
    for (int64_t i = 0; i < dlas_tensor_numel(&gc->weight); i++)
        dlas_f32(&gc->weight)[i] = (i % 3 ? 1.0f : -1.0f) * (float)(1 + i % 36 % 5);
    scale_rows(c1, (const float[]){1.0f, 0.01f, 0.3f, 1.2f, 0.9f, 2.0f, 0.3f, 1.1f});
    scale_rows(gc, (const float[]){0.2f, 1.0f, 1.0f, 0.05f, 0.2f, 1.0f, 1.0f, 1.0f});
    for (int c = 0; c < 8; c++)
        dlas_f32(&gc->bias)[c] = (float)c + 0.5f; /* names the rows kept */
    struct dlas_graph *before = dlas_graph_clone(g);
    struct world w;
    world_bare(&w, g);
    const char *sets[] = {"mode=layer", "layer_fraction=0.5", "scope=all", NULL};
    ck_assert_msg(apply("l1-channel", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    assert_kept(before, g, "conv1", 0, (const int[]){1, 3, 5, 7}, 4);
    gc = node(g, "gconv");
    ck_assert_int_eq(gc->out_shape[0], 4);
    ck_assert_int_eq(gc->attr.conv.groups, 2);
    ck_assert_int_eq(gc->weight.dims[1], 2); /* 2 inputs a group */
    const float bias[4] = {1.5f, 2.5f, 5.5f, 6.5f};
    for (int c = 0; c < 4; c++)
        ck_assert_msg(dlas_f32(&gc->bias)[c] == bias[c], "gconv kept bias %d: %g", c,
                      dlas_f32(&gc->bias)[c]);
    ck_assert_int_eq(node(g, "conv3")->out_shape[0], 3);
    dlas_graph_free(before);
    dlas_graph_free(g);
}
END_TEST

/* Fisher through the pruning loop on the grouped network: conv1's channels
 * 2 and 6 feed nothing (gconv's weights on them are zero), so no gradient
 * reaches them and their saliency is 0; their whole goes first, though
 * their filters are the largest. (gconv's biases and conv3's weights are
 * made positive, so that no channel after them is dead, of saliency 0
 * too.) */
START_TEST(fisher_prunes_grouped_convs_by_wholes)
{
    struct dlas_graph *g = grouped_net(6);
    scale_rows(node(g, "conv1"), (const float[]){1, 1, 10, 1, 1, 1, 10, 1});
    struct dlas_node *gc = node(g, "gconv"), *c3 = node(g, "conv3");
    for (int o = 0; o < 8; o++) {
        dlas_f32(&gc->bias)[o] = 1.0f;
        for (int i = 0; i < 9; i++)
            dlas_f32(&gc->weight)[(o * 4 + 2) * 9 + i] = 0.0f;
    }
    for (int64_t i = 0; i < dlas_tensor_numel(&c3->weight); i++)
        dlas_f32(&c3->weight)[i] = fabsf(dlas_f32(&c3->weight)[i]);
    struct dlas_graph *before = dlas_graph_clone(g);
    char goal[64];
    absolute_goal(goal, sizeof goal, g, 1);
    struct world w;
    world_open(&w, g);
    const char *sets[] = {goal, "prune_every=3", "lr=1e-9", "evaluate=false", NULL};
    ck_assert_msg(apply("fisher", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    assert_kept(before, g, "conv1", 1e-3, (const int[]){0, 1, 3, 4, 5, 7}, 6);
    ck_assert_int_eq(node(g, "gconv")->out_shape[0], 8);
    ck_assert_int_eq(node(g, "gconv")->weight.dims[1], 3);
    ck_assert_int_eq(dlas_trainer_step(w.trainer), 3); /* one pruning step sufficed */
    world_close(&w);
    dlas_graph_free(before);
    dlas_graph_free(g);
}
END_TEST

/* round_to: every layer's channels end at a multiple (or at most one block) */
START_TEST(l1_rounds_channel_counts)
{
    struct dlas_graph *g = net(6);
    rank_conv1(g);
    struct world w;
    world_bare(&w, g);
    const char *sets[] = {"ratio=0.97", "round_to=4", NULL};
    ck_assert_msg(apply("l1-channel", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(node(g, "conv1")->out_shape[0], 4);
    ck_assert_int_eq(node(g, "conv2")->out_shape[0], 4);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    dlas_graph_free(g);
}
END_TEST

/* conv1's channel 3 has the largest weights, but conv2 reads nothing from
 * it: no gradient reaches it, its Fisher saliency is ~0 while every other
 * channel's is not, so Fisher removes it first (and L1 would not). */
START_TEST(fisher_removes_lowest_saliency)
{
    struct dlas_graph *g = net(3);
    struct dlas_node *c1 = node(g, "conv1"), *c2 = node(g, "conv2");
    for (int i = 0; i < 9; i++)
        dlas_f32(&c1->weight)[3 * 9 + i] *= 10.0f;
    for (int o = 0; o < 5; o++)
        for (int i = 0; i < 9; i++)
            dlas_f32(&c2->weight)[(o * 6 + 3) * 9 + i] = 0.0f;
    struct dlas_graph *before = dlas_graph_clone(g);
    char goal[64];
    absolute_goal(goal, sizeof goal, g, 56);
    struct world w;
    world_open(&w, g);
    /* a learning rate too small to move conv2's zero column away from ~0 */
    char save[600];
    snprintf(save, sizeof save, "save=%s/pruned.ckpt", tmpdir);
    const char *sets[] = {goal, "prune_every=3", "lr=1e-9", "evaluate=false", save, NULL};
    ck_assert_msg(apply("fisher", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(node(g, "conv1")->out_shape[0], 5);
    ck_assert_int_eq(node(g, "conv2")->out_shape[0], 5);
    assert_kept(before, g, "conv1", 1e-3, (const int[]){0, 1, 2, 4, 5}, 5);
    ck_assert_int_eq(dlas_trainer_step(w.trainer), 3); /* one pruning step sufficed */
    /* the checkpoint holds the weights and the architecture */
    struct dlas_ckpt *ck;
    ck_assert_msg(dlas_ckpt_open(save + 5, &ck) == 0, "%s", dlas_last_error());
    struct dlas_tensor arch = {0};
    ck_assert_int_eq(dlas_ckpt_read_tensor(ck, "prune.arch.conv1", &arch), 0);
    ck_assert(((int32_t *)arch.data)[0] == 5 && ((int32_t *)arch.data)[1] == 6);
    dlas_tensor_free(&arch);
    dlas_ckpt_close(ck);
    struct dlas_graph *copy = dlas_graph_clone(g);
    ck_assert_int_ne(dlas_checkpoint_load_graph(copy, save + 5, DLAS_CKPT_STRICT), 0);
    ck_assert_msg(dlas_checkpoint_load_graph(copy, save + 5, DLAS_CKPT_ALLOW_UNEXPECTED) == 0,
                  "%s", dlas_last_error());
    dlas_graph_free(copy);
    world_close(&w);
    dlas_graph_free(before);
    dlas_graph_free(g);
}
END_TEST

/* relu1's channel 2 is never positive (its batchnorm shift is far below
 * zero): its attention is 0, every other channel's is not. */
START_TEST(activation_removes_lowest_attention)
{
    struct dlas_graph *g = net(4);
    struct dlas_node *bn = node(g, "bn1"), *c1 = node(g, "conv1");
    dlas_f32(&bn->bias)[2] = -100.0f;
    for (int i = 0; i < 9; i++)
        dlas_f32(&c1->weight)[2 * 9 + i] *= 10.0f;
    struct dlas_graph *before = dlas_graph_clone(g);
    char goal[64];
    absolute_goal(goal, sizeof goal, g, 56);
    struct world w;
    world_open(&w, g);
    const char *sets[] = {goal, "prune_every=0", "calibration_batches=2",
                          "calibration_batch=16", "evaluate=false", NULL};
    ck_assert_msg(apply("activation", &w.ctx, sets) == 0, "%s", dlas_last_error());
    assert_kept(before, g, "conv1", 0, (const int[]){0, 1, 3, 4, 5}, 5);
    ck_assert_int_eq(node(g, "conv2")->out_shape[0], 5);
    world_close(&w);
    dlas_graph_free(before);
    dlas_graph_free(g);
}
END_TEST

/* Deep Compression's rounds: each prunes to 1 - (1 - s)^(i/k) of all conv
 * and linear weights, then retrains retrain_steps steps (the hook stops the
 * lent trainer there) with the pruned weights held at zero. */
START_TEST(iterative_magnitude_retrains_between_rounds)
{
    struct dlas_graph *g = net(7);
    struct world w;
    world_open(&w, g);
    const char *sets[] = {"mode=iterative", "sparsity=0.75", "iterations=2", "retrain_steps=3",
                          "lr=0.01", NULL};
    ck_assert_msg(apply("magnitude", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_trainer_step(w.trainer), 3); /* the last round's retraining */
    int64_t total = 0, masked = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        const struct dlas_node *n = dlas_graph_node(g, id);
        if (n->op != DLAS_OP_CONV2D && n->op != DLAS_OP_LINEAR)
            continue;
        ck_assert_ptr_nonnull(n->weight.mask);
        for (int64_t i = 0; i < dlas_tensor_numel(&n->weight); i++, total++)
            if (!n->weight.mask[i]) {
                masked++;
                ck_assert_msg(dlas_f32(&n->weight)[i] == 0.0f, "%s: pruned weight %lld moved",
                              n->name, (long long)i);
            }
    }
    ck_assert_msg(fabs((double)masked / (double)total - 0.75) < 0.01, "%lld of %lld masked",
                  (long long)masked, (long long)total);
    world_close(&w);
    dlas_graph_free(g);
}
END_TEST

/* Targets nothing can reach, and pruners without what they need, say so. */
START_TEST(pruners_refuse_clearly)
{
    struct dlas_graph *g = net(5);
    struct world w;
    world_bare(&w, g);
    const char *tiny[] = {"absolute=10", NULL};
    ck_assert_int_ne(apply("l1-channel", &w.ctx, tiny), 0);
    ck_assert_msg(strstr(dlas_last_error(), "nothing left to prune"), "%s", dlas_last_error());
    dlas_graph_free(g);
    g = net(5);
    w.ctx.graph = g;
    ck_assert_int_ne(apply("fisher", &w.ctx, NULL), 0);
    ck_assert_msg(strstr(dlas_last_error(), "train"), "%s", dlas_last_error());
    ck_assert_int_ne(apply("finetune", &w.ctx, NULL), 0);
    const char *lat[] = {"target=latency", NULL};
    ck_assert_int_eq(apply("l1-channel", &w.ctx, lat), DLAS_ERR_UNAVAILABLE);
    struct dlas_graph *fresh = net(5);
    ck_assert_int_eq(params_of(g), params_of(fresh)); /* refused: untouched */
    dlas_graph_free(fresh);
    dlas_graph_free(g);
}
END_TEST

/* The shared parameters: a pruner's spec made of the shared rows reads
 * every key into the options; one that offers only some keeps the loop's
 * defaults for the rest; a bad target names the pruner. */
START_TEST(options_from_params_reads_declared_keys)
{
    static const struct dlas_param_spec full[] = {
        DLAS_PRUNE_PARAMS_GOAL,
        DLAS_PRUNE_PARAMS_STEPS("7", 1, "steps"),
        {"beta", DLAS_PARAM_FLOAT, 0, "0", 0, 1e6, NULL, "penalty"},
        DLAS_PRUNE_PARAMS_RUN,
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    static const struct dlas_param_spec some[] = {
        {"ratio", DLAS_PARAM_FLOAT, 0, "0.25", 0.001, 1, NULL, "goal"},
        {"target", DLAS_PARAM_STRING, 0, "params", 0, 0, NULL, "unchecked by the spec"},
        {"own", DLAS_PARAM_INT, 0, "3", 0, 9, NULL, "the pruner's own"},
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    static const char *const sets[][2] = {
        {"target", "macs"}, {"ratio", "0.3"}, {"absolute", "1234"}, {"latency_auto", "true"},
        {"channels_per_step", "4"}, {"scope", "all"}, {"beta", "0.5"}, {"lr", "0.01"},
        {"include_linear", "true"}, {"round_to", "8"}, {"evaluate", "false"},
        {"history_csv", "h.csv"}, {"save", "s.ckpt"}};
    struct dlas_params *p;
    ck_assert_int_eq(dlas_params_defaults(full, &p), 0);
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++)
        ck_assert_msg(dlas_params_set(p, sets[k][0], sets[k][1], "t") == 0, "%s",
                      dlas_last_error());
    struct dlas_prune_options o;
    ck_assert_int_eq(dlas_prune_options_from_params(&o, p, "mine"), 0);
    ck_assert_int_eq(o.size, sizeof o);
    ck_assert(o.metric == DLAS_PRUNE_MACS && o.scope == DLAS_PRUNE_ALL);
    ck_assert(o.ratio == 0.3 && o.absolute == 1234 && o.latency_flags == DLAS_LATENCY_AUTO);
    ck_assert(o.per_step == 4 && o.interval == 7 && o.lr == 0.01 && o.beta == 0.5);
    ck_assert(o.include_linear == 1 && o.round_to == 8 && o.evaluate == 0);
    ck_assert_str_eq(o.history_csv, "h.csv");
    ck_assert_str_eq(o.save_path, "s.ckpt");
    dlas_params_free(p);

    struct dlas_prune_options d;
    dlas_prune_options_default(&d);
    ck_assert_int_eq(dlas_params_defaults(some, &p), 0);
    ck_assert_int_eq(dlas_prune_options_from_params(&o, p, "mine"), 0);
    ck_assert(o.ratio == 0.25 && o.metric == DLAS_PRUNE_PARAMS);
    ck_assert(o.scope == d.scope && o.per_step == d.per_step && o.interval == d.interval);
    ck_assert(o.evaluate == d.evaluate && o.lr == d.lr && o.beta == d.beta);
    ck_assert(o.history_csv == NULL && o.save_path == NULL);
    ck_assert_int_eq(dlas_params_set(p, "target", "flops", "t"), 0);
    ck_assert_int_eq(dlas_prune_options_from_params(&o, p, "mine"), DLAS_ERR_INVALID);
    ck_assert_str_eq(dlas_last_error(),
                     "mine: target = \"flops\" is not one of params, macs, latency");
    dlas_params_free(p);
}
END_TEST

/* ---- through an experiment ---------------------------------------------- */

static struct dlas_experiment *run_cfg(const char *body, size_t points)
{
    const char *cfg = dlas_test_writef(
        dlas_test_path(tmpdir, "p.cfg"),
        "experiment = { seeds = [1]; eval_samples = 64; repeat = 5; warmup = 1; batch = 8;\n"
        "  output = { dir = \"%s\"; }; };\n"
        "dataset = { plugin = \"synthetic\"; classes = 4; height = 16; width = 16;\n"
        "  train_size = 256; test_size = 64; };\n"
        "train = { epochs = 1; batch = 32; lr = 0.05; threads = 1; };\n"
        "primitives = { im2col = { plugin = \"im2col-gemm\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n%s",
        dlas_test_path(tmpdir, "results"), body);
    struct dlas_run_summary sum;
    struct dlas_experiment *e = dlas_test_experiment(cfg, reg, NULL, &sum);
    ck_assert_int_eq(sum.ran, points);
    for (size_t i = 0; i < points; i++)
        ck_assert_msg(!strcmp(dlas_experiment_result(e, i, "status"), "ok"), "point %zu: %s", i,
                      dlas_experiment_result(e, i, "error"));
    return e;
}

static double num(struct dlas_experiment *e, size_t i, const char *key)
{
    const char *v = dlas_experiment_result(e, i, key);
    ck_assert_msg(v && *v, "point %zu has no '%s'", i, key);
    return atof(v);
}

/* s_k = s_f + (s_i - s_f)(1 - k/n)^3 at steps 0, 2, 4, 6, 8 */
START_TEST(gradual_magnitude_follows_cubic_schedule)
{
    struct dlas_experiment *e = run_cfg(
        "models = { lenet = { plugin = \"lenet5\"; }; };\n"
        "compressors = { grad = ( { plugin = \"magnitude\"; mode = \"gradual\"; sparsity = 0.8;\n"
        "  initial_sparsity = 0.1; prune_every = 2; prune_steps = 4; recover_steps = 1; } ); };\n",
        1);
    const char *sched = dlas_experiment_result(e, 0, "magnitude.schedule");
    ck_assert_ptr_nonnull(sched);
    const char *at = sched;
    for (int k = 0; k <= 4; k++) {
        long long step;
        double s;
        int used;
        ck_assert_msg(sscanf(at, "%lld:%lf%n", &step, &s, &used) == 2, "'%s'", sched);
        double x = 1.0 - k / 4.0, want = 0.8 + (0.1 - 0.8) * x * x * x;
        ck_assert_int_eq(step, 2 * k);
        ck_assert_msg(fabs(s - want) < 1e-4, "step %d: sparsity %g, schedule %g", k, s, want);
        at += used;
    }
    ck_assert(fabs(num(e, 0, "magnitude.sparsity_achieved") - 0.8) < 1e-4);
    dlas_experiment_free(e);
}
END_TEST

/* Fisher to a measured-latency target (scope all: residual streams too) on
 * a small ResNet; the goal is met on the measured plan, the pruned network
 * agrees with the reference forward (the runner checks it), and finetune
 * follows as a chain step. */
START_TEST(latency_target_met_on_measured_plan)
{
    struct dlas_experiment *e = run_cfg(
        "models = { r8 = { plugin = \"resnet\"; depth = 8; }; };\n"
        "compressors = { lat = ( { plugin = \"fisher\"; target = \"latency\"; ratio = 0.8;\n"
        "  scope = \"all\"; prune_every = 2; channels_per_step = 2; lr = 0.01; },\n"
        "  { plugin = \"finetune\"; steps = 3; lr = 0.01; } ); };\n",
        1);
    double goal = num(e, 0, "fisher.goal"), before = num(e, 0, "fisher.cost_before");
    double after = num(e, 0, "fisher.cost_after");
    ck_assert(goal > 0 && before > 0);
    ck_assert_msg(fabs(goal - 0.8 * before) < 1e-6 * before, "goal %g, before %g", goal, before);
    ck_assert_msg(after <= goal, "latency %g ms above the goal %g ms", after, goal);
    ck_assert_str_eq(dlas_experiment_result(e, 0, "fisher.target"), "latency");
    ck_assert_msg(!strncmp(dlas_experiment_result(e, 0, "fisher.latency_binding"), "im2col", 6),
                  "%s", dlas_experiment_result(e, 0, "fisher.latency_binding"));
    ck_assert(num(e, 0, "fisher.channels_removed") >= 2);
    ck_assert(num(e, 0, "fisher.params_after") < num(e, 0, "fisher.params_before"));
    ck_assert(num(e, 0, "params") == num(e, 0, "fisher.params_after"));
    ck_assert(strstr(dlas_experiment_result(e, 0, "fisher.arch"), "/"));
    ck_assert(num(e, 0, "finetune.steps") == 3);
    dlas_experiment_free(e);
}
END_TEST

/* A latency target on a machine whose readings jump: the start is the
 * median of three readings, and a reading under the goal ends the pruning
 * only when the median of it and two more is under the goal too. */
static const double scripted_ms[] = {10, 30, 9,  /* start: median 10 -> goal 6 */
                                     7,          /* over the goal */
                                     4, 9, 8,    /* one lucky reading: median 8 */
                                     5, 9, 5.5}; /* confirmed: median 5.5 */
static int scripted_calls;

static int scripted_latency(struct dlas_compress_ctx *ctx, const struct dlas_graph *g,
                            unsigned flags, struct dlas_latency *out, double *node_seconds)
{
    (void)ctx, (void)g, (void)flags, (void)node_seconds;
    ck_assert_int_lt(scripted_calls, (int)(sizeof scripted_ms / sizeof scripted_ms[0]));
    memset(out, 0, sizeof *out);
    out->median_s = out->min_s = out->max_s = 1e-3 * scripted_ms[scripted_calls++];
    out->runs = 1;
    return DLAS_OK;
}

START_TEST(latency_target_confirms_readings)
{
    struct dlas_graph *g = net(3);
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    ctx.graph = g;
    ctx.latency = scripted_latency;
    scripted_calls = 0;
    struct dlas_prune_target t;
    ck_assert_int_eq(dlas_prune_target_init(&t, &ctx, DLAS_PRUNE_LATENCY, 0.6, 0, 0), 0);
    ck_assert_double_eq_tol(t.start, 10e-3, 1e-12);
    ck_assert_double_eq_tol(t.goal, 6e-3, 1e-12);
    int met = -1;
    ck_assert_int_eq(dlas_prune_target_measure(&t, &ctx, &met), 0);
    ck_assert_int_eq(met, 0);
    ck_assert_int_eq(dlas_prune_target_measure(&t, &ctx, &met), 0);
    ck_assert_int_eq(met, 0); /* 4 ms alone would have stopped it */
    ck_assert_double_eq_tol(t.now, 8e-3, 1e-12);
    ck_assert_int_eq(dlas_prune_target_measure(&t, &ctx, &met), 0);
    ck_assert_int_eq(met, 1);
    ck_assert_double_eq_tol(t.now, 5.5e-3, 1e-12);
    ck_assert_int_eq(scripted_calls, 10);
    ck_assert_int_eq(t.measurements, 10);
    dlas_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prune");
    TCase *tc = dlas_test_case(s, "known answers", setup, teardown, 0);
    tcase_add_test(tc, l1_layer_removes_smallest_norms);
    tcase_add_test(tc, l1_global_stops_at_params_target);
    tcase_add_test(tc, l1_rounds_channel_counts);
    tcase_add_test(tc, wholes_of_grouped_convs);
    tcase_add_test(tc, wholes_across_a_concat);
    tcase_add_test(tc, l1_layer_halves_resnext_blocks);
    tcase_add_test(tc, l1_layer_prunes_grouped_convs_by_wholes);
    tcase_add_test(tc, fisher_prunes_grouped_convs_by_wholes);
    tcase_add_test(tc, fisher_removes_lowest_saliency);
    tcase_add_test(tc, activation_removes_lowest_attention);
    tcase_add_test(tc, iterative_magnitude_retrains_between_rounds);
    tcase_add_test(tc, pruners_refuse_clearly);
    tcase_add_test(tc, options_from_params_reads_declared_keys);
    tcase_add_test(tc, gradual_magnitude_follows_cubic_schedule);
    tcase_add_test(tc, latency_target_met_on_measured_plan);
    tcase_add_test(tc, latency_target_confirms_readings);
    return dlas_test_run(s);
}
