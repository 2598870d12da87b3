/* Element-wise and data-movement ops for training: relu, relu6, add,
 * dropout, flatten, concat and softmax. Each output element is written by
 * one thread, so none of these depends on the thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "autograd_impl.h"
#include "../kernels/eltwise.h"

/* Elements per task of the element-wise forward: large enough to amortise
 * the call, small enough to balance the team. */
#define EW_CHUNK 8192

/* Keep an element with probability 1 - p: a hash of (seed, node, element)
 * against p in 24-bit steps, so masks need no RNG state and no ordering. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void dropout_mask(uint64_t seed, int id, float p, uint8_t *mask, int64_t total,
                         int threads)
{
    const uint64_t base = mix64(seed ^ mix64(0x64726f706f7574ull + (uint64_t)id));
    const uint32_t cut = (uint32_t)((double)p * 16777216.0); /* p * 2^24 */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < total; i++)
        mask[i] = (uint32_t)(mix64(base + 0x9e3779b97f4a7c15ull * (uint64_t)i) >> 40) >= cut;
}

/* dst = src (acc 0) or dst += src (acc 1), over the threads. */
static void pass(float *dst, const float *src, int64_t total, int acc, int threads)
{
    if (acc) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < total; i++)
            dst[i] += src[i];
    } else {
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < total; i++)
            dst[i] = src[i];
    }
}

static float dropout_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

int ag_elem_forward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int64_t total = a->batch * nd->numel;
    const float *x = a->nd[n->inputs[0]].act;
    float *y = nd->act;
    const int T = a->threads;
    switch (n->op) {
    case DLAS_OP_RELU:
    case DLAS_OP_RELU6:
    case DLAS_OP_ADD: {
        const float *x2 = n->op == DLAS_OP_ADD ? a->nd[n->inputs[1]].act : NULL;
        const int act = n->op == DLAS_OP_RELU    ? DLAS_ACT_RELU
                        : n->op == DLAS_OP_RELU6 ? DLAS_ACT_RELU6
                                                 : DLAS_ACT_NONE;
        const int64_t chunks = (total + EW_CHUNK - 1) / EW_CHUNK;
#pragma omp parallel for num_threads(T) schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            const int64_t lo = c * EW_CHUNK, len = total - lo < EW_CHUNK ? total - lo : EW_CHUNK;
            if (x2)
                ew_add(y + lo, x + lo, x2 + lo, len, act);
            else
                ew_act(y + lo, x + lo, len, act);
        }
        break;
    }
    case DLAS_OP_DROPOUT:
        if (a->flags & DLAS_AG_TRAIN) {
            const float p = n->attr.dropout.p, s = dropout_scale(p);
            dropout_mask(a->seed, id, p, nd->mask, total, T);
            nd->mask_valid = 1;
            const uint8_t *m = nd->mask;
#pragma omp parallel for simd num_threads(T) schedule(static)
            for (int64_t i = 0; i < total; i++)
                y[i] = m[i] ? x[i] * s : 0.0f;
            break;
        }
        pass(y, x, total, 0, T);
        break;
    default: /* flatten */
        pass(y, x, total, 0, T);
        break;
    }
    return DLAS_OK;
}

/* Both inputs of an add take dy: one pass (and one parallel region) for
 * the two. */
static void add_backward2(float *restrict d0, int a0, float *restrict d1, int a1,
                          const float *restrict dy, int64_t total, int threads)
{
    if (a0 && a1) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < total; i++) {
            d0[i] += dy[i];
            d1[i] += dy[i];
        }
    } else if (a0) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < total; i++) {
            d0[i] += dy[i];
            d1[i] = dy[i];
        }
    } else if (a1) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < total; i++) {
            d0[i] = dy[i];
            d1[i] += dy[i];
        }
    } else {
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < total; i++) {
            d0[i] = dy[i];
            d1[i] = dy[i];
        }
    }
}

