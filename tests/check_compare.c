/* The plan's fusion, per-layer control and timing; the tuning log (write,
 * read back, replace, refuse corrupt lines); the tuner; plans reading the
 * log; and the side-by-side comparison with its CSV and JSON output. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/dlas.h>

#include "testutil.h"

static struct dlas_registry *reg;
static char tmpdir[256];

static const struct dlas_component *find(enum dlas_kind kind, const char *name)
{
    const struct dlas_component *c = dlas_registry_find(reg, kind, name);
    ck_assert_msg(c != NULL, "%s '%s' not found: %s", dlas_kind_name(kind), name,
                  dlas_last_error());
    return c;
}

/* What every plan runs on: a host (RNG seeded with 5) and the openmp
 * backend with the given threads. */
struct rig {
    struct dlas_rng rng;
    struct dlas_host h;
    struct dlas_backend be;
};

static void backend_of(const struct dlas_host *h, int threads, struct dlas_backend *be)
{
    const struct dlas_component *c = find(DLAS_KIND_BACKEND, "openmp");
    struct dlas_params *p = NULL;
    char t[8];
    snprintf(t, sizeof t, "%d", threads);
    ck_assert_int_eq(dlas_params_defaults(c->params, &p), 0);
    ck_assert_int_eq(dlas_params_set(p, "threads", t, "test"), 0);
    be->ops = c->ops;
    ck_assert_int_eq(be->ops->init(h, p, &be->ctx), 0);
    dlas_params_free(p);
}

static void rig_open(struct rig *r, int threads)
{
    dlas_rng_seed(&r->rng, 5);
    dlas_host_init(&r->h, &r->rng, 5);
    backend_of(&r->h, threads, &r->be);
}

static void rig_close(struct rig *r)
{
    r->be.ops->release(r->be.ctx);
}

static struct dlas_primitive_choice choice(const char *name, struct dlas_params **owned)
{
    const struct dlas_component *c = find(DLAS_KIND_PRIMITIVE, name);
    *owned = NULL;
    if (c->params)
        ck_assert_int_eq(dlas_params_defaults(c->params, owned), 0);
    return (struct dlas_primitive_choice){c->name, c, *owned};
}

static void init_graph(struct dlas_graph *g, uint64_t seed);

/* A small residual network exercising every fusion: conv-bn-relu,
 * conv-bn + add-relu, maxpool, a strided 1x1 conv, depthwise, global
 * pooling, flatten, linear. Batchnorms get non-trivial statistics. */
static struct dlas_graph *small_resnet(void)
{
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 16, 15, 15);
    struct dlas_conv_attr a3 = dlas_conv(16, 3, 1, 1), b3 = dlas_conv(16, 3, 1, 1);
    int y = dlas_graph_conv2d(g, "c1", x, &a3);
    y = dlas_graph_batchnorm(g, "bn1", y, 1e-5f);
    int r1 = dlas_graph_relu(g, "r1", y);
    y = dlas_graph_conv2d(g, "c2", r1, &b3);
    y = dlas_graph_batchnorm(g, "bn2", y, 1e-5f);
    y = dlas_graph_add(g, "add", y, r1);
    y = dlas_graph_relu(g, "r2", y);
    struct dlas_pool_attr pa = dlas_pool(3, 2, 1);
    y = dlas_graph_maxpool(g, "pool", y, &pa);
    struct dlas_conv_attr dw = dlas_conv(16, 3, 1, 1);
    dw.groups = 16;
    y = dlas_graph_conv2d(g, "dw", y, &dw);
    y = dlas_graph_relu6(g, "r3", y);
    struct dlas_conv_attr p1 = dlas_conv(24, 1, 2, 0);
    p1.bias = 1;
    y = dlas_graph_conv2d(g, "pw", y, &p1);
    y = dlas_graph_global_avgpool(g, "gap", y);
    y = dlas_graph_flatten(g, "flat", y);
    y = dlas_graph_linear(g, "fc", y, 10, 1);
    ck_assert_msg(y >= 0 && dlas_graph_status(g) == 0, "%s", dlas_last_error());
    init_graph(g, 9);
    return g;
}

/* Random weights, and batchnorms with non-trivial statistics. */
static void init_graph(struct dlas_graph *g, uint64_t seed)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_BATCHNORM)
            continue;
        float *gam = n->weight.data, *bet = n->bias.data;
        float *mean = n->running_mean.data, *var = n->running_var.data;
        for (int64_t c = 0; c < n->out_shape[0]; c++) {
            gam[c] = 0.5f + dlas_rng_uniform(&r);
            bet[c] = dlas_rng_normal(&r) * 0.2f;
            mean[c] = dlas_rng_normal(&r) * 0.3f;
            var[c] = 0.2f + dlas_rng_uniform(&r);
        }
    }
}

static double plan_vs_ref(struct dlas_plan *p, const struct dlas_graph *g, int64_t batch)
{
    const struct dlas_node *in = dlas_graph_node(g, 0);
    int64_t per = in->out_shape[0] * in->out_shape[1] * in->out_shape[2];
    struct dlas_tensor x = {0}, ref = {0};
    int64_t dims[4] = {batch, in->out_shape[0], in->out_shape[1], in->out_shape[2]};
    ck_assert_int_eq(dlas_tensor_alloc(&x, DLAS_F32, 4, dims), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, 77);
    for (int64_t i = 0; i < batch * per; i++)
        dlas_f32(&x)[i] = dlas_rng_normal(&r);
    ck_assert_int_eq(dlas_graph_forward_ref(g, &x, &ref), 0);
    int64_t on = dlas_plan_output_numel(p) * batch;
    float *out = malloc((size_t)on * sizeof(float));
    int rc = dlas_plan_run(p, batch, dlas_f32(&x), out);
    ck_assert_msg(rc == 0, "plan run: %s", dlas_last_error());
    double err = dlas_rel_error(out, dlas_f32(&ref), on);
    free(out);
    dlas_tensor_free(&x);
    dlas_tensor_free(&ref);
    return err;
}

/* ---- the plan ---------------------------------------------------------------------- */

START_TEST(test_plan_fusion)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_graph *g = small_resnet();
    struct dlas_params *pp;
    struct dlas_primitive_choice dc = choice("direct", &pp), fb_pp = {0};
    struct dlas_params *fbp;
    fb_pp = choice("grouped-spatial-pack", &fbp);
    for (int fuse = 0; fuse <= 1; fuse++) {
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        po.fuse = fuse;
        struct dlas_plan *p;
        int rc = dlas_plan_create_ex(g, &rig.h, &rig.be, &dc, 1, &fb_pp, 3, &po, &p);
        ck_assert_msg(rc == 0, "plan: %s", dlas_last_error());
        double err = plan_vs_ref(p, g, 3);
        ck_assert_msg(err < 1e-5, "fuse %d: relative error %.3g", fuse, err);
        err = plan_vs_ref(p, g, 1);
        ck_assert_msg(err < 1e-5, "fuse %d, batch 1: relative error %.3g", fuse, err);
        int bn1 = dlas_graph_find(g, "bn1"), r1 = dlas_graph_find(g, "r1");
        int c1 = dlas_graph_find(g, "c1"), r2 = dlas_graph_find(g, "r2");
        int add = dlas_graph_find(g, "add"), flat = dlas_graph_find(g, "flat");
        if (fuse) {
            ck_assert_int_eq(dlas_plan_fused_into(p, bn1), c1);
            ck_assert_int_eq(dlas_plan_fused_into(p, r1), c1);
            /* direct runs the add as c2's residual, with the add's ReLU */
            const int c2 = dlas_graph_find(g, "c2");
            ck_assert_int_eq(dlas_plan_fused_into(p, add), c2);
            ck_assert_int_eq(dlas_plan_fused_into(p, r2), c2);
            ck_assert_int_ge(dlas_plan_fused_into(p, flat), 0);
            ck_assert_int_eq(dlas_plan_conv_desc(p, c1)->has_bias, 1);
        } else {
            ck_assert_int_eq(dlas_plan_fused_into(p, bn1), -1);
            ck_assert_int_eq(dlas_plan_conv_desc(p, c1)->has_bias, 0);
        }
        /* the depthwise layer falls back, and says why */
        int dw = dlas_graph_find(g, "dw");
        ck_assert_int_eq(dlas_plan_n_fallbacks(p), 1);
        ck_assert_str_eq(dlas_plan_binding(p, dw), "grouped-spatial-pack");
        ck_assert_int_eq(dlas_plan_binding_index(p, dw), -2);
        ck_assert_int_eq(dlas_plan_binding_index(p, c1), 0);
        ck_assert_msg(strstr(dlas_plan_fallbacks(p), "dw (direct: depthwise"), "%s",
                      dlas_plan_fallbacks(p));
        ck_assert_ptr_null(dlas_plan_conv_desc(p, add));

        /* timed runs: every node that runs has a time, fused ones none */
        int nn = dlas_plan_n_nodes(p);
        double *t = calloc((size_t)nn, sizeof *t);
        float *in = calloc(16 * 15 * 15, sizeof(float)), out[10];
        ck_assert_int_eq(dlas_plan_run_timed(p, 1, in, out, t), 0);
        for (int i = 1; i < nn; i++) {
            if (dlas_plan_fused_into(p, i) >= 0)
                ck_assert_msg(t[i] == 0, "fused node %d has a time", i);
            else
                ck_assert_msg(t[i] > 0, "node %d ran in no time", i);
        }
        free(t);
        free(in);
        dlas_plan_free(p);
    }
    /* per-layer binding: c2 forced to the fallback's primitive */
    struct dlas_primitive_choice two[2] = {dc, fb_pp};
    int nn = dlas_graph_n_nodes(g);
    int *lp = malloc((size_t)nn * sizeof *lp);
    for (int i = 0; i < nn; i++)
        lp[i] = -1;
    lp[dlas_graph_find(g, "c2")] = 1;
    lp[dlas_graph_find(g, "dw")] = 0; /* direct refuses: falls back */
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.layer_prim = lp;
    struct dlas_plan *p;
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, two, 2, NULL, 2, &po, &p), 0);
    ck_assert_int_eq(dlas_plan_binding_index(p, dlas_graph_find(g, "c2")), 1);
    ck_assert_int_eq(dlas_plan_binding_index(p, dlas_graph_find(g, "c1")), 0);
    ck_assert_str_eq(dlas_plan_binding(p, dlas_graph_find(g, "dw")), "ref");
    ck_assert(plan_vs_ref(p, g, 2) < 1e-5);
    dlas_plan_free(p);
    free(lp);

    /* refusals are listed per layer, and grouped by reason for terminals */
    struct dlas_params *wp;
    struct dlas_primitive_choice w3 = choice("winograd", &wp);
    ck_assert_int_eq(dlas_params_set(wp, "tile", "3", "test"), 0);
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, &w3, 1, &fb_pp, 1, NULL, &p), 0);
    ck_assert_int_eq(dlas_plan_n_fallbacks(p), 4);
    const char *each = dlas_plan_fallbacks(p), *grouped = dlas_plan_fallbacks_grouped(p);
    ck_assert_msg(strstr(each, "c1 (winograd: tile = 3") && strstr(each, "; c2 (winograd: tile = 3"),
                  "%s", each);
    ck_assert_msg(strstr(grouped, "c1, c2 (winograd: tile = 3"), "%s", grouped);
    ck_assert_msg(strstr(grouped, ") -> grouped-spatial-pack; dw (winograd: "), "%s", grouped);
    ck_assert_msg(strstr(grouped, "; pw (winograd: ") && !strstr(grouped, "; c2"), "%s",
                  grouped);
    ck_assert(plan_vs_ref(p, g, 1) < 1e-5);
    dlas_plan_free(p);
    dlas_params_free(wp);
    dlas_params_free(pp);
    dlas_params_free(fbp);
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

