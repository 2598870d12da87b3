/* Every instance of the register-blocked micro-kernel (core/kernels), each
 * block shape VH x VW x B, against a scalar loop in double precision, with
 * poisoned outputs: a kernel bug is caught at the kernel, not only through a
 * primitive that happens to choose that block. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kernels/head.h"
#include "../core/kernels/mbconv.h"
#include "../core/kernels/pc_kernels.h"
#include "../core/kernels/pw_kernels.h"
#include "../core/kernels/stem.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* The rule pc_kernels.h documents for which shapes are instantiated. */
static int documented(int vh, int vw, int b)
{
    return (vh == 1 || vh == 2 || vh == 4) && vw >= 1 && vw <= PC_MAX_VW && b >= 1 &&
           b <= PC_MAX_B && vh * vw * b <= PC_MAX_ACC && vh * vw <= 16;
}

START_TEST(instances_match_the_documented_set)
{
    int n = 0;
    for (int vh = 0; vh <= 5; vh++)
        for (int vw = 0; vw <= PC_MAX_VW + 1; vw++)
            for (int b = 0; b <= PC_MAX_B + 1; b++) {
                int have = pc_kernel(vh, vw, b) != NULL;
                ck_assert_msg(have == documented(vh, vw, b), "kernel %dx%dx%d: %s", vh, vw, b,
                              have ? "instantiated but outside the rule" : "missing");
                n += have;
            }
    ck_assert_int_eq(n, 78);
    /* pc_kernel_max_vw agrees with the table and this build's registers */
    for (int vh = 1; vh <= 4; vh *= 2)
        for (int b = 1; b <= PC_MAX_B; b++) {
            int want = 0;
            for (int vw = 1; vw <= PC_MAX_VW; vw++)
                if (documented(vh, vw, b) && vh * vw * b <= PC_ACC_REGS)
                    want = vw;
            ck_assert_int_eq(pc_kernel_max_vw(vh, b), want);
        }
}
END_TEST

/* One call of kernel (vh, vw, b) on random data against the scalar loop of
 * the contract in pc_kernels.h. Output pixels are out_ps floats apart with
 * a gap after the B*16 results: the gap must keep its poison, the results
 * must replace theirs. */
static void check_one(int vh, int vw, int b, int nblk, int cb_last, int ntaps, int with_bias)
{
    pc_kernel_fn fn = pc_kernel(vh, vw, b);
    ck_assert_ptr_nonnull(fn);
    const int lanes = b * PC_VL;
    int64_t tap_off[9];
    int64_t max_tap = 0;
    for (int t = 0; t < ntaps; t++) {
        tap_off[t] = (int64_t)t * 21 + (t % 2) * 16; /* any offsets: the kernel adds them */
        if (tap_off[t] > max_tap)
            max_tap = tap_off[t];
    }
    const int64_t rs = (int64_t)vw * PC_VL + 37;                 /* odd: no alignment assumed */
    const int64_t span = (vh - 1) * rs + (int64_t)(vw - 1) * PC_VL + PC_VL + max_tap;
    const int64_t blk_stride = span + 11;
    const int64_t in_n = nblk * blk_stride + PC_VL;
    int64_t wn = 0;
    for (int blk = 0; blk < nblk; blk++)
        wn += (int64_t)ntaps * (blk == nblk - 1 ? cb_last : PC_VL) * lanes;
    const int64_t out_ps = lanes + PC_VL + 3; /* a gap of 19 floats after each pixel */
    const int np = vh * vw;

    float *in = malloc((size_t)in_n * sizeof *in);
    float *w = malloc((size_t)wn * sizeof *w);
    float *bias = malloc((size_t)lanes * sizeof *bias);
    float *out = malloc((size_t)(np * out_ps) * sizeof *out);
    double *ref = calloc((size_t)(np * lanes), sizeof *ref);
    double *mag = calloc((size_t)(np * lanes), sizeof *mag);
    ck_assert(in && w && bias && out && ref && mag);
    for (int64_t i = 0; i < in_n; i++)
        in[i] = frand();
    for (int64_t i = 0; i < wn; i++)
        w[i] = frand();
    for (int i = 0; i < lanes; i++)
        bias[i] = frand();
    for (int64_t i = 0; i < np * out_ps; i++)
        out[i] = NAN;

    /* the scalar loop */
    const float *wp = w;
    for (int p = 0; p < np; p++)
        for (int l = 0; l < lanes; l++) {
            ref[p * lanes + l] = with_bias ? bias[l] : 0.0;
            mag[p * lanes + l] = with_bias ? fabs(bias[l]) : 0.0;
        }
    for (int blk = 0; blk < nblk; blk++) {
        const int cb = blk == nblk - 1 ? cb_last : PC_VL;
        for (int t = 0; t < ntaps; t++)
            for (int c = 0; c < cb; c++, wp += lanes)
                for (int y = 0; y < vh; y++)
                    for (int x = 0; x < vw; x++) {
                        double xv = in[blk * blk_stride + tap_off[t] + y * rs + x * PC_VL + c];
                        int p = y * vw + x;
                        for (int l = 0; l < lanes; l++) {
                            ref[p * lanes + l] += xv * wp[l];
                            mag[p * lanes + l] += fabs(xv * wp[l]);
                        }
                    }
    }
    ck_assert_int_eq(wp - w, wn);

    struct pc_kargs a = {.in = in,
                         .w = w,
                         .out = out,
                         .bias = with_bias ? bias : NULL,
                         .tap_off = tap_off,
                         .ntaps = ntaps,
                         .nblk = nblk,
                         .cb_last = cb_last,
                         .blk_stride = blk_stride,
                         .row_stride = rs,
                         .out_ps = out_ps};
    fn(&a);

    for (int p = 0; p < np; p++) {
        for (int l = 0; l < lanes; l++) {
            double got = out[p * out_ps + l], want = ref[p * lanes + l];
            double tol = 1e-5 * (mag[p * lanes + l] + 1e-30) + 1e-30;
            ck_assert_msg(isfinite(got) && fabs(got - want) <= tol,
                          "kernel %dx%dx%d (nblk %d, cb_last %d, taps %d, bias %d): pixel %d "
                          "lane %d is %.9g, the scalar loop gives %.9g",
                          vh, vw, b, nblk, cb_last, ntaps, with_bias, p, l, got, want);
        }
        for (int64_t g = lanes; g < out_ps; g++)
            ck_assert_msg(isnan(out[p * out_ps + g]),
                          "kernel %dx%dx%d wrote past its %d results of pixel %d", vh, vw, b,
                          lanes, p);
    }
    free(in);
    free(w);
    free(bias);
    free(out);
    free(ref);
    free(mag);
}

/* Every instance, on channel counts that fill the last block and that do
 * not, one tap (Winograd's GEMM) and several, with and without bias. */
START_TEST(every_instance_against_the_scalar_loop)
{
    static const struct {
        int nblk, cb_last, ntaps, bias;
    } cases[] = {{1, 16, 1, 0}, {1, 1, 1, 1}, {2, 5, 3, 1}, {3, 16, 9, 0}, {1, 13, 2, 1}};
    int n = 0;
    for (int vh = 1; vh <= 4; vh *= 2)
        for (int b = 1; b <= PC_MAX_B; b++)
            for (int vw = 1; vw <= PC_MAX_VW; vw++) {
                if (!pc_kernel(vh, vw, b))
                    continue;
                for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
                    check_one(vh, vw, b, cases[k].nblk, cases[k].cb_last, cases[k].ntaps,
                              cases[k].bias);
                n++;
            }
    ck_assert_int_eq(n, 78);
}
END_TEST

