/* Batch normalisation for training (Ioffe & Szegedy 2015), with PyTorch's
 * conventions: batch statistics in TRAIN mode, the biased variance to
 * normalise, the unbiased one into the running variance, running = (1 - m)
 * running + m batch.
 *
 * Threads split the channels, and each channel's sums run in one thread, in
 * a fixed order (float within a row, double across rows): the statistics
 * have the same bits whatever the thread count. */
#include <math.h>
#include <omp.h>

#include <dlas/status.h>

#include "autograd_impl.h"
#include "../kernels/eltwise.h"

/* The mean of a row, in float. */
static inline float row_mean(const float *x, int64_t n)
{
    float a = 0.0f;
#pragma omp simd reduction(+ : a)
    for (int64_t i = 0; i < n; i++)
        a += x[i];
    return a / (float)n;
}

/* Sums of (x - k) and (x - k)^2 over a row. */
static inline void row_sums(const float *x, int64_t n, float k, double *s1, double *s2)
{
    float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - k;
        a += d;
        b += d * d;
    }
    *s1 += a;
    *s2 += b;
}

int ag_bn_forward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int64_t C = n->out_shape[0], S = nd->numel / C, B = a->batch, M = B * S;
    const float *x = a->nd[n->inputs[0]].act;
    /* folded with its relu: write the relu's output instead of ours */
    const int relu = nd->fused_relu != 0;
    float *y = relu ? a->nd[nd->fused_relu].act : nd->act;
    const float *gam = dlas_f32(&n->weight), *bet = dlas_f32(&n->bias);
    float *rm = dlas_f32(&n->running_mean), *rv = dlas_f32(&n->running_var);
    const int train = (a->flags & DLAS_AG_TRAIN) != 0;
    const int update = train && !(a->flags & DLAS_AG_KEEP_STATS);
    const double eps = n->attr.bn.eps, mom = n->attr.bn.momentum;
    if (train && M < 2)
        return dlas_error(DLAS_ERR_INVALID,
                          "batchnorm '%s': training needs more than one value per channel "
                          "(batch %lld x %lld positions)",
                          n->name, (long long)B, (long long)S);
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        double mean, var;
        if (train) {
            /* One pass over x (and its first row before it) instead of
             * two, with the moments taken about k, the mean of the
             * channel's first row (image 0): var =
             * E[(x-k)^2] - (mean-k)^2 cancels by (mean-k)^2 / var, and k is
             * within a few standard deviations of the batch mean whatever
             * the data. The running mean was k before; 100 standard
             * deviations away (a channel of small outputs, new data) it
             * left 1e-3 of the variance to rounding. The row is in cache
             * for the pass that follows. */
            float k = row_mean(x + c * S, S);
            if (!isfinite(k))
                k = 0.0f;
            double s1 = 0.0, s2 = 0.0;
            for (int64_t b = 0; b < B; b++)
                row_sums(x + (b * C + c) * S, S, k, &s1, &s2);
            const double dm = s1 / (double)M;
            mean = k + dm;
            var = s2 / (double)M - dm * dm;
            if (var < 0.0)
                var = 0.0;
            if (update) {
                rm[c] = (float)((1.0 - mom) * rm[c] + mom * mean);
                rv[c] = (float)((1.0 - mom) * rv[c] + mom * var * (double)M / (double)(M - 1));
            }
        } else {
            mean = rm[c];
            var = rv[c];
        }
        double inv = 1.0 / sqrt(var + eps);
        nd->mean[c] = (float)mean;
        nd->invstd[c] = (float)inv;
        float scale, shift;
        ew_bn_coeffs(gam[c], bet[c], mean, inv, &scale, &shift);
        for (int64_t b = 0; b < B; b++)
            ew_affine(y + (b * C + c) * S, x + (b * C + c) * S, S, scale, shift,
                      relu ? DLAS_ACT_RELU : DLAS_ACT_NONE);
    }
    return DLAS_OK;
}

