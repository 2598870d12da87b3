/* Fully connected layers for training: one GEMM over the whole batch each
 * way. The GEMMs run outside any OpenMP region, on OpenBLAS's own threads,
 * set to the autograd's count for the call. OpenBLAS splits a GEMM's output
 * among its threads, never the inner sum, so a given thread count always
 * gives the same bits. */
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "autograd_impl.h"

struct blas_threads {
    int saved;
};

static struct blas_threads blas_threads_set(int n)
{
    struct blas_threads s = {omp_get_max_threads()};
    omp_set_num_threads(n);
    return s;
}

static void blas_threads_restore(struct blas_threads s) { omp_set_num_threads(s.saved); }

int ag_linear_forward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int64_t B = a->batch, O = nd->numel, F = a->nd[n->inputs[0]].numel;
    const float *x = a->nd[n->inputs[0]].act, *w = dlas_f32(&n->weight);
    float *y = nd->act;
    float beta = 0.0f;
    if (n->attr.linear.bias) {
        const float *bias = dlas_f32(&n->bias);
        for (int64_t b = 0; b < B; b++)
            memcpy(y + b * O, bias, (size_t)O * sizeof(float));
        beta = 1.0f;
    }
    struct blas_threads s = blas_threads_set(a->threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)O, (int)F, 1.0f, x, (int)F,
                w, (int)F, beta, y, (int)O);
    blas_threads_restore(s);
    return DLAS_OK;
}

int ag_linear_backward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int in = n->inputs[0];
    const int64_t B = a->batch, O = nd->numel, F = a->nd[in].numel;
    const float *x = a->nd[in].act, *w = dlas_f32(&n->weight), *dy = nd->grad;
    int acc = 0;
    float *dx = ag_grad_dst(a, in, &acc);
    struct blas_threads s = blas_threads_set(a->threads);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)O, (int)F, (int)B, 1.0f, dy, (int)O,
                x, (int)F, 1.0f, dlas_f32(&nd->gw), (int)F);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)F, (int)O, 1.0f, dy,
                    (int)O, w, (int)F, acc ? 1.0f : 0.0f, dx, (int)F);
    blas_threads_restore(s);
    if (n->attr.linear.bias) {
        float *gb = dlas_f32(&nd->gb);
        for (int64_t o = 0; o < O; o++) {
            double t = 0.0;
            for (int64_t b = 0; b < B; b++)
                t += dy[b * O + o];
            gb[o] += (float)t;
        }
    }
    if (dx)
        ag_grad_done(a, in);
    return DLAS_OK;
}
