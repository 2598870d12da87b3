/* Code shared by the CPU convolution primitives (direct, spatial-pack,
 * winograd, grouped-spatial-pack) beyond the kernels: layer checks, the
 * backend's threads and clock, profiling, and the OpenMP phase runner. Not a
 * plugin: compiled into each primitive's module separately (see each
 * local.mk), so that the plugins still never link against one another. The
 * kernels themselves (packing, micro-kernel, scatter) are core/kernels. */
#ifndef DLAS_PRIM_COMMON_H
#define DLAS_PRIM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <dlas/plugin.h>

#include "../../core/kernels/pc_kernels.h"

/* ---- layer checks ------------------------------------------------------ */

/* Record a refusal: formats into why (if given) and the error message,
 * prefixed with the primitive's name, and returns status. */
int pc_fail(const char *prim, char *why, size_t len, int status, const char *fmt, ...)
    DLAS_PRINTF(5, 6);
/* The well-formedness checks every primitive makes (sizes, divisibility,
 * geometry agreeing with out_h/out_w); DLAS_ERR_INVALID with the reason. */
int pc_check_desc(const char *prim, const struct dlas_conv_desc *d, char *why, size_t len);
/* Common prepare() argument checks (weights, bias, cpu backend). */
int pc_check_prepare(const char *prim, const struct dlas_backend *be,
                     const struct dlas_conv_desc *d, const float *weight, const float *bias);

/* ---- backend ----------------------------------------------------------- */

/* Threads of the backend (1 without one). Primitives parallelise with their
 * own `omp parallel num_threads(t)` region: one region per run() holds
 * packing and compute phases separated by barriers, which parallel_for (one
 * region per call) cannot; the backend is OpenMP, so both share one pool. */
int pc_threads(const struct dlas_backend *be);
double pc_now(const struct dlas_backend *be);
void pc_prof_add(struct dlas_profile *p, const char *phase, double seconds);

/* The shape of every run() here: a packing phase and a compute phase in one
 * OpenMP region (one fork per call), with a barrier between them. pack gets
 * an even share of pack_n items; the compute phase either gets an even share
 * of work_n items (work) or divides its work itself (work_team). Timed as
 * the profile phases "pack" and work_phase. */
struct pc_phases {
    const void *ctx;
    int64_t pack_n, work_n;
    void (*pack)(const void *ctx, int64_t b, int64_t e);
    void (*work)(const void *ctx, int64_t b, int64_t e);
    void (*work_team)(const void *ctx, int id, int nt);
    const char *work_phase;
};
/* max_threads > 0 caps the team (e.g. at the per-thread buffers that
 * prepare() sized); a team is never larger than work_n when work is used. */
void pc_run_phases(const struct dlas_backend *be, int max_threads, const struct pc_phases *ph,
                   struct dlas_profile *prof);

#endif
