/* Convolution with vectors over output channels for small maps; see
 * conv_cvec.h. The packing, micro-kernel and scatter are the inference
 * primitives' (core/kernels/pc_kernels.h). */
#include <string.h>

#include "conv_cvec.h"

/* Maps up to this many output positions go through here (ResNet-20's 14x14
 * and 7x7 stages; 28x28 rows waste little in conv_direct.c's layout). */
enum { CV_MAX_POSITIONS = 196, CV_MIN_OUT = 32 };

int cv_geom_init(struct cv_geom *g, int64_t cin, int64_t cout, int64_t H, int64_t W, int kh,
                 int kw, int pad_h, int pad_w, int dil_h, int dil_w, int stride_h, int stride_w)
{
    memset(g, 0, sizeof *g);
    struct dlas_conv_desc *d = &g->d;
    d->batch = 1;
    d->in_c = cin;
    d->in_h = H;
    d->in_w = W;
    d->out_c = cout;
    d->kh = kh;
    d->kw = kw;
    d->stride_h = stride_h;
    d->stride_w = stride_w;
    d->pad_h = pad_h;
    d->pad_w = pad_w;
    d->dil_h = dil_h;
    d->dil_w = dil_w;
    d->groups = 1;
    if (cin < 1 || cout < CV_MIN_OUT || kh * kw > CV_MAX_TAPS || dlas_conv_desc_finish(d))
        return 0;
    g->ohw = d->out_h * d->out_w;
    if (g->ohw > CV_MAX_POSITIONS)
        return 0;
    /* the primitives' `direct` blocking, defaults throughout */
    int vh = 0, vw = 0, b = 0;
    if (pc_direct_blocking(d, cout, &vh, &vw, &b) || !pc_kernel(1, vw, b))
        return 0;
    g->b = b;
    g->vh = vh;
    g->vw = vw;
    g->nblk = pc_ceil_div(cin, PC_VL);
    g->n_ob = pc_ceil_div(cout, (int64_t)b * PC_VL);
    pc_direct_window(d, &g->win, g->tap_off);
    g->img_floats = g->nblk * pc_window_block(&g->win);
    g->ob_floats = cin * kh * kw * b * PC_VL;
    return 1;
}

int64_t cv_pack_floats(const struct cv_geom *g) { return g->n_ob * g->ob_floats; }

void cv_pack(const struct cv_geom *g, const float *w, float *wp)
{
    pc_pack_weights(w, g->d.out_c, g->d.in_c, g->d.kh, g->d.kw, g->b, wp);
}

int64_t cv_forward_scratch(const struct cv_geom *g) { return g->img_floats + g->d.out_c * g->ohw; }

void cv_forward(const struct cv_geom *g, const float *x, const float *wp, const float *bias,
                float *y, int acc, float *scratch)
{
    const struct dlas_conv_desc *d = &g->d;
    float *img = scratch, *sum = scratch + g->img_floats;
    pc_pack_window(x, d->in_c, d->in_h, d->in_w, d->pad_h, d->pad_w, &g->win, img, 0, g->nblk);
    const int lanes = g->b * PC_VL;
    float tile[PC_MAX_ACC * PC_VL] __attribute__((aligned(64)));
    float bvec[PC_MAX_B * PC_VL] __attribute__((aligned(64)));
    struct pc_kargs a;
    pc_kargs_init(&a, d, d->in_c, g->tap_off, &g->win, tile, lanes);
    /* accumulating results go to a scratch plane first, then are added */
    float *out = acc ? sum : y;
    for (int64_t ob = 0; ob < g->n_ob; ob++) {
        const int64_t oc0 = ob * lanes, nc = d->out_c - oc0 < lanes ? d->out_c - oc0 : lanes;
        a.w = wp + ob * g->ob_floats;
        a.bias = NULL;
        if (bias) {
            memset(bvec, 0, sizeof bvec);
            memcpy(bvec, bias + oc0, (size_t)nc * sizeof(float));
            a.bias = bvec;
        }
        for (int64_t oh0 = 0; oh0 < d->out_h; oh0 += g->vh)
            pc_direct_rows(&a, d, &g->win, img, oh0, g->vh, g->vw, g->b, nc,
                           out + oc0 * g->ohw, NULL, DLAS_ACT_NONE, 0);
    }
    if (acc) {
        const int64_t n = d->out_c * g->ohw;
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] += sum[i];
    }
}
