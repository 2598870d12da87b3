/* Int8 quantisation: the one definition of the arithmetic shared by the
 * quant-int8 compressor, the reference forward, the inference plan's fp32
 * boundaries and the int8 primitives (Jacob et al., "Quantization and
 * Training of Neural Networks for Efficient Integer-Arithmetic-Only
 * Inference", CVPR 2018).
 *
 * Activations are per-tensor asymmetric uint8: x ~ scale * (q - zero_point),
 * q in 0..255, with real 0 exactly representable (zero padding is q =
 * zero_point). Weights are per-output-channel symmetric int8: w = step[o] * q,
 * q in -127..127 (-128 is left out so that the weight grid is symmetric).
 *
 * A quantised conv node carries two tensors (see <dlas/graph.h>):
 * weight_scale (f32, out_c steps) and input_quant (f32 {scale, zero_point});
 * its weight tensor then holds the dequantised values step[o] * q exactly, so
 * every fp32 primitive computes the fake-quantised layer and the int8
 * primitives recover q = rint(w / step[o]) exactly.
 *
 * Rounding is round-half-to-even (rintf under the default mode) when floats
 * are quantised, and round-half-up in the fixed-point requantisation. */
#ifndef DLAS_QUANT_H
#define DLAS_QUANT_H

#include <math.h>
#include <stdint.h>

#include <dlas/graph.h>
#include <dlas/ops.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DLAS_QMAX_W 127 /* weights in -127..127 */

/* uint8 affine quantisation of one tensor: x ~ scale * (q - zero_point). */
struct dlas_act_quant {
    float scale;        /* > 0 */
    int32_t zero_point; /* 0..255 */
};

/* Parameters covering [lo, hi] (widened to contain 0): scale = (hi - lo) /
 * 255, zero_point = rint(-lo / scale) clamped to 0..255. A degenerate range
 * (hi == lo == 0) gets scale 1. DLAS_ERR_INVALID for NaN or infinite bounds. */
int dlas_act_quant_from_range(float lo, float hi, struct dlas_act_quant *q);

static inline uint8_t dlas_quantize1(float x, float inv_scale, int32_t zp)
{
    float v = rintf(x * inv_scale) + (float)zp;
    /* NaN quantises to the zero point (it compares false both ways) */
    if (!(v >= 0.0f))
        return v < 0.0f ? 0 : (uint8_t)zp;
    return v > 255.0f ? 255 : (uint8_t)v;
}

/* q[i] = clamp(rint(x[i] / scale) + zero_point, 0, 255), computed as
 * x[i] * (1 / scale) so that every caller quantises identically. */
void dlas_quantize_u8(const float *x, int64_t n, const struct dlas_act_quant *q, uint8_t *out);
void dlas_dequantize_u8(const uint8_t *in, int64_t n, const struct dlas_act_quant *q,
                        float *out);
/* out = dequantize(quantize(x)); out may be x. */
void dlas_fake_quant(const float *x, int64_t n, const struct dlas_act_quant *q, float *out);

/* Per-output-channel symmetric steps of an out_c x per weight tensor:
 * step[o] = max|w[o,:]| / 127 (1 for an all-zero row). */
void dlas_weight_steps(const float *w, int64_t out_c, int64_t per, float *step);
/* Round w onto its grid in place: w = step[o] * clamp(rint(w / step[o])). */
void dlas_weight_round(float *w, int64_t out_c, int64_t per, const float *step);

/* Fixed-point requantisation: a real multiplier m in (0, 2^31) as
 * multiplier * 2^-shift with multiplier in [2^30, 2^31) and shift in 1..62;
 * DLAS_ERR_UNSUPPORTED when m is out of that range. */
