/* The pointwise micro-kernel of pw_kernels.h, instantiated for every
 * (VW, B) with VW*B <= 28 accumulators, so that they live in registers. */
#include "pw_kernels.h"
#include "pc_kernels.h"

/* The accumulators of VW positions x B channel blocks start at the bias;
 * each block is PC_NH native vectors (pc_kernels.h): acc[p * nn + b *
 * PC_NH + h], nn = NNAT(B, HALF) below. With HALF (a literal) the last block holds 8 channels (its
 * weights' and bias's upper lanes are zero): the build's 8-float vector
 * (half a native one with AVX-512, in hacc[p]; one native vector without,
 * whose second one is then never computed). On a 256-bit FMA datapath
 * (Zen 4) an 8-float multiply-add takes half the cycles of a 16-float one:
 * a projection to 24 channels (MobileNet v2's) does 3/4 of the work. */
#if PC_NH == 1
#define HSPLIT 1 /* the half block is a vector of its own type */
typedef float pw_v8 __attribute__((vector_size(32), aligned(32)));
typedef float pw_v8u __attribute__((vector_size(32), aligned(4), may_alias));
static inline pw_v8 lo8(pc_vn v) { return (pw_v8)_mm512_castps512_ps256((__m512)v); }
static inline pw_v8 load8(const float *p) { return *(const pw_v8u *)p; }
#else
#define HSPLIT 0
typedef pc_vn pw_v8;
#endif

/* Native vectors a position's accumulators take in acc[]: the half block's
 * one native vector counts there without AVX-512, not with it. */
#define NNAT(B, HALF) ((B) * PC_NH - ((HALF) ? (HSPLIT ? 1 : PC_NH / 2) : 0))

static inline __attribute__((always_inline)) void acc_init(pc_vn *acc, pw_v8 *hacc,
                                                           const struct pw_args *a, const int VW,
                                                           const int B, const int HALF)
{
    const int nn = NNAT(B, HALF);
#pragma GCC unroll 16
    for (int p = 0; p < VW; p++) {
#pragma GCC unroll 8
        for (int i = 0; i < nn; i++)
            acc[p * nn + i] = a->bias ? pc_loadn(a->bias + i * PC_NL) : (pc_vn){0};
#if HSPLIT
        if (HALF)
            hacc[p] = a->bias ? load8(a->bias + (B - 1) * PC_VL) : (pw_v8){0};
#endif
    }
    (void)hacc;
}

/* Block b's VW positions to o, activated; with R (a literal) the residual
 * at r added and act_r applied after it. */
static inline __attribute__((always_inline)) void store_block(const pc_vn *acc, const pw_v8 *hacc,
                                                              const struct pw_args *a, int b,
                                                              float *o, const float *r,
                                                              const int VW, const int B,
                                                              const int HALF, const int R)
{
    const int nn = NNAT(B, HALF);
#pragma GCC unroll 16
    for (int p = 0; p < VW; p++)
#pragma GCC unroll 2
        for (int h = 0; h < PC_NH; h++) {
            const int i = b * PC_NH + h;
            pc_vn v = i < nn ? acc[p * nn + i] : (pc_vn){0};
#if HSPLIT
            if (HALF && b == B - 1)
                v = (pc_vn)_mm512_zextps256_ps512((__m256)hacc[p]);
#endif
            v = pc_actn(v, a->act);
            if (R)
                v = pc_actn(v + pc_loadn(r + p * PC_VL + h * PC_NL), a->act_r);
            pc_storen(o + p * PC_VL + h * PC_NL, v);
        }
    (void)hacc;
}

/* The first nb channel blocks go out activated, with the residual added
 * and act_r applied after it where the kernel has one (RES, a literal).
 * The half block goes out with its other 8 lanes zero, as a block of a
 * channel count past the last multiple of 16 always does. */
static inline __attribute__((always_inline)) void acc_store(const pc_vn *acc, const pw_v8 *hacc,
                                                            const struct pw_args *a, const int VW,
                                                            const int B, const int RES,
                                                            const int HALF)
{
#pragma GCC unroll 4
    for (int b = 0; b < B; b++) {
        if (b >= a->nb)
            break;
        float *o = a->out + b * a->out_bs;
        if (RES && a->res)
            store_block(acc, hacc, a, b, o, a->res + b * a->res_bs, VW, B, HALF, 1);
        else
            store_block(acc, hacc, a, b, o, NULL, VW, B, HALF, 0);
    }
}

/* One input channel (or tap): acc[p][b] += x[p * xs] * w[b], for the B
 * weight vectors at w and the VW positions xs floats apart at x. */
