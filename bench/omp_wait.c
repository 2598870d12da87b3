/* omp_wait: what libgomp's waiting costs a plan-like sequence of OpenMP
 * regions. F forwards of R regions; each region gives both threads W us of
 * arithmetic split by a barrier (0.3 W, then 0.7 W), and the master then
 * runs G us alone before the next region (a plan's serial work between
 * layers). Prints the median forward, the ideal R * (W + G), the overhead
 * per region, and the fastest forward. Compare the wait settings on one
 * machine, e.g.
 *
 *   gcc -O2 -fopenmp bench/omp_wait.c -o omp_wait
 *   for e in GOMP_SPINCOUNT=300000 GOMP_SPINCOUNT=300 OMP_WAIT_POLICY=passive; do
 *       env $e ./omp_wait 300 30 100 3; done
 *
 * (libgomp reads both variables once, at start-up.) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static volatile double sink;

/* Arithmetic for us microseconds of wall time. */
static void work(double us)
{
    const double t0 = now();
    double x = 1.0;
    while ((now() - t0) * 1e6 < us)
        x = x * 1.0000001 + 1e-9;
    sink = x;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: omp_wait FORWARDS REGIONS WORK_US GAP_US\n");
        return 2;
    }
    const int f_n = atoi(argv[1]), r_n = atoi(argv[2]);
    const double w = atof(argv[3]), g = atof(argv[4]);
    double *t = malloc((size_t)(f_n > 0 ? f_n : 1) * sizeof *t);
    if (f_n < 1 || r_n < 1 || w < 0 || g < 0 || !t) {
        fprintf(stderr, "omp_wait: FORWARDS and REGIONS >= 1, WORK_US and GAP_US >= 0\n");
        return 2;
    }
    for (int f = 0; f < f_n; f++) {
        const double t0 = now();
        for (int r = 0; r < r_n; r++) {
#pragma omp parallel num_threads(2)
            {
                work(0.3 * w);
#pragma omp barrier
                work(0.7 * w);
            }
            work(g);
        }
        t[f] = now() - t0;
    }
    qsort(t, (size_t)f_n, sizeof *t, cmp);
    const double ideal = r_n * (w + g) * 1e-6;
    printf("forward median %.3f ms (ideal %.3f): overhead %.1f us a region; fastest %.3f ms\n",
           t[f_n / 2] * 1e3, ideal * 1e3, (t[f_n / 2] - ideal) / r_n * 1e6, t[0] * 1e3);
    free(t);
    return 0;
}
