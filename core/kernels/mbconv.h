/* A mobile block as one fused kernel: [1x1 expansion ->] 3x3 depthwise ->
 * 1x1 projection [+ the block's input], each with its bias (batchnorm
 * folded in) and activation: MobileNet v2's inverted residual (Sandler et
 * al., CVPR 2018) and v1's depthwise-separable pair (Howard et al., 2017).
 *
 * Layer by layer, the expanded activation (6x the block's width) goes to
 * memory and back three times and every layer packs its input into the
 * channel-blocked layout and scatters its output back to NCHW. Here it runs
 * in three phases, each a parallel range over independent items:
 *
 *   pack      the block input, NCHW -> channel-blocked [blk][row][col][16]
 *             (padded by one pixel when there is no expansion);
 *   hidden    per (image, group of 16-channel hidden blocks): the expansion
 *             (the register-blocked micro-kernel of pc_kernels.h, one image
 *             row at a time) into a ring of three rows, which the depthwise
 *             3x3 consumes as soon as its rows are there: the expanded
 *             activation never leaves L1/L2, and every expanded row is
 *             computed once. The depthwise output D ([blk][pixel][16]) is
 *             all that is written;
 *   project   per (image, 16..64 output channels, run of pixels): the 1x1
 *             projection of D (the same micro-kernel), scattered to NCHW,
 *             the block input added and the activation applied on the way.
 *
 * Between consecutive blocks the activation need not go back to NCHW at
 * all: mb_set_io() lets a block read its input already in its own packed
 * layout (the pack phase then has nothing to do) and write its output in
 * the packed layout the next block reads (channel blocks of 16, padded by
 * one zero pixel when that block has no expansion), so a chain of blocks
 * converts only where it starts and where it ends.
 *
 * Depthwise channels are independent, so the hidden phase splits the
 * expansion's output channels over the threads with no reduction and no
 * halo recomputation. That leaves D, an image's whole depthwise output, to
 * go through memory between the phases: at high resolution (MobileNet-v2's
 * 112x112 to 14x14 stages, where D is 0.3-1.8 MB) it leaves L2. There the row
 * schedule runs the hidden phase and the projection together, one output
 * row at a time, over bands of rows instead of channel groups: every hidden
 * channel's expanded rows in the ring, their depthwise row, and at once its
 * projection, so D is one row in L1; the one expanded row past each end
 * of a band's own rows is its neighbour's, computed once by that
 * neighbour before the bands run. Pure compute (no graph, no plugin): the plan
 * (core/infer/plan_blocks.c) finds the blocks and drives the phases. */
#ifndef DLAS_MBCONV_H
#define DLAS_MBCONV_H

#include <stddef.h>
#include <stdint.h>

struct mb_desc {
    int64_t in_c, h, w; /* block input, NCHW per image */
    int expand;         /* a 1x1 expansion in_c -> hid_c comes first */
    int64_t hid_c;      /* depthwise channels (in_c without expansion) */
    int stride;         /* of the depthwise 3x3 (padding 1): 1 or 2 */
    int64_t out_c;      /* projection output channels */
    int act_e, act_d, act_p; /* enum dlas_activation after each conv */
    int residual;       /* add the block input (stride 1, in_c == out_c) */
    int act_r;          /* activation after the add */
    int schedule;       /* enum mb_schedule */
    /* The expansion: 1 (or 0), a 1x1 conv; 3, a dense 3x3 conv (padding 1,
     * stride expand_stride: 1 or 2) of at most 16 input channels: a
     * network's first layer, as MobileNet v1/v2's stem (3 -> 32, stride 2)
     * feeding the first depthwise separable block. Its input then stays
     * NCHW, zero-padded row by row by the items that read it, each into
     * its thread's own copy (there are no pack items), and the expanded map is
     * (h-1)/expand_stride+1 x (w-1)/expand_stride+1. */
    int expand_k, expand_stride;
    int threads;        /* the block will run on (MB_SCHED_AUTO weighs it); 0: 1 */
};

/* MB_SCHED_AUTO: rows when an image's depthwise output is large (>= 256 KiB,
 * which the group schedule writes whole before projecting it) and has rows
 * for a band of 4 or more per thread (at least 8), else groups. */
enum mb_schedule { MB_SCHED_AUTO, MB_SCHED_GROUPS, MB_SCHED_ROWS };

/* Weights in the usual layouts (OIHW): we hid_c x in_c (NULL without
 * expansion), wd hid_c x 1 x 3 x 3, wp out_c x hid_c; biases may be NULL. */
struct mb_weights {
    const float *we, *be, *wd, *bd, *wp, *bp;
};

struct mb_block;

/* Checks d, packs the weights; NULL with *why set when the block cannot be
 * fused (malloc failure included). */
struct mb_block *mb_prepare(const struct mb_desc *d, const struct mb_weights *w, char *why,
                            size_t why_len);
void mb_free(struct mb_block *b);
int64_t mb_out_h(const struct mb_block *b);
int64_t mb_out_w(const struct mb_block *b);

/* The block's input and output layouts (default: NCHW both).
 * in_blocked: the input is per image [ceil(in_c/16)][rows][cols][16],
 * rows x cols = h x w with an expansion, (h+2) x (w+2) with zero borders
 * without one (mb_in_pad), i.e. what the pack phase would write, lanes
 * past in_c zero. out_pad -1: NCHW output; 0 or 1: the output
 * per image as [ceil(out_c/16)][oh+2p][ow+2p][16] (p = out_pad), borders
 * and lanes past out_c zero, as the next block's in_blocked input. */
void mb_set_io(struct mb_block *b, int in_blocked, int out_pad);
int mb_in_pad(const struct mb_block *b);
/* Whether the block can read its input blocked (not with a 3x3 expansion:
 * mb_set_io then keeps it NCHW). */
int mb_takes_blocked(const struct mb_block *b);
/* Floats of one image's output in the layout set (NCHW: out_c*oh*ow). */
int64_t mb_out_floats(const struct mb_block *b);

/* Workspace of a batch, or of any smaller one, run on `threads` threads,
 * in floats (a plan sizes it once, for its largest batch). */
size_t mb_workspace_floats(const struct mb_block *b, int64_t batch, int threads);

/* The schedule mb_prepare chose (MB_SCHED_GROUPS or MB_SCHED_ROWS). */
int mb_schedule_of(const struct mb_block *b);

/* The phases: items of each for a batch on `threads` threads (the hidden
 * phase splits each image's rows into bands when its (image, group) items
 * would leave a thread idle). With the row schedule the projection phase
 * runs the (image, band of rows) items, hidden rows, depthwise and
 * projection together; when an image is split into bands, the hidden
 * phase first computes, per (image, band), the band's first and last
 * expanded rows, which the neighbouring band reads instead of computing
 * them again. And the range functions (thread: 0 ..
 * threads-1, which selects the thread's part of the workspace; the same
 * threads as mb_items'). in and
 * out are NCHW batches; ws from mb_workspace_floats. Phases run in order,
 * each over all its items, before the next starts. */
enum mb_phase { MB_PACK, MB_HIDDEN, MB_PROJECT, MB_N_PHASES };
int64_t mb_items(const struct mb_block *b, enum mb_phase ph, int64_t batch, int threads);
void mb_run(const struct mb_block *b, enum mb_phase ph, int64_t batch, const float *in,
            float *out, float *ws, int threads, int64_t i0, int64_t i1, int thread);

#endif
