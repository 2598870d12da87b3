/* The inference plan: bind each conv to a primitive once (its weights
 * transformed in prepare), fold batchnorms into convs and relus into their
 * producers, give every activation a buffer slot reused after its last
 * consumer, and run the graph on a backend. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plan.h>
#include <dlas/tune.h>

#include "fallbacks.h"
#include "plan_impl.h"
#include "plan_ops.h"
#include "../base/heartbeat.h"
#include "../base/util.h"

void dlas_plan_options_default(struct dlas_plan_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->fuse = 1;
}

static int64_t node_numel(const struct dlas_node *n)
{
    int64_t e = 1;
    for (int i = 0; i < n->out_ndim; i++)
        e *= n->out_shape[i];
    return e;
}

/* Floats per sample that node id's buffer holds: its own output's, or that
 * of the last node fused into it where that differs (a fused block's, the
 * pool's of a conv that pools first). */
static int64_t held_numel(const struct dlas_plan *p, int id)
{
    if (p->c16 && p->c16[id]) { /* channels padded to a whole block of 16 */
        const struct dlas_node *nd = dlas_graph_node(p->g, id);
        return (nd->out_shape[0] + 15) / 16 * 16 * nd->out_shape[1] * nd->out_shape[2];
    }
    if (p->bind[id].pool_first >= 0)
        return node_numel(dlas_graph_node(p->g, p->bind[id].pool_first));
    return plan_blocks_out_numel(p, id, node_numel(dlas_graph_node(p->g, id)));
}

static int conv_desc_of(const struct dlas_graph *g, int id, int64_t batch,
                        struct dlas_conv_desc *d)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    const struct dlas_node *in = dlas_graph_node(g, n->inputs[0]);
    const struct dlas_conv_attr *a = &n->attr.conv;
    memset(d, 0, sizeof *d);
    d->batch = batch;
    d->in_c = in->out_shape[0];
    d->in_h = in->out_shape[1];
    d->in_w = in->out_shape[2];
    d->out_c = a->out_channels;
    d->kh = a->kh;
    d->kw = a->kw;
    d->stride_h = a->stride_h;
    d->stride_w = a->stride_w;
    d->pad_h = a->pad_h;
    d->pad_w = a->pad_w;
    d->dil_h = a->dil_h;
    d->dil_w = a->dil_w;
    d->groups = a->groups;
    d->has_bias = a->bias;
    if (n->weight.dtype == DLAS_F32 && n->weight.data) {
        const float *w = dlas_f32(&n->weight);
        const int64_t wn = dlas_tensor_numel(&n->weight);
        int64_t zeros = 0;
        for (int64_t i = 0; i < wn; i++)
            zeros += w[i] == 0.0f;
        d->weight_sparsity = wn ? (float)((double)zeros / (double)wn) : 0.0f;
    }
    return dlas_conv_desc_finish(d);
}

/* ---- fusion ---------------------------------------------------------------- */

int plan_sole_consumer(const struct dlas_graph *g, int id, int n_inputs)
{
    const int n = dlas_graph_n_nodes(g);
    if (id == n - 1 || dlas_graph_n_consumers(g, id) != 1)
        return -1;
    for (int k = id + 1; k < n; k++) {
        const struct dlas_node *c = dlas_graph_node(g, k);
        for (int j = 0; j < c->n_inputs; j++)
            if (c->inputs[j] == id)
                return c->n_inputs == n_inputs ? k : -1;
    }
    return -1;
}

int plan_tail(const struct dlas_plan *p, int id)
{
    int t = id;
    for (int j = id + 1; j < p->n; j++)
        if (p->root[j] == id)
            t = j;
    return t;
}

static int f32_tensor(const struct dlas_tensor *t) { return t->data && t->dtype == DLAS_F32; }

/* Fold batchnorm node bn into conv node id: w' = w * s, b' = (b - mean) * s
 * + beta with s = gamma / sqrt(var + eps), per output channel. Sets *folded
 * unless a tensor is missing or not f32 (then the batchnorm runs itself). */
static int fold_bn(struct dlas_plan *p, int id, int bn, int *folded)
{
    const struct dlas_node *c = dlas_graph_node(p->g, id), *b = dlas_graph_node(p->g, bn);
    struct binding *bd = &p->bind[id];
    *folded = 0;
    /* an int8 layer's weights sit on their grid: folding would move them off */
    if (dlas_node_is_quantised(c))
        return DLAS_OK;
    if (!f32_tensor(&c->weight) || (c->attr.conv.bias && !f32_tensor(&c->bias)) ||
        !plan_bn_f32(b))
        return DLAS_OK;
    const int64_t oc = c->attr.conv.out_channels, per = dlas_tensor_numel(&c->weight) / oc;
    bd->fw = dlas_aligned_alloc((size_t)(oc * per) * sizeof(float));
    bd->fb = dlas_aligned_alloc((size_t)oc * sizeof(float));
    if (!bd->fw || !bd->fb) {
        dlas_aligned_free(bd->fw);
        dlas_aligned_free(bd->fb);
        bd->fw = bd->fb = NULL;
        return dlas_error(DLAS_ERR_NOMEM, "plan: out of memory folding '%s'", b->name);
    }
    const float *w = dlas_f32(&c->weight), *cb = c->attr.conv.bias ? dlas_f32(&c->bias) : NULL;
    const float *gam = dlas_f32(&b->weight), *bet = dlas_f32(&b->bias);
    const float *mean = dlas_f32(&b->running_mean), *var = dlas_f32(&b->running_var);
    for (int64_t o = 0; o < oc; o++) {
        double s = gam[o] / sqrt((double)var[o] + (double)b->attr.bn.eps);
        for (int64_t k = 0; k < per; k++)
            bd->fw[o * per + k] = (float)(w[o * per + k] * s);
        bd->fb[o] = (float)(((cb ? cb[o] : 0.0) - mean[o]) * s + bet[o]);
    }
    p->root[bn] = id;
    *folded = 1;
    return DLAS_OK;
}

