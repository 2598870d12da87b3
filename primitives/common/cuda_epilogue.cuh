/* The GPU primitives' epilogue (CUDA, header only): bias and activation on
 * the way out of a kernel, or as one pass over an NCHW output. */
#ifndef DLAS_CUDA_EPILOGUE_CUH
#define DLAS_CUDA_EPILOGUE_CUH

#include <stdint.h>

#include <cuda_runtime.h>

/* 0 none, 1 relu, 2 relu6 (enum dlas_activation); NaN passes, as in torch */
static __device__ __forceinline__ float cp_act(float v, int act)
{
    if (act == 1)
        return v < 0.0f ? 0.0f : v;
    if (act == 2)
        return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    return v;
}

static __global__ void cp_bias_act_k(float *y, int64_t n, int64_t plane, int64_t channels,
                                     const float *__restrict__ bias, int act)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (bias)
            v += bias[(i / plane) % channels];
        y[i] = cp_act(v, act);
    }
}

/* y (NCHW, n elements, `plane` per channel) += bias[c], then act; nothing
 * to do without either. */
static inline cudaError_t cp_bias_act(cudaStream_t s, float *y, int64_t n, int64_t plane,
                                      int64_t channels, const float *bias, int act)
{
    if (n <= 0 || (!bias && !act))
        return cudaSuccess;
    int64_t blocks = (n + 255) / 256;
    if (blocks > 65535LL * 32)
        blocks = 65535LL * 32;
    cp_bias_act_k<<<(unsigned)blocks, 256, 0, s>>>(y, n, plane, channels, bias, act);
    return cudaGetLastError();
}

#endif
