/* Finding the residual blocks of a graph and substituting cheap blocks for
 * their trunks (Moonshine, BlockSwap): one replace-block rewrite per
 * convolution for the grouped types, one for the whole trunk for the
 * bottlenecks. Everything goes through the public graph and surgery API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/blocks.h>
#include <dlas/build.h>
#include <dlas/status.h>
#include <dlas/surgery.h>

#include "graph_impl.h"

static int passes_through(enum dlas_op op)
{
    return op == DLAS_OP_BATCHNORM || op == DLAS_OP_RELU || op == DLAS_OP_RELU6 ||
           op == DLAS_OP_DROPOUT;
}

/* Walk back from x along a chain of convolutions and pass-through ops whose
 * nodes feed only the chain (x itself may feed anything). Collects up to
 * `max` convolutions, last first, and returns how many (max + 1 if more);
 * *entry is the first node the chain does not include. */
static int walk_trunk(const struct dlas_graph *g, int x, int *convs, int max, int *entry)
{
    int n = 0;
    for (int first = 1; x >= 0; first = 0) {
        const struct dlas_node *nd = dlas_graph_node(g, x);
        if (!first && dlas_graph_n_consumers(g, x) != 1)
            break;
        if (nd->op == DLAS_OP_CONV2D) {
            if (n == max)
                return max + 1;
            convs[n++] = x;
        } else if (!passes_through(nd->op)) {
            break;
        }
        if (nd->n_inputs != 1) {
            x = -1;
            break;
        }
        x = nd->inputs[0];
    }
    *entry = x;
    return n;
}

/* A k x k convolution a cheap block can stand in for. */
static int plain_conv(const struct dlas_node *c)
{
    const struct dlas_conv_attr *a = &c->attr.conv;
    return c->op == DLAS_OP_CONV2D && a->kh == a->kw && a->kh > 1 && a->groups == 1 &&
           a->stride_h == a->stride_w && a->pad_h == a->kh / 2 && a->pad_w == a->kw / 2 &&
           a->dil_h == 1 && a->dil_w == 1;
}

/* The other input of the sum: the trunk's entry itself, or one 1x1
 * projection of it (with its batchnorm). */
static int shortcut_ok(const struct dlas_graph *g, int x, int trunk_entry)
{
    int convs[2], entry;
    if (x == trunk_entry)
        return 1;
    if (walk_trunk(g, x, convs, 1, &entry) != 1 || entry != trunk_entry)
        return 0;
    const struct dlas_node *c = dlas_graph_node(g, convs[0]);
    return c->attr.conv.kh == 1 && c->attr.conv.kw == 1;
}

