/* The cuda backend's kernels for the graph's non-convolution operators.
 * Memory-bound, so each is one pass: grid-stride loops over the elements,
 * the activation of a fused relu applied on the way out. Results match the
 * reference operators up to float rounding, with the same NaN behaviour
 * (relu keeps NaN, max pooling propagates it). */
#include <math.h>

#include "kernels.h"

namespace {

__device__ __forceinline__ float act_of(float v, int act)
{
    /* comparisons are false for NaN, so NaN passes through as in torch */
    if (act == 1)
        return v < 0.0f ? 0.0f : v;
    if (act == 2)
        return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    return v;
}

unsigned blocks_for(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b > 65535LL * 32)
        b = 65535LL * 32; /* grid-stride loops cover the rest */
    return (unsigned)(b < 1 ? 1 : b);
}

__global__ void affine_k(const float *__restrict__ x, float *__restrict__ y, int64_t n,
                         int64_t plane, int64_t channels, const float *__restrict__ scale,
                         const float *__restrict__ shift, int act)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t c = (i / plane) % channels;
        y[i] = act_of(fmaf(x[i], scale[c], shift[c]), act);
    }
}

__global__ void act_k(const float *__restrict__ x, float *y, int64_t n, int act)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = act_of(x[i], act);
}

__global__ void add_k(const float *__restrict__ a, const float *__restrict__ b, float *y,
                      int64_t n, int act)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = act_of(a[i] + b[i], act);
}

__global__ void add4_k(const float4 *__restrict__ a, const float4 *__restrict__ b, float4 *y,
                       int64_t n4, int act)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n4;
         i += (int64_t)gridDim.x * blockDim.x) {
        float4 u = a[i], v = b[i], r;
        r.x = act_of(u.x + v.x, act);
        r.y = act_of(u.y + v.y, act);
        r.z = act_of(u.z + v.z, act);
        r.w = act_of(u.w + v.w, act);
        y[i] = r;
    }
}

__global__ void bias_rows_k(float *y, int64_t rows, int64_t cols, const float *__restrict__ bias,
                            int act)
{
    int64_t n = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = act_of(y[i] + (bias ? bias[i % cols] : 0.0f), act);
}

__global__ void maxpool_k(cbk_pool p, const float *__restrict__ x, float *__restrict__ y, int act)
{
    int64_t n = p.planes * p.oh * p.ow;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ow = i % p.ow, oh = (i / p.ow) % p.oh, pl = i / (p.ow * p.oh);
        int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
        int64_t h1 = min(h0 + p.kh, p.ih), w1 = min(w0 + p.kw, p.iw);
        const float *xp = x + pl * p.ih * p.iw;
        float m = -INFINITY;
        for (int64_t ih = max(h0, (int64_t)0); ih < h1; ih++)
            for (int64_t iw = max(w0, (int64_t)0); iw < w1; iw++) {
                float v = xp[ih * p.iw + iw];
                if (v > m || isnan(v))
                    m = v;
            }
        y[i] = act_of(m, act);
    }
}

__global__ void avgpool_k(cbk_pool p, const float *__restrict__ x, float *__restrict__ y, int act)
{
    int64_t n = p.planes * p.oh * p.ow;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ow = i % p.ow, oh = (i / p.ow) % p.oh, pl = i / (p.ow * p.oh);
        int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
        int64_t h1 = min(h0 + p.kh, p.ih + p.ph), w1 = min(w0 + p.kw, p.iw + p.pw);
        int64_t pool = (h1 - h0) * (w1 - w0);
        h0 = max(h0, (int64_t)0);
        w0 = max(w0, (int64_t)0);
        h1 = min(h1, p.ih);
        w1 = min(w1, p.iw);
        if (h0 >= h1 || w0 >= w1) {
            y[i] = act_of(0.0f, act);
            continue;
        }
        const float *xp = x + pl * p.ih * p.iw;
        float sum = 0.0f;
        for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++)
                sum += xp[ih * p.iw + iw];
        int64_t div = p.count_include_pad ? pool : (h1 - h0) * (w1 - w0);
        y[i] = act_of(sum / (float)div, act);
    }
}

/* one warp per plane: lanes stride over the plane, then a shuffle tree */
__global__ void gap_k(const float *__restrict__ x, float *__restrict__ y, int64_t planes,
                      int64_t size, int act)
{
    int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (warp >= planes)
        return;
    const float *xp = x + warp * size;
    float s = 0.0f;
    for (int64_t k = lane; k < size; k += 32)
        s += xp[k];
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_down_sync(0xffffffffu, s, o);
    if (lane == 0)
        y[warp] = act_of(s / (float)size, act);
}

