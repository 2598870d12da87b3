/* Timing a point's plan honestly on a shared machine: the median and its
 * spread (quartiles, min, max) over the timed runs, the load average and the
 * process's CPU time over wall time while they ran, the FMA rate the
 * machine gave (exp_probe.h), and a flag when the spread says the machine
 * was busy. */
#ifndef DLAS_EXP_TIMING_H
#define DLAS_EXP_TIMING_H

#include <stdint.h>

#include <dlas/plan.h>
#include <dlas/results.h>

struct exp_timing {
    double median, min, max, q1, q3; /* ms per batch */
    double spread;                   /* (q3 - q1) / median */
    double load;                     /* 1-minute load average before timing, -1 unknown */
    double cpu_wall;                 /* process CPU seconds / wall seconds while timing;
                                        -1 when the runs took too little time to say */
    double probe;                    /* GFLOP/s a thread the machine gave (exp_probe.h),
                                        the lower of before and after; -1 not probed */
    double probe_wait;               /* seconds spent probing and waiting before timing */
    double line;                     /* ns a cache line's round trip between two threads
                                        took (exp_probe.h), the longer of before and
                                        after; 0 one thread, -1 not probed */
    int noisy;
    char why[160];                   /* what made it noisy */
};

/* A spread of the timed runs above this (IQR over median; with fewer than 4
 * runs, range over median at twice it) marks the timing noisy. */
#define EXP_NOISY_SPREAD 0.10
/* A process given less than this share of one CPU over the timed runs (CPU
 * seconds of all its threads over wall seconds, measured when the runs take
 * 20 ms or more) was waiting for the machine, whatever the spread says. */
#define EXP_STARVED_CPU 0.5

/* Statistics of n run times (sorted in place). */
void exp_timing_stats(double *ms, int64_t n, struct exp_timing *t);
/* warmup untimed runs, then repeat timed ones; on a CPU backend, probed
 * before and after (waiting for the machine while the probe is below
 * EXP_PROBE_FULL of probe_best, or the round trip over EXP_PROBE_NEAR times
 * line_best; 0: no wait on that account). */
int exp_time_plan(struct dlas_plan *plan, const struct dlas_backend *be, int64_t batch,
                  const float *images, float *out, int64_t warmup, int64_t repeat,
                  double probe_best, double line_best, struct exp_timing *t);
void exp_timing_row(const struct exp_timing *t, int64_t batch, struct dlas_row *row);

#endif