static void block_prefix(const char *add, char *out)
{
    snprintf(out, DLAS_NAME_MAX, "%s", add);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

/* Fill b if node `id` is the sum of a residual block. */
static int as_block(const struct dlas_graph *g, int id, struct dlas_residual_block *b)
{
    const struct dlas_node *a = dlas_graph_node(g, id);
    if (a->op != DLAS_OP_ADD || a->n_inputs != 2 || a->out_ndim != 3)
        return 0;
    for (int side = 0; side < 2; side++) {
        int convs[2], entry;
        if (walk_trunk(g, a->inputs[side], convs, 2, &entry) != 2 || entry < 0 ||
            !shortcut_ok(g, a->inputs[!side], entry))
            continue;
        const struct dlas_node *last = dlas_graph_node(g, convs[0]);
        const struct dlas_node *first = dlas_graph_node(g, convs[1]);
        if (!plain_conv(first) || !plain_conv(last) || first->attr.conv.kh != last->attr.conv.kh)
            continue;
        const struct dlas_node *in = dlas_graph_node(g, first->inputs[0]);
        if (in->out_ndim != 3)
            continue;
        memset(b, 0, sizeof *b);
        snprintf(b->add, sizeof b->add, "%s", a->name);
        block_prefix(a->name, b->prefix);
        snprintf(b->conv[0], sizeof b->conv[0], "%s", first->name);
        snprintf(b->conv[1], sizeof b->conv[1], "%s", last->name);
        b->trunk_input = side;
        b->in_c = (int)in->out_shape[0];
        b->out_c = (int)last->out_shape[0];
        b->k = first->attr.conv.kh;
        b->stride = first->attr.conv.stride_h * last->attr.conv.stride_h;
        b->out_h = a->out_shape[1];
        b->out_w = a->out_shape[2];
        for (int x = convs[0]; x >= convs[1]; x = dlas_graph_node(g, x)->inputs[0])
            b->trunk_params += dlas_node_params(g, x);
        return 1;
    }
    return 0;
}

int dlas_graph_residual_blocks(const struct dlas_graph *g, struct dlas_residual_block **blocks,
                               int *n_blocks)
{
    if (!g || !blocks || !n_blocks)
        return dlas_error(DLAS_ERR_INVALID, "residual blocks: NULL argument");
    *blocks = NULL;
    *n_blocks = 0;
    int nn = dlas_graph_n_nodes(g), n = 0;
    struct dlas_residual_block *v = calloc((size_t)(nn > 0 ? nn : 1), sizeof *v);
    if (!v)
        return dlas_error(DLAS_ERR_NOMEM, "residual blocks: out of memory");
    for (int id = 0; id < nn; id++)
        n += as_block(g, id, &v[n]);
    for (int i = 0; i < n; i++)
        v[i].stage_end = i + 1 == n || v[i + 1].out_h != v[i].out_h ||
                         v[i + 1].out_w != v[i].out_w || v[i + 1].out_c != v[i].out_c;
    *blocks = v;
    *n_blocks = n;
    return DLAS_OK;
}

/* ---- building the substitutes ------------------------------------------ */

struct sub {
    const struct dlas_block_type *t;
    const char *pre; /* module name prefix */
    int in_c, out_c, k, stride;
    struct dlas_rng *rng;
};

static int finish(struct dlas_graph *g, int out, struct dlas_rng *rng)
{
    if (out >= 0 && rng) {
        int rc = dlas_graph_init_weights(g, rng);
        if (rc)
            return -rc; /* builders return a negative status */
    }
    return out;
}

/* Moonshine's DConv: grouped k x k on the input channels (with the stride),
 * BN, ReLU, pointwise to the output channels. */
static int build_grouped(void *ctx, struct dlas_graph *g, int x)
{
    const struct sub *s = ctx;
    char b[DLAS_NAME_MAX];
    struct dlas_conv_attr dw = dlas_conv(s->in_c, s->k, s->stride, s->k / 2);
    struct dlas_conv_attr pw = dlas_conv(s->out_c, 1, 1, 0);
    dw.groups = dlas_block_type_groups(s->t, s->in_c);
    x = dlas_graph_conv2d(g, dlas_name(b, "%s.convdw", s->pre), x, &dw);
    x = dlas_graph_batchnorm(g, dlas_name(b, "%s.bn", s->pre), x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, dlas_name(b, "%s.relu", s->pre), x);
    x = dlas_graph_conv2d(g, dlas_name(b, "%s.conv1x1", s->pre), x, &pw);
    return finish(g, x, s->rng);
}

/* Moonshine's ConvBottleneck / GConvBottleneck. */
static int build_bottleneck(void *ctx, struct dlas_graph *g, int x)
{
    const struct sub *s = ctx;
    char b[DLAS_NAME_MAX];
    const int m = s->out_c / s->t->bottleneck;
    struct dlas_conv_attr down = dlas_conv(m, 1, 1, 0), mid = dlas_conv(m, s->k, s->stride, s->k / 2);
    struct dlas_conv_attr up = dlas_conv(s->out_c, 1, 1, 0);
    mid.groups = dlas_block_type_groups(s->t, m);
    x = dlas_graph_conv2d(g, dlas_name(b, "%s.conv1x1_down", s->pre), x, &down);
    x = dlas_graph_batchnorm(g, dlas_name(b, "%s.bn1", s->pre), x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, dlas_name(b, "%s.relu1", s->pre), x);
    x = dlas_graph_conv2d(g, dlas_name(b, "%s.conv", s->pre), x, &mid);
    x = dlas_graph_batchnorm(g, dlas_name(b, "%s.bn2", s->pre), x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, dlas_name(b, "%s.relu2", s->pre), x);
    x = dlas_graph_conv2d(g, dlas_name(b, "%s.conv1x1_up", s->pre), x, &up);
    return finish(g, x, s->rng);
}

/* "X.conv" -> "X", anything else stays: the conv module's name. */
static void module_name(const char *conv, char *out)
{
    snprintf(out, DLAS_NAME_MAX, "%s", conv);
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".conv"))
        out[n - 5] = '\0';
}

