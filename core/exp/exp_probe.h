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
 * rows timed before a better probe came.
 *
 * With two threads or more it also times a cache line's round trip between
 * two threads (probe_line_ns, the longer of before and after): a VM's
 * hypervisor moves its vCPUs nearer and further apart for seconds to
 * minutes, and a plan whose threads share activations runs slower apart
 * (at batch 1 on 2 threads: ResNet-50 12%, MobileNet-v2 23%, DenseNet-121
 * 37%; bench/README-ort.md), with full FMA rate and nothing else in its
 * row to show it. A row whose round trip
 * is over EXP_PROBE_NEAR times the shortest seen on its host is flagged
 * the same way. Not installed. */
#ifndef DLAS_EXP_PROBE_H
#define DLAS_EXP_PROBE_H

#include <dlas/results.h>

/* A probe below this share of the best is a machine that was not all there. */
#define EXP_PROBE_FULL 0.85
/* A round trip over this many times the shortest is threads apart (~55 ns
 * near, 300-700 ns apart on the VM this was measured on). */
#define EXP_PROBE_NEAR 2.0
/* Before timing, a point waits up to this long (re-probing every 0.1 s)
 * while its probe is below EXP_PROBE_FULL of the best or its threads are
 * apart. */
#define EXP_PROBE_WAIT_S 5.0

/* GFLOP/s per thread that `threads` OpenMP threads get right now: the
 * median of 3 loops of about 1 ms (core/base/fma_loop.h). */
double exp_fma_probe(int threads);
/* Nanoseconds a cache line's round trip between two threads takes right
 * now: the median of 3 runs of 2000 (core/base/line_trip.h); 0 for one
 * thread. */
double exp_line_probe(int threads);

/* What a probe (g GFLOP/s a thread, a round trip of line ns) shows
 * against the bests (0: none known): EXP_PROBE_LOW_FMA when the FMA rate is
 * below EXP_PROBE_FULL of the best, EXP_PROBE_APART when the round trip is
 * over EXP_PROBE_NEAR times the shortest, or both; 0 when neither. */
enum { EXP_PROBE_LOW_FMA = 1, EXP_PROBE_APART = 2 };
int exp_probe_short(double g, double line, double best, double line_best);

/* The best probe per (host, thread count) that rows have shown: the
 * highest FMA rate and the shortest round trip (0: none yet). */
struct exp_probe_best {
    char host[128];
    int threads;
    double gflops, line_ns;
};
struct exp_probes {
    int n, cap;
    struct exp_probe_best *v;
};
/* The best for this host and thread count; 0 when none is known. */
double exp_probes_best(const struct exp_probes *p, const char *host, int threads);
/* The shortest round trip for this host and thread count; 0 when none. */
double exp_probes_best_line(const struct exp_probes *p, const char *host, int threads);
/* Take a finished row's probe (status ok, hostname, threads,
 * probe_gflops_per_thread, probe_line_ns where it has one) into the bests. */
int exp_probes_note(struct exp_probes *p, const struct dlas_row *row);
/* Flag the row's timing noisy when its probe is below EXP_PROBE_FULL of the
 * best for its host and thread count, or its round trip over EXP_PROBE_NEAR
 * times the shortest; 1 when the row changed. */
int exp_probes_flag(const struct exp_probes *p, struct dlas_row *row);
void exp_probes_free(struct exp_probes *p);

#endif
