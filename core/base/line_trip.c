/* A cache line's round trip between two threads (line_trip.h). */
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "line_trip.h"

static int flag __attribute__((aligned(64)));

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Thread 0 sets the flag to 1 and waits for 0; thread 1 waits for 1 and
 * sets it back: n times the line goes over and back. */
double line_trip_ns(long n)
{
    double t = 0;
    if (n < 1)
        return 0;
    __atomic_store_n(&flag, 0, __ATOMIC_SEQ_CST);
#ifdef _OPENMP
#pragma omp parallel num_threads(2)
    {
        const int id = omp_get_thread_num();
        if (omp_get_num_threads() == 2) {
#pragma omp barrier
            const double t0 = now_s();
            for (long i = 0; i < n; i++) {
                if (id == 0) {
                    __atomic_store_n(&flag, 1, __ATOMIC_RELEASE);
                    while (__atomic_load_n(&flag, __ATOMIC_ACQUIRE) != 0)
                        ;
                } else {
                    while (__atomic_load_n(&flag, __ATOMIC_ACQUIRE) != 1)
                        ;
                    __atomic_store_n(&flag, 0, __ATOMIC_RELEASE);
                }
            }
            if (id == 0)
                t = now_s() - t0;
        }
    }
#endif
    return t * 1e9 / (double)n;
}
