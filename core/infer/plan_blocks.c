/* Mobile blocks fused in the plan: [1x1 expansion ->] 3x3 depthwise -> 1x1
 * projection [+ residual add], each conv with its folded batchnorm and fused
 * activation, run as one kernel (core/kernels/mbconv.h) so the expanded
 * activation stays in cache and no layer packs or scatters on its own. A
 * network's first layer, a dense 3x3 conv of a few channels (MobileNet's
 * stem), takes the expansion's place before the first depthwise: its
 * 112x112x32 output then never goes to memory either.
 *
 * A chain qualifies when every link is the sole consumer of the one before
 * (after batchnorm folding and activation fusion), every conv is fp32 and
 * unquantised, and the shapes are those of MobileNet's blocks; the add
 * qualifies when its other input is the block's input. The chain's first
 * conv (the head) then computes everything up to the add (or the
 * projection) into its own buffer; the other nodes become fused into it.
 * A network's head (1x1 conv > global pool > linear, core/kernels/head.h)
 * and its stem (conv > max pool, core/kernels/stem.h) are fused the same
 * way, each by its own kernel (a stem reads and writes NCHW). */
#include <stdlib.h>
#include <string.h>

#include <dlas/quant.h>

#include "plan_impl.h"
#include "../base/util.h"
#include "../kernels/head.h"
#include "../kernels/mbconv.h"
#include "../kernels/stem.h"

/* A fused unit: a mobile block (mb), a network's head (hd: 1x1 conv ->
 * global average pool -> linear, core/kernels/head.h) or its stem (st:
 * conv -> max pool, core/kernels/stem.h) */
struct plan_block {
    int head, expand, dw, pw, add, last;
    int gap, lin; /* the head's pool and linear layer */
    int pool;     /* the stem's max pool */
    int from_block, to_block; /* blocked input from / output to another block */
    struct mb_block *mb;
    struct hd_kernel *hd;
    struct st_kernel *st;
    int64_t out_numel; /* per sample */
};

static int64_t numel(const struct dlas_node *n)
{
    int64_t e = 1;
    for (int i = 0; i < n->out_ndim; i++)
        e *= n->out_shape[i];
    return e;
}

static int act_of(enum plan_post p)
{
    return p == PLAN_POST_RELU ? DLAS_ACT_RELU : p == PLAN_POST_RELU6 ? DLAS_ACT_RELU6
                                                                      : DLAS_ACT_NONE;
}

/* A conv the block kernel can take: fp32 weights, not quantised, not
 * already in a block, running itself on its own input (not pooled first). */
static int plain_conv(const struct dlas_plan *p, int id)
{
    if (id < 0 || p->root[id] != id || p->block_of[id] != -1 || p->bind[id].pool_first >= 0)
        return 0;
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    const struct binding *b = &p->bind[id];
    return n->op == DLAS_OP_CONV2D && !b->int8 && !dlas_node_is_quantised(n) &&
           n->weight.dtype == DLAS_F32 && n->weight.data &&
           (!n->attr.conv.bias || b->fw || (n->bias.dtype == DLAS_F32 && n->bias.data));
}

static int is_pointwise(const struct dlas_plan *p, int id)
{
    const struct dlas_conv_attr *a = &dlas_graph_node(p->g, id)->attr.conv;
    return a->kh == 1 && a->kw == 1 && a->stride_h == 1 && a->stride_w == 1 && a->pad_h == 0 &&
           a->pad_w == 0 && a->groups == 1;
}

/* The geometry the fused kernel's 3x3 steps take: padding 1, no dilation,
 * the same stride 1 or 2 both ways. */
static int is_3x3_same(const struct dlas_conv_attr *a)
{
    return a->kh == 3 && a->kw == 3 && a->stride_h == a->stride_w &&
           (a->stride_h == 1 || a->stride_h == 2) && a->pad_h == 1 && a->pad_w == 1 &&
           a->dil_h == 1 && a->dil_w == 1;
}

/* A dense 3x3 conv (padding 1, stride 1 or 2) of at most 16 input
 * channels: a network's first layer, which the kernel can run as the
 * block's expansion (MobileNet's stem before its first depthwise). */
static int is_small_dense(const struct dlas_plan *p, int id)
{
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    const struct dlas_node *in = dlas_graph_node(p->g, n->inputs[0]);
    const struct dlas_conv_attr *a = &n->attr.conv;
    return is_3x3_same(a) && a->groups == 1 && in->out_ndim == 3 && in->out_shape[0] <= 16;
}

