/* Channel-blocked packing, weight packing and scattering of the CPU
 * convolution kernels. */
#include <limits.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "pc_kernels.h"

/* ---- 16 x 16 transposition ---------------------------------------------- */

#if defined(__AVX512F__)
/* r[i] lane j -> r[j] lane i */
static inline __attribute__((always_inline)) void tr16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xdd);
        t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xdd);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
        r[k + 4] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0x88);
        r[k + 12] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0xdd);
    }
}
#elif defined(__AVX2__)
/* r[i] lane j -> r[j] lane i, 8 x 8: the AVX2 build's transposition (the
 * same steps as tr16, a level fewer) */
static inline __attribute__((always_inline)) void tr8(__m256 r[8])
{
    __m256 t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
        r[k + 4] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
    }
}

/* lanes [0, n) of an 8-lane mask */
static inline __m256i lanes8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

/* ---- packing -------------------------------------------------------------- */

/* Row r of channel block blk of the window in dst, with every slot that
 * holds no image pixel zeroed. Returns the row, or NULL where the row lies
 * outside the image (all of it zeroed); then *ih is the image row it holds
 * and [*lo, *hi) the image columns. */
static float *window_row(int64_t h, int64_t w, int pad_h, int pad_w, const struct pc_window *win,
                         float *dst, int64_t blk, int64_t r, int64_t *ih_out, int64_t *lo_out,
                         int64_t *hi_out)
{
    const int sw = win->sw;
    const int64_t q = win->q;
    float *row = dst + blk * pc_window_block(win) + r * sw * q * PC_VL;
    const int64_t ih = win->row0 + r - pad_h;
    if (ih < 0 || ih >= h) {
        memset(row, 0, (size_t)(sw * q * PC_VL) * sizeof(float));
        return NULL;
    }
    /* image columns the window covers */
    int64_t iw_lo = win->col0 - pad_w, iw_hi = win->col0 + win->cols - pad_w;
    /* zero the slots that hold no image pixel: in each phase, a run before
     * the image and a run after it */
    for (int ph = 0; ph < sw; ph++) {
        /* slot qi holds image column col0 + qi*sw + ph - pad_w, for qi*sw + ph < cols */
        int64_t first = pad_w - win->col0 - ph; /* qi*sw >= first: iw >= 0 */
        int64_t end_img = w + pad_w - win->col0 - ph; /* qi*sw < end_img: iw < w */
        int64_t end_win = win->cols - ph;              /* qi*sw < end_win */
        int64_t lo, hi;
        pc_span(first, end_img < end_win ? end_img : end_win, sw, q, &lo, &hi);
        float *base = row + ph * q * PC_VL;
        if (lo)
            memset(base, 0, (size_t)(lo * PC_VL) * sizeof(float));
        if (hi < q)
            memset(base + hi * PC_VL, 0, (size_t)((q - hi) * PC_VL) * sizeof(float));
    }
    *ih_out = ih;
    *lo_out = iw_lo < 0 ? 0 : iw_lo;
    *hi_out = iw_hi > w ? w : iw_hi;
    return row;
}

