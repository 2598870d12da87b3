/* Int8 quantisation arithmetic (see <dlas/quant.h>): float <-> uint8, weight
 * grids, fixed-point multipliers, the integer form of a layer and its
 * reference convolution. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/quant.h>
#include <dlas/status.h>
#include <dlas/tensor.h>

int dlas_act_quant_from_range(float lo, float hi, struct dlas_act_quant *q)
{
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return dlas_error(DLAS_ERR_INVALID, "quant: range [%g, %g] is not a finite interval",
                          (double)lo, (double)hi);
    if (lo > 0.0f)
        lo = 0.0f;
    if (hi < 0.0f)
        hi = 0.0f;
    double scale = ((double)hi - lo) / 255.0;
    if (!(scale > 1e-30)) {
        q->scale = 1.0f;
        q->zero_point = 0;
        return DLAS_OK;
    }
    q->scale = (float)scale;
    double zp = rint(-lo / scale);
    q->zero_point = zp < 0 ? 0 : zp > 255 ? 255 : (int32_t)zp;
    return DLAS_OK;
}

void dlas_quantize_u8(const float *x, int64_t n, const struct dlas_act_quant *q, uint8_t *out)
{
    const float inv = 1.0f / q->scale;
    const int32_t zp = q->zero_point;
    for (int64_t i = 0; i < n; i++)
        out[i] = dlas_quantize1(x[i], inv, zp);
}

void dlas_dequantize_u8(const uint8_t *in, int64_t n, const struct dlas_act_quant *q, float *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = q->scale * (float)((int32_t)in[i] - q->zero_point);
}

void dlas_fake_quant(const float *x, int64_t n, const struct dlas_act_quant *q, float *out)
{
    const float inv = 1.0f / q->scale;
    for (int64_t i = 0; i < n; i++)
        out[i] = q->scale * (float)((int32_t)dlas_quantize1(x[i], inv, q->zero_point) -
                                    q->zero_point);
}

void dlas_weight_steps(const float *w, int64_t out_c, int64_t per, float *step)
{
    for (int64_t o = 0; o < out_c; o++) {
        float m = 0.0f;
        for (int64_t k = 0; k < per; k++)
            m = fmaxf(m, fabsf(w[o * per + k]));
        step[o] = m > 0.0f && isfinite(m) ? m / DLAS_QMAX_W : 1.0f;
    }
}

static int8_t weight_q(float w, float step)
{
    float v = rintf(w / step);
    return (int8_t)(v > DLAS_QMAX_W ? DLAS_QMAX_W : v < -DLAS_QMAX_W ? -DLAS_QMAX_W : v);
}

void dlas_weight_round(float *w, int64_t out_c, int64_t per, const float *step)
{
    for (int64_t o = 0; o < out_c; o++)
        for (int64_t k = 0; k < per; k++)
            w[o * per + k] = step[o] * (float)weight_q(w[o * per + k], step[o]);
}

int dlas_requant_multiplier(double m, int32_t *multiplier, int *shift)
{
    if (!(m > 0.0) || !isfinite(m))
        return dlas_error(DLAS_ERR_INVALID, "quant: requantisation multiplier %g", m);
    int e;
    double f = frexp(m, &e); /* m = f * 2^e, f in [0.5, 1) */
    int64_t q = (int64_t)llround(f * 2147483648.0);
    if (q == ((int64_t)1 << 31)) { /* f rounded up to 1 */
        q /= 2;
        e++;
    }
    int s = 31 - e;
    if (s < 1 || s > 62)
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "quant: requantisation multiplier %g is outside 2^-31 .. 2^30", m);
    *multiplier = (int32_t)q;
    *shift = s;
    return DLAS_OK;
}

/* ---- a layer in integer form ------------------------------------------------ */

void dlas_int8_layer_free(struct dlas_int8_layer *L)
{
    if (!L)
        return;
    dlas_aligned_free(L->wq);
    dlas_aligned_free(L->off);
    dlas_aligned_free(L->scale);
    dlas_aligned_free(L->bias);
    dlas_aligned_free(L->mult);
    dlas_aligned_free(L->shift);
    memset(L, 0, sizeof *L);
}

