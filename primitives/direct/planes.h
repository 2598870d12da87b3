/* The `direct` primitive's second input layout (input = planes): the image
 * as zero-padded NCHW planes instead of channel blocks of 16, for layers of
 * a few input channels a group (a network's first layer: RGB). In blocks,
 * such a layer's pixel holds 3 channels in 16 slots: the packed image is
 * 5x larger than the input, and each of a register block's broadcasts reads
 * its own cache line. In planes, a row of a register block reads
 * neighbouring floats (the column stride apart) of one cache line.
 *
 * The micro-kernel is pw_conv_kernel (core/kernels/pw_kernels.h): per tap
 * and channel, B weight vectors times VW inputs S floats apart, bias and
 * activation applied in registers; its output tile is scattered to NCHW. */
#ifndef DLAS_DIRECT_PLANES_H
#define DLAS_DIRECT_PLANES_H

#include <stdint.h>

#include <dlas/plugin.h>

/* The most input channels a group that planes take. */
#define DP_PLANES_MAX_C 4

struct dp_planes {
    int view;             /* the input's own planes (dp_planes_view): nothing packed */
    int64_t rows, cols;   /* one padded plane */
    int64_t cpg;          /* its channels (planes) a group */
    int ntaps;            /* cpg * kh * kw */
    int64_t *tap_off;     /* pc_plane_tap_offsets */
    int vw, b;            /* output columns and 16-channel vectors per kernel call */
    int pf_taps;          /* taps ahead whose input a call asks for (pw_args) */
};

/* A view's taps ahead to ask for (prefetch = auto): a view reads each tap
 * from its own plane, a line the hardware prefetchers do not see coming;
 * see README.md for the measurements. Padded planes are packed just
 * before, into L2, and ask for none. */
#define DP_VIEW_PREFETCH_TAPS 32

/* 1 when layer d can take planes (at most DP_PLANES_MAX_C channels a group,
 * or a view; column stride 1 or 2), else 0. */
int dp_planes_apply(const struct dlas_conv_desc *d);
/* 1 when layer d's input planes need no padding and no copy (a 1x1 kernel,
 * no padding, column stride 1 or 2): the kernel reads the NCHW input as it
 * lies, any number of channels, each pixel's channels a plane apart. */
int dp_planes_view(const struct dlas_conv_desc *d);
/* The columns a call for layer d with b vectors: *vw as given, or (0) as
 * many as the registers hold, evened over the row. DLAS_ERR_UNSUPPORTED
 * where no kernel takes *vw x b, with no message set. */
int dp_planes_block(const struct dlas_conv_desc *d, int b, int *vw);
/* p for layer d with b vectors and vw columns a call (as dp_planes_block),
 * asking for the input pf_taps taps ahead (< 0: as above). DLAS_ERR_NOMEM
 * or DLAS_ERR_UNSUPPORTED, with no message set. */
int dp_planes_init(const struct dlas_conv_desc *d, int b, int vw, int pf_taps,
                   struct dp_planes *p);
void dp_planes_free(struct dp_planes *p);
/* Floats of one channel's row in a view's scratch (dp_planes_scratch):
 * the input's width in whole cache lines. */
static inline int64_t dp_scratch_row(const struct dlas_conv_desc *d)
{
    return (d->in_w + 15) / 16 * 16;
}
/* q: view p as read from a scratch that holds one input row of each of its
 * channels, dp_scratch_row apart (direct's run_prologue, which fills it
 * with the transformed row). q->cols is 0, so that dp_planes_row reads the
 * scratch itself whichever output row it computes. DLAS_ERR_NOMEM, with no
 * message set. */
int dp_planes_scratch(const struct dlas_conv_desc *d, const struct dp_planes *p,
                      struct dp_planes *q);
/* Floats of one image's group of planes. */
static inline int64_t dp_planes_floats(const struct dp_planes *p)
{
    return p->view ? 0 : p->cpg * p->rows * p->cols;
}
/* Rows [r0, r1) of the row space (image, group, channel, padded row) of the
 * batch's input into ws (dp_planes_floats per image and group). */
void dp_planes_pack_rows(const float *in, const struct dlas_conv_desc *d,
                         const struct dp_planes *p, float *ws, int64_t r0, int64_t r1);
/* A run whose output is larger than this asks for each output row's lines
 * before it computes the row (dp_planes_row's pf_out): such an output
 * leaves the caches before the next layer reads it, and each line written
 * waits for its read-for-ownership. Measured at batch 16, interleaved
 * builds, against no request: 64x56x56 -> 256 1x1 0.90 of the time,
 * 64x56x56 -> 128 0.91, 256x14x14 -> 1024 0.945, 128x28x28 -> 512 and
 * 256x56x56 -> 128 0.96, the 3x224x224 -> 64 7x7 stem 0.95; outputs of
 * 0.4-1.6 MB (1024x7x7 -> 128, 2048x7x7 -> 512) no change. At batch 1,
 * outputs in cache, the requests cost 1-5% (64x32x32 -> 128 stride 2:
 * 0.0199 ms against 0.0190). */
#define DP_PREFETCH_OUT_BYTES (8 << 20)

/* Output row oh of nc channels (at most b * 16) from one image's group of
 * planes, weights w and bias (b * 16 floats, or NULL) as pc_blocked packs
 * them, into dst (the first of those channels' planes, NCHW; c16: their
 * first block of 16 in DLAS_LAYOUT_C16), adding res (laid out as dst, or
 * NULL) before the activation; pf_out: ask for the row's output lines
 * first (DP_PREFETCH_OUT_BYTES). */
void dp_planes_row(const struct dp_planes *p, const struct dlas_conv_desc *d, const float *img,
                   const float *w, const float *bias, int64_t oh, int64_t nc, float *dst,
                   const float *res, int pf_out, int c16);

#endif