static inline __attribute__((always_inline)) void acc_step(pc_vn *acc, pw_v8 *hacc, const float *w,
                                                           const float *x, const int xs,
                                                           const int VW, const int B,
                                                           const int PFW, const int HALF)
{
    const int nn = NNAT(B, HALF);
    pc_vn wv[PC_MAX_B * PC_NH];
#pragma GCC unroll 8
    for (int i = 0; i < nn; i++)
        wv[i] = pc_loadn(w + i * PC_NL);
#if HSPLIT
    const pw_v8 wh = HALF ? load8(w + (B - 1) * PC_VL) : (pw_v8){0};
#endif
    /* a 1x1 layer's weights on a small map are read once per row (direct's
     * view: ResNet-50's 2048x7x7 -> 512 streams 4 MB) */
    if (PFW)
        pc_prefetch_weights(w, B);
#pragma GCC unroll 16
    for (int p = 0; p < VW; p++) {
        pc_vn xv = pc_splatn(x[p * xs]);
#pragma GCC unroll 8
        for (int i = 0; i < nn; i++)
            acc[p * nn + i] += xv * wv[i];
#if HSPLIT
        if (HALF)
            hacc[p] += lo8(xv) * wh;
#endif
    }
    (void)hacc;
}

static inline __attribute__((always_inline)) void pw_impl(const struct pw_args *a, const int VW,
                                                          const int B, const int HALF)
{
    pc_vn acc[PC_MAX_ACC * PC_NH];
    pw_v8 hacc[PC_MAX_VW];
    acc_init(acc, hacc, a, VW, B, HALF);
    const float *w = a->w;
    for (int blk = 0; blk < a->nblk; blk++) {
        if (a->side)
            for (int i = 0; i < a->side_lines; i++)
                __builtin_prefetch(a->side + ((int64_t)blk * a->side_lines + i) * 64, 0, 2);
        const float *x = a->in + blk * a->in_bs;
        const int cb = blk == a->nblk - 1 ? a->cb_last : PC_VL;
        for (int c = 0; c < cb; c++, x++, w += B * PC_VL)
            acc_step(acc, hacc, w, x, PC_VL, VW, B, 1, HALF);
    }
    acc_store(acc, hacc, a, VW, B, 1, HALF);
}

static inline __attribute__((always_inline)) void conv_impl(const struct pw_args *a, const int VW,
                                                            const int B, const int S)
{
    pc_vn acc[PC_MAX_ACC * PC_NH];
    acc_init(acc, NULL, a, VW, B, 0);
    const float *w = a->w;
    /* a view (1x1, pf_taps set) streams its weights; on padded planes (a
     * stem: 147 taps, 38 KB) they stay in L1, and the requests would only
     * take load slots from the broadcasts */
    if (a->pf_taps) {
        for (int t = 0; t < a->ntaps; t++, w += B * PC_VL) {
            if (t + a->pf_taps < a->ntaps)
                __builtin_prefetch(a->in + a->tap_off[t + a->pf_taps], 0, 3);
            acc_step(acc, NULL, w, a->in + a->tap_off[t], S, VW, B, 1, 0);
        }
    } else {
        for (int t = 0; t < a->ntaps; t++, w += B * PC_VL)
            acc_step(acc, NULL, w, a->in + a->tap_off[t], S, VW, B, 0, 0);
    }
    acc_store(acc, NULL, a, VW, B, 0, 0);
}

#define K(VW, B)                                                                           \
    static void pw_##VW##_##B(const struct pw_args *a) { pw_impl(a, VW, B, 0); }           \
    static void pwh_##VW##_##B(const struct pw_args *a) { pw_impl(a, VW, B, 1); }          \
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
static const pw_fn table_half[PC_MAX_B][PC_MAX_VW] = TABLE(pwh);
static const pw_fn table_s1[PC_MAX_B][PC_MAX_VW] = TABLE(cv1);
static const pw_fn table_s2[PC_MAX_B][PC_MAX_VW] = TABLE(cv2);

/* (vw, b) within the tables (an entry may still be NULL) */
static int in_tables(int vw, int b)
{
    return vw >= 1 && vw <= PC_MAX_VW && b >= 1 && b <= PC_MAX_B;
}

pw_fn pw_kernel(int vw, int b) { return in_tables(vw, b) ? table[b - 1][vw - 1] : NULL; }

pw_fn pw_kernel_half(int vw, int b)
{
    return in_tables(vw, b) ? table_half[b - 1][vw - 1] : NULL;
}

int pw_half_tail(int64_t channels)
{
    const int64_t tail = channels % PC_VL;
    return tail > 0 && tail <= PC_VL / 2;
}

pw_fn pw_conv_kernel(int vw, int b, int s)
{
    if (!in_tables(vw, b) || (s != 1 && s != 2))
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
