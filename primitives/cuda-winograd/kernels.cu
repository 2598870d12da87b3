/* Winograd F(m x m, 3 x 3) transforms on the GPU (Lavin & Gray 2016): the
 * input transform and the output transform are own kernels, one thread per
 * (channel, tile); the alpha^2 element-wise products summed over channels
 * are alpha^2 independent GEMMs, which cuBLAS runs as one strided-batched
 * call between them (see winograd.c). Transform matrices as in the paper:
 * F(2x2,3x3) points 0, +-1; F(4x4,3x3) points 0, +-1, +-2. */
#include "../common/cuda_epilogue.cuh"

#include "kernels.h"

/* B^T for alpha = 4 and 6 */
__constant__ float BT4[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
__constant__ float BT6[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
/* A^T for m = 2 and 4 */
__constant__ float AT2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
__constant__ float AT4[4][6] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

template <int M>
static __global__ void input_k(struct cwg_geom G, int64_t images, const float *__restrict__ in,
                               float *__restrict__ V)
{
    constexpr int A = M + 2;
    const int64_t tiles = G.tiles_h * G.tiles_w, P = images * tiles, n = G.c * P;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % P, c = i / P;
        int64_t img = p / tiles, t = p % tiles;
        int64_t y0 = (t / G.tiles_w) * M - G.ph, x0 = (t % G.tiles_w) * M - G.pw;
        const float *x = in + (img * G.c + c) * G.ih * G.iw;
        float d[A][A];
#pragma unroll
        for (int r = 0; r < A; r++)
#pragma unroll
            for (int q = 0; q < A; q++) {
                int64_t iy = y0 + r, ix = x0 + q;
                d[r][q] = (iy >= 0 && iy < G.ih && ix >= 0 && ix < G.iw) ? x[iy * G.iw + ix] : 0.0f;
            }
        float tmp[A][A];
#pragma unroll
        for (int r = 0; r < A; r++) /* tmp = B^T d */
#pragma unroll
            for (int q = 0; q < A; q++) {
                float s = 0.0f;
#pragma unroll
                for (int k = 0; k < A; k++)
                    s += (A == 4 ? BT4[r][k] : BT6[r][k]) * d[k][q];
                tmp[r][q] = s;
            }
#pragma unroll
        for (int r = 0; r < A; r++) /* V = tmp B */
#pragma unroll
            for (int q = 0; q < A; q++) {
                float s = 0.0f;
#pragma unroll
                for (int k = 0; k < A; k++)
                    s += tmp[r][k] * (A == 4 ? BT4[q][k] : BT6[q][k]);
                V[((int64_t)(r * A + q) * G.c + c) * P + p] = s;
            }
    }
}

template <int M>
static __global__ void output_k(struct cwg_geom G, int64_t images, const float *__restrict__ Mx,
                                const float *__restrict__ bias, float *__restrict__ out)
{
    constexpr int A = M + 2;
    const int64_t tiles = G.tiles_h * G.tiles_w, P = images * tiles, n = G.k * P;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % P, k = i / P;
        int64_t img = p / tiles, t = p % tiles;
        int64_t y0 = (t / G.tiles_w) * M, x0 = (t % G.tiles_w) * M;
        float m[A][A];
#pragma unroll
        for (int r = 0; r < A; r++)
#pragma unroll
            for (int q = 0; q < A; q++)
                m[r][q] = Mx[((int64_t)(r * A + q) * G.k + k) * P + p];
        float tmp[M][A];
#pragma unroll
        for (int r = 0; r < M; r++) /* tmp = A^T m */
#pragma unroll
            for (int q = 0; q < A; q++) {
                float s = 0.0f;
#pragma unroll
                for (int j = 0; j < A; j++)
                    s += (M == 2 ? AT2[r][j] : AT4[r][j]) * m[j][q];
                tmp[r][q] = s;
            }
        const float b = bias ? bias[k] : 0.0f;
        float *y = out + (img * G.k + k) * G.oh * G.ow;
#pragma unroll
        for (int r = 0; r < M; r++)
#pragma unroll
            for (int q = 0; q < M; q++) { /* y = tmp A */
                float s = 0.0f;
#pragma unroll
                for (int j = 0; j < A; j++)
                    s += tmp[r][j] * (M == 2 ? AT2[q][j] : AT4[q][j]);
                if (y0 + r < G.oh && x0 + q < G.ow)
                    y[(y0 + r) * G.ow + x0 + q] = cp_act(s + b, G.act);
            }
    }
}

static unsigned blocks_for(int64_t n)
{
    int64_t b = (n + 127) / 128;
    return (unsigned)(b > 65535LL * 32 ? 65535LL * 32 : (b < 1 ? 1 : b));
}

extern "C" cudaError_t cwg_input(cudaStream_t s, const struct cwg_geom *G, int64_t images,
                                 const float *in, float *V)
{
    int64_t n = G->c * images * G->tiles_h * G->tiles_w;
    if (G->m == 2)
        input_k<2><<<blocks_for(n), 128, 0, s>>>(*G, images, in, V);
    else
        input_k<4><<<blocks_for(n), 128, 0, s>>>(*G, images, in, V);
    return cudaGetLastError();
}

extern "C" cudaError_t cwg_output(cudaStream_t s, const struct cwg_geom *G, int64_t images,
                                  const float *Mx, const float *bias, float *out)
{
    int64_t n = G->k * images * G->tiles_h * G->tiles_w;
    if (G->m == 2)
        output_k<2><<<blocks_for(n), 128, 0, s>>>(*G, images, Mx, bias, out);
    else
        output_k<4><<<blocks_for(n), 128, 0, s>>>(*G, images, Mx, bias, out);
    return cudaGetLastError();
}
