/* Compressor "quant-int8": post-training int8 quantisation (Jacob et al.,
 * CVPR 2018), with the calibration choices of HAGO (Jain et al., "Efficient
 * Execution of Quantized Deep Learning Models: A Compiler Approach", 2020).
 *
 * Steps, in the order the papers apply them:
 *   1. fold every batchnorm that alone consumes a conv into that conv
 *      (w' = w * gamma / sqrt(var + eps), b' = (b - mean) * that + beta), so
 *      that the weights quantised are the weights that run;
 *   2. choose the layers: every conv, except the first (and the last) when
 *      asked to keep them in fp32; linear layers stay fp32;
 *   3. weights: per output channel, symmetric, step = max|w| / 127; the
 *      weight tensor is rounded onto its grid in place (masks kept: a pruned
 *      weight is 0, which is on every grid);
 *   4. activations: per tensor, asymmetric uint8, from the input of each
 *      chosen conv over `batches` calibration batches of the training data
 *      (minmax, percentile or entropy; see calib.h), on the fp32 network;
 *   5. the steps and input parameters go into the graph (weight_scale,
 *      input_quant), where the plan, the reference forward and checkpoints
 *      find them (<dlas/quant.h>). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>
#include <dlas/quant.h>
#include <dlas/surgery.h>
#include <dlas/train.h>

#include "calib.h"

/* ---- 1. batchnorm folding ---------------------------------------------------- */

/* The batchnorm that alone consumes conv `id`, or -1. */
static int sole_bn(const struct dlas_graph *g, int id)
{
    int n = dlas_graph_n_nodes(g);
    if (dlas_graph_n_consumers(g, id) != 1)
        return -1;
    for (int k = id + 1; k < n; k++) {
        const struct dlas_node *c = dlas_graph_node(g, k);
        for (int j = 0; j < c->n_inputs; j++)
            if (c->inputs[j] == id)
                return c->op == DLAS_OP_BATCHNORM ? k : -1;
    }
    return -1;
}

/* Replace conv -> bn by one conv with the batchnorm folded in. */
static int fold_one(struct dlas_graph *g, int id, int bn_id)
{
    const struct dlas_node *c = dlas_graph_node(g, id), *bn = dlas_graph_node(g, bn_id);
    const struct dlas_node *x = dlas_graph_node(g, c->inputs[0]);
    struct dlas_graph *blk = dlas_graph_new();
    if (!blk)
        return dlas_last_status();
    struct dlas_conv_attr a = c->attr.conv;
    a.bias = 1;
    int in = dlas_graph_input(blk, "quant_int8_fold_input", (int)x->out_shape[0],
                              (int)x->out_shape[1], (int)x->out_shape[2]);
    int cv = dlas_graph_conv2d(blk, c->name, in, &a);
    int rc = dlas_graph_status(blk);
    if (!rc) {
        struct dlas_node *nc = dlas_graph_node(blk, cv);
        const int64_t oc = a.out_channels, per = dlas_tensor_numel(&c->weight) / oc;
        const float *w = dlas_f32(&c->weight), *b = c->attr.conv.bias ? dlas_f32(&c->bias) : NULL;
        const float *gam = dlas_f32(&bn->weight), *bet = dlas_f32(&bn->bias);
        const float *mean = dlas_f32(&bn->running_mean), *var = dlas_f32(&bn->running_var);
        float *nw = dlas_f32(&nc->weight), *nb = dlas_f32(&nc->bias);
        for (int64_t o = 0; o < oc; o++) {
            double s = gam[o] / sqrt((double)var[o] + (double)bn->attr.bn.eps);
            for (int64_t k = 0; k < per; k++)
                nw[o * per + k] = (float)(w[o * per + k] * s);
            nb[o] = (float)(((b ? b[o] : 0.0) - mean[o]) * s + bet[o]);
        }
        if (c->weight.mask) {
            if (!(rc = dlas_tensor_mask_ensure(&nc->weight))) {
                memcpy(nc->weight.mask, c->weight.mask, (size_t)(oc * per));
                dlas_tensor_mask_apply(&nc->weight);
            }
        }
    }
    if (!rc) {
        char from[DLAS_NAME_MAX], to[DLAS_NAME_MAX];
        snprintf(from, sizeof from, "%s", x->name);
        snprintf(to, sizeof to, "%s", bn->name);
        rc = dlas_graph_replace_block_graph(g, from, to, blk);
    }
    dlas_graph_free(blk);
    return rc;
}

