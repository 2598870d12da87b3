#ifndef DLAS_CUDA_DIRECT_KERNELS_H
#define DLAS_CUDA_DIRECT_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cdk_geom {
    int64_t c, ih, iw, k, oh, ow; /* channels in/out, sizes */
    int cg, kg;                   /* channels per group in, out */
    int kh, kw, sh, sw, ph, pw, dh, dw;
    int act;
};

struct cdk_cfg {
    int oc_block;  /* output channels per block: 4, 8, 16 or 32 */
    int tile_w, tile_h; /* output positions per block (one per thread) */
    int ic_chunk;  /* input channels staged in shared memory at once */
};

/* Shared memory a launch of this configuration needs, in bytes. */
size_t cdk_shared_bytes(const struct cdk_geom *G, const struct cdk_cfg *c);
/* The largest dynamic shared memory a block may have on the current device. */
size_t cdk_shared_limit(void);
cudaError_t cdk_conv(cudaStream_t s, const struct cdk_geom *G, const struct cdk_cfg *c,
                     int64_t batch, const float *in, const float *w, const float *bias,
                     float *out);

#ifdef __cplusplus
}
#endif
#endif
