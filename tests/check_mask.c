/* Masked channels (dlas_graph_mask_channels) compute what the physically
 * pruned network computes (dlas_graph_remove_masked_channels), on models of
 * the zoo with residual adds, concats, depthwise convs and flatten-linear. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static struct dlas_tensor forward(const struct dlas_graph *g, int64_t batch)
{
    const struct dlas_node *in = dlas_graph_node(g, 0);
    int64_t dims[4] = {batch, in->out_shape[0], in->out_shape[1], in->out_shape[2]};
    struct dlas_tensor x, y;
    memset(&y, 0, sizeof y);
    ck_assert_int_eq(dlas_tensor_alloc(&x, DLAS_F32, 4, dims), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 99);
    dlas_test_fill_uniform(&x, &r, -1, 1);
    ck_assert_msg(dlas_graph_forward_ref(g, &x, &y) == 0, "%s", dlas_last_error());
    dlas_tensor_free(&x);
    return y;
}

/* The masked channels of g removed the slow way, as a reference for the
 * one pass of dlas_graph_remove_masked_channels: each conv and linear in
 * turn, its masked channels pruned by dlas_graph_prune_channels. */
static void remove_node_by_node(struct dlas_graph *g, const char *label)
{
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_CONV2D && n->op != DLAS_OP_LINEAR)
            continue;
        const int64_t w = n->out_shape[0];
        uint8_t *keep = malloc((size_t)w);
        int64_t lost = 0;
        for (int64_t c = 0; c < w; c++)
            lost += !(keep[c] = !dlas_graph_channel_masked(g, i, c));
        if (lost)
            ck_assert_msg(dlas_graph_prune_channels(g, i, keep) == 0, "%s: %s", label,
                          dlas_last_error());
        free(keep);
    }
}

/* Same shapes and bitwise the same parameters. */
static void assert_same_graph(const struct dlas_graph *a, const struct dlas_graph *b,
                              const char *label)
{
    ck_assert_int_eq(dlas_graph_n_nodes(a), dlas_graph_n_nodes(b));
    for (int i = 0; i < dlas_graph_n_nodes(a); i++) {
        const struct dlas_node *x = dlas_graph_node(a, i), *y = dlas_graph_node(b, i);
        ck_assert_int_eq(x->out_ndim, y->out_ndim);
        for (int d = 0; d < x->out_ndim; d++)
            ck_assert_msg(x->out_shape[d] == y->out_shape[d], "%s: '%s' dim %d: %lld vs %lld",
                          label, x->name, d, (long long)x->out_shape[d],
                          (long long)y->out_shape[d]);
        const struct dlas_tensor *tx[] = {&x->weight, &x->bias, &x->running_mean,
                                          &x->running_var};
        const struct dlas_tensor *ty[] = {&y->weight, &y->bias, &y->running_mean,
                                          &y->running_var};
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(!tx[k]->data, !ty[k]->data);
            if (!tx[k]->data)
                continue;
            ck_assert_int_eq(dlas_tensor_numel(tx[k]), dlas_tensor_numel(ty[k]));
            ck_assert_msg(!memcmp(tx[k]->data, ty[k]->data,
                                  (size_t)dlas_tensor_numel(tx[k]) * sizeof(float)),
                          "%s: '%s' tensor %d differs", label, x->name, k);
        }
    }
}

/* Mask every third prunable channel of every group (never a member's
 * last), then remove them: same output as masked, different from the
 * original, and the same graph as removing them layer by layer. */
