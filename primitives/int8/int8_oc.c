/* int8-direct with output channels in the vector lanes (oneDNN's layout for
 * int8 convolution), for layers whose output grid the flat-grid kernel of
 * int8_conv.c covers badly: it computes and drops the padding columns of
 * every row and rounds the grid up to whole vectors (49 outputs of a 7x7
 * layer cost 64 positions there; 196 of a 14x14 one, 224).
 *
 * The zero-point-padded input of an image is packed pixel-major,
 * [Hp][Wp][C4][4] uint8, so that one output position and one tap read the
 * C4 channel quads of one pixel, consecutive. A micro-tile keeps 4 vectors
 * of 16 output channels x R output positions (R = 4..6) of int32 sums in
 * 4R zmm registers; per (tap, channel quad) it loads the 4 weight vectors
 * (64 channels x 4 input channels, contiguous, 64-byte aligned), broadcasts
 * the R positions' quads and issues 4R vpdpbusd. Positions run over the
 * output grid in order (y * out_w + x), so only the last tile repeats
 * positions; any stride and dilation is an offset table. Stores go through
 * a small buffer, 16 channels of a position at a time, with each lane's
 * own requantisation constants. */
#include <string.h>

#include "int8_impl.h"

#define OB_C 64    /* output channels per micro-tile: 4 vectors */

/* a channel quad read from the byte buffer */
typedef uint32_t u8quad __attribute__((may_alias, aligned(1)));
#define R_MAX 6    /* positions per micro-tile */
#define R_MIN 4

int oc_pick_r(int64_t positions)
{
    int best = R_MAX;
    for (int r = R_MAX - 1; r >= R_MIN; r--)
        if ((positions + r - 1) / r * r < (positions + best - 1) / best * best)
            best = r;
    return best;
}

/* Cycles: one vpdpbusd (16 lanes x one quad) per cycle, plus about one
 * cycle per stored output for the oc layout's scattered stores. */
double oc_cost(const struct i8_state *s)
{
    const int64_t F = s->L.d.out_h * s->L.d.out_w;
    const int r = oc_pick_r(F);
    const double computed = (double)((F + r - 1) / r * r) * (double)((s->opg + OB_C - 1) / OB_C * OB_C);
    return computed * (double)(s->C4 * s->taps) / 16.0 + (double)(F * s->opg);
}

double pos_cost(const struct i8_state *s)
{
    return (double)s->Fr * (double)(s->OB * MR) * (double)(s->C4 * s->taps) / 16.0;
}

/* ---- prepare ------------------------------------------------------------------ */

static void pack_weights_oc(struct i8_state *s)
{
    const int64_t K = s->L.K, taps = s->taps, C4 = s->C4;
    for (int64_t g = 0; g < s->L.d.groups; g++)
        for (int64_t o = 0; o < s->opg; o++) {
            const int8_t *w = s->L.wq + (g * s->opg + o) * K;
            const int64_t ob = o / OB_C, lane = o % OB_C;
            for (int64_t c = 0; c < s->cpg; c++)
                for (int64_t t = 0; t < taps; t++) {
                    int64_t step = ((g * s->OBc + ob) * taps + t) * C4 + c / 4;
                    s->wpo[(step * OB_C + lane) * 4 + c % 4] = w[c * taps + t];
                }
        }
}

static void lane_constants(struct i8_state *s)
{
    const struct dlas_int8_layer *L = &s->L;
    for (int64_t g = 0; g < L->d.groups; g++)
        for (int64_t blk = 0; blk < s->OBc * 4; blk++) {
            struct oc_lane16 *p = &s->lp[g * s->OBc * 4 + blk];
            for (int l = 0; l < 16; l++) {
                int64_t oo = blk * 16 + l; /* within the group */
                int real = oo < s->opg;
                int64_t o = g * s->opg + oo;
                p->off[l] = real ? L->off[o] : 0;
                p->scale[l] = real ? L->scale[o] : 0.0f;
                p->bias[l] = real ? L->bias[o] : 0.0f;
                int32_t mult = real && L->q.out_u8 ? L->mult[o] : 0;
                int shift = real && L->q.out_u8 ? L->shift[o] : 1;
                p->mult[l] = mult;
                int64_t *sh = l % 2 ? p->sh_od : p->sh_ev, *rnd = l % 2 ? p->rnd_od : p->rnd_ev;
                sh[l / 2] = shift;
                rnd[l / 2] = (int64_t)1 << (shift - 1);
            }
        }
}

