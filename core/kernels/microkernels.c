/* The register-blocked micro-kernel of pc_kernels.h, instantiated for every
 * block shape the primitives and their tuners may choose. Each instance has
 * compile-time VH, VW and B so that the accumulators live in registers and
 * every input address is a constant displacement from a few pointers. */
#include "pc_kernels.h"

#define PS 16 /* pixel stride of the blocked layout */

static inline __attribute__((always_inline)) void
kernel_impl(const struct pc_kargs *a, const int VH, const int VW, const int B)
{
    /* acc[(pixel * B + b) * PC_NH + h]: native vector h of channel vector b */
    pc_vn acc[PC_MAX_ACC * PC_NH];
#pragma GCC unroll 28
    for (int p = 0; p < VH * VW; p++)
#pragma GCC unroll 8
        for (int i = 0; i < B * PC_NH; i++)
            acc[p * B * PC_NH + i] = a->bias ? pc_loadn(a->bias + i * PC_NL) : (pc_vn){0};

    const float *w = a->w;
    const int64_t rs = a->row_stride;
    for (int blk = 0; blk < a->nblk; blk++) {
        const float *ib = a->in + blk * a->blk_stride;
        const int cb = blk == a->nblk - 1 ? a->cb_last : PC_VL;
        /* an input read in place (a C16 tensor under a 1x1 kernel) is a
         * short run of lines a block, too short for the hardware to see a
         * stream: ask for a later block's lines */
        if (a->pf_blocks && blk + a->pf_blocks < a->nblk) {
            const float *nb = ib + a->pf_blocks * a->blk_stride + a->tap_off[0];
#pragma GCC unroll 4
            for (int vh = 0; vh < VH; vh++)
#pragma GCC unroll 16
                for (int vw = 0; vw < VW; vw++)
                    __builtin_prefetch(nb + vh * rs + vw * PS, 0, 3);
        }
        for (int t = 0; t < a->ntaps; t++) {
            /* One pointer per row, each stepped on its own: left to itself
             * GCC turns x[vh * rs + vw * PS] into one pointer plus an index
             * register per (row, column), which it keeps in vector
             * registers and moves back on every step (11 such moves per 16
             * multiply-adds in the 4x4 block: the kernel ran at 40% of
             * peak). The empty asm keeps each row pointer a register of its
             * own. */
            const float *xr[PC_MAX_VH];
#pragma GCC unroll 4
            for (int vh = 0; vh < VH; vh++)
                xr[vh] = ib + a->tap_off[t] + vh * rs;
            for (int c = 0; c < cb; c++, w += B * PC_VL) {
                pc_vn wv[PC_MAX_B * PC_NH];
#pragma GCC unroll 8
                for (int i = 0; i < B * PC_NH; i++)
                    wv[i] = pc_loadn(w + i * PC_NL);
                /* Weights 1 KB ahead into L1. Where a layer's weights
                 * outgrow L2 (small maps at batch 1: 4x4 to 7x7) each one
                 * serves VH*VW multiply-adds only and the kernel waits on
                 * the stream; the hardware prefetcher alone left CIFAR
                 * ResNet-18's 4x4 layers at 0.24 ms, this 0.21. */
                pc_prefetch_weights(w, B);
#pragma GCC unroll 4
                for (int vh = 0; vh < VH; vh++) {
#pragma GCC unroll 16
                    for (int vw = 0; vw < VW; vw++) {
                        pc_vn xv = pc_splatn(xr[vh][vw * PS]);
#pragma GCC unroll 8
                        for (int i = 0; i < B * PC_NH; i++)
                            acc[(vh * VW + vw) * B * PC_NH + i] += xv * wv[i];
                    }
                    xr[vh]++;
                    __asm__("" : "+r"(xr[vh]));
                }
            }
        }
    }
    float *o = a->out;
#pragma GCC unroll 28
    for (int p = 0; p < VH * VW; p++)
#pragma GCC unroll 8
        for (int i = 0; i < B * PC_NH; i++)
            pc_storen(o + p * a->out_ps + i * PC_NL, acc[p * B * PC_NH + i]);
}

#define K(VH, VW, B)                                                                       \
    static void k_##VH##_##VW##_##B(const struct pc_kargs *a) { kernel_impl(a, VH, VW, B); }

