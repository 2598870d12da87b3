/* The tie analysis behind channel surgery: one union-find over every output
 * channel (or feature) of every node, joined wherever an operator reads a
 * channel of one tensor as a channel of another. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "surgery_ties.h"

int ties_depthwise(const struct dlas_graph *g, const struct dlas_node *n)
{
    if (n->op != DLAS_OP_CONV2D || n->attr.conv.groups <= 1)
        return 0;
    const struct dlas_node *x = dlas_graph_node(g, n->inputs[0]);
    return x && x->out_shape[0] == n->attr.conv.groups;
}

int ties_source(const struct dlas_graph *g, const struct dlas_node *n)
{
    return (n->op == DLAS_OP_CONV2D && !ties_depthwise(g, n)) || n->op == DLAS_OP_LINEAR;
}

int64_t ties_find(struct ties *t, int64_t s)
{
    while (t->parent[s] != s) {
        t->parent[s] = t->parent[t->parent[s]]; /* path halving */
        s = t->parent[s];
    }
    return s;
}

static void join(struct ties *t, int64_t a, int64_t b)
{
    a = ties_find(t, a);
    b = ties_find(t, b);
    /* the smaller slot becomes the root, so a class's root is its earliest
     * slot and results do not depend on the order of joins */
    if (a < b)
        t->parent[b] = a;
    else if (b < a)
        t->parent[a] = b;
}

void ties_free(struct ties *t)
{
    free(t->base);
    free(t->parent);
    free(t->blocker);
    memset(t, 0, sizeof *t);
}

int ties_build(const struct dlas_graph *g, struct ties *t)
{
    memset(t, 0, sizeof *t);
    const int nn = dlas_graph_n_nodes(g);
    t->n_nodes = nn;
    if (!(t->base = malloc(((size_t)nn + 1) * sizeof *t->base)))
        goto nomem;
    t->base[0] = 0;
    for (int i = 0; i < nn; i++)
        t->base[i + 1] = t->base[i] + dlas_graph_node(g, i)->out_shape[0];
    t->n_slots = t->base[nn];
    size_t ns = t->n_slots > 0 ? (size_t)t->n_slots : 1;
    if (!(t->parent = malloc(ns * sizeof *t->parent)) || !(t->blocker = malloc(ns * sizeof(int))))
        goto nomem;
    for (int64_t s = 0; s < t->n_slots; s++) {
        t->parent[s] = s;
        t->blocker[s] = -1;
    }

    for (int i = 0; i < nn; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        const int64_t w = ties_width(t, i);
        switch (n->op) {
        case DLAS_OP_BATCHNORM:
        case DLAS_OP_RELU:
        case DLAS_OP_RELU6:
        case DLAS_OP_MAXPOOL:
        case DLAS_OP_AVGPOOL:
        case DLAS_OP_GLOBAL_AVGPOOL:
        case DLAS_OP_DROPOUT:
        case DLAS_OP_SOFTMAX: /* tied, and the class is then blocked below */
        case DLAS_OP_ADD:
            for (int k = 0; k < n->n_inputs; k++)
                for (int64_t c = 0; c < w; c++)
                    join(t, ties_slot(t, i, c), ties_slot(t, n->inputs[k], c));
            break;
        case DLAS_OP_CONCAT: {
            int64_t off = 0;
            for (int k = 0; k < n->n_inputs; k++) {
                int64_t wk = ties_width(t, n->inputs[k]);
                for (int64_t c = 0; c < wk; c++)
                    join(t, ties_slot(t, i, off + c), ties_slot(t, n->inputs[k], c));
                off += wk;
            }
            break;
        }
        case DLAS_OP_FLATTEN: {
            const struct dlas_node *x = dlas_graph_node(g, n->inputs[0]);
            int64_t per = x->out_ndim == 3 ? x->out_shape[1] * x->out_shape[2] : 1;
            for (int64_t f = 0; f < w; f++)
                join(t, ties_slot(t, i, f), ties_slot(t, n->inputs[0], f / per));
            break;
        }
        case DLAS_OP_CONV2D:
            if (ties_depthwise(g, n)) {
                int64_t m = n->attr.conv.out_channels / n->attr.conv.groups;
                for (int64_t c = 0; c < w; c++)
                    join(t, ties_slot(t, i, c), ties_slot(t, n->inputs[0], c / m));
            }
            break;
        default: /* input, linear: fresh channels */
            break;
        }
    }

    for (int i = 0; i < nn; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_INPUT && n->op != DLAS_OP_SOFTMAX && i != nn - 1)
            continue;
        for (int64_t c = 0; c < ties_width(t, i); c++) {
            int64_t r = ties_find(t, ties_slot(t, i, c));
            if (t->blocker[r] < 0)
                t->blocker[r] = i;
        }
    }
    return DLAS_OK;
nomem:
    ties_free(t);
    return dlas_error(DLAS_ERR_NOMEM, "channel ties: out of memory");
}

const char *ties_block_reason(const struct dlas_graph *g, int blocker, char *buf, size_t len)
{
    const struct dlas_node *n = dlas_graph_node(g, blocker);
    if (!n)
        snprintf(buf, len, "node %d", blocker);
    else if (n->op == DLAS_OP_INPUT)
        snprintf(buf, len, "the network input '%s'", n->name);
    else if (n->op == DLAS_OP_SOFTMAX)
        snprintf(buf, len, "softmax '%s' (it normalises across channels)", n->name);
    else
        snprintf(buf, len, "the network output '%s'", n->name);
    return buf;
}