int ag_elem_backward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int64_t total = a->batch * nd->numel;
    const float *dy = nd->grad, *y = nd->act;
    const int T = a->threads;
    if (n->op == DLAS_OP_ADD && n->inputs[0] != n->inputs[1]) {
        int a0 = 0, a1 = 0;
        float *d0 = ag_grad_dst(a, n->inputs[0], &a0), *d1 = ag_grad_dst(a, n->inputs[1], &a1);
        if (d0 && d1) {
            add_backward2(d0, a0, d1, a1, dy, total, T);
            ag_grad_done(a, n->inputs[0]);
            ag_grad_done(a, n->inputs[1]);
            return DLAS_OK;
        }
    }
    for (int k = 0; k < n->n_inputs; k++) {
        const int in = n->inputs[k];
        int acc = 0;
        float *dx = ag_grad_dst(a, in, &acc);
        if (!dx)
            continue;
        switch (n->op) {
        case DLAS_OP_RELU:
            /* From the output: y > 0 exactly where x > 0. */
            if (acc) {
#pragma omp parallel for simd num_threads(T) schedule(static)
                for (int64_t i = 0; i < total; i++)
                    dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
            } else {
#pragma omp parallel for simd num_threads(T) schedule(static)
                for (int64_t i = 0; i < total; i++)
                    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
            }
            break;
        case DLAS_OP_RELU6:
            /* PyTorch's hardtanh backward: zero at and beyond both ends. */
#pragma omp parallel for simd num_threads(T) schedule(static)
            for (int64_t i = 0; i < total; i++) {
                float g = y[i] > 0.0f && y[i] < 6.0f ? dy[i] : 0.0f;
                dx[i] = acc ? dx[i] + g : g;
            }
            break;
        case DLAS_OP_DROPOUT:
            if (a->flags & DLAS_AG_TRAIN) {
                const float s = dropout_scale(n->attr.dropout.p);
                const uint8_t *m = nd->mask;
#pragma omp parallel for simd num_threads(T) schedule(static)
                for (int64_t i = 0; i < total; i++) {
                    float g = m[i] ? dy[i] * s : 0.0f;
                    dx[i] = acc ? dx[i] + g : g;
                }
                break;
            }
            pass(dx, dy, total, acc, T);
            break;
        default: /* add, flatten */
            pass(dx, dy, total, acc, T);
            break;
        }
        ag_grad_done(a, in);
    }
    return DLAS_OK;
}

int ag_concat_forward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int64_t B = a->batch, m = nd->numel;
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        float *y = nd->act + b * m;
        for (int k = 0; k < n->n_inputs; k++) {
            const struct ag_node *x = &a->nd[n->inputs[k]];
            memcpy(y, x->act + b * x->numel, (size_t)x->numel * sizeof(float));
            y += x->numel;
        }
    }
    return DLAS_OK;
}

int ag_concat_backward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int64_t B = a->batch, m = nd->numel;
    int64_t off = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const int in = n->inputs[k];
        const int64_t mk = a->nd[in].numel;
        int acc = 0;
        float *dx = ag_grad_dst(a, in, &acc);
        if (dx) {
#pragma omp parallel for num_threads(a->threads) schedule(static)
            for (int64_t b = 0; b < B; b++) {
                const float *g = nd->grad + b * m + off;
                float *d = dx + b * mk;
                if (acc)
                    for (int64_t i = 0; i < mk; i++)
                        d[i] += g[i];
                else
                    memcpy(d, g, (size_t)mk * sizeof(float));
            }
            ag_grad_done(a, in);
        }
        off += mk;
    }
    return DLAS_OK;
}

/* Over channels (features of a flat input) at every position, as the
 * reference operator. */
int ag_softmax_forward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int64_t C = n->out_shape[0], S = nd->numel / C, B = a->batch;
    const float *x = a->nd[n->inputs[0]].act;
    float *y = nd->act;
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t p = 0; p < B * S; p++) {
        const int64_t b = p / S, s = p % S;
        const float *xp = x + b * C * S + s;
        float *yp = y + b * C * S + s;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t c = 0; c < C; c++)
            if (xp[c * S] > mx || isnan(xp[c * S]))
                mx = xp[c * S];
        for (int64_t c = 0; c < C; c++)
            sum += exp((double)xp[c * S] - mx);
        for (int64_t c = 0; c < C; c++)
            yp[c * S] = (float)(exp((double)xp[c * S] - mx) / sum);
    }
    return DLAS_OK;
}

/* dx = y * (dy - sum_c dy * y) */
int ag_softmax_backward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int in = n->inputs[0];
    int acc = 0;
    float *dx = ag_grad_dst(a, in, &acc);
    if (!dx)
        return DLAS_OK;
    const int64_t C = n->out_shape[0], S = nd->numel / C, B = a->batch;
    const float *y = nd->act, *dy = nd->grad;
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t p = 0; p < B * S; p++) {
        const int64_t b = p / S, s = p % S, o = b * C * S + s;
        double dot = 0.0;
        for (int64_t c = 0; c < C; c++)
            dot += (double)dy[o + c * S] * y[o + c * S];
        for (int64_t c = 0; c < C; c++) {
            float g = (float)(y[o + c * S] * (dy[o + c * S] - dot));
            dx[o + c * S] = acc ? dx[o + c * S] + g : g;
        }
    }
    ag_grad_done(a, in);
    return DLAS_OK;
}