/* auto by measurement: every conv bound to a primitive that runs it, the
 * plan agrees with the reference, and ties follow the stable rule (the
 * previous choice, else the primitive listed first). */
START_TEST(test_auto_select)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_graph *g = small_resnet();
    struct dlas_params *pp[3];
    struct dlas_primitive_choice three[3] = {choice("direct", &pp[0]),
                                             choice("grouped-spatial-pack", &pp[1]),
                                             choice("im2col-gemm", &pp[2])};
    int nn = dlas_graph_n_nodes(g);
    int *lp = malloc((size_t)nn * sizeof *lp), *lp2 = malloc((size_t)nn * sizeof *lp2);
    struct dlas_plan_auto_options ao;
    dlas_plan_auto_options_default(&ao);
    ao.batch = 2;
    ao.min_runs = 2;
    ao.max_runs = 3;
    struct dlas_plan_auto_report rep = {0};
    int rc = dlas_plan_auto_select(g, &rig.h, &rig.be, three, 3, NULL, &ao, lp, NULL, &rep);
    ck_assert_msg(rc == 0, "auto: %s", dlas_last_error());
    ck_assert_int_eq(rep.layers, 4);
    ck_assert(rep.runs >= 2 && rep.runs <= 3);
    ck_assert(rep.unclear >= 0 && rep.unclear <= 4);
    ck_assert_msg(strstr(rep.text, "c1: ") && strstr(rep.text, "; dw: ") &&
                      !strstr(rep.text, "; dw: direct"), "%s", rep.text);
    free(rep.text);
    for (int i = 0; i < nn; i++) {
        if (dlas_graph_node(g, i)->op != DLAS_OP_CONV2D) {
            ck_assert_int_eq(lp[i], -1);
            continue;
        }
        ck_assert(lp[i] >= 0 && lp[i] < 3);
    }
    ck_assert_int_ne(lp[dlas_graph_find(g, "dw")], 0); /* direct refuses depthwise */
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.layer_prim = lp;
    struct dlas_plan *p;
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, three, 3, NULL, 2, &po, &p), 0);
    for (int i = 0; i < nn; i++)
        if (lp[i] >= 0)
            ck_assert_int_eq(dlas_plan_binding_index(p, i), lp[i]);
    double err = plan_vs_ref(p, g, 2);
    ck_assert_msg(err < 1e-5, "auto plan: relative error %.3g", err);
    dlas_plan_free(p);

    /* everything ties: the primitive listed first that runs the layer */
    ao.tolerance = 1e9; /* a tie whatever the load does to the timings */
    ck_assert_int_eq(
        dlas_plan_auto_select(g, &rig.h, &rig.be, three, 3, NULL, &ao, lp2, NULL, NULL), 0);
    ck_assert_int_eq(lp2[dlas_graph_find(g, "c1")], 0);
    ck_assert_int_eq(lp2[dlas_graph_find(g, "pw")], 0);
    ck_assert_int_eq(lp2[dlas_graph_find(g, "dw")], 1); /* direct refuses it */
    /* ... unless an earlier choice is among the ties: it is kept */
    lp[dlas_graph_find(g, "c1")] = 2;
    lp[dlas_graph_find(g, "c2")] = 1;
    ao.previous = lp;
    ck_assert_int_eq(
        dlas_plan_auto_select(g, &rig.h, &rig.be, three, 3, NULL, &ao, lp2, NULL, NULL), 0);
    ck_assert_int_eq(lp2[dlas_graph_find(g, "c1")], 2);
    ck_assert_int_eq(lp2[dlas_graph_find(g, "c2")], 1);
    /* bad options are refused */
    ao.previous = NULL;
    ao.min_runs = 4;
    ao.max_runs = 3;
    ck_assert_int_eq(
        dlas_plan_auto_select(g, &rig.h, &rig.be, three, 3, NULL, &ao, lp2, NULL, NULL),
        DLAS_ERR_INVALID);
    dlas_clear_error();
    free(lp);
    free(lp2);
    for (int k = 0; k < 3; k++)
        dlas_params_free(pp[k]);
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

/* A zoo model at a small size, batchnorms with non-trivial statistics. */
static struct dlas_graph *zoo_model(const struct dlas_host *h, const char *model,
                                    const char *const *kv, int c, int hh, int w, int classes)
{
    const struct dlas_component *mc = find(DLAS_KIND_MODEL, model);
    struct dlas_params *mp = NULL;
    ck_assert_int_eq(dlas_params_defaults(mc->params, &mp), 0);
    for (int i = 0; kv && kv[i]; i += 2)
        ck_assert_msg(dlas_params_set(mp, kv[i], kv[i + 1], "test") == 0, "%s", dlas_last_error());
    struct dlas_graph *g = dlas_graph_new();
    struct dlas_rng r;
    dlas_rng_seed(&r, 21);
    ck_assert_msg(((const struct dlas_model_ops *)mc->ops)->build(h, mp, c, hh, w, classes, g) == 0 &&
                      dlas_graph_status(g) == 0 && dlas_graph_init_weights(g, &r) == 0,
                  "%s: %s", model, dlas_last_error());
    dlas_params_free(mp);
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_BATCHNORM)
            continue;
        for (int64_t k = 0; k < n->out_shape[0]; k++) {
            dlas_f32(&n->weight)[k] = 0.5f + dlas_rng_uniform(&r);
            dlas_f32(&n->bias)[k] = dlas_rng_normal(&r) * 0.2f;
            dlas_f32(&n->running_mean)[k] = dlas_rng_normal(&r) * 0.2f;
            dlas_f32(&n->running_var)[k] = 0.5f + dlas_rng_uniform(&r);
        }
    }
    return g;
}

/* The ids of this process's threads, sorted; returns how many (<= max). */
static int thread_ids(long *ids, int max)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_msg(d != NULL, "cannot list /proc/self/task");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.' && n < max)
            ids[n++] = atol(e->d_name);
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            long t = ids[j];
            ids[j] = ids[j - 1], ids[j - 1] = t;
        }
    return n;
}

/* A plan on more threads than many of its layers have work items keeps
 * the same OpenMP threads from run to run: libgomp ends the threads that
 * a smaller team leaves out and creates new ones for the next larger team,
 * so regions sized by their work (as the primitives' were) made a plan on
 * 4-16 threads pay thread creation in most layers. Five threads here, on
 * any machine: the ids are what is checked, not the time. */
START_TEST(test_thread_pool_kept)
{
    struct rig rig;
    rig_open(&rig, 5);
    struct dlas_params *pp[4];
    struct dlas_primitive_choice prims[3] = {choice("direct", &pp[0]),
                                             choice("grouped-spatial-pack", &pp[1]),
                                             choice("spatial-pack", &pp[2])};
    struct dlas_primitive_choice fb = choice("grouped-spatial-pack", &pp[3]);
    static const char *const v2[] = {"version", "2", "width", "0.35", NULL};
    static const char *const r18[] = {"depth", "18", NULL};
    /* the primitives whose regions were sized by their work, where this
     * was seen to create threads */
    struct {
        const char *model;
        const char *const *kv;
        int hw, blocks, prim;
    } cases[] = {{"mobilenet", v2, 32, 1, 0},
                 {"mobilenet", v2, 32, 0, 1},
                 {"mobilenet", v2, 32, 0, 2},
                 {"resnet", r18, 20, 0, 2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int prim = cases[k].prim;
        struct dlas_graph *g = zoo_model(&rig.h, cases[k].model, cases[k].kv, 3, cases[k].hw,
                                         cases[k].hw, 10);
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        po.blocks = cases[k].blocks;
        struct dlas_plan *p;
        int rc = dlas_plan_create_ex(g, &rig.h, &rig.be, prims + prim, 1, &fb, 3, &po, &p);
        ck_assert_msg(rc == 0, "%s: plan: %s", cases[k].model, dlas_last_error());
        ck_assert(plan_vs_ref(p, g, 1) < 1e-5); /* the pool starts */
        long before[64], after[64];
        int nb = thread_ids(before, 64);
        for (int b = 1; b <= 2; b++) {
            double err = plan_vs_ref(p, g, b);
            ck_assert_msg(err < 1e-5, "%s on %s, batch %d: rel. error %.3g", cases[k].model,
                          prims[prim].label, b, err);
        }
        int na = thread_ids(after, 64);
        ck_assert_msg(nb == na && !memcmp(before, after, (size_t)nb * sizeof *before),
                      "%s on %s (blocks %d): threads were created between runs (%d ids, "
                      "then %d; the last %ld, then %ld)",
                      cases[k].model, prims[prim].label, cases[k].blocks, nb, na,
                      before[nb - 1], after[na - 1]);
        dlas_plan_free(p);
        dlas_graph_free(g);
    }
    for (int i = 0; i < 4; i++)
        dlas_params_free(pp[i]);
    rig_close(&rig);
}
END_TEST

/* A plan of g with options po fuses `blocks` units and agrees with the
 * reference forward at batch 1 and 3. */
static void plan_fuses(struct rig *rig, const struct dlas_graph *g,
                       const struct dlas_primitive_choice *prims, int n_prims,
                       const struct dlas_primitive_choice *fb,
                       const struct dlas_plan_options *po, int blocks)
{
    struct dlas_plan *p;
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig->h, &rig->be, prims, n_prims, fb, 3, po, &p), 0);
    ck_assert_int_eq(dlas_plan_n_blocks(p), blocks);
    for (int b = 1; b <= 3; b += 2)
        ck_assert(plan_vs_ref(p, g, b) < 1e-5);
    dlas_plan_free(p);
}

/* Fused mobile blocks agree with the reference forward on MobileNet v1 and
 * v2 (every block kind: expansion or not, stride 1 and 2, residual or not;
 * v2's head, 1x1 conv > pool > classifier, is one more), a mask fuses only
 * what it names; ResNet and DenseNet with the ImageNet stem fuse it (conv >
 * max pool; the pool's output then the first residual), with the CIFAR stem
 * have none to fuse, and agree either way. */