static void mask_then_remove(struct dlas_graph *g, const char *label)
{
    struct dlas_tensor y0 = forward(g, 2);
    struct dlas_graph_stats s0, s1;
    ck_assert_int_eq(dlas_graph_stats(g, &s0), 0);
    struct dlas_channel_group *gr;
    int ng;
    ck_assert_int_eq(dlas_graph_channel_groups(g, &gr, &ng), 0);
    int64_t masked = 0;
    for (int k = 0; k < ng; k++) {
        int64_t live = gr[k].n_channels;
        for (int64_t c = 0; c < gr[k].n_channels; c += 3) {
            if (!gr[k].prunable[c] || live <= 1)
                continue;
            int id = gr[k].node[c];
            int64_t w = dlas_graph_node(g, id)->out_shape[0];
            uint8_t *keep = malloc((size_t)w);
            memset(keep, 1, (size_t)w);
            keep[gr[k].channel[c]] = 0;
            int rc = dlas_graph_mask_channels(g, id, keep);
            free(keep);
            if (rc == 0) {
                masked++;
                live--;
                ck_assert(dlas_graph_channel_masked(g, id, gr[k].channel[c]));
            }
        }
    }
    dlas_channel_groups_free(gr, ng);
    ck_assert_msg(masked > 0, "%s: nothing masked", label);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    struct dlas_tensor ym = forward(g, 2);
    struct dlas_graph *ref = dlas_graph_clone(g);
    ck_assert_ptr_nonnull(ref);
    remove_node_by_node(ref, label);
    int64_t removed = 0;
    ck_assert_msg(dlas_graph_remove_masked_channels(g, &removed) == 0, "%s: %s", label,
                  dlas_last_error());
    ck_assert_msg(removed == masked, "%s: masked %lld, removed %lld", label, (long long)masked,
                  (long long)removed);
    ck_assert_int_eq(dlas_graph_validate(g), 0);
    assert_same_graph(g, ref, label);
    dlas_graph_free(ref);
    ck_assert_int_eq(dlas_graph_stats(g, &s1), 0);
    ck_assert_int_lt(s1.params, s0.params);
    struct dlas_tensor yp = forward(g, 2);
    int64_t n = dlas_tensor_numel(&ym);
    ck_assert_int_eq(n, dlas_tensor_numel(&yp));
    double err = dlas_rel_error(dlas_f32(&yp), dlas_f32(&ym), n);
    ck_assert_msg(err < 1e-5, "%s: pruned vs masked relative error %g", label, err);
    /* the channels mattered: masking changed the output */
    ck_assert_msg(dlas_rel_error(dlas_f32(&y0), dlas_f32(&ym), n) > 1e-4, "%s", label);
    /* nothing masked is left to remove */
    ck_assert_int_eq(dlas_graph_remove_masked_channels(g, &removed), 0);
    ck_assert_int_eq(removed, 0);
    dlas_tensor_free(&y0);
    dlas_tensor_free(&ym);
    dlas_tensor_free(&yp);
}

START_TEST(zoo_masked_equals_pruned)
{
    static const struct {
        const char *model;
        int c, h, w;
        const char *sets[4];
    } cases[] = {
        {"resnet", 3, 16, 16, {"depth=20"}},
        {"wrn", 3, 16, 16, {"depth=10", "width=1", "block=basic"}},
        {"densenet", 3, 16, 16, {"depth=10", "growth=6"}},
        {"mobilenet", 3, 16, 16, {"version=2", "width=0.25"}},
        {"lenet5", 1, 28, 28, {NULL}},
    };
    struct dlas_registry *reg = dlas_test_registry("check_mask");
    ck_assert_ptr_nonnull(reg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct dlas_component *comp =
            dlas_registry_find(reg, DLAS_KIND_MODEL, cases[i].model);
        ck_assert_msg(comp != NULL, "no model '%s'", cases[i].model);
        struct dlas_params *p;
        ck_assert_int_eq(dlas_params_defaults(comp->params, &p), 0);
        for (int k = 0; k < 4 && cases[i].sets[k]; k++) {
            char key[64];
            const char *eq = strchr(cases[i].sets[k], '=');
            snprintf(key, sizeof key, "%.*s", (int)(eq - cases[i].sets[k]), cases[i].sets[k]);
            ck_assert_msg(dlas_params_set(p, key, eq + 1, "test") == 0, "%s", dlas_last_error());
        }
        struct dlas_rng rng;
        struct dlas_host host;
        dlas_rng_seed(&rng, 1);
        dlas_host_init(&host, &rng, 1);
        struct dlas_graph *g = dlas_graph_new();
        const struct dlas_model_ops *ops = comp->ops;
        ck_assert_msg(ops->build(&host, p, cases[i].c, cases[i].h, cases[i].w, 10, g) == 0,
                      "%s: %s", cases[i].model, dlas_last_error());
        dlas_params_free(p);
        ck_assert_int_eq(dlas_graph_init_weights(g, &rng), 0);
        /* BN away from identity: a batchnorm left unmasked would turn a zero
         * channel into a non-zero one, and the comparison would catch it */
        dlas_test_randomize(g, 23);
        mask_then_remove(g, cases[i].model);
        dlas_graph_free(g);
    }
    dlas_registry_free(reg);
}
END_TEST