/* The check can fail: a scalar loop that disagrees with the kernel by one
 * product is caught (the comparison is not vacuous). */
START_TEST(a_wrong_result_is_caught)
{
    pc_kernel_fn fn = pc_kernel(1, 1, 1);
    float in[16], w[16 * 16], bias[16], out[16];
    int64_t tap = 0;
    for (int i = 0; i < 16; i++)
        in[i] = 1.0f, bias[i] = 0.0f;
    for (int i = 0; i < 256; i++)
        w[i] = 1.0f;
    struct pc_kargs a = {in, w, out, bias, &tap, 1, 1, 16, 16, 16, 16};
    fn(&a);
    for (int l = 0; l < 16; l++)
        ck_assert_float_eq(out[l], 16.0f);  /* sixteen channels of 1 x 1 */
    ck_assert(fabs(out[0] - 15.0) > 1e-5 * 16); /* one product short would be seen */
}
END_TEST

/* ---- the fused mobile block (mbconv.h) ------------------------------------------ */

static double act_d(double v, int act)
{
    if (act != DLAS_ACT_NONE && v < 0)
        v = 0;
    if (act == DLAS_ACT_RELU6 && v > 6)
        v = 6;
    return v;
}

/* The block layer by layer in double precision, NCHW. */
static void mb_reference(const struct mb_desc *d, const struct mb_weights *w, int64_t batch,
                         const float *in, double *out)
{
    const int64_t IH = d->h, IW = d->w, s = d->stride;
    const int ek = d->expand_k ? d->expand_k : 1, es = d->expand_stride ? d->expand_stride : 1;
    const int64_t H = (IH - 1) / es + 1, W = (IW - 1) / es + 1; /* the expanded map */
    const int64_t oh = (H - 1) / s + 1, ow = (W - 1) / s + 1;
    double *e = malloc((size_t)(d->hid_c * H * W) * sizeof *e);
    double *dw = malloc((size_t)(d->hid_c * oh * ow) * sizeof *dw);
    for (int64_t n = 0; n < batch; n++) {
        const float *x = in + n * d->in_c * IH * IW;
        for (int64_t c = 0; c < d->hid_c; c++)
            for (int64_t p = 0; p < H * W; p++) {
                double v;
                if (d->expand && ek == 3) { /* dense 3x3, padding 1, stride es */
                    v = w->be ? w->be[c] : 0;
                    const int64_t y = p / W, xx = p % W;
                    for (int64_t k = 0; k < d->in_c; k++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int64_t iy = y * es + ky - 1, ix = xx * es + kx - 1;
                                if (iy >= 0 && iy < IH && ix >= 0 && ix < IW)
                                    v += (double)w->we[((c * d->in_c + k) * 3 + ky) * 3 + kx] *
                                         x[(k * IH + iy) * IW + ix];
                            }
                    v = act_d(v, d->act_e);
                } else if (d->expand) {
                    v = w->be ? w->be[c] : 0;
                    for (int64_t k = 0; k < d->in_c; k++)
                        v += (double)w->we[c * d->in_c + k] * x[k * H * W + p];
                    v = act_d(v, d->act_e);
                } else
                    v = x[c * H * W + p];
                e[c * H * W + p] = v;
            }
        for (int64_t c = 0; c < d->hid_c; c++)
            for (int64_t y = 0; y < oh; y++)
                for (int64_t xx = 0; xx < ow; xx++) {
                    double v = w->bd ? w->bd[c] : 0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int64_t iy = y * s + ky - 1, ix = xx * s + kx - 1;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                v += w->wd[c * 9 + ky * 3 + kx] * e[(c * H + iy) * W + ix];
                        }
                    dw[(c * oh + y) * ow + xx] = act_d(v, d->act_d);
                }
        for (int64_t o = 0; o < d->out_c; o++)
            for (int64_t p = 0; p < oh * ow; p++) {
                double v = w->bp ? w->bp[o] : 0;
                for (int64_t c = 0; c < d->hid_c; c++)
                    v += (double)w->wp[o * d->hid_c + c] * dw[c * oh * ow + p];
                v = act_d(v, d->act_p);
                if (d->residual)
                    v = act_d(v + x[o * H * W + p], d->act_r);
                out[(n * d->out_c + o) * oh * ow + p] = v;
            }
    }
    free(e);
    free(dw);
}

static float *rand_floats(int64_t n, double scale)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)(frand() * scale);
    return v;
}

/* n floats of NaN: a kernel's output or workspace, so that anything it
 * reads before writing, or never writes, shows. */
