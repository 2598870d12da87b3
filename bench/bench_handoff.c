/* bench_handoff: what two threads pay to hand data to each other, with the
 * threads near (one core complex) and apart (two), on this machine.
 *
 * A VM moves its two vCPUs between places every few seconds to minutes
 * (core/base/line_trip.h). Compute and private memory traffic do not care;
 * what one thread wrote and the other then touches does. This harness times
 * the five ways a two-thread layer meets that, in rounds, with the line
 * round trip probed before and after each round so that every round is
 * labelled near or apart:
 *
 *   region       an empty OpenMP parallel region (fork and join)
 *   read own     each thread writes half of a buffer, a barrier, then reads
 *                back its own half (a layer whose input it produced itself)
 *   read other   the same, but each reads the half the other thread wrote
 *                (a layer split by channels after one split by rows)
 *   write halves each thread writes one contiguous half of a buffer, the
 *                same half every run
 *   write rows   each thread writes the same half of every one of P planes
 *                (NCHW split by rows: 2P boundaries between the threads'
 *                regions instead of one)
 *   write rows gap  the same, each thread leaving G lines of its half
 *                unwritten at both ends: its writes then stay 2G lines from
 *                the other thread's. Where this costs what write halves
 *                does, the boundaries cost through the lines next to them,
 *                which a core's prefetcher fetches ahead of its writes
 *
 * Each figure is the best of 5 repetitions of `passes` runs, in µs a run.
 * The summary gives the median over near and over apart rounds and their
 * ratio; --csv writes every round (pandas reads it as is).
 *
 *   bench_handoff [--seconds S] [--kb KB] [--planes P] [--gap G] [--csv FILE]
 *
 * Figures and what they explain: bench/README-ort.md ("Why dlas's time moves
 * with the placement"). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/base/line_trip.h"

enum { REGION, READ_OWN, READ_OTHER, WRITE_HALVES, WRITE_ROWS, WRITE_ROWS_GAP, N_KERNELS };
static const char *const names[N_KERNELS] = {"region",       "read_own",   "read_other",
                                             "write_halves", "write_rows", "write_rows_gap"};

struct setup {
    float *buf;
    size_t n;      /* floats in buf */
    size_t planes; /* for write_rows */
    size_t gap;    /* floats each thread leaves unwritten at both ends (write_rows_gap) */
    int passes;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fill(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        p[i] = v;
}

/* A vectorised sum (the order of the adds is free), so that the loop is
 * bound by the loads rather than by one chain of scalar adds. */
static float sum(const float *p, size_t n)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

static volatile float sink[2];

/* One run of kernel k on two threads. */
static void run_once(const struct setup *s, int k, int pass)
{
    const size_t half = s->n / 2;
#pragma omp parallel num_threads(2)
    {
        const int id = omp_get_thread_num();
        float *own = s->buf + (size_t)id * half;
        switch (k) {
        case REGION:
            break;
        case READ_OWN:
        case READ_OTHER:
            fill(own, half, (float)pass);
#pragma omp barrier
            sink[id] = sum(k == READ_OWN ? own : s->buf + (size_t)(1 - id) * half, half);
            break;
        case WRITE_HALVES:
            fill(own, half, (float)pass);
            break;
        case WRITE_ROWS:
        case WRITE_ROWS_GAP: {
            const size_t plane = s->n / s->planes, rows = plane / 2;
            const size_t g = k == WRITE_ROWS_GAP ? s->gap : 0;
            for (size_t c = 0; c < s->planes; c++)
                fill(s->buf + c * plane + (size_t)id * rows + g, rows - 2 * g, (float)pass);
            break;
        }
        }
    }
}

/* µs a run: the best of 5 repetitions of s->passes runs. */
static double time_kernel(const struct setup *s, int k)
{
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = now();
        for (int p = 0; p < s->passes; p++)
            run_once(s, k, p);
        const double t = (now() - t0) / s->passes;
        best = t < best ? t : best;
    }
    return best * 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct round {
    double line0, line1, us[N_KERNELS];
};

enum placement { NEAR, APART, BETWEEN };

/* Near: both probes within 2x the shortest round trip of the run; apart:
 * both over it (bench/vs_ort.py's rule). */
static enum placement placement_of(const struct round *r, double shortest)
{
    const double hi = r->line0 > r->line1 ? r->line0 : r->line1;
    const double lo = r->line0 < r->line1 ? r->line0 : r->line1;
    return hi <= 2 * shortest ? NEAR : lo > 2 * shortest ? APART : BETWEEN;
}

/* v, all of it, as a whole number or a number into *out: 0, or -1 where
 * it is not one (atol would read "x" as 0 and "4k" as 4). */
static int whole(const char *v, long *out)
{
    char *end;
    *out = strtol(v, &end, 10);
    return end != v && *end == '\0' ? 0 : -1;
}

static int real(const char *v, double *out)
{
    char *end;
    *out = strtod(v, &end);
    return end != v && *end == '\0' ? 0 : -1;
}

static const char usage[] =
    "usage: bench_handoff [--seconds S] [--kb KB] [--planes P] [--gap G] [--csv FILE]\n"
    "\n"
    "Times what two threads pay to hand data to each other (an empty parallel\n"
    "region; reading back one's own half of a buffer, or the other thread's,\n"
    "after a barrier; writing a contiguous half, or half of every one of P\n"
    "planes as an NCHW row split does, and that again with G cache lines left\n"
    "unwritten at each end of each thread's half), in rounds for S seconds (60), with a\n"
    "cache line's round trip between the threads probed around each round:\n"
    "medians over the rounds with the threads near and apart (over 2x the\n"
    "shortest round trip seen), and their ratio.\n"
    "\n"
    "  --kb KB      buffer size (400: a 128x28x28 fp32 activation)\n"
    "  --planes P   planes of the row-split write (128)\n"
    "  --gap G      lines each thread leaves unwritten at each end of its half\n"
    "               of a plane in write_rows_gap (4)\n"
    "  --csv FILE   every round: line_ns before and after, µs per kernel\n";

