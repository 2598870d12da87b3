/* The `direct` primitive over zero-padded input planes (planes.h). */
#include <stdlib.h>
#include <string.h>

#include "../../core/kernels/pc_kernels.h"
#include "../../core/kernels/pw_kernels.h"
#include "planes.h"

int dp_planes_view(const struct dlas_conv_desc *d)
{
    return d->kh == 1 && d->kw == 1 && !d->pad_h && !d->pad_w &&
           (d->stride_w == 1 || d->stride_w == 2);
}

int dp_planes_apply(const struct dlas_conv_desc *d)
{
    return dp_planes_view(d) ||
           (d->in_c / d->groups <= DP_PLANES_MAX_C && (d->stride_w == 1 || d->stride_w == 2));
}

int dp_planes_block(const struct dlas_conv_desc *d, int b, int *vw)
{
    if (!*vw) { /* as few column blocks as the registers allow, then as even */
        const int maxvw = pw_max_vw(b);
        if (!maxvw)
            return DLAS_ERR_UNSUPPORTED;
        *vw = (int)pc_ceil_div(d->out_w, pc_ceil_div(d->out_w, maxvw));
    }
    return pw_conv_kernel(*vw, b, d->stride_w) ? DLAS_OK : DLAS_ERR_UNSUPPORTED;
}

int dp_planes_init(const struct dlas_conv_desc *d, int b, int vw, int pf_taps,
                   struct dp_planes *p)
{
    memset(p, 0, sizeof *p);
    int rc = dp_planes_block(d, b, &vw);
    if (rc)
        return rc;
    p->vw = vw;
    p->b = b;
    p->cpg = d->in_c / d->groups;
    p->view = dp_planes_view(d);
    p->pf_taps = pf_taps >= 0 ? pf_taps : p->view ? DP_VIEW_PREFETCH_TAPS : 0;
    /* every row and column a tap reaches, padding included (a view's are
     * the input's: an unpadded 1x1 kernel reaches no further) */
    const int64_t need_r = (d->out_h - 1) * d->stride_h + (int64_t)(d->kh - 1) * d->dil_h + 1;
    const int64_t need_c = (d->out_w - 1) * d->stride_w + (int64_t)(d->kw - 1) * d->dil_w + 1;
    p->rows = d->in_h + 2 * (int64_t)d->pad_h;
    p->cols = d->in_w + 2 * (int64_t)d->pad_w;
    if (need_r > p->rows)
        p->rows = need_r;
    if (need_c > p->cols)
        p->cols = need_c;
    p->ntaps = (int)(p->cpg * d->kh * d->kw);
    p->tap_off = malloc((size_t)p->ntaps * sizeof *p->tap_off);
    if (!p->tap_off)
        return DLAS_ERR_NOMEM;
    pc_plane_tap_offsets(p->cpg, d->kh, d->kw, d->dil_h, d->dil_w, p->rows, p->cols,
                         p->tap_off);
    return DLAS_OK;
}

int dp_planes_scratch(const struct dlas_conv_desc *d, const struct dp_planes *p,
                      struct dp_planes *q)
{
    *q = *p;
    q->rows = 1;
    q->cols = 0;
    q->pf_taps = 0; /* the scratch is in L1 or L2: nothing to ask for */
    q->tap_off = malloc((size_t)q->ntaps * sizeof *q->tap_off);
    if (!q->tap_off)
        return DLAS_ERR_NOMEM;
    for (int c = 0; c < q->ntaps; c++) /* a view: one tap a channel */
        q->tap_off[c] = c * dp_scratch_row(d);
    return DLAS_OK;
}

void dp_planes_free(struct dp_planes *p)
{
    free(p->tap_off);
    p->tap_off = NULL;
}

void dp_planes_pack_rows(const float *in, const struct dlas_conv_desc *d,
                         const struct dp_planes *p, float *ws, int64_t r0, int64_t r1)
{
    const int64_t in_plane = d->in_h * d->in_w;
    for (int64_t r = r0; r < r1; r++)
        /* r = ((image * groups + group) * cpg + c) * rows + row: the input
         * plane index is (image * in_c + group * cpg + c), the same number */
        pc_pad_row(in + r / p->rows * in_plane, d->in_h, d->in_w, d->pad_h, d->pad_w,
                   r % p->rows, p->cols, ws + r * p->cols);
}

void dp_planes_row(const struct dp_planes *p, const struct dlas_conv_desc *d, const float *img,
                   const float *w, const float *bias, int64_t oh, int64_t nc, float *dst,
                   const float *res, int pf_out, int c16)
{
    float tile[PC_MAX_ACC * PC_VL] __attribute__((aligned(64)));
    const int64_t ohw = d->out_h * d->out_w, tile_bs = (int64_t)p->vw * PC_VL;
    const int nb = (int)pc_ceil_div(nc, PC_VL);
    struct pw_args a = {0};
    a.w = w;
    a.bias = bias;
    a.out = tile;
    a.out_bs = tile_bs;
    a.nb = nb;
    /* the kernel activates, unless a residual comes first: then the scatter */
    a.act = res ? DLAS_ACT_NONE : d->activation;
    a.tap_off = p->tap_off;
    a.ntaps = p->ntaps;
    a.pf_taps = p->pf_taps;
    const float *row = img + oh * d->stride_h * p->cols;
    if (pf_out && !c16)
        pc_prefetch_out(dst + oh * d->out_w, nc, d->out_w, ohw);
    for (int64_t ow0 = 0; ow0 < d->out_w; ow0 += p->vw) {
        const int nw = d->out_w - ow0 < p->vw ? (int)(d->out_w - ow0) : p->vw;
        a.in = row + ow0 * d->stride_w;
        if (res && !c16)
            pc_prefetch_tile(res + oh * d->out_w + ow0, nc, 1, nw, ohw, d->out_w);
        pw_conv_kernel(nw, p->b, d->stride_w)(&a);
        /* each vector's pixels are 16 floats apart in the tile, a vector of
         * 16 channels a pixel: C16 as it is, NCHW transposed */
        const int64_t px = (oh * d->out_w + ow0) * (c16 ? PC_VL : 1);
        for (int v = 0; v < nb; v++) {
            const int64_t c0 = (int64_t)v * PC_VL, ncv = nc - c0 < PC_VL ? nc - c0 : PC_VL;
            const int64_t at = c0 * ohw + px;
            pc_finish_tile(tile + v * tile_bs, PC_VL, 1, nw, 1, nw, ncv, dst + at,
                           res ? res + at : NULL, ohw, d->out_w,
                           res ? d->activation : DLAS_ACT_NONE,
                           c16 ? PC_OUT_C16 | PC_RES_C16 : 0);
        }
    }
}