static float *nan_floats(size_t n)
{
    float *v = malloc((n > 0 ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = NAN;
    return v;
}

/* One block shape: the phases split over `threads` ranges (run one after
 * another, each with its own thread index), the output poisoned with NaN
 * and followed by a guard that must stay NaN. Returns the max rel. error. */
static double mb_case_ws(struct mb_desc d, int64_t batch, int64_t ws_batch, int threads,
                         int with_bias);
static double mb_case(struct mb_desc d, int64_t batch, int threads, int with_bias)
{
    return mb_case_ws(d, batch, batch, threads, with_bias);
}

/* The same, the workspace sized for ws_batch (>= batch) images, as a plan
 * sizes it for its largest batch, followed by a guard that must stay NaN. */
static double mb_case_ws(struct mb_desc d, int64_t batch, int64_t ws_batch, int threads,
                         int with_bias)
{
    const int ek = d.expand_k ? d.expand_k : 1, es = d.expand_stride ? d.expand_stride : 1;
    const int64_t oh = ((d.h - 1) / es) / d.stride + 1, ow = ((d.w - 1) / es) / d.stride + 1;
    const int64_t in_n = batch * d.in_c * d.h * d.w, out_n = batch * d.out_c * oh * ow;
    struct mb_weights w = {0};
    float *we = d.expand ? rand_floats(d.hid_c * d.in_c * ek * ek, 1.0 / sqrt((double)d.in_c * ek * ek))
                         : NULL;
    float *wd = rand_floats(d.hid_c * 9, 0.4), *wp = rand_floats(d.out_c * d.hid_c, 1.0 / sqrt((double)d.hid_c));
    float *be = rand_floats(d.hid_c, 0.5), *bd = rand_floats(d.hid_c, 0.5), *bp = rand_floats(d.out_c, 0.5);
    w.we = we;
    w.wd = wd;
    w.wp = wp;
    if (with_bias) {
        w.be = d.expand ? be : NULL;
        w.bd = bd;
        w.bp = bp;
    }
    float *in = rand_floats(in_n, 2.0);
    char why[128] = "";
    struct mb_block *b = mb_prepare(&d, &w, why, sizeof why);
    ck_assert_msg(b != NULL, "mb_prepare: %s", why);
    ck_assert_int_eq(mb_out_h(b), oh);
    ck_assert_int_eq(mb_out_w(b), ow);
    const int guard = 37;
    /* poisoned: the kernel must write what it reads, and every output */
    float *out = nan_floats((size_t)(out_n + guard));
    const size_t wsn = mb_workspace_floats(b, ws_batch, threads);
    float *ws = nan_floats(wsn + (size_t)guard);
    for (int ph = 0; ph < MB_N_PHASES; ph++) {
        int64_t n = mb_items(b, (enum mb_phase)ph, batch, threads);
        for (int t = 0; t < threads; t++) {
            int64_t i0, i1;
            pc_split(n, t, threads, &i0, &i1);
            mb_run(b, (enum mb_phase)ph, batch, in, out, ws, threads, i0, i1, t);
        }
    }
    double *ref = malloc((size_t)out_n * sizeof *ref);
    mb_reference(&d, &w, batch, in, ref);
    double err = 0, norm = 0;
    for (int64_t i = 0; i < out_n; i++) {
        ck_assert_msg(isfinite(out[i]), "output %lld not written (or not finite): %g",
                      (long long)i, out[i]);
        err = fmax(err, fabs(out[i] - ref[i]));
        norm = fmax(norm, fabs(ref[i]));
    }
    for (int i = 0; i < guard; i++)
        ck_assert_msg(isnan(out[out_n + i]), "guard %d after the output overwritten", i);
    for (int i = 0; i < guard; i++)
        ck_assert_msg(isnan(ws[wsn + (size_t)i]), "guard %d after the workspace overwritten", i);
    mb_free(b);
    free(we); free(wd); free(wp); free(be); free(bd); free(bp);
    free(in); free(out); free(ws); free(ref);
    return err / (norm > 0 ? norm : 1);
}

/* The tables give an mb_desc's fields in order and leave the trailing ones
 * (schedule, the expansion's kernel and stride, threads) zero unless given;
 * the designator tells the compiler so (-Wmissing-field-initializers). */
#define MBD(...) {__VA_ARGS__, .threads = 0}

START_TEST(mobile_block_against_the_layers)
{
    /* in_c, h, w, expand, hid_c, stride, out_c, act_e, act_d, act_p, residual, act_r */
    const struct mb_desc cases[] = {
        MBD(16, 12, 12, 1, 96, 1, 16, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_NONE),
        MBD(24, 11, 13, 1, 144, 2, 32, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE),
        MBD(5, 7, 9, 1, 30, 1, 5, DLAS_ACT_RELU, DLAS_ACT_RELU6, DLAS_ACT_RELU, 1, DLAS_ACT_RELU),
        MBD(8, 9, 7, 1, 250, 1, 40, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE),
        MBD(7, 6, 5, 1, 270, 2, 70, DLAS_ACT_NONE, DLAS_ACT_RELU, DLAS_ACT_RELU6, 0, DLAS_ACT_NONE),
        MBD(32, 10, 10, 0, 32, 1, 16, DLAS_ACT_NONE, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE),
        MBD(20, 9, 11, 0, 20, 2, 45, DLAS_ACT_NONE, DLAS_ACT_RELU, DLAS_ACT_RELU, 0, DLAS_ACT_NONE),
        MBD(3, 1, 1, 1, 17, 1, 3, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_NONE),
        MBD(4, 2, 19, 0, 4, 2, 64, DLAS_ACT_NONE, DLAS_ACT_NONE, DLAS_ACT_NONE, 0, DLAS_ACT_NONE),
        /* a dense 3x3 expansion (a stem conv), strides 2 and 1 */
        MBD(3, 17, 14, 1, 32, 1, 16, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE,
         0, 3, 2),
        MBD(5, 9, 12, 1, 40, 2, 24, DLAS_ACT_RELU, DLAS_ACT_RELU6, DLAS_ACT_RELU, 0, DLAS_ACT_NONE,
         0, 3, 1),
        MBD(16, 8, 7, 1, 48, 1, 16, DLAS_ACT_NONE, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_RELU,
         0, 3, 1),
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int sched = MB_SCHED_GROUPS; sched <= MB_SCHED_ROWS; sched++)
            for (int threads = 1; threads <= 3; threads += 2) {
                struct mb_desc d = cases[k];
                d.schedule = sched;
                double err = mb_case(d, k % 2 ? 3 : 1, threads, k != 5);
                ck_assert_msg(err < 1e-5, "case %zu (schedule %d, %d threads): rel. error %.3g",
                              k, sched, threads, err);
            }
}
END_TEST

/* NCHW image (c x h x w) into [blk][h+2p][w+2p][16], borders and lanes
 * past c zero, and back. */
static void to_blocked(const float *src, int64_t c, int64_t h, int64_t w, int p, float *dst)
{
    const int64_t rows = h + 2 * p, cols = w + 2 * p, nblk = (c + 15) / 16;
    memset(dst, 0, (size_t)(nblk * rows * cols * 16) * sizeof *dst);
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                dst[(((ch / 16) * rows + y + p) * cols + x + p) * 16 + ch % 16] =
                    src[(ch * h + y) * w + x];
}

/* The same block with its input and output in each layout: every result
 * bit for bit the NCHW run's, the blocked output's borders and lanes past
 * out_c zero, nothing written past it. */
static void mb_layout_case(struct mb_desc d, int64_t batch, int threads)
{
    const int ek = d.expand_k ? d.expand_k : 1, es = d.expand_stride ? d.expand_stride : 1;
    const int64_t oh = ((d.h - 1) / es) / d.stride + 1, ow = ((d.w - 1) / es) / d.stride + 1;
    const int64_t in_img = d.in_c * d.h * d.w, out_img = d.out_c * oh * ow;
    struct mb_weights w = {0};
    float *we = d.expand ? rand_floats(d.hid_c * d.in_c * ek * ek, 1.0 / sqrt((double)d.in_c * ek * ek))
                         : NULL;
    float *wd = rand_floats(d.hid_c * 9, 0.4);
    float *wp = rand_floats(d.out_c * d.hid_c, 1.0 / sqrt((double)d.hid_c));
    float *be = rand_floats(d.hid_c, 0.5), *bd = rand_floats(d.hid_c, 0.5);
    float *bp = rand_floats(d.out_c, 0.5);
    struct mb_weights mw = {we, be, wd, bd, wp, bp};
    w = mw;
    float *in = rand_floats(batch * in_img, 2.0);
    char why[128] = "";
    struct mb_block *b = mb_prepare(&d, &w, why, sizeof why);
    ck_assert_msg(b != NULL, "mb_prepare: %s", why);
    const int ip = mb_in_pad(b);
    const int64_t xin_img = (d.in_c + 15) / 16 * (d.h + 2 * ip) * (d.w + 2 * ip) * 16;
    float *xin = malloc((size_t)(batch * xin_img) * sizeof *xin);
    for (int64_t n = 0; n < batch; n++)
        to_blocked(in + n * in_img, d.in_c, d.h, d.w, ip, xin + n * xin_img);
    size_t wsn = mb_workspace_floats(b, batch, threads);
    float *ws = malloc(wsn * sizeof *ws);
    float *ref = NULL;
    const int guard = 37;
    for (int in_blocked = 0; in_blocked <= mb_takes_blocked(b); in_blocked++)
        for (int out_pad = -1; out_pad <= 1; out_pad++) {
            mb_set_io(b, in_blocked, out_pad);
            const int64_t oimg = mb_out_floats(b);
            const int64_t op = out_pad < 0 ? 0 : out_pad, orows = oh + 2 * op, ocols = ow + 2 * op;
            ck_assert_int_eq(oimg, out_pad < 0 ? out_img : (d.out_c + 15) / 16 * orows * ocols * 16);
            float *out = malloc((size_t)(batch * oimg + guard) * sizeof *out);
            for (int64_t i = 0; i < batch * oimg + guard; i++)
                out[i] = NAN;
            for (size_t i = 0; i < wsn; i++)
                ws[i] = NAN;
            for (int ph = 0; ph < MB_N_PHASES; ph++) {
                int64_t n = mb_items(b, (enum mb_phase)ph, batch, threads);
                if (ph == MB_PACK) /* a 3x3 expansion's items pack the rows they read */
                    ck_assert_int_eq(n == 0, in_blocked || !mb_takes_blocked(b));
                for (int t = 0; t < threads; t++) {
                    int64_t i0, i1;
                    pc_split(n, t, threads, &i0, &i1);
                    mb_run(b, (enum mb_phase)ph, batch, in_blocked ? xin : in, out, ws, threads,
                           i0, i1, t);
                }
            }
            for (int i = 0; i < guard; i++)
                ck_assert_msg(isnan(out[batch * oimg + i]), "guard %d overwritten", i);
            if (!ref) { /* the first: NCHW in and out */
                ref = out;
                for (int64_t i = 0; i < batch * out_img; i++)
                    ck_assert_msg(isfinite(ref[i]), "NCHW output %lld not written", (long long)i);
                continue;
            }
            for (int64_t n = 0; n < batch; n++)
                for (int64_t i = 0; i < oimg; i++) {
                    float got, want;
                    if (out_pad < 0) {
                        got = out[n * oimg + i];
                        want = ref[n * out_img + i];
                    } else {
                        const int64_t lane = i % 16, pix = i / 16, x = pix % ocols;
                        const int64_t y = pix / ocols % orows, ch = pix / (ocols * orows) * 16 + lane;
                        got = out[n * oimg + i];
                        want = ch >= d.out_c || y < op || y >= oh + op || x < op || x >= ow + op
                                   ? 0.0f
                                   : ref[n * out_img + (ch * oh + y - op) * ow + x - op];
                    }
                    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                                  "in %s, out pad %d: image %lld float %lld is %g, not %g",
                                  in_blocked ? "blocked" : "NCHW", out_pad, (long long)n,
                                  (long long)i, got, want);
                }
            free(out);
        }
    mb_free(b);
    free(we); free(wd); free(wp); free(be); free(bd); free(bp);
    free(in); free(xin); free(ws); free(ref);
}

START_TEST(mobile_block_layouts_are_exact)
{
    /* in_c, h, w, expand, hid_c, stride, out_c, act_e, act_d, act_p, residual, act_r */
    const struct mb_desc cases[] = {
        MBD(16, 12, 12, 1, 96, 1, 16, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_NONE),
        MBD(5, 7, 9, 1, 30, 1, 5, DLAS_ACT_RELU, DLAS_ACT_RELU6, DLAS_ACT_RELU, 1, DLAS_ACT_RELU),
        MBD(24, 11, 13, 1, 144, 2, 40, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE),
        MBD(20, 9, 11, 0, 20, 2, 45, DLAS_ACT_NONE, DLAS_ACT_RELU, DLAS_ACT_RELU, 0, DLAS_ACT_NONE),
        MBD(18, 7, 6, 0, 18, 1, 18, DLAS_ACT_NONE, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_RELU6),
        MBD(3, 13, 11, 1, 32, 1, 16, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE,
         0, 3, 2),
        MBD(3, 1, 1, 1, 17, 1, 3, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_NONE),
        /* a 3x3 expansion with the block's input added: the input stays NCHW */
        MBD(16, 8, 7, 1, 48, 1, 16, DLAS_ACT_NONE, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_RELU,
         0, 3, 1),
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int sched = MB_SCHED_GROUPS; sched <= MB_SCHED_ROWS; sched++)
            for (int threads = 1; threads <= 3; threads += 2) {
                struct mb_desc d = cases[k];
                d.schedule = sched;
                mb_layout_case(d, k % 2 ? 2 : 1, threads);
            }
}
END_TEST

/* Few (image, group) items for the threads: the hidden phase splits rows
 * into bands (recomputing the expanded rows two bands share), same results. */
START_TEST(mobile_block_row_bands)
{
    const struct mb_desc cases[] = {
        /* 9 groups of 16 hidden channels */
        MBD(24, 16, 13, 1, 144, 1, 24, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_NONE),
        MBD(16, 17, 15, 1, 144, 2, 24, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE),
        /* 3 groups, no expansion */
        MBD(48, 12, 12, 0, 48, 1, 32, DLAS_ACT_NONE, DLAS_ACT_RELU, DLAS_ACT_RELU, 0, DLAS_ACT_NONE),
    };
    const int64_t groups[] = {9, 9, 3};
    float w[16] = {0};
    struct mb_weights mw = {w, NULL, w, NULL, w, NULL};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct mb_desc d = cases[k];
        float *big = calloc((size_t)(d.hid_c * (d.in_c > 9 ? d.in_c : 9) + d.out_c * d.hid_c),
                            sizeof *big);
        mw.we = mw.wd = mw.wp = big;
        char why[128];
        struct mb_block *b = mb_prepare(&d, &mw, why, sizeof why);
        ck_assert_msg(b != NULL, "%s", why);
        ck_assert_int_eq(mb_items(b, MB_HIDDEN, 1, 1), groups[k]);
        ck_assert_int_gt(mb_items(b, MB_HIDDEN, 1, 2), groups[k]); /* banded */
        ck_assert_int_eq(mb_items(b, MB_HIDDEN, 1, 2) % 2, 0);
        ck_assert_int_eq(mb_items(b, MB_HIDDEN, 2, 2), 2 * groups[k]); /* even: no bands */
        mb_free(b);
        free(big);
        (void)w;
        for (int threads = 2; threads <= 4; threads += 2) {
            double err = mb_case(d, 1, threads, 1);
            ck_assert_msg(err < 1e-5, "case %zu (%d threads): rel. error %.3g", k, threads, err);
        }
    }
}
END_TEST

