/* Direct convolution for training, with AVX-512.
 *
 * With few channels (ResNet-20 has 16..64) im2col costs about as much as the
 * GEMM it feeds: the unrolled columns are kh*kw times the input. These
 * kernels read a zero-padded copy of the input instead (one copy, not nine):
 *
 * forward (and the input gradient of a stride-1 layer, which is the forward
 * convolution of dy with flipped, transposed weights): sixteen positions per
 * vector, running through the rows of the padded input's phase planes (see
 * conv_direct.h), times blocks of 8 output channels: 16 accumulators, and
 * per input channel and tap two loads and 8 broadcast weights for 16 FMAs.
 *
 * weight gradient: sixteen input channels per vector, over a padded HWC copy
 * of the input: for 2 output channels and 9 taps, 18 accumulators; per
 * output position 2 broadcast gradients and 9 loads for 18 FMAs. No
 * horizontal sums anywhere.
 *
 * Every output element is a sum in a fixed order, so the result does not
 * depend on threads. Without AVX-512 cd_geom_init declines and the callers
 * keep im2col + GEMM. */
#include <string.h>

#include "conv_direct.h"
#include "pc_kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>

enum { CB = 8, PB = 32 };

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

int cd_geom_init(struct cd_geom *g, int64_t cin, int64_t cout, int64_t H, int64_t W, int kh,
                 int kw, int pad_h, int pad_w, int dil_h, int dil_w, int stride_h,
                 int stride_w)
{
    memset(g, 0, sizeof *g);
    if (cin < 1 || cout < 1 || kh * kw > CD_MAX_TAPS || pad_h < 0 || pad_w < 0 ||
        stride_h < 1 || stride_w < 1)
        return 0;
    g->cin = cin;
    g->cout = cout;
    g->H = H;
    g->W = W;
    g->pad_h = pad_h;
    g->pad_w = pad_w;
    g->sh = stride_h;
    g->sw = stride_w;
    g->Hp = H + 2 * pad_h;
    g->Wp = W + 2 * pad_w;
    int64_t eh = g->Hp - (int64_t)dil_h * (kh - 1), ew = g->Wp - (int64_t)dil_w * (kw - 1);
    if (eh < 1 || ew < 1)
        return 0;
    g->OH = (eh - 1) / stride_h + 1;
    g->OW = (ew - 1) / stride_w + 1;
    g->Hq = (g->Hp + stride_h - 1) / stride_h;
    g->Wq = (g->Wp + stride_w - 1) / stride_w;
    g->Pq = g->Hq * g->Wq;
    g->T = kh * kw;
    g->T9 = (int)round_up(g->T, 9);
    for (int ky = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++) {
            int64_t ry = (int64_t)ky * dil_h, rx = (int64_t)kx * dil_w;
            int64_t phase = (ry % stride_h) * stride_w + rx % stride_w;
            g->off[ky * kw + kx] = phase * g->Pq + ry / stride_h * g->Wq + rx / stride_w;
            g->offh[ky * kw + kx] = ry * g->Wp + rx;
        }
    g->NP = g->OH * g->Wq;
    g->OPS = round_up(g->NP, PB);
    /* a block reads up to 32 floats past its last position, at any tap */
    g->P = round_up(stride_h * stride_w * g->Pq + g->OPS + 16, 16);
    g->C16 = round_up(cin, 16);
    return 1;
}

int64_t cd_pack_floats(const struct cd_geom *g) { return round_up(g->cout, CB) * g->cin * g->T; }

void cd_pack(const struct cd_geom *g, const float *w, int flip, float *wb)
{
    const int64_t T = g->T;
    for (int64_t cb = 0; cb < g->cout; cb += CB)
        for (int64_t ci = 0; ci < g->cin; ci++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t j = 0; j < CB; j++) {
                    int64_t co = cb + j;
                    float v = 0.0f;
                    if (co < g->cout)
                        v = flip ? w[(ci * g->cout + co) * T + (T - 1 - t)]
                                 : w[(co * g->cin + ci) * T + t];
                    wb[((cb * g->cin + ci * CB) * T) + t * CB + j] = v;
                }
}

int64_t cd_forward_scratch(const struct cd_geom *g) { return g->cin * g->P + CB * g->OPS; }

/* Rows are short (7..32 floats): full vectors and one masked tail, rather
 * than library calls or scalar loop tails. */
static inline __mmask16 tail(int64_t n) { return (__mmask16)((1u << n) - 1u); }

