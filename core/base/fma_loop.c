/* FMA throughput loop shared by the experiments' machine probe, bench_peak
 * and bench_plan (fma_loop.h). */
#include <time.h>

#include "fma_loop.h"

#define ACC 12

#if defined(__AVX512F__)
typedef float v16 __attribute__((vector_size(64)));
#endif
typedef float v8 __attribute__((vector_size(32)));

/* ACC independent chains in named registers: enough to cover the FMA
 * latency at full throughput. */
#define FMA_LOOP(T, W)                                                                   \
    static float fma_##T(long iters)                                                     \
    {                                                                                    \
        T m, a, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11;                        \
        for (int l = 0; l < W; l++) {                                                    \
            m[l] = 0.999999f;                                                            \
            a[l] = 1e-7f;                                                                \
            x0[l] = x1[l] = x2[l] = x3[l] = x4[l] = x5[l] = (float)l;                    \
            x6[l] = x7[l] = x8[l] = x9[l] = x10[l] = x11[l] = (float)-l;                 \
        }                                                                                \
        for (long k = 0; k < iters; k++) {                                               \
            x0 = x0 * m + a;                                                             \
            x1 = x1 * m + a;                                                             \
            x2 = x2 * m + a;                                                             \
            x3 = x3 * m + a;                                                             \
            x4 = x4 * m + a;                                                             \
            x5 = x5 * m + a;                                                             \
            x6 = x6 * m + a;                                                             \
            x7 = x7 * m + a;                                                             \
            x8 = x8 * m + a;                                                             \
            x9 = x9 * m + a;                                                             \
            x10 = x10 * m + a;                                                           \
            x11 = x11 * m + a;                                                           \
        }                                                                                \
        T t = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11;               \
        float s = 0;                                                                     \
        for (int l = 0; l < W; l++)                                                      \
            s += t[l];                                                                   \
        return s;                                                                        \
    }
#if defined(__AVX512F__)
FMA_LOOP(v16, 16)
#endif
FMA_LOOP(v8, 8)

float fma_loop(int width, long iters)
{
#if defined(__AVX512F__)
    if (width == 16)
        return fma_v16(iters);
#endif
    (void)width;
    return fma_v8(iters);
}

double fma_loop_flops(int width, long iters)
{
#if !defined(__AVX512F__)
    width = 8;
#endif
    return (double)iters * ACC * (width == 16 ? 16 : 8) * 2.0;
}

static volatile float rate_sink; /* keeps the loops' results alive */

double fma_loop_rate(int threads, long iters)
{
    if (threads < 1)
        threads = 1;
    const int width = fma_loop_widest();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
#pragma omp parallel num_threads(threads)
    {
        float s = fma_loop(width, iters);
#pragma omp atomic
        rate_sink += s;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double t = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    return t > 0 ? fma_loop_flops(width, iters) * threads / t / 1e9 : 0;
}

int fma_loop_widest(void)
{
#if defined(__AVX512F__)
    return 16;
#else
    return 8;
#endif
}
