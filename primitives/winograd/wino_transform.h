/* Winograd F(m x m, 3 x 3) transforms (Lavin and Gray, CVPR 2016) for
 * m = 2 (alpha = 4) and m = 4 (alpha = 6), vectorised over 16 channels. */
#ifndef DLAS_WINO_TRANSFORM_H
#define DLAS_WINO_TRANSFORM_H

#include <stdint.h>

#include "../common/prim_common.h"

#define WINO_MAX_ALPHA 6

/* U = G g G^T of one 3x3 kernel g (row-major), alpha x alpha, in double so
 * that the transformed weights carry no rounding of their own. */
void wino_weight_transform(int m, const float *g, double *u);

/* V = B^T d B for 16 channels at once. d(i, k) is the vector at
 * src + i * row_stride + k * 16 (floats); V(i, k) goes to
 * dst + (i * alpha + k) * dst_stride. */
void wino_input_transform(int m, const float *src, int64_t row_stride, float *dst,
                          int64_t dst_stride);

/* Y = A^T M A for 16 channels at once, plus bias (16 floats, or NULL).
 * M(i, k) is the vector at src + (i * alpha + k) * src_stride; Y(r, c) goes
 * to dst + r * dst_row + c * 16 (dst_row = m * 16 for a tile on its own). */
void wino_output_transform(int m, const float *src, int64_t src_stride, const float *bias,
                           float *dst, int64_t dst_row);

#endif