/* ky*g + k1*xc + k0 with its fused multiply-adds spelled out: left to the
 * compiler, contraction differs between loops (with the relu's select
 * folded in, or not) and between vector widths, and a batchnorm folded
 * into its relu must train to the same bits as one kept apart. */
static inline float dx_term(float ky, float g, float k1, float xc, float k0)
{
    return fmaf(ky, g, fmaf(k1, xc, k0));
}

/* TRAIN:  dx = g*inv * (dy - mean(dy) - xhat * mean(dy * xhat))
 * EVAL:   dx = g*inv * dy (the statistics are constants)
 * and in both dgamma = sum(dy * xhat), dbeta = sum(dy). */
int ag_bn_backward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int in = n->inputs[0];
    const int64_t C = n->out_shape[0], S = nd->numel / C, B = a->batch, M = B * S;
    const float *x = a->nd[in].act, *dy = nd->grad;
    /* folded with its relu: dy is the relu's gradient where it passed */
    const float *ry = NULL;
    if (nd->grad_gone) {
        dy = a->nd[nd->fused_relu].grad;
        ry = a->nd[nd->fused_relu].act;
    }
    const float *gam = dlas_f32(&n->weight);
    float *dgam = dlas_f32(&nd->gw), *dbet = dlas_f32(&nd->gb);
    int acc = 0;
    float *dx = ag_grad_dst(a, in, &acc);
    const int train = (a->flags & DLAS_AG_TRAIN) != 0;
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        const float mean = nd->mean[c], inv = nd->invstd[c];
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t b = 0; b < B; b++) {
            const float *xr = x + (b * C + c) * S, *gr = dy + (b * C + c) * S;
            float s1 = 0.0f, s2 = 0.0f; /* fmaf: as dx_term says */
            if (ry) {
                const float *yr = ry + (b * C + c) * S;
#pragma omp simd reduction(+ : s1, s2)
                for (int64_t i = 0; i < S; i++) {
                    const float g = yr[i] > 0.0f ? gr[i] : 0.0f;
                    s1 += g;
                    s2 = fmaf(g, xr[i] - mean, s2);
                }
            } else {
#pragma omp simd reduction(+ : s1, s2)
                for (int64_t i = 0; i < S; i++) {
                    s1 += gr[i];
                    s2 = fmaf(gr[i], xr[i] - mean, s2);
                }
            }
            sdy += s1;
            sdyx += s2;
        }
        dgam[c] += (float)(sdyx * inv);
        dbet[c] += (float)sdy;
        if (!dx)
            continue;
        const double k = (double)gam[c] * inv;
        float ky = (float)k, k1 = 0.0f, k0 = 0.0f;
        if (train) {
            double c1 = -k * inv * inv * sdyx / (double)M;
            k1 = (float)c1;
            k0 = (float)(-k * sdy / (double)M);
        }
        for (int64_t b = 0; b < B; b++) {
            const float *xr = x + (b * C + c) * S, *gr = dy + (b * C + c) * S;
            float *dr = dx + (b * C + c) * S;
            if (ry) {
                const float *yr = ry + (b * C + c) * S;
#pragma omp simd
                for (int64_t i = 0; i < S; i++) {
                    const float g = yr[i] > 0.0f ? gr[i] : 0.0f;
                    const float v = dx_term(ky, g, k1, xr[i] - mean, k0);
                    dr[i] = acc ? dr[i] + v : v;
                }
            } else if (acc) {
#pragma omp simd
                for (int64_t i = 0; i < S; i++)
                    dr[i] += dx_term(ky, gr[i], k1, xr[i] - mean, k0);
            } else {
#pragma omp simd
                for (int64_t i = 0; i < S; i++)
                    dr[i] = dx_term(ky, gr[i], k1, xr[i] - mean, k0);
            }
        }
    }
    if (dx)
        ag_grad_done(a, in);
    return DLAS_OK;
}
