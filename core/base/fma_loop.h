/* The FMA throughput loop: the machine's fp32 ceiling (bench_peak) and a
 * short probe of how much of it the machine gives right now (bench_plan's
 * `probe` command, which bench/vs_ort.py runs around every timed side, and
 * the probe around an experiment point's timed runs, core/exp/exp_probe.c).
 * Not installed. */
#ifndef DLAS_FMA_LOOP_H
#define DLAS_FMA_LOOP_H

/* iters x 12 independent FMAs of `width` lanes (16 = 512-bit where the
 * build targets AVX-512, else 8) on the calling thread. Returns a value that
 * depends on every accumulator, so the work cannot be optimised away. */
float fma_loop(int width, long iters);
/* FLOPs one call of fma_loop(width, iters) does. */
double fma_loop_flops(int width, long iters);
/* The widest width fma_loop runs in this build: 16 or 8. */
int fma_loop_widest(void);
/* GFLOP/s of `threads` OpenMP threads together, each running
 * fma_loop(fma_loop_widest(), iters) once, timed on the wall clock from
 * before the region to after it (OpenMP builds; else one thread). */
double fma_loop_rate(int threads, long iters);

#endif
