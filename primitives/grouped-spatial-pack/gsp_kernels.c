/* Micro-kernels of grouped-spatial-pack, one per (OCB, NV) block shape, with
 * the shape fixed at compile time so that the accumulators stay in
 * registers. Vectors run along output columns: a group with few channels
 * still fills every lane. */
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "gsp.h"

static inline void store_cols(float *dst, pc_v16 v, int n)
{
    if (n >= PC_VL) {
        pc_store(dst, v);
        return;
    }
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(dst, (__mmask16)((1u << n) - 1u), (__m512)v);
#else
    float tmp[PC_VL] __attribute__((aligned(64)));
    pc_store(tmp, v);
    memcpy(dst, tmp, (size_t)n * sizeof(float));
#endif
}

static inline __attribute__((always_inline)) void kernel_impl(const struct gsp_kargs *a,
                                                              const int OCB, const int NV)
{
    pc_v16 acc[GSP_MAX_OCB * GSP_MAX_NV];
#pragma GCC unroll 8
    for (int o = 0; o < OCB; o++) {
        pc_v16 b0 = a->bias ? pc_splat(a->bias[o]) : (pc_v16){0};
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[o * NV + v] = b0;
    }
    const float *w = a->w;
    for (int c = 0; c < a->cpg; c++) {
        const float *pl = a->in + c * a->plane;
        for (int t = 0; t < a->ntaps; t++, w += OCB) {
            const float *x = pl + a->tap_off[t];
            pc_v16 xv[GSP_MAX_NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                xv[v] = pc_load(x + v * PC_VL);
#pragma GCC unroll 8
            for (int o = 0; o < OCB; o++) {
                pc_v16 wv = pc_splat(w[o]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[o * NV + v] += wv * xv[v];
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < OCB; o++) {
        if (o >= a->nout)
            break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            int n = a->ncols - v * PC_VL;
            if (n > 0)
                store_cols(a->out + o * a->out_cs + v * PC_VL, acc[o * NV + v], n);
        }
    }
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