static int is_depthwise(const struct dlas_plan *p, int id)
{
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    const struct dlas_node *in = dlas_graph_node(p->g, n->inputs[0]);
    const struct dlas_conv_attr *a = &n->attr.conv;
    return is_3x3_same(a) && a->groups == a->out_channels && in->out_shape[0] == a->groups;
}

static const float *weights_of(const struct dlas_plan *p, int id)
{
    return p->bind[id].fw ? p->bind[id].fw : dlas_f32(&dlas_graph_node(p->g, id)->weight);
}

static const float *bias_of(const struct dlas_plan *p, int id)
{
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    if (p->bind[id].fw)
        return p->bind[id].fb;
    return n->attr.conv.bias ? dlas_f32(&n->bias) : NULL;
}

/* The chain starting at conv id, or 0. */
static int find_chain(const struct dlas_plan *p, int id, struct plan_block *bk)
{
    memset(bk, 0, sizeof *bk);
    bk->head = id;
    bk->expand = -1;
    bk->add = -1;
    int dw = id;
    if (is_pointwise(p, id) || is_small_dense(p, id)) {
        bk->expand = id;
        dw = plan_sole_consumer(p->g, plan_tail(p, id), 1);
        if (!plain_conv(p, dw))
            return 0;
    }
    if (!is_depthwise(p, dw))
        return 0;
    int pw = plan_sole_consumer(p->g, plan_tail(p, dw), 1);
    if (!plain_conv(p, pw) || !is_pointwise(p, pw))
        return 0;
    bk->dw = dw;
    bk->pw = pw;
    bk->last = plan_tail(p, pw);
    /* a residual add of the block's input */
    const struct dlas_node *head = dlas_graph_node(p->g, id);
    int add = plan_sole_consumer(p->g, bk->last, 2);
    if (add >= 0 && p->root[add] == add && dlas_graph_node(p->g, add)->op == DLAS_OP_ADD) {
        const struct dlas_node *a = dlas_graph_node(p->g, add);
        int other = a->inputs[0] == bk->last ? a->inputs[1] : a->inputs[0];
        if (a->inputs[0] != a->inputs[1] && p->root[other] == p->root[head->inputs[0]] &&
            numel(a) == numel(dlas_graph_node(p->g, head->inputs[0]))) {
            bk->add = add;
            bk->last = plan_tail(p, add);
        }
    }
    return 1;
}

/* Whether every node whose buffer is node id's (its fused tail, views of
 * it) has one reader at most: fusing them hides nothing anyone else reads. */
static int sole_readers(const struct dlas_plan *p, int id)
{
    for (int j = id; j < p->n; j++)
        if (p->root[j] == id && dlas_graph_n_consumers(p->g, j) > 1)
            return 0;
    return 1;
}

/* A network's head starting at conv id: a 1x1 conv (its activation fused)
 * whose sole reader is a global average pool, whose sole reader (through
 * flatten and dropout) is an fp32 linear layer with no activation of its
 * own. 0 if not. */
static int find_head(const struct dlas_plan *p, int id, struct plan_block *bk)
{
    memset(bk, 0, sizeof *bk);
    bk->head = id;
    bk->expand = bk->dw = bk->pw = bk->add = -1;
    const struct dlas_node *c = dlas_graph_node(p->g, id);
    const struct dlas_node *x = dlas_graph_node(p->g, c->inputs[0]);
    if (!is_pointwise(p, id) || x->out_ndim != 3 || !sole_readers(p, id))
        return 0;
    int gap = plan_sole_consumer(p->g, plan_tail(p, id), 1);
    if (gap < 0 || p->root[gap] != gap ||
        dlas_graph_node(p->g, gap)->op != DLAS_OP_GLOBAL_AVGPOOL || p->post[gap] != PLAN_POST_NONE ||
        !sole_readers(p, gap))
        return 0;
    int lin = plan_sole_consumer(p->g, plan_tail(p, gap), 1);
    if (lin < 0 || p->root[lin] != lin || p->post[lin] != PLAN_POST_NONE ||
        plan_tail(p, lin) != lin)
        return 0;
    const struct dlas_node *l = dlas_graph_node(p->g, lin);
    if (l->op != DLAS_OP_LINEAR || l->weight.dtype != DLAS_F32 || !l->weight.data ||
        dlas_node_is_quantised(l) ||
        (l->attr.linear.bias && (l->bias.dtype != DLAS_F32 || !l->bias.data)) ||
        dlas_tensor_numel(&l->weight) != l->out_shape[0] * c->attr.conv.out_channels)
        return 0;
    bk->gap = gap;
    bk->lin = lin;
    bk->last = lin;
    return 1;
}

