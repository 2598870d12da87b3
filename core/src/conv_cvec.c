/* Convolution with vectors over output channels for small maps; see
 * conv_cvec.h. The packing, micro-kernel and scatter are the inference
 * primitives' (primitives/common/prim_common.h). */
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
    /* the primitives' `direct` blocking: B vectors of output channels, as
     * many output columns as registers allow, rows blocked when narrow */
    int b = (int)(cout >= 64 ? (d->out_w <= 7 ? 4 : 2) : pc_ceil_div(cout, PC_VL));
    if (b > PC_MAX_B)
        b = PC_MAX_B;
    int vh = 1, maxvw = pc_kernel_max_vw(1, b);
    if (!maxvw)
        return 0;
    int vw = (int)pc_ceil_div(d->out_w, pc_ceil_div(d->out_w, maxvw));
    if (d->out_h >= 4 && vw * b * 4 <= PC_MAX_ACC && pc_kernel(4, vw, b))
        vh = 4;
    else if (d->out_h > 1 && vw * b * 2 <= PC_MAX_ACC && pc_kernel(2, vw, b))
        vh = 2;
    if (!pc_kernel(vh, vw, b) || !pc_kernel(1, vw, b))
        return 0;
    g->b = b;
    g->vh = vh;
    g->vw = vw;
    g->nblk = pc_ceil_div(cin, PC_VL);
    g->n_ob = pc_ceil_div(cout, (int64_t)b * PC_VL);
    pc_direct_window(d, &g->win, &g->rowlen, g->tap_off);
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
    a.tap_off = g->tap_off;
    a.ntaps = d->kh * d->kw;
    a.nblk = (int)g->nblk;
    a.cb_last = (int)(d->in_c - (g->nblk - 1) * PC_VL);
    a.blk_stride = pc_window_block(&g->win);
    a.row_stride = d->stride_h * g->rowlen;
    a.out = tile;
    a.out_ps = lanes;
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
        float *dst_c = out + oc0 * g->ohw;
        for (int64_t oh0 = 0; oh0 < d->out_h; oh0 += g->vh) {
            const int nr = d->out_h - oh0 < g->vh ? (int)(d->out_h - oh0) : g->vh;
            const int vh = nr == g->vh ? g->vh : 1; /* a short last block row by row */
            for (int64_t r = 0; r < nr; r += vh)
                for (int64_t ow0 = 0; ow0 < d->out_w; ow0 += g->vw) {
                    const int nw = d->out_w - ow0 < g->vw ? (int)(d->out_w - ow0) : g->vw;
                    a.in = img + (oh0 + r) * d->stride_h * g->rowlen + ow0 * PC_VL;
                    pc_kernel(vh, nw, g->b)(&a);
                    pc_scatter_tile(tile, lanes, vh, nw, vh, nw, nc,
                                    dst_c + (oh0 + r) * d->out_w + ow0, g->ohw, d->out_w,
                                    DLAS_ACT_NONE);
                }
        }
    }
    if (acc) {
        const int64_t n = d->out_c * g->ohw;
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] += sum[i];
    }
}
