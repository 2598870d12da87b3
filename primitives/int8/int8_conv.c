/* Primitives "int8-direct" and "int8-gemm": int8 convolution with AVX-512
 * VNNI (vpdpbusd: 64 uint8 x int8 products summed in fours into 16 int32
 * lanes per instruction), requantised by a fixed-point multiplier and shift
 * (Jacob et al., CVPR 2018), for layers quantised by quant-int8.
 *
 * Arithmetic: <dlas/quant.h> (dlas_int8_layer) defines every integer and
 * rounding step; this file only lays the data out for vpdpbusd and must match
 * dlas_ref_conv2d_int8 bit for bit.
 *
 * int8-direct (no im2col). The zero-point-padded input of one image is
 * repacked once into channel quads, [plane][C/4][Hq][Wq][4] uint8, with the
 * columns and rows split into stride x stride phase planes (padded pixel
 * (i, j) goes to plane (i % S, j % S) at (i / S, j / S)). Output pixel (y, x)
 * and tap (r, s) then read plane ((r*dil) % S, (s*dil) % S) at (y + r*dil/S,
 * x + s*dil/S): over the output grid flattened with the planes' width Wq, the
 * 16 lanes of a vector (16 consecutive flat positions) read 16 consecutive
 * channel quads, one 64-byte load, for every tap and channel quad. Columns x
 * >= out_w of the flat grid are computed and dropped (Wq - out_w of every
 * Wq: 2 of 58 on a 56-wide layer, 2 of 9 on a 7-wide one). The micro-kernel
 * keeps MR = 8 output channels x NV = 1..3 vectors (16-48 positions; the
 * `vectors` knob, by default the NV that computes the fewest padding
 * positions) of int32 sums in up to 24 registers; each step loads NV
 * activation vectors and broadcasts 8 weight quads (4 input channels of one
 * tap of one output channel).
 *
 * int8-gemm (im2col): the same micro-kernel over an explicit column matrix,
 * packed [K/4][positions][4] (every receptive field unrolled, as
 * im2col-gemm does in fp32): one activation stream for every tap, at the
 * cost of writing K x positions bytes per image.
 *
 * Threads: per image, the packing is split by channel quads and the
 * micro-kernel tiles (output-channel block, 16 NV positions) over the
 * backend's threads. */
#include <limits.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <immintrin.h>

#include <dlas/plugin.h>
#include <dlas/quant.h>

#include "int8_impl.h"

static const char *const names[] = {"int8-direct", "int8-gemm"};

static int fail(char *why, size_t len, int status, const char *name, const char *fmt, ...)
    DLAS_PRINTF(5, 6);
static int fail(char *why, size_t len, int status, const char *name, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (why && len)
        snprintf(why, len, "%s", msg);
    return dlas_error(status, "%s: %s", name, msg);
}

static int have_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

static int check(enum variant v, const struct dlas_conv_desc *d, char *why, size_t len)
{
    const char *nm = names[v];
    if (why && len)
        why[0] = '\0';
    if (!have_vnni())
        return fail(why, len, DLAS_ERR_UNAVAILABLE, nm,
                    "this CPU lacks AVX-512 VNNI (vpdpbusd); no vpmaddubsw fallback is built");
    if (!d)
        return fail(why, len, DLAS_ERR_INVALID, nm, "no layer description");
    if (!d->quant)
        return fail(why, len, DLAS_ERR_UNSUPPORTED, nm,
                    "an fp32 layer (int8 primitives run layers quantised by quant-int8)");
    if (d->quant->size < sizeof(struct dlas_conv_quant))
        return fail(why, len, DLAS_ERR_INVALID, nm, "quantisation description too short");
    struct dlas_conv_desc c = *d;
    if (dlas_conv_desc_finish(&c) || c.out_h != d->out_h || c.out_w != d->out_w)
        return fail(why, len, DLAS_ERR_INVALID, nm, "malformed layer");
    if (d->stride_h != d->stride_w)
        return fail(why, len, DLAS_ERR_UNSUPPORTED, nm, "unequal strides %dx%d", d->stride_h,
                    d->stride_w);
    int64_t K = d->in_c / d->groups * d->kh * d->kw;
    if (K > DLAS_INT8_K_MAX)
        return fail(why, len, DLAS_ERR_UNSUPPORTED, nm,
                    "%lld products per output exceed %d (int32 sums could overflow)",
                    (long long)K, DLAS_INT8_K_MAX);
    int64_t S = d->stride_h, Hp = d->in_h + 2 * d->pad_h, Wp = d->in_w + 2 * d->pad_w;
    int64_t Hq = (Hp + S - 1) / S, Wq = (Wp + S - 1) / S;
    if (Hq * Wq > INT_MAX / 4 || d->out_h * d->out_w * (int64_t)d->kh * d->kw > INT_MAX)
        return fail(why, len, DLAS_ERR_UNSUPPORTED, nm, "layer too large");
    return DLAS_OK;
}

