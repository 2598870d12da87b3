/* A batchnorm applied by the conv that alone reads it, as that conv reads
 * its input (run_prologue, DLAS_PRIM_PROLOGUE).
 *
 * DenseNet runs batchnorm and relu over its whole concatenation before
 * every 1x1 conv (norm1, relu1, conv1). As a pass of its own the batchnorm
 * writes a map the size of the concatenation that only the conv reads. At
 * batch 1 on two threads it also splits the work differently from the convs
 * around it: by channels, where they split rows. So each thread reads the
 * half of every plane that the other core wrote, and writes half of what
 * the other will read. On the 2-vCPU VM with its vCPUs apart that made the
 * batchnorms 3.85 of DenseNet-121's 6.9 ms growth (bench/README-ort.md,
 * twenty-second stop). Applied by the conv, each thread transforms the
 * input rows that it computes, from the concatenation's parts where they
 * lie, into a scratch of its own: nothing is written for another thread,
 * and the map is never written at all.
 *
 * The results are bit for bit those of the separate pass: the same affine
 * map (plan_bn_coefficients, and ew_affine's arithmetic) gives the conv the
 * same numbers. */
#include <stdlib.h>

#include <dlas/quant.h>

#include "plan_impl.h"

int plan_prologue_bn(const struct dlas_graph *g, int c)
{
    const struct dlas_node *conv = dlas_graph_node(g, c);
    if (conv->op != DLAS_OP_CONV2D || conv->n_inputs != 1)
        return -1;
    int x = conv->inputs[0];
    const struct dlas_node *n = dlas_graph_node(g, x);
    if ((n->op == DLAS_OP_RELU || n->op == DLAS_OP_RELU6) && dlas_graph_n_consumers(g, x) == 1) {
        x = n->inputs[0];
        n = dlas_graph_node(g, x);
    }
    return n->op == DLAS_OP_BATCHNORM && n->n_inputs == 1 && n->out_ndim == 3 &&
                   dlas_graph_n_consumers(g, x) == 1
               ? x
               : -1;
}

/* The batchnorm conv c applies in this plan, or -1: the graph's
 * (plan_prologue_bn) with its relu folded into it and running on the
 * plan's fast path, its input a plain NCHW float map or a view, and c's
 * state one that takes a prologue. Not a quantised conv: its input is
 * quantised, or fake-quantised for an fp32 primitive, as a whole map
 * (plan_quant_run). */
static int prologue_of(const struct dlas_plan *p, int c)
{
    const int k = plan_prologue_bn(p->g, c);
    if (k < 0 || dlas_node_is_quantised(dlas_graph_node(p->g, c)) || p->root[k] != k || p->root[dlas_graph_node(p->g, c)->inputs[0]] != k ||
        (p->block_of && p->block_of[k] >= 0) || !plan_bn_f32(dlas_graph_node(p->g, k)) ||
        (p->u8 && p->u8[k]))
        return -1;
    const int x = p->root[dlas_graph_node(p->g, k)->inputs[0]];
    if (!p->view[x] && (!plan_blocks_out_nchw(p, x) || (p->u8 && p->u8[x])))
        return -1;
    const struct binding *b = &p->bind[c];
    const struct dlas_primitive_ops *ops = b->choice ? b->choice->comp->ops : NULL;
    if (!ops || b->in_block || b->int8 || b->residual >= 0 || b->pool_first >= 0 ||
        (p->block_of && p->block_of[c] >= 0) || !dlas_prim_runs_prologue(ops) ||
        !ops->takes_prologue(b->state))
        return -1;
    return k;
}

/* The affine map of batchnorm n as plan_batchnorm computes it. */
static int coefficients(const struct dlas_node *n, float **scale, float **shift)
{
    const int64_t C = n->out_shape[0];
    *scale = malloc((size_t)C * sizeof **scale);
    *shift = malloc((size_t)C * sizeof **shift);
    if (!*scale || !*shift)
        return dlas_error(DLAS_ERR_NOMEM, "plan: out of memory for batchnorm '%s'", n->name);
    plan_bn_coefficients(n, *scale, *shift);
    return DLAS_OK;
}

int plan_prologue_find(struct dlas_plan *p, const struct dlas_plan_options *opt)
{
    for (int i = 0; i < p->n; i++)
        p->bind[i].prologue = p->bind[i].prologue_into = -1;
    if (p->dev || !opt->fuse || opt->no_prologue)
        return DLAS_OK;
    /* Where the threads divide the batch, the pass gives each thread whole
     * images of its own, so no thread reads what another wrote and there is
     * nothing for the prologue to save; what is left is the conv's own
     * path, which lost there: DenseNet-121 at batch 16 took 1.02 of the
     * separate pass's time (5 of 6 rounds), against 0.94 at batch 1
     * (bench/README-ort.md, twenty-third stop). */
    const int t = plan_pass_threads(p->be);
    if (t > 1 && p->max_batch % t == 0)
        return DLAS_OK;
    for (int c = 0; c < p->n; c++) {
        const int k = prologue_of(p, c);
        if (k < 0)
            continue;
        struct binding *b = &p->bind[c];
        int rc = coefficients(dlas_graph_node(p->g, k), &b->pro_scale, &b->pro_shift);
        if (rc)
            return rc;
        b->prologue = k;
        p->bind[k].prologue_into = c;
    }
    return DLAS_OK;
}

void plan_prologue_extend_lifetimes(const struct dlas_plan *p, int *last_use)
{
    for (int c = 0; c < p->n; c++) {
        const int k = p->bind[c].prologue;
        if (k < 0)
            continue;
        const int x = p->root[dlas_graph_node(p->g, k)->inputs[0]];
        if (last_use[x] < c)
            last_use[x] = c;
    }
}

int plan_prologue_run(struct dlas_plan *p, int c, int64_t batch, const float *input,
                      float *out)
{
    const struct binding *b = &p->bind[c];
    const struct dlas_node *bn = dlas_graph_node(p->g, b->prologue);
    const int x = p->root[bn->inputs[0]];
    const int64_t C = bn->out_shape[0];
    /* the input's parts (a view's, or the map itself), then each channel's
     * plane in image 0 and the stride between images */
    const int n_parts = plan_view_n_parts(p, x);
    void *mem = malloc((size_t)n_parts * sizeof(struct plan_part) +
                       (size_t)C * (sizeof(float *) + sizeof(int64_t)));
    if (!mem)
        return dlas_error(DLAS_ERR_NOMEM, "plan: out of memory for layer '%s'",
                          dlas_graph_node(p->g, c)->name);
    struct plan_part *parts = mem;
    const float **chan = (const float **)(parts + n_parts);
    int64_t *bstride = (int64_t *)(chan + C);
    plan_view_parts(p, x, input, parts);
    int rc = plan_part_channels(bn, parts, n_parts, chan, bstride);
    const int post = p->post[b->prologue];
    struct dlas_conv_prologue pro = {chan, bstride, b->pro_scale, b->pro_shift,
                                     post == PLAN_POST_RELU    ? DLAS_ACT_RELU
                                     : post == PLAN_POST_RELU6 ? DLAS_ACT_RELU6
                                                               : DLAS_ACT_NONE};
    if (!rc)
        rc = ((const struct dlas_primitive_ops *)b->choice->comp->ops)
                 ->run_prologue(b->state, batch, &pro, out, p->ws, NULL);
    free(mem);
    return rc;
}