START_TEST(test_plan_blocks)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_params *pp[3];
    struct dlas_primitive_choice prims[2] = {choice("direct", &pp[0]),
                                             choice("grouped-spatial-pack", &pp[1])};
    struct dlas_primitive_choice fb = choice("im2col-gemm", &pp[2]);
    static const char *const v2[] = {"version", "2", "width", "0.35", NULL};
    static const char *const v2i[] = {"version", "2", "width", "0.25", "style", "imagenet", NULL};
    static const char *const v1[] = {"version", "1", "width", "0.25", NULL};
    static const char *const r18[] = {"depth", "18", NULL};
    static const char *const dn[] = {"depth", "40", "growth", "6", NULL};
    static const char *const r18i[] = {"depth", "18", "style", "imagenet", NULL};
    static const char *const r50i[] = {"depth", "50", "style", "imagenet", NULL};
    static const char *const dni[] = {"depth", "40", "growth", "6", "style", "imagenet", NULL};
    struct {
        const char *model;
        const char *const *kv;
        int c, h, w, blocks, heads, stems; /* blocks: expected fused, heads and stems among them */
        int big;                           /* skipped under DLAS_TEST_SUBSET */
    } cases[] = {
        {"mobilenet", v2, 3, 32, 32, 18, 1, 0, 0}, {"mobilenet", v2i, 3, 45, 37, 18, 1, 0, 0},
        {"mobilenet", v1, 3, 29, 32, 13, 0, 0, 0}, {"resnet", r18, 3, 20, 20, 0, 0, 0, 0},
        {"densenet", dn, 3, 16, 16, 0, 0, 0, 0},   {"resnet", r18i, 3, 37, 29, 1, 0, 1, 0},
        {"resnet", r50i, 1, 33, 40, 1, 0, 1, 1},   {"densenet", dni, 3, 35, 34, 1, 0, 1, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (cases[k].big &&
            dlas_test_subset_skips("check_compare: plan blocks: case %zu (%s)", k, cases[k].model))
            continue;
        struct dlas_graph *g =
            zoo_model(&rig.h, cases[k].model, cases[k].kv, cases[k].c, cases[k].h, cases[k].w, 10);
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        po.blocks = 1;
        struct dlas_plan *p;
        int rc = dlas_plan_create_ex(g, &rig.h, &rig.be, prims, 2, &fb, 3, &po, &p);
        ck_assert_msg(rc == 0, "%s: plan: %s", cases[k].model, dlas_last_error());
        ck_assert_msg(dlas_plan_n_blocks(p) == cases[k].blocks, "%s: %d blocks fused: %s",
                      cases[k].model, dlas_plan_n_blocks(p), dlas_plan_blocks(p));
        for (int b = 1; b <= 3; b += 2) {
            double err = plan_vs_ref(p, g, b);
            ck_assert_msg(err < 1e-5, "%s (case %zu), batch %d: rel. error %.3g", cases[k].model,
                          k, b, err);
        }
        /* one chain of blocks: it converts where it starts and where it ends
         * (not where it ends in a head, which reads the last block's
         * blocked output); a stem reads and writes NCHW */
        const int mobile = cases[k].blocks - cases[k].heads - cases[k].stems;
        ck_assert_msg(dlas_plan_n_conversions(p) == (mobile ? 2 - cases[k].heads : 0),
                      "%s: %d: %s", cases[k].model, dlas_plan_n_conversions(p),
                      dlas_plan_conversions(p));
        if (mobile) {
            const char *cv = dlas_plan_conversions(p);
            ck_assert_msg(!strncmp(cv, "pack '", 6) &&
                              !strstr(cv, "; scatter '") == (cases[k].heads > 0),
                          "%s", cv);
            /* every block on NCHW: a pack and a scatter each, same results */
            po.block_nchw = 1;
            struct dlas_plan *pn;
            ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, prims, 2, &fb, 3, &po, &pn),
                             0);
            ck_assert_int_eq(dlas_plan_n_conversions(pn), 2 * mobile);
            ck_assert(plan_vs_ref(pn, g, 3) < 1e-5);
            dlas_plan_free(pn);
            po.block_nchw = 0;
            /* the head left to its layers: one block less, same results */
            po.block_no_head = 1;
            plan_fuses(&rig, g, prims, 2, &fb, &po, cases[k].blocks - cases[k].heads);
            po.block_no_head = 0;
            /* every block on each schedule (rows: bands of rows over the
             * threads, batch 1 and 3), same results */
            for (int sched = 1; sched <= 2; sched++) {
                po.block_schedule = sched;
                ck_assert_int_eq(
                    dlas_plan_create_ex(g, &rig.h, &rig.be, prims, 2, &fb, 3, &po, &pn), 0);
                ck_assert_int_eq(dlas_plan_n_blocks(pn), cases[k].blocks);
                for (int b = 1; b <= 3; b += 2)
                    ck_assert_msg(plan_vs_ref(pn, g, b) < 1e-5, "schedule %d, batch %d", sched,
                                  b);
                dlas_plan_free(pn);
            }
            /* a plan for 4 images (bands of rows need no shared edges
             * there) run at 1 and 3 (they do): its workspace holds them */
            po.block_schedule = 2;
            ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, prims, 2, &fb, 4, &po, &pn),
                             0);
            for (int b = 1; b <= 3; b += 2)
                ck_assert_msg(plan_vs_ref(pn, g, b) < 1e-5, "max batch 4, batch %d", b);
            dlas_plan_free(pn);
            po.block_schedule = 0;
        }
        if (cases[k].stems) {
            /* the stem left to its layers: one block less, same results */
            po.block_no_stem = 1;
            plan_fuses(&rig, g, prims, 2, &fb, &po, cases[k].blocks - cases[k].stems);
            po.block_no_stem = 0;
            ck_assert_msg(strstr(dlas_plan_blocks(p), "pool"), "%s", dlas_plan_blocks(p));
            /* the first residual add (of the pool's output) still runs in its conv */
            const int add = dlas_graph_find(g, "layer1.0.add");
            ck_assert(!strcmp(cases[k].model, "densenet") || dlas_plan_fused_into(p, add) >= 0);
        }
        if (cases[k].blocks) {
            /* every conv of a block reports it, and the nodes fuse into its head */
            const char *names = dlas_plan_blocks(p);
            ck_assert_msg(strstr(names, " > "), "%s", names);
            int head = -1;
            for (int i = 0; i < dlas_graph_n_nodes(g) && head < 0; i++)
                if (dlas_plan_binding_index(p, i) == -3) {
                    head = i;
                    ck_assert_str_eq(dlas_plan_binding(p, i), "block");
                    ck_assert_int_eq(dlas_plan_fused_into(p, i), -1);
                }
            ck_assert_int_ge(head, 0);
            int fused_into_head = 0;
            for (int i = 0; i < dlas_graph_n_nodes(g); i++)
                fused_into_head += dlas_plan_fused_into(p, i) == head;
            ck_assert_int_ge(fused_into_head, 3); /* bn, act, the next convs... */
            /* a mask: only the first block */
            int *mask = calloc((size_t)dlas_graph_n_nodes(g), sizeof *mask);
            mask[head] = 1;
            po.block_mask = mask;
            struct dlas_plan *p1;
            ck_assert_int_eq(
                dlas_plan_create_ex(g, &rig.h, &rig.be, prims, 2, &fb, 2, &po, &p1), 0);
            ck_assert_int_eq(dlas_plan_n_blocks(p1), 1);
            ck_assert(plan_vs_ref(p1, g, 2) < 1e-5);
            dlas_plan_free(p1);
            po.block_mask = NULL;
            /* auto with blocks: a plan from its choices agrees too */
            int nn = dlas_graph_n_nodes(g);
            int *lp = malloc((size_t)nn * sizeof *lp);
            struct dlas_plan_auto_options ao;
            dlas_plan_auto_options_default(&ao);
            ao.batch = 2;
            ao.min_runs = 1;
            ao.max_runs = 2;
            struct dlas_plan_auto_report rep = {0};
            ck_assert_msg(dlas_plan_auto_select(g, &rig.h, &rig.be, prims, 2, &fb, &ao, lp, mask,
                                                &rep) == 0,
                          "%s", dlas_last_error());
            ck_assert_msg(strstr(rep.text, "block "), "%s", rep.text);
            int n_mask = 0;
            for (int i = 0; i < nn; i++)
                n_mask += mask[i] != 0;
            ck_assert_int_eq(n_mask, rep.blocks);
            free(rep.text);
            po.layer_prim = lp;
            po.block_mask = mask;
            ck_assert_int_eq(
                dlas_plan_create_ex(g, &rig.h, &rig.be, prims, 2, &fb, 2, &po, &p1), 0);
            ck_assert_int_eq(dlas_plan_n_blocks(p1), n_mask);
            ck_assert(plan_vs_ref(p1, g, 2) < 1e-5);
            dlas_plan_free(p1);
            po.layer_prim = NULL;
            po.block_mask = NULL;
            free(lp);
            free(mask);
        }
        dlas_plan_free(p);
        dlas_graph_free(g);
    }
    for (int k = 0; k < 3; k++)
        dlas_params_free(pp[k]);
    rig_close(&rig);
}
END_TEST

/* A stem graph: input c x 21 x 19 -> conv (7x7/2, or 3x3/1 with a second
 * reader of its relu) -> bn -> relu -> max pool [-> relu] -> 1x1 conv. */
static struct dlas_graph *stem_graph(int c, int second_reader, int relu_after_pool,
                                     int ceil_mode)
{
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", c, 21, 19);
    struct dlas_conv_attr a = second_reader ? dlas_conv(24, 3, 1, 1) : dlas_conv(24, 7, 2, 3);
    int y = dlas_graph_conv2d(g, "stem", x, &a);
    y = dlas_graph_batchnorm(g, "stem_bn", y, 1e-5f);
    int r = dlas_graph_relu(g, "stem_relu", y);
    struct dlas_pool_attr pa = dlas_pool(3, 2, 1);
    pa.ceil_mode = ceil_mode;
    y = dlas_graph_maxpool(g, "pool", r, &pa);
    if (relu_after_pool)
        y = dlas_graph_relu(g, "pool_relu", y);
    struct dlas_conv_attr p1 = dlas_conv(16, 1, 1, 0);
    y = dlas_graph_conv2d(g, "next", y, &p1);
    if (second_reader) { /* the relu's output read again: its pool's stride-2 grid */
        struct dlas_conv_attr d = dlas_conv(16, 1, 2, 0);
        int z = dlas_graph_conv2d(g, "skip", r, &d);
        y = dlas_graph_add(g, "add", y, z);
    }
    ck_assert_msg(y >= 0 && dlas_graph_status(g) == 0, "%s", dlas_last_error());
    init_graph(g, 21);
    return g;
}

/* The stem fuses where its conv's only reader is the pool and nothing
 * follows the pool in place; elsewhere (a second reader, a relu fused into
 * the pool, too many input channels) the layers run one by one. Either way
 * the plan agrees with the reference, at batch 1 and 2, in ceil mode too. */
START_TEST(test_plan_stem_cases)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_params *pp[2];
    struct dlas_primitive_choice prims[1] = {choice("direct", &pp[0])};
    struct dlas_primitive_choice fb = choice("im2col-gemm", &pp[1]);
    struct {
        int c, second_reader, relu_after_pool, ceil_mode, fused;
    } cases[] = {
        {3, 0, 0, 0, 1}, {4, 0, 0, 1, 1}, {1, 0, 0, 1, 1},
        {5, 0, 0, 0, 0}, {3, 1, 0, 0, 0}, {3, 0, 1, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct dlas_graph *g = stem_graph(cases[k].c, cases[k].second_reader,
                                          cases[k].relu_after_pool, cases[k].ceil_mode);
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        po.blocks = 1;
        struct dlas_plan *p;
        ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, prims, 1, &fb, 2, &po, &p), 0);
        ck_assert_msg(dlas_plan_n_blocks(p) == cases[k].fused, "case %zu: %d blocks: %s", k,
                      dlas_plan_n_blocks(p), dlas_plan_blocks(p));
        ck_assert_str_eq(dlas_plan_binding(p, dlas_graph_find(g, "stem")),
                         cases[k].fused ? "block" : "direct");
        for (int b = 1; b <= 2; b++) {
            double err = plan_vs_ref(p, g, b);
            ck_assert_msg(err < 1e-5, "case %zu, batch %d: rel. error %.3g", k, b, err);
        }
        dlas_plan_free(p);
        dlas_graph_free(g);
    }
    for (int k = 0; k < 2; k++)
        dlas_params_free(pp[k]);
    rig_close(&rig);
}
END_TEST

/* input 6 x 12 x 10 -> bn -> relu -> conv 8 (k, stride, groups) [-> bn]
 * [-> relu] -> avgpool [-> relu] [+ a max pool of the conv's output]
 * [-> 3x3 conv]: the cases of an average pool run before its conv. */
struct pool_case {
    int k, stride, groups, bn, relu_before, pool_k, pool_s, pool_pad, ceil, relu_after;
    int second_reader, pools_first, pool_is_output;
};