/* The row schedule: chosen where an image's depthwise output is large,
 * split into bands of rows for the threads (each expanded row two bands
 * share computed once, by the band that owns it, in the hidden phase; the
 * bands themselves in the projection phase); same results. */
START_TEST(mobile_block_row_schedule)
{
    float w[16] = {0};
    struct mb_weights mw = {w, NULL, w, NULL, w, NULL};
    /* in_c, h, w, expand, hid_c, stride, out_c, act_e, act_d, act_p, residual, act_r */
    const struct mb_desc big = MBD(16, 112, 112, 1, 96, 2, 24, DLAS_ACT_RELU6, DLAS_ACT_RELU6,
                                DLAS_ACT_NONE, 0, DLAS_ACT_NONE, MB_SCHED_AUTO);
    const struct mb_desc small = MBD(160, 7, 7, 1, 960, 1, 160, DLAS_ACT_RELU6, DLAS_ACT_RELU6,
                                  DLAS_ACT_NONE, 1, DLAS_ACT_NONE, MB_SCHED_AUTO);
    /* D large enough, but too few rows for two bands of four */
    const struct mb_desc short_map = MBD(64, 7, 7, 1, 2048, 1, 64, DLAS_ACT_RELU6, DLAS_ACT_RELU6,
                                      DLAS_ACT_NONE, 1, DLAS_ACT_NONE, MB_SCHED_AUTO);
    float *zw = calloc(960 * 160, sizeof *zw);
    mw.we = mw.wd = mw.wp = zw;
    char why[128];
    struct mb_block *b = mb_prepare(&big, &mw, why, sizeof why);
    ck_assert_msg(b != NULL, "%s", why);
    ck_assert_int_eq(mb_schedule_of(b), MB_SCHED_ROWS);
    /* (image, band) items; with two bands or more an image's edge rows
     * first (the hidden phase), none where each image is one band */
    ck_assert_int_eq(mb_items(b, MB_PROJECT, 1, 2), 2);
    ck_assert_int_eq(mb_items(b, MB_HIDDEN, 1, 2), 2);
    ck_assert_int_eq(mb_items(b, MB_PROJECT, 3, 2), 6);
    ck_assert_int_eq(mb_items(b, MB_HIDDEN, 3, 2), 6);
    ck_assert_int_eq(mb_items(b, MB_PROJECT, 4, 2), 4);
    ck_assert_int_eq(mb_items(b, MB_HIDDEN, 4, 2), 0);
    ck_assert_int_eq(mb_items(b, MB_PROJECT, 1, 1), 1);
    ck_assert_int_eq(mb_items(b, MB_HIDDEN, 1, 1), 0);
    mb_free(b);
    b = mb_prepare(&small, &mw, why, sizeof why);
    ck_assert_msg(b != NULL, "%s", why);
    ck_assert_int_eq(mb_schedule_of(b), MB_SCHED_GROUPS);
    mb_free(b);
    b = mb_prepare(&short_map, &mw, why, sizeof why);
    ck_assert_msg(b != NULL, "%s", why);
    ck_assert_int_eq(mb_schedule_of(b), MB_SCHED_GROUPS);
    mb_free(b);
    /* 14 rows: bands of 4+ for 2 or 3 threads, not for 4 (channel groups then) */
    struct mb_desc mid = MBD(96, 14, 14, 1, 576, 1, 96, DLAS_ACT_RELU6, DLAS_ACT_RELU6,
                          DLAS_ACT_NONE, 1, DLAS_ACT_NONE, MB_SCHED_AUTO);
    for (int t = 0; t <= 4; t++) {
        mid.threads = t;
        b = mb_prepare(&mid, &mw, why, sizeof why);
        ck_assert_msg(b != NULL, "%s", why);
        ck_assert_int_eq(mb_schedule_of(b), t <= 3 ? MB_SCHED_ROWS : MB_SCHED_GROUPS);
        mb_free(b);
    }
    free(zw);
    (void)w;
    const struct mb_desc cases[] = {
        MBD(24, 21, 10, 1, 144, 1, 24, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_NONE,
         MB_SCHED_ROWS),
        MBD(16, 23, 9, 1, 96, 2, 24, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE,
         MB_SCHED_ROWS),
        MBD(32, 18, 7, 0, 32, 1, 16, DLAS_ACT_NONE, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE,
         MB_SCHED_ROWS),
        MBD(40, 17, 6, 0, 40, 2, 72, DLAS_ACT_NONE, DLAS_ACT_RELU, DLAS_ACT_RELU, 0, DLAS_ACT_NONE,
         MB_SCHED_ROWS),
        MBD(3, 35, 18, 1, 32, 1, 16, DLAS_ACT_RELU6, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE,
         MB_SCHED_ROWS, 3, 2),
        /* an odd map at stride 2 (the last band's rows reach the padding) */
        MBD(8, 37, 11, 1, 48, 2, 8, DLAS_ACT_RELU, DLAS_ACT_RELU6, DLAS_ACT_NONE, 0, DLAS_ACT_NONE,
         MB_SCHED_ROWS),
        /* a 3x3 expansion at stride 1 with the block's input added */
        MBD(16, 19, 9, 1, 48, 1, 16, DLAS_ACT_NONE, DLAS_ACT_RELU6, DLAS_ACT_NONE, 1, DLAS_ACT_RELU,
         MB_SCHED_ROWS, 3, 1),
    };
    /* up to four threads: bands of 4 and 5 rows, an edge row in every band */
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int threads = 2; threads <= 4; threads++)
            for (int64_t batch = 1; batch <= 3; batch += 2) {
                double err = mb_case(cases[k], batch, threads, 1);
                ck_assert_msg(err < 1e-5, "case %zu (batch %lld, %d threads): rel. error %.3g",
                              k, (long long)batch, threads, err);
                mb_layout_case(cases[k], batch, threads);
                /* in a workspace sized for a batch the threads divide (no
                 * edge rows there), as a plan of that largest batch has */
                err = mb_case_ws(cases[k], batch, batch + 1, threads, 1);
                ck_assert_msg(err < 1e-5, "case %zu (batch %lld of %lld, %d threads): %.3g", k,
                              (long long)batch, (long long)batch + 1, threads, err);
            }
}
END_TEST