/* VH = 1 */
K(1, 1, 1) K(1, 2, 1) K(1, 3, 1) K(1, 4, 1) K(1, 5, 1) K(1, 6, 1) K(1, 7, 1) K(1, 8, 1)
K(1, 9, 1) K(1, 10, 1) K(1, 11, 1) K(1, 12, 1) K(1, 13, 1) K(1, 14, 1) K(1, 15, 1) K(1, 16, 1)
K(1, 1, 2) K(1, 2, 2) K(1, 3, 2) K(1, 4, 2) K(1, 5, 2) K(1, 6, 2) K(1, 7, 2) K(1, 8, 2)
K(1, 9, 2) K(1, 10, 2) K(1, 11, 2) K(1, 12, 2) K(1, 13, 2) K(1, 14, 2)
K(1, 1, 3) K(1, 2, 3) K(1, 3, 3) K(1, 4, 3) K(1, 5, 3) K(1, 6, 3) K(1, 7, 3) K(1, 8, 3)
K(1, 9, 3)
K(1, 1, 4) K(1, 2, 4) K(1, 3, 4) K(1, 4, 4) K(1, 5, 4) K(1, 6, 4) K(1, 7, 4)
/* VH = 2 */
K(2, 1, 1) K(2, 2, 1) K(2, 3, 1) K(2, 4, 1) K(2, 5, 1) K(2, 6, 1) K(2, 7, 1) K(2, 8, 1)
K(2, 1, 2) K(2, 2, 2) K(2, 3, 2) K(2, 4, 2) K(2, 5, 2) K(2, 6, 2) K(2, 7, 2)
K(2, 1, 3) K(2, 2, 3) K(2, 3, 3) K(2, 4, 3)
K(2, 1, 4) K(2, 2, 4) K(2, 3, 4)
/* VH = 4 */
K(4, 1, 1) K(4, 2, 1) K(4, 3, 1) K(4, 4, 1)
K(4, 1, 2) K(4, 2, 2) K(4, 3, 2)
K(4, 1, 3) K(4, 2, 3)
K(4, 1, 4)

#define R1(B) k_1_1_##B, k_1_2_##B, k_1_3_##B, k_1_4_##B, k_1_5_##B, k_1_6_##B, k_1_7_##B
static const pc_kernel_fn table1[PC_MAX_B][PC_MAX_VW] = {
    {R1(1), k_1_8_1, k_1_9_1, k_1_10_1, k_1_11_1, k_1_12_1, k_1_13_1, k_1_14_1, k_1_15_1,
     k_1_16_1},
    {R1(2), k_1_8_2, k_1_9_2, k_1_10_2, k_1_11_2, k_1_12_2, k_1_13_2, k_1_14_2},
    {R1(3), k_1_8_3, k_1_9_3},
    {R1(4)},
};
static const pc_kernel_fn table2[PC_MAX_B][PC_MAX_VW] = {
    {k_2_1_1, k_2_2_1, k_2_3_1, k_2_4_1, k_2_5_1, k_2_6_1, k_2_7_1, k_2_8_1},
    {k_2_1_2, k_2_2_2, k_2_3_2, k_2_4_2, k_2_5_2, k_2_6_2, k_2_7_2},
    {k_2_1_3, k_2_2_3, k_2_3_3, k_2_4_3},
    {k_2_1_4, k_2_2_4, k_2_3_4},
};
static const pc_kernel_fn table4[PC_MAX_B][PC_MAX_VW] = {
    {k_4_1_1, k_4_2_1, k_4_3_1, k_4_4_1},
    {k_4_1_2, k_4_2_2, k_4_3_2},
    {k_4_1_3, k_4_2_3},
    {k_4_1_4},
};

pc_kernel_fn pc_kernel(int vh, int vw, int b)
{
    if (vw < 1 || vw > PC_MAX_VW || b < 1 || b > PC_MAX_B)
        return NULL;
    switch (vh) {
    case 1: return table1[b - 1][vw - 1];
    case 2: return table2[b - 1][vw - 1];
    case 4: return table4[b - 1][vw - 1];
    default: return NULL;
    }
}

int pc_kernel_max_vw(int vh, int b)
{
    int best = 0;
    for (int vw = 1; vw <= PC_MAX_VW; vw++)
        if (pc_kernel(vh, vw, b) && vh * vw * b <= PC_ACC_REGS)
            best = vw;
    return best;
}
