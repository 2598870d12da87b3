/* Micro-kernels of grouped-spatial-pack, one per (OCB, NV) block shape, with
 * the shape fixed at compile time so that the accumulators stay in
 * registers. Vectors run along the output grid: a group with few channels
 * still fills every lane. */
#include "gsp.h"

/* One native vector (pc_kernels.h) of each of the NV grid vectors: half h
 * of every 16-position vector (h 0 only with AVX-512). */
static inline __attribute__((always_inline)) void kernel_part(const struct gsp_kargs *a, int h,
                                                              const int OCB, const int NV)
{
    pc_vn acc[GSP_MAX_OCB * GSP_MAX_NV];
#pragma GCC unroll 8
    for (int o = 0; o < OCB; o++) {
        pc_vn b0 = a->bias ? pc_splatn(a->bias[o]) : (pc_vn){0};
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[o * NV + v] = b0;
    }
    const float *w = a->w;
    for (int c = 0; c < a->cpg; c++) {
        const float *pl = a->in + c * a->plane + h * PC_NL;
        for (int t = 0; t < a->ntaps; t++, w += OCB) {
            const float *x = pl + a->tap_off[t];
            pc_vn xv[GSP_MAX_NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                xv[v] = pc_loadn(x + v * PC_VL);
#pragma GCC unroll 8
            for (int o = 0; o < OCB; o++) {
                pc_vn wv = pc_splatn(w[o]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[o * NV + v] += wv * xv[v];
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < OCB; o++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            pc_storen(a->out + o * a->out_cs + v * PC_VL + h * PC_NL,
                      pc_actn(acc[o * NV + v], a->act));
}

static inline __attribute__((always_inline)) void kernel_impl(const struct gsp_kargs *a,
                                                              const int OCB, const int NV)
{
    for (int h = 0; h < PC_NH; h++)
        kernel_part(a, h, OCB, NV);
}

#define K(O, V)                                                                            \
    static void k_##O##_##V(const struct gsp_kargs *a) { kernel_impl(a, O, V); }
#define KROW(O) K(O, 1) K(O, 2) K(O, 3) K(O, 4)
KROW(1) KROW(2) KROW(3) KROW(4) KROW(5) KROW(6) KROW(7)
K(8, 1) K(8, 2) K(8, 3)

#define TROW(O) {k_##O##_1, k_##O##_2, k_##O##_3, k_##O##_4}
static const gsp_kernel_fn table[GSP_MAX_OCB][GSP_MAX_NV] = {
    TROW(1), TROW(2), TROW(3), TROW(4), TROW(5), TROW(6), TROW(7), {k_8_1, k_8_2, k_8_3, NULL}};

gsp_kernel_fn gsp_kernel(int ocb, int nv)
{
    if (ocb < 1 || ocb > GSP_MAX_OCB || nv < 1 || nv > GSP_MAX_NV)
        return NULL;
    return table[ocb - 1][nv - 1];
}

/* ---- depthwise, channel-blocked ---------------------------------------------- */

static inline __attribute__((always_inline)) void dw_impl(const struct gsp_dw_args *a,
                                                          const int P)
{
    for (int h = 0; h < PC_NH; h++) { /* native vectors of the 16 channels */
        const int off = h * PC_NL;
        pc_vn acc[GSP_DW_MAX_P];
        const pc_vn b0 = a->bias ? pc_loadn(a->bias + off) : (pc_vn){0};
#pragma GCC unroll 16
        for (int p = 0; p < P; p++)
            acc[p] = b0;
        for (int t = 0; t < a->ntaps; t++) {
            const pc_vn wv = pc_loadn(a->w + t * PC_VL + off);
            const float *x = a->in + a->tap_off[t] + off;
#pragma GCC unroll 16
            for (int p = 0; p < P; p++)
                acc[p] += wv * pc_loadn(x + p * PC_VL);
        }
#pragma GCC unroll 16
        for (int p = 0; p < P; p++)
            pc_storen(a->out + p * PC_VL + off, acc[p]);
    }
}

#define DW(P)                                                                              \
    static void dw_##P(const struct gsp_dw_args *a) { dw_impl(a, P); }
DW(1) DW(2) DW(3) DW(4) DW(5) DW(6) DW(7) DW(8) DW(9) DW(10) DW(11) DW(12) DW(13) DW(14)
DW(15) DW(16)

static const gsp_dw_fn dw_table[GSP_DW_MAX_P] = {dw_1,  dw_2,  dw_3,  dw_4,  dw_5,  dw_6,
                                                 dw_7,  dw_8,  dw_9,  dw_10, dw_11, dw_12,
                                                 dw_13, dw_14, dw_15, dw_16};

gsp_dw_fn gsp_dw_kernel(int p)
{
    return p >= 1 && p <= GSP_DW_MAX_P ? dw_table[p - 1] : NULL;
}
