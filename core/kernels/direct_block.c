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

/* Weight passes per useful FMA of a VH x VW block: the kernel reads a
 * channel block's weights once per block of output pixels, and a short
 * last block of rows runs row by row (pc_direct_rows). */
static double passes_per_fma(const struct dlas_conv_desc *d, int vh, int vw)
{
    const int64_t rows = d->out_h / vh + d->out_h % vh;
    return (double)(rows * pc_ceil_div(d->out_w, vw)) / (double)(d->out_h * d->out_w);
}

/* A narrow map (a 4x4, 7x7 or 8x8 layer: one block of columns) with the
 * most channel vectors leaves registers idle when a block holds one row,
 * and its weights are read once per block of rows. Fewer channel vectors
 * over two or four rows fill more registers and read the weights half or a
 * quarter as often (the same sums in the same order: results do not
 * change). Which counts more was measured (2 threads, Zen 5, time of the
 * block against the one with fewest loads per FMA):
 * - a kernel with taps on a map of at most PC_NARROW_MAP columns: fewest
 *   weight passes, then fewest loads. Its channel block's weights (cpg * 9
 *   vectors, beyond L2 with 3 or 4 vectors) come from L3 or memory on
 *   every pass, while the broadcasts hit L1. 512x4x4 -> 512: 4 rows x 1
 *   vector 0.84 with the weights in memory, 0.97 in cache, 1.04 at batch
 *   16; 256x8x8 -> 512 stride 2: 0.78, 1.0, 1.0; 512x7x7 -> 512: 2 rows x
 *   2 vectors 0.85, 0.81, 0.87; 512x14x14 -> 512 stride 2: 0.94, 0.91,
 *   0.82.
 * - otherwise fewest loads. On 8x8 maps 2 rows x 1 vector took 1.0 of 1
 *   row x 2 with the weights in memory but 1.08-1.17 in cache and 1.10-1.19
 *   at batch 16; a 1x1 kernel's cpg vectors stay in L2 (512x7x7 -> 2048: 2
 *   rows x 2 vectors took 1.11 of 1 row x 4; 1024x14x14 -> 2048 stride 2:
 *   1.21). */
static void trade_channels_for_rows(const struct dlas_conv_desc *d, int64_t opg, int *vh,
                                    int vw, int *b)
{
    const int by_passes = d->kh * d->kw > 1 && d->out_w <= PC_NARROW_MAP;
    double best_p = passes_per_fma(d, *vh, vw), best_l = loads_per_fma(*vh, vw, *b, opg);
    const int b0 = *b;
    for (int h = 2; h <= 4 && h <= d->out_h; h *= 2)
        for (int c = b0; c >= 1; c--) {
            if (h * vw * c > PC_ACC_REGS || !pc_kernel(h, vw, c))
                continue;
            const double p = passes_per_fma(d, h, vw), l = loads_per_fma(h, vw, c, opg);
            const int fewer_loads = l < best_l - 1e-9;
            const int better = by_passes ? p < best_p - 1e-9 || (p < best_p + 1e-9 && fewer_loads)
                                         : fewer_loads;
            if (better) {
                best_p = p;
                best_l = l;
                *vh = h;
                *b = c;
            }
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
                    const float *res, int act, int layouts)
{
    const int64_t ohw = d->out_h * d->out_w;
    const int64_t out_px = layouts & PC_OUT_C16 ? PC_VL : 1; /* floats a pixel apart */
    const int64_t res_px = layouts & PC_RES_C16 ? PC_VL : 1;
    const int nr = d->out_h - oh0 < vh ? (int)(d->out_h - oh0) : vh;
    if (nr < vh)
        vh = 1; /* a short last block, row by row */
    for (int64_t r = 0; r < nr; r += vh)
        for (int64_t ow0 = 0; ow0 < d->out_w; ow0 += vw) {
            const int nw = d->out_w - ow0 < vw ? (int)(d->out_w - ow0) : vw;
            a->in = img + (oh0 + r) * a->row_stride + ow0 * PC_VL;
            const int64_t px = (oh0 + r) * d->out_w + ow0;
            if (res && res_px == 1) /* C16: a line a pixel, which the hardware follows */
                pc_prefetch_tile(res + px, nc, vh, nw, ohw, d->out_w);
            pc_kernel(vh, nw, b)(a);
            pc_finish_tile(a->out, a->out_ps, vh, nw, vh, nw, nc, dst + px * out_px,
                           res ? res + px * res_px : NULL, ohw, d->out_w, act, layouts);
        }
}