static int prepare_head(struct dlas_plan *p, struct plan_block *bk, char *why, size_t len)
{
    const struct dlas_node *c = dlas_graph_node(p->g, bk->head);
    const struct dlas_node *x = dlas_graph_node(p->g, c->inputs[0]);
    const struct dlas_node *l = dlas_graph_node(p->g, bk->lin);
    struct hd_desc d = {x->out_shape[0], x->out_shape[1] * x->out_shape[2],
                        c->attr.conv.out_channels, l->out_shape[0], act_of(p->post[bk->head])};
    struct hd_weights w = {weights_of(p, bk->head), bias_of(p, bk->head), dlas_f32(&l->weight),
                           l->attr.linear.bias ? dlas_f32(&l->bias) : NULL};
    bk->hd = hd_prepare(&d, &w, why, len);
    if (!bk->hd)
        return -1;
    bk->out_numel = d.out_c;
    return 0;
}

/* A network's stem starting at conv id: a dense conv of a few input
 * channels (one group, no dilation; its batchnorm and activation fused)
 * whose sole reader is a max pool with nothing fused after it. 0 if not. */
static int find_stem(const struct dlas_plan *p, int id, struct plan_block *bk)
{
    memset(bk, 0, sizeof *bk);
    bk->head = id;
    bk->expand = bk->dw = bk->pw = bk->add = -1;
    const struct dlas_node *c = dlas_graph_node(p->g, id);
    const struct dlas_node *x = dlas_graph_node(p->g, c->inputs[0]);
    const struct dlas_conv_attr *a = &c->attr.conv;
    if (x->out_ndim != 3 || x->out_shape[0] > ST_MAX_IN_C || a->groups != 1 || a->dil_h != 1 ||
        a->dil_w != 1 || !sole_readers(p, id))
        return 0;
    int pool = plan_sole_consumer(p->g, plan_tail(p, id), 1);
    if (pool < 0 || p->root[pool] != pool || dlas_graph_node(p->g, pool)->op != DLAS_OP_MAXPOOL ||
        p->post[pool] != PLAN_POST_NONE || plan_tail(p, pool) != pool)
        return 0;
    bk->pool = pool;
    bk->last = pool;
    return 1;
}

static int prepare_stem(struct dlas_plan *p, struct plan_block *bk, char *why, size_t len)
{
    const struct dlas_node *c = dlas_graph_node(p->g, bk->head);
    const struct dlas_node *x = dlas_graph_node(p->g, c->inputs[0]);
    const struct dlas_node *m = dlas_graph_node(p->g, bk->pool);
    const struct dlas_conv_attr *a = &c->attr.conv;
    const struct dlas_pool_attr *pa = &m->attr.pool;
    struct st_desc d = {x->out_shape[0], x->out_shape[1], x->out_shape[2],
                        a->out_channels, a->kh, a->kw, a->stride_h, a->stride_w, a->pad_h,
                        a->pad_w, act_of(p->post[bk->head]), pa->kh, pa->kw, pa->stride_h,
                        pa->stride_w, pa->pad_h, pa->pad_w, m->out_shape[1], m->out_shape[2]};
    if (m->out_shape[0] != a->out_channels) {
        snprintf(why, len, "pool channels differ from the conv's");
        return -1;
    }
    bk->st = st_prepare(&d, weights_of(p, bk->head), bias_of(p, bk->head), why, len);
    if (!bk->st)
        return -1;
    bk->out_numel = numel(m);
    return 0;
}

