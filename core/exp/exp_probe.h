/* How much of its FMA rate the machine gives a point's threads while the
 * point is timed. A VM can lose half of it for seconds (the host puts two
 * vCPUs on one core, or a neighbour on the sibling thread): a point timed
 * then reads up to twice as slow with a tight spread, and nothing else in
 * its row shows it. So a point on a CPU backend probes the rate before and
 * after its timed runs (probe_gflops_per_thread, the lower of the two),
 * waits a little for the machine when the probe is well below the best
 * the run has seen on this host at this thread count, and the runner flags
 * a row whose probe stays below EXP_PROBE_FULL of that best as noisy
 * (`dlas run --retry-noisy` reruns it), again at the end of the run for
 * rows timed before a better probe came. Not installed. */
#ifndef DLAS_EXP_PROBE_H
#define DLAS_EXP_PROBE_H

#include <dlas/results.h>

/* A probe below this share of the best is a machine that was not all there. */
#define EXP_PROBE_FULL 0.85
/* Before timing, a point waits up to this long (re-probing every 0.1 s)
 * while its probe is below EXP_PROBE_FULL of the best. */
#define EXP_PROBE_WAIT_S 5.0

/* GFLOP/s per thread that `threads` OpenMP threads get right now: the
 * median of 3 loops of about 1 ms (core/base/fma_loop.h). */
double exp_fma_probe(int threads);

/* The best probe per (host, thread count) that rows have shown. */
struct exp_probe_best {
    char host[128];
    int threads;
    double gflops;
};
struct exp_probes {
    int n, cap;
    struct exp_probe_best *v;
};
/* The best for this host and thread count; 0 when none is known. */
double exp_probes_best(const struct exp_probes *p, const char *host, int threads);
/* Take a finished row's probe (status ok, hostname, threads,
 * probe_gflops_per_thread) into the bests. */
int exp_probes_note(struct exp_probes *p, const struct dlas_row *row);
/* Flag the row's timing noisy when its probe is below EXP_PROBE_FULL of the
 * best for its host and thread count; 1 when the row changed. */
int exp_probes_flag(const struct exp_probes *p, struct dlas_row *row);
void exp_probes_free(struct exp_probes *p);

#endif
