/* im2col on the device: one thread per column-matrix element, so that
 * consecutive threads write consecutive output positions (coalesced) and
 * read input rows that neighbour each other. */
#include "../common/cuda_epilogue.cuh"

#include "kernels.h"

/* col[img][k][p], k = (c, ky, kx) over the group's in_c/groups channels,
 * p = (oy, ox); images `img0 ..` of the batch, group g. */
static __global__ void im2col_k(const float *__restrict__ in, float *__restrict__ col,
                                struct cig_geom G, int64_t images, int g)
{
    const int64_t P = G.oh * G.ow, K = G.cg * G.kh * G.kw, n = images * K * P;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % P, k = (i / P) % K, img = i / (P * K);
        int64_t ox = p % G.ow, oy = p / G.ow;
        int kx = (int)(k % G.kw), ky = (int)((k / G.kw) % G.kh);
        int64_t c = k / (G.kw * G.kh) + (int64_t)g * G.cg;
        int64_t iy = oy * G.sh - G.ph + ky * G.dh, ix = ox * G.sw - G.pw + kx * G.dw;
        float v = 0.0f;
        if (iy >= 0 && iy < G.ih && ix >= 0 && ix < G.iw)
            v = in[((img * G.c + c) * G.ih + iy) * G.iw + ix];
        col[i] = v;
    }
}

static unsigned blocks_for(int64_t n)
{
    int64_t b = (n + 255) / 256;
    return (unsigned)(b > 65535LL * 32 ? 65535LL * 32 : b);
}

extern "C" cudaError_t cig_im2col(cudaStream_t s, const float *in, float *col,
                                  const struct cig_geom *G, int64_t images, int g)
{
    int64_t n = images * G->cg * G->kh * G->kw * G->oh * G->ow;
    if (n <= 0)
        return cudaSuccess;
    im2col_k<<<blocks_for(n), 256, 0, s>>>(in, col, *G, images, g);
    return cudaGetLastError();
}

extern "C" cudaError_t cig_bias_act(cudaStream_t s, float *y, int64_t n, int64_t plane,
                                    int64_t channels, const float *bias, int act)
{
    return cp_bias_act(s, y, n, plane, channels, bias, act);
}