int oc_prepare(struct i8_state *s)
{
    const struct dlas_conv_desc *d = &s->L.d;
    const int64_t F = d->out_h * d->out_w;
    s->R = oc_pick_r(F);
    s->chunks = (F + s->R - 1) / s->R;
    s->OBc = (s->opg + OB_C - 1) / OB_C;
    s->pix = s->C4 * 4;
    const struct dlas_host *h = s->host;
    s->posoff = h->alloc((size_t)(s->chunks * s->R) * sizeof *s->posoff);
    s->tapoff_oc = h->alloc((size_t)s->taps * sizeof *s->tapoff_oc);
    s->wpo = h->alloc((size_t)(d->groups * s->OBc * s->taps * s->C4 * OB_C * 4));
    s->lp = h->alloc((size_t)(d->groups * s->OBc * 4) * sizeof *s->lp);
    if (!s->posoff || !s->tapoff_oc || !s->wpo || !s->lp)
        return dlas_error(DLAS_ERR_NOMEM, "int8-direct: out of memory");
    for (int64_t f = 0; f < s->chunks * s->R; f++) {
        int64_t ff = f < F ? f : F - 1, y = ff / d->out_w, x = ff % d->out_w;
        s->posoff[f] = (y * s->S * s->Wp + x * s->S) * s->pix;
    }
    for (int r = 0; r < d->kh; r++)
        for (int c = 0; c < d->kw; c++)
            s->tapoff_oc[r * d->kw + c] =
                ((int64_t)r * d->dil_h * s->Wp + (int64_t)c * d->dil_w) * s->pix;
    memset(s->wpo, 0, (size_t)(d->groups * s->OBc * s->taps * s->C4 * OB_C * 4));
    pack_weights_oc(s);
    lane_constants(s);
    return DLAS_OK;
}

void oc_release(struct i8_state *s)
{
    s->host->free(s->posoff);
    s->host->free(s->tapoff_oc);
    s->host->free(s->wpo);
    s->host->free(s->lp);
}

size_t oc_pack_bytes(const struct i8_state *s)
{
    return ((size_t)(s->Hp * s->Wp * s->pix) + 63) / 64 * 64;
}

int64_t oc_units(const struct i8_state *s)
{
    return s->OBc * s->chunks;
}

/* ---- packing ------------------------------------------------------------------ */

TARGET void oc_pack(const struct i8_state *s, const uint8_t *in, int64_t g, uint8_t *buf,
                    int64_t cq0, int64_t cq1)
{
    const struct dlas_conv_desc *d = &s->L.d;
    const uint8_t zp = (uint8_t)s->L.q.in.zero_point;
    const uint32_t zq = 0x01010101u * zp;
    const int64_t H = d->in_h, W = d->in_w, Wp = s->Wp, pix = s->pix;
    const __m128i zpv = _mm_set1_epi8((char)zp);
    for (int64_t cq = cq0; cq < cq1; cq++) {
        uint8_t *base = buf + cq * 4;
        /* the padding of this quad: rows above and below, columns either side */
        for (int64_t py = 0; py < s->Hp; py++) {
            int inside = py >= d->pad_h && py < d->pad_h + H;
            for (int64_t px = 0; px < Wp; px++) {
                if (inside && px == d->pad_w) {
                    px = d->pad_w + W - 1;
                    continue;
                }
                memcpy(base + (py * Wp + px) * pix, &zq, 4);
            }
        }
        const uint8_t *src[4];
        for (int k = 0; k < 4; k++) {
            int64_t c = cq * 4 + k;
            src[k] = c < s->cpg ? in + (g * s->cpg + c) * H * W : NULL;
        }
        for (int64_t y = 0; y < H; y++) {
            uint8_t *row = base + ((y + d->pad_h) * Wp + d->pad_w) * pix;
            int64_t x = 0;
            for (; x + 16 <= W; x += 16) {
                __m128i v[4];
                for (int k = 0; k < 4; k++)
                    v[k] = src[k] ? _mm_loadu_si128((const __m128i *)(src[k] + y * W + x)) : zpv;
                __m128i ab0 = _mm_unpacklo_epi8(v[0], v[1]), ab1 = _mm_unpackhi_epi8(v[0], v[1]);
                __m128i ce0 = _mm_unpacklo_epi8(v[2], v[3]), ce1 = _mm_unpackhi_epi8(v[2], v[3]);
                __m128i q[4] = {_mm_unpacklo_epi16(ab0, ce0), _mm_unpackhi_epi16(ab0, ce0),
                                _mm_unpacklo_epi16(ab1, ce1), _mm_unpackhi_epi16(ab1, ce1)};
                uint8_t *dst = row + x * pix;
                for (int k = 0; k < 4; k++) {
                    /* four pixels' quads to four pixels C4 quads apart */
                    _mm_storeu_si32(dst + (4 * k) * pix, q[k]);
                    _mm_storeu_si32(dst + (4 * k + 1) * pix, _mm_srli_si128(q[k], 4));
                    _mm_storeu_si32(dst + (4 * k + 2) * pix, _mm_srli_si128(q[k], 8));
                    _mm_storeu_si32(dst + (4 * k + 3) * pix, _mm_srli_si128(q[k], 12));
                }
            }
            for (; x < W; x++)
                for (int k = 0; k < 4; k++)
                    row[x * pix + k] = src[k] ? src[k][y * W + x] : zp;
        }
    }
}

