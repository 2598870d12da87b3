/* Pooling for training. Windows, divisors and NaN handling follow the
 * reference operators (and so PyTorch's CPU kernels); max pooling records
 * where each maximum came from so that backward routes the gradient there,
 * as PyTorch does (the first maximum of a tie). Planes (sample, channel) are
 * spread over the threads; each is written by one thread only. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "autograd_impl.h"
#include "../kernels/eltwise.h"

struct window {
    int64_t h0, h1, w0, w1; /* clipped to the input */
    int64_t div;            /* avgpool divisor */
};

static struct window window_at(const struct dlas_pool_attr *a, int64_t IH, int64_t IW,
                               int64_t oh, int64_t ow, int avg)
{
    struct window w;
    int64_t h0 = oh * a->stride_h - a->pad_h, w0 = ow * a->stride_w - a->pad_w;
    int64_t h1, w1;
    if (avg) { /* clipped at the far padding edge first, for the divisor */
        h1 = h0 + a->kh < IH + a->pad_h ? h0 + a->kh : IH + a->pad_h;
        w1 = w0 + a->kw < IW + a->pad_w ? w0 + a->kw : IW + a->pad_w;
    } else {
        h1 = h0 + a->kh;
        w1 = w0 + a->kw;
    }
    int64_t pool_size = (h1 - h0) * (w1 - w0);
    w.h0 = h0 < 0 ? 0 : h0;
    w.w0 = w0 < 0 ? 0 : w0;
    w.h1 = h1 < IH ? h1 : IH;
    w.w1 = w1 < IW ? w1 : IW;
    w.div = a->count_include_pad ? pool_size : (w.h1 - w.h0) * (w.w1 - w.w0);
    return w;
}

/* Windows depend on the output row or column only: work them out once per
 * pass, not once per output element. */
struct windows {
    int64_t *h0, *h1, *w0, *w1, *hd, *wd; /* clipped bounds; padded extents for divisors */
};

static int windows_make(const struct dlas_pool_attr *a, int64_t IH, int64_t IW, int64_t OH,
                        int64_t OW, int avg, struct windows *w)
{
    int64_t *m = malloc((size_t)(3 * (OH + OW)) * sizeof *m);
    if (!m)
        return dlas_error(DLAS_ERR_NOMEM, "pool: out of memory");
    w->h0 = m;
    w->h1 = m + OH;
    w->hd = m + 2 * OH;
    w->w0 = m + 3 * OH;
    w->w1 = w->w0 + OW;
    w->wd = w->w0 + 2 * OW;
    for (int64_t oh = 0; oh < OH; oh++) {
        struct window x = window_at(a, IH, IW, oh, 0, avg);
        w->h0[oh] = x.h0;
        w->h1[oh] = x.h1;
        int64_t s = oh * a->stride_h - a->pad_h, e = s + a->kh;
        if (avg && e > IH + a->pad_h)
            e = IH + a->pad_h;
        w->hd[oh] = e - s;
    }
    for (int64_t ow = 0; ow < OW; ow++) {
        struct window x = window_at(a, IH, IW, 0, ow, avg);
        w->w0[ow] = x.w0;
        w->w1[ow] = x.w1;
        int64_t s = ow * a->stride_w - a->pad_w, e = s + a->kw;
        if (avg && e > IW + a->pad_w)
            e = IW + a->pad_w;
        w->wd[ow] = e - s;
    }
    return DLAS_OK;
}

/* NaN wins, as in PyTorch (and the reference operator). */
static inline int takes(float v, float m) { return v > m || v != v; }

/* The 2x2 stride-2 unpadded pool of LeNet, VGG and most CNNs, without
 * branches (random activations make them unpredictable): v replaces the
 * maximum m when larger, or when it is the first NaN. */
#define TAKE(v, m) ((v) > (m) || ((v) != (v) && (m) == (m)))

static void maxpool_2x2(const float *xp, int64_t IW, float *yp, int32_t *ap, int64_t OH,
                        int64_t OW)
{
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = xp + 2 * oh * IW, *r1 = r0 + IW;
        const int32_t base = (int32_t)(2 * oh * IW);
        float *yr = yp + oh * OW;
        int32_t *ar = ap ? ap + oh * OW : NULL;
#pragma omp simd
        for (int64_t ow = 0; ow < OW; ow++) {
            const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            float m = a;
            int32_t k = 0;
            int t = TAKE(b, m);
            m = t ? b : m;
            k = t ? 1 : k;
            t = TAKE(c, m);
            m = t ? c : m;
            k = t ? (int32_t)IW : k;
            t = TAKE(d, m);
            m = t ? d : m;
            k = t ? (int32_t)IW + 1 : k;
            yr[ow] = m;
            if (ar)
                ar[ow] = base + 2 * (int32_t)ow + k;
        }
    }
}

