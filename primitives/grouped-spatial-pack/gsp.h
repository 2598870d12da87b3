/* grouped-spatial-pack: shared declarations of the primitive and its
 * micro-kernels. */
#ifndef DLAS_GSP_H
#define DLAS_GSP_H

#include "../common/prim_common.h"

#define GSP_MAX_OCB 8
#define GSP_MAX_NV 4

/* One call computes OCB output channels x NV vectors of 16 consecutive
 * positions of the output grid of one group. The grid is the output laid
 * over the packed input planes' pitch (position oh * wq + ow, columns past
 * out_w computed and discarded), so that every tap of every position is one
 * constant offset away and a vector may span output rows:
 *
 *   acc[o][v] = bias[o]  (0 without bias)
 *   for c < cpg, tap < ntaps:
 *       x[v] = in[c * plane + tap_off[tap] + 16 v]            (unaligned loads)
 *       acc[o][v] += w[(c * ntaps + tap) * OCB + o] * x[v]    (broadcast scalar)
 *
 * and stores act(acc[o][v]) to out[o * out_cs + 16 v] (whole vectors). */
struct gsp_kargs {
    const float *in;
    const float *w;
    const float *bias; /* OCB floats or NULL */
    float *out;
    const int64_t *tap_off;
    int ntaps, cpg;
    int act; /* enum dlas_activation, applied as the results are stored */
    int64_t plane, out_cs;
};
typedef void (*gsp_kernel_fn)(const struct gsp_kargs *a);

/* The kernel for (ocb, nv), or NULL (ocb 1..8, nv 1..4, ocb*nv <= 28). */
gsp_kernel_fn gsp_kernel(int ocb, int nv);

/* Depthwise layers vectorised over 16 channels instead (channel-blocked
 * input as in prim_common.h: 16 channels of a pixel per vector): one call
 * computes P consecutive output pixels of a row for 16 channels,
 *
 *   acc[p] = bias (16 floats, or 0)
 *   for tap < ntaps: acc[p] += w[tap * 16 ..] * in[tap_off[tap] + 16 p ..]
 *
 * and stores acc[p] to out[16 p ..]. No broadcasts: each weight vector holds
 * the 16 channels' own tap. */
struct gsp_dw_args {
    const float *in;
    const float *w;
    const float *bias;
    float *out;
    const int64_t *tap_off;
    int ntaps;
};
typedef void (*gsp_dw_fn)(const struct gsp_dw_args *a);
#define GSP_DW_MAX_P 16
gsp_dw_fn gsp_dw_kernel(int p); /* p in 1..16 */

#endif
