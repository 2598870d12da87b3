/* Element-wise forward kernels (see eltwise.h). Written as plain loops with
 * the activation chosen outside them, each marked `omp simd` so that it is
 * vectorised at any optimisation level: the build's CFLAGS come after a
 * target's own flags, so the default -O2 (whose cost model leaves loops of
 * unknown length scalar) overrides a target's -O3, and a scalar batchnorm
 * pass ran at a third of the vector speed (27 against 90 GB/s, one thread,
 * 1.4 MB). `v < 0 ? 0 : v` keeps NaN because a NaN compares false. */
#include "eltwise.h"

#include <math.h>

#include <dlas/conv.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

static inline float act1(float v, int act)
{
    if (act == DLAS_ACT_RELU)
        return v < 0.0f ? 0.0f : v;
    if (act == DLAS_ACT_RELU6)
        return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    return v;
}

void ew_act(float *y, const float *x, int64_t n, int act)
{
    if (act == DLAS_ACT_RELU)
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : x[i];
    else if (act == DLAS_ACT_RELU6)
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : (x[i] > 6.0f ? 6.0f : x[i]);
    else if (y != x)
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i];
}

void ew_add(float *y, const float *a, const float *b, int64_t n, int act)
{
    if (act == DLAS_ACT_RELU)
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float v = a[i] + b[i];
            y[i] = v < 0.0f ? 0.0f : v;
        }
    else if (act == DLAS_ACT_NONE)
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
    else
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = act1(a[i] + b[i], act);
}

/* dlas_quantize1's steps, in the same order and precision */
static inline uint8_t quantize1(float x, float inv, int32_t zp)
{
    float v = rintf(x * inv) + (float)zp;
    if (!(v >= 0.0f))
        return v < 0.0f ? 0 : (uint8_t)zp;
    return v > 255.0f ? 255 : (uint8_t)v;
}

void ew_quantize_u8(uint8_t *out, const float *x, int64_t n, float inv_scale, int32_t zero_point)
{
    int64_t i = 0;
#if defined(__AVX512F__)
    /* vrndscaleps with imm 0: round to nearest even, as rintf in the
     * default mode; NaN (unordered) takes the zero point, the rest is
     * clamped to [0, 255] and exact in float, so the conversion is too */
    const __m512 inv = _mm512_set1_ps(inv_scale), zp = _mm512_set1_ps((float)zero_point);
    const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), inv);
        v = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT), zp);
        __mmask16 num = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
        v = _mm512_mask_blend_ps(num, zp, _mm512_min_ps(_mm512_max_ps(v, lo), hi));
        _mm_storeu_si128((__m128i *)(out + i), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
    }
#endif
    for (; i < n; i++)
        out[i] = quantize1(x[i], inv_scale, zero_point);
}

#if defined(__AVX512F__)
/* y = x * scale + shift (then max(0, v) with relu) over n floats, 16 at a
 * time and the last few under a mask: one fused multiply-add, whatever the
 * compiler's contraction setting, so that ew_affine and ew_affine_channels
 * give the same bits (a conv's prologue must match the batchnorm pass it
 * replaces). max(0, v) returns v when v is NaN or a zero of either sign,
 * as v < 0 ? 0 : v does. */
static inline void affine16(float *y, const float *x, int64_t n, float scale, float shift,
                            int relu)
{
    const __m512 zero = _mm512_setzero_ps(), vs = _mm512_set1_ps(scale),
                 vt = _mm512_set1_ps(shift);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), vs, vt);
        _mm512_storeu_ps(y + i, relu ? _mm512_max_ps(zero, v) : v);
    }
    if (i < n) {
        const __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + i), vs, vt);
        _mm512_mask_storeu_ps(y + i, tail, relu ? _mm512_max_ps(zero, v) : v);
    }
}
#endif

void ew_affine(float *y, const float *x, int64_t n, float scale, float shift, int act)
{
#if defined(__AVX512F__)
    if (act == DLAS_ACT_RELU || act == DLAS_ACT_NONE) {
        affine16(y, x, n, scale, shift, act == DLAS_ACT_RELU);
        return;
    }
#endif
    if (act == DLAS_ACT_RELU)
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] * scale + shift;
            y[i] = v < 0.0f ? 0.0f : v;
        }
    else if (act == DLAS_ACT_NONE)
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * scale + shift;
    else
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = act1(x[i] * scale + shift, act);
}

void ew_affine_channels(float *y, int64_t y_stride, const float *const *x,
                        const int64_t *x_stride, int64_t img, int64_t at, int64_t channels,
                        int64_t n, const float *scale, const float *shift, int act)
{
#if defined(__AVX512F__)
    /* inline, a channel's row in one or two masked vectors: a call of
     * ew_affine a channel costs more than the row itself */
    if (act == DLAS_ACT_RELU || act == DLAS_ACT_NONE) {
        for (int64_t c = 0; c < channels; c++)
            affine16(y + c * y_stride, x[c] + img * x_stride[c] + at, n, scale[c], shift[c],
                     act == DLAS_ACT_RELU);
        return;
    }
#endif
    for (int64_t c = 0; c < channels; c++)
        ew_affine(y + c * y_stride, x[c] + img * x_stride[c] + at, n, scale[c], shift[c], act);
}

float ew_mean(const float *x, int64_t n)
{
    /* four partial sums: the additions are independent, so they pipeline */
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++)
        s0 += x[i];
    return (float)(((s0 + s1) + (s2 + s3)) / (double)n);
}

void ew_bn_coeffs(float gamma, float beta, double mean, double inv_std, float *scale,
                  float *shift)
{
    const double s = inv_std * (double)gamma;
    *scale = (float)s;
    *shift = (float)((double)beta - mean * s);
}