static struct dlas_graph *pool_graph(const struct pool_case *c)
{
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 6, 12, 10);
    x = dlas_graph_relu(g, "relu0", dlas_graph_batchnorm(g, "bn0", x, 1e-5f));
    struct dlas_conv_attr a = dlas_conv(8, c->k, c->stride, c->k / 2);
    a.groups = c->groups;
    a.bias = 1;
    int y = dlas_graph_conv2d(g, "conv", x, &a);
    if (c->bn)
        y = dlas_graph_batchnorm(g, "bn", y, 1e-5f);
    if (c->relu_before)
        y = dlas_graph_relu(g, "relu", y);
    struct dlas_pool_attr pa = dlas_pool(c->pool_k, c->pool_s, c->pool_pad);
    pa.ceil_mode = c->ceil;
    int z = dlas_graph_avgpool(g, "pool", y, &pa);
    if (c->relu_after)
        z = dlas_graph_relu(g, "pool_relu", z);
    if (c->second_reader)
        z = dlas_graph_add(g, "add", z, dlas_graph_maxpool(g, "max", y, &pa));
    struct dlas_conv_attr n = dlas_conv(4, 3, 1, 1);
    if (!c->pool_is_output)
        z = dlas_graph_conv2d(g, "next", z, &n);
    ck_assert_msg(z >= 0 && dlas_graph_status(g) == 0, "%s", dlas_last_error());
    init_graph(g, 31);
    return g;
}

/* An average pool runs before the 1x1 conv it alone reads (stride 1, no
 * activation; a batchnorm folded in, groups, overlapping windows and a relu
 * after the pool allowed), and not otherwise (a relu before the pool,
 * padding, a ceil-mode overhang, stride 2, a 3x3 conv, a second reader).
 * Either way, on a primitive and on the core's reference conv, with and
 * without no_pool_first, the plan agrees with the reference forward; a conv
 * that pools first is described by its pooled input, also where the pool
 * (and the relu after it) is the graph's output. DenseNet's transitions
 * pool first. */
START_TEST(test_plan_pool_first)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_params *pp[2];
    struct dlas_primitive_choice prims[1] = {choice("direct", &pp[0])};
    struct dlas_primitive_choice fb = choice("im2col-gemm", &pp[1]);
    static const struct pool_case cases[] = {
        {1, 1, 1, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0}, {1, 1, 1, 1, 0, 3, 1, 0, 0, 0, 0, 1, 0},
        {1, 1, 2, 0, 0, 2, 2, 0, 0, 1, 0, 1, 0}, {1, 1, 1, 0, 0, 3, 2, 0, 0, 0, 0, 1, 0},
        {1, 1, 1, 0, 1, 2, 2, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 0, 0, 3, 2, 1, 0, 0, 0, 0, 0},
        {1, 1, 1, 0, 0, 3, 2, 0, 1, 0, 0, 0, 0}, {1, 2, 1, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0},
        {3, 1, 1, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 0, 0, 2, 2, 0, 0, 0, 1, 0, 0},
        {1, 1, 1, 1, 0, 2, 2, 0, 0, 1, 0, 1, 1}, /* the pool (its relu) is the output */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct dlas_graph *g = pool_graph(&cases[k]);
        const int conv = dlas_graph_find(g, "conv"), pool = dlas_graph_find(g, "pool");
        const int64_t pooled_h = dlas_graph_node(g, pool)->out_shape[1];
        for (int off = 0; off <= 1; off++)
            for (int on_prim = 0; on_prim <= 1; on_prim++) {
                struct dlas_plan_options po;
                dlas_plan_options_default(&po);
                po.no_pool_first = off;
                struct dlas_plan *p;
                ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, prims, on_prim,
                                                     on_prim ? &fb : NULL, 3, &po, &p),
                                 0);
                const int first = cases[k].pools_first && !off;
                ck_assert_msg(dlas_plan_fused_into(p, pool) == (first ? conv : -1),
                              "case %zu: pool fused into %d", k, dlas_plan_fused_into(p, pool));
                ck_assert_int_eq(dlas_plan_conv_desc(p, conv)->in_h,
                                 first ? pooled_h : (int64_t)12);
                for (int b = 1; b <= 3; b += 2) {
                    double err = plan_vs_ref(p, g, b);
                    ck_assert_msg(err < 1e-5, "case %zu (off %d, prim %d), batch %d: %.3g", k,
                                  off, on_prim, b, err);
                }
                dlas_plan_free(p);
            }
        dlas_graph_free(g);
    }
    static const char *const dn[] = {"depth", "40", "growth", "6", NULL};
    struct dlas_graph *g = zoo_model(&rig.h, "densenet", dn, 3, 16, 16, 10);
    struct dlas_plan *p;
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, prims, 1, &fb, 3, NULL, &p), 0);
    int firsts = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        if (dlas_graph_node(g, i)->op == DLAS_OP_AVGPOOL) {
            ck_assert_int_ge(dlas_plan_fused_into(p, i), 0);
            firsts++;
        }
    ck_assert_int_eq(firsts, 2); /* DenseNet-40's two transitions */
    for (int b = 1; b <= 3; b += 2)
        ck_assert(plan_vs_ref(p, g, b) < 1e-5);
    dlas_plan_free(p);
    dlas_graph_free(g);
    for (int k = 0; k < 2; k++)
        dlas_params_free(pp[k]);
    rig_close(&rig);
}
END_TEST

/* The plan's own operators agree with the reference ones, NaN included:
 * pooling windows at every edge, ceil mode, batchnorm unfused, add. */
/* The same input (N(0, 1) from seed) through plans a and b of graph g: the
 * same bits out, every output written. */
static void same_bits(struct dlas_plan *a, struct dlas_plan *b, const struct dlas_graph *g,
                      int64_t batch, uint64_t seed)
{
    const struct dlas_node *in = dlas_graph_node(g, 0);
    const int64_t ni = batch * in->out_shape[0] * in->out_shape[1] * in->out_shape[2];
    const int64_t no = batch * dlas_plan_output_numel(a);
    float *x = malloc((size_t)ni * sizeof *x), *ya = malloc((size_t)no * sizeof *ya),
          *yb = malloc((size_t)no * sizeof *yb);
    ck_assert(x && ya && yb);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    for (int64_t i = 0; i < ni; i++)
        x[i] = dlas_rng_normal(&r);
    for (int64_t i = 0; i < no; i++)
        ya[i] = yb[i] = NAN;
    ck_assert_int_eq(dlas_plan_run(a, batch, x, ya), 0);
    ck_assert_int_eq(dlas_plan_run(b, batch, x, yb), 0);
    for (int64_t i = 0; i < no; i++)
        ck_assert(isfinite(ya[i]));
    ck_assert(memcmp(ya, yb, (size_t)no * sizeof *ya) == 0);
    free(x);
    free(ya);
    free(yb);
}

/* Concatenations read in place: a concat whose only readers are batchnorms
 * is a view (no buffer, no copy), with results bit for bit those of the
 * copying plan and the reference's; any other reader, an activation fused
 * into the concat, or the graph's output keeps the copy. */
static void concat_plans(struct rig *rig, struct dlas_graph *g, int64_t batch, int views,
                         int blocks)
{
    struct dlas_params *pp;
    struct dlas_primitive_choice gc = choice("grouped-spatial-pack", &pp);
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.blocks = blocks;
    struct dlas_plan *pv, *pc;
    ck_assert_msg(dlas_plan_create_ex(g, &rig->h, &rig->be, &gc, 1, NULL, batch, &po, &pv) == 0,
                  "%s", dlas_last_error());
    po.concat_copy = 1;
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig->h, &rig->be, &gc, 1, NULL, batch, &po, &pc), 0);
    int n_views = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        n_views += !strcmp(dlas_plan_binding(pv, i), "view");
        ck_assert_str_ne(dlas_plan_binding(pc, i), "view");
    }
    ck_assert_int_eq(n_views, views);
    if (blocks) /* the stem is fused: its output is one of the parts */
        ck_assert_int_eq(dlas_plan_n_blocks(pv), 1);
    ck_assert(plan_vs_ref(pv, g, batch) < 1e-5);
    same_bits(pv, pc, g, batch, 5);
    dlas_plan_free(pv);
    dlas_plan_free(pc);
    dlas_params_free(pp);
}

START_TEST(test_concat_views)
{
    struct rig rig;
    rig_open(&rig, 2);
    /* DenseNet: every concat is read by a batchnorm only */
    static const char *const dn[] = {"depth", "40", "growth", "6", NULL};
    struct dlas_graph *g = zoo_model(&rig.h, "densenet", dn, 3, 16, 16, 10);
    int concats = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        concats += dlas_graph_node(g, i)->op == DLAS_OP_CONCAT;
    ck_assert_int_ge(concats, 15);
    concat_plans(&rig, g, 1, concats, 0);
    concat_plans(&rig, g, 3, concats, 0);
    dlas_graph_free(g);
    /* the ImageNet stem fused (a block that writes NCHW): the first dense
     * block's concats, whose first part is the stem's output, are views too */
    static const char *const dni[] = {"depth", "40", "growth", "6", "style", "imagenet", NULL};
    g = zoo_model(&rig.h, "densenet", dni, 3, 35, 34, 10);
    concats = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        concats += dlas_graph_node(g, i)->op == DLAS_OP_CONCAT;
    concat_plans(&rig, g, 2, concats, 1);
    dlas_graph_free(g);

    /* constructed: which concats may be views */
    g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 5, 9, 7);
    struct dlas_conv_attr ca = dlas_conv(6, 3, 1, 1), cb = dlas_conv(4, 1, 1, 0);
    int a = dlas_graph_conv2d(g, "a", x, &ca);
    int parts1[] = {x, a}, parts2[] = {a, x, a};
    int c1 = dlas_graph_concat(g, "c1", 2, parts1); /* read by a batchnorm only: view */
    int b1 = dlas_graph_batchnorm(g, "b1", c1, 1e-5f);
    int b1r = dlas_graph_relu(g, "b1r", b1);
    int c2 = dlas_graph_concat(g, "c2", 3, parts2); /* two batchnorms: view */
    int b2 = dlas_graph_batchnorm(g, "b2", c2, 1e-5f);
    int b3 = dlas_graph_batchnorm(g, "b3", c2, 1e-5f);
    int c3 = dlas_graph_concat(g, "c3", 2, parts1); /* a batchnorm and a conv: copied */
    int b4 = dlas_graph_batchnorm(g, "b4", c3, 1e-5f);
    int d = dlas_graph_conv2d(g, "d", c3, &cb);
    int c4 = dlas_graph_concat(g, "c4", 2, parts1); /* relu fused into it: copied */
    int c4r = dlas_graph_relu(g, "c4r", c4);
    int c4b = dlas_graph_batchnorm(g, "c4b", c4r, 1e-5f);
    int e = dlas_graph_conv2d(g, "e", b1r, &cb), f = dlas_graph_conv2d(g, "f", b2, &cb);
    int h = dlas_graph_conv2d(g, "h", b3, &cb), k = dlas_graph_conv2d(g, "k", b4, &cb);
    int m = dlas_graph_conv2d(g, "m", c4b, &cb);
    int s1 = dlas_graph_add(g, "s1", e, f), s2 = dlas_graph_add(g, "s2", h, k);
    int s3 = dlas_graph_add(g, "s3", s1, s2), s4 = dlas_graph_add(g, "s4", s3, d);
    int s5 = dlas_graph_add(g, "s5", s4, m);
    int outs[] = {s5, a};
    dlas_graph_concat(g, "out", 2, outs); /* the output: copied */
    ck_assert_msg(dlas_graph_status(g) == 0, "%s", dlas_last_error());
    struct dlas_rng r;
    dlas_rng_seed(&r, 3);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        for (int64_t q = 0; n->op == DLAS_OP_BATCHNORM && q < n->out_shape[0]; q++) {
            dlas_f32(&n->weight)[q] = 0.5f + dlas_rng_uniform(&r);
            dlas_f32(&n->bias)[q] = dlas_rng_normal(&r) * 0.2f;
            dlas_f32(&n->running_mean)[q] = dlas_rng_normal(&r) * 0.2f;
            dlas_f32(&n->running_var)[q] = 0.5f + dlas_rng_uniform(&r);
        }
    }
    for (int64_t batch = 1; batch <= 3; batch += 2)
        concat_plans(&rig, g, batch, 2, 0);
    struct dlas_plan *p;
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, NULL, 0, NULL, 2, NULL, &p), 0);
    ck_assert_str_eq(dlas_plan_binding(p, c1), "view");
    ck_assert_str_eq(dlas_plan_binding(p, c2), "view");
    ck_assert_str_eq(dlas_plan_binding(p, c3), "ref");
    ck_assert_str_eq(dlas_plan_binding(p, c4), "ref");
    dlas_plan_free(p);
    dlas_graph_free(g);

    /* planes large enough that, at a batch the two threads do not divide,
     * a batchnorm splits each plane into two runs (plan_ops.c, bn_bands):
     * one over a view and one over a conv's output that an add also reads */
    g = dlas_graph_new();
    x = dlas_graph_input(g, "in", 3, 64, 64);
    a = dlas_graph_conv2d(g, "a", x, &ca);
    int big[] = {x, a};
    c1 = dlas_graph_concat(g, "c1", 2, big);
    b1r = dlas_graph_relu(g, "b1r", dlas_graph_batchnorm(g, "b1", c1, 1e-5f));
    b2 = dlas_graph_batchnorm(g, "b2", a, 1e-5f);
    struct dlas_conv_attr c6 = dlas_conv(6, 1, 1, 0);
    s1 = dlas_graph_add(g, "s1", dlas_graph_conv2d(g, "e", b1r, &c6), b2);
    dlas_graph_add(g, "s2", s1, a);
    ck_assert_msg(dlas_graph_status(g) == 0, "%s", dlas_last_error());
    init_graph(g, 4);
    for (int64_t batch = 1; batch <= 3; batch++)
        concat_plans(&rig, g, batch, 1, 0);
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