static int prepare_block(struct dlas_plan *p, struct plan_block *bk, int schedule, int threads,
                         char *why, size_t len)
{
    const struct dlas_node *head = dlas_graph_node(p->g, bk->head);
    const struct dlas_node *x = dlas_graph_node(p->g, head->inputs[0]);
    const struct dlas_node *dw = dlas_graph_node(p->g, bk->dw);
    const struct dlas_node *pw = dlas_graph_node(p->g, bk->pw);
    struct mb_desc d;
    memset(&d, 0, sizeof d);
    d.in_c = x->out_shape[0];
    d.h = x->out_shape[1];
    d.w = x->out_shape[2];
    d.expand = bk->expand >= 0;
    d.hid_c = dw->attr.conv.out_channels;
    d.stride = dw->attr.conv.stride_h;
    d.out_c = pw->attr.conv.out_channels;
    d.act_e = d.expand ? act_of(p->post[bk->expand]) : DLAS_ACT_NONE;
    d.act_d = act_of(p->post[bk->dw]);
    d.act_p = act_of(p->post[bk->pw]);
    d.residual = bk->add >= 0;
    d.act_r = d.residual ? act_of(p->post[bk->add]) : DLAS_ACT_NONE;
    d.schedule = schedule == 1 ? MB_SCHED_GROUPS : schedule == 2 ? MB_SCHED_ROWS : MB_SCHED_AUTO;
    d.threads = threads;
    if (d.expand) {
        const struct dlas_conv_attr *ea = &dlas_graph_node(p->g, bk->expand)->attr.conv;
        d.expand_k = ea->kh;
        d.expand_stride = ea->stride_h;
    }
    struct mb_weights w;
    memset(&w, 0, sizeof w);
    if (d.expand) {
        w.we = weights_of(p, bk->expand);
        w.be = bias_of(p, bk->expand);
    }
    w.wd = weights_of(p, bk->dw);
    w.bd = bias_of(p, bk->dw);
    w.wp = weights_of(p, bk->pw);
    w.bp = bias_of(p, bk->pw);
    bk->mb = mb_prepare(&d, &w, why, len);
    if (!bk->mb)
        return -1;
    /* the graph's shapes must be the kernel's */
    const struct dlas_node *last = dlas_graph_node(p->g, bk->last);
    bk->out_numel = numel(last);
    if (bk->out_numel != d.out_c * mb_out_h(bk->mb) * mb_out_w(bk->mb)) {
        mb_free(bk->mb);
        bk->mb = NULL;
        snprintf(why, len, "output shape differs from the graph's");
        return -1;
    }
    return 0;
}

/* Every node of the chain (and what was fused into them) now runs in the head. */
static void absorb(struct dlas_plan *p, const struct plan_block *bk, int index)
{
    /* (a mobile block's head is its expansion or its depthwise) */
    int members[6] = {bk->hd || bk->st ? bk->head : bk->expand, bk->dw, bk->pw, bk->add,
                      bk->hd ? bk->gap : bk->st ? bk->pool : -1, bk->hd ? bk->lin : -1};
    for (int m = 0; m < 6; m++) {
        int id = members[m];
        if (id < 0)
            continue;
        if (dlas_graph_node(p->g, id)->op == DLAS_OP_CONV2D)
            p->bind[id].in_block = 1;
        for (int j = id; j < p->n; j++)
            if (j != bk->head && (j == id || p->root[j] == id))
                p->root[j] = bk->head;
    }
    p->block_of[bk->head] = index;
    p->post[bk->head] = PLAN_POST_NONE; /* the kernel applies every activation */
}

/* The block before block k, when it alone reads that block's output (its
 * head, and its add as the residual): the output can stay channel-blocked.
 * -1 otherwise. */
static int feeding_block(const struct dlas_plan *p, const struct plan_block *k)
{
    const struct dlas_node *head = dlas_graph_node(p->g, k->head);
    const int x = head->inputs[0];
    if (x <= 0 || x >= p->n || x == p->n - 1)
        return -1;
    const int r = p->root[x];
    if (r < 0 || r == k->head || p->block_of[r] < 0)
        return -1;
    const int j = p->block_of[r];
    if (p->blocks[j].last != x || !p->blocks[j].mb || !k->mb)
        return -1;
    int readers = 1;
    if (k->add >= 0) {
        const struct dlas_node *a = dlas_graph_node(p->g, k->add);
        if (a->inputs[0] != x && a->inputs[1] != x)
            return -1;
        readers++;
    }
    return dlas_graph_n_consumers(p->g, x) == readers ? j : -1;
}

static int describe_conversion(struct dlas_buf *t, const char *what, const struct dlas_node *n)
{
    return dlas_buf_printf(t, "%s%s '%s' %lldx%lldx%lld", t->len ? "; " : "", what, n->name,
                    (long long)n->out_shape[0], (long long)(n->out_ndim > 1 ? n->out_shape[1] : 1),
                    (long long)(n->out_ndim > 2 ? n->out_shape[2] : 1));
}

/* Chains of blocks keep the blocked layout between them; the conversions
 * left are where a chain starts and ends. */