static int fuse_graph(struct dlas_plan *p)
{
    const struct dlas_graph *g = p->g;
    /* flatten and dropout are identities at inference: views of their input */
    for (int i = 0; i < p->n; i++) {
        const struct dlas_node *nd = dlas_graph_node(g, i);
        if (nd->op == DLAS_OP_FLATTEN || nd->op == DLAS_OP_DROPOUT)
            p->root[i] = p->root[nd->inputs[0]];
    }
    for (int i = 0; i < p->n; i++) {
        const struct dlas_node *nd = dlas_graph_node(g, i);
        if (p->root[i] != i || nd->op == DLAS_OP_INPUT)
            continue;
        int tail = i;
        if (nd->op == DLAS_OP_CONV2D) {
            int k = plan_sole_consumer(g, i, 1), folded = 0;
            if (k >= 0 && dlas_graph_node(g, k)->op == DLAS_OP_BATCHNORM) {
                int rc = fold_bn(p, i, k, &folded);
                if (rc)
                    return rc;
                if (folded)
                    tail = k;
            }
        }
        int k = plan_sole_consumer(g, tail, 1);
        if (k >= 0 && p->root[k] == k) {
            enum dlas_op op = dlas_graph_node(g, k)->op;
            if (op == DLAS_OP_RELU || op == DLAS_OP_RELU6) {
                p->post[i] = op == DLAS_OP_RELU ? PLAN_POST_RELU : PLAN_POST_RELU6;
                p->root[k] = i;
            }
        }
    }
    /* chains (a flatten of a fused relu) resolve to the node that runs;
     * roots never come after their nodes, so one ascending pass does it */
    for (int i = 0; i < p->n; i++)
        p->root[i] = p->root[p->root[i]];
    return DLAS_OK;
}

/* ---- binding ------------------------------------------------------------------ */

/* The parameters to prepare with: the choice's, plus the tuning log's
 * settings for this layer when it has them. */
static int tuned_params(struct dlas_plan *p, struct binding *b,
                        const struct dlas_plan_options *opt, const struct dlas_node *n)
{
    if (!opt || !opt->tunelog || !b->choice)
        return DLAS_OK;
    int threads = p->be->ops->threads ? p->be->ops->threads(p->be->ctx) : 1;
    const struct dlas_tune_entry *e = dlas_tunelog_find(
        opt->tunelog, b->choice->comp->name, p->be->ops->device, threads, &b->desc);
    if (!e || !e->settings[0])
        return DLAS_OK;
    b->tuned = b->choice->params ? dlas_params_clone(b->choice->params) : NULL;
    if (!b->tuned && b->choice->params)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!b->tuned && b->choice->comp->params &&
        dlas_params_defaults(b->choice->comp->params, &b->tuned))
        return dlas_last_status();
    char origin[160];
    snprintf(origin, sizeof origin, "tuning log (%s, layer '%s')", b->choice->label, n->name);
    int rc = dlas_params_apply(b->tuned, e->settings, origin);
    if (rc)
        return rc;
    b->settings = strdup(e->settings);
    return b->settings ? DLAS_OK : dlas_error(DLAS_ERR_NOMEM, "out of memory");
}

static const struct dlas_params *params_of(const struct binding *b)
{
    return b->tuned ? b->tuned : b->choice->params;
}