static int find_conv(const struct dlas_graph *g, const char *name, const char *what)
{
    int id = dlas_graph_find(g, name);
    const struct dlas_node *c = id >= 0 ? dlas_graph_node(g, id) : NULL;
    if (!c || c->op != DLAS_OP_CONV2D || c->n_inputs != 1)
        return dlas_error(DLAS_ERR_INVALID, "substitute block: the %s convolution '%s' is not in "
                          "the graph", what, name);
    return id;
}

int dlas_graph_substitute_block(struct dlas_graph *g, const struct dlas_residual_block *b,
                                const struct dlas_block_type *t, struct dlas_rng *rng)
{
    if (!g || !b || !t)
        return dlas_error(DLAS_ERR_INVALID, "substitute block: NULL argument");
    char tn[32];
    int rc = dlas_block_type_check(t, b->in_c, b->out_c);
    if (rc)
        return dlas_error_context("block '%s'", b->prefix);
    if (t->kind == DLAS_BLOCK_STANDARD)
        return DLAS_OK;
    int f = find_conv(g, b->conv[0], "first"), l = f >= 0 ? find_conv(g, b->conv[1], "last") : f;
    if (f < 0 || l < 0)
        return f < 0 ? f : l;
    char pre[2][DLAS_NAME_MAX], from[2][DLAS_NAME_MAX];
    snprintf(from[0], DLAS_NAME_MAX, "%s", dlas_graph_node(g, dlas_graph_node(g, f)->inputs[0])->name);
    snprintf(from[1], DLAS_NAME_MAX, "%s", dlas_graph_node(g, dlas_graph_node(g, l)->inputs[0])->name);

    /* Rewrite a clone and swap it in only when every step succeeded, so a
     * failure leaves g as it was. */
    struct dlas_graph *c = dlas_graph_clone(g);
    if (!c)
        return dlas_error(DLAS_ERR_NOMEM, "substitute block: out of memory");
    if (t->kind == DLAS_BLOCK_GROUPED) {
        const struct dlas_node *fc = dlas_graph_node(g, f), *lc = dlas_graph_node(g, l);
        struct sub s[2] = {
            {t, pre[0], b->in_c, (int)fc->out_shape[0], b->k, fc->attr.conv.stride_h, rng},
            {t, pre[1], (int)dlas_graph_node(g, lc->inputs[0])->out_shape[0], b->out_c, b->k,
             lc->attr.conv.stride_h, rng}};
        module_name(b->conv[0], pre[0]);
        module_name(b->conv[1], pre[1]);
        if (s[1].in_c != s[0].out_c || !dlas_block_type_groups(t, s[1].in_c))
            rc = dlas_error(DLAS_ERR_INVALID, "block '%s': its inner width %d does not fit %s",
                            b->prefix, s[1].in_c, dlas_block_type_name(t, tn, sizeof tn));
        for (int i = 0; i < 2 && !rc; i++)
            rc = dlas_graph_replace_block(c, from[i], b->conv[i], build_grouped, &s[i]);
    } else {
        struct sub s = {t, pre[0], b->in_c, b->out_c, b->k, b->stride, rng};
        snprintf(pre[0], DLAS_NAME_MAX, "%.*s.conv1", DLAS_NAME_MAX - 8, b->prefix);
        rc = dlas_graph_replace_block(c, from[0], b->conv[1], build_bottleneck, &s);
    }
    if (rc) {
        dlas_graph_free(c);
        return dlas_error_context("substituting %s for block '%s'",
                                  dlas_block_type_name(t, tn, sizeof tn), b->prefix);
    }
    struct dlas_graph tmp = *g; /* the rewritten clone takes g's place */
    *g = *c;
    *c = tmp;
    dlas_graph_free(c);
    return DLAS_OK;
}

int dlas_residual_block_probe(const struct dlas_graph *g, const struct dlas_residual_block *b)
{
    int id = g && b ? dlas_graph_find(g, b->add) : -1;
    const struct dlas_node *a = id >= 0 ? dlas_graph_node(g, id) : NULL;
    if (!a || a->op != DLAS_OP_ADD || a->n_inputs != 2)
        return -1;
    return a->inputs[b->trunk_input];
}
