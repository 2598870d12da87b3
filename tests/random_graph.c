/* Random networks for the suites' property tests: chains of the zoo's
 * motifs and their near misses (mobile blocks with 1x1 or 3x3 expansions,
 * ResNet's and DenseNet's stems, basic and bottleneck blocks, dense blocks
 * and transitions, any conv and pool, a node read twice) on a random input,
 * ending in MobileNet's head, a global pool and linear layer, a linear layer
 * or the map itself. The same seed makes the same network. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "random_graph.h"

/* ---- a small deterministic generator -------------------------------------------- */

static uint64_t next_u64(struct rg_gen *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
int rg_pick(struct rg_gen *r, int lo, int hi)
{
    return lo + (int)(next_u64(r) % (uint64_t)(hi - lo + 1));
}

/* 1 with probability 1/n */
int rg_one_in(struct rg_gen *r, int n)
{
    return rg_pick(r, 1, n) == 1;
}

static const char *fresh(struct rg_gen *r)
{
    snprintf(r->name, sizeof r->name, "n%d", r->n++);
    return r->name;
}

void rg_note(struct rg_gen *r, const char *fmt, ...)
{
    size_t len = strlen(r->log);
    va_list ap;
    va_start(ap, fmt);
    if (len + 1 < sizeof r->log)
        vsnprintf(r->log + len, sizeof r->log - len, fmt, ap);
    va_end(ap);
}

/* The node's shape becomes the current one. */
static int take(struct rg_gen *r, int id)
{
    ck_assert_msg(id >= 0 && dlas_graph_status(r->g) == 0, "builder: %s (graph so far: %s)",
                  dlas_last_error(), r->log);
    const struct dlas_node *n = dlas_graph_node(r->g, id);
    r->cur = id;
    r->c = (int)n->out_shape[0];
    r->h = (int)n->out_shape[1];
    r->w = (int)n->out_shape[2];
    return id;
}

static int out_size(int in, int k, int s, int p, int d)
{
    const int span = d * (k - 1) + 1;
    return in + 2 * p < span ? 0 : (in + 2 * p - span) / s + 1;
}

static int conv(struct rg_gen *r, int in, int out_c, int k, int s, int p, int groups, int dil,
                int bias)
{
    struct dlas_conv_attr a = dlas_conv(out_c, k, s, p);
    a.groups = groups;
    a.dil_h = a.dil_w = dil;
    a.bias = bias;
    return dlas_graph_conv2d(r->g, fresh(r), in, &a);
}

/* 0: none, 1: relu, 2: relu6 */
static int act(struct rg_gen *r, int in, int kind)
{
    return kind == 1 ? dlas_graph_relu(r->g, fresh(r), in)
           : kind == 2 ? dlas_graph_relu6(r->g, fresh(r), in)
                       : in;
}

static int bn(struct rg_gen *r, int in)
{
    return dlas_graph_batchnorm(r->g, fresh(r), in, 1e-5f);
}

/* conv [-> bn] [-> act]: the layer most motifs are made of; a conv
 * without its batchnorm usually has a bias */
static int conv_bn_act(struct rg_gen *r, int in, int out_c, int k, int s, int p, int groups,
                       int actk)
{
    const int with_bn = !rg_one_in(r, 6);
    int y = conv(r, in, out_c, k, s, p, groups, 1, with_bn ? rg_one_in(r, 8) : !rg_one_in(r, 4));
    if (with_bn)
        y = bn(r, y);
    return act(r, y, actk);
}

/* mostly relu6 (the mobile nets'), sometimes relu or none: near misses */
static int mobile_act(struct rg_gen *r)
{
    return rg_one_in(r, 5) ? rg_pick(r, 0, 1) : 2;
}

static int stride_for(struct rg_gen *r)
{
    return r->h >= 3 && r->w >= 3 && rg_one_in(r, 3) ? 2 : 1;
}

/* ---- the motifs ----------------------------------------------------------------- */

/* ResNet's and DenseNet's stem: k x k conv, bn, relu, 3x3/2 max pool. */
static void stem(struct rg_gen *r)
{
    const int k = rg_one_in(r, 2) ? 7 : 3, s = rg_pick(r, 1, 2), oc = r->unit * rg_pick(r, 1, 4) + rg_one_in(r, 4);
    if (out_size(r->h, k, s, k / 2, 1) < 2 || out_size(r->w, k, s, k / 2, 1) < 2)
        return;
    rg_note(r, "stem(%d,k%d/%d) ", oc, k, s);
    int y = conv_bn_act(r, r->cur, oc, k, s, k / 2, 1, rg_one_in(r, 6) ? 2 : 1);
    struct dlas_pool_attr pa = dlas_pool(3, 2, 1);
    pa.ceil_mode = rg_one_in(r, 4);
    y = dlas_graph_maxpool(r->g, fresh(r), y, &pa);
    if (rg_one_in(r, 8))
        y = act(r, y, 1);
    take(r, y);
}

/* MobileNet's blocks: [1x1 (or 3x3) expansion ->] depthwise 3x3 -> 1x1
 * projection [+ the input]. */
static void mobile(struct rg_gen *r)
{
    const int in = r->cur, c = r->c, s = stride_for(r);
    const int t = (int[]){1, 1, 2, 3, 6, 6}[rg_pick(r, 0, 5)];
    const int ek = t > 1 && rg_one_in(r, 6) ? 3 : 1, es = ek == 3 && s == 1 ? rg_pick(r, 1, 2) : 1;
    const int hid = t * c > 25 * r->unit ? 25 * r->unit : t * c;
    const int out_c =
        rg_one_in(r, 2) ? c : r->unit * rg_pick(r, 1, 6) + (rg_one_in(r, 4) ? rg_pick(r, 1, r->unit - 1) : 0);
    rg_note(r, "mobile(t%d,k%d/%d,dw/%d,%d) ", t, ek, es, s, out_c);
    int y = in;
    if (t > 1)
        y = conv_bn_act(r, y, hid, ek, es, ek / 2, 1, mobile_act(r));
    y = conv_bn_act(r, y, t > 1 ? hid : c, 3, s, 1, t > 1 ? hid : c, mobile_act(r));
    y = conv_bn_act(r, y, out_c, 1, 1, 0, 1, rg_one_in(r, 6) ? rg_pick(r, 1, 2) : 0);
    const int same = s == 1 && es == 1 && out_c == c;
    if (same && !rg_one_in(r, 4)) {
        y = dlas_graph_add(r->g, fresh(r), y, in);
        if (rg_one_in(r, 5))
            y = act(r, y, rg_pick(r, 1, 2));
    }
    take(r, y);
}

/* ResNet's basic block (or its bottleneck), with an identity or a 1x1
 * projection shortcut. */
static void residual(struct rg_gen *r)
{
    const int in = r->cur, c = r->c, s = stride_for(r);
    const int out_c = s == 2 || rg_one_in(r, 3) ? r->unit * rg_pick(r, 1, 6) + rg_one_in(r, 5) : c;
    const int bottleneck = rg_one_in(r, 3);
    rg_note(r, "%s(/%d,%d) ", bottleneck ? "bottleneck" : "basic", s, out_c);
    int y;
    if (bottleneck) {
        const int mid = out_c / 4 > 0 ? out_c / 4 : 1;
        y = conv_bn_act(r, in, mid, 1, 1, 0, 1, 1);
        y = conv_bn_act(r, y, mid, 3, s, 1, 1, 1);
        y = conv_bn_act(r, y, out_c, 1, 1, 0, 1, 0);
    } else {
        y = conv_bn_act(r, in, out_c, 3, s, 1, 1, 1);
        y = conv_bn_act(r, y, out_c, 3, 1, 1, 1, 0);
    }
    int sc = in;
    if (s != 1 || out_c != c)
        sc = conv_bn_act(r, in, out_c, 1, s, 0, 1, 0);
    y = dlas_graph_add(r->g, fresh(r), y, sc);
    take(r, act(r, y, rg_one_in(r, 6) ? 0 : 1));
}

/* DenseNet's block: each layer (bn, relu, 1x1, bn, relu, 3x3) reads the
 * concat of every feature map before it; the block's output is the concat
 * of them all. */
static void dense(struct rg_gen *r)
{
    const int layers = rg_pick(r, 1, 3), growth = rg_pick(r, 2, r->unit + 4);
    int feats[4] = {r->cur};
    rg_note(r, "dense(%d,%d) ", layers, growth);
    for (int l = 0; l < layers; l++) {
        int x = l == 0 ? feats[0] : dlas_graph_concat(r->g, fresh(r), l + 1, feats);
        x = act(r, bn(r, x), 1);
        x = conv_bn_act(r, x, 4 * growth, 1, 1, 0, 1, 0);
        x = act(r, bn(r, x), 1);
        feats[l + 1] = conv(r, x, growth, 3, 1, 1, 1, 1, 0);
    }
    take(r, dlas_graph_concat(r->g, fresh(r), layers + 1, feats));
}

/* DenseNet's transition: bn, relu, 1x1 conv, 2x2 average pool. */
static void transition(struct rg_gen *r)
{
    if (r->h < 2 || r->w < 2)
        return;
    const int out_c = r->c / 2 > 0 ? r->c / 2 : 1;
    rg_note(r, "transition(%d) ", out_c);
    int x = act(r, bn(r, r->cur), 1);
    x = conv(r, x, out_c, 1, 1, 0, 1, 1, rg_one_in(r, 4));
    struct dlas_pool_attr pa = dlas_pool(2, 2, 0);
    take(r, dlas_graph_avgpool(r->g, fresh(r), x, &pa));
}

/* Any conv: kernel 1-5, stride, padding, dilation, groups. */
static void any_conv(struct rg_gen *r)
{
    const int k = (int[]){1, 1, 3, 3, 5}[rg_pick(r, 0, 4)], s = stride_for(r);
    const int dil = k > 1 && rg_one_in(r, 5) ? 2 : 1, p = rg_pick(r, 0, k / 2) * dil;
    if (out_size(r->h, k, s, p, dil) < 1 || out_size(r->w, k, s, p, dil) < 1)
        return;
    int groups = 1, out_c = r->unit * rg_pick(r, 1, 5) + (rg_one_in(r, 3) ? rg_pick(r, 1, r->unit - 1) : 0);
    if (rg_one_in(r, 3)) { /* depthwise, or groups of a common divisor */
        groups = rg_one_in(r, 2) ? r->c : (r->c % 2 == 0 ? 2 : 1);
        out_c = groups * rg_pick(r, 1, 3);
    }
    rg_note(r, "conv(%d,k%d/%d,p%d,d%d,g%d) ", out_c, k, s, p, dil, groups);
    take(r, conv_bn_act(r, r->cur, out_c, k, s, p, groups, rg_pick(r, 0, 2)));
}

/* A max or average pool of any valid window. */
static void any_pool(struct rg_gen *r)
{
    const int k = rg_pick(r, 2, 3), s = rg_pick(r, 1, 2), p = rg_pick(r, 0, k / 2);
    if (out_size(r->h, k, s, p, 1) < 1 || out_size(r->w, k, s, p, 1) < 1)
        return;
    struct dlas_pool_attr pa = dlas_pool(k, s, p);
    pa.ceil_mode = rg_one_in(r, 3);
    pa.count_include_pad = rg_one_in(r, 2);
    const int avg = rg_one_in(r, 2);
    rg_note(r, "%spool(k%d/%d,p%d%s) ", avg ? "avg" : "max", k, s, p, pa.ceil_mode ? ",ceil" : "");
    take(r, avg ? dlas_graph_avgpool(r->g, fresh(r), r->cur, &pa)
                : dlas_graph_maxpool(r->g, fresh(r), r->cur, &pa));
}

/* Two branches from the current node, added: a node read twice. */
static void branches(struct rg_gen *r)
{
    const int in = r->cur, c = r->c;
    rg_note(r, "branches ");
    int a = conv_bn_act(r, in, c, 3, 1, 1, rg_one_in(r, 2) ? c : 1, rg_pick(r, 0, 2));
    int b = rg_one_in(r, 2) ? conv_bn_act(r, in, c, 1, 1, 0, 1, 0) : act(r, in, 1);
    take(r, dlas_graph_add(r->g, fresh(r), a, b));
}

/* How the network ends: MobileNet's head (1x1, bn, relu6, global pool,
 * linear), a global pool and linear, a linear on the flattened map, or the
 * map itself. */
static void ending(struct rg_gen *r)
{
    const int how = rg_pick(r, 0, 3);
    int y = r->cur;
    if (how == 0) {
        rg_note(r, "head");
        y = conv_bn_act(r, y, r->unit * rg_pick(r, 2, 20), 1, 1, 0, 1, mobile_act(r));
    }
    if (how <= 1) {
        rg_note(r, "%sgap-linear", how ? "" : ",");
        y = dlas_graph_global_avgpool(r->g, fresh(r), y);
        y = dlas_graph_flatten(r->g, fresh(r), y);
        y = dlas_graph_linear(r->g, fresh(r), y, rg_pick(r, 1, 17), 1);
    } else if (how == 2 && (int64_t)r->c * r->h * r->w <= 4096) {
        rg_note(r, "linear");
        y = dlas_graph_flatten(r->g, fresh(r), y);
        y = dlas_graph_linear(r->g, fresh(r), y, rg_pick(r, 1, 11), !rg_one_in(r, 3));
    }
    if (y != r->cur)
        take(r, y);
}

/* Weights at the model's own scale; batchnorms away from identity, convs'
 * biases nonzero. */
void rg_randomize(struct dlas_graph *g, uint64_t seed)
{
    struct dlas_rng rng;
    dlas_rng_seed(&rng, seed);
    ck_assert_int_eq(dlas_graph_init_weights(g, &rng), 0);
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *nd = dlas_graph_node(g, i);
        if (nd->op == DLAS_OP_BATCHNORM)
            for (int64_t k = 0; k < nd->out_shape[0]; k++) {
                dlas_f32(&nd->weight)[k] = 0.5f + dlas_rng_uniform(&rng);
                dlas_f32(&nd->bias)[k] = dlas_rng_normal(&rng) * 0.3f;
                dlas_f32(&nd->running_mean)[k] = dlas_rng_normal(&rng) * 0.2f;
                dlas_f32(&nd->running_var)[k] = 0.5f + dlas_rng_uniform(&rng);
            }
        else if (nd->op == DLAS_OP_CONV2D && nd->bias.data)
            for (int64_t k = 0; k < nd->out_shape[0]; k++)
                dlas_f32(&nd->bias)[k] = dlas_rng_normal(&rng) * 0.2f;
    }
}