static int direct_supports(const struct dlas_conv_desc *d, const struct dlas_params *p,
                           char *why, size_t len)
{
    return check(DIRECT, d, why, len);
}
static int gemm_supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                         size_t len)
{
    return check(GEMM, d, why, len);
}

/* ---- parameters ---------------------------------------------------------- */

static const struct dlas_param_spec direct_params[] = {
    {"vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, NV_MAX, NULL,
     "vectors of 16 output positions per register block (V, with 8 output channels; "
     "lanes = positions); 0 = chosen from the layer"},
    {"lanes", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|positions|channels",
     "what the 16 lanes of a vector hold: output positions (8 channels x 16 V positions "
     "per block, over the flat grid) or output channels (64 channels x 4-6 positions, "
     "no padding positions computed); auto estimates both"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_param_spec gemm_params[] = {
    {"vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, NV_MAX, NULL,
     "vectors of 16 output positions per register block (V, with 8 output channels); "
     "0 = chosen from the layer"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int param_int(const struct dlas_params *p, const char *k)
{
    return p ? (int)dlas_param_int(p, k) : 0;
}

static const char *param_str(const struct dlas_params *p, const char *k, const char *def)
{
    const char *v = p ? dlas_param_str(p, k) : NULL;
    return v ? v : def;
}

static int threads_of(const struct i8_state *s)
{
    if (!s->be.ops || !s->be.ops->threads)
        return 1;
    int t = s->be.ops->threads(s->be.ctx);
    return t < 1 ? 1 : t;
}

/* ---- prepare ------------------------------------------------------------------- */

static void release(void *state)
{
    struct i8_state *s = state;
    if (!s)
        return;
    dlas_int8_layer_free(&s->L);
    s->host->free(s->wp);
    s->host->free(s->tapoff);
    s->host->free(s->plane_used);
    oc_release(s);
    s->host->free(s->vmask);
    s->host->free(s->vfirst);
    s->host->free(s);
}

/* Weights as [group][OB][step][MR][4]: a step is one quad of K (gemm) or
 * one (channel quad, tap) pair (direct); zero where a channel or quad entry
 * does not exist. */
static void pack_weights(struct i8_state *s)
{
    const struct dlas_conv_desc *d = &s->L.d;
    const int64_t K = s->L.K;
    for (int64_t g = 0; g < d->groups; g++)
        for (int64_t o = 0; o < s->opg; o++) {
            const int8_t *w = s->L.wq + (g * s->opg + o) * K;
            int8_t *blk = s->wp + ((g * s->OB + o / MR) * s->steps) * MR * 4;
            for (int64_t c = 0; c < s->cpg; c++)
                for (int t = 0; t < s->taps; t++) {
                    int64_t k = c * s->taps + t, step, lane;
                    if (s->v == DIRECT) {
                        step = (c / 4) * s->taps + t;
                        lane = c % 4;
                    } else {
                        step = k / 4;
                        lane = k % 4;
                    }
                    blk[(step * MR + o % MR) * 4 + lane] = w[k];
                }
        }
}

/* Where the valid lanes of each vector of the flat grid go: their output
 * indices are consecutive (the dropped columns sit between rows). */
static void lane_tables(struct i8_state *s)
{
    for (int64_t vi = 0; vi < s->Fr / 16; vi++) {
        __mmask16 m = 0;
        int64_t first = -1;
        for (int l = 0; l < 16; l++) {
            int64_t p = vi * 16 + l, at;
            if (s->v == DIRECT) {
                int64_t y = p / s->Wq, x = p % s->Wq;
                if (y >= s->L.d.out_h || x >= s->L.d.out_w)
                    continue;
                at = y * s->L.d.out_w + x;
            } else {
                if (p >= s->F)
                    continue;
                at = p;
            }
            if (first < 0)
                first = at;
            m |= (__mmask16)(1u << l);
        }
        s->vmask[vi] = m;
        s->vfirst[vi] = first;
    }
}

static int prepare(enum variant v, const struct dlas_host *host, const struct dlas_backend *be,
                   const struct dlas_conv_desc *d, const float *weight, const float *bias,
                   const struct dlas_params *p, void **state)
{
    *state = NULL;
    int rc = check(v, d, NULL, 0);
    if (rc)
        return rc;
    struct i8_state *s = host->alloc(sizeof *s);
    if (!s)
        return dlas_error(DLAS_ERR_NOMEM, "%s: out of memory", names[v]);
    s->host = host;
    s->v = v;
    if (be)
        s->be = *be;
    if ((rc = dlas_int8_layer_init(&s->L, d, weight, bias, d->quant))) {
        host->free(s);
        return dlas_error_context("%s", names[v]);
    }
    s->cpg = d->in_c / d->groups;
    s->opg = d->out_c / d->groups;
    s->C4 = (s->cpg + 3) / 4;
    s->S = d->stride_h;
    s->taps = d->kh * d->kw;
    s->Hp = d->in_h + 2 * d->pad_h;
    s->Wp = d->in_w + 2 * d->pad_w;
    s->Hq = (s->Hp + s->S - 1) / s->S;
    s->Wq = (s->Wp + s->S - 1) / s->S;
    s->OB = (s->opg + MR - 1) / MR;
    s->F = v == DIRECT ? d->out_h * s->Wq : d->out_h * d->out_w;
    /* the widest tile that does not compute more padding positions */
    s->nv = NV_MAX;
    for (int nv = NV_MAX - 1; nv >= 1; nv--)
        if ((s->F + 16 * nv - 1) / (16 * nv) * (16 * nv) <
            (s->F + 16 * s->nv - 1) / (16 * s->nv) * (16 * s->nv))
            s->nv = nv;
    if (param_int(p, "vectors") > 0)
        s->nv = param_int(p, "vectors");
    s->nt = 16 * s->nv;
    s->Fr = (s->F + s->nt - 1) / s->nt * s->nt;
    if (v == DIRECT) {
        s->steps = s->C4 * s->taps;
        s->tapoff = host->alloc((size_t)s->taps * sizeof *s->tapoff);
        int64_t maxoff = 0;
        /* a block per (plane, quad): the planes' positions, and slack for
         * the rounded-up tile reading past the last row */
        for (int r = 0; r < d->kh; r++)
            for (int c = 0; c < d->kw; c++) {
                int64_t dr = (int64_t)r * d->dil_h, dc = (int64_t)c * d->dil_w;
                int64_t off = (dr / s->S) * s->Wq + dc / s->S;
                if (off > maxoff)
                    maxoff = off;
            }
        s->plane_pos = (s->Fr + maxoff > s->Hq * s->Wq ? s->Fr + maxoff : s->Hq * s->Wq) + 16;
        /* a plane no tap reads (3 of 4 under a 1x1 stride-2 layer) is never packed */
        s->plane_used = host->alloc((size_t)(s->S * s->S));
        if (s->plane_used)
            memset(s->plane_used, 0, (size_t)(s->S * s->S));
        for (int r = 0; s->tapoff && s->plane_used && r < d->kh; r++)
            for (int c = 0; c < d->kw; c++) {
                int64_t dr = (int64_t)r * d->dil_h, dc = (int64_t)c * d->dil_w;
                int64_t plane = (dr % s->S) * s->S + dc % s->S;
                s->plane_used[plane] = 1;
                s->tapoff[r * d->kw + c] =
                    plane * s->C4 * s->plane_pos + (dr / s->S) * s->Wq + dc / s->S;
            }
    } else {
        s->K4 = (s->L.K + 3) / 4;
        s->steps = s->K4;
        s->col_pos = s->Fr;
    }
    if (v == DIRECT) {
        const char *lanes = param_str(p, "lanes", "auto");
        s->oc_lanes = !strcmp(lanes, "channels") ||
                      (!strcmp(lanes, "auto") && oc_cost(s) < pos_cost(s));
    }
    /* only the chosen layout's weights are packed: the other would double
     * the layer's memory for nothing */
    if (s->oc_lanes) {
        if ((rc = oc_prepare(s))) {
            release(s);
            return rc;
        }
    } else {
        s->wp = host->alloc((size_t)(d->groups * s->OB * s->steps * MR * 4));
        s->vmask = host->alloc((size_t)(s->Fr / 16) * sizeof *s->vmask);
        s->vfirst = host->alloc((size_t)(s->Fr / 16) * sizeof *s->vfirst);
        if (!s->wp || (v == DIRECT && (!s->tapoff || !s->plane_used)) || !s->vmask ||
            !s->vfirst) {
            release(s);
            return dlas_error(DLAS_ERR_NOMEM, "%s: out of memory", names[v]);
        }
        pack_weights(s);
        lane_tables(s);
    }
    *state = s;
    return DLAS_OK;
}

static int direct_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                          const struct dlas_conv_desc *d, const float *weight, const float *bias,
                          const struct dlas_params *p, void **state)
{
    return prepare(DIRECT, host, be, d, weight, bias, p, state);
}
static int gemm_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                        const struct dlas_conv_desc *d, const float *weight, const float *bias,
                        const struct dlas_params *p, void **state)
{
    return prepare(GEMM, host, be, d, weight, bias, p, state);
}

/* Packed input of one image and group, in bytes (64-byte aligned). */
static size_t pack_bytes(const struct i8_state *s)
{
    if (s->oc_lanes)
        return oc_pack_bytes(s);
    size_t b = s->v == DIRECT ? (size_t)(s->S * s->S * s->C4 * s->plane_pos) * 4
                              : (size_t)(s->K4 * s->col_pos) * 4;
    return (b + 63) / 64 * 64;
}

/* gemm: each thread's four unrolled rows, after the column matrix. */
static size_t tmp_bytes(const struct i8_state *s)
{
    return s->v == GEMM ? (size_t)(4 * s->Fr + 63) / 64 * 64 : 0;
}

static size_t workspace(void *state, int64_t batch)
{
    const struct i8_state *s = state;
    return pack_bytes(s) + tmp_bytes(s) * (size_t)threads_of(s);
}

/* ---- packing the input ------------------------------------------------------------ */

/* 16 pixels of 4 channel rows (a, b, c, e) as 16 channel quads, 64 bytes at dst. */
TARGET static inline void quads16(uint8_t *dst, __m128i a, __m128i b, __m128i c, __m128i e)
{
    __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    __m128i ce0 = _mm_unpacklo_epi8(c, e), ce1 = _mm_unpackhi_epi8(c, e);
    _mm_storeu_si128((__m128i *)dst, _mm_unpacklo_epi16(ab0, ce0));
    _mm_storeu_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(ab0, ce0));
    _mm_storeu_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(ab1, ce1));
    _mm_storeu_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(ab1, ce1));
}