static int bind_conv(struct dlas_plan *p, int id, const struct dlas_primitive_choice *prims,
                     int n_prims, const struct dlas_primitive_choice *fallback,
                     const struct dlas_plan_options *opt)
{
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    struct binding *b = &p->bind[id];
    b->index = -1;
    int rc = conv_desc_of(p->g, id, p->max_batch, &b->desc);
    if (!rc && b->pool_first >= 0)
        rc = plan_pool_first_desc(p, id, &b->desc);
    if (rc)
        return dlas_error_context("layer '%s'", n->name);
    if (b->fw)
        b->desc.has_bias = 1;
    int only = opt && opt->layer_prim ? opt->layer_prim[id] : -1;
    if (only >= n_prims)
        return dlas_error(DLAS_ERR_INVALID, "layer '%s': primitive index %d of %d", n->name,
                          only, n_prims);
    struct dlas_buf why_all = {0};
    for (int k = only >= 0 ? only : 0; k < (only >= 0 ? only + 1 : n_prims); k++) {
        const struct dlas_primitive_choice *c = &prims[k];
        const struct dlas_primitive_ops *ops = c->comp->ops;
        char why[512] = "";
        if (strcmp(ops->device, p->be->ops->device)) {
            dlas_buf_printf(&why_all, "%s%s: runs on %s, the backend on %s",
                            why_all.len ? "; " : "", c->label, ops->device, p->be->ops->device);
            continue;
        }
        b->choice = c;
        rc = tuned_params(p, b, opt, n);
        if (rc)
            return dlas_error_context("layer '%s'", n->name);
        plan_quant_candidate(p, id, ops);
        rc = ops->supports(&b->desc, params_of(b), why, sizeof why);
        if (rc) {
            dlas_buf_printf(&why_all, "%s%s: %s", why_all.len ? "; " : "", c->label,
                            why[0] ? why : dlas_status_name(rc));
            b->choice = NULL;
            dlas_params_free(b->tuned);
            b->tuned = NULL;
            free(b->settings);
            b->settings = NULL;
            continue;
        }
        b->index = k;
        break;
    }
    if (!b->choice && fallback &&
        strcmp(((const struct dlas_primitive_ops *)fallback->comp->ops)->device,
               p->be->ops->device))
        dlas_buf_printf(&why_all, "; fallback %s: runs on %s, the backend on %s", fallback->label,
                        ((const struct dlas_primitive_ops *)fallback->comp->ops)->device,
                        p->be->ops->device);
    else if (!b->choice && fallback) {
        const struct dlas_primitive_ops *ops = fallback->comp->ops;
        char why[512] = "";
        b->choice = fallback;
        rc = tuned_params(p, b, opt, n);
        if (rc)
            return dlas_error_context("layer '%s'", n->name);
        plan_quant_candidate(p, id, ops);
        if (ops->supports(&b->desc, params_of(b), why, sizeof why) == DLAS_OK)
            b->index = -2;
        else {
            dlas_buf_printf(&why_all, "; fallback %s: %s", fallback->label, why);
            b->choice = NULL;
            dlas_params_free(b->tuned);
            b->tuned = NULL;
            free(b->settings);
            b->settings = NULL;
        }
    }
    dlas_clear_error(); /* refusals are reported in the fallback list */
    /* the core's reference conv cannot read device memory; a plan given no
     * primitive at all only describes its layers (it cannot run) */
    if (!b->choice && p->dev && (n_prims > 0 || fallback)) {
        rc = dlas_error(DLAS_ERR_UNSUPPORTED, "layer '%s': no %s primitive runs it (%s)",
                        n->name, p->be->ops->device,
                        why_all.len ? why_all.s : "no primitive was listed");
        dlas_buf_free(&why_all);
        return rc;
    }
    rc = why_all.len ? fallbacks_add(&p->fb, n->name, why_all.s, b->choice ? b->choice->label : "ref")
                     : DLAS_OK;
    dlas_buf_free(&why_all);
    if (!b->choice)
        b->desc.quant = NULL;
    return rc;
}

/* Transform the weights of conv `id` for the primitive bound to it. */
static int prepare_conv(struct dlas_plan *p, int id)
{
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    struct binding *b = &p->bind[id];
    int rc;
    if (!b->choice || b->in_block)
        return DLAS_OK;
    const struct dlas_primitive_ops *ops = b->choice->comp->ops;
    /* a relu fused into this conv costs no pass of its own when the
     * primitive applies it as it stores its results (int8 ones always do) */
    if (p->post[id] != PLAN_POST_NONE && (dlas_prim_applies_activation(ops) || b->int8)) {
        b->desc.activation = p->post[id] == PLAN_POST_RELU ? DLAS_ACT_RELU : DLAS_ACT_RELU6;
        b->act_fused = 1;
    } else if (p->post[id] != PLAN_POST_NONE && p->dev)
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "layer '%s': primitive '%s' does not apply activations, which a %s "
                          "primitive must (DLAS_PRIM_ACTIVATION)",
                          n->name, b->choice->label, p->be->ops->device);
    const float *w = b->fw ? b->fw : dlas_f32(&n->weight);
    const float *bias = b->fw ? b->fb : (n->attr.conv.bias ? dlas_f32(&n->bias) : NULL);
    rc = ops->prepare(p->host, p->be, &b->desc, w, bias, params_of(b), &b->state);
    if (rc)
        return dlas_error_context("layer '%s': primitive '%s'", n->name, b->choice->label);
    size_t ws = ops->workspace(b->state, p->max_batch);
    if (ws > p->ws_size)
        p->ws_size = ws;
    size_t qs = plan_quant_scratch(p, id);
    if (qs > p->qbuf_size)
        p->qbuf_size = qs;
    return DLAS_OK;
}

/* ---- residual adds ----------------------------------------------------------------- */

int plan_residual_conv(const struct dlas_graph *g, int k, int *other)
{
    const struct dlas_node *a = dlas_graph_node(g, k);
    if (a->op != DLAS_OP_ADD || a->n_inputs != 2)
        return -1;
    for (int j = 0; j < 2; j++) {
        int x = a->inputs[j], c = x;
        if (dlas_graph_node(g, x)->op == DLAS_OP_BATCHNORM)
            c = dlas_graph_node(g, x)->inputs[0];
        if (dlas_graph_node(g, c)->op != DLAS_OP_CONV2D || dlas_graph_n_consumers(g, x) != 1 ||
            dlas_graph_n_consumers(g, c) != 1 || a->inputs[1 - j] >= c)
            continue;
        if (other)
            *other = a->inputs[1 - j];
        return c;
    }
    return -1;
}

/* The conv that add k runs inside in this plan (plan_residual_conv, with
 * the batchnorm folded, no relu of its own, on a primitive that adds
 * residuals), or -1. *other: the node whose buffer holds the residual. */