struct dlas_graph *rg_graph(uint64_t seed, int small, struct rg_gen *r)
{
    memset(r, 0, sizeof *r);
    r->s = seed * 0x2545f4914f6cdd1dull + 1;
    r->g = dlas_graph_new();
    r->unit = small ? 2 : 8;
    const int side = small ? 10 : 48;
    const int c = (int[]){1, 3, 3, 3, 4, 5, 8, 16, 24}[rg_pick(r, 0, small ? 5 : 8)];
    const int h = rg_one_in(r, 8) ? rg_pick(r, 1, 4) : rg_pick(r, 5, side);
    const int w = rg_one_in(r, 3) ? h : (rg_one_in(r, 8) ? rg_pick(r, 1, 4) : rg_pick(r, 5, side));
    rg_note(r, "in %dx%dx%d: ", c, h, w);
    take(r, dlas_graph_input(r->g, "in", c, h, w));
    if (rg_one_in(r, 2))
        stem(r);
    static void (*const motifs[])(struct rg_gen *) = {mobile, mobile, mobile,   residual,
                                                   residual, dense, transition, any_conv,
                                                   any_conv, any_pool, branches};
    const int n = rg_pick(r, 2, small ? 4 : 6);
    for (int i = 0; i < n; i++)
        motifs[rg_pick(r, 0, (int)(sizeof motifs / sizeof motifs[0]) - 1)](r);
    ending(r);
    ck_assert_msg(dlas_graph_status(r->g) == 0 && dlas_graph_validate(r->g) == 0, "%s: %s",
                  r->log, dlas_last_error());
    rg_randomize(r->g, seed);
    return r->g;
}