/* ---- micro-kernel ------------------------------------------------------------- */

/* sums[j][64]: the 64 channels' sums at position j of the tile. The
 * accumulators stay in registers: R is a constant in each instance and every
 * loop over it or the 4 vectors is unrolled. */
#define UNROLL _Pragma("GCC unroll 8")
#define DEFINE_OC_TILE(R)                                                                      \
    TARGET static void oc_tile_##R(const struct i8_state *s, const __m512i *w,                \
                                   const uint8_t *act, const int64_t *pos, int32_t *sums)     \
    {                                                                                          \
        __m512i acc[R][4];                                                                     \
        UNROLL for (int j = 0; j < R; j++)                                                     \
            UNROLL for (int v = 0; v < 4; v++) acc[j][v] = _mm512_setzero_si512();             \
        for (int t = 0; t < s->taps; t++) {                                                    \
            const uint8_t *q[R];                                                               \
            UNROLL for (int j = 0; j < R; j++) q[j] = act + pos[j] + s->tapoff_oc[t];          \
            for (int64_t cq = 0; cq < s->C4; cq++, w += 4) {                                   \
                __m512i w0 = _mm512_load_si512(w), w1 = _mm512_load_si512(w + 1);              \
                __m512i w2 = _mm512_load_si512(w + 2), w3 = _mm512_load_si512(w + 3);          \
                /* in registers: folded into each vpdpbusd as a memory operand, the \
                 * weights would be loaded R times (a load per vpdpbusd) */         \
                __asm__("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3));                          \
                UNROLL for (int j = 0; j < R; j++) {                                           \
                    __m512i b = _mm512_set1_epi32((int)((const u8quad *)q[j])[cq]);             \
                    acc[j][0] = _mm512_dpbusd_epi32(acc[j][0], b, w0);                         \
                    acc[j][1] = _mm512_dpbusd_epi32(acc[j][1], b, w1);                         \
                    acc[j][2] = _mm512_dpbusd_epi32(acc[j][2], b, w2);                         \
                    acc[j][3] = _mm512_dpbusd_epi32(acc[j][3], b, w3);                         \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        UNROLL for (int j = 0; j < R; j++)                                                     \
            UNROLL for (int v = 0; v < 4; v++)                                                 \
                _mm512_storeu_si512(sums + j * OB_C + v * 16, acc[j][v]);                      \
    }
DEFINE_OC_TILE(4)
DEFINE_OC_TILE(5)
DEFINE_OC_TILE(6)

/* 16 channels' sums of one position, as <dlas/quant.h> defines their output,
 * into out16 (16 bytes or 16 floats). */
TARGET static void oc_finish16(const struct i8_state *s, const struct oc_lane16 *p, __m512i acc,
                               void *out16)
{
    const struct dlas_int8_layer *L = &s->L;
    __m512i a = _mm512_add_epi32(acc, _mm512_loadu_si512(p->off));
    if (!L->q.out_u8) {
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_loadu_ps(p->scale),
                                   _mm512_loadu_ps(p->bias));
        if (L->d.activation != DLAS_ACT_NONE)
            y = _mm512_max_ps(y, _mm512_setzero_ps());
        if (L->d.activation == DLAS_ACT_RELU6)
            y = _mm512_min_ps(y, _mm512_set1_ps(6.0f));
        _mm512_storeu_ps(out16, y);
        return;
    }
    /* round(a * mult / 2^shift) half up, in 64-bit even and odd lanes */
    const __m512i mult = _mm512_loadu_si512(p->mult);
    const int32_t zp = L->q.out.zero_point;
    const __m512i lo = _mm512_set1_epi64((int64_t)L->lo - zp);
    const __m512i hi = _mm512_set1_epi64((int64_t)L->hi - zp);
    __m512i ev = _mm512_srav_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(a, mult), _mm512_loadu_si512(p->rnd_ev)),
        _mm512_loadu_si512(p->sh_ev));
    __m512i od = _mm512_srav_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(mult, 32)),
                         _mm512_loadu_si512(p->rnd_od)),
        _mm512_loadu_si512(p->sh_od));
    ev = _mm512_min_epi64(_mm512_max_epi64(ev, lo), hi);
    od = _mm512_min_epi64(_mm512_max_epi64(od, lo), hi);
    __m512i q = _mm512_mask_blend_epi32(0xAAAA, ev, _mm512_slli_epi64(od, 32));
    q = _mm512_add_epi32(q, _mm512_set1_epi32(zp));
    _mm_storeu_si128((__m128i *)out16, _mm512_cvtepi32_epi8(q));
}

