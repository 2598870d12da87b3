/* Graph surgery for compressors: removing channels and replacing blocks.
 *
 * Every rewrite either succeeds whole, leaving a graph whose shapes have been
 * re-inferred and which validates (so the reference forward runs), or fails
 * with the graph untouched and a message saying why.
 *
 * Tied channels. Removing one channel can force removing others, because
 * operators read channels of one tensor as channels of another:
 *   - batchnorm, relu, relu6, pooling, dropout: output channel i is input
 *     channel i;
 *   - add: channel i of both inputs and of the output are one channel, so a
 *     residual stream ties the outputs of every conv that feeds it (an
 *     identity shortcut ties a block's last conv to the block's input);
 *   - concat: each output channel is the input channel it copies (offsets
 *     shift when an earlier input loses channels);
 *   - depthwise conv (groups == input channels > 1): output channel c*m+j is
 *     derived from input channel c (m = the channel multiplier), so it follows
 *     its input;
 *   - flatten: features c*H*W .. (c+1)*H*W-1 are channel c.
 * Other convs and linear layers start fresh channels ("sources"). A class of
 * tied channels is removed as a whole, from every tensor it runs through, or
 * not at all: it cannot be removed when it contains a channel of the network
 * input, of the network output (the last node), or of a softmax (which
 * normalises across channels). */
#ifndef DLAS_SURGERY_H
#define DLAS_SURGERY_H

#include <stdint.h>

#include <dlas/graph.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Source nodes whose output channels are tied to one another, and the
 * independent channels (classes of tied channels) they share. */
struct dlas_channel_group {
    int n_members;
    int *members;       /* source node ids (convs but depthwise ones, linears), ascending */
    int64_t n_channels; /* independent channels of the group */
    /* Per independent channel k: a member output channel standing for it
     * (remove it with dlas_graph_prune_channels(g, node[k], keep) where
     * keep[channel[k]] == 0), and whether it can be removed at all. In a
     * plain group every member has n_channels channels and channel k of each
     * is independent channel k. */
    int *node;
    int64_t *channel;
    uint8_t *prunable;
    int64_t n_prunable;
};

/* Every group of the graph, ordered by first member. Free with
 * dlas_channel_groups_free. */
int dlas_graph_channel_groups(const struct dlas_graph *g, struct dlas_channel_group **groups,
                              int *n_groups);
void dlas_channel_groups_free(struct dlas_channel_group *groups, int n_groups);

/* Remove the output channels c of node `id` (a conv2d or linear layer) where
 * keep[c] == 0; keep has one byte per output channel. Every channel tied to a
 * removed one goes too: rows of the producing convs' and linears' weights and
 * biases, the entries of batchnorms, the input columns of consuming convs and
 * linears (for a linear after a flatten, the H*W features of each channel),
 * and depthwise convs together with their groups. Masks are sliced with their
 * tensors. A grouped conv (not depthwise) must lose as many channels from
 * each of its groups, on input and on output.
 *
 * Refused, with the reason, when a removed channel is tied to the network
 * input, the network output or a softmax; when a kept channel of `id` is tied
 * to a removed one; when a tensor would be left with no channels; or when a
 * grouped conv's groups would become unequal. */
int dlas_graph_prune_channels(struct dlas_graph *g, int id, const uint8_t *keep);

/* Mask instead of remove (what a pruner does while it fine-tunes, as the
 * papers' code multiplies channels by a 0/1 mask): the channels c of node
 * `id` where keep[c] == 0, and every channel tied to them, are made exactly
 * zero in every tensor they run through, without changing any shape. The
 * rows of the producing convs and linears (depthwise convs too) and their
 * biases, and the scale and shift of the batchnorms on the way, get mask 0
 * (so training keeps them at zero: dlas_sgd_step). relu, pooling, add and
 * concat of zeros are zero, so the masked network computes what the network
 * with those channels removed computes. Refused, graph untouched, wherever
 * dlas_graph_prune_channels would refuse, and when these channels together
 * with those masked before could not all be removed (e.g. a layer's last). */
int dlas_graph_mask_channels(struct dlas_graph *g, int id, const uint8_t *keep);
/* 1 if output channel c of node id (a conv, linear or batchnorm) is masked:
 * its weight row and its bias (a batchnorm's scale and shift) all mask 0. */
int dlas_graph_channel_masked(const struct dlas_graph *g, int id, int64_t c);
/* Physically remove every class of tied channels that is masked everywhere
 * it gets a value (every conv, linear and batchnorm in it), all in one pass,
 * sliced and refused as dlas_graph_prune_channels slices and refuses; the
 * output does not change. *removed (may be NULL) counts the independent
 * channels removed. Masking and removing cost one pass over the graph a
 * call, however many channels are masked already. */
int dlas_graph_remove_masked_channels(struct dlas_graph *g, int64_t *removed);

/* Build a replacement block: append nodes to `g`, which holds only an input
 * node `in` shaped as the block's input, and return the id of the block's
 * output node (>= 0) or a negative status. Builders leave weights zero (BN
 * at identity): initialise them here if they must be (dlas_graph_init_weights
 * on g), or load them afterwards. */
typedef int (*dlas_block_builder)(void *ctx, struct dlas_graph *g, int in);

/* Replace the block between the nodes named `from` (whose output is the
 * block's input) and `to` (the block's output): every node on a path from
 * `from` to `to`, `to` included. The block must have a single entry and a
 * single exit: its nodes read only `from` and each other, and nothing
 * outside it reads any of its nodes but `to`. The new block's nodes take the
 * old ones' place; whatever read `to` reads the new output, which must have
 * `to`'s shape. The new nodes keep their names, which must not clash with
 * the nodes that remain (the old block's names are free again). */
int dlas_graph_replace_block(struct dlas_graph *g, const char *from, const char *to,
                             dlas_block_builder build, void *ctx);
/* The same with the new block given as a graph: its input node stands for
 * `from` and its last node is the block's output. Its nodes and parameters
 * are copied; `block` is not changed. */
int dlas_graph_replace_block_graph(struct dlas_graph *g, const char *from, const char *to,
                                   const struct dlas_graph *block);

#ifdef __cplusplus
}
#endif
#endif