static void pack_row(const float *src, int64_t channels, int64_t h, int64_t w, int pad_h,
                     int pad_w, const struct pc_window *win, float *dst, int64_t blk, int64_t r)
{
    const int sw = win->sw;
    const int64_t q = win->q;
    int64_t ih, iw_lo, iw_hi;
    float *row = window_row(h, w, pad_h, pad_w, win, dst, blk, r, &ih, &iw_lo, &iw_hi);
    if (!row)
        return;
    const int64_t c0 = blk * PC_VL;
    const int cb = channels - c0 < PC_VL ? (int)(channels - c0) : PC_VL;
    const float *plane = src + c0 * h * w + ih * w;
    int64_t iw = iw_lo;
#if defined(__AVX512F__)
    /* 16 pixels x 16 channels per transposition; the last, shorter run of
     * pixels and a short channel block load masked (masked-off lanes read
     * nothing and come back 0) */
    for (; iw < iw_hi; iw += PC_VL) {
        int np = iw_hi - iw < PC_VL ? (int)(iw_hi - iw) : PC_VL;
        __mmask16 m = (__mmask16)((1u << np) - 1u);
        __m512 v[16];
        /* a whole block of channels is the rule; a short one zeroes the rest */
#pragma GCC unroll 16
        for (int c = 0; c < PC_VL; c++)
            v[c] = c < cb ? _mm512_maskz_loadu_ps(m, plane + c * h * w + iw)
                          : _mm512_setzero_ps();
        tr16(v);
        /* pixel k goes to phase (col0 + k) % sw, position (col0 + k) / sw:
         * stepped, not divided, per pixel */
        int64_t col = iw + pad_w - win->col0, qq = col / sw;
        int ph = (int)(col % sw);
#pragma GCC unroll 16
        for (int k = 0; k < PC_VL; k++) {
            if (k >= np)
                break;
            _mm512_storeu_ps(row + (ph * q + qq) * PC_VL, v[k]);
            if (++ph == sw) {
                ph = 0;
                qq++;
            }
        }
    }
#elif defined(__AVX2__)
    /* 8 pixels x 8 channels per transposition, each half of the block in
     * turn; a short run of pixels loads masked (masked-off lanes read
     * nothing and come back 0), channels past cb are 0 */
    for (; iw < iw_hi; iw += 8) {
        int np = iw_hi - iw < 8 ? (int)(iw_hi - iw) : 8;
        const __m256i m = lanes8(np);
        const int64_t col = iw + pad_w - win->col0, plane_f = h * w;
        for (int half = 0; half < 2; half++) {
            __m256 v[8];
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++)
                v[c] = half * 8 + c < cb
                           ? _mm256_maskload_ps(plane + (half * 8 + c) * plane_f + iw, m)
                           : _mm256_setzero_ps();
            tr8(v);
            int64_t qq = col / sw;
            int ph = (int)(col % sw);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                if (k >= np)
                    break;
                _mm256_storeu_ps(row + (ph * q + qq) * PC_VL + half * 8, v[k]);
                if (++ph == sw) {
                    ph = 0;
                    qq++;
                }
            }
        }
    }
#endif
    for (; iw < iw_hi; iw++) {
        int64_t col = iw + pad_w - win->col0;
        float *px = row + ((col % sw) * q + col / sw) * PC_VL;
        int c = 0;
        for (; c < cb; c++)
            px[c] = plane[c * h * w + iw];
        for (; c < PC_VL; c++)
            px[c] = 0.0f;
    }
}

/* pack_row from a C16 source (dlas_layout): each pixel's 16 channels are
 * already one vector, so a row is copies, one run a phase; the lanes past
 * the channels come along and the kernel never reads them. */
static void pack_row_c16(const float *src, int64_t h, int64_t w, int pad_h, int pad_w,
                         const struct pc_window *win, float *dst, int64_t blk, int64_t r)
{
    const int sw = win->sw;
    const int64_t q = win->q;
    int64_t ih, iw_lo, iw_hi;
    float *row = window_row(h, w, pad_h, pad_w, win, dst, blk, r, &ih, &iw_lo, &iw_hi);
    if (!row)
        return;
    const float *px = src + (blk * h + ih) * w * PC_VL;
    if (sw == 1) {
        if (iw_hi > iw_lo)
            memcpy(row + (iw_lo + pad_w - win->col0) * PC_VL, px + iw_lo * PC_VL,
                   (size_t)((iw_hi - iw_lo) * PC_VL) * sizeof(float));
        return;
    }
    for (int64_t iw = iw_lo; iw < iw_hi; iw++) {
        const int64_t col = iw + pad_w - win->col0;
        memcpy(row + ((col % sw) * q + col / sw) * PC_VL, px + iw * PC_VL,
               PC_VL * sizeof(float));
    }
}

