/* A cache line's round trip between two threads (line_trip.h). */
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "line_trip.h"

/* The flag's values: 1 thread 0's turn is over, 0 thread 1's is, STOP the
 * last word. */
enum { STOP = 2 };
static int flag __attribute__((aligned(64)));

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Thread 0 sets the flag to 1 and waits for 0; thread 1 waits for 1 and
 * sets it back: the line goes over and back once a turn. Thread 0 stops
 * after n turns or LINE_TRIP_BUDGET_S, whichever comes first: with both
 * threads on one CPU (a cgroup limit, `taskset`, more threads than CPUs) a
 * turn waits for the scheduler to run the other thread, milliseconds, and
 * n of them would take seconds. */
#define LINE_TRIP_BUDGET_S 0.003
double line_trip_ns(long n)
{
    double t = 0;
    long turns = 0;
    if (n < 1)
        return 0;
    __atomic_store_n(&flag, 0, __ATOMIC_SEQ_CST);
#ifdef _OPENMP
#pragma omp parallel num_threads(2)
    {
        const int id = omp_get_thread_num();
        if (omp_get_num_threads() == 2) {
#pragma omp barrier
            if (id == 0) {
                const double t0 = now_s();
                while (turns < n) {
                    __atomic_store_n(&flag, 1, __ATOMIC_RELEASE);
                    while (__atomic_load_n(&flag, __ATOMIC_ACQUIRE) != 0)
                        ;
                    turns++;
                    /* the clock (~20 ns a read) after each of the first
                     * turns, where one CPU shows, then every 64th */
                    if ((turns < 64 || turns % 64 == 0) && now_s() - t0 > LINE_TRIP_BUDGET_S)
                        break;
                }
                t = now_s() - t0;
                __atomic_store_n(&flag, STOP, __ATOMIC_RELEASE);
            } else {
                for (;;) {
                    int v;
                    while ((v = __atomic_load_n(&flag, __ATOMIC_ACQUIRE)) == 0)
                        ;
                    if (v == STOP)
                        break;
                    __atomic_store_n(&flag, 0, __ATOMIC_RELEASE);
                }
            }
        }
    }
#endif
    return turns > 0 ? t * 1e9 / (double)turns : 0;
}
