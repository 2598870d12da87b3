/* grouped-spatial-pack: shared declarations of the primitive and its
 * micro-kernels. */
#ifndef DLAS_GSP_H
#define DLAS_GSP_H

#include "../common/prim_common.h"

#define GSP_MAX_OCB 8
#define GSP_MAX_NV 4

/* One call computes OCB output channels x NV vectors of 16 consecutive
 * output columns of one output row of one group:
 *
 *   acc[o][v] = bias[o]  (0 without bias)
 *   for c < cpg, tap < ntaps:
 *       x[v] = in[c * plane + tap_off[tap] + 16 v]            (unaligned loads)
 *       acc[o][v] += w[(c * ntaps + tap) * OCB + o] * x[v]    (broadcast scalar)
 *
 * and stores acc[o][v] to out[o * out_cs + 16 v], only the first `ncols`
 * columns (the rest of the last vector is not written). */
struct gsp_kargs {
    const float *in;
    const float *w;
    const float *bias; /* OCB floats or NULL */
    float *out;
    const int64_t *tap_off;
    int ntaps, cpg, ncols, nout; /* nout: output channels stored (<= OCB) */
    int64_t plane, out_cs;
};
typedef void (*gsp_kernel_fn)(const struct gsp_kargs *a);

/* The kernel for (ocb, nv), or NULL (ocb 1..8, nv 1..4, ocb*nv <= 28). */
gsp_kernel_fn gsp_kernel(int ocb, int nv);

#endif