static int residual_conv(const struct dlas_plan *p, int k, int *other)
{
    const struct dlas_node *a = dlas_graph_node(p->g, k);
    int o, c = plan_residual_conv(p->g, k, &o);
    if (c < 0 || p->root[k] != k || p->view[k] || (p->block_of && p->block_of[k] >= 0) ||
        (p->u8 && p->u8[k]))
        return -1;
    const int x = a->inputs[0] == o ? a->inputs[1] : a->inputs[0];
    const struct binding *b = &p->bind[c];
    o = p->root[o];
    if (p->root[x] != c || !b->choice || b->in_block || b->int8 || p->post[c] != PLAN_POST_NONE ||
        b->residual >= 0 || p->view[o] || (p->u8 && p->u8[o]) ||
        !dlas_prim_runs_residual(b->choice->comp->ops) || held_numel(p, o) != node_numel(a))
        return -1; /* (a fused stem's buffer holds its pool's output) */
    *other = o;
    return c;
}

/* Each add that a conv can compute (residual_conv) becomes part of it: the
 * add's relu moves to the conv, applied after the residual, and whatever
 * ran in the add's buffer now runs in the conv's. */
static void fuse_residuals(struct dlas_plan *p)
{
    for (int k = 0; k < p->n; k++) {
        int o, c = residual_conv(p, k, &o);
        if (c < 0)
            continue;
        p->bind[c].residual = o;
        p->post[c] = p->post[k];
        p->post[k] = PLAN_POST_NONE;
        for (int x = 0; x < p->n; x++)
            if (p->root[x] == k)
                p->root[x] = c;
    }
}

/* ---- device backends -------------------------------------------------------------- */

/* On a device backend the backend runs every node that is not a conv (the
 * core's operators read host memory), with the relu fused into it. */
static int prepare_device_nodes(struct dlas_plan *p)
{
    p->node_state = calloc((size_t)p->n, sizeof *p->node_state);
    if (!p->node_state)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!p->dev->node_prepare || !p->dev->node_run || !p->dev->node_release ||
        !p->dev->copy_in || !p->dev->copy_out)
        return dlas_error(DLAS_ERR_INVALID, "plan: backend on %s lacks device operations",
                          p->be->ops->device);
    for (int i = 0; i < p->n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, i);
        if (nd->op == DLAS_OP_INPUT || nd->op == DLAS_OP_CONV2D || p->root[i] != i)
            continue;
        int act = p->post[i] == PLAN_POST_RELU    ? DLAS_ACT_RELU
                  : p->post[i] == PLAN_POST_RELU6 ? DLAS_ACT_RELU6
                                                  : DLAS_ACT_NONE;
        int rc = p->dev->node_prepare(p->be->ctx, p->g, i, act, &p->node_state[i]);
        if (rc)
            return dlas_error_context("node '%s' on %s", nd->name, p->be->ops->device);
    }
    return DLAS_OK;
}

/* ---- buffers --------------------------------------------------------------------- */

/* An add writes its sum over an input that it is the last reader of: the
 * same index is read before it is written, and the output then lands in
 * memory that is already in cache and owned (no fresh buffer to fetch for
 * writing). The slot of that input, or -1. */
static int in_place_slot(const struct dlas_plan *p, int i, const int *last_use,
                         const int *slot_free_at)
{
    const struct dlas_node *nd = dlas_graph_node(p->g, i);
    if (nd->op != DLAS_OP_ADD || p->dev || (p->block_of && p->block_of[i] >= 0))
        return -1;
    for (int j = 0; j < nd->n_inputs; j++) {
        int r = p->root[nd->inputs[j]];
        if (r >= i || p->slot[r] < 0 || last_use[r] != i || slot_free_at[p->slot[r]] != i ||
            (p->u8 && p->u8[r]) || held_numel(p, r) != node_numel(nd))
            continue;
        return p->slot[r];
    }
    return -1;
}

/* Greedy slot assignment over the nodes that run: a buffer is released after
 * the last consumer of anything it holds (fused nodes share their root's). */