void pc_pack_window(const float *src, int64_t channels, int64_t h, int64_t w, int pad_h,
                    int pad_w, const struct pc_window *win, float *dst, int64_t blk0,
                    int64_t blk1)
{
    for (int64_t b = blk0; b < blk1; b++)
        for (int64_t r = 0; r < win->rows; r++)
            pack_row(src, channels, h, w, pad_h, pad_w, win, dst, b, r);
}

void pc_pack_window_rows(const float *src, int64_t channels, int64_t h, int64_t w, int pad_h,
                         int pad_w, const struct pc_window *win, float *dst, int64_t r0,
                         int64_t r1)
{
    const int64_t nblk = pc_ceil_div(channels, PC_VL);
    for (int64_t b = 0; b < nblk; b++)
        for (int64_t r = r0; r < r1; r++)
            pack_row(src, channels, h, w, pad_h, pad_w, win, dst, b, r);
}

void pc_tap_offsets(const struct dlas_conv_desc *d, const struct pc_window *w, int64_t *tap_off)
{
    const int sw = w->sw;
    for (int ky = 0; ky < d->kh; ky++)
        for (int kx = 0; kx < d->kw; kx++) {
            int64_t c = (int64_t)kx * d->dil_w;
            tap_off[ky * d->kw + kx] = (int64_t)ky * d->dil_h * pc_window_rowlen(w) +
                                       ((c % sw) * w->q + c / sw) * PC_VL;
        }
}

void pc_direct_window(const struct dlas_conv_desc *d, struct pc_window *w, int64_t *tap_off)
{
    const int sw = d->stride_w;
    w->row0 = 0;
    w->col0 = 0;
    w->rows = d->in_h + 2 * (int64_t)d->pad_h;
    int64_t need_rows = (d->out_h - 1) * d->stride_h + (int64_t)(d->kh - 1) * d->dil_h + 1;
    if (need_rows > w->rows)
        w->rows = need_rows;
    w->cols = d->in_w + 2 * (int64_t)d->pad_w;
    w->sw = sw;
    w->q = pc_ceil_div(w->cols, sw);
    int64_t need_q = d->out_w + (int64_t)(d->kw - 1) * d->dil_w / sw;
    if (need_q > w->q)
        w->q = need_q;
    pc_tap_offsets(d, w, tap_off);
}

void pc_pack_image_rows(const float *in, int in_c16, const struct dlas_conv_desc *d,
                        int64_t cpg, const struct pc_window *win, int64_t ig, float *dst,
                        int64_t r0, int64_t r1)
{
    const int64_t n = ig / d->groups, g = ig % d->groups;
    if (in_c16) { /* one group, or whole blocks a group (pc_c16_groups) */
        const int64_t hw = d->in_h * d->in_w;
        const float *src = in + pc_c16_at(n, d->in_c, g * cpg, hw);
        for (int64_t b = 0; b < pc_ceil_div(cpg, PC_VL); b++)
            for (int64_t r = r0; r < r1; r++)
                pack_row_c16(src, d->in_h, d->in_w, d->pad_h, d->pad_w, win, dst, b, r);
        return;
    }
    const float *src = in + (n * d->in_c + g * cpg) * d->in_h * d->in_w;
    pc_pack_window_rows(src, cpg, d->in_h, d->in_w, d->pad_h, d->pad_w, win, dst, r0, r1);
}

void pc_pack_batch_rows(const float *in, int in_c16, const struct dlas_conv_desc *d,
                        int64_t cpg, const struct pc_window *win, int64_t img_floats,
                        float *dst, int64_t r0, int64_t r1)
{
    const int64_t rows = win->rows;
    while (r0 < r1) {
        int64_t ig = r0 / rows, r = r0 % rows;
        int64_t end = r1 - r0 < rows - r ? r + (r1 - r0) : rows;
        pc_pack_image_rows(in, in_c16, d, cpg, win, ig, dst + ig * img_floats, r, end);
        r0 += end - r;
    }
}