static int check_act(const struct dlas_act_quant *a, const char *what)
{
    if (!(a->scale > 0.0f) || !isfinite(a->scale) || a->zero_point < 0 || a->zero_point > 255)
        return dlas_error(DLAS_ERR_INVALID,
                          "int8 layer: %s scale %g, zero point %d (need scale > 0, zero point "
                          "0..255)",
                          what, (double)a->scale, (int)a->zero_point);
    return DLAS_OK;
}

int dlas_int8_bias_fits(const float *bias, int64_t out_c, float in_scale,
                        const float *weight_step)
{
    const double lim = (double)(1 << 29);
    for (int64_t o = 0; bias && o < out_c; o++) {
        const double u = fabs(rint((double)bias[o] / ((double)in_scale * weight_step[o])));
        if (!(u <= lim)) /* NaN too */
            return 0;
    }
    return 1;
}

int dlas_int8_layer_init(struct dlas_int8_layer *L, const struct dlas_conv_desc *d,
                         const float *weight, const float *bias, const struct dlas_conv_quant *q)
{
    memset(L, 0, sizeof *L);
    if (!d || !weight || !q || q->size < sizeof *q || !q->weight_step)
        return dlas_error(DLAS_ERR_INVALID, "int8 layer: missing description, weights or steps");
    int rc = check_act(&q->in, "input");
    if (!rc && q->out_u8)
        rc = check_act(&q->out, "output");
    if (rc)
        return rc;
    const int64_t oc = d->out_c, K = d->in_c / d->groups * d->kh * d->kw;
    if (K > DLAS_INT8_K_MAX)
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "int8 layer: %lld products per output exceed %d (int32 accumulators "
                          "could overflow)",
                          (long long)K, DLAS_INT8_K_MAX);
    for (int64_t o = 0; o < oc; o++)
        if (!(q->weight_step[o] > 0.0f) || !isfinite(q->weight_step[o]))
            return dlas_error(DLAS_ERR_INVALID, "int8 layer: weight step %g of channel %lld",
                              (double)q->weight_step[o], (long long)o);
    if (q->out_u8 && bias && d->has_bias && !dlas_int8_bias_fits(bias, oc, q->in.scale,
                                                                  q->weight_step))
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "int8 layer: a bias is over 2^29 units of input scale x weight step "
                          "(input scale %g): a uint8 output cannot hold it in int32",
                          (double)q->in.scale);
    L->d = *d;
    L->d.quant = NULL;
    L->q = *q;
    L->q.weight_step = NULL; /* not owned: the caller's may go away */
    L->K = K;
    L->wq = dlas_aligned_alloc((size_t)(oc * K));
    L->off = dlas_aligned_alloc((size_t)oc * sizeof *L->off);
    L->scale = dlas_aligned_alloc((size_t)oc * sizeof *L->scale);
    L->bias = dlas_aligned_alloc((size_t)oc * sizeof *L->bias);
    L->mult = dlas_aligned_alloc((size_t)oc * sizeof *L->mult);
    L->shift = dlas_aligned_alloc((size_t)oc);
    if (!L->wq || !L->off || !L->scale || !L->bias || !L->mult || !L->shift) {
        dlas_int8_layer_free(L);
        return dlas_error(DLAS_ERR_NOMEM, "int8 layer: out of memory");
    }
    for (int64_t o = 0; o < oc; o++) {
        const float step = q->weight_step[o];
        int32_t sum = 0;
        for (int64_t k = 0; k < K; k++) {
            int8_t v = weight_q(weight[o * K + k], step);
            L->wq[o * K + k] = v;
            sum += v;
        }
        L->scale[o] = q->in.scale * step;
        L->bias[o] = bias && d->has_bias ? bias[o] : 0.0f;
        L->off[o] = -q->in.zero_point * sum;
        if (q->out_u8) {
            double bq = rint((double)L->bias[o] / ((double)q->in.scale * step));
            L->off[o] += (int32_t)bq;
            int sh;
            rc = dlas_requant_multiplier((double)q->in.scale * step / q->out.scale, &L->mult[o],
                                         &sh);
            if (rc) {
                dlas_int8_layer_free(L);
                return dlas_error_context("int8 layer, output channel %lld", (long long)o);
            }
            L->shift[o] = (int8_t)sh;
        }
    }
    L->lo = 0;
    L->hi = 255;
    if (q->out_u8 && d->activation != DLAS_ACT_NONE)
        L->lo = q->out.zero_point;
    if (q->out_u8 && d->activation == DLAS_ACT_RELU6) {
        double h = q->out.zero_point + rint(6.0 / q->out.scale);
        L->hi = h > 255 ? 255 : (int32_t)h;
    }
    return DLAS_OK;
}