START_TEST(mobile_block_refuses_what_it_cannot_do)
{
    char why[128];
    float w[64] = {0};
    struct mb_weights mw = {w, NULL, w, NULL, w, NULL};
    struct mb_desc d = MBD(4, 5, 5, 1, 8, 3, 4, 0, 0, 0, 0, 0);
    ck_assert_ptr_null(mb_prepare(&d, &mw, why, sizeof why));
    ck_assert_msg(strstr(why, "stride"), "%s", why);
    d.stride = 2;
    d.residual = 1;
    ck_assert_ptr_null(mb_prepare(&d, &mw, why, sizeof why));
    ck_assert_msg(strstr(why, "residual"), "%s", why);
    d.residual = 0;
    d.expand = 0;
    ck_assert_ptr_null(mb_prepare(&d, &mw, why, sizeof why));
    ck_assert_msg(strstr(why, "expansion"), "%s", why);
    d.expand = 1;
    d.schedule = 7;
    ck_assert_ptr_null(mb_prepare(&d, &mw, why, sizeof why));
    ck_assert_msg(strstr(why, "schedule"), "%s", why);
    d.schedule = 0;
    d.expand_k = 3;
    d.expand_stride = 3;
    ck_assert_ptr_null(mb_prepare(&d, &mw, why, sizeof why));
    ck_assert_msg(strstr(why, "3x3"), "%s", why);
    d.expand_stride = 2;
    d.in_c = 17;
    ck_assert_ptr_null(mb_prepare(&d, &mw, why, sizeof why));
    ck_assert_msg(strstr(why, "16 input channels"), "%s", why);
    d.in_c = 4;
    d.expand_k = 1;
    ck_assert_ptr_null(mb_prepare(&d, &mw, why, sizeof why));
    ck_assert_msg(strstr(why, "1x1 (stride 1)"), "%s", why);
}
END_TEST

/* The fused head (head.h) against conv -> activation -> pool -> linear in
 * double precision: shapes off every block size (channels not multiples of
 * 16 or 64, pixels not multiples of the register block, outputs not of 16
 * or 128), batch 1 and 3, its items split over 1-3 ranges, the input NCHW
 * or blocked, workspace and output poisoned, a guard after the output. */