/* Stride 2: input columns [x, x + 32) of row y of 4 channel rows into the
 * two phase planes of padded row py (their rows start at dst[0], dst[1]:
 * plane column px / 2 of padded column px = x + pad_w, phase px % 2); an
 * unused plane (NULL) is skipped. */
TARGET static inline void quads32_s2(uint8_t *const dst[2], const uint8_t *const src[4],
                                     const __m128i zpv, int64_t off, int64_t x, int pad)
{
    /* even bytes to the low half, odd bytes to the high half */
    const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m128i lo[4], hi[4];
    for (int k = 0; k < 4; k++) {
        __m128i v0 = src[k] ? _mm_loadu_si128((const __m128i *)(src[k] + off)) : zpv;
        __m128i v1 = src[k] ? _mm_loadu_si128((const __m128i *)(src[k] + off + 16)) : zpv;
        v0 = _mm_shuffle_epi8(v0, split);
        v1 = _mm_shuffle_epi8(v1, split);
        lo[k] = _mm_unpacklo_epi64(v0, v1); /* columns x, x+2, ..., x+30 */
        hi[k] = _mm_unpackhi_epi64(v0, v1); /* columns x+1, ..., x+31 */
    }
    for (int e = 0; e < 2; e++) { /* e: parity of x within the chunk (x is even) */
        uint8_t *d = dst[(e + pad) % 2];
        if (!d)
            continue;
        int64_t col = (x + e + pad) / 2;
        const __m128i *v = e ? hi : lo;
        quads16(d + col * 4, v[0], v[1], v[2], v[3]);
    }
}

