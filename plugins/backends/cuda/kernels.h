/* Device kernels of the cuda backend's node operators (kernels.cu), each
 * queued on the given stream; they return the launch status. */
#ifndef DLAS_CUDA_BACKEND_KERNELS_H
#define DLAS_CUDA_BACKEND_KERNELS_H

#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* act: enum dlas_activation (0 none, 1 relu, 2 relu6) */

/* y[i] = act(x[i] * scale[c] + shift[c]), c = (i / plane) % channels */
cudaError_t cbk_affine(cudaStream_t s, const float *x, float *y, int64_t n, int64_t plane,
                       int64_t channels, const float *scale, const float *shift, int act);
/* y[i] = act(x[i]) */
cudaError_t cbk_act(cudaStream_t s, const float *x, float *y, int64_t n, int act);
/* y[i] = act(a[i] + b[i]) */
cudaError_t cbk_add(cudaStream_t s, const float *a, const float *b, float *y, int64_t n, int act);
/* y[r * cols + c] = act(y[r * cols + c] + bias[c]) (bias may be NULL) */
cudaError_t cbk_bias_rows(cudaStream_t s, float *y, int64_t rows, int64_t cols,
                          const float *bias, int act);

struct cbk_pool {
    int64_t planes, ih, iw, oh, ow;
    int kh, kw, sh, sw, ph, pw, count_include_pad;
};
cudaError_t cbk_maxpool(cudaStream_t s, const struct cbk_pool *p, const float *x, float *y,
                        int act);
cudaError_t cbk_avgpool(cudaStream_t s, const struct cbk_pool *p, const float *x, float *y,
                        int act);
/* y[p] = act(mean of x[p * size .. p * size + size)) over `planes` planes */
cudaError_t cbk_global_avgpool(cudaStream_t s, const float *x, float *y, int64_t planes,
                               int64_t size, int act);
/* softmax over C at every one of S positions of each of batch samples */
cudaError_t cbk_softmax(cudaStream_t s, const float *x, float *y, int64_t batch, int64_t C,
                        int64_t S);

#ifdef __cplusplus
}
#endif
#endif
