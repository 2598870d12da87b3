/* bench_peak: the ceilings every primitive is reported against.
 *
 *   - FMA throughput: independent fused multiply-adds on 512-bit and 256-bit
 *     registers (12 accumulators, enough to cover the FMA latency), on 1 and
 *     on 2 threads (each thread its own registers);
 *   - int8 dot-product throughput: independent AVX-512 VNNI vpdpbusd on
 *     512-bit registers (u8 x s8 -> s32: 64 multiply-adds into 16 int32
 *     lanes per instruction; 16 accumulators), in GMAC/s and GOP/s (2 ops
 *     per multiply-add, as the FMA's 2 FLOPs), with the int8:fp32 ratio
 *     against the 512-bit FMA figure of the same thread count — the ceiling
 *     the int8 primitives (and PyTorch's quantized engine) are quoted
 *     against in bench/README-int8.md;
 *   - OpenBLAS SGEMM on large square matrices, 1 and 2 threads;
 *   - what threads pay to share data: the round trip of a cache line
 *     between two threads (one writes a flag, the other answers), and the
 *     rate at which 1 and 2 threads read 512 MB from memory. A VM's two
 *     vCPUs may sit on different core complexes (or sockets): a layer's
 *     output that the other thread reads next then comes from far away,
 *     and each thread that reads all of a layer's weights reads them from
 *     memory on its own.
 *
 * Medians (and best) of repeated runs, GFLOP/s with 2 FLOPs per FMA lane.
 * --cpu-time times the throughput loops with the process's CPU clock (on a
 * shared machine the wall clock also counts the time other processes hold
 * the core; with T threads the rate is work / (CPU seconds / T)).
 * Set OPENBLAS_CORETYPE (e.g. Haswell) in the environment to compare
 * OpenBLAS's kernel choices; it is read when the library loads.
 *
 *   bench_peak [--repeat N] [--sizes 1024,2048,4096] [--threads 1,2] [--cpu-time] */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bench_common.h"
#include "../core/base/fma_loop.h"
#include "../core/base/line_trip.h"

static volatile float sink;
static volatile int isink;
static int cpu_clock; /* --cpu-time */

static double clock_now(void)
{
    return cpu_clock ? bench_cpu_now() : bench_now();
}

/* Seconds one thread of `threads` spent: the CPU clock counts every
 * thread of the process. */
static double elapsed(double t0, int threads)
{
    double t = clock_now() - t0;
    return cpu_clock ? t / threads : t;
}

#define VNNI_ACC 16
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

static int have_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}

/* iters x VNNI_ACC vpdpbusd on this thread: VNNI_ACC independent int32
 * chains (enough to cover the instruction's latency at full throughput),
 * register operands only; the sum of every lane keeps the work alive. */
VNNI_TARGET static int vnni_loop(long iters)
{
    __m512i acc[VNNI_ACC];
    __m512i a = _mm512_set1_epi8(3);
    const __m512i b = _mm512_set1_epi8(-2);
    for (int i = 0; i < VNNI_ACC; i++)
        acc[i] = _mm512_set1_epi32(i);
    for (long k = 0; k < iters; k++) {
        _Pragma("GCC unroll 16") for (int i = 0; i < VNNI_ACC; i++)
            acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        /* an empty asm that claims to change `a`: the compiler may not
         * fold repeated additions of a constant product into one */
        __asm__ volatile("" : "+v"(a));
    }
    __m512i t = acc[0];
    for (int i = 1; i < VNNI_ACC; i++)
        t = _mm512_add_epi32(t, acc[i]);
    return _mm512_reduce_add_epi32(t);
}

/* multiply-adds per second (64 per vpdpbusd) on `threads` threads */
static double vnni_gmacs(int threads, long iters)
{
    double t0 = clock_now();
#pragma omp parallel num_threads(threads)
    {
        int s = vnni_loop(iters);
#pragma omp critical
        isink += s;
    }
    double t = elapsed(t0, threads);
    return (double)iters * VNNI_ACC * 64.0 * threads / t / 1e9;
}

static double fma_gflops(int width, int threads, long iters)
{
    double t0 = clock_now();
#pragma omp parallel num_threads(threads)
    {
        float s = fma_loop(width, iters);
#pragma omp critical
        sink += s;
    }
    double t = elapsed(t0, threads);
    return fma_loop_flops(width, iters) * threads / t / 1e9;
}

/* GB/s at which `threads` threads read the n floats of a (each its share). */
static double read_gbs(const float *a, long n, int threads)
{
    const double t0 = bench_now();
    float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        /* 64 independent sums (vectors of them), so the adds keep up with
         * memory; n is a multiple of 64 */
        float acc[64] = {0};
#pragma omp for schedule(static)
        for (long i = 0; i < n; i += 64)
            for (int k = 0; k < 64; k++)
                acc[k] += a[i + k];
        for (int k = 0; k < 64; k++)
            total += acc[k];
    }
    const double t = bench_now() - t0;
    sink += total;
    return (double)n * sizeof(float) / t / 1e9;
}

static double sgemm_gflops(int n, int threads, const float *a, const float *b, float *c)
{
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    double t0 = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double t = bench_now() - t0;
    return 2.0 * n * (double)n * n / t / 1e9;
}

