#ifndef DLAS_CUDA_IM2COL_KERNELS_H
#define DLAS_CUDA_IM2COL_KERNELS_H
#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cig_geom {
    int64_t c, ih, iw, oh, ow, cg; /* input channels, sizes; channels per group */
    int kh, kw, sh, sw, ph, pw, dh, dw;
};

/* Column matrices of `images` images starting at `in` (one per image,
 * back to back), for group g. */
cudaError_t cig_im2col(cudaStream_t s, const float *in, float *col, const struct cig_geom *G,
                       int64_t images, int g);
cudaError_t cig_bias_act(cudaStream_t s, float *y, int64_t n, int64_t plane, int64_t channels,
                         const float *bias, int act);

#ifdef __cplusplus
}
#endif
#endif