/* Batchnorms applied by their conv as it reads its input (plan_prologue.c):
 * DenseNet's norm1 and relu1, read in place from the concatenation by
 * `direct`'s 1x1 view, give the plan that runs them as passes of their own
 * bit for bit (the same affine map, the same conv), and the reference's
 * output; each fused batchnorm reports "prologue" and the conv it is
 * fused into, and the option, a primitive without a prologue or a batch
 * the two threads divide keeps the pass. */
static int prologue_plan(struct rig *rig, struct dlas_graph *g,
                         const struct dlas_primitive_choice *pc, int64_t batch, int off,
                         struct dlas_plan **out)
{
    const char *prim = pc->label;
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.no_prologue = off;
    ck_assert_msg(dlas_plan_create_ex(g, &rig->h, &rig->be, pc, 1, NULL, batch, &po, out) == 0,
                  "%s", dlas_last_error());
    int fused = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        if (strcmp(dlas_plan_binding(*out, i), "prologue"))
            continue;
        fused++;
        const int c = dlas_plan_fused_into(*out, i);
        ck_assert_int_eq(dlas_graph_node(g, i)->op, DLAS_OP_BATCHNORM);
        ck_assert(c > i && dlas_graph_node(g, c)->op == DLAS_OP_CONV2D);
        ck_assert_str_eq(dlas_plan_binding(*out, c), prim);
    }
    return fused;
}

START_TEST(test_prologue)
{
    struct rig rig;
    rig_open(&rig, 2);
    static const char *const dni[] = {"depth", "40", "growth", "6", "style", "imagenet", NULL};
    struct dlas_graph *g = zoo_model(&rig.h, "densenet", dni, 3, 35, 34, 10);
    /* dense layers: a 1x1 conv after a relu after a batchnorm; not the
     * transitions', which an average pool reads (it runs first, on the
     * conv's input: plan_pool_first.c) */
    int dense = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *c = dlas_graph_node(g, i);
        if (c->op != DLAS_OP_CONV2D || c->attr.conv.kh != 1 || c->attr.conv.kw != 1)
            continue;
        const struct dlas_node *rl = dlas_graph_node(g, c->inputs[0]);
        int pooled = 0;
        for (int k = i + 1; k < dlas_graph_n_nodes(g); k++)
            pooled |= dlas_graph_node(g, k)->op == DLAS_OP_AVGPOOL &&
                      dlas_graph_node(g, k)->inputs[0] == i;
        dense += !pooled && rl->op == DLAS_OP_RELU &&
                 dlas_graph_node(g, rl->inputs[0])->op == DLAS_OP_BATCHNORM;
    }
    ck_assert_int_ge(dense, 6);
    struct dlas_params *pd, *pgp; /* the choices outlive the plans that point to them */
    const struct dlas_primitive_choice direct = choice("direct", &pd),
                                       gsp = choice("grouped-spatial-pack", &pgp);
    for (int64_t batch = 1; batch <= 3; batch++) {
        struct dlas_plan *pf, *ps, *pg;
        /* two threads divide an even batch: the pass splits by images */
        ck_assert_int_eq(prologue_plan(&rig, g, &direct, batch, 0, &pf), batch % 2 ? dense : 0);
        ck_assert_int_eq(prologue_plan(&rig, g, &direct, batch, 1, &ps), 0);
        ck_assert_int_eq(prologue_plan(&rig, g, &gsp, batch, 0, &pg), 0);
        ck_assert(plan_vs_ref(pf, g, batch) < 1e-5);
        same_bits(pf, ps, g, batch, 11 + (uint64_t)batch);
        dlas_plan_free(pf);
        dlas_plan_free(ps);
        dlas_plan_free(pg);
    }
    dlas_params_free(pd);
    dlas_params_free(pgp);
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

/* ---- activations in channel blocks of 16 (plan_layout.c) ------------------------ */

/* Nodes of g whose output plan p keeps in C16 (fused nodes: their root's). */
static int c16_count(const struct dlas_plan *p, const struct dlas_graph *g)
{
    int k = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        k += dlas_plan_fused_into(p, i) < 0 && dlas_plan_layout(p, i) == DLAS_LAYOUT_C16;
    return k;
}

/* A plan over n choices (each layer: the first that takes it). */
static struct dlas_plan *c16_plan(struct rig *rig, const struct dlas_graph *g,
                                  const struct dlas_primitive_choice *pc, int n, int64_t batch,
                                  int no_c16)
{
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.no_c16 = no_c16;
    struct dlas_plan *p;
    ck_assert_msg(dlas_plan_create_ex(g, &rig->h, &rig->be, pc, n, NULL, batch, &po, &p) == 0,
                  "%s", dlas_last_error());
    return p;
}

/* Plan `on` (C16 allowed) of g against `off` (all NCHW) at batch: `want`
 * tensors in C16 and none in off, the reference's output within 1e-5, and
 * off's bit for bit; frees both. */
static void c16_against_nchw(struct dlas_plan *on, struct dlas_plan *off,
                             const struct dlas_graph *g, int64_t batch, int want, uint64_t seed)
{
    ck_assert_int_eq(c16_count(on, g), want);
    ck_assert_int_eq(c16_count(off, g), 0);
    ck_assert(plan_vs_ref(on, g, batch) < 1e-5);
    same_bits(on, off, g, batch, seed);
    dlas_plan_free(on);
    dlas_plan_free(off);
}

/* `direct`, except that it refuses a C16 input (set_layouts): a primitive
 * that writes C16 but cannot read it */
static const struct dlas_primitive_ops *direct_ops;
static int refuse_c16_input(void *state, int in, int out, int res)
{
    if (in == DLAS_LAYOUT_C16)
        return dlas_error(DLAS_ERR_UNSUPPORTED, "test: no C16 input");
    return direct_ops->set_layouts(state, in, out, res);
}

/* A tensor stays in C16 only where its conv and every reader take it: a
 * conv's input (a: read by two convs; b, of 20 channels, a block and a
 * quarter; e, after a stride-2 conv that read NCHW) or a residual (c,
 * added by d, whose sum a max pool reads in NCHW; g, added by h into the
 * graph's output), never where a max pool reads it (the sum). Results as
 * the reference's, and bit for bit the all-NCHW plan's, at batches 1-3 on
 * two threads. */
START_TEST(test_c16_layout)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 5, 13, 11);
    struct dlas_conv_attr e24 = dlas_conv(24, 1, 1, 0), k20 = dlas_conv(20, 3, 1, 1),
                          e40 = dlas_conv(40, 1, 1, 0), s24 = dlas_conv(24, 3, 2, 1),
                          e16 = dlas_conv(16, 1, 1, 0);
    int a = dlas_graph_conv2d(g, "a", x, &e24);
    int y = dlas_graph_relu(g, "ra", dlas_graph_batchnorm(g, "bna", a, 1e-5f));
    int b = dlas_graph_conv2d(g, "b", y, &k20);
    int yb = dlas_graph_relu6(g, "rb", dlas_graph_batchnorm(g, "bnb", b, 1e-5f));
    int c = dlas_graph_conv2d(g, "c", yb, &e40);
    int d = dlas_graph_conv2d(g, "d", y, &e40);
    int sum = dlas_graph_relu(g, "rs", dlas_graph_add(g, "add", c, d)); /* into d */
    int e = dlas_graph_conv2d(g, "e", sum, &s24);
    int ge = dlas_graph_conv2d(g, "g", dlas_graph_relu(g, "re", e), &e16);
    struct dlas_pool_attr pa = dlas_pool(3, 2, 1);
    int f = dlas_graph_maxpool(g, "pool", sum, &pa);
    int h = dlas_graph_conv2d(g, "h", f, &e16);
    int out = dlas_graph_add(g, "out", h, ge); /* into h */
    ck_assert_msg(out >= 0 && dlas_graph_status(g) == 0, "%s", dlas_last_error());
    init_graph(g, 41);
    struct dlas_params *pd;
    const struct dlas_primitive_choice direct = choice("direct", &pd);
    for (int64_t batch = 1; batch <= 3; batch++) {
        struct dlas_plan *on = c16_plan(&rig, g, &direct, 1, batch, 0),
                         *off = c16_plan(&rig, g, &direct, 1, batch, 1);
        ck_assert_int_eq(dlas_plan_fused_into(on, dlas_graph_find(g, "add")), d);
        ck_assert_int_eq(dlas_plan_fused_into(on, out), h);
        const int want[][2] = {{a, 1}, {y, 1}, {b, 1}, {yb, 1}, {c, 1}, {d, 0}, {sum, 0},
                               {e, 1}, {ge, 1}, {f, 0}, {h, 0}, {out, 0}};
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
            ck_assert_msg(dlas_plan_layout(on, want[k][0]) ==
                              (want[k][1] ? DLAS_LAYOUT_C16 : DLAS_LAYOUT_NCHW),
                          "node '%s': layout %d", dlas_graph_node(g, want[k][0])->name,
                          dlas_plan_layout(on, want[k][0]));
        c16_against_nchw(on, off, g, batch, 5, 51 + (uint64_t)batch);
    }
    /* a primitive that refuses its layouts keeps NCHW, and so do the
     * chains through it: here every conv that would read C16 refuses, so
     * nothing stays C16, and the results do not change */
    direct_ops = direct.comp->ops;
    struct dlas_primitive_ops refusing = *direct_ops;
    refusing.set_layouts = refuse_c16_input;
    struct dlas_component rc = *direct.comp;
    rc.ops = &refusing;
    const struct dlas_primitive_choice picky = {"direct", &rc, direct.params};
    for (int64_t batch = 1; batch <= 2; batch++) {
        c16_against_nchw(c16_plan(&rig, g, &picky, 1, batch, 0),
                         c16_plan(&rig, g, &direct, 1, batch, 1), g, batch, 0,
                         81 + (uint64_t)batch);
    }
    dlas_graph_free(g);
    /* ResNet-50's bottlenecks: every conv's output but the stem's (a max
     * pool reads it) and the last block's sum (the global pool's input) */
    static const char *const r50[] = {"depth", "50", "style", "imagenet", NULL};
    g = zoo_model(&rig.h, "resnet", r50, 3, 40, 36, 10);
    int convs = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        convs += dlas_graph_node(g, i)->op == DLAS_OP_CONV2D;
    for (int64_t batch = 1; batch <= 2; batch++) {
        c16_against_nchw(c16_plan(&rig, g, &direct, 1, batch, 0),
                         c16_plan(&rig, g, &direct, 1, batch, 1), g, batch, convs - 2,
                         61 + (uint64_t)batch);
    }
    dlas_graph_free(g);
    /* ResNet-18 on winograd (its 3x3 stride-1 layers) and direct (the rest):
     * the two hand C16 to each other */
    static const char *const r18[] = {"depth", "18", "style", "imagenet", NULL};
    g = zoo_model(&rig.h, "resnet", r18, 3, 44, 40, 10);
    struct dlas_params *pw;
    const struct dlas_primitive_choice two[2] = {choice("winograd", &pw), direct};
    convs = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        convs += dlas_graph_node(g, i)->op == DLAS_OP_CONV2D;
    for (int64_t batch = 1; batch <= 3; batch += 2) {
        struct dlas_plan *on = c16_plan(&rig, g, two, 2, batch, 0),
                         *off = c16_plan(&rig, g, two, 2, batch, 1);
        int wino = 0;
        for (int i = 0; i < dlas_graph_n_nodes(g); i++)
            wino += dlas_graph_node(g, i)->op == DLAS_OP_CONV2D &&
                    !strcmp(dlas_plan_binding(on, i), "winograd");
        ck_assert_int_ge(wino, 10);
        c16_against_nchw(on, off, g, batch, convs - 2, 71 + (uint64_t)batch);
    }
    dlas_graph_free(g);
    /* ResNeXt's grouped 3x3s on `direct`: 32 groups of 16 and 32 channels in
     * the last two stages lie in C16 (pc_c16_groups) and write it; groups of
     * 4 and 8 in the first two are refused, and their inputs and outputs
     * stay NCHW */
    static const char *const rx[] = {"depth", "50", "style", "imagenet", "groups", "32",
                                     "width_per_group", "4", NULL};
    g = zoo_model(&rig.h, "resnet", rx, 3, 40, 36, 10);
    convs = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++)
        convs += dlas_graph_node(g, i)->op == DLAS_OP_CONV2D;
    for (int64_t batch = 1; batch <= 2; batch++) {
        struct dlas_plan *on = c16_plan(&rig, g, &direct, 1, batch, 0);
        int grouped = 0, in_c16 = 0;
        for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
            const struct dlas_node *nd = dlas_graph_node(g, i);
            if (nd->op != DLAS_OP_CONV2D || nd->attr.conv.groups == 1)
                continue;
            const int64_t cpg =
                dlas_graph_node(g, nd->inputs[0])->out_shape[0] / nd->attr.conv.groups;
            const int whole = cpg % 16 == 0;
            grouped++;
            in_c16 += whole;
            ck_assert_msg((dlas_plan_layout(on, i) == DLAS_LAYOUT_C16) == whole,
                          "ResNeXt, batch %lld: '%s' (%lld channels a group) %s C16",
                          (long long)batch, nd->name, (long long)cpg, whole ? "not in" : "in");
        }
        ck_assert_int_eq(grouped, 16);
        ck_assert_int_eq(in_c16, 9);
        /* as ResNet-50's, less the input and the output of each refused
         * grouped conv (its block's conv1 and conv2 write nothing else) */
        c16_against_nchw(on, c16_plan(&rig, g, &direct, 1, batch, 1), g, batch,
                         convs - 2 - 2 * (grouped - in_c16), 91 + (uint64_t)batch);
    }
    dlas_params_free(pw);
    dlas_params_free(pd);
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