/* direct: quads [cq0, cq1) of group g of image `in` (NCHW uint8) into the
 * phase planes that some tap reads (s->plane_used); padding and absent
 * channels hold the zero point. */
TARGET static void pack_direct(const struct i8_state *s, const uint8_t *in, int64_t g,
                               uint8_t *buf, int64_t cq0, int64_t cq1)
{
    const struct dlas_conv_desc *d = &s->L.d;
    const uint8_t zp = (uint8_t)s->L.q.in.zero_point;
    const int64_t S = s->S, H = d->in_h, W = d->in_w;
    const __m128i zpv = _mm_set1_epi8((char)zp);
    for (int64_t cq = cq0; cq < cq1; cq++) {
        for (int64_t pl = 0; pl < S * S; pl++)
            if (s->plane_used[pl])
                memset(buf + (pl * s->C4 + cq) * s->plane_pos * 4, zp, (size_t)s->plane_pos * 4);
        const uint8_t *src[4];
        for (int k = 0; k < 4; k++) {
            int64_t c = cq * 4 + k;
            src[k] = c < s->cpg ? in + (g * s->cpg + c) * H * W : NULL;
        }
        for (int64_t y = 0; y < H; y++) {
            const int64_t py = y + d->pad_h, prow = (py % S) * S, qy = py / S;
            int64_t x = 0;
            if (S == 1) {
                uint8_t *dst = buf + (cq * s->plane_pos + py * s->Wq + d->pad_w) * 4;
                /* 16 pixels of 4 channels: interleave bytes into quads */
                for (; x + 16 <= W; x += 16) {
                    __m128i v[4];
                    for (int k = 0; k < 4; k++)
                        v[k] = src[k] ? _mm_loadu_si128((const __m128i *)(src[k] + y * W + x)) : zpv;
                    quads16(dst + x * 4, v[0], v[1], v[2], v[3]);
                }
            } else if (S == 2) {
                uint8_t *dst[2];
                for (int e = 0; e < 2; e++)
                    dst[e] = s->plane_used[prow + e]
                                 ? buf + ((prow + e) * s->C4 + cq) * s->plane_pos * 4 + qy * s->Wq * 4
                                 : NULL;
                if (dst[0] || dst[1])
                    for (; x + 32 <= W; x += 32)
                        quads32_s2(dst, src, zpv, y * W + x, x, d->pad_w);
            }
            /* the rest of the row, pixel by pixel */
            int64_t px = x + d->pad_w, phase = px % S, col = px / S;
            for (; x < W; x++, px++) {
                if (s->plane_used[prow + phase]) {
                    uint8_t *dst = buf + (((prow + phase) * s->C4 + cq) * s->plane_pos + qy * s->Wq + col) * 4;
                    for (int k = 0; k < 4; k++)
                        if (src[k])
                            dst[k] = src[k][y * W + x];
                }
                if (++phase == S) {
                    phase = 0;
                    col++;
                }
            }
        }
    }
}

