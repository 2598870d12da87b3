/* Reference operators: the oracle every primitive is compared with, so they
 * favour plain loops and double accumulation over speed. Pooling follows
 * PyTorch's CPU kernels exactly (window clipping, divisors, NaN handling). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <dlas/ops.h>
#include <dlas/quant.h>
#include <dlas/status.h>

void dlas_ref_conv2d(const struct dlas_conv_desc *d, int64_t batch, const float *in,
                     const float *weight, const float *bias, float *out)
{
    const int64_t icg = d->in_c / d->groups, ocg = d->out_c / d->groups;
    const int64_t ksize = icg * d->kh * d->kw;
    /* Each output element is summed by one thread in a fixed order, so the
     * oracle stays deterministic; threads only make big parity models bearable. */
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int64_t n = 0; n < batch; n++)
        for (int64_t oc = 0; oc < d->out_c; oc++) {
            const int64_t grp = oc / ocg;
            const float *w = weight + oc * ksize;
            const float *x = in + (n * d->in_c + grp * icg) * d->in_h * d->in_w;
            float *y = out + (n * d->out_c + oc) * d->out_h * d->out_w;
            for (int64_t oh = 0; oh < d->out_h; oh++)
                for (int64_t ow = 0; ow < d->out_w; ow++) {
                    double acc = bias ? (double)bias[oc] : 0.0;
                    for (int64_t ic = 0; ic < icg; ic++)
                        for (int ky = 0; ky < d->kh; ky++) {
                            int64_t ih = oh * d->stride_h - d->pad_h + (int64_t)ky * d->dil_h;
                            if (ih < 0 || ih >= d->in_h)
                                continue;
                            for (int kx = 0; kx < d->kw; kx++) {
                                int64_t iw =
                                    ow * d->stride_w - d->pad_w + (int64_t)kx * d->dil_w;
                                if (iw < 0 || iw >= d->in_w)
                                    continue;
                                acc += (double)x[(ic * d->in_h + ih) * d->in_w + iw] *
                                       (double)w[(ic * d->kh + ky) * d->kw + kx];
                            }
                        }
                    float v = (float)acc;
                    if (d->activation == DLAS_ACT_RELU || d->activation == DLAS_ACT_RELU6)
                        v = v < 0.0f ? 0.0f : v; /* NaN kept, as torch.relu */
                    if (d->activation == DLAS_ACT_RELU6 && v > 6.0f)
                        v = 6.0f;
                    y[oh * d->out_w + ow] = v;
                }
        }
}

static int64_t numel(const struct dlas_node *n)
{
    int64_t m = 1;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

static void maxpool(const struct dlas_node *x, const struct dlas_node *n, int64_t batch,
                    const float *in, float *out)
{
    const struct dlas_pool_attr *a = &n->attr.pool;
    const int64_t C = x->out_shape[0], IH = x->out_shape[1], IW = x->out_shape[2];
    const int64_t OH = n->out_shape[1], OW = n->out_shape[2];
    for (int64_t p = 0; p < batch * C; p++) {
        const float *xp = in + p * IH * IW;
        float *yp = out + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = oh * a->stride_h - a->pad_h, w0 = ow * a->stride_w - a->pad_w;
                int64_t h1 = h0 + a->kh < IH ? h0 + a->kh : IH;
                int64_t w1 = w0 + a->kw < IW ? w0 + a->kw : IW;
                float m = -INFINITY;
                for (int64_t ih = h0 < 0 ? 0 : h0; ih < h1; ih++)
                    for (int64_t iw = w0 < 0 ? 0 : w0; iw < w1; iw++) {
                        float v = xp[ih * IW + iw];
                        if (v > m || isnan(v)) /* NaN wins, as in PyTorch */
                            m = v;
                    }
                yp[oh * OW + ow] = m;
            }
    }
}

static void avgpool(const struct dlas_node *x, const struct dlas_node *n, int64_t batch,
                    const float *in, float *out)
{
    const struct dlas_pool_attr *a = &n->attr.pool;
    const int64_t C = x->out_shape[0], IH = x->out_shape[1], IW = x->out_shape[2];
    const int64_t OH = n->out_shape[1], OW = n->out_shape[2];
    for (int64_t p = 0; p < batch * C; p++) {
        const float *xp = in + p * IH * IW;
        float *yp = out + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                /* The padded window is clipped at the far padding edge (a
                 * ceil_mode window may overhang it), then at the input. */
                int64_t h0 = oh * a->stride_h - a->pad_h, w0 = ow * a->stride_w - a->pad_w;
                int64_t h1 = h0 + a->kh < IH + a->pad_h ? h0 + a->kh : IH + a->pad_h;
                int64_t w1 = w0 + a->kw < IW + a->pad_w ? w0 + a->kw : IW + a->pad_w;
                int64_t pool_size = (h1 - h0) * (w1 - w0);
                h0 = h0 < 0 ? 0 : h0;
                w0 = w0 < 0 ? 0 : w0;
                h1 = h1 < IH ? h1 : IH;
                w1 = w1 < IW ? w1 : IW;
                if (h0 >= h1 || w0 >= w1) {
                    yp[oh * OW + ow] = 0.0f;
                    continue;
                }
                double sum = 0.0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++)
                        sum += xp[ih * IW + iw];
                int64_t div = a->count_include_pad ? pool_size : (h1 - h0) * (w1 - w0);
                yp[oh * OW + ow] = (float)(sum / (double)div);
            }
    }
}