/* An add writes over an input it is the last reader of, never over one read
 * later: s = a + b may take b's buffer, not a's, which t = s + a still
 * reads (and an add of a value with itself twice over). */
START_TEST(test_add_in_place)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 3, 8, 6);
    struct dlas_conv_attr ca = dlas_conv(4, 3, 1, 1);
    int a = dlas_graph_conv2d(g, "a", x, &ca), b = dlas_graph_conv2d(g, "b", x, &ca);
    int s1 = dlas_graph_add(g, "s1", a, b);  /* may take b's buffer only */
    int s2 = dlas_graph_add(g, "s2", s1, a); /* then a's */
    int s3 = dlas_graph_add(g, "s3", s2, s2);
    int r = dlas_graph_relu(g, "r", s3);
    int s4 = dlas_graph_add(g, "s4", r, s1); /* s1 read late: s2, s3 not over it */
    ck_assert_msg(s4 >= 0 && dlas_graph_status(g) == 0, "%s", dlas_last_error());
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 17);
    ck_assert_int_eq(dlas_graph_init_weights(g, &rng), 0);
    struct dlas_plan *p;
    for (int64_t batch = 1; batch <= 2; batch++) {
        ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, NULL, 0, NULL, 2, NULL, &p), 0);
        ck_assert(plan_vs_ref(p, g, batch) < 1e-6);
        dlas_plan_free(p);
    }
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

/* A residual add runs inside the conv before it (run_residual) where that
 * conv is its input's only producer and reader, and its other input was
 * written before the conv runs: the block's input (the graph input itself),
 * or a conv earlier in the graph (ResNet's downsample branch comes after
 * conv3, so the add goes into the downsample). Not where the conv's output
 * is read twice. The results agree with the reference either way. */
START_TEST(test_residual_fusion)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 24, 7, 6); /* 42 pixels: a part-filled strip */
    struct dlas_conv_attr e = dlas_conv(40, 1, 1, 0), pr = dlas_conv(24, 1, 1, 0);
    struct dlas_conv_attr c32 = dlas_conv(32, 1, 1, 0), c3 = dlas_conv(32, 3, 1, 1);
    int y = dlas_graph_relu(g, "r0", dlas_graph_batchnorm(g, "bn0", dlas_graph_conv2d(g, "expand", x, &e), 1e-5f));
    y = dlas_graph_batchnorm(g, "bn1", dlas_graph_conv2d(g, "project", y, &pr), 1e-5f);
    int add1 = dlas_graph_add(g, "add1", y, x); /* the graph input as residual */
    int r1 = dlas_graph_relu(g, "r1", add1);
    int c = dlas_graph_conv2d(g, "main", r1, &c32);
    int d = dlas_graph_conv2d(g, "shortcut", r1, &c32);
    int add2 = dlas_graph_add(g, "add2", c, d); /* into the later conv */
    int r2 = dlas_graph_relu6(g, "r2", add2);
    int t = dlas_graph_conv2d(g, "twice", r2, &c3); /* read by two: stays */
    int add3 = dlas_graph_add(g, "add3", t, r2);
    int add4 = dlas_graph_add(g, "add4", add3, t);
    ck_assert_msg(add4 >= 0 && dlas_graph_status(g) == 0, "%s", dlas_last_error());
    init_graph(g, 31);
    struct dlas_params *pp, *fp;
    struct dlas_primitive_choice pw = choice("pointwise", &pp), fb = choice("im2col-gemm", &fp);
    for (int off = 0; off <= 1; off++) {
        struct dlas_plan_options po;
        dlas_plan_options_default(&po);
        po.no_residual = off;
        struct dlas_plan *p;
        ck_assert_msg(dlas_plan_create_ex(g, &rig.h, &rig.be, &pw, 1, &fb, 3, &po, &p) == 0,
                      "%s", dlas_last_error());
        for (int64_t batch = 1; batch <= 3; batch += 2) {
            double err = plan_vs_ref(p, g, batch);
            ck_assert_msg(err < 1e-5, "no_residual %d, batch %ld: relative error %.3g", off,
                          (long)batch, err);
        }
        const int proj = dlas_graph_find(g, "project");
        ck_assert_int_eq(dlas_plan_fused_into(p, add1), off ? -1 : proj);
        ck_assert_int_eq(dlas_plan_fused_into(p, r1), off ? add1 : proj);
        ck_assert_int_eq(dlas_plan_fused_into(p, add2), off ? -1 : d);
        ck_assert_int_eq(dlas_plan_fused_into(p, r2), off ? add2 : d);
        ck_assert_int_eq(dlas_plan_fused_into(p, add3), -1);
        ck_assert_int_eq(dlas_plan_fused_into(p, add4), -1);
        ck_assert_str_eq(dlas_plan_binding(p, t), "im2col-gemm"); /* 3x3: the fallback */
        dlas_plan_free(p);
    }
    dlas_params_free(pp);
    dlas_params_free(fp);
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

START_TEST(test_plan_ops)
{
    struct rig rig;
    rig_open(&rig, 2);
    static const struct dlas_pool_attr pools[] = {
        {3, 3, 2, 2, 1, 1, 0, 1}, {2, 2, 2, 2, 0, 0, 0, 1}, {3, 3, 1, 1, 1, 1, 0, 1},
        {3, 2, 2, 3, 0, 1, 1, 1}, {5, 5, 3, 3, 2, 2, 1, 1}, {3, 3, 2, 2, 0, 0, 0, 1},
        {2, 3, 1, 2, 0, 0, 0, 0}};
    /* width 11, and 45: wide enough for the vector paths of the 3-wide
     * stride-2 window (16 or 8 columns a step), with a tail after them */
    static const int widths[] = {11, 45};
    int total_nans = 0;
    for (size_t kk = 0; kk < 2 * sizeof pools / sizeof pools[0]; kk++) {
        const size_t k = kk % (sizeof pools / sizeof pools[0]);
        const int iw = widths[kk / (sizeof pools / sizeof pools[0])];
        struct dlas_graph *g = dlas_graph_new();
        int x = dlas_graph_input(g, "in", 5, 13, iw);
        int y = dlas_graph_maxpool(g, "mp", x, &pools[k]);
        int z = dlas_graph_batchnorm(g, "bn", x, 1e-5f); /* input has two consumers: unfused */
        struct dlas_pool_attr same = pools[k];
        int w = dlas_graph_maxpool(g, "mp2", z, &same);
        y = dlas_graph_add(g, "add", y, w);
        /* average pooling of the same windows: the plan's own where every
         * window is whole, the reference operator elsewhere */
        int v = dlas_graph_avgpool(g, "ap", x, &same);
        y = dlas_graph_add(g, "add2", y, v);
        y = dlas_graph_relu6(g, "r6", y);
        ck_assert_msg(y >= 0 && dlas_graph_status(g) == 0, "pool %zu: %s", k, dlas_last_error());
        struct dlas_rng r;
        dlas_rng_seed(&r, 11 + k);
        ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
        struct dlas_plan *p;
        ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, NULL, 0, NULL, 2, NULL, &p), 0);
        int64_t n_in = 2 * 5 * 13 * iw, n_out = 2 * dlas_plan_output_numel(p);
        struct dlas_tensor in = {0}, ref = {0};
        int64_t dims[4] = {2, 5, 13, iw};
        ck_assert_int_eq(dlas_tensor_alloc(&in, DLAS_F32, 4, dims), 0);
        float *xi = dlas_f32(&in);
        for (int64_t i = 0; i < n_in; i++)
            xi[i] = dlas_rng_normal(&r) * 4.0f;
        xi[7] = NAN;
        xi[20] = NAN; /* an odd column: the middle tap of a window */
        xi[200] = -INFINITY;
        xi[n_in - 1] = NAN;
        ck_assert_int_eq(dlas_graph_forward_ref(g, &in, &ref), 0);
        float *out = malloc((size_t)n_out * sizeof(float));
        ck_assert_int_eq(dlas_plan_run(p, 2, xi, out), 0);
        const float *yr = dlas_f32(&ref);
        int nans = 0;
        for (int64_t i = 0; i < n_out; i++) {
            if (isnan(yr[i])) {
                ck_assert_msg(isnan(out[i]), "pool %zu: element %lld: %g, reference NaN", k,
                              (long long)i, (double)out[i]);
                nans++;
                continue;
            }
            ck_assert_msg(fabsf(out[i] - yr[i]) <= 1e-5f * (1.0f + fabsf(yr[i])),
                          "pool %zu: element %lld: %g, reference %g", k, (long long)i,
                          (double)out[i], (double)yr[i]);
        }
        total_nans += nans;
        free(out);
        dlas_tensor_free(&in);
        dlas_tensor_free(&ref);
        dlas_plan_free(p);
        dlas_graph_free(g);
    }
    ck_assert_msg(total_nans > 0, "no window held a NaN: the test tests nothing");
    rig_close(&rig);
}
END_TEST

