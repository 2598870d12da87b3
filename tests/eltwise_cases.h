/* The element-wise forward kernels (core/kernels/eltwise.c) against scalar
 * loops in double: every length from 0 to 67 (vector bodies and every tail),
 * in place and out of place, NaN and +-Inf inputs, and poisoned guards on
 * both sides of the output range that must stay untouched. Included by
 * check_kernels.c. */
#include "../core/kernels/eltwise.h"

#include <dlas/quant.h>

#include <dlas/conv.h>

#define EW_GUARD 8
#define EW_POISON 1234.5f

static double ref_act(double v, int act)
{
    if (isnan(v) || act == DLAS_ACT_NONE)
        return v;
    if (v < 0.0)
        v = 0.0;
    if (act == DLAS_ACT_RELU6 && v > 6.0)
        v = 6.0;
    return v;
}

/* Values spread over [-10, 10] with a NaN, +Inf and -Inf at fixed places. */
static void ew_fill(float *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / 16777216.0f) * 20.0f - 10.0f;
    }
    if (n > 5) {
        x[1] = NAN;
        x[3] = INFINITY;
        x[5] = -INFINITY;
    }
}

static void same(double want, float got, const char *what, int64_t n, int64_t i, int act)
{
    if (isnan(want)) {
        ck_assert_msg(isnan(got), "%s n=%lld [%lld] act %d: NaN lost (%g)", what, (long long)n,
                      (long long)i, act, got);
        return;
    }
    ck_assert_msg(got == (float)want || fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want)),
                  "%s n=%lld [%lld] act %d: %.9g, want %.9g", what, (long long)n, (long long)i,
                  act, got, want);
}

static void guards_intact(const float *buf, int64_t n, const char *what)
{
    for (int g = 0; g < EW_GUARD; g++) {
        ck_assert_msg(buf[g] == EW_POISON, "%s n=%lld: wrote before the range", what,
                      (long long)n);
        ck_assert_msg(buf[EW_GUARD + n + g] == EW_POISON, "%s n=%lld: wrote past the range",
                      what, (long long)n);
    }
}

START_TEST(elementwise_kernels_against_scalar_loops)
{
    enum { NMAX = 67 };
    float a[NMAX], b[NMAX], buf[NMAX + 2 * EW_GUARD];
    float *y = buf + EW_GUARD;
    for (int act = DLAS_ACT_NONE; act <= DLAS_ACT_RELU6; act++)
        for (int64_t n = 0; n <= NMAX; n++) {
            ew_fill(a, n, 7u + (uint32_t)n);
            ew_fill(b, n, 99u + (uint32_t)n);
            if (n > 7)
                b[7] = NAN; /* NaN from the second operand too */
            for (int inplace = 0; inplace < 2; inplace++) {
                for (int i = 0; i < NMAX + 2 * EW_GUARD; i++)
                    buf[i] = EW_POISON;
                if (inplace)
                    memcpy(y, a, (size_t)n * sizeof *y);
                ew_act(y, inplace ? y : a, n, act);
                for (int64_t i = 0; i < n; i++)
                    same(ref_act(a[i], act), y[i], "ew_act", n, i, act);
                guards_intact(buf, n, "ew_act");

                for (int i = 0; i < NMAX + 2 * EW_GUARD; i++)
                    buf[i] = EW_POISON;
                if (inplace)
                    memcpy(y, a, (size_t)n * sizeof *y);
                ew_add(y, inplace ? y : a, b, n, act);
                for (int64_t i = 0; i < n; i++)
                    same(ref_act((double)(a[i] + b[i]), act), y[i], "ew_add", n, i, act);
                guards_intact(buf, n, "ew_add");

                for (int i = 0; i < NMAX + 2 * EW_GUARD; i++)
                    buf[i] = EW_POISON;
                if (inplace)
                    memcpy(y, a, (size_t)n * sizeof *y);
                ew_affine(y, inplace ? y : a, n, -0.75f, 1.5f, act);
                for (int64_t i = 0; i < n; i++)
                    same(ref_act((double)a[i] * -0.75 + 1.5, act), y[i], "ew_affine", n, i,
                         act);
                guards_intact(buf, n, "ew_affine");
            }
        }
}
END_TEST