static int assign_slots(struct dlas_plan *p)
{
    int n = p->n;
    int *last_use = malloc((size_t)n * sizeof *last_use);
    int *slot_free_at = calloc((size_t)n, sizeof *slot_free_at);
    p->slot = malloc((size_t)n * sizeof *p->slot);
    p->slot_size = calloc((size_t)n, sizeof *p->slot_size);
    if (!last_use || !slot_free_at || !p->slot || !p->slot_size) {
        free(last_use);
        free(slot_free_at);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        last_use[i] = i;
    last_use[p->root[n - 1]] = n; /* the output lives to the end */
    for (int i = 0; i < n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, i);
        if (p->root[i] != i)
            continue;
        for (int j = 0; j < nd->n_inputs; j++) {
            int r = p->root[nd->inputs[j]];
            if (last_use[r] < i)
                last_use[r] = i;
        }
    }
    plan_prologue_extend_lifetimes(p, last_use); /* before the views': may extend one */
    plan_views_extend_lifetimes(p, last_use);
    /* a fused node keeps its root's buffer alive until its own consumers ran */
    for (int i = 0; i < n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, i);
        for (int j = 0; j < nd->n_inputs; j++) {
            int r = p->root[nd->inputs[j]];
            int user = p->root[i] == i ? i : p->root[i];
            if (last_use[r] < user)
                last_use[r] = user;
        }
    }
    for (int i = 0; i < n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, i);
        if (nd->op == DLAS_OP_INPUT) {
            p->slot[i] = -1;
            continue;
        }
        if (p->view[i]) {
            p->slot[i] = -2; /* no buffer: its readers read its parts */
            continue;
        }
        if (p->root[i] != i)
            continue;
        size_t need = (size_t)(held_numel(p, i) * p->max_batch);
        int best = in_place_slot(p, i, last_use, slot_free_at), in_place = best >= 0;
        for (int s = 0; !in_place && s < p->n_slots; s++)
            if (slot_free_at[s] < i && (best < 0 || p->slot_size[s] > p->slot_size[best]))
                best = s;
        if (best < 0)
            best = p->n_slots++;
        if (p->slot_size[best] < need)
            p->slot_size[best] = need;
        slot_free_at[best] = last_use[i];
        p->slot[i] = best;
    }
    for (int i = 0; i < n; i++)
        if (p->root[i] != i)
            p->slot[i] = p->slot[p->root[i]];
    free(last_use);
    free(slot_free_at);
    p->slots = calloc((size_t)p->n_slots, sizeof *p->slots);
    if (!p->slots)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int s = 0; s < p->n_slots; s++) {
        p->slots[s] = p->be->ops->alloc(p->be->ctx, p->slot_size[s] * sizeof(float));
        if (!p->slots[s])
            return dlas_error(DLAS_ERR_NOMEM, "cannot allocate activations (%zu floats)",
                              p->slot_size[s]);
    }
    return DLAS_OK;
}

/* ---- create / free ---------------------------------------------------------------- */

int dlas_plan_create_ex(const struct dlas_graph *g, const struct dlas_host *host,
                        const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                        int n_prims, const struct dlas_primitive_choice *fallback,
                        int64_t max_batch, const struct dlas_plan_options *opt,
                        struct dlas_plan **out)
{
    *out = NULL;
    struct dlas_plan_options defaults;
    if (!opt) {
        dlas_plan_options_default(&defaults);
        opt = &defaults;
    }
    if (opt->size < sizeof *opt)
        return dlas_error(DLAS_ERR_INVALID, "plan: options of %u bytes, expected %zu",
                          opt->size, sizeof *opt);
    if (max_batch < 1)
        return dlas_error(DLAS_ERR_INVALID, "plan: batch must be >= 1");
    if (!be || !be->ops)
        return dlas_error(DLAS_ERR_INVALID, "plan: no backend");
    int rc = dlas_graph_validate(g);
    if (rc)
        return rc;
    struct dlas_plan *p = calloc(1, sizeof *p);
    if (!p)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    p->g = g;
    p->host = host;
    p->be = be;
    p->n = dlas_graph_n_nodes(g);
    p->max_batch = max_batch;
    p->bind = calloc((size_t)p->n, sizeof *p->bind);
    p->root = malloc((size_t)p->n * sizeof *p->root);
    p->post = calloc((size_t)p->n, sizeof *p->post);
    if (!p->bind || !p->root || !p->post) {
        dlas_plan_free(p);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < p->n; i++) {
        p->root[i] = i;
        p->bind[i].index = -1;
        p->bind[i].residual = -1;
        p->bind[i].pool_first = -1;
        p->bind[i].prologue = p->bind[i].prologue_into = -1;
    }
    for (int i = 0; i < p->n && !rc; i++)
        if (i > 0 && dlas_graph_node(g, i)->op == DLAS_OP_INPUT)
            rc = dlas_error(DLAS_ERR_UNSUPPORTED, "plan: graphs with several inputs");
    if (!rc && opt->fuse)
        rc = fuse_graph(p);
    p->dev = dlas_backend_device_ops(be);
    if (!rc)
        rc = plan_pool_first_find(p, opt);
    for (int i = 0; i < p->n && !rc; i++)
        if (dlas_graph_node(g, i)->op == DLAS_OP_CONV2D)
            rc = bind_conv(p, i, prims, n_prims, fallback, opt);
    if (!rc && p->dev)
        rc = prepare_device_nodes(p);
    if (!rc)
        rc = plan_quant_decide(p);
    if (!rc)
        rc = plan_blocks_find(p, opt);
    if (!rc)
        rc = plan_views_find(p, opt);
    if (!rc && opt->fuse && !opt->no_residual && !p->dev)
        fuse_residuals(p);
    for (int i = 0; i < p->n && !rc; i++)
        rc = prepare_conv(p, i);
    if (!rc)
        rc = plan_prologue_find(p, opt);
    if (!rc)
        rc = plan_layout_find(p, opt);
    if (!rc)
        rc = assign_slots(p);
    if (!rc && p->qbuf_size && !(p->qbuf = be->ops->alloc(be->ctx, p->qbuf_size)))
        rc = dlas_error(DLAS_ERR_NOMEM, "cannot allocate %zu bytes for int8 boundaries",
                        p->qbuf_size);
    if (!rc && p->pool_size &&
        !(p->pool_buf = be->ops->alloc(be->ctx, p->pool_size * sizeof(float))))
        rc = dlas_error(DLAS_ERR_NOMEM, "cannot allocate %zu floats of pooled inputs",
                        p->pool_size);
    if (!rc && p->ws_size && !(p->ws = be->ops->alloc(be->ctx, p->ws_size)))
        rc = dlas_error(DLAS_ERR_NOMEM, "cannot allocate %zu bytes of workspace", p->ws_size);
    if (!rc && !(p->input_buf = be->ops->alloc(
                     be->ctx, (size_t)(node_numel(dlas_graph_node(g, 0)) * max_batch) *
                                  sizeof(float))))
        rc = dlas_error(DLAS_ERR_NOMEM, "cannot allocate the input buffer");
    if (rc) {
        dlas_plan_free(p);
        return rc;
    }
    *out = p;
    return DLAS_OK;
}