/* gemm: row (c, r, q) of the column matrix over the output positions,
 * zero-point where the window reads padding. */
static void im2col_row(const struct i8_state *s, const uint8_t *src, int r, int q, uint8_t *row)
{
    const struct dlas_conv_desc *d = &s->L.d;
    const uint8_t zp = (uint8_t)s->L.q.in.zero_point;
    const int64_t H = d->in_h, W = d->in_w, OW = d->out_w, S = d->stride_w;
    const int64_t ix0 = -(int64_t)d->pad_w + (int64_t)q * d->dil_w;
    for (int64_t y = 0; y < d->out_h; y++) {
        int64_t iy = y * d->stride_h - d->pad_h + (int64_t)r * d->dil_h;
        uint8_t *o = row + y * OW;
        if (iy < 0 || iy >= H) {
            memset(o, zp, (size_t)OW);
            continue;
        }
        const uint8_t *in = src + iy * W;
        if (S == 1) {
            int64_t xa = ix0 < 0 ? -ix0 : 0, xb = W - ix0 < OW ? W - ix0 : OW;
            if (xa > OW)
                xa = OW;
            if (xb < xa)
                xb = xa;
            memset(o, zp, (size_t)xa);
            memcpy(o + xa, in + xa + ix0, (size_t)(xb - xa));
            memset(o + xb, zp, (size_t)(OW - xb));
        } else {
            for (int64_t x = 0; x < OW; x++) {
                int64_t ix = x * S + ix0;
                o[x] = ix >= 0 && ix < W ? in[ix] : zp;
            }
        }
    }
    memset(row + s->F, zp, (size_t)(s->Fr - s->F));
}

/* gemm: quads [kq0, kq1) of the column matrix of group g, [K/4][Fr][4]:
 * four rows unrolled into `tmp` (4 x Fr bytes), then interleaved. */
