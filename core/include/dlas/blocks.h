/* Residual blocks and their cheap substitutes, for the compressors that
 * derive a student network from a teacher by swapping blocks (Moonshine,
 * Crowley et al. 2018; BlockSwap, Turner et al. 2020; HAKD).
 *
 * A block type names what replaces the two k x k convolutions of a residual
 * block, in the papers' notation (N: the channels a convolution runs on):
 *
 *   S         standard: the teacher's two full k x k convolutions, unchanged
 *   G(g)      each k x k convolution becomes a grouped k x k (g groups, on its
 *             input channels, carrying the stride), BN, ReLU, and a 1x1 to its
 *             output channels. G(N/s) has groups of s channels; DW = G(N),
 *             depthwise-separable
 *   B(b)      the pair becomes one bottleneck: 1x1 down to floor(N/b)
 *             channels, BN-ReLU, k x k (stride), BN-ReLU, 1x1 up to N
 *   BG(b,g)   the same with the k x k grouped (g groups, or N/s: groups of s)
 *
 * The papers' code names map as: Conv = S, DConv = DW, DConvA<g> = G(g),
 * DConvG<s> = G(N/s), ConvB<b> = B(b), A<g>B<b> = BG(b,g), G<s>B<b> =
 * BG(b,N/s); dlas_block_type_parse accepts both spellings.
 *
 * Node names follow those papers' code, so that a student built here from a
 * WRN teacher is node for node the `wrn` model plugin's cheap variant: a
 * replaced convolution "X.conv" (or "X") becomes "X.convdw", "X.bn",
 * "X.relu", "X.conv1x1"; a bottleneck of block "P" (its sum is "P.add") is
 * "P.conv1.conv1x1_down", ".bn1", ".relu1", ".conv", ".bn2", ".relu2",
 * ".conv1x1_up". */
#ifndef DLAS_BLOCKS_H
#define DLAS_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include <dlas/graph.h>
#include <dlas/rng.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dlas_block_kind {
    DLAS_BLOCK_STANDARD = 0,      /* S */
    DLAS_BLOCK_GROUPED,           /* G(g), G(N/s), DW */
    DLAS_BLOCK_BOTTLENECK,        /* B(b) */
    DLAS_BLOCK_GROUPED_BOTTLENECK /* BG(b,g), BG(b,N/s) */
};

struct dlas_block_type {
    enum dlas_block_kind kind;
    int groups;     /* G, BG: a fixed number of groups, or 0 when group_size is set */
    int group_size; /* G, BG: channels per group (groups = N / group_size); 1 = depthwise */
    int bottleneck; /* B, BG: b >= 1 */
};

/* "S", "G(4)", "G(N/16)", "G(N)", "DW", "B(2)", "BG(2,4)", "BG(2,N/8)", or
 * the papers' code names ("DConvA4", "ConvB2", "G8B2", ...). Blanks are
 * ignored; an unknown name is DLAS_ERR_INVALID with the accepted forms. */
int dlas_block_type_parse(const char *text, struct dlas_block_type *out);
/* The canonical name ("G(4)", "DW", "BG(2,N/8)") into buf; returns buf. */
const char *dlas_block_type_name(const struct dlas_block_type *t, char *buf, size_t len);
/* Groups of t's grouped convolution on `channels` channels (1 for a type
 * without one); 0 when they do not divide the channels. */
int dlas_block_type_groups(const struct dlas_block_type *t, int channels);
/* 0 if a block of in_c -> out_c channels can take type t; otherwise
 * DLAS_ERR_INVALID saying which convolution's groups do not fit. */
int dlas_block_type_check(const struct dlas_block_type *t, int in_c, int out_c);
/* Parameters of what t puts in place of a block's two k x k convolutions
 * and the batchnorm between them, for a block of in_c -> out_c channels:
 * convolution weights, plus (with_bn) the batchnorms' gamma and beta. For
 * in_c = out_c = N and with_bn = 0 these are the papers' formulas:
 * S 2N^2k^2, G(g) 2(N^2k^2/g + N^2), B(b) (N/b)^2k^2 + 2N^2/b,
 * BG(b,g) (N/b)^2k^2/g + 2N^2/b. -1 when t does not fit. */
int64_t dlas_block_type_params(const struct dlas_block_type *t, int in_c, int out_c, int k,
                               int with_bn);

/* ---- residual blocks of a graph ------------------------------------------
 *
 * A residual block here is a sum (an add node of two inputs) whose trunk is
 * a chain of exactly two k x k convolutions (ungrouped, stride equal in both
 * directions, padding k/2, no dilation) with batchnorm, ReLU or dropout
 * between and around them, and whose other input is the block input itself
 * or one 1x1 projection of it: the blocks of WRN and of the basic-block
 * ResNets, pre- or post-activation. */
struct dlas_residual_block {
    char add[DLAS_NAME_MAX];     /* the sum; it keeps its name through substitution */
    char prefix[DLAS_NAME_MAX];  /* the block's name: add's name less its last ".part" */
    char conv[2][DLAS_NAME_MAX]; /* the trunk's first and last convolution */
    int trunk_input;             /* which input of the sum is the trunk (0 or 1) */
    int in_c, out_c, k, stride;  /* of the trunk */
    int64_t out_h, out_w;
    int64_t trunk_params;        /* of the nodes from conv[0] to conv[1] */
    int stage_end;               /* 1 when the next block changes resolution or width,
                                  * or none follows: the papers' attention points */
};

/* Every residual block of g, in graph order. Free *blocks with free(). */
int dlas_graph_residual_blocks(const struct dlas_graph *g, struct dlas_residual_block **blocks,
                               int *n_blocks);
/* Replace the trunk of block b (found on g or on a graph of the same
 * structure) by block type t; S leaves it as it is. New weights are drawn
 * from rng (the graph's usual initialisation) or, with rng NULL, left zero.
 * The graph is unchanged on failure. */
int dlas_graph_substitute_block(struct dlas_graph *g, const struct dlas_residual_block *b,
                                const struct dlas_block_type *t, struct dlas_rng *rng);
/* The id of the node that feeds b's sum from the trunk (after the trunk's
 * last convolution, before the residual add: BlockSwap's probe), or -1. */
int dlas_residual_block_probe(const struct dlas_graph *g, const struct dlas_residual_block *b);

#ifdef __cplusplus
}
#endif
#endif
