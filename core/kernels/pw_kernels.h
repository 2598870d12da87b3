/* The 1x1 convolution of a fused mobile block (mbconv.h), both of its
 * pointwise layers: the register-blocked micro-kernel of pc_kernels.h for
 * one tap over channel-blocked input, but ending where that layer's output
 * is read from: each output vector, with its activation (and the block's
 * residual added, then the activation after the add), stored straight into
 * the channel-blocked buffer the next step reads (the expansion's ring row,
 * the projection's padded output), with no tile to copy it through.
 *
 * One call: VW consecutive pixels x B vectors of 16 output channels,
 *
 *   acc[p][b] = bias[b] + sum over blk < nblk, c < (last ? cb_last : 16) of
 *               in[blk*in_bs + p*16 + c] * w[((blk*16 + c)*B + b)*16 ...]
 *   out[b*out_bs + p*16 ...] = act_r(act(acc[p][b]) [+ res[b*res_bs + p*16 ...]])
 *
 * for b < nb (the vectors that exist; nb <= B). Weights as pc_pack_weights
 * packs them for B. Pure compute. */
#ifndef DLAS_PW_KERNELS_H
#define DLAS_PW_KERNELS_H

#include <stdint.h>

struct pw_args {
    const float *in;
    int64_t in_bs;
    int nblk, cb_last;
    const float *w, *bias; /* bias: B*16 floats, or NULL */
    float *out;
    int64_t out_bs;
    int nb;
    int act;          /* enum dlas_activation */
    const float *res; /* NULL: no residual */
    int64_t res_bs;
    int act_r;
    /* pw_conv_kernel only: the input is ntaps single channels (no blocks),
     * tap t at in + tap_off[t], pixel p at + p*S */
    const int64_t *tap_off;
    int ntaps;
    /* pw_conv_kernel only: at tap t, ask for the input of tap t + pf_taps
     * (0: no such requests). A 1x1 layer read where it lies (direct's view)
     * takes each tap from another plane, a new line from memory. */
    int pf_taps;
    /* pw_kernel only: a stream the caller reads next (a head's linear
     * weights), side_lines 64-byte lines of it asked for into L2 at each
     * block of 16 input channels, from side on (NULL: none) */
    const char *side;
    int side_lines;
};
typedef void (*pw_fn)(const struct pw_args *a);

/* The kernel for (vw, b), or NULL: b in 1..4, vw in 1..16, vw*b <= 28. */
pw_fn pw_kernel(int vw, int b);
/* The same kernel whose last of the b vectors holds at most 8 channels:
 * for an output whose channel count leaves 1..8 past a multiple of 16
 * (pw_half_tail), used for the block of vectors that ends it; the stored
 * vector's other 8 lanes are zero, as the full kernel stores them. */
pw_fn pw_kernel_half(int vw, int b);
/* Whether `channels` ends in a half vector: 1..8 channels past a multiple
 * of 16. */
int pw_half_tail(int64_t channels);
/* The largest vw with a kernel for b whose vw*b accumulators this build's
 * registers hold (PC_ACC_REGS, pc_kernels.h); 0 if none. */
int pw_max_vw(int b);

/* A small dense convolution (a network's first layer: few input channels)
 * with the same ending: acc[p][b] = bias[b] + sum over t < ntaps of
 * in[tap_off[t] + p*s] * w[(t*B + b)*16 ...], t running over (input block,
 * tap, channel) as pc_pack_weights orders them; no residual. s: 1 or 2 (the
 * column stride); NULL where there is no kernel (as pw_kernel). */
pw_fn pw_conv_kernel(int vw, int b, int s);

#endif
