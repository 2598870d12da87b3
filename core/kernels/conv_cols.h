/* im2col and its adjoint, for the convolutions the direct kernels do not
 * take. Not installed. */
#ifndef DLAS_CONV_COLS_H
#define DLAS_CONV_COLS_H

#include <dlas/conv.h>

/* src: cpg x in_h x in_w of one group -> col: (cpg kh kw) x (out_h out_w);
 * taps outside the image are 0. */
void ag_im2col(const struct dlas_conv_desc *d, int64_t cpg, const float *src, float *col);
/* The adjoint: add col back into dst. */
void ag_col2im(const struct dlas_conv_desc *d, int64_t cpg, const float *col, float *dst);

#endif