/* The largest change of g's reference output on x when every weight, bias
 * and batchnorm parameter and every input moves by one float rounding
 * (2^-24 of itself, either way, at random). */
double rg_max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - (b ? b[i] : 0.0)));
    return d;
}

double rg_sensitivity(const struct dlas_graph *g, const struct dlas_tensor *x, uint64_t seed)
{
    struct rg_gen r = {.s = seed * 0x9e3779b97f4a7c15ull + 3};
    struct dlas_graph *a = dlas_graph_clone(g);
    ck_assert(a != NULL);
    for (int i = 0; i < dlas_graph_n_nodes(a); i++) {
        struct dlas_node *n = dlas_graph_node(a, i);
        struct dlas_tensor *t[] = {&n->weight, &n->bias, &n->running_mean, &n->running_var};
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
            for (int64_t j = 0; t[k]->data && j < dlas_tensor_numel(t[k]); j++)
                dlas_f32(t[k])[j] *= 1.0f + (float)(rg_pick(&r, 0, 1) * 2 - 1) * 0x1p-24f;
    }
    struct dlas_tensor px = {0}, out = {0}, ref = {0};
    ck_assert_int_eq(dlas_tensor_alloc(&px, DLAS_F32, x->ndim, x->dims), 0);
    for (int64_t i = 0; i < dlas_tensor_numel(x); i++)
        dlas_f32(&px)[i] = dlas_f32(x)[i] * (1.0f + (float)(rg_pick(&r, 0, 1) * 2 - 1) * 0x1p-24f);
    ck_assert_int_eq(dlas_graph_forward_ref(a, &px, &out), 0);
    ck_assert_int_eq(dlas_graph_forward_ref(g, x, &ref), 0);
    const double d = rg_max_diff(dlas_f32(&out), dlas_f32(&ref), dlas_tensor_numel(&out));
    dlas_tensor_free(&px);
    dlas_tensor_free(&out);
    dlas_tensor_free(&ref);
    dlas_graph_free(a);
    return d;
}

static long env_long(const char *name, long dflt)
{
    const char *v = name ? getenv(name) : NULL;
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

long rg_sweep(void (*one)(uint64_t), const char *seed_var, const char *count_var, long dflt)
{
    const long only = env_long(seed_var, -1);
    if (only >= 0) {
        one((uint64_t)only);
        return 1;
    }
    const long first = env_long("DLAS_RANDOM_FIRST", 0), n = env_long(count_var, dflt);
    for (long k = first; k < first + n; k++)
        one((uint64_t)k);
    return n > 0 ? n : 0;
}