int dlas_requant_multiplier(double m, int32_t *multiplier, int *shift);
/* round(acc * multiplier * 2^-shift), half up, saturated to int32. */
static inline int32_t dlas_requant(int32_t acc, int32_t multiplier, int shift)
{
    int64_t v = ((int64_t)acc * multiplier + ((int64_t)1 << (shift - 1))) >> shift;
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* What an int8 layer is given on top of its dlas_conv_desc (ABI 1.3, see
 * dlas_conv_desc.quant): the uint8 input's parameters, the weights' steps,
 * and whether the output is uint8 (for the next int8 layer) or f32. */
struct dlas_conv_quant {
    uint32_t size;                /* sizeof(struct dlas_conv_quant) */
    struct dlas_act_quant in;
    const float *weight_step;     /* out_c entries, each > 0 */
    int out_u8;                   /* 1: uint8 output quantised with `out` */
    struct dlas_act_quant out;
};

/* An int8 layer in integer form, derived once from the fp32 weights on their
 * grid, the bias and the dlas_conv_quant, by the one function below so that
 * every int8 primitive and the integer reference agree bit for bit:
 *   wq[o][k]    = clamp(rint(w[o][k] / step[o]), -127, 127)
 *   acc[o]      = sum_k q_in[k] * wq[o][k]            (int32; padding is q = zero_point)
 *   f32 output: y = fmaf((float)(acc + off[o]), scale[o], bias[o]), then the activation,
 *               with off[o] = -zp_in * sum_k wq[o][k], scale[o] = s_in * step[o];
 *   u8 output:  q = clamp(zp_out + requant(acc + off[o], mult[o], shift[o]), lo, hi),
 *               with off[o] also holding rint(bias[o] / (s_in * step[o])),
 *               mult/shift of s_in * step[o] / s_out, lo = zp_out under relu/relu6
 *               (else 0), hi = min(255, zp_out + rint(6 / s_out)) under relu6 (else 255). */
struct dlas_int8_layer {
    struct dlas_conv_desc d;
    struct dlas_conv_quant q;
    int64_t K;          /* in_c / groups * kh * kw */
    int8_t *wq;         /* out_c x K, the weight layout of dlas_conv_desc */
    int32_t *off;       /* out_c */
    float *scale, *bias;/* out_c each (bias zero when the layer has none) */
    int32_t *mult;      /* out_c (u8 output) */
    int8_t *shift;      /* out_c (u8 output) */
    int32_t lo, hi;     /* u8 output clamp */
};
/* DLAS_ERR_INVALID for a missing or non-positive step or scale, or a zero
 * point outside 0..255; DLAS_ERR_UNSUPPORTED when a multiplier cannot be
 * represented or K exceeds DLAS_INT8_K_MAX (which keeps every accumulator and
 * offset, and their sum, inside int32: 255 * 127 * K < 2^29, and the bias
 * term must be within +-2^29 units: dlas_int8_bias_fits). Free with
 * dlas_int8_layer_free. */
#define DLAS_INT8_K_MAX 16384
int dlas_int8_layer_init(struct dlas_int8_layer *L, const struct dlas_conv_desc *d,
                         const float *weight, const float *bias, const struct dlas_conv_quant *q);
void dlas_int8_layer_free(struct dlas_int8_layer *L);
/* 1 when every bias[o] (out_c of them; NULL: none) is within 2^29 units of
 * in_scale * weight_step[o], as a uint8 output adds it in the int32
 * accumulator; else 0. A tiny input scale (a nearly dead channel after
 * pruning, a degenerate calibration) can make a moderate bias billions of
 * units: such a layer can hand f32 on, never uint8. */
int dlas_int8_bias_fits(const float *bias, int64_t out_c, float in_scale,
                        const float *weight_step);
/* The integer reference: plain loops, the oracle of the int8 primitives.
 * in: batch x in_c x in_h x in_w uint8; out: uint8 or f32 per L->q.out_u8. */
void dlas_ref_conv2d_int8(const struct dlas_int8_layer *L, int64_t batch, const uint8_t *in,
                          void *out);
/* The requantisation of one accumulator of output channel o (u8 output). */
static inline uint8_t dlas_int8_requant1(const struct dlas_int8_layer *L, int64_t o, int32_t acc)
{
    int64_t v = (int64_t)dlas_requant(acc + L->off[o], L->mult[o], L->shift[o]) + L->q.out.zero_point;
    return (uint8_t)(v < L->lo ? L->lo : v > L->hi ? L->hi : v);
}
/* The f32 output of one accumulator of output channel o. */
static inline float dlas_int8_dequant1(const struct dlas_int8_layer *L, int64_t o, int32_t acc)
{
    float y = fmaf((float)(acc + L->off[o]), L->scale[o], L->bias[o]);
    if (L->d.activation != DLAS_ACT_NONE && y < 0.0f)
        y = 0.0f;
    if (L->d.activation == DLAS_ACT_RELU6 && y > 6.0f)
        y = 6.0f;
    return y;
}

/* ---- a graph node's quantisation ---------------------------------------- */

/* 1 when conv node n carries weight_scale and input_quant. */
int dlas_node_is_quantised(const struct dlas_node *n);
/* Its input's parameters (DLAS_ERR_INVALID if not quantised or malformed). */
int dlas_node_input_quant(const struct dlas_node *n, struct dlas_act_quant *q);
/* Set or clear them (weight_scale: out_c steps; the weights are not touched). */
int dlas_node_set_quant(struct dlas_node *n, const float *weight_step,
                        const struct dlas_act_quant *in);
void dlas_node_clear_quant(struct dlas_node *n);

#ifdef __cplusplus
}
#endif
#endif
