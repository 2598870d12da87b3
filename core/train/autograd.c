/* The autograd's buffers and passes: forward in topological order, backward
 * in reverse, each node's kernel in backward_*.c. Buffers are sized once for
 * max_batch and rebuilt only when the graph's structure changes, so a
 * training step allocates nothing. The batch-sized buffers (activations,
 * gradients, pooling and dropout state) are carved from one arena that a
 * rebuild reuses when it is large enough: a search that scores many
 * graphs in turn (BlockSwap) does not map, fault in and clear a gigabyte
 * per candidate. Their contents between passes are garbage either way
 * (every kernel writes before it reads, as on a second training step). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "autograd_impl.h"

static int64_t node_numel(const struct dlas_node *n)
{
    int64_t m = 1;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xbf58476d1ce4e5b9ull;
}

static uint64_t tensor_sig(uint64_t h, const struct dlas_tensor *t)
{
    h = mix(h, (uint64_t)(t->data != NULL));
    h = mix(h, (uint64_t)t->dtype);
    for (int i = 0; i < t->ndim; i++)
        h = mix(h, (uint64_t)t->dims[i]);
    return h;
}

/* Everything the buffers and kernels depend on; weights' values are read
 * from the graph at every pass and do not enter. */
static uint64_t graph_sig(const struct dlas_graph *g)
{
    int n = dlas_graph_n_nodes(g);
    uint64_t h = mix(0, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        const struct dlas_node *d = dlas_graph_node(g, i);
        h = mix(h, (uint64_t)d->op);
        h = mix(h, (uint64_t)d->n_inputs);
        for (int k = 0; k < d->n_inputs; k++)
            h = mix(h, (uint64_t)d->inputs[k]);
        for (int k = 0; k < 3; k++)
            h = mix(h, (uint64_t)d->out_shape[k]);
        const unsigned char *attr = (const unsigned char *)&d->attr;
        for (size_t k = 0; k < sizeof d->attr; k++)
            h = mix(h, attr[k]);
        h = tensor_sig(h, &d->weight);
        h = tensor_sig(h, &d->bias);
    }
    return h;
}

static void release_buffers(struct dlas_autograd *a)
{
    for (int i = 0; a->nd && i < a->n; i++) {
        struct ag_node *x = &a->nd[i];
        /* act, grad, argmax and mask live in the arena, which stays */
        dlas_aligned_free(x->mean);
        dlas_aligned_free(x->invstd);
        dlas_aligned_free(x->wpack);
        dlas_aligned_free(x->wflip);
        dlas_aligned_free(x->dw_map);
        dlas_tensor_free(&x->gw);
        dlas_tensor_free(&x->gb);
    }
    free(a->nd);
    a->nd = NULL;
    a->n = 0;
    free(a->prof);
    a->prof = NULL;
    dlas_aligned_free(a->ws);
    dlas_aligned_free(a->pg);
    a->ws = a->pg = NULL;
    a->have_forward = 0;
}

static int has_params(const struct dlas_node *n)
{
    return n->op == DLAS_OP_CONV2D || n->op == DLAS_OP_LINEAR || n->op == DLAS_OP_BATCHNORM;
}

static int need_f32(const struct dlas_node *n, const struct dlas_tensor *t, const char *what)
{
    if (t->data && t->dtype != DLAS_F32)
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "autograd: %s '%s': %s is %s; training needs f32 parameters",
                          dlas_op_name(n->op), n->name, what, dlas_dtype_name(t->dtype));
    return DLAS_OK;
}

static void *falloc(int64_t n, size_t elem, int *failed)
{
    void *p = dlas_aligned_alloc((size_t)(n > 0 ? n : 1) * elem);
    if (!p)
        *failed = 1;
    return p;
}

/* Pair each batchnorm with the relu that is its only consumer. */
static void plan_fusion(struct dlas_autograd *a)
{
    for (int i = 0; i < a->n; i++)
        a->nd[i].fused_relu = a->nd[i].fused_bn = 0;
    for (int j = 1; j < a->n; j++) {
        const struct dlas_node *r = a->nd[j].n;
        if (r->op != DLAS_OP_RELU)
            continue;
        int i = r->inputs[0];
        if (a->nd[i].n->op != DLAS_OP_BATCHNORM || a->nd[i].keep ||
            dlas_graph_n_consumers(a->g, i) != 1 || !a->nd[i].grad != !a->nd[j].grad)
            continue;
        a->nd[i].fused_relu = j;
        a->nd[j].fused_bn = i;
    }
}