void dlas_ref_conv2d_int8(const struct dlas_int8_layer *L, int64_t batch, const uint8_t *in,
                          void *out)
{
    const struct dlas_conv_desc *d = &L->d;
    const int64_t cpg = d->in_c / d->groups, opg = d->out_c / d->groups;
    const int32_t zp = L->q.in.zero_point;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t o = 0; o < d->out_c; o++) {
            const int64_t g = o / opg;
            const int8_t *w = L->wq + o * L->K;
            for (int64_t y = 0; y < d->out_h; y++)
                for (int64_t x = 0; x < d->out_w; x++) {
                    int32_t acc = 0;
                    for (int64_t c = 0; c < cpg; c++)
                        for (int r = 0; r < d->kh; r++)
                            for (int s = 0; s < d->kw; s++) {
                                int64_t iy = y * d->stride_h - d->pad_h + r * d->dil_h;
                                int64_t ix = x * d->stride_w - d->pad_w + s * d->dil_w;
                                int32_t v = zp;
                                if (iy >= 0 && iy < d->in_h && ix >= 0 && ix < d->in_w)
                                    v = in[((b * d->in_c + g * cpg + c) * d->in_h + iy) *
                                               d->in_w + ix];
                                acc += v * w[(c * d->kh + r) * d->kw + s];
                            }
                    int64_t at = ((b * d->out_c + o) * d->out_h + y) * d->out_w + x;
                    if (L->q.out_u8)
                        ((uint8_t *)out)[at] = dlas_int8_requant1(L, o, acc);
                    else
                        ((float *)out)[at] = dlas_int8_dequant1(L, o, acc);
                }
        }
}

/* ---- a graph node's quantisation ---------------------------------------------- */

int dlas_node_is_quantised(const struct dlas_node *n)
{
    return n && n->op == DLAS_OP_CONV2D && n->weight_scale.data && n->input_quant.data;
}

int dlas_node_input_quant(const struct dlas_node *n, struct dlas_act_quant *q)
{
    if (!dlas_node_is_quantised(n) || n->input_quant.dtype != DLAS_F32 ||
        dlas_tensor_numel(&n->input_quant) != 2)
        return dlas_error(DLAS_ERR_INVALID, "node '%s' carries no int8 input parameters",
                          n ? n->name : "");
    const float *v = dlas_f32(&n->input_quant);
    float zp = v[1];
    q->scale = v[0];
    q->zero_point = (int32_t)zp;
    if (!(q->scale > 0.0f) || !isfinite(q->scale) || !(zp >= 0.0f && zp <= 255.0f) ||
        (float)q->zero_point != zp)
        return dlas_error(DLAS_ERR_INVALID,
                          "node '%s': input_quant {%g, %g} (need scale > 0 and an integer zero "
                          "point in 0..255)",
                          n->name, (double)v[0], (double)zp);
    return DLAS_OK;
}

void dlas_node_clear_quant(struct dlas_node *n)
{
    dlas_tensor_free(&n->weight_scale);
    dlas_tensor_free(&n->input_quant);
}

int dlas_node_set_quant(struct dlas_node *n, const float *weight_step,
                        const struct dlas_act_quant *in)
{
    if (!n || n->op != DLAS_OP_CONV2D || !weight_step || !in)
        return dlas_error(DLAS_ERR_INVALID, "quant: only conv nodes carry int8 parameters");
    int64_t oc = n->attr.conv.out_channels, two = 2;
    struct dlas_tensor ws = {0}, iq = {0};
    if (dlas_tensor_alloc(&ws, DLAS_F32, 1, &oc) || dlas_tensor_alloc(&iq, DLAS_F32, 1, &two)) {
        dlas_tensor_free(&ws);
        return dlas_error(DLAS_ERR_NOMEM, "quant: out of memory");
    }
    memcpy(ws.data, weight_step, (size_t)oc * sizeof(float));
    dlas_f32(&iq)[0] = in->scale;
    dlas_f32(&iq)[1] = (float)in->zero_point;
    dlas_node_clear_quant(n);
    n->weight_scale = ws;
    n->input_quant = iq;
    return DLAS_OK;
}