TARGET static void pack_gemm(const struct i8_state *s, const uint8_t *in, int64_t g,
                             uint8_t *buf, int64_t kq0, int64_t kq1, uint8_t *tmp)
{
    const struct dlas_conv_desc *d = &s->L.d;
    const uint8_t zp = (uint8_t)s->L.q.in.zero_point;
    for (int64_t kq = kq0; kq < kq1; kq++) {
        uint8_t *rows[4];
        for (int lane = 0; lane < 4; lane++) {
            int64_t k = kq * 4 + lane;
            rows[lane] = tmp + lane * s->Fr;
            if (k >= s->L.K) {
                memset(rows[lane], zp, (size_t)s->Fr);
                continue;
            }
            int64_t c = k / s->taps, t = k % s->taps;
            im2col_row(s, in + (g * s->cpg + c) * d->in_h * d->in_w, (int)(t / d->kw),
                       (int)(t % d->kw), rows[lane]);
        }
        uint8_t *dst = buf + kq * s->col_pos * 4;
        for (int64_t f = 0; f < s->Fr; f += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(rows[0] + f));
            __m128i b = _mm_loadu_si128((const __m128i *)(rows[1] + f));
            __m128i c = _mm_loadu_si128((const __m128i *)(rows[2] + f));
            __m128i e = _mm_loadu_si128((const __m128i *)(rows[3] + f));
            __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
            __m128i ce0 = _mm_unpacklo_epi8(c, e), ce1 = _mm_unpackhi_epi8(c, e);
            _mm_storeu_si128((__m128i *)(dst + f * 4), _mm_unpacklo_epi16(ab0, ce0));
            _mm_storeu_si128((__m128i *)(dst + f * 4 + 16), _mm_unpackhi_epi16(ab0, ce0));
            _mm_storeu_si128((__m128i *)(dst + f * 4 + 32), _mm_unpacklo_epi16(ab1, ce1));
            _mm_storeu_si128((__m128i *)(dst + f * 4 + 48), _mm_unpackhi_epi16(ab1, ce1));
        }
    }
}

/* Store one vector of output channel o (its lanes m, from output index first). */
TARGET static inline void store_vec(const struct i8_state *s, __m512i acc, int64_t o,
                                    __mmask16 m, int64_t first, void *out_img)
{
    const struct dlas_int8_layer *L = &s->L;
    const int64_t plane = L->d.out_h * L->d.out_w;
    const __mmask16 head = (__mmask16)((1u << __builtin_popcount(m)) - 1);
    __m512i a = _mm512_add_epi32(acc, _mm512_set1_epi32(L->off[o]));
    if (!L->q.out_u8) {
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_set1_ps(L->scale[o]),
                                   _mm512_set1_ps(L->bias[o]));
        if (L->d.activation != DLAS_ACT_NONE)
            y = _mm512_max_ps(y, _mm512_setzero_ps());
        if (L->d.activation == DLAS_ACT_RELU6)
            y = _mm512_min_ps(y, _mm512_set1_ps(6.0f));
        float *dst = (float *)out_img + o * plane + first;
        if (m == 0xFFFF)
            _mm512_storeu_ps(dst, y);
        else
            _mm512_mask_storeu_ps(dst, head, _mm512_maskz_compress_ps(m, y));
        return;
    }
    /* round(a * mult / 2^shift) half up, in 64-bit even and odd lanes */
    const __m512i mult = _mm512_set1_epi32(L->mult[o]);
    const __m512i rnd = _mm512_set1_epi64((int64_t)1 << (L->shift[o] - 1));
    const __m128i sh = _mm_cvtsi32_si128(L->shift[o]);
    const int32_t zp = L->q.out.zero_point;
    const __m512i lo = _mm512_set1_epi64((int64_t)L->lo - zp);
    const __m512i hi = _mm512_set1_epi64((int64_t)L->hi - zp);
    __m512i ev = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, mult), rnd), sh);
    __m512i od = _mm512_sra_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), mult), rnd), sh);
    ev = _mm512_min_epi64(_mm512_max_epi64(ev, lo), hi);
    od = _mm512_min_epi64(_mm512_max_epi64(od, lo), hi);
    __m512i q = _mm512_mask_blend_epi32(0xAAAA, ev, _mm512_slli_epi64(od, 32));
    q = _mm512_add_epi32(q, _mm512_set1_epi32(zp));
    uint8_t *dst = (uint8_t *)out_img + o * plane + first;
    if (m == 0xFFFF)
        _mm_storeu_si128((__m128i *)dst, _mm512_cvtepi32_epi8(q));
    else
        _mm_mask_storeu_epi8(dst, head, _mm512_cvtepi32_epi8(_mm512_maskz_compress_epi32(m, q)));
}