/* Lay the batch-sized buffers out in the arena at base (NULL: only measure);
 * returns the bytes they take. Each starts on a 64-byte boundary. */
static size_t arena_walk(struct dlas_autograd *a, char *base)
{
    size_t off = 0;
#define PLACE(ptr, n, elem)                                                                      \
    do {                                                                                         \
        (ptr) = base ? (void *)(base + off) : NULL;                                              \
        off += ((size_t)((n) > 0 ? (n) : 1) * (elem) + 63) & ~(size_t)63;                        \
    } while (0)
    const int64_t B = a->max_batch;
    for (int i = 0; i < a->n; i++) {
        struct ag_node *x = &a->nd[i];
        PLACE(x->act, B * x->numel, sizeof(float));
        if (x->needs_grad)
            PLACE(x->grad, B * x->numel, sizeof(float));
        if (x->n->op == DLAS_OP_MAXPOOL)
            PLACE(x->argmax, B * x->numel, sizeof(int32_t));
        if (x->n->op == DLAS_OP_DROPOUT)
            PLACE(x->mask, B * x->numel, 1);
    }
#undef PLACE
    return off;
}

static int build(struct dlas_autograd *a)
{
    struct dlas_graph *g = a->g;
    int rc = dlas_graph_validate(g);
    if (rc)
        return dlas_error_context("autograd");
    const int n = dlas_graph_n_nodes(g);
    a->nd = calloc((size_t)n, sizeof *a->nd);
    if (!a->nd)
        return dlas_error(DLAS_ERR_NOMEM, "autograd: out of memory");
    a->n = n;
    int failed = 0;
    int64_t ws = 0, pg = 0;
    const int64_t B = a->max_batch;
    for (int i = 0; i < n && !failed; i++) {
        struct ag_node *x = &a->nd[i];
        const struct dlas_node *d = dlas_graph_node(g, i);
        x->n = d;
        x->numel = node_numel(d);
        if ((rc = need_f32(d, &d->weight, "weight")) || (rc = need_f32(d, &d->bias, "bias")) ||
            (rc = need_f32(d, &d->running_mean, "running_mean")) ||
            (rc = need_f32(d, &d->running_var, "running_var"))) {
            release_buffers(a);
            return rc;
        }
        x->needs_grad = i == 0 ? a->input_grad : has_params(d);
        for (int k = 0; k < d->n_inputs; k++)
            x->needs_grad |= a->nd[d->inputs[k]].needs_grad;
        switch (d->op) {
        case DLAS_OP_CONV2D: {
            const struct dlas_node *in = dlas_graph_node(g, d->inputs[0]);
            const struct dlas_conv_attr *c = &d->attr.conv;
            struct dlas_conv_desc cd = {
                .batch = B, .in_c = in->out_shape[0], .in_h = in->out_shape[1],
                .in_w = in->out_shape[2], .out_c = c->out_channels, .kh = c->kh, .kw = c->kw,
                .stride_h = c->stride_h, .stride_w = c->stride_w, .pad_h = c->pad_h,
                .pad_w = c->pad_w, .dil_h = c->dil_h, .dil_w = c->dil_w, .groups = c->groups,
                .has_bias = c->bias};
            if ((rc = dlas_conv_desc_finish(&cd))) {
                release_buffers(a);
                return dlas_error_context("autograd: conv2d '%s'", d->name);
            }
            x->cd = cd;
            int64_t wp = 0, wf = 0;
            int64_t need = ag_conv_setup(x, a->nd[d->inputs[0]].needs_grad, &wp, &wf);
            if (need > ws)
                ws = need;
            if (wp)
                x->wpack = falloc(wp, sizeof(float), &failed);
            if (wf)
                x->wflip = falloc(wf, sizeof(float), &failed);
            if (ag_conv_needs_map(x) &&
                (x->dw_map = falloc(x->part_floats, sizeof(int32_t), &failed)))
                ag_conv_fill_map(x, x->dw_map);
            int64_t p = x->part_floats + dlas_tensor_numel(&d->bias);
            if (p > pg)
                pg = p;
            break;
        }
        case DLAS_OP_BATCHNORM:
            x->mean = falloc(d->out_shape[0], sizeof(float), &failed);
            x->invstd = falloc(d->out_shape[0], sizeof(float), &failed);
            break;
        default:
            break;
        }
        if (has_params(d) && !failed) {
            if (d->weight.data && dlas_tensor_alloc(&x->gw, DLAS_F32, d->weight.ndim, d->weight.dims))
                failed = 1;
            if (d->bias.data && dlas_tensor_alloc(&x->gb, DLAS_F32, d->bias.ndim, d->bias.dims))
                failed = 1;
        }
    }
    size_t need = failed ? 0 : arena_walk(a, NULL);
    if (need > a->arena_bytes) { /* grow; a smaller graph reuses what is there */
        dlas_aligned_free(a->arena);
        a->arena_bytes = 0;
        if ((a->arena = dlas_aligned_alloc(need)))
            a->arena_bytes = need;
        else
            failed = 1;
    }
    if (!failed) {
        arena_walk(a, a->arena);
        a->ws_floats = (ws + 15) & ~(int64_t)15; /* keeps each thread's slice 64-byte aligned */
        a->pg_floats = (pg + 15) & ~(int64_t)15;
        a->ws = falloc(a->ws_floats * a->threads, sizeof(float), &failed);
        a->pg = falloc(a->pg_floats * AG_CHUNKS, sizeof(float), &failed);
    }
    if (failed) {
        release_buffers(a);
        return dlas_error(DLAS_ERR_NOMEM,
                          "autograd: out of memory for the activations and gradients of a "
                          "batch of %lld",
                          (long long)B);
    }
    a->sig = graph_sig(g);
    plan_fusion(a);
    return DLAS_OK;
}

