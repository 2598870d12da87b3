/* Concatenations read in place. DenseNet concatenates every earlier
 * layer's output before each layer, and the only reader of each such
 * concatenation is a batchnorm: copying the whole concatenation for every
 * layer moves O(layers^2) activations (at batch 16, DenseNet-121's copies
 * took 14% of its forward). A concat whose every reader is a batchnorm
 * running on the plan's fast path is therefore left as a view: it has no
 * buffer, the batchnorms read each channel plane from the part that holds
 * it (plan_batchnorm), and the parts' buffers live until the view's last
 * reader ran. Results are bit for bit those of the copying plan: the same
 * arithmetic reads the same numbers from other addresses. */
#include <stdlib.h>

#include "plan_impl.h"

/* Batchnorm node k reads a view correctly only on the fast path: f32
 * parameters, its own buffer (it is not fused into a conv) and nothing
 * fused into the concat it reads. */
static int reads_views(const struct dlas_plan *p, int k)
{
    const struct dlas_node *b = dlas_graph_node(p->g, k);
    return b->op == DLAS_OP_BATCHNORM && b->n_inputs == 1 && p->root[k] == k &&
           plan_bn_f32(b);
}

static int can_be_view(const struct dlas_plan *p, int c)
{
    const struct dlas_node *nd = dlas_graph_node(p->g, c);
    if (nd->op != DLAS_OP_CONCAT || c == p->n - 1 || p->root[c] != c ||
        p->post[c] != PLAN_POST_NONE || nd->out_ndim != 3)
        return 0;
    for (int j = 0; j < nd->n_inputs; j++) {
        int r = p->root[nd->inputs[j]];
        if (p->view[r] || (p->u8 && p->u8[r]) || !plan_blocks_out_nchw(p, r))
            return 0; /* a part must be a plain NCHW float tensor */
    }
    int readers = 0;
    for (int k = c + 1; k < p->n; k++) {
        const struct dlas_node *u = dlas_graph_node(p->g, k);
        for (int j = 0; j < u->n_inputs; j++)
            if (u->inputs[j] == c) {
                if (!reads_views(p, k))
                    return 0;
                readers++;
            }
        if (p->root[k] == c)
            return 0; /* something shares the concat's buffer */
    }
    return readers > 0;
}

int plan_views_find(struct dlas_plan *p, const struct dlas_plan_options *opt)
{
    p->view = calloc((size_t)p->n, 1);
    if (!p->view)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (p->dev || !opt->fuse || opt->concat_copy)
        return DLAS_OK; /* a device backend runs its own concat */
    for (int c = 0; c < p->n; c++)
        p->view[c] = (unsigned char)can_be_view(p, c);
    return DLAS_OK;
}

void plan_views_extend_lifetimes(const struct dlas_plan *p, int *last_use)
{
    for (int c = 0; c < p->n; c++) {
        if (!p->view[c])
            continue;
        const struct dlas_node *nd = dlas_graph_node(p->g, c);
        for (int j = 0; j < nd->n_inputs; j++) {
            int r = p->root[nd->inputs[j]];
            if (last_use[r] < last_use[c])
                last_use[r] = last_use[c];
        }
    }
}

int plan_view_n_parts(const struct dlas_plan *p, int x)
{
    return p->view[x] ? dlas_graph_node(p->g, x)->n_inputs : 1;
}

void plan_view_parts(const struct dlas_plan *p, int x, const float *input,
                     struct plan_part *parts)
{
    const struct dlas_node *nd = dlas_graph_node(p->g, x);
    for (int j = 0; j < plan_view_n_parts(p, x); j++) {
        const int part = p->view[x] ? nd->inputs[j] : x;
        parts[j].data = p->slot[part] < 0 ? input : p->slots[p->slot[part]];
        parts[j].channels = dlas_graph_node(p->g, part)->out_shape[0];
    }
}

int plan_views_batchnorm(struct dlas_plan *p, int id, int64_t batch, const float *input,
                         float *out)
{
    const int x = dlas_graph_node(p->g, id)->inputs[0], n_parts = plan_view_n_parts(p, x);
    struct plan_part stack[64], *parts = stack;
    if (n_parts > 64 && !(parts = malloc((size_t)n_parts * sizeof *parts)))
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    plan_view_parts(p, x, input, parts);
    int rc = plan_batchnorm(p->g, id, batch, parts, n_parts, out, p->post[id], p->be);
    if (parts != stack)
        free(parts);
    return rc;
}