/* Softmax over channels (features for a flat input) at every position. */
static void softmax(const struct dlas_node *n, int64_t batch, const float *in, float *out)
{
    const int64_t C = n->out_shape[0], S = numel(n) / C;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t s = 0; s < S; s++) {
            const float *x = in + b * C * S + s;
            float *y = out + b * C * S + s;
            double m = -INFINITY, sum = 0.0;
            for (int64_t c = 0; c < C; c++)
                if (x[c * S] > m || isnan(x[c * S]))
                    m = x[c * S];
            for (int64_t c = 0; c < C; c++)
                sum += exp((double)x[c * S] - m);
            for (int64_t c = 0; c < C; c++)
                y[c * S] = (float)(exp((double)x[c * S] - m) / sum);
        }
}

static int param_f32(const struct dlas_node *n, const struct dlas_tensor *t, const char *what,
                     int required)
{
    if (!t->data) {
        if (required)
            return dlas_error(DLAS_ERR_INVALID, "%s '%s': %s is missing", dlas_op_name(n->op),
                              n->name, what);
        return DLAS_OK;
    }
    if (t->dtype != DLAS_F32)
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "%s '%s': the reference operator needs an f32 %s, not %s",
                          dlas_op_name(n->op), n->name, what, dlas_dtype_name(t->dtype));
    return DLAS_OK;
}

