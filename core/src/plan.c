/* The inference plan: bind each conv to a primitive once (its weights
 * transformed in prepare), give every activation a buffer slot reused after
 * its last consumer, and run the graph on a backend. */
#include <stdlib.h>
#include <string.h>

#include <dlas/plan.h>

#include "util.h"

struct binding {
    const struct dlas_primitive_choice *choice; /* NULL: core reference op */
    void *state;
    struct dlas_conv_desc desc;
};

struct dlas_plan {
    const struct dlas_graph *g;
    const struct dlas_host *host;
    const struct dlas_backend *be;
    int n;
    struct binding *bind;
    int *slot;      /* node -> buffer slot (-1 for the input node) */
    int n_slots;
    float **slots;
    size_t *slot_size; /* floats per slot */
    void *ws;
    size_t ws_size;
    int64_t max_batch;
    int n_fallbacks;
    struct dlas_buf fallbacks;
};

static int64_t node_numel(const struct dlas_node *n)
{
    int64_t e = 1;
    for (int i = 0; i < n->out_ndim; i++)
        e *= n->out_shape[i];
    return e;
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
    return dlas_conv_desc_finish(d);
}

static int bind_conv(struct dlas_plan *p, int id, const struct dlas_primitive_choice *prims,
                     int n_prims, const struct dlas_primitive_choice *fallback)
{
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    struct binding *b = &p->bind[id];
    int rc = conv_desc_of(p->g, id, p->max_batch, &b->desc);
    if (rc)
        return dlas_error_context("layer '%s'", n->name);
    struct dlas_buf why_all = {0};
    for (int k = 0; k < n_prims; k++) {
        const struct dlas_primitive_choice *c = &prims[k];
        const struct dlas_primitive_ops *ops = c->comp->ops;
        char why[512] = "";
        rc = ops->supports(&b->desc, c->params, why, sizeof why);
        if (rc) {
            dlas_buf_printf(&why_all, "%s%s: %s", why_all.len ? "; " : "", c->label,
                            why[0] ? why : dlas_status_name(rc));
            continue;
        }
        b->choice = c;
        break;
    }
    if (!b->choice && fallback) {
        const struct dlas_primitive_ops *ops = fallback->comp->ops;
        char why[512] = "";
        if (ops->supports(&b->desc, fallback->params, why, sizeof why) == DLAS_OK)
            b->choice = fallback;
        else
            dlas_buf_printf(&why_all, "; fallback %s: %s", fallback->label, why);
    }
    if (why_all.len) {
        p->n_fallbacks++;
        dlas_buf_printf(&p->fallbacks, "%s%s (%s) -> %s", p->fallbacks.len ? "; " : "", n->name,
                        why_all.s, b->choice ? b->choice->label : "ref");
    }
    dlas_buf_free(&why_all);
    if (!b->choice)
        return DLAS_OK;
    const struct dlas_primitive_ops *ops = b->choice->comp->ops;
    rc = ops->prepare(p->host, p->be, &b->desc, dlas_f32(&n->weight),
                      n->attr.conv.bias ? dlas_f32(&n->bias) : NULL, b->choice->params, &b->state);
    if (rc)
        return dlas_error_context("layer '%s': primitive '%s'", n->name, b->choice->label);
    size_t ws = ops->workspace(b->state, p->max_batch);
    if (ws > p->ws_size)
        p->ws_size = ws;
    return DLAS_OK;
}

/* Greedy slot assignment: a node's buffer is released after its last
 * consumer runs and reused by the next node that fits. */
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
        last_use[i] = i == n - 1 ? n : i; /* the output lives to the end */
    for (int i = 0; i < n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, i);
        for (int j = 0; j < nd->n_inputs; j++)
            if (last_use[nd->inputs[j]] < i)
                last_use[nd->inputs[j]] = i;
    }
    /* slot_free_at[s]: index of the node after which slot s is free */
    for (int i = 0; i < n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, i);
        if (nd->op == DLAS_OP_INPUT) {
            p->slot[i] = -1;
            continue;
        }
        size_t need = (size_t)(node_numel(nd) * p->max_batch);
        int best = -1;
        for (int s = 0; s < p->n_slots; s++)
            if (slot_free_at[s] < i && (best < 0 || p->slot_size[s] > p->slot_size[best]))
                best = s;
        if (best < 0)
            best = p->n_slots++;
        if (p->slot_size[best] < need)
            p->slot_size[best] = need;
        slot_free_at[best] = last_use[i];
        p->slot[i] = best;
    }
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

