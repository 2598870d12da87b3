/* The micro-kernel and packing of pw_gemm.h. */
#include "pw_gemm.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

/* One weight broadcast to a vector, read straight from memory. Spelled
 * with the intrinsic: from pc_splatn, GCC vectorises a panel row's loads
 * (the PG_MR weights of one k are consecutive) into one vector load and
 * per-lane shuffles, which ran this kernel at half the speed. */
static inline __attribute__((always_inline)) pc_vn bcast(const float *p)
{
#if PC_NL == 16
    return (pc_vn)_mm512_set1_ps(*p);
#elif defined(__AVX__)
    return (pc_vn)_mm256_broadcast_ss(p);
#else
    return pc_splatn(*p);
#endif
}

int64_t pg_panel_floats(int64_t M, int64_t K) { return pc_round_up(M, PG_MR) * K; }

void pg_pack_panels(const float *w, int64_t M, int64_t K, float *p)
{
    for (int64_t m0 = 0; m0 < M; m0 += PG_MR)
        for (int64_t k = 0; k < K; k++)
            for (int i = 0; i < PG_MR; i++)
                p[m0 * K + k * PG_MR + i] = m0 + i < M ? w[(m0 + i) * K + k] : 0.0f;
}

void pg_pack_strip(const float *x, int64_t xs, const int64_t *off, int nr, int64_t kc,
                   float *b)
{
    if (!off && nr == PG_NR) {
        for (int64_t k = 0; k < kc; k++)
#pragma GCC unroll 2
            for (int v = 0; v < PG_NR / PC_NL; v++)
                pc_storen(b + k * PG_NR + v * PC_NL, pc_loadn(x + k * xs + v * PC_NL));
        return;
    }
    for (int64_t k = 0; k < kc; k++) {
        const float *row = x + k * xs;
        float *dst = b + k * PG_NR;
        int j = 0;
        if (off)
            for (; j < nr; j++)
                dst[j] = row[off[j]];
        else
            for (; j < nr; j++)
                dst[j] = row[j];
        for (; j < PG_NR; j++)
            dst[j] = 0.0f;
    }
}

/* The tile for NV vectors of pixels (a full strip, or its first half when
 * that holds every pixel), into c at ldc whole, with the residual (if any)
 * at res, also ldc apart: nr is the caller's. */
static inline __attribute__((always_inline)) void tile_impl(const struct pg_tile *t, float *c,
                                                            const float *res, int64_t ldc,
                                                            const int NV)
{
    pc_vn acc[PG_MR][2];
    /* the residual is asked for now and added after the multiply-adds: read
     * here, its lines (from memory, in a batch of 16) held up every one */
    const int add_res = t->first && res;
    if (add_res)
        for (int i = 0; i < t->mr; i++)
            for (int v = 0; v < NV; v++)
                __builtin_prefetch(res + i * ldc + v * PC_NL, 0, 3);
#pragma GCC unroll 12
    for (int i = 0; i < PG_MR; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            const int row = i < t->mr;
            if (t->first)
                acc[i][v] = t->bias ? bcast(t->bias + i) : (pc_vn){0};
            else
                acc[i][v] = row ? pc_loadn(c + i * ldc + v * PC_NL) : (pc_vn){0};
        }
    const float *a = t->a, *b = t->b;
#pragma GCC unroll 4
    for (int64_t k = 0; k < t->kc; k++, a += PG_MR, b += PG_NR) {
        pc_vn bv[2];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            bv[v] = pc_loadn(b + v * PC_NL);
#pragma GCC unroll 12
        for (int i = 0; i < PG_MR; i++) {
            const pc_vn av = bcast(a + i);
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                acc[i][v] += av * bv[v];
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < PG_MR; i++) {
        if (i >= t->mr)
            break;
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            if (add_res)
                acc[i][v] += pc_loadn(res + i * ldc + v * PC_NL);
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            pc_storen(c + i * ldc + v * PC_NL, t->last ? pc_actn(acc[i][v], t->act) : acc[i][v]);
    }
}

static void tile_full(const struct pg_tile *t, float *c, const float *res, int64_t ldc)
{
    tile_impl(t, c, res, ldc, 2);
}
static void tile_half(const struct pg_tile *t, float *c, const float *res, int64_t ldc)
{
    tile_impl(t, c, res, ldc, 1);
}

void pg_tile(const struct pg_tile *t)
{
    const int half = t->nr <= PC_NL, width = half ? PC_NL : PG_NR;
    void (*fn)(const struct pg_tile *, float *, const float *, int64_t) =
        half ? tile_half : tile_full;
    if (t->nr == width) {
        fn(t, t->c, t->res, t->ldc);
        return;
    }
    /* a strip's last pixels: through a tile of whole vectors (what the
     * tile reads first, partial sums or the residual, copied in) */
    float tmp[PG_MR * PG_NR] __attribute__((aligned(64)));
    const float *in = t->first ? t->res : t->c;
    if (in)
        for (int i = 0; i < t->mr; i++)
            memcpy(tmp + i * PG_NR, in + i * t->ldc, (size_t)t->nr * sizeof(float));
    fn(t, tmp, t->first && t->res ? tmp : NULL, PG_NR);
    for (int i = 0; i < t->mr; i++)
        memcpy(t->c + i * t->ldc, tmp + i * PG_NR, (size_t)t->nr * sizeof(float));
}