static int plan_layouts(struct dlas_plan *p, int nchw)
{
    for (int k = 0; k < p->n_blocks; k++)
        p->blocks[k].from_block = p->blocks[k].to_block = -1;
    for (int k = 0; k < p->n_blocks && !nchw; k++) {
        int j = feeding_block(p, &p->blocks[k]);
        if (j < 0 || p->blocks[j].to_block >= 0 || !mb_takes_blocked(p->blocks[k].mb))
            continue;
        p->blocks[j].to_block = k;
        p->blocks[k].from_block = j;
    }
    /* a head reads the blocked output of the block before it as it is */
    for (int k = 0; k < p->n_blocks && !nchw; k++) {
        struct plan_block *h = &p->blocks[k];
        const int x = h->hd ? dlas_graph_node(p->g, h->head)->inputs[0] : -1;
        const int j = x > 0 && p->root[x] >= 0 ? p->block_of[p->root[x]] : -1;
        if (j < 0 || !p->blocks[j].mb || p->blocks[j].last != x || p->blocks[j].to_block >= 0 ||
            dlas_graph_n_consumers(p->g, x) != 1)
            continue;
        p->blocks[j].to_block = k;
        h->from_block = j;
        hd_set_in_blocked(h->hd, 1);
    }
    struct dlas_buf t = {0};
    int bad = 0;
    p->n_conversions = 0;
    for (int k = 0; k < p->n_blocks; k++) {
        struct plan_block *bk = &p->blocks[k];
        const int to = bk->to_block;
        if (!bk->mb) /* a head (its input as set above) or a stem: NCHW */
            continue;
        const int out_pad = to < 0 ? -1 : p->blocks[to].mb ? mb_in_pad(p->blocks[to].mb) : 0;
        mb_set_io(bk->mb, bk->from_block >= 0, out_pad);
        bk->out_numel = mb_out_floats(bk->mb);
        const struct dlas_node *head = dlas_graph_node(p->g, bk->head);
        if (bk->from_block < 0) {
            bad |= describe_conversion(&t, "pack", dlas_graph_node(p->g, head->inputs[0]));
            p->n_conversions++;
        }
        if (to < 0) {
            bad |= describe_conversion(&t, "scatter", dlas_graph_node(p->g, bk->last));
            p->n_conversions++;
        }
    }
    if (bad) {
        dlas_buf_free(&t);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    p->conversions = t.s;
    return DLAS_OK;
}

int plan_blocks_find(struct dlas_plan *p, const struct dlas_plan_options *opt)
{
    if (!opt->blocks || p->dev)
        return DLAS_OK;
    p->block_of = malloc((size_t)p->n * sizeof *p->block_of);
    if (!p->block_of)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n; i++)
        p->block_of[i] = -1;
    const int threads = p->be->ops->threads ? p->be->ops->threads(p->be->ctx) : 1;
    struct dlas_buf names = {0};
    for (int i = 0; i < p->n; i++) {
        struct plan_block bk;
        if (!plain_conv(p, i) || (opt->block_mask && !opt->block_mask[i]))
            continue;
        int head = 0, stem = 0;
        if (!find_chain(p, i, &bk) && !(head = !opt->block_no_head && find_head(p, i, &bk)) &&
            !(stem = !opt->block_no_stem && find_stem(p, i, &bk)))
            continue;
        char why[128];
        if (head   ? prepare_head(p, &bk, why, sizeof why)
            : stem ? prepare_stem(p, &bk, why, sizeof why)
                   : prepare_block(p, &bk, opt->block_schedule, threads, why, sizeof why)) {
            if (!strcmp(why, "out of memory")) {
                dlas_buf_free(&names);
                return dlas_error(DLAS_ERR_NOMEM, "plan: out of memory fusing block at '%s'",
                                  dlas_graph_node(p->g, i)->name);
            }
            continue; /* not fused: the layers run one by one */
        }
        struct plan_block *nb = realloc(p->blocks, (size_t)(p->n_blocks + 1) * sizeof *nb);
        if (!nb) {
            mb_free(bk.mb);
            hd_free(bk.hd);
            st_free(bk.st);
            dlas_buf_free(&names);
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        }
        p->blocks = nb;
        p->blocks[p->n_blocks] = bk;
        absorb(p, &bk, p->n_blocks);
        p->n_blocks++;
        dlas_buf_printf(&names, "%s%s", names.len ? "; " : "", dlas_graph_node(p->g, i)->name);
        if (head) {
            dlas_buf_printf(&names, " > %s > %s", dlas_graph_node(p->g, bk.gap)->name,
                            dlas_graph_node(p->g, bk.lin)->name);
            continue;
        }
        if (stem) {
            dlas_buf_printf(&names, " > %s", dlas_graph_node(p->g, bk.pool)->name);
            continue;
        }
        if (bk.expand >= 0)
            dlas_buf_printf(&names, " > %s", dlas_graph_node(p->g, bk.dw)->name);
        dlas_buf_printf(&names, " > %s", dlas_graph_node(p->g, bk.pw)->name);
        if (bk.add >= 0)
            dlas_buf_printf(&names, " + %s", dlas_graph_node(p->g, bk.add)->name);
    }
    p->block_names = names.s;
    int rc = plan_layouts(p, opt->block_nchw);
    if (rc)
        return rc;
    for (int k = 0; k < p->n_blocks; k++) {
        const struct plan_block *bk = &p->blocks[k];
        size_t ws = (bk->mb   ? mb_workspace_floats(bk->mb, p->max_batch, threads)
                     : bk->st ? st_workspace_floats(bk->st, p->max_batch, threads)
                              : hd_workspace_floats(bk->hd, p->max_batch)) *
                    sizeof(float);
        if (ws > p->ws_size)
            p->ws_size = ws;
    }
    return DLAS_OK;
}