static inline void row_set(float *d, const float *s, float b, int64_t n)
{
    const __m512 vb = _mm512_set1_ps(b);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(s + i), vb));
    if (i < n)
        _mm512_mask_storeu_ps(d + i, tail(n - i),
                              _mm512_add_ps(_mm512_maskz_loadu_ps(tail(n - i), s + i), vb));
}

static inline void row_acc(float *d, const float *s, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(d + i), _mm512_loadu_ps(s + i)));
    if (i < n) {
        const __mmask16 m = tail(n - i);
        _mm512_mask_storeu_ps(d + i, m,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, s + i)));
    }
}

static inline void row_zero(float *d, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_setzero_ps());
    if (i < n)
        _mm512_mask_storeu_ps(d + i, tail(n - i), _mm512_setzero_ps());
}


/* row[j] = src[j * sw + off] where that lies in [0, W), else 0, for j < n:
 * one phase of a strided row (at stride 1, the padded row itself). Stride 2
 * (ResNet's downsampling layers) takes even or odd floats through a
 * two-register permute; a scalar copy with a branch per float had cost as
 * much as the convolution's FMAs. */
static void phase_row(float *row, const float *src, int64_t W, int64_t n, int sw, int64_t off)
{
    int64_t j0, j1; /* the j whose src[j * sw + off] is a pixel */
    pc_span(-off, W - off, sw, n, &j0, &j1);
    row_zero(row, j0);
    int64_t j = j0;
    if (sw == 2) {
        const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6,
                                              4, 2, 0);
        for (; j < j1; j += 16) {
            const int64_t k = j1 - j < 16 ? j1 - j : 16, m = 2 * k - 1; /* floats read */
            const float *p = src + j * 2 + off;
            const __m512 lo = _mm512_maskz_loadu_ps(tail(m < 16 ? m : 16), p);
            const __m512 hi = m > 16 ? _mm512_maskz_loadu_ps(tail(m - 16), p + 16)
                                     : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(row + j, tail(k), _mm512_permutex2var_ps(lo, even, hi));
        }
    } else if (sw == 1) {
        row_set(row + j0, src + j0 + off, 0.0f, j1 - j0);
        j = j1;
    } else {
        for (; j < j1; j++)
            row[j] = src[j * sw + off];
    }
    row_zero(row + j1, n - j1);
}

/* xp: per channel, the phase planes of the padded input (one plane, the
 * padded input itself, at stride 1), then zeros to the channel's end. */
static void pad_planes(const struct cd_geom *g, const float *x, float *xp)
{
    for (int64_t c = 0; c < g->cin; c++) {
        float *pl = xp + c * g->P;
        const float *src = x + c * g->H * g->W;
        for (int64_t a = 0; a < g->sh; a++)
            for (int64_t b = 0; b < g->sw; b++) {
                float *q = pl + (a * g->sw + b) * g->Pq;
                for (int64_t i = 0; i < g->Hq; i++) {
                    const int64_t h = i * g->sh + a - g->pad_h;
                    float *row = q + i * g->Wq;
                    if (h < 0 || h >= g->H) {
                        row_zero(row, g->Wq);
                        continue;
                    }
                    phase_row(row, src + h * g->W, g->W, g->Wq, g->sw, b - g->pad_w);
                }
            }
        int64_t done = g->sh * g->sw * g->Pq;
        row_zero(pl + done, g->P - done);
    }
}

/* op (CB x OPS) = the CB output channels of block wb over all positions. */
static void block_forward(const struct cd_geom *g, const float *xp, const float *wb, float *op)
{
    const int64_t T = g->T, cin = g->cin, P = g->P;
    const int64_t *off = g->off;
    for (int64_t p = 0; p < g->NP; p += PB) {
        __m512 a[CB][2];
#pragma GCC unroll 8
        for (int j = 0; j < CB; j++)
            a[j][0] = a[j][1] = _mm512_setzero_ps();
        const float *wp = wb;
        for (int64_t ci = 0; ci < cin; ci++) {
            const float *xb = xp + ci * P + p;
            for (int64_t t = 0; t < T; t++, wp += CB) {
                const __m512 x0 = _mm512_loadu_ps(xb + off[t]);
                const __m512 x1 = _mm512_loadu_ps(xb + off[t] + 16);
#pragma GCC unroll 8
                for (int j = 0; j < CB; j++) {
                    const __m512 w = _mm512_set1_ps(wp[j]);
                    a[j][0] = _mm512_fmadd_ps(w, x0, a[j][0]);
                    a[j][1] = _mm512_fmadd_ps(w, x1, a[j][1]);
                }
            }
        }
#pragma GCC unroll 8
        for (int j = 0; j < CB; j++) {
            _mm512_storeu_ps(op + j * g->OPS + p, a[j][0]);
            _mm512_storeu_ps(op + j * g->OPS + p + 16, a[j][1]);
        }
    }
}