int dlas_plan_create(const struct dlas_graph *g, const struct dlas_host *host,
                     const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                     int n_prims, const struct dlas_primitive_choice *fallback,
                     int64_t max_batch, struct dlas_plan **out)
{
    return dlas_plan_create_ex(g, host, be, prims, n_prims, fallback, max_batch, NULL, out);
}

void dlas_plan_free(struct dlas_plan *p)
{
    if (!p)
        return;
    for (int i = 0; p->bind && i < p->n; i++) {
        struct binding *b = &p->bind[i];
        if (b->choice && b->state)
            ((const struct dlas_primitive_ops *)b->choice->comp->ops)->release(b->state);
        dlas_params_free(b->tuned);
        free(b->settings);
        dlas_aligned_free(b->fw);
        dlas_aligned_free(b->fb);
        free(b->pro_scale);
        free(b->pro_shift);
    }
    plan_blocks_free(p);
    for (int i = 0; p->node_state && i < p->n; i++)
        if (p->node_state[i])
            p->dev->node_release(p->node_state[i]);
    free(p->node_state);
    for (int k = 0; k < p->n_graphs; k++)
        if (p->graphs[k].exec)
            p->dev->graph_free(p->be->ctx, p->graphs[k].exec);
    if (p->input_buf)
        p->be->ops->free(p->be->ctx, p->input_buf);
    for (int s = 0; p->slots && s < p->n_slots; s++)
        if (p->slots[s])
            p->be->ops->free(p->be->ctx, p->slots[s]);
    if (p->ws)
        p->be->ops->free(p->be->ctx, p->ws);
    if (p->qbuf)
        p->be->ops->free(p->be->ctx, p->qbuf);
    if (p->pool_buf)
        p->be->ops->free(p->be->ctx, p->pool_buf);
    free(p->u8);
    free(p->view);
    free(p->c16);
    free(p->slots);
    free(p->slot);
    free(p->slot_size);
    free(p->bind);
    free(p->root);
    free(p->post);
    fallbacks_free(&p->fb);
    free(p);
}

/* ---- running ------------------------------------------------------------------------ */

/* Where node id's output lies when a node reads it: the graph input, its
 * slot, or NULL for a view (its readers read its parts). */
static const float *node_data(const struct dlas_plan *p, int id, const float *input)
{
    return p->slot[id] == -1 ? input : p->slot[id] < 0 ? NULL : p->slots[p->slot[id]];
}

static int run_node(struct dlas_plan *p, int i, int64_t batch, const float *input)
{
    const struct dlas_node *nd = dlas_graph_node(p->g, i);
    const float *act_in[64];
    const float **in = act_in;
    const float **heap = NULL;
    if (nd->n_inputs > 64) {
        heap = malloc((size_t)nd->n_inputs * sizeof *heap);
        if (!heap)
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        in = heap;
    }
    for (int j = 0; j < nd->n_inputs; j++) {
        int src = nd->inputs[j];
        in[j] = node_data(p, src, input);
    }
    float *out = p->slots[p->slot[i]];
    int rc, done = 0;
    const struct binding *b = &p->bind[i];
    const int64_t held = batch * held_numel(p, i);
    if (b->pool_first >= 0) /* the conv reads its input pooled */
        in[0] = plan_pool_first_input(p, i, batch, in[0]);
    if (p->block_of && p->block_of[i] >= 0)
        rc = plan_blocks_run(p, i, batch, in[0], out);
    else if (b->prologue >= 0) {
        rc = plan_prologue_run(p, i, batch, input, out);
        if (rc)
            dlas_error_context("layer '%s': primitive '%s'", nd->name, b->choice->label);
        else if (!b->act_fused)
            plan_post_inplace(p->be, out, held, p->post[i]);
    } else if (nd->op == DLAS_OP_BATCHNORM && p->view[nd->inputs[0]])
        rc = plan_views_batchnorm(p, i, batch, input, out);
    else if (p->dev && nd->op == DLAS_OP_CONV2D && !b->choice)
        rc = dlas_error(DLAS_ERR_UNSUPPORTED, "layer '%s': no %s primitive is bound to it",
                        nd->name, p->be->ops->device);
    else if (p->node_state && p->node_state[i]) {
        rc = p->dev->node_run(p->node_state[i], batch, in, out);
        if (rc)
            dlas_error_context("node '%s' on %s", nd->name, p->be->ops->device);
    } else if (nd->op == DLAS_OP_CONV2D && (rc = plan_quant_run(p, i, batch, &in[0], out, &done)))
        ;
    else if (done)
        rc = DLAS_OK;
    else if (b->choice) {
        const struct dlas_primitive_ops *ops = b->choice->comp->ops;
        if (b->residual >= 0)
            rc = ops->run_residual(b->state, batch, in[0], node_data(p, b->residual, input), out,
                                   p->ws, NULL);
        else
            rc = ops->run(b->state, batch, in[0], out, p->ws, NULL);
        if (rc)
            dlas_error_context("layer '%s': primitive '%s'", nd->name, b->choice->label);
        else if (!b->act_fused)
            plan_post_inplace(p->be, out, held, p->post[i]);
    } else if (nd->op == DLAS_OP_CONV2D && (b->fw || b->pool_first >= 0)) {
        /* the layer as the plan describes it: batchnorm folded, input pooled */
        dlas_ref_conv2d(&b->desc, batch, in[0], b->fw ? b->fw : dlas_f32(&nd->weight),
                        b->fw ? b->fb : nd->attr.conv.bias ? dlas_f32(&nd->bias) : NULL, out);
        plan_post_inplace(p->be, out, held, p->post[i]);
        rc = DLAS_OK;
    } else if (nd->op == DLAS_OP_CONV2D) {
        rc = dlas_ref_node_forward(p->g, i, batch, in, out);
        if (!rc)
            plan_post_inplace(p->be, out, held, p->post[i]);
    } else
        rc = plan_fast_forward(p->g, i, batch, in, out, p->post[i], p->be);
    free(heap);
    return rc;
}

