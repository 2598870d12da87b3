/* The pointwise micro-kernel of pw_kernels.h, instantiated for every
 * (VW, B) with VW*B <= 28 accumulators, so that they live in registers. */
#include "pw_kernels.h"
#include "pc_kernels.h"

/* The accumulators of VW positions x B channel blocks start at the bias;
 * each block is PC_NH native vectors (pc_kernels.h): acc[(p * B + b) *
 * PC_NH + h]. */
static inline __attribute__((always_inline)) void acc_init(pc_vn *acc, const struct pw_args *a,
                                                           const int VW, const int B)
{
#pragma GCC unroll 16
    for (int p = 0; p < VW; p++)
#pragma GCC unroll 8
        for (int i = 0; i < B * PC_NH; i++)
            acc[p * B * PC_NH + i] = a->bias ? pc_loadn(a->bias + i * PC_NL) : (pc_vn){0};
}

/* The first nb channel blocks go out activated, with the residual added
 * and act_r applied after it where the kernel has one (RES, a literal). */
static inline __attribute__((always_inline)) void acc_store(const pc_vn *acc,
                                                            const struct pw_args *a, const int VW,
                                                            const int B, const int RES)
{
#pragma GCC unroll 4
    for (int b = 0; b < B; b++) {
        if (b >= a->nb)
            break;
        float *o = a->out + b * a->out_bs;
        if (RES && a->res) {
            const float *r = a->res + b * a->res_bs;
#pragma GCC unroll 16
            for (int p = 0; p < VW; p++)
#pragma GCC unroll 2
                for (int h = 0; h < PC_NH; h++)
                    pc_storen(o + p * PC_VL + h * PC_NL,
                              pc_actn(pc_actn(acc[(p * B + b) * PC_NH + h], a->act) +
                                          pc_loadn(r + p * PC_VL + h * PC_NL),
                                      a->act_r));
        } else {
#pragma GCC unroll 16
            for (int p = 0; p < VW; p++)
#pragma GCC unroll 2
                for (int h = 0; h < PC_NH; h++)
                    pc_storen(o + p * PC_VL + h * PC_NL,
                              pc_actn(acc[(p * B + b) * PC_NH + h], a->act));
        }
    }
}

/* One input channel (or tap): acc[p][b] += x[p * xs] * w[b], for the B
 * weight vectors at w and the VW positions xs floats apart at x. */
static inline __attribute__((always_inline)) void acc_step(pc_vn *acc, const float *w,
                                                           const float *x, const int xs,
                                                           const int VW, const int B,
                                                           const int PFW)
{
    pc_vn wv[PC_MAX_B * PC_NH];
#pragma GCC unroll 8
    for (int i = 0; i < B * PC_NH; i++)
        wv[i] = pc_loadn(w + i * PC_NL);
    /* a 1x1 layer's weights on a small map are read once per row (direct's
     * view: ResNet-50's 2048x7x7 -> 512 streams 4 MB) */
    if (PFW)
        pc_prefetch_weights(w, B);
#pragma GCC unroll 16
    for (int p = 0; p < VW; p++) {
        pc_vn xv = pc_splatn(x[p * xs]);
#pragma GCC unroll 8
        for (int i = 0; i < B * PC_NH; i++)
            acc[p * B * PC_NH + i] += xv * wv[i];
    }
}

static inline __attribute__((always_inline)) void pw_impl(const struct pw_args *a, const int VW,
                                                          const int B)
{
    pc_vn acc[PC_MAX_ACC * PC_NH];
    acc_init(acc, a, VW, B);
    const float *w = a->w;
    for (int blk = 0; blk < a->nblk; blk++) {
        const float *x = a->in + blk * a->in_bs;
        const int cb = blk == a->nblk - 1 ? a->cb_last : PC_VL;
        for (int c = 0; c < cb; c++, x++, w += B * PC_VL)
            acc_step(acc, w, x, PC_VL, VW, B, 1);
    }
    acc_store(acc, a, VW, B, 1);
}