void pc_pad_row(const float *plane, int64_t in_h, int64_t in_w, int pad_h, int pad_w,
                int64_t row, int64_t cols, float *dst)
{
    const int64_t ih = row - pad_h;
    if (ih < 0 || ih >= in_h) {
        memset(dst, 0, (size_t)cols * sizeof(float));
        return;
    }
    memset(dst, 0, (size_t)pad_w * sizeof(float));
    memcpy(dst + pad_w, plane + ih * in_w, (size_t)in_w * sizeof(float));
    memset(dst + pad_w + in_w, 0, (size_t)(cols - pad_w - in_w) * sizeof(float));
}

void pc_plane_tap_offsets(int64_t cpg, int kh, int kw, int dil_h, int dil_w, int64_t rows,
                          int64_t cols, int64_t *off)
{
    for (int ky = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++)
            for (int64_t c = 0; c < cpg; c++)
                off[(ky * kw + kx) * cpg + c] =
                    c * rows * cols + (int64_t)ky * dil_h * cols + (int64_t)kx * dil_w;
}

void pc_pack_weights(const float *src, int64_t opg, int64_t cpg, int kh, int kw, int b,
                     float *dst)
{
    const int64_t taps = (int64_t)kh * kw, lanes = (int64_t)b * PC_VL;
    const int64_t n_ob = pc_ceil_div(opg, lanes), nblk = pc_ceil_div(cpg, PC_VL);
    float *o = dst;
    for (int64_t ob = 0; ob < n_ob; ob++)
        for (int64_t blk = 0; blk < nblk; blk++) {
            int64_t cb = cpg - blk * PC_VL < PC_VL ? cpg - blk * PC_VL : PC_VL;
            for (int64_t t = 0; t < taps; t++)
                for (int64_t c = 0; c < cb; c++, o += lanes)
                    for (int64_t l = 0; l < lanes; l++) {
                        int64_t oc = ob * lanes + l;
                        o[l] = oc < opg ? src[(oc * cpg + blk * PC_VL + c) * taps + t] : 0.0f;
                    }
        }
}

/* ---- scattering --------------------------------------------------------- */

#if defined(__AVX512F__)
/* s, plus the residual at q (NULL: none) where m is set, activated, to o
 * where m is set. The residual is read where this row is about to be
 * written (q may be o itself); max(0, x) returns x when x is NaN: the NaN
 * passes, as torch.relu. */
static inline __attribute__((always_inline)) void
finish_row(__m512 s, const float *q, float *o, __mmask16 m, int act)
{
    if (q)
        s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(m, q));
    if (act != DLAS_ACT_NONE)
        s = _mm512_max_ps(_mm512_setzero_ps(), s);
    if (act == DLAS_ACT_RELU6)
        s = _mm512_min_ps(_mm512_set1_ps(6.0f), s);
    _mm512_mask_storeu_ps(o, m, s);
}
#endif