START_TEST(mean_and_batchnorm_coefficients)
{
    /* a plane of 56 x 56 values near 1000 plus small parts: a float
     * accumulator would lose the small parts, the double one keeps them */
    enum { S = 56 * 56 };
    static float x[S];
    double want = 0.0;
    for (int i = 0; i < S; i++) {
        x[i] = 1000.0f + (float)(i % 17) * 0.001f;
        want += x[i];
    }
    want /= S;
    ck_assert_msg(fabs(ew_mean(x, S) - want) <= 1e-7 * want, "mean %.9g, want %.9g",
                  ew_mean(x, S), want);
    for (int n = 1; n < 9; n++) {
        double w = 0.0;
        for (int i = 0; i < n; i++)
            w += x[i * 131];
        float tmp[9];
        for (int i = 0; i < n; i++)
            tmp[i] = x[i * 131];
        ck_assert_float_eq_tol(ew_mean(tmp, n), (float)(w / n), 1e-4f);
    }
    x[100] = NAN;
    ck_assert(isnan(ew_mean(x, S)));

    float scale, shift;
    ew_bn_coeffs(2.0f, 0.5f, 3.0, 0.25, &scale, &shift);
    ck_assert_float_eq(scale, 0.5f);  /* gamma / std */
    ck_assert_float_eq(shift, -1.0f); /* beta - mean * scale */
}
END_TEST

/* ew_quantize_u8 against dlas_quantize1 (<dlas/quant.h>, the definition):
 * every length 0..67, scales and zero points at the ends of their ranges,
 * values exactly half way between two steps (rounded to even), values that
 * saturate both ways, NaN and +-Inf, -0, and untouched guards. */
START_TEST(quantize_u8_matches_the_definition)
{
    static const float scales[] = {0.02f, 1.0f, 0.5f, 3.0f, 1e-3f};
    static const int32_t zps[] = {0, 3, 128, 255};
    enum { N = 67 };
    float x[N];
    uint8_t out[N + 2 * EW_GUARD];
    for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++)
        for (size_t zi = 0; zi < sizeof zps / sizeof zps[0]; zi++) {
            const float s = scales[si], inv = 1.0f / s;
            const int32_t zp = zps[zi];
            ew_fill(x, N, (uint32_t)(si * 7 + zi));
            for (int i = 0; i < N; i++)
                x[i] *= s * 20.0f; /* [-200, 200] steps: both saturations */
            for (int i = 6; i < 30; i++) /* exact halves: 0.5, 1.5, -2.5, ... steps */
                x[i] = ((float)(i - 18) + 0.5f) * s;
            x[30] = -0.0f;
            x[31] = 255.5f * s;
            x[32] = -(float)zp * s - 0.5f * s;
            x[40] = NAN;
            for (int64_t n = 0; n <= N; n++) {
                memset(out, 0xA5, sizeof out);
                ew_quantize_u8(out + EW_GUARD, x, n, inv, zp);
                for (int64_t i = 0; i < n; i++) {
                    uint8_t want = dlas_quantize1(x[i], inv, zp);
                    ck_assert_msg(out[EW_GUARD + i] == want,
                                  "scale %g zp %d n=%lld [%lld] x=%.9g: %d, want %d", s, zp,
                                  (long long)n, (long long)i, x[i], out[EW_GUARD + i], want);
                }
                for (int g = 0; g < EW_GUARD; g++)
                    ck_assert(out[g] == 0xA5 && out[EW_GUARD + n + g] == 0xA5);
            }
        }
}
END_TEST