int dlas_autograd_new(struct dlas_graph *g, int64_t max_batch, int threads,
                      struct dlas_autograd **out)
{
    *out = NULL;
    if (!g || max_batch < 1 || threads < 0)
        return dlas_error(DLAS_ERR_INVALID, "autograd: %s",
                          !g ? "NULL graph" : max_batch < 1 ? "max_batch must be at least 1"
                                                            : "negative thread count");
    struct dlas_autograd *a = calloc(1, sizeof *a);
    if (!a)
        return dlas_error(DLAS_ERR_NOMEM, "autograd: out of memory");
    a->g = g;
    a->max_batch = max_batch;
    a->threads = threads ? threads : omp_get_max_threads();
    if (a->threads < 1)
        a->threads = 1;
    int rc = build(a);
    if (rc) {
        free(a);
        return rc;
    }
    *out = a;
    return DLAS_OK;
}

void dlas_autograd_free(struct dlas_autograd *a)
{
    if (!a)
        return;
    release_buffers(a);
    dlas_aligned_free(a->arena);
    free(a);
}

struct dlas_graph *dlas_autograd_graph(const struct dlas_autograd *a) { return a ? a->g : NULL; }
int dlas_autograd_threads(const struct dlas_autograd *a) { return a ? a->threads : 0; }
int64_t dlas_autograd_max_batch(const struct dlas_autograd *a) { return a ? a->max_batch : 0; }
int64_t dlas_autograd_batch(const struct dlas_autograd *a) { return a ? a->batch : 0; }

int dlas_autograd_sync(struct dlas_autograd *a)
{
    if (!a)
        return dlas_error(DLAS_ERR_INVALID, "autograd: NULL");
    if (a->nd && a->n == dlas_graph_n_nodes(a->g) && graph_sig(a->g) == a->sig) {
        /* Surgery may move nodes in memory without changing them. */
        for (int i = 0; i < a->n; i++)
            a->nd[i].n = dlas_graph_node(a->g, i);
        return DLAS_OK;
    }
    release_buffers(a);
    return build(a);
}

int dlas_autograd_set_graph(struct dlas_autograd *a, struct dlas_graph *g)
{
    if (!a || !g)
        return dlas_error(DLAS_ERR_INVALID, "autograd: NULL %s", a ? "graph" : "autograd");
    release_buffers(a);
    a->g = g;
    a->sig = 0;
    return build(a);
}

void dlas_autograd_want_input_grad(struct dlas_autograd *a, int on)
{
    if (!a || a->input_grad == !!on)
        return;
    a->input_grad = !!on;
    release_buffers(a); /* which nodes need gradients changes */
    a->sig = 0;
}

int dlas_autograd_keep(struct dlas_autograd *a, int id)
{
    if (!a || id < 0 || id >= a->n)
        return dlas_error(DLAS_ERR_INVALID, "autograd: no node %d", id);
    a->nd[id].keep = 1;
    plan_fusion(a);
    return DLAS_OK;
}

void dlas_autograd_set_seed(struct dlas_autograd *a, uint64_t seed)
{
    if (a)
        a->seed = seed;
}

