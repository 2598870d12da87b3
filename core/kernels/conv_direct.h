/* Direct stride-1 convolution kernels for training (AVX-512), used by
 * backward_conv.c where they apply; im2col + GEMM does the rest. Not
 * installed. */
#ifndef DLAS_CONV_DIRECT_H
#define DLAS_CONV_DIRECT_H

#include <stdint.h>

#define CD_MAX_TAPS 64

/* One group of a convolution over a zero-padded copy of its input. For the
 * forward kernel the padded input is split into stride_h x stride_w phase
 * planes (plane (a, b) holds padded rows a, a + sh, ... and columns b,
 * b + sw, ...), so that every tap reads a phase plane at unit stride; with
 * stride 1 there is one plane, the padded input itself. The output is
 * computed at every position of OH rows of Wq, of which the first OW of each
 * row are kept: positions run contiguously through rows, so vectors never
 * stop at a row's end. The weight-gradient kernel reads a channels-last copy
 * of the padded input (Hp x Wp positions of C16 channels). */
struct cd_geom {
    int64_t cin, cout;    /* channels of the group */
    int64_t H, W, OH, OW; /* input and output planes */
    int64_t pad_h, pad_w, sh, sw;
    int64_t Hp, Wp;       /* padded input plane */
    int64_t Hq, Wq, Pq;   /* a phase plane, and its floats */
    int64_t P;            /* floats per input channel (its phase planes), slack included */
    int64_t NP, OPS;      /* positions computed (OH * Wq), and their stride */
    int64_t C16;          /* cin rounded up to 16: channel vectors of the HWC copy */
    int T, T9;            /* taps, and taps rounded up to a multiple of 9 */
    int64_t off[CD_MAX_TAPS];  /* tap offsets for the forward (phase plane, row, column) */
    int64_t offh[CD_MAX_TAPS]; /* tap offsets in the padded plane, for the weight gradient */
};

/* 1 when the kernels are built in (AVX-512) and take this shape. */
int cd_geom_init(struct cd_geom *g, int64_t cin, int64_t cout, int64_t H, int64_t W, int kh,
                 int kw, int pad_h, int pad_w, int dil_h, int dil_w, int stride_h,
                 int stride_w);

/* Forward: y (cout x OH x OW) = conv(x (cin x H x W)), plus bias if not
 * NULL; acc adds into y instead. wb: weights from cd_pack. */
int64_t cd_pack_floats(const struct cd_geom *g);
/* w: cout x cin x T (PyTorch's order). With flip, g is the geometry of
 * the convolution that maps an output gradient to the input gradient, and
 * w the weights of the forward convolution (cin x cout x T as seen from g),
 * flipped and transposed here. */
void cd_pack(const struct cd_geom *g, const float *w, int flip, float *wb);
int64_t cd_forward_scratch(const struct cd_geom *g);
void cd_forward(const struct cd_geom *g, const float *x, const float *wb, const float *bias,
                float *y, int acc, float *scratch);

/* Weight gradient: dwp (cout x T9 x C16) += sum over positions of
 * dy (cout x OH x OW) times the input at each tap. */
int64_t cd_dw_floats(const struct cd_geom *g);
int64_t cd_dw_scratch(const struct cd_geom *g);
void cd_dw(const struct cd_geom *g, const float *x, const float *dy, float *dwp, float *scratch);
/* Element (co, ci, t) of dW sits at dwp[cd_dw_index(g, co, ci, t)]. */
static inline int64_t cd_dw_index(const struct cd_geom *g, int64_t co, int64_t ci, int64_t t)
{
    return (co * g->T9 + t) * g->C16 + ci;
}

#endif