/* A node runs unless it is the input, fused into another, a view or a
 * batchnorm its conv applies. */
static int runs(const struct dlas_plan *p, int i)
{
    return dlas_graph_node(p->g, i)->op != DLAS_OP_INPUT && p->root[i] == i && !p->view[i] &&
           p->bind[i].prologue_into < 0;
}

/* Every node that runs, in order (times, when asked: the backend's device
 * marks when it has them, else its clock around a synchronised node). */
static int run_nodes(struct dlas_plan *p, int64_t batch, const float *input,
                     double *node_seconds)
{
    const struct dlas_backend_ops *ops = p->be->ops;
    const int marks = node_seconds && p->dev && p->dev->marks_reserve && p->dev->mark &&
                      p->dev->elapsed;
    if (marks) {
        int rc = p->dev->marks_reserve(p->be->ctx, p->n + 1);
        if (rc)
            return rc;
        if ((rc = p->dev->mark(p->be->ctx, 0)))
            return rc;
        int last = 0;
        for (int i = 0; i < p->n; i++) {
            if (!runs(p, i))
                continue;
            if ((rc = run_node(p, i, batch, input)) || (rc = p->dev->mark(p->be->ctx, i + 1)))
                return rc;
            last = i + 1;
        }
        /* each node's time is from the mark before it to its own */
        int prev = 0;
        for (int i = 0; i < p->n && last; i++) {
            if (!runs(p, i))
                continue;
            double t = p->dev->elapsed(p->be->ctx, prev, i + 1);
            if (t < 0)
                return dlas_last_status() ? dlas_last_status() : DLAS_ERR_INTERNAL;
            node_seconds[i] += t;
            prev = i + 1;
        }
        return DLAS_OK;
    }
    for (int i = 0; i < p->n; i++) {
        if (!runs(p, i))
            continue;
        double t0 = node_seconds ? ops->now(p->be->ctx) : 0;
        int rc = run_node(p, i, batch, input);
        if (rc)
            return rc;
        if (node_seconds) {
            ops->sync(p->be->ctx);
            node_seconds[i] += ops->now(p->be->ctx) - t0;
        }
    }
    return DLAS_OK;
}

/* The forward from input (host memory on a CPU backend, the input buffer
 * on a device backend) into the output slot. When the backend captures, the
 * first forward at a batch size runs node by node (libraries finish their
 * lazy set-up: module loading, workspaces), the second is captured as a
 * graph, and later ones replay it. A capture that fails turns capturing off
 * for the plan, which then runs node by node, as correct and only slower. */
static int forward(struct dlas_plan *p, int64_t batch, const float *input)
{
    if (!p->dev || !p->dev->capture_begin || p->no_capture)
        return run_nodes(p, batch, input, NULL);
    struct plan_graph *gr = NULL;
    for (int k = 0; k < p->n_graphs; k++)
        if (p->graphs[k].batch == batch)
            gr = &p->graphs[k];
    if (gr && gr->exec)
        return p->dev->graph_launch(p->be->ctx, gr->exec);
    if (!gr) { /* first time at this batch */
        if (p->n_graphs == PLAN_MAX_GRAPHS) { /* the oldest goes */
            if (p->graphs[0].exec)
                p->dev->graph_free(p->be->ctx, p->graphs[0].exec);
            memmove(p->graphs, p->graphs + 1, (PLAN_MAX_GRAPHS - 1) * sizeof p->graphs[0]);
            p->n_graphs--;
        }
        p->graphs[p->n_graphs++] = (struct plan_graph){batch, NULL};
        return run_nodes(p, batch, input, NULL);
    }
    int rc = p->dev->capture_begin(p->be->ctx);
    if (!rc) {
        rc = run_nodes(p, batch, input, NULL);
        void *exec = NULL;
        int rc_end = p->dev->capture_end(p->be->ctx, &exec);
        if (!rc && !rc_end) {
            gr->exec = exec;
            return p->dev->graph_launch(p->be->ctx, exec);
        }
        if (exec)
            p->dev->graph_free(p->be->ctx, exec);
        if (!rc)
            rc = rc_end;
    }
    if (rc != DLAS_ERR_UNSUPPORTED && p->host && p->host->log)
        p->host->log(DLAS_LOG_WARN, "plan: forward not captured as a graph, launching node by "
                                    "node: %s", dlas_last_error());
    dlas_clear_error();
    p->no_capture = 1;
    return run_nodes(p, batch, input, NULL);
}

