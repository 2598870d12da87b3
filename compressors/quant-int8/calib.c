/* Activation range calibration (see calib.h). */
#include <math.h>
#include <string.h>

#include "calib.h"

void calib_init(struct calib *c)
{
    memset(c, 0, sizeof *c);
    c->min = INFINITY;
    c->max = -INFINITY;
}

void calib_observe_range(struct calib *c, const float *x, int64_t n)
{
    double lo = c->min, hi = c->max;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        if (x[i] < lo)
            lo = x[i];
        if (x[i] > hi)
            hi = x[i];
    }
    c->min = lo;
    c->max = hi;
}

void calib_begin_hist(struct calib *c, enum calib_method method)
{
    memset(c->hist, 0, sizeof c->hist);
    c->count = 0;
    double lo = isfinite(c->min) ? c->min : 0.0, hi = isfinite(c->max) ? c->max : 0.0;
    if (lo > 0.0)
        lo = 0.0;
    if (hi < 0.0)
        hi = 0.0;
    c->symmetric = method == CALIB_ENTROPY && lo < 0.0;
    if (c->symmetric) {
        hi = fmax(-lo, hi);
        lo = 0.0;
    }
    c->lo_edge = lo;
    c->width = hi > lo ? (hi - lo) / CALIB_BINS : 1.0;
}

void calib_observe_hist(struct calib *c, const float *x, int64_t n)
{
    const double inv = 1.0 / c->width;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        double v = c->symmetric ? fabs(x[i]) : x[i];
        double b = (v - c->lo_edge) * inv;
        int k = b <= 0.0 ? 0 : b >= CALIB_BINS - 1 ? CALIB_BINS - 1 : (int)b;
        c->hist[k]++;
        c->count++;
    }
}

/* The value below which a fraction f of the histogram's mass lies. */
static double quantile(const struct calib *c, double f)
{
    double want = f * (double)c->count, seen = 0.0;
    for (int k = 0; k < CALIB_BINS; k++) {
        if (seen + (double)c->hist[k] >= want && c->hist[k] > 0) {
            double inside = ((want - seen) / (double)c->hist[k]);
            return c->lo_edge + c->width * (k + (inside < 0 ? 0 : inside > 1 ? 1 : inside));
        }
        seen += (double)c->hist[k];
    }
    return c->lo_edge + c->width * CALIB_BINS;
}

/* KL(P || Q) of two unnormalised distributions over the same bins, where Q
 * is zero only where P is (the caller's expansion guarantees it). */
static double kl(const double *p, const double *q, int n)
{
    double sp = 0.0, sq = 0.0, d = 0.0;
    for (int i = 0; i < n; i++) {
        sp += p[i];
        sq += q[i];
    }
    if (sp <= 0.0 || sq <= 0.0)
        return INFINITY;
    for (int i = 0; i < n; i++)
        if (p[i] > 0.0)
            d += p[i] / sp * log((p[i] / sp) / (q[i] > 0.0 ? q[i] / sq : 1e-12));
    return d;
}

int calib_kl_threshold(const int64_t *hist, int bins, int levels)
{
    double p[CALIB_BINS], q[CALIB_BINS];
    if (bins > CALIB_BINS)
        bins = CALIB_BINS;
    if (bins <= levels)
        return bins;
    int best = bins;
    double best_kl = INFINITY;
    double tail = 0.0;
    for (int i = 0; i < bins; i++)
        tail += (double)hist[i];
    /* tail: mass at or beyond bin i, updated as i grows */
    for (int i = 0; i < levels; i++)
        tail -= (double)hist[i];
    for (int i = levels; i <= bins; i++) {
        /* P: the first i bins, the clipped mass folded into the last */
        for (int k = 0; k < i; k++)
            p[k] = (double)hist[k];
        p[i - 1] += tail;
        /* Q: the first i bins merged into `levels` groups, each group's mass
         * spread evenly over its non-empty bins */
        for (int j = 0; j < levels; j++) {
            int start = (int)((int64_t)j * i / levels), stop = (int)((int64_t)(j + 1) * i / levels);
            double mass = 0.0;
            int nonzero = 0;
            for (int k = start; k < stop; k++) {
                mass += (double)hist[k];
                nonzero += hist[k] != 0;
            }
            for (int k = start; k < stop; k++)
                q[k] = hist[k] != 0 ? mass / nonzero : 0.0;
        }
        /* the folded tail makes P's last bin non-empty even where the
         * histogram's is empty: give Q a little mass there too */
        if (q[i - 1] == 0.0 && p[i - 1] > 0.0)
            q[i - 1] = 1e-3;
        double d = kl(p, q, i);
        if (d < best_kl) {
            best_kl = d;
            best = i;
        }
        if (i < bins)
            tail -= (double)hist[i];
    }
    return best;
}

void calib_range(const struct calib *c, enum calib_method method, double percentile,
                 float *lo, float *hi)
{
    double mn = isfinite(c->min) ? c->min : 0.0, mx = isfinite(c->max) ? c->max : 0.0;
    switch (method) {
    case CALIB_MINMAX:
        break;
    case CALIB_PERCENTILE:
        if (c->count > 0) {
            double f = percentile / 100.0;
            double l = quantile(c, 1.0 - f), h = quantile(c, f);
            mn = mn < 0.0 ? fmax(mn, l) : mn;
            mx = mx > 0.0 ? fmin(mx, h) : mx;
        }
        break;
    case CALIB_ENTROPY:
        if (c->count > 0) {
            /* The first bin holds every exact zero a relu produced (often
             * half the values): merged with its neighbours it would make any
             * wide range look lossy and drive the threshold down to the
             * smallest one tried. Zero is exact on every grid; like NVIDIA's
             * pytorch-quantization, weigh it as its neighbour. */
            int64_t h[CALIB_BINS];
            memcpy(h, c->hist, sizeof h);
            h[0] = h[1];
            int t = calib_kl_threshold(h, CALIB_BINS, c->symmetric ? 127 : 255);
            double thr = c->lo_edge + c->width * t;
            mx = fmin(mx, thr);
            if (c->symmetric)
                mn = fmax(mn, -thr);
        }
        break;
    }
    *lo = (float)(mn > 0.0 ? 0.0 : mn);
    *hi = (float)(mx < 0.0 ? 0.0 : mx);
}