void cd_forward(const struct cd_geom *g, const float *x, const float *wb, const float *bias,
                float *y, int acc, float *scratch)
{
    float *xp = scratch, *op = scratch + g->cin * g->P;
    pad_planes(g, x, xp);
    const int64_t plane = g->OH * g->OW;
    for (int64_t cb = 0; cb < g->cout; cb += CB) {
        block_forward(g, xp, wb + cb * g->cin * g->T, op);
        int64_t nj = g->cout - cb < CB ? g->cout - cb : CB;
        for (int64_t j = 0; j < nj; j++) {
            const float b = bias ? bias[cb + j] : 0.0f;
            for (int64_t oh = 0; oh < g->OH; oh++) {
                float *d = y + (cb + j) * plane + oh * g->OW;
                const float *s = op + j * g->OPS + oh * g->Wq;
                if (acc)
                    row_acc(d, s, g->OW);
                else
                    row_set(d, s, b, g->OW);
            }
        }
    }
}

int64_t cd_dw_floats(const struct cd_geom *g) { return g->cout * g->T9 * g->C16; }

int64_t cd_dw_scratch(const struct cd_geom *g) { return g->Hp * g->Wp * g->C16 + 9 * g->C16; }

/* r[i][j] -> r[j][i] for a 16 x 16 tile. */
static inline void transpose16(__m512 *r)
{
    __m512 t[16], u[16], v[16];
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 4; k++) {
        u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
        u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
        u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
        u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
    }
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++) {
            v[8 * k + j] = _mm512_shuffle_f32x4(u[8 * k + j], u[8 * k + 4 + j], 0x88);
            v[8 * k + 4 + j] = _mm512_shuffle_f32x4(u[8 * k + j], u[8 * k + 4 + j], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(v[j], v[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(v[j], v[8 + j], 0xdd);
    }
}

/* xh[(r * Wp + c) * C16 + ci]: the padded input, channels innermost. When
 * the channels fill their vectors, every interior position is written, so
 * only the border needs zeros. */
static void pad_hwc(const struct cd_geom *g, const float *x, float *xh)
{
    const int64_t C16 = g->C16, Wp = g->Wp, row = Wp * C16;
    if (g->cin != C16) {
        memset(xh, 0, (size_t)(g->Hp * row) * sizeof(float));
    } else {
        memset(xh, 0, (size_t)(g->pad_h * row) * sizeof(float));
        memset(xh + (g->pad_h + g->H) * row, 0,
               (size_t)((g->Hp - g->pad_h - g->H) * row) * sizeof(float));
        for (int64_t h = 0; h < g->H; h++) {
            float *r = xh + (h + g->pad_h) * row;
            memset(r, 0, (size_t)(g->pad_w * C16) * sizeof(float));
            memset(r + (g->pad_w + g->W) * C16, 0,
                   (size_t)((Wp - g->pad_w - g->W) * C16) * sizeof(float));
        }
    }
    if (g->cin % 16 == 0) { /* 16 x 16 tiles through registers */
        const int64_t HW = g->H * g->W;
        for (int64_t c0 = 0; c0 < g->cin; c0 += 16)
            for (int64_t h = 0; h < g->H; h++)
                for (int64_t w0 = 0; w0 < g->W; w0 += 16) {
                    const int64_t nw = g->W - w0 < 16 ? g->W - w0 : 16;
                    const __mmask16 m = (__mmask16)((1u << nw) - 1u);
                    const float *src = x + c0 * HW + h * g->W + w0;
                    __m512 r[16];
                    for (int i = 0; i < 16; i++)
                        r[i] = _mm512_maskz_loadu_ps(m, src + i * HW);
                    transpose16(r);
                    float *dst = xh + ((h + g->pad_h) * Wp + g->pad_w + w0) * C16 + c0;
                    for (int64_t j = 0; j < nw; j++)
                        _mm512_storeu_ps(dst + j * C16, r[j]);
                }
        return;
    }
    for (int64_t c = 0; c < g->cin; c++)
        for (int64_t h = 0; h < g->H; h++) {
            const float *src = x + (c * g->H + h) * g->W;
            float *dst = xh + ((h + g->pad_h) * Wp + g->pad_w) * C16 + c;
            for (int64_t w = 0; w < g->W; w++)
                dst[w * C16] = src[w];
        }
}

/* acc0/acc1 (9 vectors of 16 each, ts floats apart) += dy0/dy1 at every
 * output position times the 16 input channels at cv through the taps'
 * offsets offc. */
static void dw_block(const struct cd_geom *g, const float *xh, const float *dy0, const float *dy1,
                     const int64_t *offc, float *acc0, float *acc1, int64_t ts)
{
    __m512 a0[9], a1[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++) {
        a0[t] = _mm512_loadu_ps(acc0 + ts * t);
        a1[t] = _mm512_loadu_ps(acc1 + ts * t);
    }
    const int64_t step = g->sw * g->C16;
    for (int64_t oh = 0; oh < g->OH; oh++) {
        const float *r0 = dy0 + oh * g->OW, *r1 = dy1 + oh * g->OW;
        const float *xr = xh + oh * g->sh * g->Wp * g->C16;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            const __m512 d0 = _mm512_set1_ps(r0[ow]), d1 = _mm512_set1_ps(r1[ow]);
            const float *xb = xr + ow * step;
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++) {
                __m512 xv = _mm512_loadu_ps(xb + offc[t]);
                /* keep xv in a register: GCC otherwise folds the load into
                 * both FMAs, doubling the loads, and the load ports (one
                 * 512-bit load a cycle on Zen 4) then bound the loop */
                __asm__("" : "+v"(xv));
                a0[t] = _mm512_fmadd_ps(d0, xv, a0[t]);
                a1[t] = _mm512_fmadd_ps(d1, xv, a1[t]);
            }
        }
    }
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++) {
        _mm512_storeu_ps(acc0 + ts * t, a0[t]);
        _mm512_storeu_ps(acc1 + ts * t, a1[t]);
    }
}