int dlas_ref_node_forward(const struct dlas_graph *g, int id, int64_t batch,
                          const float *const *in, float *out)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!n)
        return dlas_error(DLAS_ERR_INVALID, "ref forward: no node %d", id);
    if (n->op == DLAS_OP_INPUT)
        return dlas_error(DLAS_ERR_INVALID, "ref forward: '%s' is the input node", n->name);
    if (batch < 0 || !out || (n->n_inputs && !in))
        return dlas_error(DLAS_ERR_INVALID, "ref forward '%s': bad batch or buffers", n->name);
    for (int k = 0; k < n->n_inputs; k++)
        if (!in[k] || !dlas_graph_node(g, n->inputs[k]))
            return dlas_error(DLAS_ERR_INVALID, "ref forward '%s': input %d is missing",
                              n->name, k);
    const struct dlas_node *x = dlas_graph_node(g, n->inputs[0]);
    const int64_t m = numel(n), total = batch * m;
    int rc;

    switch (n->op) {
    case DLAS_OP_CONV2D: {
        const struct dlas_conv_attr *a = &n->attr.conv;
        if ((rc = param_f32(n, &n->weight, "weight", 1)) ||
            (rc = param_f32(n, &n->bias, "bias", a->bias)))
            return rc;
        struct dlas_conv_desc d = {
            .batch = batch, .in_c = x->out_shape[0], .in_h = x->out_shape[1],
            .in_w = x->out_shape[2], .out_c = a->out_channels, .kh = a->kh, .kw = a->kw,
            .stride_h = a->stride_h, .stride_w = a->stride_w, .pad_h = a->pad_h,
            .pad_w = a->pad_w, .dil_h = a->dil_h, .dil_w = a->dil_w, .groups = a->groups,
            .has_bias = a->bias};
        if ((rc = dlas_conv_desc_finish(&d)))
            return dlas_error_context("ref forward '%s'", n->name);
        const float *src = in[0];
        float *fq = NULL;
        if (dlas_node_is_quantised(n)) { /* int8 layer: the fake-quantised input */
            struct dlas_act_quant q;
            int64_t numel = batch * d.in_c * d.in_h * d.in_w;
            if ((rc = dlas_node_input_quant(n, &q)))
                return dlas_error_context("ref forward '%s'", n->name);
            if (!(fq = dlas_aligned_alloc((size_t)numel * sizeof *fq)))
                return dlas_error(DLAS_ERR_NOMEM, "ref forward '%s': out of memory", n->name);
            dlas_fake_quant(src, numel, &q, fq);
            src = fq;
        }
        dlas_ref_conv2d(&d, batch, src, dlas_f32(&n->weight),
                        a->bias ? dlas_f32(&n->bias) : NULL, out);
        dlas_aligned_free(fq);
        return DLAS_OK;
    }
    case DLAS_OP_BATCHNORM: {
        if ((rc = param_f32(n, &n->weight, "weight", 1)) ||
            (rc = param_f32(n, &n->bias, "bias", 1)) ||
            (rc = param_f32(n, &n->running_mean, "running_mean", 1)) ||
            (rc = param_f32(n, &n->running_var, "running_var", 1)))
            return rc;
        const float *gam = dlas_f32(&n->weight), *bet = dlas_f32(&n->bias);
        const float *mean = dlas_f32(&n->running_mean), *var = dlas_f32(&n->running_var);
        const int64_t C = n->out_shape[0], S = m / C;
        for (int64_t b = 0; b < batch; b++)
            for (int64_t c = 0; c < C; c++) {
                double inv = 1.0 / sqrt((double)var[c] + (double)n->attr.bn.eps);
                const float *xp = in[0] + (b * C + c) * S;
                float *yp = out + (b * C + c) * S;
                for (int64_t s = 0; s < S; s++)
                    yp[s] = (float)(((double)xp[s] - mean[c]) * inv * gam[c] + bet[c]);
            }
        return DLAS_OK;
    }
    case DLAS_OP_RELU:
        for (int64_t i = 0; i < total; i++)
            out[i] = in[0][i] < 0.0f ? 0.0f : in[0][i]; /* keeps NaN, as torch.relu */
        return DLAS_OK;
    case DLAS_OP_RELU6:
        for (int64_t i = 0; i < total; i++) {
            float v = in[0][i];
            out[i] = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
        }
        return DLAS_OK;
    case DLAS_OP_MAXPOOL:
        maxpool(x, n, batch, in[0], out);
        return DLAS_OK;
    case DLAS_OP_AVGPOOL:
        avgpool(x, n, batch, in[0], out);
        return DLAS_OK;
    case DLAS_OP_GLOBAL_AVGPOOL: {
        const int64_t S = x->out_shape[1] * x->out_shape[2];
        for (int64_t p = 0; p < batch * x->out_shape[0]; p++) {
            double sum = 0.0;
            for (int64_t s = 0; s < S; s++)
                sum += in[0][p * S + s];
            out[p] = (float)(sum / (double)S);
        }
        return DLAS_OK;
    }
    case DLAS_OP_LINEAR: {
        if ((rc = param_f32(n, &n->weight, "weight", 1)) ||
            (rc = param_f32(n, &n->bias, "bias", n->attr.linear.bias)))
            return rc;
        const int64_t I = x->out_shape[0], O = m;
        const float *w = dlas_f32(&n->weight);
        const float *bias = n->attr.linear.bias ? dlas_f32(&n->bias) : NULL;
        for (int64_t b = 0; b < batch; b++)
            for (int64_t o = 0; o < O; o++) {
                double acc = bias ? (double)bias[o] : 0.0;
                for (int64_t i = 0; i < I; i++)
                    acc += (double)w[o * I + i] * (double)in[0][b * I + i];
                out[b * O + o] = (float)acc;
            }
        return DLAS_OK;
    }
    case DLAS_OP_ADD:
        for (int64_t i = 0; i < total; i++)
            out[i] = in[0][i] + in[1][i];
        return DLAS_OK;
    case DLAS_OP_CONCAT:
        /* per sample, the inputs' C x H x W blocks follow one another */
        for (int64_t b = 0; b < batch; b++) {
            float *y = out + b * m;
            for (int k = 0; k < n->n_inputs; k++) {
                int64_t mk = numel(dlas_graph_node(g, n->inputs[k]));
                memcpy(y, in[k] + b * mk, (size_t)mk * sizeof *y);
                y += mk;
            }
        }
        return DLAS_OK;
    case DLAS_OP_FLATTEN:
    case DLAS_OP_DROPOUT: /* identity at inference */
        if (out != in[0])
            memmove(out, in[0], (size_t)total * sizeof *out);
        return DLAS_OK;
    case DLAS_OP_SOFTMAX:
        softmax(n, batch, in[0], out);
        return DLAS_OK;
    default:
        break;
    }
    return dlas_error(DLAS_ERR_UNSUPPORTED, "ref forward '%s': no reference for op %s", n->name,
                      dlas_op_name(n->op));
}

/* Any NaN, or an infinity not matched exactly, makes the error infinite so a
 * comparison can never pass by accident. */
double dlas_rel_error(const float *a, const float *b, int64_t n)
{
    double maxdiff = 0.0, maxb = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        if (!isfinite(x) || !isfinite(y)) {
            if (x == y)
                continue;
            return INFINITY;
        }
        double d = fabs(x - y);
        if (d > maxdiff)
            maxdiff = d;
        if (fabs(y) > maxb)
            maxb = fabs(y);
    }
    return maxdiff / (maxb > 1e-30 ? maxb : 1e-30);
}