static int fold_batchnorms(struct dlas_graph *g, int *folded)
{
    *folded = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        const struct dlas_node *c = dlas_graph_node(g, id);
        if (c->op != DLAS_OP_CONV2D || dlas_node_is_quantised(c))
            continue;
        int bn = sole_bn(g, id);
        if (bn < 0)
            continue;
        const struct dlas_node *b = dlas_graph_node(g, bn);
        if (c->weight.dtype != DLAS_F32 || !b->running_var.data)
            continue;
        int rc = fold_one(g, id, bn);
        if (rc)
            return dlas_error_context("quant-int8: folding '%s' into '%s'", b->name, c->name);
        (*folded)++;
        id = -1; /* ids moved: scan again (a network has few enough nodes) */
    }
    return DLAS_OK;
}

/* ---- 2-3. layers and weights ------------------------------------------------- */

struct layer {
    int id;     /* conv node */
    int tensor; /* index into the calibrated tensors */
};

static int choose_layers(const struct dlas_graph *g, int skip_first, int skip_last,
                         struct layer *out, int *n_out)
{
    int n = dlas_graph_n_nodes(g), first = -1, last = -1, m = 0;
    for (int id = 0; id < n; id++)
        if (dlas_graph_node(g, id)->op == DLAS_OP_CONV2D) {
            if (first < 0)
                first = id;
            last = id;
        }
    for (int id = 0; id < n; id++) {
        const struct dlas_node *c = dlas_graph_node(g, id);
        if (c->op != DLAS_OP_CONV2D || c->weight.dtype != DLAS_F32 ||
            (skip_first && id == first) || (skip_last && id == last))
            continue;
        out[m].id = id;
        out[m].tensor = -1;
        m++;
    }
    *n_out = m;
    return DLAS_OK;
}

static int quantise_weights(const struct dlas_host *host, struct dlas_node *c, float **steps)
{
    const int64_t oc = c->attr.conv.out_channels, per = dlas_tensor_numel(&c->weight) / oc;
    *steps = host->alloc((size_t)oc * sizeof(float));
    if (!*steps)
        return dlas_error(DLAS_ERR_NOMEM, "quant-int8: out of memory");
    dlas_weight_steps(dlas_f32(&c->weight), oc, per, *steps);
    dlas_weight_round(dlas_f32(&c->weight), oc, per, *steps);
    dlas_tensor_mask_apply(&c->weight);
    return DLAS_OK;
}

/* ---- 4. calibration -------------------------------------------------------------- */

struct calib_run {
    const struct dlas_host *host;
    struct dlas_graph *g;
    struct dlas_data *data; /* NULL: gaussian inputs */
    int64_t batches, batch;
    int c, h, w;
    int n_tensors;
    int *tensor_node;       /* node id of each calibrated tensor */
    struct calib *cal;
};

/* One forward per calibration batch; pass 1 finds the extremes, pass 2 fills
 * the histograms. */
static int calib_pass(struct calib_run *r, int pass)
{
    struct dlas_autograd *a = NULL;
    const int64_t per = (int64_t)r->c * r->h * r->w;
    float *x = r->host->alloc((size_t)(per * r->batch) * sizeof(float));
    if (!x)
        return dlas_error(DLAS_ERR_NOMEM, "quant-int8: out of memory");
    int rc = dlas_autograd_new(r->g, r->batch, 0, &a);
    for (int t = 0; t < r->n_tensors && !rc; t++)
        rc = dlas_autograd_keep(a, r->tensor_node[t]);
    /* the same samples in both passes */
    struct dlas_rng rng = dlas_rng_derive(r->host->rng, 0x9a11b);
    int64_t avail = r->data ? dlas_data_size(r->data, DLAS_DATA_TRAIN) : 0;
    for (int64_t b = 0; b < r->batches && !rc; b++) {
        int64_t n = r->batch;
        if (r->data) {
            int64_t first = b * r->batch;
            if (first >= avail)
                break;
            if (first + n > avail)
                n = avail - first;
            rc = dlas_data_read(r->data, DLAS_DATA_TRAIN, first, n, x, NULL);
        } else {
            for (int64_t i = 0; i < n * per; i++)
                x[i] = dlas_rng_normal(&rng);
        }
        if (!rc)
            rc = dlas_autograd_forward(a, n, x, DLAS_AG_NO_GRAD);
        for (int t = 0; t < r->n_tensors && !rc; t++) {
            const struct dlas_node *nd = dlas_graph_node(r->g, r->tensor_node[t]);
            int64_t numel = nd->out_shape[0] * nd->out_shape[1] * nd->out_shape[2] * n;
            const float *act = r->tensor_node[t] == 0 ? x : dlas_autograd_act(a, r->tensor_node[t]);
            if (!act) {
                rc = dlas_error(DLAS_ERR_INTERNAL, "quant-int8: no activation of '%s'",
                                nd->name);
                break;
            }
            if (pass == 1)
                calib_observe_range(&r->cal[t], act, numel);
            else
                calib_observe_hist(&r->cal[t], act, numel);
        }
    }
    dlas_autograd_free(a);
    r->host->free(x);
    return rc;
}