int ag_pool_forward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const struct dlas_node *xn = a->nd[n->inputs[0]].n;
    const float *x = a->nd[n->inputs[0]].act;
    float *y = nd->act;
    const int64_t C = xn->out_shape[0], IH = xn->out_shape[1], IW = xn->out_shape[2];
    const int64_t OH = n->out_shape[1], OW = n->out_shape[2], P = a->batch * C;
    if (n->op == DLAS_OP_GLOBAL_AVGPOOL) {
        const int64_t S = IH * IW;
#pragma omp parallel for num_threads(a->threads) schedule(static)
        for (int64_t p = 0; p < P; p++)
            y[p] = ew_mean(x + p * S, S);
        return DLAS_OK;
    }
    const struct dlas_pool_attr *pa = &n->attr.pool;
    const int avg = n->op == DLAS_OP_AVGPOOL;
    int32_t *arg = !avg && !(a->flags & DLAS_AG_NO_GRAD) ? nd->argmax : NULL;
    const int k2 = !avg && pa->kh == 2 && pa->kw == 2 && pa->stride_h == 2 &&
                   pa->stride_w == 2 && pa->pad_h == 0 && pa->pad_w == 0 && 2 * OH <= IH &&
                   2 * OW <= IW;
    struct windows w;
    int rc = windows_make(pa, IH, IW, OH, OW, avg, &w);
    if (rc)
        return rc;
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t p = 0; p < P; p++) {
        const float *xp = x + p * IH * IW;
        float *yp = y + p * OH * OW;
        int32_t *ap = arg ? arg + p * OH * OW : NULL;
        if (k2) {
            maxpool_2x2(xp, IW, yp, ap, OH, OW);
            continue;
        }
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                const int64_t h0 = w.h0[oh], h1 = w.h1[oh], w0 = w.w0[ow], w1 = w.w1[ow];
                if (avg) {
                    if (h0 >= h1 || w0 >= w1) {
                        yp[oh * OW + ow] = 0.0f;
                        continue;
                    }
                    double s = 0.0;
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++)
                            s += xp[ih * IW + iw];
                    int64_t div = pa->count_include_pad ? w.hd[oh] * w.wd[ow]
                                                        : (h1 - h0) * (w1 - w0);
                    yp[oh * OW + ow] = (float)(s / (double)div);
                    continue;
                }
                float m = -INFINITY;
                int64_t at = h0 * IW + w0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        float v = xp[ih * IW + iw];
                        if (takes(v, m) && m == m) {
                            m = v;
                            at = ih * IW + iw;
                        }
                    }
                yp[oh * OW + ow] = m;
                if (ap)
                    ap[oh * OW + ow] = (int32_t)at;
            }
    }
    free(w.h0);
    return DLAS_OK;
}

int ag_pool_backward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int in = n->inputs[0];
    const struct dlas_node *xn = a->nd[in].n;
    int acc = 0;
    float *dx = ag_grad_dst(a, in, &acc);
    if (!dx)
        return DLAS_OK;
    const float *dy = nd->grad;
    const int64_t C = xn->out_shape[0], IH = xn->out_shape[1], IW = xn->out_shape[2];
    const int64_t OH = n->out_shape[1], OW = n->out_shape[2], P = a->batch * C;
    const int64_t S = IH * IW;
    const int op = n->op;
    const struct dlas_pool_attr *pa = &n->attr.pool;
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t p = 0; p < P; p++) {
        float *dp = dx + p * S;
        const float *gp = dy + p * OH * OW;
        if (op == DLAS_OP_GLOBAL_AVGPOOL) {
            float v = (float)(gp[0] / (double)S);
            for (int64_t i = 0; i < S; i++)
                dp[i] = acc ? dp[i] + v : v;
            continue;
        }
        if (!acc)
            memset(dp, 0, (size_t)S * sizeof(float));
        if (op == DLAS_OP_MAXPOOL) {
            const int32_t *ap = nd->argmax + p * OH * OW;
            for (int64_t i = 0; i < OH * OW; i++)
                dp[ap[i]] += gp[i];
            continue;
        }
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                struct window w = window_at(pa, IH, IW, oh, ow, 1);
                if (w.h0 >= w.h1 || w.w0 >= w.w1)
                    continue;
                float v = (float)(gp[oh * OW + ow] / (double)w.div);
                for (int64_t ih = w.h0; ih < w.h1; ih++)
                    for (int64_t iw = w.w0; iw < w.w1; iw++)
                        dp[ih * IW + iw] += v;
            }
    }
    ag_grad_done(a, in);
    return DLAS_OK;
}
