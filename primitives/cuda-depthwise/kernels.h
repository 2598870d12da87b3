#ifndef DLAS_CUDA_DEPTHWISE_KERNELS_H
#define DLAS_CUDA_DEPTHWISE_KERNELS_H
#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cdw_geom {
    int64_t c, ih, iw, k, oh, ow, mult; /* out channel k reads input channel k / mult */
    int kh, kw, sh, sw, ph, pw, dh, dw, act;
};

cudaError_t cdw_conv(cudaStream_t s, const struct cdw_geom *G, int threads, int per_thread,
                     int64_t batch, const float *in, const float *w, const float *bias,
                     float *out);

#ifdef __cplusplus
}
#endif
#endif