/* one block per (sample, position); C strided by S */
__global__ void softmax_k(const float *__restrict__ x, float *__restrict__ y, int64_t C, int64_t S)
{
    int64_t row = blockIdx.x, b = row / S, s = row % S;
    const float *xp = x + b * C * S + s;
    float *yp = y + b * C * S + s;
    __shared__ float red[32];
    __shared__ float bcast;
    float m = -INFINITY;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        float v = xp[c * S];
        if (v > m || isnan(v))
            m = v;
    }
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_down_sync(0xffffffffu, m, o);
        if (v > m || isnan(v))
            m = v;
    }
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        float r = -INFINITY;
        for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++)
            if (red[w] > r || isnan(red[w]))
                r = red[w];
        bcast = r;
    }
    __syncthreads();
    m = bcast;
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        sum += expf(xp[c * S] - m);
    for (int o = 16; o > 0; o >>= 1)
        sum += __shfl_down_sync(0xffffffffu, sum, o);
    __syncthreads();
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        float r = 0.0f;
        for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++)
            r += red[w];
        bcast = r;
    }
    __syncthreads();
    float inv = 1.0f / bcast;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        yp[c * S] = expf(xp[c * S] - m) * inv;
}

} // namespace

extern "C" {

cudaError_t cbk_affine(cudaStream_t s, const float *x, float *y, int64_t n, int64_t plane,
                       int64_t channels, const float *scale, const float *shift, int act)
{
    if (n <= 0)
        return cudaSuccess;
    affine_k<<<blocks_for(n, 256), 256, 0, s>>>(x, y, n, plane, channels, scale, shift, act);
    return cudaGetLastError();
}

cudaError_t cbk_act(cudaStream_t s, const float *x, float *y, int64_t n, int act)
{
    if (n <= 0)
        return cudaSuccess;
    act_k<<<blocks_for(n, 256), 256, 0, s>>>(x, y, n, act);
    return cudaGetLastError();
}

cudaError_t cbk_add(cudaStream_t s, const float *a, const float *b, float *y, int64_t n, int act)
{
    if (n <= 0)
        return cudaSuccess;
    if (n % 4 == 0 && ((uintptr_t)a | (uintptr_t)b | (uintptr_t)y) % 16 == 0)
        add4_k<<<blocks_for(n / 4, 256), 256, 0, s>>>((const float4 *)a, (const float4 *)b,
                                                      (float4 *)y, n / 4, act);
    else
        add_k<<<blocks_for(n, 256), 256, 0, s>>>(a, b, y, n, act);
    return cudaGetLastError();
}

cudaError_t cbk_bias_rows(cudaStream_t s, float *y, int64_t rows, int64_t cols,
                          const float *bias, int act)
{
    if (rows * cols <= 0 || (!bias && !act))
        return cudaSuccess;
    bias_rows_k<<<blocks_for(rows * cols, 256), 256, 0, s>>>(y, rows, cols, bias, act);
    return cudaGetLastError();
}

cudaError_t cbk_maxpool(cudaStream_t s, const struct cbk_pool *p, const float *x, float *y,
                        int act)
{
    int64_t n = p->planes * p->oh * p->ow;
    if (n <= 0)
        return cudaSuccess;
    maxpool_k<<<blocks_for(n, 256), 256, 0, s>>>(*p, x, y, act);
    return cudaGetLastError();
}

cudaError_t cbk_avgpool(cudaStream_t s, const struct cbk_pool *p, const float *x, float *y,
                        int act)
{
    int64_t n = p->planes * p->oh * p->ow;
    if (n <= 0)
        return cudaSuccess;
    avgpool_k<<<blocks_for(n, 256), 256, 0, s>>>(*p, x, y, act);
    return cudaGetLastError();
}

cudaError_t cbk_global_avgpool(cudaStream_t s, const float *x, float *y, int64_t planes,
                               int64_t size, int act)
{
    if (planes <= 0)
        return cudaSuccess;
    int64_t threads = planes * 32;
    gap_k<<<(unsigned)((threads + 255) / 256), 256, 0, s>>>(x, y, planes, size, act);
    return cudaGetLastError();
}

cudaError_t cbk_softmax(cudaStream_t s, const float *x, float *y, int64_t batch, int64_t C,
                        int64_t S)
{
    if (batch * S <= 0)
        return cudaSuccess;
    int threads = C >= 1024 ? 1024 : (int)((C + 31) / 32 * 32);
    softmax_k<<<(unsigned)(batch * S), threads, 0, s>>>(x, y, C, S);
    return cudaGetLastError();
}

} // extern "C"
