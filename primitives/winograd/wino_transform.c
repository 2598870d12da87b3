/* Winograd transforms, written out rather than as matrix products: with
 * IEEE semantics the compiler may not drop the zero and unit coefficients of
 * B^T and A^T, and the hand-factored forms share sub-expressions. */
#include "wino_transform.h"

/* ---- weights (double precision, once per layer) ------------------------- */

static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};

void wino_weight_transform(int m, const float *g, double *u)
{
    const int a = m + 2;
    const double(*G)[3] = m == 2 ? G2 : G4;
    double t[WINO_MAX_ALPHA][3];
    for (int i = 0; i < a; i++)
        for (int k = 0; k < 3; k++)
            t[i][k] = G[i][0] * g[0 * 3 + k] + G[i][1] * g[1 * 3 + k] + G[i][2] * g[2 * 3 + k];
    for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++)
            u[i * a + j] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
}

/* ---- input -------------------------------------------------------------- */

/* y = B^T x, alpha 4 */
static inline void bt4(const pc_vn x[4], pc_vn y[4])
{
    y[0] = x[0] - x[2];
    y[1] = x[1] + x[2];
    y[2] = x[2] - x[1];
    y[3] = x[1] - x[3];
}

/* y = B^T x, alpha 6 (interpolation points 0, 1, -1, 2, -2, inf) */
static inline void bt6(const pc_vn x[6], pc_vn y[6])
{
    const pc_vn four = pc_splatn(4.0f), five = pc_splatn(5.0f), two = pc_splatn(2.0f);
    pc_vn s12 = x[1] + x[2], s34 = x[3] + x[4];
    pc_vn d12 = x[1] - x[2], d43 = x[4] - x[3];
    pc_vn d42 = x[4] - x[2], d31 = x[3] - x[1];
    y[0] = four * x[0] - five * x[2] + x[4];
    y[1] = s34 - four * s12;
    y[2] = d43 + four * d12;
    y[3] = d42 + two * d31;
    y[4] = d42 - two * d31;
    y[5] = four * x[1] - five * x[3] + x[5];
}

/* Fully unrolled (the pragmas): with the loops rolled, GCC keeps the 6 x 6
 * intermediate in memory and copies it around; unrolled, only what does not
 * fit the registers is spilled. */
static inline __attribute__((always_inline)) void
input_part(int m, const float *src, int64_t row_stride, float *dst, int64_t dst_stride)
{
    if (m == 2) {
        pc_vn t[4][4];
#pragma GCC unroll 6
        for (int k = 0; k < 4; k++) {
            pc_vn x[4], y[4];
#pragma GCC unroll 6
            for (int i = 0; i < 4; i++)
                x[i] = pc_loadn(src + i * row_stride + k * PC_VL);
            bt4(x, y);
#pragma GCC unroll 6
            for (int i = 0; i < 4; i++)
                t[i][k] = y[i];
        }
#pragma GCC unroll 6
        for (int i = 0; i < 4; i++) {
            pc_vn y[4];
            bt4(t[i], y);
#pragma GCC unroll 6
            for (int k = 0; k < 4; k++)
                pc_storen(dst + (i * 4 + k) * dst_stride, y[k]);
        }
        return;
    }
    pc_vn t[6][6];
#pragma GCC unroll 6
    for (int k = 0; k < 6; k++) {
        pc_vn x[6], y[6];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++)
            x[i] = pc_loadn(src + i * row_stride + k * PC_VL);
        bt6(x, y);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++)
            t[i][k] = y[i];
    }
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        pc_vn y[6];
        bt6(t[i], y);
#pragma GCC unroll 6
        for (int k = 0; k < 6; k++)
            pc_storen(dst + (i * 6 + k) * dst_stride, y[k]);
    }
}

/* Each native vector (pc_kernels.h) of the 16 channels on its own: one
 * step with AVX-512, two halves with AVX2. */
void wino_input_transform(int m, const float *src, int64_t row_stride, float *dst,
                          int64_t dst_stride)
{
    for (int h = 0; h < PC_NH; h++)
        input_part(m, src + h * PC_NL, row_stride, dst + h * PC_NL, dst_stride);
}

/* ---- output ------------------------------------------------------------- */

static inline __attribute__((always_inline)) void
output_part(int m, const float *src, int64_t src_stride, const float *bias, float *dst,
            int64_t dst_row)
{
    const pc_vn b = bias ? pc_loadn(bias) : (pc_vn){0};
    if (m == 2) {
        pc_vn t[2][4];
#pragma GCC unroll 6
        for (int k = 0; k < 4; k++) {
            pc_vn x0 = pc_loadn(src + (0 * 4 + k) * src_stride);
            pc_vn x1 = pc_loadn(src + (1 * 4 + k) * src_stride);
            pc_vn x2 = pc_loadn(src + (2 * 4 + k) * src_stride);
            pc_vn x3 = pc_loadn(src + (3 * 4 + k) * src_stride);
            t[0][k] = x0 + x1 + x2;
            t[1][k] = x1 - x2 - x3;
        }
#pragma GCC unroll 6
        for (int r = 0; r < 2; r++) {
            pc_storen(dst + r * dst_row, t[r][0] + t[r][1] + t[r][2] + b);
            pc_storen(dst + r * dst_row + PC_VL, t[r][1] - t[r][2] - t[r][3] + b);
        }
        return;
    }
    const pc_vn two = pc_splatn(2.0f), four = pc_splatn(4.0f), eight = pc_splatn(8.0f);
    pc_vn t[4][6];
#pragma GCC unroll 6
    for (int k = 0; k < 6; k++) {
        pc_vn x[6];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++)
            x[i] = pc_loadn(src + (i * 6 + k) * src_stride);
        pc_vn s12 = x[1] + x[2], d12 = x[1] - x[2], s34 = x[3] + x[4], d34 = x[3] - x[4];
        t[0][k] = x[0] + s12 + s34;
        t[1][k] = d12 + two * d34;
        t[2][k] = s12 + four * s34;
        t[3][k] = d12 + eight * d34 + x[5];
    }
#pragma GCC unroll 6
    for (int r = 0; r < 4; r++) {
        const pc_vn *x = t[r];
        pc_vn s12 = x[1] + x[2], d12 = x[1] - x[2], s34 = x[3] + x[4], d34 = x[3] - x[4];
        pc_storen(dst + r * dst_row, x[0] + s12 + s34 + b);
        pc_storen(dst + r * dst_row + PC_VL, d12 + two * d34 + b);
        pc_storen(dst + r * dst_row + 2 * PC_VL, s12 + four * s34 + b);
        pc_storen(dst + r * dst_row + 3 * PC_VL, d12 + eight * d34 + x[5] + b);
    }
}

void wino_output_transform(int m, const float *src, int64_t src_stride, const float *bias,
                           float *dst, int64_t dst_row)
{
    for (int h = 0; h < PC_NH; h++)
        output_part(m, src + h * PC_NL, src_stride, bias ? bias + h * PC_NL : NULL,
                    dst + h * PC_NL, dst_row);
}