int main(int argc, char **argv)
{
    int repeat = 7, sizes[8] = {1024, 2048, 4096}, n_sizes = 3, threads[8] = {1, 2}, n_thr = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cpu-time"))
            cpu_clock = 1;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if ((!strcmp(argv[i], "--sizes") || !strcmp(argv[i], "--threads")) && i + 1 < argc) {
            int *dst = argv[i][2] == 's' ? sizes : threads, n = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            for (char *t = strtok(buf, ","); t && n < 8; t = strtok(NULL, ","))
                dst[n++] = atoi(t);
            if (dst == sizes)
                n_sizes = n;
            else
                n_thr = n;
        } else {
            fprintf(stderr, "usage: bench_peak [--repeat N] [--sizes 1024,2048] [--threads 1,2] "
                            "[--cpu-time]\n");
            return 2;
        }
    }
    if (repeat < 1)
        repeat = 1;
    char load[128];
    bench_loadavg(load, sizeof load);
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("# %s; OpenBLAS %s, OPENBLAS_CORETYPE=%s; median (best) of %d runs; %s clock\n",
           load, openblas_get_config(), core ? core : "(auto)", repeat,
           cpu_clock ? "CPU (throughput loops)" : "wall");
    printf("%-28s %8s %12s %12s\n", "measure", "threads", "GFLOP/s", "best");
    double *v = malloc((size_t)repeat * sizeof *v);
    static const int widths[] = {16, 8};
    double fma512[8] = {0};
    for (int wi = 0; wi < 2; wi++) {
        if (widths[wi] > fma_loop_widest())
            continue;
        for (int ti = 0; ti < n_thr; ti++) {
            fma_gflops(widths[wi], threads[ti], 2000000); /* wake the cores up */
            for (int r = 0; r < repeat; r++)
                v[r] = fma_gflops(widths[wi], threads[ti], 20000000);
            struct bench_stats s = bench_stats(v, repeat);
            if (widths[wi] == 16)
                fma512[ti] = s.median;
            printf("%-28s %8d %12.1f %12.1f\n",
                   widths[wi] == 16 ? "fma zmm (512-bit)" : "fma ymm (256-bit)",
                   threads[ti], s.median, s.max);
            fflush(stdout);
        }
    }
    /* int8: GMAC/s, GOP/s (2 per multiply-add) and the ratio to the fp32 FMA */
    if (have_vnni()) {
        for (int ti = 0; ti < n_thr; ti++) {
            vnni_gmacs(threads[ti], 2000000);
            for (int r = 0; r < repeat; r++)
                v[r] = vnni_gmacs(threads[ti], 10000000);
            struct bench_stats s = bench_stats(v, repeat);
            printf("%-28s %8d %12.1f %12.1f   GOP/s (2 per MAC); GMAC/s %.1f (best %.1f)",
                   "vnni vpdpbusd zmm (u8*s8)", threads[ti], 2 * s.median, 2 * s.max, s.median,
                   s.max);
            if (fma512[ti] > 0)
                printf("; int8:fp32 %.2f", 2 * s.median / fma512[ti]);
            printf("\n");
            fflush(stdout);
        }
    } else {
        printf("%-28s   (this CPU lacks AVX-512 VNNI)\n", "vnni vpdpbusd zmm (u8*s8)");
    }
    for (int si = 0; si < n_sizes; si++) {
        int n = sizes[si];
        float *a = malloc((size_t)n * n * sizeof(float));
        float *b = malloc((size_t)n * n * sizeof(float));
        float *c = malloc((size_t)n * n * sizeof(float));
        if (!a || !b || !c)
            return 1;
        for (long i = 0; i < (long)n * n; i++) {
            a[i] = (float)(i % 7) * 0.1f;
            b[i] = (float)(i % 5) * 0.2f;
        }
        for (int ti = 0; ti < n_thr; ti++) {
            sgemm_gflops(n, threads[ti], a, b, c);
            for (int r = 0; r < repeat; r++)
                v[r] = sgemm_gflops(n, threads[ti], a, b, c);
            struct bench_stats s = bench_stats(v, repeat);
            char what[64];
            snprintf(what, sizeof what, "sgemm %dx%dx%d", n, n, n);
            printf("%-28s %8d %12.1f %12.1f\n", what, threads[ti], s.median, s.max);
            fflush(stdout);
        }
        free(a);
        free(b);
        free(c);
    }
    /* sharing: a cache line's round trip, and reading from memory */
    if (omp_get_num_procs() >= 2) {
        line_trip_ns(10000);
        for (int r = 0; r < repeat; r++)
            v[r] = line_trip_ns(100000);
        struct bench_stats s = bench_stats(v, repeat);
        printf("%-28s %8d %12.1f %12.1f   ns: a cache line to the other thread and back "
               "(best is the lowest)\n",
               "line round trip", 2, s.median, s.min);
    }
    const long n_read = 128L << 20; /* floats: 512 MB, past any cache */
    float *big = malloc((size_t)n_read * sizeof(float));
    if (big) {
        for (long i = 0; i < n_read; i++)
            big[i] = 1.0f;
        for (int ti = 0; ti < n_thr; ti++) {
            for (int r = 0; r < repeat; r++)
                v[r] = read_gbs(big, n_read, threads[ti]);
            struct bench_stats s = bench_stats(v, repeat);
            printf("%-28s %8d %12.1f %12.1f   GB/s\n", "read 512 MB", threads[ti], s.median,
                   s.max);
            fflush(stdout);
        }
        free(big);
    }
    bench_loadavg(load, sizeof load);
    printf("# after: %s\n", load);
    free(v);
    return 0;
}
