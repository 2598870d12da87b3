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

/* round_to: every layer's channels end at a multiple (or at most one block) */
/* A grouped conv (2 groups) between two plain ones: surgery removes its
 * channels only alike from each group, and a pruning unit is one channel,
 * so the channels it reads (conv1's) and writes are no units; conv3's are.
 * l1-channel by layer then prunes conv3 and leaves the rest, where it used
 * to choose conv1's smallest filters, have the removal refused ("a
 * different number ... from each group") and stop with nothing done. */
START_TEST(units_leave_grouped_convs_out)
{
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_conv_attr c1 = dlas_conv(8, 3, 1, 1), c2 = dlas_conv(8, 3, 1, 1),
                          c3 = dlas_conv(6, 1, 1, 0);
    c2.groups = 2;
    int x = dlas_graph_input(g, "in", 3, 8, 8);
    x = dlas_graph_relu(g, "relu1", dlas_graph_conv2d(g, "conv1", x, &c1));
    x = dlas_graph_relu(g, "relu2", dlas_graph_conv2d(g, "gconv", x, &c2));
    x = dlas_graph_relu(g, "relu3", dlas_graph_conv2d(g, "conv3", x, &c3));
    x = dlas_graph_flatten(g, "flat", dlas_graph_global_avgpool(g, "gap", x));
    dlas_graph_linear(g, "fc", x, 4, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 4);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    struct dlas_prune_units u;
    ck_assert_int_eq(dlas_prune_units_find(g, DLAS_PRUNE_ALL, 0, &u), 0);
    const int conv3 = dlas_graph_find(g, "conv3");
    ck_assert_int_eq(u.n, 6);
    for (int64_t i = 0; i < u.n; i++)
        ck_assert_int_eq(u.u[i].node, conv3);
    dlas_prune_units_free(&u);
    char note[256];
    ck_assert_int_eq(dlas_prune_grouped_note(g, note, sizeof note), 1);
    ck_assert_msg(strstr(note, "'gconv'") != NULL, "%s", note);
    struct world w;
    world_bare(&w, g);
    const char *sets[] = {"mode=layer", "layer_fraction=0.5", NULL};
    ck_assert_msg(apply("l1-channel", &w.ctx, sets) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(node(g, "conv1")->out_shape[0], 8);
    ck_assert_int_eq(node(g, "gconv")->out_shape[0], 8);
    ck_assert_int_eq(node(g, "gconv")->attr.conv.groups, 2);
    ck_assert_int_eq(node(g, "conv3")->out_shape[0], 3);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    dlas_graph_free(g);
}
END_TEST

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
    tcase_add_test(tc, units_leave_grouped_convs_out);
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