static const char *const methods[] = {"minmax", "percentile", "entropy"};

static int method_of(const char *s, enum calib_method *m)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, methods[i])) {
            *m = (enum calib_method)i;
            return DLAS_OK;
        }
    return dlas_error(DLAS_ERR_INVALID, "quant-int8: calibration = \"%s\" is not one of "
                      "minmax, percentile, entropy", s ? s : "(null)");
}

/* ---- apply ---------------------------------------------------------------------- */

static int qi_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    if (!ctx || !ctx->graph || !ctx->host)
        return dlas_error(DLAS_ERR_INVALID, "quant-int8: no graph or host in the context");
    const struct dlas_host *host = ctx->host;
    struct dlas_graph *g = ctx->graph;
    enum calib_method method = CALIB_ENTROPY;
    int rc = method_of(p ? dlas_param_str(p, "calibration") : "entropy", &method);
    if (rc)
        return rc;
    double percentile = p ? dlas_param_float(p, "percentile") : 99.99;
    int64_t batches = p ? dlas_param_int(p, "batches") : 8, batch = p ? dlas_param_int(p, "batch") : 64;
    int skip_first = p ? dlas_param_bool(p, "skip_first") : 1;
    int skip_last = p ? dlas_param_bool(p, "skip_last") : 0;
    const char *source = p ? dlas_param_str(p, "data") : "train";
    struct dlas_data *data = ctx->size >= offsetof(struct dlas_compress_ctx, data) + sizeof ctx->data
                                 ? ctx->data
                                 : NULL;
    int gaussian = source && !strcmp(source, "gaussian");
    if (!gaussian && !data)
        return dlas_error(DLAS_ERR_INVALID,
                          "quant-int8: calibration needs the training data, which the "
                          "experiment provides only when it trains (train.epochs > 0); for "
                          "timing studies only, data = \"gaussian\" calibrates on N(0,1) inputs");
    if (!(percentile > 50.0 && percentile <= 100.0))
        return dlas_error(DLAS_ERR_INVALID, "quant-int8: percentile = %g is outside (50, 100]",
                          percentile);
    if (dlas_graph_n_nodes(g) < 1 || dlas_graph_node(g, 0)->op != DLAS_OP_INPUT)
        return dlas_error(DLAS_ERR_INVALID, "quant-int8: the graph has no input node");

    int folded;
    if ((rc = fold_batchnorms(g, &folded)))
        return rc;
    int nn = dlas_graph_n_nodes(g), n_layers = 0;
    struct layer *layers = host->alloc((size_t)nn * sizeof *layers);
    int *tensor_node = host->alloc((size_t)nn * sizeof *tensor_node);
    struct calib *cal = host->alloc((size_t)nn * sizeof *cal);
    float **steps = host->alloc((size_t)nn * sizeof *steps);
    if (!layers || !tensor_node || !cal || !steps) {
        rc = dlas_error(DLAS_ERR_NOMEM, "quant-int8: out of memory");
        goto out;
    }
    choose_layers(g, skip_first, skip_last, layers, &n_layers);
    /* one calibrated tensor per distinct conv input: a block's first conv
     * and its downsampling shortcut read one tensor and share its uint8 form */
    int n_tensors = 0;
    for (int l = 0; l < n_layers; l++) {
        int src = dlas_graph_node(g, layers[l].id)->inputs[0], t = 0;
        while (t < n_tensors && tensor_node[t] != src)
            t++;
        if (t == n_tensors) {
            tensor_node[n_tensors] = src;
            calib_init(&cal[n_tensors++]);
        }
        layers[l].tensor = t;
    }
    for (int l = 0; l < n_layers && !rc; l++)
        rc = quantise_weights(host, dlas_graph_node(g, layers[l].id), &steps[l]);
    const struct dlas_node *in = dlas_graph_node(g, 0);
    struct calib_run run = {host,
                            g,
                            gaussian ? NULL : data,
                            batches,
                            batch,
                            (int)in->out_shape[0],
                            (int)in->out_shape[1],
                            (int)in->out_shape[2],
                            n_tensors,
                            tensor_node,
                            cal};
    if (!rc && n_tensors)
        rc = calib_pass(&run, 1);
    if (!rc && n_tensors && method != CALIB_MINMAX) {
        for (int t = 0; t < n_tensors; t++)
            calib_begin_hist(&cal[t], method);
        rc = calib_pass(&run, 2);
    }
    for (int l = 0; l < n_layers && !rc; l++) {
        struct dlas_node *c = dlas_graph_node(g, layers[l].id);
        float lo, hi;
        struct dlas_act_quant q;
        calib_range(&cal[layers[l].tensor], method, percentile, &lo, &hi);
        if (!(rc = dlas_act_quant_from_range(lo, hi, &q)))
            rc = dlas_node_set_quant(c, steps[l], &q);
        if (!rc)
            host->log(DLAS_LOG_DEBUG,
                      "quant-int8: %s: input range [%g, %g] (seen [%g, %g]), scale %g, zero "
                      "point %d",
                      c->name, (double)lo, (double)hi, cal[layers[l].tensor].min,
                      cal[layers[l].tensor].max, (double)q.scale, (int)q.zero_point);
    }
    if (!rc)
        rc = dlas_graph_validate(g);
    if (!rc) {
        host->log(DLAS_LOG_INFO,
                  "quant-int8: %d batchnorms folded, %d of the convs int8 (%s calibration on "
                  "%lld batches of %lld %s)",
                  folded, n_layers, methods[method], (long long)batches, (long long)batch,
                  gaussian ? "N(0,1) inputs" : "training samples");
        if (ctx->report &&
            ((rc = dlas_report_num(ctx->report, "quant_int8.layers", n_layers)) ||
             (rc = dlas_report_num(ctx->report, "quant_int8.bn_folded", folded))))
            goto out;
    }
