/* Separable resampling: a horizontal pass over the rows the vertical filter
 * needs, then a vertical pass. A region that maps 1:1 onto the output on
 * pixel centres reproduces the source bytes exactly (weight 1 at distance 0,
 * 0 at distance 1), which the tests rely on. */
#include <math.h>
#include <stdlib.h>

#include <dlas/rng.h>

#include "resample.h"

struct box box_center(int src_w, int src_h, int size, int resize)
{
    double shorter = src_w < src_h ? src_w : src_h;
    double side = size * shorter / resize; /* the crop, in source pixels */
    struct box b = {(src_w - side) / 2.0, (src_h - side) / 2.0, side, side};
    return b;
}

struct box box_random_resized(int src_w, int src_h, uint64_t seed, double scale_min,
                              double scale_max, double ratio_min, double ratio_max)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    double area = (double)src_w * src_h;
    double lr0 = log(ratio_min), lr1 = log(ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale_min + (scale_max - scale_min) * dlas_rng_uniform(&r));
        double ratio = exp(lr0 + (lr1 - lr0) * dlas_rng_uniform(&r));
        int w = (int)lround(sqrt(target * ratio)), h = (int)lround(sqrt(target / ratio));
        if (w > 0 && h > 0 && w <= src_w && h <= src_h) {
            int x = (int)dlas_rng_below(&r, (uint64_t)(src_w - w + 1));
            int y = (int)dlas_rng_below(&r, (uint64_t)(src_h - h + 1));
            struct box b = {x, y, w, h};
            return b;
        }
    }
    double in_ratio = (double)src_w / src_h, w = src_w, h = src_h;
    if (in_ratio < ratio_min)
        h = lround(w / ratio_min);
    else if (in_ratio > ratio_max)
        w = lround(h * ratio_max);
    struct box b = {(src_w - w) / 2.0, (src_h - h) / 2.0, w, h};
    return b;
}

int box_shrink(struct box b, int size)
{
    int f = 8;
    while (f > 1 && (b.w / f < size || b.h / f < size))
        f /= 2;
    return f;
}

/* Taps of one output coordinate: first source index and normalised weights. */
struct taps {
    int first, n;
    float *w;
};

/* For each of n_out outputs over the source interval [start, start + len)
 * of an axis with n_in pixels: the filter taps. */
static int make_taps(double start, double len, int n_out, int n_in, struct taps *t, float **store)
{
    double scale = len / n_out;
    double support = scale > 1.0 ? scale : 1.0;
    int max_taps = (int)ceil(2 * support) + 2;
    *store = malloc((size_t)n_out * max_taps * sizeof(float));
    if (!*store)
        return -1;
    for (int o = 0; o < n_out; o++) {
        double centre = start + (o + 0.5) * scale - 0.5;
        int lo = (int)floor(centre - support) + 1, hi = (int)ceil(centre + support) - 1;
        if (hi - lo + 1 > max_taps)
            hi = lo + max_taps - 1;
        float *w = *store + (size_t)o * max_taps;
        double sum = 0.0;
        int n = 0;
        for (int i = lo; i <= hi; i++) {
            double k = 1.0 - fabs(i - centre) / support;
            w[n++] = k > 0 ? (float)k : 0.0f;
            sum += k > 0 ? k : 0.0;
        }
        for (int i = 0; i < n; i++)
            w[i] = sum > 0 ? (float)(w[i] / sum) : 0.0f;
        t[o].first = lo;
        t[o].n = n;
        t[o].w = w;
    }
    return 0;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

int resample(const struct image *im, struct box b, int out_size, float *out)
{
    /* The region in the decoded image's pixels. */
    double sx = (double)im->w / im->src_w, sy = (double)im->h / im->src_h;
    const int C = im->channels, S = out_size;
    struct taps *tx = malloc((size_t)S * sizeof *tx), *ty = malloc((size_t)S * sizeof *ty);
    float *wx = NULL, *wy = NULL, *rows = NULL;
    int rc = -1;
    if (!tx || !ty || make_taps(b.x * sx, b.w * sx, S, im->w, tx, &wx) ||
        make_taps(b.y * sy, b.h * sy, S, im->h, ty, &wy))
        goto out;
    /* Source rows the vertical pass touches, clamped to the image. */
    int r0 = im->h - 1, r1 = 0;
    for (int o = 0; o < S; o++) {
        int first = clampi(ty[o].first, 0, im->h - 1);
        int last = clampi(ty[o].first + ty[o].n - 1, 0, im->h - 1);
        r0 = first < r0 ? first : r0;
        r1 = last > r1 ? last : r1;
    }
    int nr = r1 - r0 + 1;
    rows = malloc((size_t)nr * S * C * sizeof(float));
    if (!rows)
        goto out;
    for (int r = 0; r < nr; r++) {
        const uint8_t *src = im->px + (size_t)(r0 + r) * im->w * C;
        float *dst = rows + (size_t)r * S * C;
        for (int o = 0; o < S; o++) {
            const struct taps *t = &tx[o];
            for (int c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int k = 0; k < t->n; k++)
                    acc += t->w[k] * src[clampi(t->first + k, 0, im->w - 1) * C + c];
                dst[o * C + c] = acc;
            }
        }
    }
    for (int o = 0; o < S; o++) {
        const struct taps *t = &ty[o];
        for (int x = 0; x < S; x++)
            for (int c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int k = 0; k < t->n; k++) {
                    int r = clampi(t->first + k, 0, im->h - 1) - r0;
                    acc += t->w[k] * rows[((size_t)r * S + x) * C + c];
                }
                out[((size_t)c * S + o) * S + x] = acc / 255.0f;
            }
    }
    rc = 0;
out:
    free(tx);
    free(ty);
    free(wx);
    free(wy);
    free(rows);
    return rc;
}
