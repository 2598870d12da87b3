/* Fully connected layers for training. The batch GEMMs are cut into a
 * fixed number of row blocks (of samples, or of output features for the
 * weight gradient), each a single-threaded GEMM inside one OpenMP region,
 * handed to threads as they come free. Every output element is then
 * computed by the same GEMM call whatever the thread count (OpenBLAS's own
 * threading would pick other kernels and partitions for other counts), and
 * a preempted thread holds up no one. */
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "autograd_impl.h"

/* Blocks a dimension of n rows is cut into (ag_range gives their rows). */
static int64_t blocks_of(int64_t n) { return n < AG_CHUNKS ? n : AG_CHUNKS; }

int ag_linear_forward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int64_t B = a->batch, O = nd->numel, F = a->nd[n->inputs[0]].numel;
    const float *x = a->nd[n->inputs[0]].act, *w = dlas_f32(&n->weight);
    const float *bias = n->attr.linear.bias ? dlas_f32(&n->bias) : NULL;
    float *y = nd->act;
    const int64_t nb = blocks_of(B);
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t k = 0; k < nb; k++) {
        int64_t b0, b1;
        ag_range(B, (int)nb, (int)k, &b0, &b1);
        float beta = 0.0f;
        if (bias) {
            for (int64_t b = b0; b < b1; b++)
                memcpy(y + b * O, bias, (size_t)O * sizeof(float));
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(b1 - b0), (int)O, (int)F,
                    1.0f, x + b0 * F, (int)F, w, (int)F, beta, y + b0 * O, (int)O);
    }
    return DLAS_OK;
}

int ag_linear_backward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_node *n = nd->n;
    const int in = n->inputs[0];
    const int64_t B = a->batch, O = nd->numel, F = a->nd[in].numel;
    const float *x = a->nd[in].act, *w = dlas_f32(&n->weight), *dy = nd->grad;
    float *gw = dlas_f32(&nd->gw), *gb = n->attr.linear.bias ? dlas_f32(&nd->gb) : NULL;
    int acc = 0;
    float *dx = ag_grad_dst(a, in, &acc);
    const int64_t nb = blocks_of(B), no = blocks_of(O);
#pragma omp parallel num_threads(a->threads)
    {
        /* dW[o0:o1] += dy[:, o0:o1]^T x, db[o0:o1] += column sums of dy */
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t k = 0; k < no; k++) {
            int64_t o0, o1;
            ag_range(O, (int)no, (int)k, &o0, &o1);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(o1 - o0), (int)F, (int)B,
                        1.0f, dy + o0, (int)O, x, (int)F, 1.0f, gw + o0 * F, (int)F);
            for (int64_t o = o0; gb && o < o1; o++) {
                double t = 0.0;
                for (int64_t b = 0; b < B; b++)
                    t += dy[b * O + o];
                gb[o] += (float)t;
            }
        }
        /* dx[b0:b1] = dy[b0:b1] W */
        if (dx) {
#pragma omp for schedule(dynamic, 1)
            for (int64_t k = 0; k < nb; k++) {
                int64_t b0, b1;
                ag_range(B, (int)nb, (int)k, &b0, &b1);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(b1 - b0), (int)F,
                            (int)O, 1.0f, dy + b0 * O, (int)O, w, (int)F, acc ? 1.0f : 0.0f,
                            dx + b0 * F, (int)F);
            }
        }
    }
    if (dx)
        ag_grad_done(a, in);
    return DLAS_OK;
}