out:
    for (int l = 0; steps && l < n_layers; l++)
        host->free(steps[l]);
    host->free(steps);
    host->free(cal);
    host->free(tensor_node);
    host->free(layers);
    return rc;
}

static const struct dlas_param_spec qi_params[] = {
    {"calibration", DLAS_PARAM_ENUM, 0, "entropy", 0, 0, "minmax|percentile|entropy",
     "how an activation's range is chosen from the calibration data: its extremes, its "
     "percentiles, or the clipping that minimises the KL divergence (TensorRT)"},
    {"percentile", DLAS_PARAM_FLOAT, 0, "99.99", 50.0, 100.0, NULL,
     "calibration = percentile: the percentile kept on each side"},
    {"batches", DLAS_PARAM_INT, 0, "8", 1, 100000, NULL, "calibration batches"},
    {"batch", DLAS_PARAM_INT, 0, "64", 1, 65536, NULL, "samples per calibration batch"},
    {"skip_first", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "keep the first conv in fp32 (its few input channels gain little from int8)"},
    {"skip_last", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "keep the last conv in fp32 (linear layers always stay fp32)"},
    {"data", DLAS_PARAM_ENUM, 0, "train", 0, 0, "train|gaussian",
     "calibration inputs: the experiment's training split (needs train.epochs > 0), or "
     "N(0,1) noise for timing studies whose accuracy does not matter"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops qi_ops = {sizeof(struct dlas_compressor_ops), qi_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "quant-int8",
     "post-training int8 quantisation: per-channel weights, calibrated uint8 activations",
     "B. Jacob et al. Quantization and Training of Neural Networks for Efficient "
     "Integer-Arithmetic-Only Inference. CVPR 2018 (arXiv:1712.05877); calibration as HAGO: "
     "A. Jain et al. Efficient Execution of Quantized Deep Learning Models: A Compiler "
     "Approach. arXiv:2006.10226",
     qi_params, &qi_ops},
};

DLAS_PLUGIN("quant-int8", "0.1.0", "int8 post-training quantisation", components)