void pc_scatter_tile(const float *tile, int64_t ps, int vh, int vw, int nrows, int ncols,
                     int64_t nc, float *dst, const float *res, int64_t cstride,
                     int64_t row_stride, int act)
{
#if defined(__AVX512F__)
    const int np = vh * vw;
    if (np <= PC_VL) {
        const __mmask16 cols = (__mmask16)((1u << ncols) - 1u);
        for (int64_t c0 = 0; c0 < nc; c0 += PC_VL) {
            __m512 v[16];
#pragma GCC unroll 16
            for (int p = 0; p < PC_VL; p++)
                v[p] = p < np ? _mm512_loadu_ps(tile + p * ps + c0) : _mm512_setzero_ps();
            tr16(v);
            int64_t cn = nc - c0 < PC_VL ? nc - c0 : PC_VL;
#pragma GCC unroll 16
            for (int c = 0; c < PC_VL; c++) {
                if (c >= cn)
                    break;
                float *o = dst + (c0 + c) * cstride;
                const float *q = res ? res + (c0 + c) * cstride : NULL;
                for (int r = 0; r < (vh == 1 ? 1 : nrows); r++) {
                    __m512 s = vh == 1 ? v[c]
                                       : _mm512_maskz_compress_ps(
                                             (__mmask16)(cols << (r * vw)), v[c]);
                    finish_row(s, q ? q + r * row_stride : NULL, o + r * row_stride, cols,
                               act);
                }
            }
        }
        return;
    }
    /* more pixels than a vector holds (a wide tile, or several tiles side
     * by side): row by row, 16 pixels x 16 channels per transposition, so a
     * row of 16 columns is one full store per channel */
    for (int r = 0; r < nrows; r++) {
        const float *trow = tile + (int64_t)r * vw * ps;
        for (int p0 = 0; p0 < ncols; p0 += PC_VL) {
            const int n = ncols - p0 < PC_VL ? ncols - p0 : PC_VL;
            const __mmask16 m = (__mmask16)((1u << n) - 1u);
            const int64_t off = r * row_stride + p0;
            for (int64_t c0 = 0; c0 < nc; c0 += PC_VL) {
                __m512 v[16];
#pragma GCC unroll 16
                for (int p = 0; p < PC_VL; p++)
                    v[p] = p < n ? _mm512_loadu_ps(trow + (p0 + p) * ps + c0)
                                 : _mm512_setzero_ps();
                tr16(v);
                const int64_t cn = nc - c0 < PC_VL ? nc - c0 : PC_VL;
#pragma GCC unroll 16
                for (int c = 0; c < PC_VL; c++) {
                    if (c >= cn)
                        break;
                    const int64_t at = (c0 + c) * cstride + off;
                    finish_row(v[c], res ? res + at : NULL, dst + at, m, act);
                }
            }
        }
    }
    return;
#elif defined(__AVX2__)
    /* row by row (a row's pixels lie consecutive in the tile): 8 pixels x
     * 8 channels per transposition, stores masked to the row's columns;
     * max(0, x) returns x when x is NaN, as above */
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    for (int r = 0; r < nrows; r++) {
        const float *trow = tile + (int64_t)r * vw * ps;
        float *drow = dst + r * row_stride;
        for (int p0 = 0; p0 < ncols; p0 += 8) {
            const int np = ncols - p0 < 8 ? ncols - p0 : 8;
            const __m256i m = lanes8(np);
            for (int64_t c0 = 0; c0 < nc; c0 += 8) {
                __m256 v[8];
#pragma GCC unroll 8
                for (int p = 0; p < 8; p++)
                    v[p] = p < np ? _mm256_loadu_ps(trow + (p0 + p) * ps + c0) : zero;
                tr8(v);
                const int64_t cn = nc - c0 < 8 ? nc - c0 : 8;
#pragma GCC unroll 8
                for (int c = 0; c < 8; c++) {
                    if (c >= cn)
                        break;
                    if (res)
                        v[c] = _mm256_add_ps(v[c], _mm256_maskload_ps(res + (drow - dst) +
                                                                          (c0 + c) * cstride + p0,
                                                                      m));
                    if (act != DLAS_ACT_NONE)
                        v[c] = _mm256_max_ps(zero, v[c]);
                    if (act == DLAS_ACT_RELU6)
                        v[c] = _mm256_min_ps(six, v[c]);
                    _mm256_maskstore_ps(drow + (c0 + c) * cstride + p0, m, v[c]);
                }
            }
        }
    }
    return;
#endif
    for (int64_t c = 0; c < nc; c++)
        for (int r = 0; r < nrows; r++)
            for (int k = 0; k < ncols; k++)
                dst[c * cstride + r * row_stride + k] =
                    pc_act1(tile[(r * vw + k) * ps + c] +
                                (res ? res[c * cstride + r * row_stride + k] : 0.0f),
                            act);
}