int main(int argc, char **argv)
{
    double seconds = 60;
    long kb = 400, planes = 128, gap = 4;
    const char *csv = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bench_handoff: %s needs a value\n%s", a, usage);
            return 2;
        }
        int bad = 0;
        if (!strcmp(a, "--seconds"))
            bad = real(v, &seconds);
        else if (!strcmp(a, "--kb"))
            bad = whole(v, &kb);
        else if (!strcmp(a, "--planes"))
            bad = whole(v, &planes);
        else if (!strcmp(a, "--gap"))
            bad = whole(v, &gap);
        else if (!strcmp(a, "--csv"))
            csv = v;
        else {
            fprintf(stderr, "bench_handoff: unknown option '%s'\n%s", a, usage);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "bench_handoff: %s takes a number, not '%s'\n", a, v);
            return 2;
        }
        i++;
    }
    if (!(seconds > 0 && seconds <= 86400) || kb < 4 || kb > (1L << 20) || planes < 1 ||
        planes > kb * 256 / 32) {
        fprintf(stderr, "bench_handoff: --seconds in (0, 86400], --kb in [4, 1048576], "
                        "--planes in [1, KB*8]\n");
        return 2;
    }
    /* a half plane holds kb*256/planes/2 floats, 16 a line; keep one written */
    const long half_lines = kb * 256 / planes / 2 / 16;
    if (gap < 0 || 2 * gap >= half_lines) {
        fprintf(stderr, "bench_handoff: --gap %ld: a thread's half of a plane is %ld lines, "
                        "so --gap takes 0 to %ld\n", gap, half_lines, (half_lines - 1) / 2);
        return 2;
    }
    if (omp_get_max_threads() < 2 || line_trip_ns(10) <= 0) {
        fprintf(stderr, "bench_handoff: needs two threads (OMP_NUM_THREADS, the CPUs)\n");
        return 77;
    }
    struct setup s = {NULL, (size_t)kb * 256, (size_t)planes, (size_t)gap * 16, 0};
    s.buf = aligned_alloc(64, s.n * sizeof(float));
    FILE *out = csv ? fopen(csv, "w") : NULL;
    const int cap = 100000;
    struct round *rounds = malloc(cap * sizeof *rounds);
    if (!s.buf || !rounds || (csv && !out)) {
        fprintf(stderr, "bench_handoff: %s\n", csv && !out ? "cannot write the CSV" : "no memory");
        return 1;
    }
    fill(s.buf, s.n, 0);
    /* about 1 ms a kernel and repetition */
    s.passes = (int)(1e3 / (1.0 + (double)kb / 40.0)) + 1;
    if (out) {
        fprintf(out, "round,line_ns_before,line_ns_after");
        for (int k = 0; k < N_KERNELS; k++)
            fprintf(out, ",%s", names[k]);
        fprintf(out, "\n");
    }
    int n = 0;
    double shortest = 1e30;
    const double t_end = now() + seconds;
    while (now() < t_end && n < cap) {
        struct round *r = &rounds[n];
        r->line0 = line_trip_ns(2000);
        for (int k = 0; k < N_KERNELS; k++)
            r->us[k] = time_kernel(&s, k);
        r->line1 = line_trip_ns(2000);
        shortest = r->line0 < shortest ? r->line0 : shortest;
        shortest = r->line1 < shortest ? r->line1 : shortest;
        if (out) {
            fprintf(out, "%d,%.1f,%.1f", n, r->line0, r->line1);
            for (int k = 0; k < N_KERNELS; k++)
                fprintf(out, ",%.3f", r->us[k]);
            fprintf(out, "\n");
        }
        n++;
    }
    double *nv = malloc((size_t)n * sizeof *nv), *av = malloc((size_t)n * sizeof *av);
    int n_near = 0, n_apart = 0;
    for (int i = 0; i < n; i++) {
        n_near += placement_of(&rounds[i], shortest) == NEAR;
        n_apart += placement_of(&rounds[i], shortest) == APART;
    }
    printf("# bench_handoff: %d rounds in %.0f s, %ld KB buffer, %ld planes, gap %ld lines, "
           "%d runs a repetition; near %d rounds, apart %d (a line round trip over 2x the "
           "shortest, %.0f ns)\n",
           n, seconds, kb, planes, gap, s.passes, n_near, n_apart, shortest);
    printf("%-14s %12s %12s %12s\n", "kernel", "near us", "apart us", "apart/near");
    for (int k = 0; k < N_KERNELS && nv && av; k++) {
        int a = 0, b = 0;
        for (int i = 0; i < n; i++) {
            const enum placement pl = placement_of(&rounds[i], shortest);
            if (pl == NEAR)
                nv[a++] = rounds[i].us[k];
            else if (pl == APART)
                av[b++] = rounds[i].us[k];
        }
        const double mn = median(nv, a), ma = median(av, b);
        if (b)
            printf("%-14s %12.2f %12.2f %12.2f\n", names[k], mn, ma, mn > 0 ? ma / mn : 0);
        else
            printf("%-14s %12.2f %12s %12s\n", names[k], mn, "-", "-");
    }
    free(nv);
    free(av);
    free(rounds);
    free(s.buf);
    return out && fclose(out) ? 1 : 0;
}
