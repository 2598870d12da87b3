/* How far apart the machine's first two threads are: the time a cache line
 * takes to go from one thread to the other and back. On a shared VM the
 * hypervisor moves the two vCPUs between places (one core complex, two, or
 * further), and everything the threads share (a barrier, an activation one
 * wrote and the other reads) costs with the distance: the same MobileNet-v2
 * plan ran in 3.4 ms with a ~55 ns round trip and in 4.1 ms with ~330 ns,
 * switching within one process (bench/README-ort.md). bench_peak reports
 * it; bench_plan's `probe` returns it with the FMA rate, so bench/vs_ort.py
 * can tell the rounds apart; an experiment point records it around its
 * timing (core/exp/exp_probe.h). Not installed. */
#ifndef DLAS_LINE_TRIP_H
#define DLAS_LINE_TRIP_H

/* Nanoseconds a round trip between two OpenMP threads: the mean over n of
 * them, or over those that fit in 3 ms (two threads on one CPU take a
 * scheduler's time slice a round trip, and read milliseconds); 0 where the
 * build has no OpenMP or two threads cannot be had. */
double line_trip_ns(long n);

#endif