/* acc += a (uint8 quads) . the int8 quad at w, broadcast to every lane. (As
 * vpdpbusd's own {1to16} memory operand, in inline asm, it measured no faster
 * than the compiler's separate vpbroadcastd.) */
#define DPBUSD_BCAST(acc, a, w)                                                                \
    ((acc) = _mm512_dpbusd_epi32((acc), (a), _mm512_set1_epi32(*(const int32_t *)(w))))

/* One micro-tile: MR output channels from o0 (mr of them real) x NV vectors
 * from flat position f0, summed over every step, then stored. The sums stay
 * in registers: NV is a constant in each instance. */
#define UNROLL _Pragma("GCC unroll 8")
#define TILE_STEP(NV, a, w)                                                                    \
    do {                                                                                       \
        __m512i av[NV];                                                                        \
        UNROLL for (int v = 0; v < NV; v++) av[v] = _mm512_loadu_si512((a) + 64 * v);         \
        UNROLL for (int j = 0; j < MR; j++)                                                    \
            UNROLL for (int v = 0; v < NV; v++) DPBUSD_BCAST(acc[j][v], av[v], (w) + j);       \
    } while (0)
#define DEFINE_TILE(NV)                                                                        \
    TARGET static void tile_##NV(const struct i8_state *s, const int8_t *wblk,                \
                                 const uint8_t *act, int64_t f0, int64_t o0, int64_t mr,      \
                                 void *out_img)                                               \
    {                                                                                          \
        __m512i acc[MR][NV];                                                                   \
        UNROLL for (int j = 0; j < MR; j++)                                                    \
            UNROLL for (int v = 0; v < NV; v++) acc[j][v] = _mm512_setzero_si512();            \
        const int32_t *w = (const int32_t *)wblk;                                              \
        if (s->v == DIRECT) {                                                                  \
            for (int64_t cq = 0; cq < s->C4; cq++) {                                           \
                const uint8_t *base = act + (cq * s->plane_pos + f0) * 4;                      \
                for (int t = 0; t < s->taps; t++, w += MR)                                     \
                    TILE_STEP(NV, base + s->tapoff[t] * 4, w);                                 \
            }                                                                                  \
        } else {                                                                               \
            const uint8_t *a = act + f0 * 4;                                                   \
            for (int64_t k = 0; k < s->K4; k++, w += MR, a += s->col_pos * 4)                  \
                TILE_STEP(NV, a, w);                                                           \
        }                                                                                      \
        UNROLL for (int v = 0; v < NV; v++) {                                                  \
            int64_t vi = f0 / 16 + v;                                                          \
            if (!s->vmask[vi])                                                                 \
                continue;                                                                      \
            UNROLL for (int j = 0; j < MR; j++) /* unrolled: acc stays in registers */        \
                if (j < mr)                                                                    \
                    store_vec(s, acc[j][v], o0 + j, s->vmask[vi], s->vfirst[vi], out_img);     \
        }                                                                                      \
    }
DEFINE_TILE(1)
DEFINE_TILE(2)
DEFINE_TILE(3)

/* ---- run -------------------------------------------------------------------------- */

/* Micro-tile u (8 channels x 16 NV positions of the flat grid) of group g. */
static void pos_unit(const struct i8_state *s, int64_t g, int64_t u, int64_t tiles,
                     const uint8_t *buf, void *yimg)
{
    int64_t ob = u / tiles, f0 = (u % tiles) * s->nt;
    const int8_t *wblk = s->wp + ((g * s->OB + ob) * s->steps) * MR * 4;
    int64_t o0 = ob * MR, mr = s->opg - o0 < MR ? s->opg - o0 : MR;
    if (s->nv == 3)
        tile_3(s, wblk, buf, f0, g * s->opg + o0, mr, yimg);
    else if (s->nv == 2)
        tile_2(s, wblk, buf, f0, g * s->opg + o0, mr, yimg);
    else
        tile_1(s, wblk, buf, f0, g * s->opg + o0, mr, yimg);
}