static inline __attribute__((always_inline)) void conv_impl(const struct pw_args *a, const int VW,
                                                            const int B, const int S)
{
    pc_vn acc[PC_MAX_ACC * PC_NH];
    acc_init(acc, a, VW, B);
    const float *w = a->w;
    /* a view (1x1, pf_taps set) streams its weights; on padded planes (a
     * stem: 147 taps, 38 KB) they stay in L1, and the requests would only
     * take load slots from the broadcasts */
    if (a->pf_taps) {
        for (int t = 0; t < a->ntaps; t++, w += B * PC_VL) {
            if (t + a->pf_taps < a->ntaps)
                __builtin_prefetch(a->in + a->tap_off[t + a->pf_taps], 0, 3);
            acc_step(acc, w, a->in + a->tap_off[t], S, VW, B, 1);
        }
    } else {
        for (int t = 0; t < a->ntaps; t++, w += B * PC_VL)
            acc_step(acc, w, a->in + a->tap_off[t], S, VW, B, 0);
    }
    acc_store(acc, a, VW, B, 0);
}

#define K(VW, B)                                                                           \
    static void pw_##VW##_##B(const struct pw_args *a) { pw_impl(a, VW, B); }              \
    static void cv1_##VW##_##B(const struct pw_args *a) { conv_impl(a, VW, B, 1); }         \
    static void cv2_##VW##_##B(const struct pw_args *a) { conv_impl(a, VW, B, 2); }
#define ROW7(B) K(1, B) K(2, B) K(3, B) K(4, B) K(5, B) K(6, B) K(7, B)
ROW7(1) ROW7(2) ROW7(3) ROW7(4)
K(8, 1) K(9, 1) K(10, 1) K(11, 1) K(12, 1) K(13, 1) K(14, 1) K(15, 1) K(16, 1)
K(8, 2) K(9, 2) K(10, 2) K(11, 2) K(12, 2) K(13, 2) K(14, 2)
K(8, 3) K(9, 3)

#define T7(P, B) P##_1_##B, P##_2_##B, P##_3_##B, P##_4_##B, P##_5_##B, P##_6_##B, P##_7_##B
#define TABLE(P)                                                                                \
    {                                                                                           \
        {T7(P, 1), P##_8_1, P##_9_1, P##_10_1, P##_11_1, P##_12_1, P##_13_1, P##_14_1, P##_15_1, \
         P##_16_1},                                                                             \
            {T7(P, 2), P##_8_2, P##_9_2, P##_10_2, P##_11_2, P##_12_2, P##_13_2, P##_14_2},     \
            {T7(P, 3), P##_8_3, P##_9_3}, {T7(P, 4)},                                           \
    }
static const pw_fn table[PC_MAX_B][PC_MAX_VW] = TABLE(pw);
static const pw_fn table_s1[PC_MAX_B][PC_MAX_VW] = TABLE(cv1);
static const pw_fn table_s2[PC_MAX_B][PC_MAX_VW] = TABLE(cv2);

pw_fn pw_kernel(int vw, int b)
{
    if (vw < 1 || vw > PC_MAX_VW || b < 1 || b > PC_MAX_B)
        return NULL;
    return table[b - 1][vw - 1];
}

pw_fn pw_conv_kernel(int vw, int b, int s)
{
    if (vw < 1 || vw > PC_MAX_VW || b < 1 || b > PC_MAX_B || (s != 1 && s != 2))
        return NULL;
    /* one table or the other, indexed each on its own: GCC's object-size
     * check (UBSan) mistakes a row of the conditional's result for the whole
     * object and reports rows past the first as out of bounds */
    return s == 1 ? table_s1[b - 1][vw - 1] : table_s2[b - 1][vw - 1];
}

int pw_max_vw(int b)
{
    int best = 0;
    for (int vw = 1; vw <= PC_MAX_VW; vw++)
        if (pw_kernel(vw, b) && vw * b <= PC_ACC_REGS)
            best = vw;
    return best;
}