static double hd_case(struct hd_desc d, int64_t batch, int ranges, int with_bias, int blocked)
{
    float *wc = rand_floats(d.mid_c * d.in_c, 1.0 / sqrt((double)d.in_c));
    float *wl = rand_floats(d.out_c * d.mid_c, 1.0 / sqrt((double)d.mid_c));
    float *bc = rand_floats(d.mid_c, 0.5), *bl = rand_floats(d.out_c, 0.5);
    float *in = rand_floats(batch * d.in_c * d.hw, 2.0);
    struct hd_weights w = {wc, with_bias ? bc : NULL, wl, with_bias ? bl : NULL};
    char why[128] = "";
    struct hd_kernel *k = hd_prepare(&d, &w, why, sizeof why);
    ck_assert_msg(k != NULL, "hd_prepare: %s", why);
    /* blocked: the input as a mobile block leaves it, [blk][pixel][16] */
    const int64_t nblk = (d.in_c + 15) / 16;
    float *xb = calloc((size_t)(batch * nblk * d.hw * 16), sizeof *xb);
    for (int64_t n = 0; n < batch; n++)
        for (int64_t c = 0; c < d.in_c; c++)
            for (int64_t p = 0; p < d.hw; p++)
                xb[((n * nblk + c / 16) * d.hw + p) * 16 + c % 16] = in[(n * d.in_c + c) * d.hw + p];
    hd_set_in_blocked(k, blocked);
    const int64_t out_n = batch * d.out_c;
    const int guard = 19;
    /* poisoned: the kernel must write what it reads, and every output */
    float *out = nan_floats((size_t)(out_n + guard));
    float *ws = nan_floats(hd_workspace_floats(k, batch));
    for (int ph = 0; ph < HD_N_PHASES; ph++) {
        int64_t n = hd_items(k, (enum hd_phase)ph, batch);
        for (int t = 0; t < ranges; t++) {
            int64_t i0, i1;
            pc_split(n, t, ranges, &i0, &i1);
            hd_run(k, (enum hd_phase)ph, batch, blocked ? xb : in, out, ws, i0, i1);
        }
    }
    double err = 0, norm = 0, *pooled = malloc((size_t)d.mid_c * sizeof *pooled);
    for (int64_t n = 0; n < batch; n++) {
        for (int64_t m = 0; m < d.mid_c; m++) {
            double s = 0;
            for (int64_t p = 0; p < d.hw; p++) {
                double v = with_bias ? bc[m] : 0;
                for (int64_t c = 0; c < d.in_c; c++)
                    v += (double)wc[m * d.in_c + c] * in[(n * d.in_c + c) * d.hw + p];
                s += act_d(v, d.act);
            }
            pooled[m] = s / (double)d.hw;
        }
        for (int64_t o = 0; o < d.out_c; o++) {
            double v = with_bias ? bl[o] : 0;
            for (int64_t m = 0; m < d.mid_c; m++)
                v += (double)wl[o * d.mid_c + m] * pooled[m];
            const float got = out[n * d.out_c + o];
            ck_assert_msg(isfinite(got), "output %lld not written: %g", (long long)o, got);
            err = fmax(err, fabs(got - v));
            norm = fmax(norm, fabs(v));
        }
    }
    for (int i = 0; i < guard; i++)
        ck_assert_msg(isnan(out[out_n + i]), "guard %d after the output overwritten", i);
    hd_free(k);
    free(wc); free(wl); free(bc); free(bl); free(in); free(out); free(ws); free(pooled);
    free(xb);
    return err / (norm > 0 ? norm : 1);
}

START_TEST(head_against_the_layers)
{
    /* in_c, hw, mid_c, out_c, act */
    const struct hd_desc cases[] = {
        {320, 49, 1280, 1000, DLAS_ACT_RELU6}, /* MobileNet v2's */
        {37, 9, 200, 130, DLAS_ACT_RELU},      /* every block size left over */
        {16, 1, 16, 16, DLAS_ACT_NONE},        /* one of each */
        {3, 20, 48, 7, DLAS_ACT_RELU6},        /* three vectors a group */
        {21, 33, 80, 300, DLAS_ACT_NONE},      /* five: groups of one */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int64_t batch = 1; batch <= 3; batch += 2)
            for (int ranges = 1; ranges <= 3; ranges++) {
                double e = hd_case(cases[i], batch, ranges, (int)(i + ranges) % 2 == 0,
                                   ranges == 2);
                ck_assert_msg(e < 1e-5, "case %zu batch %lld ranges %d: rel. error %.3g", i,
                              (long long)batch, ranges, e);
            }
    char why[128];
    float w[16] = {0};
    struct hd_weights hw = {w, NULL, w, NULL};
    struct hd_desc d = {0, 1, 1, 1, 0};
    ck_assert_ptr_null(hd_prepare(&d, &hw, why, sizeof why));
    ck_assert_msg(strstr(why, "empty"), "%s", why);
    d.in_c = 1;
    hw.wl = NULL;
    ck_assert_ptr_null(hd_prepare(&d, &hw, why, sizeof why));
    ck_assert_msg(strstr(why, "weights"), "%s", why);
}
END_TEST

/* ---- the fused stem (stem.h) ----------------------------------------------------- */

/* A pool's output size, floor or ceil mode, as PyTorch computes it. */
static int64_t pool_out(int64_t n, int k, int s, int p, int ceil_mode)
{
    int64_t o = (n + 2 * p - k + (ceil_mode ? s - 1 : 0)) / s + 1;
    if (ceil_mode && (o - 1) * s >= n + p)
        o--;
    return o;
}

/* The conv and the pool layer by layer in double precision, NCHW; a NaN
 * in a window wins, as in PyTorch. */
static void st_reference(const struct st_desc *d, const float *w, const float *bias,
                         int64_t batch, const float *in, double *out)
{
    const int64_t oh = (d->in_h + 2 * d->pad_h - d->kh) / d->stride_h + 1;
    const int64_t ow = (d->in_w + 2 * d->pad_w - d->kw) / d->stride_w + 1;
    double *y = malloc((size_t)(d->out_c * oh * ow) * sizeof *y);
    for (int64_t n = 0; n < batch; n++) {
        for (int64_t o = 0; o < d->out_c; o++)
            for (int64_t r = 0; r < oh; r++)
                for (int64_t x = 0; x < ow; x++) {
                    double v = bias ? bias[o] : 0;
                    for (int64_t c = 0; c < d->in_c; c++)
                        for (int ky = 0; ky < d->kh; ky++)
                            for (int kx = 0; kx < d->kw; kx++) {
                                int64_t iy = r * d->stride_h + ky - d->pad_h;
                                int64_t ix = x * d->stride_w + kx - d->pad_w;
                                if (iy >= 0 && iy < d->in_h && ix >= 0 && ix < d->in_w)
                                    v += (double)w[((o * d->in_c + c) * d->kh + ky) * d->kw + kx] *
                                         in[((n * d->in_c + c) * d->in_h + iy) * d->in_w + ix];
                            }
                    y[(o * oh + r) * ow + x] = act_d(v, d->act);
                }
        for (int64_t o = 0; o < d->out_c; o++)
            for (int64_t r = 0; r < d->ph; r++)
                for (int64_t x = 0; x < d->pw; x++) {
                    double m = -INFINITY;
                    for (int64_t yy = r * d->psh - d->pph; yy < r * d->psh - d->pph + d->pkh; yy++)
                        for (int64_t xx = x * d->psw - d->ppw; xx < x * d->psw - d->ppw + d->pkw;
                             xx++)
                            if (yy >= 0 && yy < oh && xx >= 0 && xx < ow) {
                                double v = y[(o * oh + yy) * ow + xx];
                                if (v > m || isnan(v))
                                    m = isnan(m) ? m : v;
                            }
                    out[((n * d->out_c + o) * d->ph + r) * d->pw + x] = m;
                }
    }
    free(y);
}

/* One stem shape: the phases split over `threads` ranges (run one after
 * another, each with its own thread index), workspace and output poisoned
 * with NaN, a guard after the output; nan_at >= 0 puts a NaN in the input
 * there, which must reach exactly the outputs whose windows read it.
 * Returns the max rel. error. */