/* ---- the tuning log ------------------------------------------------------------------ */

/* A private directory for each test that writes files. */
static void tmp_setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "compare");
}

static void tmp_teardown(void)
{
    dlas_test_rmtree(tmpdir);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s", dlas_test_path(tmpdir, name));
}

START_TEST(test_tunelog_roundtrip)
{
    char path[512];
    tmp_path(path, sizeof path, "t1.log");
    unlink(path);
    struct dlas_conv_desc d = {.batch = 1, .in_c = 64, .in_h = 56, .in_w = 56, .out_c = 64,
                               .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
                               .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1};
    ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
    struct dlas_tune_entry e;
    memset(&e, 0, sizeof e);
    strcpy(e.primitive, "winograd");
    strcpy(e.device, "cpu");
    e.threads = 2;
    dlas_tune_layer_key(&d, e.layer, sizeof e.layer);
    ck_assert_str_eq(e.layer, "64x56x56-64:k3x3s1x1p1x1d1x1g1b1");
    strcpy(e.settings, "tile=4;oc_vectors=2");
    e.ms = 1.5;
    e.gflops = 150;
    e.default_ms = 2.0;
    ck_assert_int_eq(dlas_tunelog_append(path, &e), 0);
    strcpy(e.settings, "tile=2;oc_vectors=1"); /* re-tuned: replaces */
    e.ms = 1.25;
    ck_assert_int_eq(dlas_tunelog_append(path, &e), 0);
    e.threads = 1;
    strcpy(e.settings, "tile=4");
    ck_assert_int_eq(dlas_tunelog_append(path, &e), 0);

    struct dlas_tunelog *t = NULL;
    ck_assert_msg(dlas_tunelog_load(path, 0, &t) == 0, "%s", dlas_last_error());
    ck_assert_uint_eq(dlas_tunelog_count(t), 2);
    const struct dlas_tune_entry *f = dlas_tunelog_find(t, "winograd", "cpu", 2, &d);
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(f->settings, "tile=2;oc_vectors=1");
    ck_assert(fabs(f->ms - 1.25) < 1e-9 && fabs(f->default_ms - 2.0) < 1e-9);
    ck_assert_str_eq(dlas_tunelog_find(t, "winograd", "cpu", 1, &d)->settings, "tile=4");
    ck_assert_ptr_null(dlas_tunelog_find(t, "winograd", "cpu", 4, &d));
    ck_assert_ptr_null(dlas_tunelog_find(t, "direct", "cpu", 2, &d));
    d.batch = 8; /* another batch is another key */
    ck_assert_ptr_null(dlas_tunelog_find(t, "winograd", "cpu", 2, &d));
    dlas_tunelog_free(t);

    /* a missing file: empty when allowed, an error otherwise */
    tmp_path(path, sizeof path, "missing.log");
    unlink(path);
    ck_assert_int_eq(dlas_tunelog_load(path, 1, &t), 0);
    ck_assert_uint_eq(dlas_tunelog_count(t), 0);
    dlas_tunelog_free(t);
    ck_assert_int_eq(dlas_tunelog_load(path, 0, &t), DLAS_ERR_IO);

    /* a corrupt line is refused with file:line */
    tmp_path(path, sizeof path, "bad.log");
    FILE *fp = fopen(path, "w");
    fprintf(fp, "# header\nwinograd\tcpu\t2\tkey\ttile=4\t1.0\t2.0\t3.0\tnow\n"
                "direct\tcpu\tx\tkey\t\t1\t2\t3\tnow\n");
    fclose(fp);
    ck_assert_int_eq(dlas_tunelog_load(path, 0, &t), DLAS_ERR_CORRUPT);
    ck_assert_msg(strstr(dlas_last_error(), "bad.log:3"), "%s", dlas_last_error());
    fp = fopen(path, "w");
    fprintf(fp, "winograd\tcpu\t2\tkey\n");
    fclose(fp);
    ck_assert_int_eq(dlas_tunelog_load(path, 0, &t), DLAS_ERR_CORRUPT);
    ck_assert_msg(strstr(dlas_last_error(), "bad.log:1"), "%s", dlas_last_error());
    /* hostile values: a thread count past int, a time of inf, a NUL byte */
    const char *hostile[] = {"winograd\tcpu\t4294967298\tkey\ttile=4\t1.0\t2.0\t3.0\tnow\n",
                             "winograd\tcpu\t2\tkey\ttile=4\tinf\t2.0\t3.0\tnow\n",
                             "winograd\tcpu\t2\tkey\ttile=4\tnan\t2.0\t3.0\tnow\n",
                             "winograd\tcpu\t2\tkey\ttile=4\t-1\t2.0\t3.0\tnow\n"};
    for (int k = 0; k < 4; k++) {
        fp = fopen(path, "w");
        fputs(hostile[k], fp);
        fclose(fp);
        ck_assert_int_eq(dlas_tunelog_load(path, 0, &t), DLAS_ERR_CORRUPT);
        ck_assert_msg(strstr(dlas_last_error(), "bad.log:1"), "%s", dlas_last_error());
    }
    fp = fopen(path, "w");
    fwrite("winograd\tcpu\t2\tke\0y\ttile=4\t1\t2\t3\tnow\n", 1, 37, fp);
    fclose(fp);
    ck_assert_int_eq(dlas_tunelog_load(path, 0, &t), DLAS_ERR_CORRUPT);
    ck_assert_msg(strstr(dlas_last_error(), "NUL"), "%s", dlas_last_error());
    /* "nan" as default_ms (no default ran) is what the tuner writes: fine */
    fp = fopen(path, "w");
    fputs("winograd\tcpu\t2\tkey\ttile=4\t1.0\t2.0\tnan\tnow\n", fp);
    fclose(fp);
    ck_assert_int_eq(dlas_tunelog_load(path, 0, &t), 0);
    dlas_tunelog_free(t);
    /* 200,000 distinct lines load in linear time (the index is a hash) */
    fp = fopen(path, "w");
    for (int k = 0; k < 200000; k++)
        fprintf(fp, "direct\tcpu\t1\tlayer%d\tx=1\t1\t2\t3\tnow\n", k);
    fclose(fp);
    ck_assert_int_eq(dlas_tunelog_load(path, 0, &t), 0);
    ck_assert_uint_eq(dlas_tunelog_count(t), 200000);
    dlas_tunelog_free(t);
    /* a FIFO is refused, not waited on */
    tmp_path(path, sizeof path, "fifo.log");
    unlink(path);
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    ck_assert_int_eq(dlas_tunelog_load(path, 1, &t), DLAS_ERR_INVALID);
    ck_assert_msg(strstr(dlas_last_error(), "FIFO"), "%s", dlas_last_error());
    unlink(path);
    tmp_path(path, sizeof path, "bad.log");
    /* settings that would break the format are refused */
    strcpy(e.settings, "a=1\tb=2");
    ck_assert_int_eq(dlas_tunelog_append(path, &e), DLAS_ERR_INVALID);
}
END_TEST

START_TEST(test_params_apply)
{
    const struct dlas_component *c = find(DLAS_KIND_PRIMITIVE, "winograd");
    struct dlas_params *p = NULL;
    ck_assert_int_eq(dlas_params_defaults(c->params, &p), 0);
    char buf[512];
    ck_assert_int_eq(dlas_params_tunables(p, buf, sizeof buf), 0);
    ck_assert_msg(strstr(buf, "tile=0") && strstr(buf, "split=auto"), "%s", buf);
    ck_assert_int_eq(dlas_params_apply(p, "tile=2; oc_vectors = 1;split=channels", "t"), 0);
    ck_assert_int_eq(dlas_param_int(p, "tile"), 2);
    ck_assert_int_eq(dlas_param_int(p, "oc_vectors"), 1);
    ck_assert_str_eq(dlas_param_str(p, "split"), "channels");
    /* what tunables() writes, apply() reads back */
    ck_assert_int_eq(dlas_params_tunables(p, buf, sizeof buf), 0);
    struct dlas_params *q = NULL;
    ck_assert_int_eq(dlas_params_defaults(c->params, &q), 0);
    ck_assert_int_eq(dlas_params_apply(q, buf, "t"), 0);
    ck_assert_str_eq(dlas_param_str(q, "split"), "channels");
    ck_assert_int_eq(dlas_param_int(q, "tile"), 2);
    ck_assert_int_ne(dlas_params_apply(q, "tile=9", "t"), 0); /* out of range */
    ck_assert_int_ne(dlas_params_apply(q, "nonsense", "t"), 0);
    ck_assert_int_ne(dlas_params_apply(q, "tlie=2", "t"), 0);
    dlas_params_free(p);
    dlas_params_free(q);
}
END_TEST

/* ---- the tuner, and plans reading its log ------------------------------------------- */

START_TEST(test_tuner_and_plan)
{
    struct rig rig;
    rig_open(&rig, 1);
    struct dlas_conv_desc d = {.batch = 1, .in_c = 16, .in_h = 15, .in_w = 15, .out_c = 16,
                               .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
                               .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1, .has_bias = 1};
    ck_assert_int_eq(dlas_conv_desc_finish(&d), 0);
    struct dlas_tune_options o;
    dlas_tune_options_default(&o);
    o.budget_s = 0.5;
    o.repeat = 3;
    o.warmup = 1;
    o.max_candidates = 12;
    struct dlas_tune_result r;
    const struct dlas_component *w = find(DLAS_KIND_PRIMITIVE, "winograd");
    int rc = dlas_tune_layer(w, NULL, &rig.h, &rig.be, &d, &o, &r);
    ck_assert_msg(rc == 0, "tune: %s", dlas_last_error());
    ck_assert_int_ge(r.tried, 2);
    ck_assert_int_le(r.tried, 12);
    ck_assert(r.best_ms > 0 && r.best_ms <= r.default_ms);
    ck_assert(r.best_err < 1e-4);
    ck_assert_int_gt(r.space, 10);
    ck_assert_msg(strstr(r.settings, "tile="), "%s", r.settings);

    /* a layer no candidate can run */
    struct dlas_conv_desc s2 = d;
    s2.stride_h = s2.stride_w = 2;
    ck_assert_int_eq(dlas_conv_desc_finish(&s2), 0);
    ck_assert_int_eq(dlas_tune_layer(w, NULL, &rig.h, &rig.be, &s2, &o, &r), DLAS_ERR_UNSUPPORTED);

    /* a plan given a log prepares that layer with the logged settings */
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "in", 16, 15, 15);
    struct dlas_conv_attr a = dlas_conv(16, 3, 1, 1);
    a.bias = 1;
    x = dlas_graph_conv2d(g, "conv", x, &a);
    ck_assert(x >= 0);
    struct dlas_rng gr;
    dlas_rng_seed(&gr, 2);
    ck_assert_int_eq(dlas_graph_init_weights(g, &gr), 0);
    struct dlas_tunelog *log = dlas_tunelog_new();
    struct dlas_tune_entry e;
    memset(&e, 0, sizeof e);
    strcpy(e.primitive, "winograd");
    strcpy(e.device, "cpu");
    e.threads = 1;
    dlas_tune_layer_key(&d, e.layer, sizeof e.layer);
    strcpy(e.settings, "tile=2;tile_block=3");
    ck_assert_int_eq(dlas_tunelog_add(log, &e), 0);
    struct dlas_params *wp;
    struct dlas_primitive_choice wc = choice("winograd", &wp);
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.tunelog = log;
    struct dlas_plan *p;
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, &wc, 1, NULL, 1, &po, &p), 0);
    ck_assert_str_eq(dlas_plan_layer_settings(p, x), "tile=2;tile_block=3");
    ck_assert(plan_vs_ref(p, g, 1) < 1e-5);
    dlas_plan_free(p);
    /* the configured parameters stay untouched, and without a log nothing applies */
    ck_assert_int_eq(dlas_param_int(wp, "tile"), 0);
    ck_assert_int_eq(dlas_plan_create_ex(g, &rig.h, &rig.be, &wc, 1, NULL, 1, NULL, &p), 0);
    ck_assert_str_eq(dlas_plan_layer_settings(p, x), "");
    dlas_plan_free(p);
    /* bad logged settings fail the plan with the origin named */
    strcpy(e.settings, "tile=9");
    ck_assert_int_eq(dlas_tunelog_add(log, &e), 0);
    ck_assert_int_ne(dlas_plan_create_ex(g, &rig.h, &rig.be, &wc, 1, NULL, 1, &po, &p), 0);
    ck_assert_msg(strstr(dlas_last_error(), "tuning log"), "%s", dlas_last_error());
    dlas_tunelog_free(log);
    dlas_params_free(wp);
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