int64_t plan_blocks_out_numel(const struct dlas_plan *p, int id, int64_t own)
{
    if (!p->block_of || p->block_of[id] < 0)
        return own;
    return p->blocks[p->block_of[id]].out_numel;
}

int plan_blocks_out_nchw(const struct dlas_plan *p, int id)
{
    return !p->block_of || p->block_of[id] < 0 || p->blocks[p->block_of[id]].st;
}

struct block_run {
    const struct mb_block *mb;
    const struct hd_kernel *hd;
    const struct st_kernel *st;
    int ph; /* enum mb_phase or hd_phase */
    int64_t batch;
    const float *in;
    float *out, *ws;
    int threads;
};

static void block_range(void *arg, int64_t b, int64_t e, int thread)
{
    const struct block_run *r = arg;
    if (r->hd)
        hd_run(r->hd, (enum hd_phase)r->ph, r->batch, r->in, r->out, r->ws, b, e);
    else if (r->st)
        st_run(r->st, (enum st_phase)r->ph, r->batch, r->in, r->out, r->ws, r->threads, b, e,
               thread);
    else
        mb_run(r->mb, (enum mb_phase)r->ph, r->batch, r->in, r->out, r->ws, r->threads, b, e,
               thread);
}

int plan_blocks_run(struct dlas_plan *p, int id, int64_t batch, const float *in, float *out)
{
    const struct plan_block *bk = &p->blocks[p->block_of[id]];
    const struct dlas_backend_ops *ops = p->be->ops;
    const int threads = ops->threads ? ops->threads(p->be->ctx) : 1;
    struct block_run r = {bk->mb, bk->hd, bk->st, 0, batch, in, out, p->ws, threads};
    const int phases = bk->hd ? HD_N_PHASES : bk->st ? ST_N_PHASES : MB_N_PHASES;
    for (int ph = 0; ph < phases; ph++) {
        r.ph = ph;
        int64_t n = bk->hd   ? hd_items(bk->hd, (enum hd_phase)ph, batch)
                    : bk->st ? st_items(bk->st, (enum st_phase)ph, batch, threads)
                             : mb_items(bk->mb, (enum mb_phase)ph, batch, threads);
        if (threads > 1 && ops->parallel_for)
            ops->parallel_for(p->be->ctx, n, block_range, &r);
        else
            block_range(&r, 0, n, 0);
    }
    return DLAS_OK;
}

void plan_blocks_free(struct dlas_plan *p)
{
    for (int k = 0; k < p->n_blocks; k++) {
        mb_free(p->blocks[k].mb);
        hd_free(p->blocks[k].hd);
        st_free(p->blocks[k].st);
    }
    free(p->blocks);
    free(p->block_of);
    free(p->block_names);
    free(p->conversions);
}

int dlas_plan_n_blocks(const struct dlas_plan *p) { return p ? p->n_blocks : 0; }

const char *dlas_plan_blocks(const struct dlas_plan *p)
{
    return p && p->block_names ? p->block_names : "";
}

const char *dlas_plan_conversions(const struct dlas_plan *p)
{
    return p && p->conversions ? p->conversions : "";
}

int dlas_plan_n_conversions(const struct dlas_plan *p) { return p ? p->n_conversions : 0; }
