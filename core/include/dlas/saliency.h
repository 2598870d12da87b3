/* Channel saliency for structured pruning: Fisher pruning's estimate of how
 * much the loss grows when a channel is removed, accumulated over
 * minibatches while training.
 *
 * Fisher saliency (L. Theis, I. Korshunova, A. Tejani, F. Huszár, "Faster
 * gaze prediction with dense networks and Fisher pruning", 2018; used by
 * E. J. Crowley et al., "A closer look at structured pruning for neural
 * network compression", 2018). For an activation a of N x C x H x W and the
 * gradient g of the training loss with respect to it, one minibatch gives
 * channel k the saliency
 *
 *     Delta_k = 1/(2N) sum_n ( sum_{h,w} a_nkhw g_nkhw )^2
 *
 * (sum_{h,w} a g is the derivative of the loss with respect to a mask m_k
 * multiplying the channel, taken at m_k = 1: removing the channel is the step
 * m_k = 1 -> 0, and Delta_k is the Fisher-information approximation of the
 * loss change it causes). The saliency used for a pruning decision is the sum
 * of Delta_k over the minibatches since the last reset.
 *
 * g is the gradient of the loss the trainer minimises, the minibatch MEAN of
 * the per-sample losses, exactly as in the authors' code (BayesWatch
 * pytorch-prunes, MaskBlock._fisher: 0.5 * mean_n (sum_hw a*g)^2 added to
 * running_fisher after every backward). Theis et al. write g for the
 * per-sample gradient, N times larger: the same ranking, scaled by N^2.
 *
 * Use it two ways:
 *   - while training: dlas_fisher_new, then dlas_fisher_attach to the
 *     trainer, which then accumulates after every backward pass (what the
 *     `fisher` compressor does between its pruning steps);
 *   - on your own minibatches: dlas_autograd_forward (DLAS_AG_TRAIN), put
 *     the loss gradient in, dlas_autograd_backward, then
 *     dlas_fisher_accumulate (e.g. BlockSwap's Fisher potential of a block
 *     at initialisation, summed over the block's activations).
 * The pure computation on two buffers is dlas_fisher_batch. */
#ifndef DLAS_SALIENCY_H
#define DLAS_SALIENCY_H

#include <stdint.h>

#include <dlas/train.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ADD the minibatch saliency Delta_k of channels k = 0..c-1 into delta[k]:
 * act and grad are n x c x hw (row-major, as autograd buffers are; hw = 1
 * for a flat n x c activation). Sums run in double. n >= 1. */
void dlas_fisher_batch(const float *act, const float *grad, int64_t n, int64_t c, int64_t hw,
                       double *delta);

/* An accumulator of Fisher saliency over the channels of a set of graph
 * nodes, named (names survive graph rewrites; ids may not). The nodes are
 * the activations whose channels may be removed: for a conv -> batchnorm ->
 * relu, name the relu (its output is what the channel carries, and the
 * autograd keeps both its activation and its gradient). A batchnorm fused
 * with its relu has no activation of its own: it is refused at the first
 * accumulate unless kept with dlas_autograd_keep before the forward. */
struct dlas_fisher;

/* Every name must be a node of g with a C x H x W (or flat C) output;
 * names are copied. The sums start at zero. */
int dlas_fisher_new(const struct dlas_graph *g, const char *const *nodes, int n_nodes,
                    struct dlas_fisher **out);
/* Channels tied across nodes (a residual stream: the outputs of every
 * block feeding one chain of adds are one channel each) are removed by one
 * mask on all of them, so their saliency is taken with the products summed
 * over the set before squaring: per sample, s_nk = sum_{v in set} sum_{h,w}
 * a^v_nkhw g^v_nkhw, and Delta_k = 1/(2N) sum_n s_nk^2. Entry i is the
 * set_size[i] names that follow in `nodes` (set_size NULL: one each), all
 * with the same channel count. dlas_fisher_node(f, i) names the set's first. */
int dlas_fisher_new_tied(const struct dlas_graph *g, int n_entries, const int *set_size,
                         const char *const *nodes, struct dlas_fisher **out);
/* Detaches it from its trainer first, if attached. NULL is fine. */
void dlas_fisher_free(struct dlas_fisher *f);

/* Add the minibatch saliency of the last forward/backward of `a` (call it
 * after dlas_autograd_backward, before the next forward). A node that
 * received no gradient in that pass adds zero. A node whose channel count
 * changed since its sums were sized (it was pruned) starts again from zero
 * at its new size. */
int dlas_fisher_accumulate(struct dlas_fisher *f, struct dlas_autograd *a);

/* Accumulate after every backward of the trainer's steps (an
 * after_backward hook) until detached. One trainer at a time. */
int dlas_fisher_attach(struct dlas_fisher *f, struct dlas_trainer *t);
void dlas_fisher_detach(struct dlas_fisher *f);

int dlas_fisher_n_nodes(const struct dlas_fisher *f); /* entries */
const char *dlas_fisher_node(const struct dlas_fisher *f, int i);
/* The summed saliency of node i's channels since the last reset (*channels
 * of them; 0 and NULL before the first accumulate that saw the node). The
 * pointer stays valid until the next accumulate or reset. */
const double *dlas_fisher_saliency(const struct dlas_fisher *f, int i, int64_t *channels);
/* Minibatches accumulated since the last reset (divide by it for the mean,
 * as the authors' code divides by prune_every). */
int64_t dlas_fisher_batches(const struct dlas_fisher *f);
/* Zero every sum and the batch count (after a pruning decision). */
void dlas_fisher_reset(struct dlas_fisher *f);

#ifdef __cplusplus
}
#endif
#endif
