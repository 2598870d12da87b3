/* The direct convolution kernel. A block computes one tile of tile_h x
 * tile_w output positions (one per thread) for oc_block output channels of
 * one image and group. It walks the group's input channels ic_chunk at a
 * time: the input patch that the tile's receptive fields cover and the
 * weights of its oc_block channels are staged in shared memory, then each
 * thread accumulates its oc_block outputs in registers (every weight read is
 * a shared-memory broadcast, every input read is reused oc_block times).
 * Bias and activation are applied as the outputs are stored. */
#include "../common/cuda_epilogue.cuh"

#include "kernels.h"

template <int OCB>
static __global__ void direct_k(struct cdk_geom G, int ic_chunk, int tiles_w,
                                const float *__restrict__ in, const float *__restrict__ w,
                                const float *__restrict__ bias, float *__restrict__ out)
{
    extern __shared__ float sm[];
    const int tw = blockDim.x, th = blockDim.y;
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * tw + tx, nthreads = tw * th;
    const int ph_ = (th - 1) * G.sh + (G.kh - 1) * G.dh + 1; /* patch rows */
    const int pw_ = (tw - 1) * G.sw + (G.kw - 1) * G.dw + 1; /* patch columns */
    const int khw = G.kh * G.kw;
    float *patch = sm;                            /* ic_chunk x ph_ x pw_ */
    float *wts = sm + (size_t)ic_chunk * ph_ * pw_; /* OCB x ic_chunk x kh x kw */

    const int ob_per_group = (G.kg + OCB - 1) / OCB;
    const int g = blockIdx.y / ob_per_group, ob = blockIdx.y % ob_per_group;
    const int k0 = g * G.kg + ob * OCB;             /* first output channel */
    const int kn = min(OCB, G.kg - ob * OCB);       /* channels of this block */
    const int64_t img = blockIdx.z;
    const int64_t oy0 = (int64_t)(blockIdx.x / tiles_w) * th, ox0 = (int64_t)(blockIdx.x % tiles_w) * tw;
    const int64_t iy0 = oy0 * G.sh - G.ph, ix0 = ox0 * G.sw - G.pw;
    const int64_t oy = oy0 + ty, ox = ox0 + tx;

    float acc[OCB];
#pragma unroll
    for (int o = 0; o < OCB; o++)
        acc[o] = 0.0f;

    const float *inb = in + (img * G.c + (int64_t)g * G.cg) * G.ih * G.iw;
    for (int c0 = 0; c0 < G.cg; c0 += ic_chunk) {
        const int cn = min(ic_chunk, G.cg - c0);
        __syncthreads(); /* the previous chunk's readers are done */
        for (int i = tid; i < cn * ph_ * pw_; i += nthreads) {
            int px = i % pw_, py = (i / pw_) % ph_, c = i / (pw_ * ph_);
            int64_t iy = iy0 + py, ix = ix0 + px;
            float v = 0.0f;
            if (iy >= 0 && iy < G.ih && ix >= 0 && ix < G.iw)
                v = inb[((int64_t)(c0 + c) * G.ih + iy) * G.iw + ix];
            patch[i] = v;
        }
        for (int i = tid; i < OCB * cn * khw; i += nthreads) {
            int r = i % khw, c = (i / khw) % cn, o = i / (khw * cn);
            wts[(o * ic_chunk + c) * khw + r] =
                o < kn ? w[((int64_t)(k0 + o) * G.cg + c0 + c) * khw + r] : 0.0f;
        }
        __syncthreads();
        for (int c = 0; c < cn; c++)
            for (int ky = 0; ky < G.kh; ky++)
                for (int kx = 0; kx < G.kw; kx++) {
                    float v = patch[(c * ph_ + ty * G.sh + ky * G.dh) * pw_ + tx * G.sw + kx * G.dw];
                    const float *wp = wts + c * khw + ky * G.kw + kx;
#pragma unroll
                    for (int o = 0; o < OCB; o++)
                        acc[o] = fmaf(v, wp[o * ic_chunk * khw], acc[o]);
                }
    }
    if (oy >= G.oh || ox >= G.ow)
        return;
    float *ob_out = out + (img * G.k + k0) * G.oh * G.ow + oy * G.ow + ox;
#pragma unroll
    for (int o = 0; o < OCB; o++)
        if (o < kn)
            ob_out[(int64_t)o * G.oh * G.ow] = cp_act(acc[o] + (bias ? bias[k0 + o] : 0.0f), G.act);
}

extern "C" size_t cdk_shared_bytes(const struct cdk_geom *G, const struct cdk_cfg *c)
{
    size_t ph_ = (size_t)(c->tile_h - 1) * G->sh + (size_t)(G->kh - 1) * G->dh + 1;
    size_t pw_ = (size_t)(c->tile_w - 1) * G->sw + (size_t)(G->kw - 1) * G->dw + 1;
    return ((size_t)c->ic_chunk * ph_ * pw_ + (size_t)c->oc_block * c->ic_chunk * G->kh * G->kw) *
           sizeof(float);
}

extern "C" size_t cdk_shared_limit(void)
{
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return 48 * 1024;
    }
    return (size_t)v;
}

template <int OCB>
static cudaError_t launch(cudaStream_t s, const struct cdk_geom *G, const struct cdk_cfg *c,
                          int64_t batch, const float *in, const float *w, const float *bias,
                          float *out)
{
    size_t shm = cdk_shared_bytes(G, c);
    if (shm > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(direct_k<OCB>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        if (e != cudaSuccess)
            return e;
    }
    int tiles_w = (int)((G->ow + c->tile_w - 1) / c->tile_w);
    int tiles_h = (int)((G->oh + c->tile_h - 1) / c->tile_h);
    int obs = (G->kg + OCB - 1) / OCB;
    dim3 grid((unsigned)(tiles_w * tiles_h), (unsigned)(obs * (G->k / G->kg)), (unsigned)batch);
    dim3 block((unsigned)c->tile_w, (unsigned)c->tile_h);
    direct_k<OCB><<<grid, block, shm, s>>>(*G, c->ic_chunk, tiles_w, in, w, bias, out);
    return cudaGetLastError();
}

extern "C" cudaError_t cdk_conv(cudaStream_t s, const struct cdk_geom *G, const struct cdk_cfg *c,
                                int64_t batch, const float *in, const float *w, const float *bias,
                                float *out)
{
    switch (c->oc_block) {
    case 4: return launch<4>(s, G, c, batch, in, w, bias, out);
    case 8: return launch<8>(s, G, c, batch, in, w, bias, out);
    case 16: return launch<16>(s, G, c, batch, in, w, bias, out);
    case 32: return launch<32>(s, G, c, batch, in, w, bias, out);
    default: return cudaErrorInvalidValue;
    }
}