static int forward_node(struct dlas_autograd *a, int id)
{
    switch (a->nd[id].n->op) {
    case DLAS_OP_CONV2D: return ag_conv_forward(a, id);
    case DLAS_OP_BATCHNORM: return ag_bn_forward(a, id);
    case DLAS_OP_MAXPOOL:
    case DLAS_OP_AVGPOOL:
    case DLAS_OP_GLOBAL_AVGPOOL: return ag_pool_forward(a, id);
    case DLAS_OP_LINEAR: return ag_linear_forward(a, id);
    case DLAS_OP_RELU:
    case DLAS_OP_RELU6:
    case DLAS_OP_ADD:
    case DLAS_OP_DROPOUT:
    case DLAS_OP_FLATTEN: return ag_elem_forward(a, id);
    case DLAS_OP_CONCAT: return ag_concat_forward(a, id);
    case DLAS_OP_SOFTMAX: return ag_softmax_forward(a, id);
    default: break;
    }
    return dlas_error(DLAS_ERR_UNSUPPORTED, "autograd: no training kernel for %s '%s'",
                      dlas_op_name(a->nd[id].n->op), a->nd[id].n->name);
}

static int backward_node(struct dlas_autograd *a, int id)
{
    switch (a->nd[id].n->op) {
    case DLAS_OP_CONV2D: return ag_conv_backward(a, id);
    case DLAS_OP_BATCHNORM: return ag_bn_backward(a, id);
    case DLAS_OP_MAXPOOL:
    case DLAS_OP_AVGPOOL:
    case DLAS_OP_GLOBAL_AVGPOOL: return ag_pool_backward(a, id);
    case DLAS_OP_LINEAR: return ag_linear_backward(a, id);
    case DLAS_OP_RELU:
    case DLAS_OP_RELU6:
    case DLAS_OP_ADD:
    case DLAS_OP_DROPOUT:
    case DLAS_OP_FLATTEN: return ag_elem_backward(a, id);
    case DLAS_OP_CONCAT: return ag_concat_backward(a, id);
    case DLAS_OP_SOFTMAX: return ag_softmax_backward(a, id);
    default: break;
    }
    return dlas_error(DLAS_ERR_UNSUPPORTED, "autograd: no backward for %s '%s'",
                      dlas_op_name(a->nd[id].n->op), a->nd[id].n->name);
}

int dlas_autograd_forward(struct dlas_autograd *a, int64_t batch, const float *input,
                          unsigned flags)
{
    if (!a || !input)
        return dlas_error(DLAS_ERR_INVALID, "autograd forward: NULL %s", a ? "input" : "autograd");
    int rc = dlas_autograd_sync(a);
    if (rc)
        return rc;
    if (batch < 1 || batch > a->max_batch)
        return dlas_error(DLAS_ERR_INVALID, "autograd forward: batch %lld is outside 1..%lld",
                          (long long)batch, (long long)a->max_batch);
    a->have_forward = 0;
    a->batch = batch;
    a->flags = flags;
    memcpy(a->nd[0].act, input, (size_t)(batch * a->nd[0].numel) * sizeof(float));
    for (int i = 0; i < a->n; i++) {
        a->nd[i].grad_set = 0;
        a->nd[i].mask_valid = 0;
        a->nd[i].act_gone = a->nd[i].fused_relu != 0;
        a->nd[i].grad_gone = 0;
    }
    for (int i = 1; i < a->n; i++) {
        if (a->nd[i].fused_bn) /* written by its batchnorm */
            continue;
        double t0 = a->prof ? omp_get_wtime() : 0.0;
        if ((rc = forward_node(a, i)))
            return rc;
        if (a->prof)
            a->prof[i] += omp_get_wtime() - t0;
    }
    a->have_forward = 1;
    return DLAS_OK;
}

const float *dlas_autograd_act(const struct dlas_autograd *a, int id)
{
    if (!a || id < 0 || id >= a->n || a->nd[id].act_gone)
        return NULL;
    return a->nd[id].act;
}

float *dlas_autograd_grad(struct dlas_autograd *a, int id)
{
    if (!a || id < 0 || id >= a->n) {
        dlas_error(DLAS_ERR_INVALID, "autograd: no node %d", id);
        return NULL;
    }
    struct ag_node *x = &a->nd[id];
    if (x->grad_gone) {
        dlas_error(DLAS_ERR_INVALID,
                   "autograd: the gradient of %s '%s' was folded into its relu's (keep it "
                   "with dlas_autograd_keep before the forward)",
                   dlas_op_name(x->n->op), x->n->name);
        return NULL;
    }
    if (!x->grad) {
        dlas_error(DLAS_ERR_INVALID,
                   "autograd: no gradient flows into %s '%s' (nothing trainable depends on it)",
                   dlas_op_name(x->n->op), x->n->name);
        return NULL;
    }
    if (!x->grad_set) {
        memset(x->grad, 0, (size_t)(a->max_batch * x->numel) * sizeof(float));
        x->grad_set = 1;
    }
    return x->grad;
}

