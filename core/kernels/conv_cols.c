/* im2col and col2im over short rows. */
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "conv_cols.h"

/* Rows of feature maps are short (7..32 floats): compilers leave the tail
 * of a vectorised loop scalar, which is most of such a row. With AVX-512 the
 * tail is one masked operation instead. */
#if defined(__AVX512F__)
static inline __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1u); }

static inline void row_copy(float *restrict d, const float *restrict s, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_loadu_ps(s + i));
    if (i < n)
        _mm512_mask_storeu_ps(d + i, tail_mask(n - i), _mm512_maskz_loadu_ps(tail_mask(n - i), s + i));
}

static inline void row_zero(float *d, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_setzero_ps());
    if (i < n)
        _mm512_mask_storeu_ps(d + i, tail_mask(n - i), _mm512_setzero_ps());
}

static inline void row_add(float *restrict d, const float *restrict s, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(d + i), _mm512_loadu_ps(s + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(d + i, m,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, s + i)));
    }
}
#else
static inline void row_copy(float *restrict d, const float *restrict s, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        d[i] = s[i];
}

static inline void row_zero(float *d, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        d[i] = 0.0f;
}

static inline void row_add(float *restrict d, const float *restrict s, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        d[i] += s[i];
}
#endif

/* [lo, hi): the output columns whose input column ow * sw + iw0 lies inside
 * 0 .. in_w - 1. */
static inline void inside(int64_t iw0, int64_t sw, int64_t in_w, int64_t out_w, int64_t *lo,
                          int64_t *hi)
{
    int64_t l = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
    int64_t h = in_w - 1 - iw0 < 0 ? 0 : (in_w - 1 - iw0) / sw + 1;
    if (h > out_w)
        h = out_w;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* src: cpg x in_h x in_w -> col: K x N; out-of-image taps are 0. Rows are
 * short (7..32), so plain loops beat memcpy and memset calls (which GCC
 * would otherwise turn them back into). */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void
ag_im2col(const struct dlas_conv_desc *d, int64_t cpg, const float *restrict src, float *restrict col)
{
    const int64_t ih_n = d->in_h, iw_n = d->in_w, oh_n = d->out_h, ow_n = d->out_w;
    const int64_t sh = d->stride_h, sw = d->stride_w, N = oh_n * ow_n;
    for (int64_t c = 0; c < cpg; c++) {
        const float *plane = src + c * ih_n * iw_n;
        for (int ki = 0; ki < d->kh; ki++)
            for (int kj = 0; kj < d->kw; kj++) {
                float *dst = col + ((c * d->kh + ki) * d->kw + kj) * N;
                int64_t iw0 = (int64_t)kj * d->dil_w - d->pad_w, lo, hi;
                inside(iw0, sw, iw_n, ow_n, &lo, &hi);
                for (int64_t oh = 0; oh < oh_n; oh++) {
                    float *restrict drow = dst + oh * ow_n;
                    int64_t ih = oh * sh - d->pad_h + (int64_t)ki * d->dil_h;
                    if (ih < 0 || ih >= ih_n) {
                        row_zero(drow, ow_n);
                        continue;
                    }
                    const float *restrict srow = plane + ih * iw_n;
                    for (int64_t ow = 0; ow < lo; ow++)
                        drow[ow] = 0.0f;
                    if (sw == 1)
                        row_copy(drow + lo, srow + iw0 + lo, hi - lo);
                    else
                        for (int64_t ow = lo; ow < hi; ow++)
                            drow[ow] = srow[iw0 + ow * sw];
                    for (int64_t ow = hi; ow < ow_n; ow++)
                        drow[ow] = 0.0f;
                }
            }
    }
}

/* The adjoint of im2col: add col (K x N) back into dst (cpg x in_h x in_w). */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void
ag_col2im(const struct dlas_conv_desc *d, int64_t cpg, const float *restrict col, float *restrict dst)
{
    const int64_t ih_n = d->in_h, iw_n = d->in_w, oh_n = d->out_h, ow_n = d->out_w;
    const int64_t sh = d->stride_h, sw = d->stride_w, N = oh_n * ow_n;
    for (int64_t c = 0; c < cpg; c++) {
        float *plane = dst + c * ih_n * iw_n;
        for (int ki = 0; ki < d->kh; ki++)
            for (int kj = 0; kj < d->kw; kj++) {
                const float *src = col + ((c * d->kh + ki) * d->kw + kj) * N;
                int64_t iw0 = (int64_t)kj * d->dil_w - d->pad_w, lo, hi;
                inside(iw0, sw, iw_n, ow_n, &lo, &hi);
                for (int64_t oh = 0; oh < oh_n; oh++) {
                    int64_t ih = oh * sh - d->pad_h + (int64_t)ki * d->dil_h;
                    if (ih < 0 || ih >= ih_n)
                        continue;
                    const float *srow = src + oh * ow_n;
                    float *drow = plane + ih * iw_n;
                    if (sw == 1)
                        row_add(drow + iw0 + lo, srow + lo, hi - lo);
                    else
                        for (int64_t ow = lo; ow < hi; ow++)
                            drow[iw0 + ow * sw] += srow[ow];
                }
            }
    }
}

