/* A network's head as one kernel: a 1x1 convolution with its activation,
 * the global average pool of its output and a linear layer on the pooled
 * features, as MobileNet v2 ends (conv 320 -> 1280 on 7x7, pool, classifier
 * 1280 -> 1000; Sandler et al., CVPR 2018).
 *
 * Layer by layer, the 1x1 conv writes its whole output (1280x7x7) for the
 * pool to read back, and the linear layer, at batch 1 a matrix-vector
 * product, is a pass of its own over its weights (5 MB for MobileNet v2's
 * classifier), in a parallel region of its own. Here the work is split by
 * groups of the conv's output channels: an item computes its group's
 * channels over all pixels (the register-blocked micro-kernel of
 * pw_kernels.h), pools them as they leave the registers, and at once adds
 * the group's share of the linear layer (the weight columns of those
 * channels, packed into one contiguous run, read once for every image of
 * the batch) into a row of partial sums of its own. A last phase adds the
 * groups' partial sums in group order to the bias: the result does not
 * depend on the thread count. The group's linear weights are asked for
 * into L2 while its conv runs: at batch 1 the conv is bound by the
 * multiply-adds and the linear layer by memory, and in turn they left the
 * other's resource idle. (Measured once the weights lay in huge pages,
 * core/kernels/arena.c: MobileNet-v2's head alone 0.44 -> 0.41 ms with
 * its weights in memory, inside the plan 0.50 -> 0.43 ms on one thread and
 * 0.222 -> 0.212 on two. In 4 KiB pages the same requests had made it
 * 8-12% slower.)
 *
 * Phases, each a parallel range over independent items (as mbconv.h):
 *   pack   per (image, block of 16 input channels): NCHW -> [blk][pixel][16];
 *   main   per group: for every image, conv + activation + pool, then the
 *          group's partial sums of the linear layer;
 *   sum    per (image, 64 outputs): bias + the groups' partial sums.
 * Pure compute (no graph, no plugin): core/infer/plan_blocks.c finds heads. */
#ifndef DLAS_HEAD_H
#define DLAS_HEAD_H

#include <stddef.h>
#include <stdint.h>

struct hd_desc {
    int64_t in_c, hw; /* the conv's input per image: in_c x hw pixels, NCHW */
    int64_t mid_c;    /* the conv's outputs, the pooled features */
    int64_t out_c;    /* the linear layer's outputs */
    int act;          /* enum dlas_activation after the conv */
};

/* wc mid_c x in_c, wl out_c x mid_c (row-major, as the graph holds them);
 * biases may be NULL. */
struct hd_weights {
    const float *wc, *bc, *wl, *bl;
};

struct hd_kernel;

/* NULL with *why set when the head cannot be fused (malloc failure
 * included: "out of memory"). */
struct hd_kernel *hd_prepare(const struct hd_desc *d, const struct hd_weights *w, char *why,
                             size_t why_len);
void hd_free(struct hd_kernel *k);
size_t hd_workspace_floats(const struct hd_kernel *k, int64_t batch);
/* The conv's input already packed: per image [ceil(in_c/16)][hw][16], lanes
 * past in_c zero (a fused mobile block's unpadded blocked output,
 * mbconv.h's mb_set_io with out_pad 0); the pack phase then has nothing to
 * do. Default: NCHW. */
void hd_set_in_blocked(struct hd_kernel *k, int on);

enum hd_phase { HD_PACK, HD_MAIN, HD_SUM, HD_N_PHASES };
int64_t hd_items(const struct hd_kernel *k, enum hd_phase ph, int64_t batch);
/* in: the conv's NCHW input batch; out: batch x out_c; ws: the workspace. */
void hd_run(const struct hd_kernel *k, enum hd_phase ph, int64_t batch, const float *in,
            float *out, float *ws, int64_t i0, int64_t i1);

#endif
