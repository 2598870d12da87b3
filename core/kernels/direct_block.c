/* Direct convolution over a packed window (pc_kernels.h): the register
 * block chosen for a layer, and the loop over one row block's output
 * columns. Shared by the `direct` primitive and the trainer's small-map
 * convolutions (core/kernels/conv_cvec.c). */
#include "pc_kernels.h"

/* Loads per useful FMA of a VH x VW x B block over opg output channels: per
 * input channel and tap it loads B weight vectors and broadcasts VH * VW
 * inputs for VH * VW * B FMAs, of which the lanes past opg (the last block
 * of B vectors padded) do nothing. */
static double loads_per_fma(int vh, int vw, int b, int64_t opg)
{
    const int64_t lanes = (int64_t)b * PC_VL, padded = pc_ceil_div(opg, lanes) * lanes;
    return (double)(b + vh * vw) / (double)(vh * vw * b) * (double)padded / (double)opg;
}

/* A narrow map (a 4x4 layer: one block of 4 columns) with the most channel
 * vectors leaves registers idle when a block holds one row, and its weights,
 * streamed once per block of rows, are read out_h times per image (from
 * memory once they outgrow L2: at batch 1 such layers are bound by that
 * stream). Fewer channel vectors over two or four rows fill more registers
 * and read the weights half or a quarter as often; take the block with the
 * fewest loads per useful FMA (the same sums in the same order: results do
 * not change). */
static void trade_channels_for_rows(const struct dlas_conv_desc *d, int64_t opg, int *vh,
                                    int vw, int *b)
{
    double best = loads_per_fma(*vh, vw, *b, opg);
    const int b0 = *b;
    for (int h = 2; h <= 4 && h <= d->out_h; h *= 2)
        for (int c = b0; c >= 1; c--)
            if (h * vw * c <= PC_ACC_REGS && pc_kernel(h, vw, c) &&
                loads_per_fma(h, vw, c, opg) < best - 1e-9) {
                best = loads_per_fma(h, vw, c, opg);
                *vh = h;
                *b = c;
            }
}

int pc_direct_blocking(const struct dlas_conv_desc *d, int64_t opg, int *vh, int *vw, int *b)
{
    const int auto_vh = !*vh, auto_b = !*b;
    if (!*b)
        *b = pc_auto_b(opg, d->out_w);
    if (*b > PC_MAX_B)
        *b = PC_MAX_B;
    if (auto_vh)
        *vh = 1;
    int maxvw = pc_kernel_max_vw(*vh, *b);
    if (!maxvw)
        return 1;
    if (!*vw) {
        if (PC_NARROW_VW > maxvw && *vh == 1 && *b == 1 && d->out_w <= 2 * PC_NARROW_VW)
            maxvw = PC_NARROW_VW;
        /* as few column blocks as possible, then as even as possible */
        *vw = (int)pc_ceil_div(d->out_w, pc_ceil_div(d->out_w, maxvw));
        /* narrow outputs leave registers idle: block two or four rows */
        if (auto_vh && d->out_h > 1) {
            if (*vw * *b * 4 <= PC_ACC_REGS && pc_kernel(4, *vw, *b) && d->out_h >= 4)
                *vh = 4;
            else if (*vw * *b * 2 <= PC_ACC_REGS && pc_kernel(2, *vw, *b))
                *vh = 2;
            else if (auto_b)
                trade_channels_for_rows(d, opg, vh, *vw, b);
        }
    }
    return pc_kernel(*vh, *vw, *b) ? 0 : 2;
}

void pc_direct_rows(struct pc_kargs *a, const struct dlas_conv_desc *d, const struct pc_window *win,
                    const float *img, int64_t oh0, int vh, int vw, int b, int64_t nc, float *dst,
                    const float *res, int act)
{
    const int nr = d->out_h - oh0 < vh ? (int)(d->out_h - oh0) : vh;
    if (nr < vh)
        vh = 1; /* a short last block, row by row */
    for (int64_t r = 0; r < nr; r += vh)
        for (int64_t ow0 = 0; ow0 < d->out_w; ow0 += vw) {
            const int nw = d->out_w - ow0 < vw ? (int)(d->out_w - ow0) : vw;
            a->in = img + (oh0 + r) * a->row_stride + ow0 * PC_VL;
            const int64_t at = (oh0 + r) * d->out_w + ow0;
            if (res)
                pc_prefetch_tile(res + at, nc, vh, nw, d->out_h * d->out_w, d->out_w);
            pc_kernel(vh, nw, b)(a);
            pc_scatter_tile(a->out, a->out_ps, vh, nw, vh, nw, nc, dst + at, res ? res + at : NULL,
                            d->out_h * d->out_w, d->out_w, act);
        }
}
