#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dlas/plugin.h>
#include <dlas/status.h>

#include "exp_probe.h"
#include "exp_timing.h"
#include "../base/sysinfo.h"
#include "../base/util.h"

/* local, so the test suites can compile this file in beside the library */
static int cmp_ms(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double quantile(const double *s, int64_t n, double q)
{
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? s[i] * (1 - f) + s[i + 1] * f : s[n - 1];
}

void exp_timing_stats(double *ms, int64_t n, struct exp_timing *t)
{
    qsort(ms, (size_t)n, sizeof *ms, cmp_ms);
    t->median = quantile(ms, n, 0.5);
    t->q1 = quantile(ms, n, 0.25);
    t->q3 = quantile(ms, n, 0.75);
    t->min = ms[0];
    t->max = ms[n - 1];
    double limit = EXP_NOISY_SPREAD;
    if (n >= 4)
        t->spread = t->median > 0 ? (t->q3 - t->q1) / t->median : 0;
    else {
        t->spread = t->median > 0 ? (t->max - t->min) / t->median : 0;
        limit *= 2;
    }
    t->noisy = t->spread > limit;
    t->why[0] = '\0';
    if (t->noisy)
        snprintf(t->why, sizeof t->why, "%s %.0f%% of the median", n >= 4 ? "IQR" : "range",
                 100 * t->spread);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The probes before the timed runs, waiting for the machine (up to
 * EXP_PROBE_WAIT_S) while it is short of the best known. */
static void probe_before(int threads, double best, double line_best, struct exp_timing *t)
{
    double t0 = wall_seconds();
    t->probe = exp_fma_probe(threads);
    t->line = exp_line_probe(threads);
    while (exp_probe_short(t->probe, t->line, best, line_best) &&
           wall_seconds() - t0 < EXP_PROBE_WAIT_S) {
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL);
        t->probe = exp_fma_probe(threads);
        t->line = exp_line_probe(threads);
    }
    t->probe_wait = wall_seconds() - t0;
}

int exp_time_plan(struct dlas_plan *plan, const struct dlas_backend *be, int64_t batch,
                  const float *images, float *out, int64_t warmup, int64_t repeat,
                  double probe_best, double line_best, struct exp_timing *t)
{
    memset(t, 0, sizeof *t);
    double *ms = malloc((size_t)repeat * sizeof *ms);
    if (!ms)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int rc = DLAS_OK;
    /* the probe is the CPU's; a device's time does not depend on it */
    const int probe = !dlas_backend_device_ops(be);
    const int threads = be->ops->threads(be->ctx);
    t->probe = t->line = -1;
    if (probe)
        probe_before(threads, probe_best, line_best, t);
    for (int64_t i = 0; !rc && i < warmup; i++)
        rc = dlas_plan_run(plan, batch, images, out);
    double avg[3];
    dlas_sys_loadavg(avg);
    t->load = avg[0];
    double c0 = cpu_seconds(), w0 = wall_seconds();
    for (int64_t i = 0; !rc && i < repeat; i++) {
        double t0 = be->ops->now(be->ctx);
        rc = dlas_plan_run(plan, batch, images, out);
        ms[i] = (be->ops->now(be->ctx) - t0) * 1e3;
    }
    double wall = wall_seconds() - w0;
    /* CPU-time accounting is too coarse for a window of a few milliseconds */
    t->cpu_wall = wall >= 0.02 ? (cpu_seconds() - c0) / wall : -1;
    if (probe && !rc) {
        double after = exp_fma_probe(threads), line = exp_line_probe(threads);
        if (after < t->probe)
            t->probe = after;
        if (line > t->line)
            t->line = line;
    }
    if (!rc) {
        exp_timing_stats(ms, repeat, t);
        if (t->cpu_wall >= 0 && t->cpu_wall < EXP_STARVED_CPU) { /* descheduled while timed */
            t->noisy = 1;
            snprintf(t->why + strlen(t->why), sizeof t->why - strlen(t->why),
                     "%sthe process ran %.0f%% of the wall time", t->why[0] ? "; " : "",
                     100 * t->cpu_wall);
        }
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (t->noisy && t->load >= 0 && cpus > 0 && t->load > (double)cpus)
            snprintf(t->why + strlen(t->why), sizeof t->why - strlen(t->why),
                     "; load average %.1f on %ld CPUs", t->load, cpus);
    }
    free(ms);
    return rc;
}

static void setf(struct dlas_row *row, const char *k, double v)
{
    dlas_row_setf(row, k, "%.6g", v);
}

void exp_timing_row(const struct exp_timing *t, int64_t batch, struct dlas_row *row)
{
    setf(row, "latency_ms_median", t->median);
    setf(row, "latency_ms_min", t->min);
    setf(row, "latency_ms_max", t->max);
    setf(row, "latency_ms_q1", t->q1);
    setf(row, "latency_ms_q3", t->q3);
    setf(row, "latency_spread", t->spread);
    dlas_row_set(row, "timing_noisy", t->noisy ? "1" : "0");
    dlas_row_set(row, "timing_noise", t->why);
    if (t->load >= 0)
        dlas_row_setf(row, "load_avg_1m", "%.2f", t->load);
    if (t->cpu_wall >= 0)
        dlas_row_setf(row, "cpu_wall_ratio", "%.3f", t->cpu_wall);
    if (t->probe >= 0) {
        dlas_row_setf(row, "probe_gflops_per_thread", "%.1f", t->probe);
        dlas_row_setf(row, "probe_wait_s", "%.2f", t->probe_wait);
    }
    if (t->line > 0)
        dlas_row_setf(row, "probe_line_ns", "%.0f", t->line);
    setf(row, "images_per_s", t->median > 0 ? (double)batch * 1e3 / t->median : 0);
}