static double st_case(struct st_desc d, int ceil_mode, int64_t batch, int threads,
                      int with_bias, int64_t nan_at)
{
    const int64_t oh = (d.in_h + 2 * d.pad_h - d.kh) / d.stride_h + 1;
    const int64_t ow = (d.in_w + 2 * d.pad_w - d.kw) / d.stride_w + 1;
    d.ph = pool_out(oh, d.pkh, d.psh, d.pph, ceil_mode);
    d.pw = pool_out(ow, d.pkw, d.psw, d.ppw, ceil_mode);
    const int64_t in_n = batch * d.in_c * d.in_h * d.in_w, out_n = batch * d.out_c * d.ph * d.pw;
    float *w = rand_floats(d.out_c * d.in_c * d.kh * d.kw, 1.0 / sqrt((double)d.in_c * d.kh * d.kw));
    float *bias = rand_floats(d.out_c, 0.5), *in = rand_floats(in_n, 2.0);
    if (nan_at >= 0)
        in[nan_at % in_n] = NAN;
    char why[128] = "";
    struct st_kernel *k = st_prepare(&d, w, with_bias ? bias : NULL, why, sizeof why);
    ck_assert_msg(k != NULL, "st_prepare: %s", why);
    const int guard = 23;
    /* poisoned: the kernel must write what it reads, and every output */
    float *out = nan_floats((size_t)(out_n + guard));
    float *ws = nan_floats(st_workspace_floats(k, batch, threads));
    for (int ph = 0; ph < ST_N_PHASES; ph++) {
        int64_t n = st_items(k, (enum st_phase)ph, batch, threads);
        for (int t = 0; t < threads; t++) {
            int64_t i0, i1;
            pc_split(n, t, threads, &i0, &i1);
            st_run(k, (enum st_phase)ph, batch, in, out, ws, threads, i0, i1, t);
        }
    }
    double *ref = malloc((size_t)out_n * sizeof *ref);
    st_reference(&d, w, with_bias ? bias : NULL, batch, in, ref);
    double err = 0, norm = 0;
    int64_t nans = 0;
    for (int64_t i = 0; i < out_n; i++) {
        if (isnan(ref[i])) {
            ck_assert_msg(isnan(out[i]), "output %lld: %g, not the NaN its window read",
                          (long long)i, out[i]);
            nans++;
            continue;
        }
        ck_assert_msg(isfinite(out[i]), "output %lld not written (or not finite): %g",
                      (long long)i, out[i]);
        err = fmax(err, fabs(out[i] - ref[i]));
        norm = fmax(norm, fabs(ref[i]));
    }
    /* where every input reaches a conv output and every conv output a
     * pooled one, the NaN must show */
    if (nan_at >= 0 && d.kh >= d.stride_h && d.kw >= d.stride_w && d.pkh >= d.psh &&
        d.pkw >= d.psw)
        ck_assert_int_gt(nans, 0);
    for (int i = 0; i < guard; i++)
        ck_assert_msg(isnan(out[out_n + i]), "guard %d after the output overwritten", i);
    st_free(k);
    free(w); free(bias); free(in); free(out); free(ws); free(ref);
    return err / (norm > 0 ? norm : 1);
}

START_TEST(stem_against_the_layers)
{
    /* in_c, in_h, in_w, out_c, kh, kw, stride_h, stride_w, pad_h, pad_w, act,
     * pool kh, kw, stride_h, stride_w, pad_h, pad_w (ph, pw: from ceil) */
    const struct st_desc cases[] = {
        {3, 45, 51, 64, 7, 7, 2, 2, 3, 3, DLAS_ACT_RELU, 3, 3, 2, 2, 1, 1, 0, 0}, /* ResNet's */
        {1, 17, 23, 40, 5, 3, 1, 1, 2, 1, DLAS_ACT_NONE, 2, 2, 2, 2, 0, 0, 0, 0}, /* 3 vectors */
        {4, 13, 19, 80, 3, 3, 2, 1, 1, 1, DLAS_ACT_RELU6, 3, 3, 1, 1, 1, 1, 0, 0}, /* 5: 4 + 1 */
        {2, 20, 9, 16, 1, 1, 2, 2, 0, 0, DLAS_ACT_RELU, 3, 2, 3, 2, 1, 0, 0, 0},
        {3, 30, 27, 24, 3, 4, 1, 2, 0, 2, DLAS_ACT_NONE, 2, 3, 3, 4, 1, 1, 0, 0}, /* gaps */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int ceil_mode = 0; ceil_mode <= 1; ceil_mode++)
            for (int64_t batch = 1; batch <= 3; batch += 2)
                for (int threads = 1; threads <= 3; threads++) {
                    double e = st_case(cases[i], ceil_mode, batch, threads,
                                       (int)(i + threads) % 2 == 0,
                                       threads == 2 ? (int64_t)(i * 997 + 31) : -1);
                    ck_assert_msg(e < 1e-5, "case %zu ceil %d batch %lld threads %d: rel. error %.3g",
                                  i, ceil_mode, (long long)batch, threads, e);
                }
    char why[128];
    float w[64] = {0};
    struct st_desc d = cases[0];
    d.ph = d.pw = 1;
    d.in_c = 5; /* a stem reads a few planes */
    ck_assert_ptr_null(st_prepare(&d, w, NULL, why, sizeof why));
    ck_assert_msg(strstr(why, "input channels"), "%s", why);
    d.in_c = 3;
    d.stride_w = 3;
    ck_assert_ptr_null(st_prepare(&d, w, NULL, why, sizeof why));
    ck_assert_msg(strstr(why, "stride"), "%s", why);
    d.stride_w = 2;
    d.ph = 100; /* windows past the conv's output */
    ck_assert_ptr_null(st_prepare(&d, w, NULL, why, sizeof why));
    ck_assert_msg(strstr(why, "pool output"), "%s", why);
    d.ph = 1;
    d.pph = 3; /* padding as large as the window */
    ck_assert_ptr_null(st_prepare(&d, w, NULL, why, sizeof why));
    ck_assert_msg(strstr(why, "pool shape"), "%s", why);
}
END_TEST

/* The fused activation every kernel stores through (pc_actn), lane by lane
 * against its definition, bit for bit: ReLU and ReLU6 clamp, NaN passes
 * through (as torch.relu), -0.0 and exact 0 and 6 stay as they are, and a
 * NaN in one lane changes no other lane. */
START_TEST(activation_lanes_match_the_definition)
{
    const float vals[] = {NAN, -0.0f, 0.0f, -1.5f, 3.0f, 6.0f, 6.5f, INFINITY, -INFINITY,
                          1e-40f, -1e-40f, 5.999999f, -NAN, 1e30f, -3.0f, 2.0f};
    float in[PC_NL], out[PC_NL];
    const int acts[] = {DLAS_ACT_NONE, DLAS_ACT_RELU, DLAS_ACT_RELU6};
    for (int shift = 0; shift < 16; shift++)
        for (int a = 0; a < 3; a++) {
            for (int i = 0; i < PC_NL; i++)
                in[i] = vals[(i + shift) % 16];
            pc_storen(out, pc_actn(pc_loadn(in), acts[a]));
            for (int i = 0; i < PC_NL; i++) {
                float want = in[i];
                if (!isnan(want) && acts[a] != DLAS_ACT_NONE && want < 0.0f)
                    want = 0.0f;
                if (!isnan(want) && acts[a] == DLAS_ACT_RELU6 && want > 6.0f)
                    want = 6.0f;
                uint32_t g, w;
                memcpy(&g, &out[i], 4);
                memcpy(&w, &want, 4);
                ck_assert_msg(isnan(want) ? isnan(out[i]) : g == w,
                              "act %d, lane %d: %g gave %g (%08x), want %g (%08x)", acts[a], i,
                              (double)in[i], (double)out[i], g, (double)want, w);
            }
        }
}
END_TEST

