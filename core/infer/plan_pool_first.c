/* An average pool run before the 1x1 conv whose output it pools.
 *
 * DenseNet's transitions are batchnorm, relu, a 1x1 conv and a 2x2 average
 * pool: the conv computes a map of which the pool keeps a quarter. A 1x1
 * conv of stride 1 is the same affine map y = W x + b at every pixel, and
 * an average pool whose windows all lie inside the map gives each pixel of
 * a window the weight 1/(kh*kw), the weights summing to one, so
 * mean(W x + b) = W mean(x) + b: pooling the conv's input first and
 * convolving the pooled map gives the same output, bias included, for
 * 1/(kh*kw) of the conv's multiply-adds. DenseNet-121's three transitions
 * hold 11% of its multiply-adds; three quarters of that go. The pool then
 * reads the conv's input channels instead of its output ones (twice as many
 * in DenseNet): a pass over memory, against a quarter of a conv.
 *
 * The conv must apply nothing after its affine map (a relu does not commute
 * with the mean; a batchnorm folded into the conv is affine and does), be
 * fp32, and be read by the pool alone. The conv's layer description, which
 * its primitive is prepared, tuned and timed with (dlas_plan_conv_desc), is
 * the pooled one; the pool reports itself fused into the conv, whose time
 * includes it. Results are the same within float rounding. */
#include <dlas/quant.h>

#include "plan_impl.h"

/* The average pool that conv c can run before itself, or -1. */
static int pool_after(const struct dlas_plan *p, int c)
{
    const struct dlas_node *n = dlas_graph_node(p->g, c);
    const struct dlas_conv_attr *a = &n->attr.conv;
    if (n->op != DLAS_OP_CONV2D || p->root[c] != c || p->post[c] != PLAN_POST_NONE ||
        dlas_node_is_quantised(n) || n->weight.dtype != DLAS_F32 || a->kh != 1 || a->kw != 1 ||
        a->stride_h != 1 || a->stride_w != 1 || a->pad_h != 0 || a->pad_w != 0 ||
        dlas_graph_node(p->g, n->inputs[0])->out_ndim != 3)
        return -1;
    const int k = plan_sole_consumer(p->g, plan_tail(p, c), 1);
    return k >= 0 && p->root[k] == k && plan_avgpool_full(p->g, k) ? k : -1;
}

int plan_pool_first_find(struct dlas_plan *p, const struct dlas_plan_options *opt)
{
    if (p->dev || !opt->fuse || opt->no_pool_first)
        return DLAS_OK; /* a device backend runs the graph's own nodes */
    for (int c = 0; c < p->n; c++) {
        const int k = pool_after(p, c);
        if (k < 0)
            continue;
        p->bind[c].pool_first = k;
        p->post[c] = p->post[k]; /* a relu after the pool now follows the conv */
        p->post[k] = PLAN_POST_NONE;
        for (int x = 0; x < p->n; x++)
            if (p->root[x] == k)
                p->root[x] = c;
        const struct dlas_node *pool = dlas_graph_node(p->g, k);
        const struct dlas_node *in = dlas_graph_node(p->g, dlas_graph_node(p->g, c)->inputs[0]);
        const size_t need =
            (size_t)(in->out_shape[0] * pool->out_shape[1] * pool->out_shape[2] * p->max_batch);
        if (need > p->pool_size)
            p->pool_size = need;
    }
    return DLAS_OK;
}

int plan_pool_first_desc(const struct dlas_plan *p, int c, struct dlas_conv_desc *d)
{
    const struct dlas_node *pool = dlas_graph_node(p->g, p->bind[c].pool_first);
    d->in_h = pool->out_shape[1];
    d->in_w = pool->out_shape[2];
    return dlas_conv_desc_finish(d);
}

const float *plan_pool_first_input(struct dlas_plan *p, int c, int64_t batch, const float *in)
{
    const struct dlas_node *x = dlas_graph_node(p->g, dlas_graph_node(p->g, c)->inputs[0]);
    plan_avgpool_planes(p->g, p->bind[c].pool_first, batch * x->out_shape[0], in, p->pool_buf,
                        p->be);
    return p->pool_buf;
}
