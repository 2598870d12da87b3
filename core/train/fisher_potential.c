/* BlockSwap's Fisher potential (Turner et al. 2020, section 3): the Fisher
 * pruning saliency of Theis et al. (2018), Delta_c = 1/(2N) sum_n (sum_hw
 * a_nchw g_nchw)^2, summed in |.| over the output channels of each residual
 * block's trunk and over the blocks (the authors' Pruner.go_fish on every
 * MaskBlock), at the network's current weights, from one minibatch. */
#include <math.h>
#include <stdlib.h>

#include <dlas/distil.h>
#include <dlas/saliency.h>
#include <dlas/status.h>
#include <dlas/train.h>

/* Sum over the block's channels of |Delta_c| (Delta_c >= 0 already; the
 * authors' code takes the absolute value all the same). */
static int block_saliency(const float *a, const float *g, int64_t n, int64_t c, int64_t hw,
                          double *out)
{
    double *delta = calloc((size_t)c, sizeof *delta);
    if (!delta)
        return dlas_error(DLAS_ERR_NOMEM, "fisher potential: out of memory");
    dlas_fisher_batch(a, g, n, c, hw, delta);
    double total = 0.0;
    for (int64_t k = 0; k < c; k++)
        total += fabs(delta[k]);
    free(delta);
    *out = total;
    return 0;
}

int dlas_fisher_potential(struct dlas_graph *g, const struct dlas_residual_block *blocks,
                          int n_blocks, int64_t n, const float *images, const int32_t *labels,
                          int threads, double *out)
{
    struct dlas_autograd *a = NULL;
    int rc = dlas_autograd_new(g, n, threads, &a);
    if (!rc)
        rc = dlas_fisher_potential_with(a, blocks, n_blocks, n, images, labels, out);
    dlas_autograd_free(a);
    return rc;
}

int dlas_fisher_potential_with(struct dlas_autograd *a, const struct dlas_residual_block *blocks,
                               int n_blocks, int64_t n, const float *images,
                               const int32_t *labels, double *out)
{
    struct dlas_graph *g = dlas_autograd_graph(a);
    if (!g)
        return dlas_error(DLAS_ERR_INVALID, "fisher potential: NULL autograd");
    int rc = DLAS_OK;
    int *probe = calloc((size_t)n_blocks, sizeof *probe);
    if (!rc && !probe)
        rc = dlas_error(DLAS_ERR_NOMEM, "fisher potential: out of memory");
    for (int b = 0; b < n_blocks && !rc; b++) {
        probe[b] = dlas_residual_block_probe(g, &blocks[b]);
        if (probe[b] < 0)
            rc = dlas_error(DLAS_ERR_INTERNAL, "fisher potential: no probe for block '%s'",
                            blocks[b].prefix);
        else
            rc = dlas_autograd_keep(a, probe[b]);
    }
    /* train mode, as the authors' net.train(): batch statistics */
    if (!rc)
        rc = dlas_autograd_forward(a, n, images,
                                   DLAS_AG_TRAIN | DLAS_AG_KEEP_STATS | DLAS_AG_ACT_GRAD_ONLY);
    if (!rc) {
        int lid = dlas_autograd_logits_node(a);
        const struct dlas_node *ln = dlas_graph_node(g, lid);
        float *dl = dlas_autograd_grad(a, lid);
        if (!dl)
            rc = dlas_last_status() ? dlas_last_status() : DLAS_ERR_INTERNAL;
        else
            dlas_loss_xent(dlas_autograd_act(a, lid), labels, n, ln->out_shape[0], 0.0, dl, 1.0);
    }
    if (!rc)
        rc = dlas_autograd_backward(a);
    double total = 0.0;
    for (int b = 0; b < n_blocks && !rc; b++) {
        const struct dlas_node *pn = dlas_graph_node(g, probe[b]);
        const float *act = dlas_autograd_act(a, probe[b]);
        const float *grad = dlas_autograd_has_grad(a, probe[b]) ? dlas_autograd_grad(a, probe[b])
                                                                  : NULL;
        if (!act || !grad) {
            rc = dlas_error(DLAS_ERR_INTERNAL, "fisher potential: no activation or gradient at '%s'",
                            pn->name);
            break;
        }
        double s = 0.0;
        rc = block_saliency(act, grad, n, pn->out_shape[0], pn->out_shape[1] * pn->out_shape[2], &s);
        total += s;
    }
    free(probe);
    if (!rc)
        *out = total;
    return rc;
}