void cd_dw(const struct cd_geom *g, const float *x, const float *dy, float *dwp, float *scratch)
{
    float *xh = scratch, *dummy = scratch + g->Hp * g->Wp * g->C16;
    pad_hwc(g, x, xh);
    const int64_t plane = g->OH * g->OW, C16 = g->C16;
    int64_t offc[CD_MAX_TAPS + 9];
    for (int t = 0; t < g->T9; t++)
        offc[t] = t < g->T ? g->offh[t] * C16 : 0; /* padding taps: summed, never read */
    for (int64_t co = 0; co < g->cout; co += 2) {
        const int pair = co + 1 < g->cout;
        const float *dy0 = dy + co * plane, *dy1 = pair ? dy0 + plane : dy0;
        for (int64_t cv = 0; cv < C16; cv += 16)
            for (int tb = 0; tb < g->T9; tb += 9) {
                float *acc0 = dwp + cd_dw_index(g, co, cv, tb);
                float *acc1 = pair ? dwp + cd_dw_index(g, co + 1, cv, tb) : dummy;
                /* an odd last channel accumulates into a dummy, whose taps
                 * sit C16 apart like the real ones */
                if (!pair)
                    memset(dummy, 0, (size_t)(9 * C16) * sizeof(float));
                dw_block(g, xh + cv, dy0, dy1, offc + tb, acc0, acc1, C16);
            }
    }
}

#else /* no AVX-512: the callers keep im2col + GEMM */

int cd_geom_init(struct cd_geom *g, int64_t cin, int64_t cout, int64_t H, int64_t W, int kh,
                 int kw, int pad_h, int pad_w, int dil_h, int dil_w, int stride_h,
                 int stride_w)
{
    memset(g, 0, sizeof *g);
    return 0;
}
int64_t cd_pack_floats(const struct cd_geom *g) { return 0; }
void cd_pack(const struct cd_geom *g, const float *w, int flip, float *wb) {}
int64_t cd_forward_scratch(const struct cd_geom *g) { return 0; }
void cd_forward(const struct cd_geom *g, const float *x, const float *wb, const float *bias,
                float *y, int acc, float *scratch)
{
}
int64_t cd_dw_floats(const struct cd_geom *g) { return 0; }
int64_t cd_dw_scratch(const struct cd_geom *g) { return 0; }
void cd_dw(const struct cd_geom *g, const float *x, const float *dy, float *dwp, float *scratch) {}

#endif