/* The small graphs' end: global pool, flatten, a 3-way linear "fc"; then
 * the graph must be whole, and its weights are drawn. */
static void classifier_head(struct dlas_graph *g, int x)
{
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "f", x);
    dlas_graph_linear(g, "fc", x, 3, 1);
    ck_assert_int_eq(dlas_graph_status(g), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 1);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
}

/* A layer masked channel by channel keeps its last one; the network input
 * and output are never masked; a refused mask leaves the graph as it was. */
START_TEST(mask_refusals)
{
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_conv_attr a = dlas_conv(2, 3, 1, 1);
    int x = dlas_graph_input(g, "in", 1, 6, 6);
    x = dlas_graph_conv2d(g, "c1", x, &a);
    x = dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    x = dlas_graph_relu(g, "r", x);
    classifier_head(g, x);
    int c1 = dlas_graph_find(g, "c1"), fc = dlas_graph_find(g, "fc");
    uint8_t k0[2] = {0, 1}, k1[2] = {1, 0}, kfc[3] = {1, 0, 1};
    ck_assert_int_eq(dlas_graph_mask_channels(g, c1, k0), 0);
    ck_assert(dlas_graph_channel_masked(g, c1, 0) && !dlas_graph_channel_masked(g, c1, 1));
    ck_assert(dlas_graph_channel_masked(g, dlas_graph_find(g, "bn"), 0));
    ck_assert_int_ne(dlas_graph_mask_channels(g, c1, k1), 0);
    ck_assert(!dlas_graph_channel_masked(g, c1, 1));
    ck_assert_int_ne(dlas_graph_mask_channels(g, fc, kfc), 0);
    ck_assert(!dlas_graph_channel_masked(g, fc, 1));
    int64_t removed;
    ck_assert_int_eq(dlas_graph_remove_masked_channels(g, &removed), 0);
    ck_assert_int_eq(removed, 1);
    ck_assert_int_eq(dlas_graph_node(g, c1)->out_shape[0], 1);
    dlas_graph_free(g);
}
END_TEST

/* A grouped conv (not depthwise) must lose as many input channels from each
 * of its groups: masking one channel of its producer is refused (as pruning
 * it would be), masking one from each group at once is not, and the graph
 * is untouched by the refusal. */
START_TEST(mask_refusal_grouped)
{
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_conv_attr a = dlas_conv(4, 3, 1, 1), b = dlas_conv(4, 3, 1, 1);
    b.groups = 2;
    int x = dlas_graph_input(g, "in", 2, 6, 6);
    x = dlas_graph_conv2d(g, "c1", x, &a);
    x = dlas_graph_relu(g, "r", x);
    x = dlas_graph_conv2d(g, "g2", x, &b);
    classifier_head(g, x);
    int c1 = dlas_graph_find(g, "c1");
    uint8_t one[4] = {1, 0, 1, 1}, even[4] = {1, 0, 1, 0};
    ck_assert_int_ne(dlas_graph_mask_channels(g, c1, one), 0);
    for (int64_t c = 0; c < 4; c++)
        ck_assert(!dlas_graph_channel_masked(g, c1, c));
    ck_assert_int_eq(dlas_graph_mask_channels(g, c1, even), 0);
    ck_assert(dlas_graph_channel_masked(g, c1, 1) && dlas_graph_channel_masked(g, c1, 3));
    int64_t removed;
    ck_assert_int_eq(dlas_graph_remove_masked_channels(g, &removed), 0);
    ck_assert_int_eq(removed, 2);
    const struct dlas_node *g2 = dlas_graph_node(g, dlas_graph_find(g, "g2"));
    ck_assert_int_eq(g2->attr.conv.groups, 2);
    ck_assert_int_eq(g2->weight.dims[1], 1);
    dlas_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mask");
    TCase *tc = dlas_test_case(s, "mask", NULL, NULL, 0);
    tcase_add_test(tc, zoo_masked_equals_pruned);
    tcase_add_test(tc, mask_refusals);
    tcase_add_test(tc, mask_refusal_grouped);
    return dlas_test_run(s);
}