/* ---- compare ------------------------------------------------------------------------- */

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(test_compare)
{
    struct rig rig;
    rig_open(&rig, 2);
    struct dlas_graph *g = small_resnet();
    /* prune 3/4 of pw's weights: the table reports each layer's sparsity */
    struct dlas_node *pwn = dlas_graph_node(g, dlas_graph_find(g, "pw"));
    float *pww = pwn->weight.data;
    const int64_t pwn_n = dlas_tensor_numel(&pwn->weight);
    for (int64_t i = 0; i < pwn_n * 3 / 4; i++)
        pww[i * 4 / 3] = 0.0f;
    static const char *names[] = {"direct", "winograd", "im2col-gemm"};
    struct dlas_params *pp[3];
    struct dlas_primitive_choice pc[3];
    for (int k = 0; k < 3; k++)
        pc[k] = choice(names[k], &pp[k]);
    struct dlas_params *fp;
    struct dlas_primitive_choice fb = choice("grouped-spatial-pack", &fp);
    struct dlas_compare_options o;
    dlas_compare_options_default(&o);
    o.repeat = 3;
    o.warmup = 1;
    o.batch = 2;
    struct dlas_compare *c = NULL;
    int rc = dlas_compare_run(g, &rig.h, &rig.be, pc, 3, &fb, &o, &c);
    ck_assert_msg(rc == 0, "compare: %s", dlas_last_error());
    ck_assert_int_eq(c->n_layers, 4); /* c1, c2, dw, pw */
    ck_assert(c->layers[0].sparsity == 0.0);
    ck_assert_msg(fabs(c->layers[3].sparsity - 0.75) < 1e-6, "pw sparsity %g",
                  c->layers[3].sparsity);
    ck_assert_int_eq(c->n_e2e, 4);    /* three primitives and auto */
    ck_assert_int_eq(c->threads, 2);
    /* c2 has c1's shape once batchnorm is folded: timed once */
    ck_assert_int_eq(c->layers[1].same_as, 0);
    for (int l = 0; l < c->n_layers; l++) {
        const struct dlas_compare_layer *L = &c->layers[l];
        ck_assert_int_ge(L->best, 0);
        for (int k = 0; k < 3; k++) {
            const struct dlas_compare_cell *x = &L->cells[k];
            if (x->status) {
                ck_assert_int_eq(x->status, DLAS_ERR_UNSUPPORTED);
                ck_assert_msg(x->why[0], "%s refused %s without a reason", names[k], L->name);
                continue;
            }
            ck_assert(x->ms > 0 && x->min <= x->ms && x->ms <= x->max && x->gflops > 0);
            ck_assert_msg(x->err < 1e-4, "%s on %s: error %g", names[k], L->name, x->err);
        }
    }
    /* winograd refuses the strided 1x1 and the depthwise layer */
    ck_assert_int_eq(c->layers[3].cells[1].status, DLAS_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(c->layers[3].cells[1].why, "1x1"), "%s", c->layers[3].cells[1].why);
    for (int k = 0; k < c->n_e2e; k++) {
        const struct dlas_compare_e2e *e = &c->e2e[k];
        ck_assert_msg(e->status == 0, "%s: %s", e->label, e->why);
        ck_assert(e->ms > 0 && e->min <= e->ms && e->ms <= e->max);
        ck_assert(e->conv_ms > 0 && e->other_ms > 0);
        /* the columns are the total, split */
        ck_assert_double_eq_tol(e->conv_ms + e->other_ms, e->ms, 1e-9 * e->ms);
        ck_assert_msg(e->err < 1e-4, "%s: error %g", e->label, e->err);
    }
    ck_assert_str_eq(c->e2e[3].label, "auto");
    ck_assert_int_eq(c->e2e[1].n_fallbacks, 2); /* winograd: dw, pw */
    ck_assert_msg(strstr(c->e2e[1].fallbacks, "pw (winograd: a 1x1 kernel"), "%s",
                  c->e2e[1].fallbacks);
    /* auto is the plan's own choice (dlas_plan_auto_select): timed until
     * clear, at least its minimum of runs; every conv is bound to a
     * primitive, runs inside a fused block that auto kept, or fell back */
    int bound = 0;
    for (int k = 0; k < 3; k++)
        bound += c->e2e[3].layer_count[k];
    ck_assert_int_eq(bound + c->e2e[3].block_layers + c->e2e[3].n_fallbacks, 4);
    ck_assert_int_ge(c->e2e[3].auto_runs, 5);
    ck_assert(c->e2e[3].auto_unclear >= 0 && c->e2e[3].auto_unclear <= 4);
    ck_assert_int_eq(c->e2e[3].blocks != NULL, c->e2e[3].block_layers > 0);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(c->e2e[k].block_layers, 0); /* a primitive's own plan fuses none */

    char lp[512], ep[512], jp[512];
    tmp_path(lp, sizeof lp, "cmp-layers.csv");
    tmp_path(ep, sizeof ep, "cmp-e2e.csv");
    tmp_path(jp, sizeof jp, "cmp.json");
    ck_assert_int_eq(dlas_compare_write_csv(c, lp, ep), 0);
    const char *meta[] = {"model", "small", "input", "16x15x15"};
    ck_assert_int_eq(dlas_compare_write_json(c, jp, meta, 2), 0);
    char *s = dlas_test_slurp(lp, NULL);
    ck_assert_int_eq(count_lines(s), 1 + 4 * 3);
    ck_assert_msg(!strncmp(s, "layer,shape,macs,sparsity,primitive,status,ms_median", 52), "%s",
                  s);
    ck_assert(strstr(s, "pw,") && strstr(s, ",refused,"));
    free(s);
    s = dlas_test_slurp(ep, NULL);
    ck_assert_int_eq(count_lines(s), 1 + 4);
    ck_assert(strstr(s, "\nauto,ok,"));
    free(s);
    s = dlas_test_slurp(jp, NULL);
    ck_assert(strstr(s, "\"model\": \"small\"") && strstr(s, "\"end_to_end\": [") &&
              strstr(s, "\"layers\": [") && strstr(s, "\"primitive\": \"auto\"") &&
              strstr(s, "\"status\": \"refused\"") && strstr(s, "\"block_layers\": ") &&
              strstr(s, "\"auto_runs\": "));
    free(s);
    FILE *devnull = fopen("/dev/null", "w");
    dlas_compare_print(c, devnull);
    fclose(devnull);
    dlas_compare_free(c);

    /* end to end only: auto binds by the default rule; on the CPU clock */
    o.layers = 0;
    o.check = 0;
    o.cpu_time = 1;
    ck_assert_int_eq(dlas_compare_run(g, &rig.h, &rig.be, pc, 3, &fb, &o, &c), 0);
    ck_assert_int_eq(c->n_e2e, 4);
    ck_assert_int_eq(c->layers_timed, 0);
    ck_assert_int_eq(c->cpu_time, 1);
    for (int k = 0; k < c->n_e2e; k++)
        ck_assert_msg(c->e2e[k].status || c->e2e[k].ms > 0, "%s: %g ms", c->e2e[k].label,
                      c->e2e[k].ms);
    /* the plan's own choice times per node on the wall clock: not here */
    ck_assert_int_eq(c->e2e[3].auto_runs, 0);
    ck_assert_int_eq(c->e2e[3].block_layers, 0);
    dlas_compare_free(c);

    /* a non-finite output is never "ok" (it was, with relative error inf):
     * a NaN weight in c1 fails c1's cells and every plan, checked or not */
    struct dlas_node *c1 = dlas_graph_node(g, dlas_graph_find(g, "c1"));
    float keep = dlas_f32(&c1->weight)[7];
    dlas_f32(&c1->weight)[7] = NAN;
    for (int check = 0; check < 2; check++) {
        o.layers = 1;
        o.check = check;
        ck_assert_int_eq(dlas_compare_run(g, &rig.h, &rig.be, pc, 3, &fb, &o, &c), 0);
        for (int k = 0; k < 3; k++)
            if (c->layers[0].cells[k].status != DLAS_ERR_UNSUPPORTED) {
                ck_assert_int_ne(c->layers[0].cells[k].status, 0);
                ck_assert_msg(strstr(c->layers[0].cells[k].why, "non-finite"), "%s",
                              c->layers[0].cells[k].why);
            }
        for (int k = 0; k < c->n_e2e; k++) {
            ck_assert_msg(c->e2e[k].status != 0, "%s called ok", c->e2e[k].label);
            ck_assert_msg(strstr(c->e2e[k].why, "non-finite"), "%s", c->e2e[k].why);
        }
        ck_assert_int_eq(dlas_compare_write_csv(c, lp, ep), 0);
        s = dlas_test_slurp(ep, NULL);
        ck_assert_ptr_null(strstr(s, ",ok,"));
        free(s);
        dlas_compare_free(c);
    }
    dlas_f32(&c1->weight)[7] = keep;

    for (int k = 0; k < 3; k++)
        dlas_params_free(pp[k]);
    dlas_params_free(fp);
    dlas_graph_free(g);
    rig_close(&rig);
}
END_TEST

int main(void)
{
    if (!(reg = dlas_test_registry("check_compare")))
        return 1;
    Suite *s = suite_create("compare");
    TCase *tc = dlas_test_case(s, "plan", NULL, NULL, 300);
    tcase_add_test(tc, test_plan_fusion);
    tcase_add_test(tc, test_plan_ops);
    tcase_add_test(tc, test_auto_select);
    tcase_add_test(tc, test_plan_blocks);
    tcase_add_test(tc, test_plan_stem_cases);
    tcase_add_test(tc, test_plan_pool_first);
    tcase_add_test(tc, test_thread_pool_kept);
    tcase_add_test(tc, test_concat_views);
    tcase_add_test(tc, test_prologue);
    tcase_add_test(tc, test_c16_layout);
    tcase_add_test(tc, test_add_in_place);
    tcase_add_test(tc, test_residual_fusion);
    tc = dlas_test_case(s, "tuning", tmp_setup, tmp_teardown, 300);
    tcase_add_test(tc, test_tunelog_roundtrip);
    tcase_add_test(tc, test_params_apply);
    tcase_add_test(tc, test_tuner_and_plan);
    tc = dlas_test_case(s, "compare", tmp_setup, tmp_teardown, 300);
    tcase_add_test(tc, test_compare);
    int failed = dlas_test_run(s);
    dlas_registry_free(reg);
    return failed;
}