static int run_int8(void *state, int64_t batch, const uint8_t *in, void *out, void *ws,
                    struct dlas_profile *prof)
{
    struct i8_state *s = state;
    const struct dlas_conv_desc *d = &s->L.d;
    if (batch < 1 || batch > d->batch)
        return dlas_error(DLAS_ERR_INVALID, "%s: batch %lld outside 1..%lld", names[s->v],
                          (long long)batch, (long long)d->batch);
    const int threads = threads_of(s);
    const int64_t in_img = d->in_c * d->in_h * d->in_w, out_img = d->out_c * d->out_h * d->out_w;
    const size_t osz = s->L.q.out_u8 ? 1 : sizeof(float);
    const int64_t tiles = s->Fr / s->nt, units = s->OB * tiles;
    const int64_t pack_units = s->v == DIRECT ? s->C4 : s->K4;
    uint8_t *buf = ws;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t g = 0; g < d->groups; g++) {
            const uint8_t *x = in + b * in_img;
            void *y = (char *)out + (size_t)(b * out_img + g * s->opg * d->out_h * d->out_w) * osz;
#pragma omp parallel num_threads(threads)
            {
                int nt = omp_get_num_threads(), id = omp_get_thread_num();
                int64_t p0 = pack_units * id / nt, p1 = pack_units * (id + 1) / nt;
                if (s->oc_lanes)
                    oc_pack(s, x, g, buf, p0, p1);
                else if (s->v == DIRECT)
                    pack_direct(s, x, g, buf, p0, p1);
                else
                    pack_gemm(s, x, g, buf, p0, p1, buf + pack_bytes(s) + tmp_bytes(s) * id);
#pragma omp barrier
                /* the tile indexes channels of the whole layer */
                void *yimg = (char *)y - (size_t)(g * s->opg * d->out_h * d->out_w) * osz;
                if (s->oc_lanes) {
                    const int64_t n = oc_units(s);
                    for (int64_t u = n * id / nt; u < n * (id + 1) / nt; u++)
                        oc_run_unit(s, g, u, buf, yimg);
                } else {
                    for (int64_t u = units * id / nt; u < units * (id + 1) / nt; u++)
                        pos_unit(s, g, u, tiles, buf, yimg);
                }
            }
        }
    return DLAS_OK;
}

static int run_f32(void *state, int64_t batch, const float *in, float *out, void *ws,
                   struct dlas_profile *prof)
{
    const struct i8_state *s = state;
    return dlas_error(DLAS_ERR_UNSUPPORTED, "%s: fp32 run of an int8 layer (use run_int8)",
                      names[s->v]);
}

static const struct dlas_primitive_ops direct_ops = {
    sizeof(struct dlas_primitive_ops),
    "conv2d",
    "cpu",
    direct_supports,
    direct_prepare,
    workspace,
    run_f32,
    release,
    DLAS_PRIM_INT8 | DLAS_PRIM_ACTIVATION,
    run_int8,
    NULL, /* run_residual: the plan adds residuals */
    NULL, /* takes_prologue */
    NULL, /* run_prologue: the plan runs a batchnorm before it as a pass */
    NULL, /* set_layouts: NCHW only */
};

static const struct dlas_primitive_ops gemm_ops = {
    sizeof(struct dlas_primitive_ops),
    "conv2d",
    "cpu",
    gemm_supports,
    gemm_prepare,
    workspace,
    run_f32,
    release,
    DLAS_PRIM_INT8 | DLAS_PRIM_ACTIVATION,
    run_int8,
    NULL, /* run_residual: the plan adds residuals */
    NULL, /* takes_prologue */
    NULL, /* run_prologue: the plan runs a batchnorm before it as a pass */
    NULL, /* set_layouts: NCHW only */
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, "int8-direct",
     "int8 direct convolution (AVX-512 VNNI) over stride-phase planes of channel quads",
     "B. Jacob et al. Quantization and Training of Neural Networks for Efficient "
     "Integer-Arithmetic-Only Inference. CVPR 2018 (arXiv:1712.05877); Intel, Lower "
     "Numerical Precision Deep Learning Inference and Training (VNNI), 2018",
     direct_params, &direct_ops},
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, "int8-gemm",
     "int8 im2col + GEMM (AVX-512 VNNI)",
     "B. Jacob et al. Quantization and Training of Neural Networks for Efficient "
     "Integer-Arithmetic-Only Inference. CVPR 2018 (arXiv:1712.05877)",
     gemm_params, &gemm_ops},
};

DLAS_PLUGIN("int8", "0.1.0", "int8 convolution with AVX-512 VNNI", components)
