/* Training a student network from the experiment's teacher, for the
 * compressors that derive students by block substitution (Moonshine,
 * BlockSwap, HAKD): one parameter set and one training routine, so that
 * their students are trained by the same recipe and compared fairly.
 *
 * The loss is Moonshine's (BayesWatch/pytorch-moonshine, main.py):
 *
 *     L = (1 - alpha) CE + alpha KD(T) + beta * (3 / n) * sum_j AT_j
 *
 * with AT_j = mean over samples and positions of (q_s - q_t)^2, q =
 * normalise(mean_c a^2), at the n attention points (the outputs of the
 * network's stages, or of every residual block). The factor 3/n is the
 * authors' (their default is the three WRN stages, at which it is 1). */
#ifndef DLAS_DISTIL_H
#define DLAS_DISTIL_H

#include <dlas/blocks.h>
#include <dlas/params.h>
#include <dlas/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parameter specs every student compressor shares, to put in its own
 * dlas_param_spec array (before the terminating entry). */
#define DLAS_DISTIL_PARAMS                                                                     \
    {"epochs", DLAS_PARAM_INT, 0, "-1", -1, 1000000, NULL,                                    \
     "epochs of distillation training of the student; -1 = the experiment's train.epochs, "   \
     "0 = build the student only"},                                                            \
    {"lr", DLAS_PARAM_FLOAT, 0, "0", 0, 100, NULL,                                            \
     "learning rate of the student's training; 0 = the experiment's train.lr (the rest of "   \
     "the recipe - schedule, momentum, weight decay, batch - is the experiment's)"},           \
    {"alpha", DLAS_PARAM_FLOAT, 0, "0", 0, 1, NULL,                                           \
     "weight of knowledge distillation against cross-entropy: (1-alpha) CE + alpha KD"},       \
    {"temperature", DLAS_PARAM_FLOAT, 0, "4", 0.01, 1000, NULL, "KD temperature T"},           \
    {"beta", DLAS_PARAM_FLOAT, 0, "1000", 0, 1e9, NULL,                                       \
     "attention-transfer weight: beta * 3/n * sum of the n points' mean squared "             \
     "attention differences (Moonshine's beta = 1e3)"},                                        \
    {"attention", DLAS_PARAM_ENUM, 0, "stages", 0, 0, "stages|blocks|none",                   \
     "attention points: the output of each stage (the papers'), of every residual block, "    \
     "or none"},                                                                               \
    {"init", DLAS_PARAM_ENUM, 0, "scratch", 0, 0, "scratch|teacher",                          \
     "student weights: all drawn afresh (the papers), or the teacher's where a layer is "     \
     "unchanged"}

/* Train ctx->graph, a student already rewritten from the teacher's
 * structure (whose residual blocks `blocks` were found on the teacher), by
 * the parameters above, from ctx->teacher with ctx->trainer. `who` prefixes
 * the figures added to the result row: <who>.train_seconds,
 * <who>.train_epochs, <who>.student_top1 (on the trainer's evaluation
 * split). With epochs 0 nothing is trained. Errors name the compressor. */
int dlas_distil_student(struct dlas_compress_ctx *ctx, const struct dlas_params *p,
                        const char *who, const struct dlas_residual_block *blocks,
                        int n_blocks);

/* Whether the parameters ask for the student's weights to be drawn afresh
 * ("init = scratch"). */
int dlas_distil_from_scratch(const struct dlas_params *p);

/* BlockSwap's Fisher potential of g at its current weights (Turner et al.
 * 2020): one train-mode forward of the n samples (batch statistics; running
 * statistics left alone), one cross-entropy backward, and, at each block's
 * probe (dlas_residual_block_probe: after the trunk's last convolution,
 * before the residual add), Fisher pruning's saliency Delta_c = 1/(2n)
 * sum_i (sum_hw a g)^2 per channel (Theis et al. 2018), summed in absolute
 * value over channels and blocks. threads: 0 = all. */
int dlas_fisher_potential(struct dlas_graph *g, const struct dlas_residual_block *blocks,
                          int n_blocks, int64_t n, const float *images, const int32_t *labels,
                          int threads, double *out);
struct dlas_autograd;
/* The same for the graph of autograd a (max_batch >= n), in its buffers:
 * scoring many graphs in turn through one autograd and
 * dlas_autograd_set_graph saves a new autograd per graph. */
int dlas_fisher_potential_with(struct dlas_autograd *a, const struct dlas_residual_block *blocks,
                               int n_blocks, int64_t n, const float *images,
                               const int32_t *labels, double *out);

#ifdef __cplusplus
}
#endif
#endif