void pc_store_tile_c16(const float *tile, int64_t ps, int vw, int nrows, int ncols, int64_t nc,
                       float *dst, const float *res, int64_t bstride, int64_t row_stride, int act)
{
    for (int64_t c0 = 0; c0 < nc; c0 += PC_VL)
        for (int r = 0; r < nrows; r++)
            for (int k = 0; k < ncols; k++) {
                const float *t = tile + (int64_t)(r * vw + k) * ps + c0;
                const int64_t at = c0 / PC_VL * bstride + (r * row_stride + k) * PC_VL;
#if defined(__AVX512F__)
                finish_row(_mm512_loadu_ps(t), res ? res + at : NULL, dst + at,
                           (__mmask16)0xffff, act);
#else
                for (int l = 0; l < PC_VL; l++)
                    dst[at + l] = pc_act1(t[l] + (res ? res[at + l] : 0.0f), act);
#endif
            }
}

void pc_add_c16_to_tile(float *tile, int64_t ps, int vw, int nrows, int ncols, int64_t nc,
                        const float *res, int64_t bstride, int64_t row_stride)
{
    for (int64_t c0 = 0; c0 < nc; c0 += PC_VL)
        for (int r = 0; r < nrows; r++)
            for (int k = 0; k < ncols; k++) {
                float *t = tile + (int64_t)(r * vw + k) * ps + c0;
                const float *q = res + c0 / PC_VL * bstride + (r * row_stride + k) * PC_VL;
                for (int l = 0; l < PC_VL; l++)
                    t[l] += q[l];
            }
}

void pc_add_nchw_to_tile(float *tile, int64_t ps, int vw, int nrows, int ncols, int64_t nc,
                         const float *res, int64_t cstride, int64_t row_stride)
{
    for (int64_t c = 0; c < nc; c++)
        for (int r = 0; r < nrows; r++)
            for (int k = 0; k < ncols; k++)
                tile[(int64_t)(r * vw + k) * ps + c] += res[c * cstride + r * row_stride + k];
}

void pc_finish_tile(float *tile, int64_t ps, int vh, int vw, int nrows, int ncols, int64_t nc,
                    float *dst, const float *res, int64_t ohw, int64_t row_stride, int act,
                    int layouts)
{
    const int out_c16 = layouts & PC_OUT_C16, res_c16 = (layouts & PC_RES_C16) != 0;
    if (res && res_c16 != (out_c16 != 0)) { /* the other layout: into the tile first */
        if (res_c16)
            pc_add_c16_to_tile(tile, ps, vw, nrows, ncols, nc, res, ohw * PC_VL, row_stride);
        else
            pc_add_nchw_to_tile(tile, ps, vw, nrows, ncols, nc, res, ohw, row_stride);
        res = NULL;
    }
    if (out_c16)
        pc_store_tile_c16(tile, ps, vw, nrows, ncols, nc, dst, res, ohw * PC_VL, row_stride,
                          act);
    else
        pc_scatter_tile(tile, ps, vh, vw, nrows, ncols, nc, dst, res, ohw, row_stride, act);
}

void pc_kargs_init(struct pc_kargs *a, const struct dlas_conv_desc *d, int64_t cpg,
                   const int64_t *tap_off, const struct pc_window *win, float *tile, int lanes)
{
    const int64_t nblk = pc_ceil_div(cpg, PC_VL);
    a->in = NULL;
    a->w = NULL;
    a->bias = NULL;
    a->tap_off = tap_off;
    a->ntaps = d->kh * d->kw;
    a->nblk = (int)nblk;
    a->cb_last = (int)(cpg - (nblk - 1) * PC_VL);
    a->blk_stride = pc_window_block(win);
    a->row_stride = d->stride_h * pc_window_rowlen(win);
    a->out = tile;
    a->out_ps = lanes;
    a->pf_blocks = 0;
}