static const float *output_of(const struct dlas_plan *p, const float *input)
{
    int last = p->n - 1;
    return p->slot[last] < 0 ? input : p->slots[p->slot[last]];
}

static int run(struct dlas_plan *p, int64_t batch, const float *input, float *output,
               double *node_seconds)
{
    if (batch < 1 || batch > p->max_batch)
        return dlas_error(DLAS_ERR_INVALID, "plan: batch %lld outside 1..%lld", (long long)batch,
                          (long long)p->max_batch);
    const struct dlas_backend_ops *ops = p->be->ops;
    const size_t in_bytes = (size_t)(node_numel(dlas_graph_node(p->g, 0)) * batch) * sizeof(float);
    const size_t out_bytes =
        (size_t)(node_numel(dlas_graph_node(p->g, p->n - 1)) * batch) * sizeof(float);
    int rc;
    if (p->dev) { /* the only host copies: the input in, the output out */
        if ((rc = p->dev->copy_in(p->be->ctx, p->input_buf, input, in_bytes)))
            return rc;
        rc = node_seconds ? run_nodes(p, batch, p->input_buf, node_seconds)
                          : forward(p, batch, p->input_buf);
        if (rc)
            return rc;
        return p->dev->copy_out(p->be->ctx, output, output_of(p, p->input_buf), out_bytes);
    }
    if ((rc = run_nodes(p, batch, input, node_seconds)))
        return rc;
    memcpy(output, output_of(p, input), out_bytes);
    return ops->sync(p->be->ctx);
}

float *dlas_plan_input_buffer(struct dlas_plan *p) { return p ? p->input_buf : NULL; }

const float *dlas_plan_output_buffer(const struct dlas_plan *p)
{
    return p ? output_of(p, p->input_buf) : NULL;
}

int dlas_plan_run_resident(struct dlas_plan *p, int64_t batch)
{
    if (batch < 1 || batch > p->max_batch)
        return dlas_error(DLAS_ERR_INVALID, "plan: batch %lld outside 1..%lld", (long long)batch,
                          (long long)p->max_batch);
    return p->dev ? forward(p, batch, p->input_buf) : run_nodes(p, batch, p->input_buf, NULL);
}

int dlas_plan_run(struct dlas_plan *p, int64_t batch, const float *input, float *output)
{
    dlas_heartbeat();
    return run(p, batch, input, output, NULL);
}

int dlas_plan_run_timed(struct dlas_plan *p, int64_t batch, const float *input, float *output,
                        double *node_seconds)
{
    if (!node_seconds)
        return dlas_error(DLAS_ERR_INVALID, "plan: no array for the node times");
    return run(p, batch, input, output, node_seconds);
}

/* ---- queries ---------------------------------------------------------------------------- */

const char *dlas_plan_binding(const struct dlas_plan *p, int id)
{
    if (id >= 0 && id < p->n && p->view && p->view[id])
        return "view";
    if (id >= 0 && id < p->n && p->bind[id].prologue_into >= 0)
        return "prologue";
    if (id < 0 || id >= p->n || (!p->bind[id].choice && !p->bind[id].in_block))
        return "ref";
    if (p->bind[id].in_block || (p->block_of && p->block_of[id] >= 0))
        return "block";
    return p->bind[id].choice->label;
}

int dlas_plan_n_fallbacks(const struct dlas_plan *p) { return p->fb.n; }
const char *dlas_plan_fallbacks(const struct dlas_plan *p)
{
    return p->fb.layers.s ? p->fb.layers.s : "";
}
const char *dlas_plan_fallbacks_grouped(const struct dlas_plan *p)
{
    return p->fb.groups.s ? p->fb.groups.s : "";
}

int64_t dlas_plan_output_numel(const struct dlas_plan *p)
{
    return node_numel(dlas_graph_node(p->g, p->n - 1));
}

int dlas_plan_n_nodes(const struct dlas_plan *p) { return p ? p->n : 0; }

const struct dlas_conv_desc *dlas_plan_conv_desc(const struct dlas_plan *p, int id)
{
    if (!p || id < 0 || id >= p->n || dlas_graph_node(p->g, id)->op != DLAS_OP_CONV2D)
        return NULL;
    return &p->bind[id].desc;
}

int dlas_plan_binding_index(const struct dlas_plan *p, int id)
{
    if (!p || id < 0 || id >= p->n || !p->bind[id].choice)
        return -1;
    if (p->bind[id].in_block)
        return -3;
    return p->bind[id].index;
}

const char *dlas_plan_layer_settings(const struct dlas_plan *p, int id)
{
    if (!p || id < 0 || id >= p->n || !p->bind[id].settings)
        return "";
    return p->bind[id].settings;
}

int dlas_plan_layout(const struct dlas_plan *p, int id)
{
    if (!p || id < 0 || id >= p->n || !p->c16)
        return DLAS_LAYOUT_NCHW;
    return p->c16[p->root[id]] ? DLAS_LAYOUT_C16 : DLAS_LAYOUT_NCHW;
}

int dlas_plan_fused_into(const struct dlas_plan *p, int id)
{
    if (!p || id < 0 || id >= p->n)
        return -1;
    if (p->root[id] == id)
        return p->bind[id].prologue_into;
    return p->bind[p->root[id]].prologue_into >= 0 ? p->bind[p->root[id]].prologue_into
                                                     : p->root[id];
}
