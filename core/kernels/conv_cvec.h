/* Convolution of one image with vectors over output channels, for the
 * trainer's small maps (ResNet-20's 14x14 and 7x7 stages).
 *
 * conv_direct.c runs sixteen positions of a flattened padded row per vector,
 * so a row's padding columns are computed and dropped: 64 positions for 49
 * at 7x7, 224 for 196 at 14x14. Here the input is packed channel-blocked
 * (16 channels of a pixel per vector) and the primitives' register-blocked
 * micro-kernel (core/kernels/pc_kernels.h) computes
 * VH x VW output pixels x B vectors of output channels: no position is
 * computed twice or for nothing. Each output is a sum in a fixed order, so
 * results do not depend on threads. */
#ifndef DLAS_CONV_CVEC_H
#define DLAS_CONV_CVEC_H

#include <stdint.h>

#include <dlas/conv.h>

#include "pc_kernels.h"

#define CV_MAX_TAPS 49

struct cv_geom {
    struct dlas_conv_desc d; /* one group: groups = 1, batch = 1 */
    int b, vh, vw;
    int64_t nblk, n_ob, ob_floats, img_floats, ohw;
    struct pc_window win;
    int64_t tap_off[CV_MAX_TAPS];
};

/* 1 when this layout serves the layer (cin x H x W -> cout, stride, padding,
 * dilation as given) better than conv_direct.c: a small map and a kernel
 * shape the micro-kernel has; 0 otherwise. */
int cv_geom_init(struct cv_geom *g, int64_t cin, int64_t cout, int64_t H, int64_t W, int kh,
                 int kw, int pad_h, int pad_w, int dil_h, int dil_w, int stride_h, int stride_w);
int64_t cv_pack_floats(const struct cv_geom *g);
/* w: cout x cin x kh x kw (for the input gradient, the flipped weights of
 * backward_conv.c's flip_weights). */
void cv_pack(const struct cv_geom *g, const float *w, float *wp);
int64_t cv_forward_scratch(const struct cv_geom *g);
/* y (cout x OH x OW) = conv(x) + bias, or += conv(x) with acc. */
void cv_forward(const struct cv_geom *g, const float *x, const float *wp, const float *bias,
                float *y, int acc, float *scratch);

#endif
