/* Depthwise convolution: every output channel reads one input channel, so
 * there is no reduction over channels to share and the layer is bound by
 * memory. One thread computes `per_thread` neighbouring outputs of a row,
 * reading the input through the read-only cache (neighbouring threads and
 * the kernel's taps reuse each other's lines) and the channel's taps from
 * registers when the kernel is 3x3; bias and activation as it stores. */
#include "../common/cuda_epilogue.cuh"

#include "kernels.h"

template <int PT, int KH, int KW>
static __global__ void dw_k(struct cdw_geom G, int64_t total, const float *__restrict__ in,
                            const float *__restrict__ w, const float *__restrict__ bias,
                            float *__restrict__ out)
{
    const int kh = KH ? KH : G.kh, kw = KW ? KW : G.kw;
    const int64_t ow_groups = (G.ow + PT - 1) / PT;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t owg = t % ow_groups, oy = (t / ow_groups) % G.oh, pl = t / (ow_groups * G.oh);
        int64_t k = pl % G.k, img = pl / G.k;
        int64_t c = k / G.mult;
        const float *x = in + (img * G.c + c) * G.ih * G.iw;
        const float *wk = w + k * kh * kw;
        float acc[PT];
#pragma unroll
        for (int j = 0; j < PT; j++)
            acc[j] = 0.0f;
        const int64_t ox0 = owg * PT;
        for (int ky = 0; ky < kh; ky++) {
            int64_t iy = oy * G.sh - G.ph + (int64_t)ky * G.dh;
            if (iy < 0 || iy >= G.ih)
                continue;
            const float *xr = x + iy * G.iw;
            for (int kx = 0; kx < kw; kx++) {
                float wv = __ldg(wk + ky * kw + kx);
#pragma unroll
                for (int j = 0; j < PT; j++) {
                    int64_t ix = (ox0 + j) * G.sw - G.pw + (int64_t)kx * G.dw;
                    if (ix >= 0 && ix < G.iw)
                        acc[j] = fmaf(__ldg(xr + ix), wv, acc[j]);
                }
            }
        }
        float b = bias ? bias[k] : 0.0f;
        float *y = out + (pl * G.oh + oy) * G.ow;
#pragma unroll
        for (int j = 0; j < PT; j++)
            if (ox0 + j < G.ow)
                y[ox0 + j] = cp_act(acc[j] + b, G.act);
    }
}

template <int PT>
static cudaError_t launch(cudaStream_t s, const struct cdw_geom *G, int threads, int64_t batch,
                          const float *in, const float *w, const float *bias, float *out)
{
    int64_t total = batch * G->k * G->oh * ((G->ow + PT - 1) / PT);
    int64_t blocks = (total + threads - 1) / threads;
    if (blocks > 65535LL * 32)
        blocks = 65535LL * 32;
    if (G->kh == 3 && G->kw == 3)
        dw_k<PT, 3, 3><<<(unsigned)blocks, threads, 0, s>>>(*G, total, in, w, bias, out);
    else if (G->kh == 5 && G->kw == 5)
        dw_k<PT, 5, 5><<<(unsigned)blocks, threads, 0, s>>>(*G, total, in, w, bias, out);
    else
        dw_k<PT, 0, 0><<<(unsigned)blocks, threads, 0, s>>>(*G, total, in, w, bias, out);
    return cudaGetLastError();
}

extern "C" cudaError_t cdw_conv(cudaStream_t s, const struct cdw_geom *G, int threads,
                                int per_thread, int64_t batch, const float *in, const float *w,
                                const float *bias, float *out)
{
    switch (per_thread) {
    case 1: return launch<1>(s, G, threads, batch, in, w, bias, out);
    case 2: return launch<2>(s, G, threads, batch, in, w, bias, out);
    case 4: return launch<4>(s, G, threads, batch, in, w, bias, out);
    default: return cudaErrorInvalidValue;
    }
}
