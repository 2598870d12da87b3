/* A calibrated copy of a graph for agreement checks.
 *
 * An untrained network can hide a wrong convolution from an end-to-end
 * check: MobileNet-v2 initialised as torchvision does (Kaiming fan_out, so a
 * depthwise 3x3 filter's variance is 2/(9 C)) shrinks its activations by
 * about sqrt(2/C) a block, and with batchnorm at its initial statistics
 * (mean 0, variance 1: the identity) nothing restores them; by the
 * classifier the features are ~0 and the output is the classifier's bias,
 * whatever the convolutions computed. The copy made here sets every
 * batchnorm's running statistics to those of its input on the check batch
 * (data-dependent initialisation, as in LSUV: Mishkin & Matas, "All you need
 * is a good init", ICLR 2016), so that each block's output has unit
 * variance and every convolution shows in the output. The copy serves the
 * check only; the model that is measured is never changed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/graph.h>
#include <dlas/ops.h>
#include <dlas/quant.h>
#include <dlas/status.h>
#include <dlas/tensor.h>

#include "probe.h"

static int64_t numel(const struct dlas_node *n)
{
    int64_t k = 1;
    for (int d = 0; d < n->out_ndim; d++)
        k *= n->out_shape[d];
    return k;
}

int graph_needs_probe(const struct dlas_graph *g)
{
    int untrained = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (dlas_node_is_quantised(n))
            return 0; /* its scales were calibrated on the model as it is */
        if (n->op != DLAS_OP_BATCHNORM || !n->running_mean.data || !n->running_var.data)
            continue;
        const float *m = dlas_f32(&n->running_mean), *v = dlas_f32(&n->running_var);
        int64_t c = dlas_tensor_numel(&n->running_mean);
        int initial = 1;
        for (int64_t k = 0; k < c && initial; k++)
            initial = m[k] == 0.0f && v[k] == 1.0f;
        untrained |= initial;
    }
    return untrained;
}

/* Running statistics of a batchnorm from its input x (batch x C x plane).
 * With few values per channel (a 1x1 map at batch 1) a channel's own
 * variance means nothing: the layer's is used. A channel that is constant
 * keeps variance 1 rather than be blown up by 1/sqrt(eps). */
static void calibrate_bn(struct dlas_node *n, const float *x, int64_t batch, int64_t c,
                         int64_t plane)
{
    float *mean = dlas_f32(&n->running_mean), *var = dlas_f32(&n->running_var);
    int64_t per = batch * plane;
    double all_s = 0, all_q = 0;
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, q = 0;
        for (int64_t b = 0; b < batch; b++) {
            const float *p = x + (b * c + ch) * plane;
            for (int64_t k = 0; k < plane; k++) {
                s += p[k];
                q += (double)p[k] * p[k];
            }
        }
        all_s += s;
        all_q += q;
        double m = s / (double)per;
        mean[ch] = (float)m;
        var[ch] = (float)fmax(q / (double)per - m * m, 0.0);
    }
    double all_m = all_s / (double)(per * c);
    double all_v = fmax(all_q / (double)(per * c) - all_m * all_m, 0.0);
    for (int64_t ch = 0; ch < c; ch++) {
        if (per < 4) {
            mean[ch] = (float)all_m;
            var[ch] = (float)all_v;
        }
        if (!(var[ch] > 1e-6 * all_v) || !(var[ch] > 0))
            var[ch] = all_v > 0 ? (float)all_v : 1.0f;
    }
}

int graph_probe(const struct dlas_graph *g, const float *input, int64_t batch,
                struct dlas_graph **out)
{
    *out = NULL;
    struct dlas_graph *p = dlas_graph_clone(g);
    if (!p)
        return dlas_last_status() ? dlas_last_status() : DLAS_ERR_NOMEM;
    int n = dlas_graph_n_nodes(p), rc = DLAS_OK, max_in = 1;
    float **act = calloc((size_t)n, sizeof *act);
    int *last_use = malloc((size_t)n * sizeof *last_use);
    for (int i = 0; last_use && i < n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p, i);
        last_use[i] = i;
        if (nd->n_inputs > max_in)
            max_in = nd->n_inputs;
        for (int k = 0; k < nd->n_inputs; k++)
            last_use[nd->inputs[k]] = i;
    }
    const float **ins = malloc((size_t)max_in * sizeof *ins);
    if (!act || !last_use || !ins)
        rc = dlas_error(DLAS_ERR_NOMEM, "probe: out of memory");
    if (!rc)
        act[0] = (float *)input; /* borrowed */
    /* the forward, node by node, each batchnorm calibrated on its input
     * before it runs; the last node's output is not needed */
    for (int i = 1; !rc && i < n - 1; i++) {
        struct dlas_node *nd = dlas_graph_node(p, i);
        for (int k = 0; k < nd->n_inputs; k++)
            ins[k] = act[nd->inputs[k]];
        if (nd->op == DLAS_OP_BATCHNORM && nd->running_mean.data && nd->running_var.data) {
            const struct dlas_node *src = dlas_graph_node(p, nd->inputs[0]);
            int64_t plane = src->out_ndim == 3 ? src->out_shape[1] * src->out_shape[2] : 1;
            calibrate_bn(nd, ins[0], batch, src->out_shape[0], plane);
        }
        if (!(act[i] = dlas_aligned_alloc((size_t)(batch * numel(nd)) * sizeof(float))))
            rc = dlas_error(DLAS_ERR_NOMEM, "probe: out of memory");
        else
            rc = dlas_ref_node_forward(p, i, batch, ins, act[i]);
        for (int k = 0; k < nd->n_inputs; k++) {
            int j = nd->inputs[k];
            if (j != 0 && last_use[j] == i && act[j]) {
                dlas_aligned_free(act[j]);
                act[j] = NULL;
            }
        }
    }
    for (int i = 1; act && i < n; i++)
        dlas_aligned_free(act[i]);
    free(act);
    free(last_use);
    free(ins);
    if (rc) {
        dlas_graph_free(p);
        return rc;
    }
    *out = p;
    return DLAS_OK;
}