/* q[j] (j < 8) holds 16 channels' bytes of position j: channel l's bytes of
 * the positions go to dst + l * F, those under `mask` (a 16 x 8 byte
 * transpose by unpacking, then one masked store per channel). */
TARGET static void store_u8_transposed(uint8_t *dst, int64_t F, const __m128i q[8], int nl,
                                       __mmask16 mask)
{
    __m128i t[8], u[8], x[8];
    for (int k = 0; k < 4; k++) { /* pairs of positions, bytes interleaved */
        t[2 * k] = _mm_unpacklo_epi8(q[2 * k], q[2 * k + 1]);     /* channels 0..7 */
        t[2 * k + 1] = _mm_unpackhi_epi8(q[2 * k], q[2 * k + 1]); /* channels 8..15 */
    }
    for (int k = 0; k < 2; k++) { /* quads of positions: 4 channels per vector */
        u[4 * k] = _mm_unpacklo_epi16(t[4 * k], t[4 * k + 2]);     /* 0..3 */
        u[4 * k + 1] = _mm_unpackhi_epi16(t[4 * k], t[4 * k + 2]); /* 4..7 */
        u[4 * k + 2] = _mm_unpacklo_epi16(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm_unpackhi_epi16(t[4 * k + 1], t[4 * k + 3]);
    }
    for (int k = 0; k < 4; k++) { /* 8 positions of 2 channels per vector */
        x[2 * k] = _mm_unpacklo_epi32(u[k], u[4 + k]);
        x[2 * k + 1] = _mm_unpackhi_epi32(u[k], u[4 + k]);
    }
    for (int l = 0; l < nl; l++) {
        __m128i row = l % 2 ? _mm_srli_si128(x[l / 2], 8) : x[l / 2];
        _mm_mask_storeu_epi8(dst + (int64_t)l * F, mask, row);
    }
}

TARGET void oc_run_unit(const struct i8_state *s, int64_t g, int64_t u, const uint8_t *buf,
                        void *out_img)
{
    const struct dlas_conv_desc *d = &s->L.d;
    const int64_t ob = u / s->chunks, f0 = (u % s->chunks) * s->R;
    const int64_t F = d->out_h * d->out_w;
    const int64_t *pos = s->posoff + f0;
    const __m512i *w = (const __m512i *)(const void *)(s->wpo + (g * s->OBc + ob) * s->taps *
                                                                     s->C4 * OB_C * 4);
    int32_t sums[R_MAX * OB_C] __attribute__((aligned(64)));
    if (s->R == 6)
        oc_tile_6(s, w, buf, pos, sums);
    else if (s->R == 5)
        oc_tile_5(s, w, buf, pos, sums);
    else
        oc_tile_4(s, w, buf, pos, sums);
    const int64_t npos = F - f0 < s->R ? F - f0 : s->R;
    for (int v = 0; v < 4; v++) {
        const int64_t o16 = ob * OB_C + v * 16; /* within the group */
        if (o16 >= s->opg)
            break;
        const int nl = s->opg - o16 < 16 ? (int)(s->opg - o16) : 16;
        const struct oc_lane16 *p = &s->lp[(g * s->OBc + ob) * 4 + v];
        const int64_t o_first = g * s->opg + o16;
        if (s->L.q.out_u8) {
            uint8_t *dst = (uint8_t *)out_img + o_first * F + f0;
            __m128i q[8];
            for (int j = 0; j < 8; j++)
                q[j] = _mm_setzero_si128();
            for (int64_t j = 0; j < npos; j++)
                oc_finish16(s, p, _mm512_load_si512(sums + j * OB_C + v * 16), &q[j]);
            store_u8_transposed(dst, F, q, nl, (__mmask16)((1u << npos) - 1));
        } else {
            for (int64_t j = 0; j < npos; j++) {
                float r[16];
                oc_finish16(s, p, _mm512_load_si512(sums + j * OB_C + v * 16), r);
                for (int l = 0; l < nl; l++)
                    ((float *)out_img)[(o_first + l) * F + f0 + j] = r[l];
            }
        }
    }
}
