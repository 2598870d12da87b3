/* Element-wise forward kernels (see eltwise.h). Written as plain loops with
 * the activation chosen outside them, so that the compiler vectorises each
 * (the kernels build at -O3); `v < 0 ? 0 : v` keeps NaN because a NaN
 * compares false. */
#include "eltwise.h"

#include <dlas/conv.h>

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
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : x[i];
    else if (act == DLAS_ACT_RELU6)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : (x[i] > 6.0f ? 6.0f : x[i]);
    else if (y != x)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i];
}

void ew_add(float *y, const float *a, const float *b, int64_t n, int act)
{
    if (act == DLAS_ACT_RELU)
        for (int64_t i = 0; i < n; i++) {
            float v = a[i] + b[i];
            y[i] = v < 0.0f ? 0.0f : v;
        }
    else if (act == DLAS_ACT_NONE)
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = act1(a[i] + b[i], act);
}

void ew_affine(float *y, const float *x, int64_t n, float scale, float shift, int act)
{
    if (act == DLAS_ACT_RELU)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] * scale + shift;
            y[i] = v < 0.0f ? 0.0f : v;
        }
    else if (act == DLAS_ACT_NONE)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * scale + shift;
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = act1(x[i] * scale + shift, act);
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