int dlas_autograd_has_grad(const struct dlas_autograd *a, int id)
{
    return a && id >= 0 && id < a->n && a->nd[id].grad && a->nd[id].grad_set &&
           !a->nd[id].grad_gone;
}

float *ag_grad_dst(struct dlas_autograd *a, int in, int *acc)
{
    struct ag_node *x = &a->nd[in];
    *acc = x->grad_set;
    return x->grad;
}

void ag_grad_done(struct dlas_autograd *a, int in) { a->nd[in].grad_set = 1; }

static int inputs_reach(const struct dlas_autograd *a, int i)
{
    const struct dlas_node *n = a->nd[i].n;
    for (int k = 0; k < n->n_inputs; k++)
        if (a->nd[n->inputs[k]].reach)
            return 1;
    return 0;
}

int dlas_autograd_backward(struct dlas_autograd *a)
{
    if (!a || !a->have_forward)
        return dlas_error(DLAS_ERR_INVALID, "autograd backward: no forward to go back through");
    if (a->flags & DLAS_AG_NO_GRAD)
        return dlas_error(DLAS_ERR_INVALID, "autograd backward: the forward ran with NO_GRAD");
    const int act_only = (a->flags & DLAS_AG_ACT_GRAD_ONLY) != 0;
    if (act_only) /* the gradients a kept node's needs: its own and those downstream */
        for (int i = 0; i < a->n; i++) {
            struct ag_node *x = &a->nd[i];
            x->reach = x->keep || (i == 0 && a->input_grad);
            for (int k = 0; k < x->n->n_inputs; k++)
                x->reach |= a->nd[x->n->inputs[k]].reach;
        }
    for (int i = a->n - 1; i >= 1; i--) {
        struct ag_node *x = &a->nd[i];
        if (act_only && !inputs_reach(a, i))
            continue; /* nothing wanted lies upstream */
        /* A fused relu leaves its gradient to its batchnorm, unless a loss
         * wrote into the batchnorm's gradient itself: then both run apart. */
        if (x->fused_bn && !a->nd[x->fused_bn].grad_set)
            continue;
        if (x->fused_relu && !x->grad_set) {
            if (!a->nd[x->fused_relu].grad_set)
                continue;
            x->grad_gone = 1;
        } else if (!x->grad || !x->grad_set)
            continue;
        double t0 = a->prof ? omp_get_wtime() : 0.0;
        int rc = backward_node(a, i);
        if (rc)
            return rc;
        if (a->prof)
            a->prof[a->n + i] += omp_get_wtime() - t0;
    }
    /* A second backward would add the inputs' parts twice. */
    a->have_forward = 0;
    return DLAS_OK;
}

struct dlas_tensor *dlas_autograd_param_grad(struct dlas_autograd *a, int id, int which)
{
    if (!a || id < 0 || id >= a->n)
        return NULL;
    struct dlas_tensor *t = which ? &a->nd[id].gb : &a->nd[id].gw;
    return t->data ? t : NULL;
}

void dlas_autograd_zero_grad(struct dlas_autograd *a)
{
    for (int i = 0; a && i < a->n; i++) {
        struct ag_node *x = &a->nd[i];
        if (x->gw.data)
            memset(x->gw.data, 0, dlas_tensor_bytes(&x->gw));
        if (x->gb.data)
            memset(x->gb.data, 0, dlas_tensor_bytes(&x->gb));
    }
}

const uint8_t *dlas_autograd_dropout_mask(const struct dlas_autograd *a, int id)
{
    if (!a || id < 0 || id >= a->n || !a->nd[id].mask_valid)
        return NULL;
    return a->nd[id].mask;
}

void dlas_autograd_profile(struct dlas_autograd *a, int on)
{
    if (!a)
        return;
    free(a->prof);
    a->prof = NULL;
    if (on && dlas_autograd_sync(a) == DLAS_OK)
        a->prof = calloc(2 * (size_t)a->n, sizeof *a->prof);
}

const double *dlas_autograd_profile_seconds(const struct dlas_autograd *a, int backward)
{
    return a && a->prof ? a->prof + (backward ? a->n : 0) : NULL;
}

int dlas_autograd_logits_node(const struct dlas_autograd *a)
{
    if (!a || a->n < 1)
        return -1;
    const struct dlas_node *last = a->nd[a->n - 1].n;
    if (last->op == DLAS_OP_SOFTMAX && a->n > 1)
        return last->inputs[0];
    return a->n - 1;
}
