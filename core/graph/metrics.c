/* Size and cost of a graph: parameters, non-zeros, MACs, bytes of weights and
 * peak activation memory. Counts come from the tensors actually held, so they
 * stay right after pruning or channel surgery. */
#include <stdlib.h>

#include <dlas/graph.h>
#include <dlas/status.h>

int64_t dlas_node_params(const struct dlas_graph *g, int id)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!n)
        return 0;
    /* BN running statistics are buffers, not parameters (as in PyTorch) */
    return dlas_tensor_numel(&n->weight) + dlas_tensor_numel(&n->bias);
}

int64_t dlas_node_nonzero(const struct dlas_graph *g, int id)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!n)
        return 0;
    return dlas_tensor_nnz(&n->weight) + dlas_tensor_nnz(&n->bias);
}

int64_t dlas_node_macs(const struct dlas_graph *g, int id)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!n)
        return 0;
    if (n->op == DLAS_OP_CONV2D) {
        const struct dlas_conv_attr *a = &n->attr.conv;
        const struct dlas_node *x = dlas_graph_node(g, n->inputs[0]);
        if (!x || a->groups < 1)
            return 0;
        return n->out_shape[0] * n->out_shape[1] * n->out_shape[2] *
               (x->out_shape[0] / a->groups) * a->kh * a->kw;
    }
    if (n->op == DLAS_OP_LINEAR) {
        const struct dlas_node *x = dlas_graph_node(g, n->inputs[0]);
        return x ? x->out_shape[0] * n->out_shape[0] : 0;
    }
    return 0;
}

static int64_t out_numel(const struct dlas_node *n)
{
    int64_t m = 1;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

int64_t dlas_node_flops(const struct dlas_graph *g, int id)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!n)
        return 0;
    const int64_t out = out_numel(n);
    switch (n->op) {
    case DLAS_OP_CONV2D:
        return 2 * dlas_node_macs(g, id) + (n->attr.conv.bias ? out : 0);
    case DLAS_OP_LINEAR:
        return 2 * dlas_node_macs(g, id) + (n->attr.linear.bias ? out : 0);
    case DLAS_OP_BATCHNORM:
        return 2 * out;
    case DLAS_OP_RELU:
    case DLAS_OP_RELU6:
    case DLAS_OP_ADD:
        return out;
    case DLAS_OP_MAXPOOL:
    case DLAS_OP_AVGPOOL:
        return out * n->attr.pool.kh * n->attr.pool.kw;
    case DLAS_OP_GLOBAL_AVGPOOL: {
        const struct dlas_node *x = dlas_graph_node(g, n->inputs[0]);
        return x ? out_numel(x) : 0;
    }
    case DLAS_OP_SOFTMAX:
        return 5 * out;
    default:
        return 0;
    }
}

int64_t dlas_graph_flops(const struct dlas_graph *g)
{
    int64_t f = 0;
    for (int i = 0, nn = dlas_graph_n_nodes(g); i < nn; i++)
        f += dlas_node_flops(g, i);
    return f;
}

int64_t dlas_node_weight_bytes(const struct dlas_graph *g, int id)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!n)
        return 0;
    return (int64_t)(dlas_tensor_bytes(&n->weight) + dlas_tensor_bytes(&n->bias) +
                     dlas_tensor_bytes(&n->running_mean) + dlas_tensor_bytes(&n->running_var));
}

int64_t dlas_graph_weight_bytes_of(const struct dlas_graph *g, enum dlas_dtype dtype)
{
    int64_t b = 0;
    for (int i = 0, nn = dlas_graph_n_nodes(g); i < nn; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        const struct dlas_tensor *t[4] = {&n->weight, &n->bias, &n->running_mean,
                                          &n->running_var};
        for (int k = 0; k < 4; k++)
            if (t[k]->data && t[k]->dtype == dtype)
                b += (int64_t)dlas_tensor_bytes(t[k]);
    }
    return b;
}

static int64_t out_bytes(const struct dlas_node *n)
{
    int64_t m = (int64_t)sizeof(float);
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

int dlas_graph_stats(const struct dlas_graph *g, struct dlas_graph_stats *s)
{
    if (!g || !s)
        return dlas_error(DLAS_ERR_INVALID, "graph stats: NULL %s", g ? "result" : "graph");
    const int nn = dlas_graph_n_nodes(g);
    int64_t params = 0, nonzero = 0, macs = 0, wbytes = 0;
    for (int i = 0; i < nn; i++) {
        params += dlas_node_params(g, i);
        nonzero += dlas_node_nonzero(g, i);
        macs += dlas_node_macs(g, i);
        wbytes += dlas_node_weight_bytes(g, i);
    }

    /* Run the nodes in order at batch 1 without in-place reuse: a node's
     * output is live from its computation until its last consumer has run
     * (the graph output stays live), and a node's inputs are still live
     * while it writes, so the peak is taken before they are released. */
    int64_t live = 0, peak = 0;
    int *last_use = malloc((nn > 0 ? (size_t)nn : 1) * sizeof *last_use);
    if (!last_use)
        return dlas_error(DLAS_ERR_NOMEM, "graph stats: out of memory");
    for (int i = 0; i < nn; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        last_use[i] = i;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && n->inputs[k] < i)
                last_use[n->inputs[k]] = i;
    }
    for (int i = 0; i < nn; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        live += out_bytes(n);
        if (live > peak)
            peak = live;
        for (int k = 0; k < n->n_inputs; k++) {
            int j = n->inputs[k];
            int seen = 0; /* add(x, x) releases x once */
            for (int q = 0; q < k; q++)
                seen |= n->inputs[q] == j;
            if (!seen && j >= 0 && j < i && last_use[j] == i)
                live -= out_bytes(dlas_graph_node(g, j));
        }
        if (last_use[i] == i && i != nn - 1)
            live -= out_bytes(n);
    }
    free(last_use);

    s->params = params;
    s->nonzero = nonzero;
    s->macs = macs;
    s->weight_bytes = wbytes;
    s->peak_activation_bytes = peak;
    return DLAS_OK;
}