int dlas_plan_create(const struct dlas_graph *g, const struct dlas_host *host,
                     const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                     int n_prims, const struct dlas_primitive_choice *fallback,
                     int64_t max_batch, struct dlas_plan **out)
{
    *out = NULL;
    if (max_batch < 1)
        return dlas_error(DLAS_ERR_INVALID, "plan: batch must be >= 1");
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
    if (!p->bind) {
        free(p);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < p->n && !rc; i++) {
        const struct dlas_node *nd = dlas_graph_node(g, i);
        if (i > 0 && nd->op == DLAS_OP_INPUT)
            rc = dlas_error(DLAS_ERR_UNSUPPORTED, "plan: graphs with several inputs");
        else if (nd->op == DLAS_OP_CONV2D)
            rc = bind_conv(p, i, prims, n_prims, fallback);
    }
    if (!rc)
        rc = assign_slots(p);
    if (!rc && p->ws_size && !(p->ws = be->ops->alloc(be->ctx, p->ws_size)))
        rc = dlas_error(DLAS_ERR_NOMEM, "cannot allocate %zu bytes of workspace", p->ws_size);
    if (rc) {
        dlas_plan_free(p);
        return rc;
    }
    *out = p;
    return DLAS_OK;
}

void dlas_plan_free(struct dlas_plan *p)
{
    if (!p)
        return;
    for (int i = 0; p->bind && i < p->n; i++)
        if (p->bind[i].choice && p->bind[i].state)
            ((const struct dlas_primitive_ops *)p->bind[i].choice->comp->ops)
                ->release(p->bind[i].state);
    for (int s = 0; p->slots && s < p->n_slots; s++)
        if (p->slots[s])
            p->be->ops->free(p->be->ctx, p->slots[s]);
    if (p->ws)
        p->be->ops->free(p->be->ctx, p->ws);
    free(p->slots);
    free(p->slot);
    free(p->slot_size);
    free(p->bind);
    dlas_buf_free(&p->fallbacks);
    free(p);
}

int dlas_plan_run(struct dlas_plan *p, int64_t batch, const float *input, float *output)
{
    if (batch < 1 || batch > p->max_batch)
        return dlas_error(DLAS_ERR_INVALID, "plan: batch %lld outside 1..%lld", (long long)batch,
                          (long long)p->max_batch);
    const float *act_in[64];
    for (int i = 0; i < p->n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, i);
        if (nd->op == DLAS_OP_INPUT)
            continue;
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
            in[j] = p->slot[src] < 0 ? input : p->slots[p->slot[src]];
        }
        float *out = p->slots[p->slot[i]];
        int rc;
        const struct binding *b = &p->bind[i];
        if (b->choice) {
            const struct dlas_primitive_ops *ops = b->choice->comp->ops;
            rc = ops->run(b->state, batch, in[0], out, p->ws, NULL);
            if (rc)
                dlas_error_context("layer '%s': primitive '%s'", nd->name, b->choice->label);
        } else
            rc = dlas_ref_node_forward(p->g, i, batch, in, out);
        free(heap);
        if (rc)
            return rc;
    }
    int last = p->n - 1;
    const float *res = p->slot[last] < 0 ? input : p->slots[p->slot[last]];
    memcpy(output, res, (size_t)(node_numel(dlas_graph_node(p->g, last)) * batch) * sizeof(float));
    return p->be->ops->sync(p->be->ctx);
}

const char *dlas_plan_binding(const struct dlas_plan *p, int id)
{
    if (id < 0 || id >= p->n || !p->bind[id].choice)
        return "ref";
    return p->bind[id].choice->label;
}

int dlas_plan_n_fallbacks(const struct dlas_plan *p) { return p->n_fallbacks; }
const char *dlas_plan_fallbacks(const struct dlas_plan *p)
{
    return p->fallbacks.s ? p->fallbacks.s : "";
}

int64_t dlas_plan_output_numel(const struct dlas_plan *p)
{
    return node_numel(dlas_graph_node(p->g, p->n - 1));
}
