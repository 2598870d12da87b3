/* Provenance recorded with every result. */
#ifndef DLAS_SYSINFO_H
#define DLAS_SYSINFO_H

#include <stddef.h>

const char *dlas_sys_cpu_model(void);
/* "OpenBLAS 0.3.21 ... (openmp, core Haswell)" */
const char *dlas_sys_blas(void);
const char *dlas_sys_hostname(void);
void dlas_sys_timestamp(char *buf, size_t len); /* ISO 8601, UTC */
/* The 1, 5 and 15 minute load averages; -1 each where /proc says nothing.
 * Timings are only as good as the machine's quiet, so benchmarks and
 * `dlas compare` record it. */
void dlas_sys_loadavg(double avg[3]);

#endif