/* The half kernels (the last of B vectors holding 8 channels) against the
 * full ones on outputs that end in 8 channels, for every (vw, B) and every
 * ending (activations, a residual): the same bits in every lane, the last
 * vector's other 8 lanes written as zeros over a NaN poison, nothing
 * written past the block. A channel count that needs no half kernel gets
 * none (pw_half_tail). */
START_TEST(half_kernels_match_the_full_ones)
{
    const int nblk = 2, cin = nblk * PC_VL - 5; /* a short last input block */
    for (int b = 1; b <= PC_MAX_B; b++)
        for (int vw = 1; vw <= PC_MAX_VW; vw++) {
            pw_fn full = pw_kernel(vw, b), half = pw_kernel_half(vw, b);
            ck_assert_int_eq(full == NULL, half == NULL);
            if (!full)
                continue;
            const int lanes = b * PC_VL, oc = lanes - 8; /* 8, 24, 40, 56 */
            float *in = rand_floats((int64_t)nblk * vw * PC_VL, 2.0);
            float *w = rand_floats((int64_t)cin * lanes, 0.3), *bias = rand_floats(lanes, 0.5);
            float *res = rand_floats((int64_t)b * vw * PC_VL, 1.0);
            for (int c = 0; c < cin; c++) /* packed as pc_pack_weights leaves oc channels */
                memset(w + c * lanes + oc, 0, 8 * sizeof(float));
            memset(bias + oc, 0, 8 * sizeof(float));
            for (int p = 0; p < vw; p++) /* the residual's lanes past oc, as a layout has them */
                memset(res + ((int64_t)(b - 1) * vw + p) * PC_VL + 8, 0, 8 * sizeof(float));
            const int64_t n_out = (int64_t)b * vw * PC_VL + PC_VL;
            float *want = malloc((size_t)n_out * sizeof *want), *got = malloc((size_t)n_out * sizeof *got);
            for (int ending = 0; ending < 4; ending++) {
                struct pw_args a = {0};
                a.in = in;
                a.in_bs = (int64_t)vw * PC_VL;
                a.nblk = nblk;
                a.cb_last = cin - (nblk - 1) * PC_VL;
                a.w = w;
                a.bias = ending == 3 ? NULL : bias;
                a.out_bs = (int64_t)vw * PC_VL;
                a.nb = b;
                a.act = ending == 0 ? DLAS_ACT_NONE : ending == 1 ? DLAS_ACT_RELU : DLAS_ACT_RELU6;
                if (ending >= 2) {
                    a.res = res;
                    a.res_bs = (int64_t)vw * PC_VL;
                    a.act_r = DLAS_ACT_RELU;
                }
                for (int64_t i = 0; i < n_out; i++)
                    want[i] = got[i] = NAN;
                a.out = want;
                full(&a);
                a.out = got;
                half(&a);
                for (int64_t i = 0; i < n_out; i++) {
                    const int written = i < (int64_t)b * vw * PC_VL;
                    ck_assert_msg(written ? memcmp(&want[i], &got[i], sizeof(float)) == 0
                                          : isnan(got[i]),
                                  "B %d, vw %d, ending %d: float %lld is %g, the full kernel's %g",
                                  b, vw, ending, (long long)i, (double)got[i], (double)want[i]);
                }
                ck_assert_msg(got[(int64_t)(b - 1) * vw * PC_VL + 15] == 0.0f,
                              "B %d, vw %d: the half vector's last lane is not zero", b, vw);
            }
            free(in); free(w); free(bias); free(res); free(want); free(got);
        }
    ck_assert(pw_half_tail(24) && pw_half_tail(8) && pw_half_tail(1) && pw_half_tail(40));
    ck_assert(!pw_half_tail(16) && !pw_half_tail(25) && !pw_half_tail(0) && !pw_half_tail(9 + 16));
}
END_TEST

/* The kernels' buffers (arena.c): every size 64-byte aligned, zeroed, its
 * own (each filled with its index, none overwritten by another), freed in
 * an order other than their allocation's, and every chunk released once
 * the buffers in it are. */
START_TEST(buffers_are_aligned_zeroed_and_their_own)
{
    const int64_t sizes[] = {1, 15, 16 << 10, 100000, 300000, 16, 600000, 200000, 17 << 10, 3};
    enum { N = sizeof sizes / sizeof sizes[0] };
    const int64_t chunks0 = pc_arena_chunks();
    float *buf[N];
    for (int i = 0; i < N; i++) {
        buf[i] = pc_alloc_floats(sizes[i]);
        ck_assert_ptr_nonnull(buf[i]);
        ck_assert_int_eq((uintptr_t)buf[i] % 64, 0);
        for (int64_t j = 0; j < sizes[i]; j++)
            ck_assert_msg(buf[i][j] == 0.0f, "buffer %d float %lld not zeroed", i, (long long)j);
        for (int64_t j = 0; j < sizes[i]; j++)
            buf[i][j] = (float)i;
    }
    for (int i = 0; i < N; i++)
        for (int64_t j = 0; j < sizes[i]; j++)
            ck_assert_msg(buf[i][j] == (float)i, "buffer %d float %lld overwritten: %g", i,
                          (long long)j, (double)buf[i][j]);
    const char *hp = getenv("DLAS_HUGEPAGES");
    if (!(hp && !strcmp(hp, "0"))) /* 64 KiB and more from chunks: at least two here */
        ck_assert_int_ge(pc_arena_chunks(), chunks0 + 2);
    for (int i = 0; i < N; i++) /* every third, then the rest */
        if (i % 3 == 1)
            pc_free_floats(buf[i]);
    for (int i = N - 1; i >= 0; i--)
        if (i % 3 != 1)
            pc_free_floats(buf[i]);
    pc_free_floats(NULL);
    ck_assert_int_eq(pc_arena_chunks(), chunks0);
    ck_assert_ptr_null(pc_alloc_floats(INT64_MAX)); /* a size that would wrap */
    ck_assert_ptr_null(pc_alloc_floats(((int64_t)1 << 56) + 1));
    ck_assert_int_eq(pc_arena_chunks(), chunks0);
}
END_TEST

#include "eltwise_cases.h"

int main(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("microkernel");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, instances_match_the_documented_set);
    tcase_add_test(tc, activation_lanes_match_the_definition);
    tcase_add_test(tc, half_kernels_match_the_full_ones);
    tcase_add_test(tc, buffers_are_aligned_zeroed_and_their_own);
    tcase_add_test(tc, every_instance_against_the_scalar_loop);
    tcase_add_test(tc, a_wrong_result_is_caught);
    tcase_add_test(tc, mobile_block_against_the_layers);
    tcase_add_test(tc, mobile_block_layouts_are_exact);
    tcase_add_test(tc, mobile_block_row_bands);
    tcase_add_test(tc, mobile_block_row_schedule);
    tcase_add_test(tc, mobile_block_refuses_what_it_cannot_do);
    tcase_add_test(tc, head_against_the_layers);
    tcase_add_test(tc, stem_against_the_layers);
    suite_add_tcase(s, tc);
    TCase *ew = tcase_create("eltwise");
    tcase_add_test(ew, elementwise_kernels_against_scalar_loops);
    tcase_add_test(ew, mean_and_batchnorm_coefficients);
    tcase_add_test(ew, quantize_u8_matches_the_definition);
    suite_add_tcase(s, ew);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
