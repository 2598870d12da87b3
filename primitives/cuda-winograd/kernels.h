#ifndef DLAS_CUDA_WINOGRAD_KERNELS_H
#define DLAS_CUDA_WINOGRAD_KERNELS_H
#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cwg_geom {
    int64_t c, ih, iw, k, oh, ow; /* channels in/out, sizes */
    int ph, pw, m;                /* padding; output tile m (2 or 4) */
    int64_t tiles_h, tiles_w;     /* tiles per image */
    int act;
};

/* V[xi][c][p] = B^T d B for every tile p of `images` images (p counts
 * images x tiles_h x tiles_w) and channel c; P = images * tiles. */
cudaError_t cwg_input(cudaStream_t s, const struct cwg_geom *G, int64_t images, const float *in,
                      float *V);
/* out = A^T M A (+ bias, act) from M[xi][k][p], clipped at the borders. */
cudaError_t cwg_output(cudaStream_t s, const struct cwg_geom *G, int64_t images, const float *M,
                       const float *bias, float *out);

#ifdef __cplusplus
}
#endif
#endif
