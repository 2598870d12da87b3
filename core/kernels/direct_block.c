/* Direct convolution over a packed window (pc_kernels.h): the register
 * block chosen for a layer, and the loop over one row block's output
 * columns. Shared by the `direct` primitive and the trainer's small-map
 * convolutions (core/kernels/conv_cvec.c). */
#include "pc_kernels.h"

int pc_direct_blocking(const struct dlas_conv_desc *d, int64_t opg, int *vh, int *vw, int *b)
{
    const int auto_vh = !*vh;
    if (!*b)
        *b = (int)(opg >= 64 ? (d->out_w <= 7 ? 4 : 2) : pc_ceil_div(opg, PC_VL));
    if (*b > PC_MAX_B)
        *b = PC_MAX_B;
    if (auto_vh)
        *vh = 1;
    const int maxvw = pc_kernel_max_vw(*vh, *b);
    if (!maxvw)
        return 1;
    if (!*vw) {
        /* as few column blocks as possible, then as even as possible */
        *vw = (int)pc_ceil_div(d->out_w, pc_ceil_div(d->out_w, maxvw));
        /* narrow outputs leave registers idle: block two or four rows */
        if (auto_vh && d->out_h > 1) {
            if (*vw * *b * 4 <= PC_MAX_ACC && pc_kernel(4, *vw, *b) && d->out_h >= 4)
                *vh = 4;
            else if (*vw * *b * 2 <= PC_MAX_ACC && pc_kernel(2, *vw, *b))
                *vh = 2;
        }
    }
    return pc_kernel(*vh, *vw, *b) ? 0 : 2;
}

void pc_direct_rows(struct pc_kargs *a, const struct dlas_conv_desc *d, const struct pc_window *win,
                    const float *img, int64_t oh0, int vh, int vw, int b, int64_t nc, float *dst,
                    int act)
{
    const int nr = d->out_h - oh0 < vh ? (int)(d->out_h - oh0) : vh;
    if (nr < vh)
        vh = 1; /* a short last block, row by row */
    for (int64_t r = 0; r < nr; r += vh)
        for (int64_t ow0 = 0; ow0 < d->out_w; ow0 += vw) {
            const int nw = d->out_w - ow0 < vw ? (int)(d->out_w - ow0) : vw;
            a->in = img + (oh0 + r) * a->row_stride + ow0 * PC_VL;
            pc_kernel(vh, nw, b)(a);
            pc_scatter_tile(a->out, a->out_ps, vh, nw, vh, nw, nc,
                            dst + (oh0 + r) * d->out_w + ow0, d->out_h * d->out_w, d->out_w,
                            act);
        }
}
