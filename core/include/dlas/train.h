/* Training: a forward pass that keeps what backward needs, backward for
 * every op of the graph, losses (cross-entropy, knowledge distillation,
 * attention transfer), SGD with learning-rate schedules, and a trainer that
 * runs epochs over a dlas_data pipeline with evaluation, checkpoints,
 * progress and hooks for compressors.
 *
 * Everything runs in float32 on the CPU: convolutions as direct AVX-512
 * kernels or OpenBLAS GEMMs, linear layers as GEMMs, the rest as OpenMP
 * loops. Every sum is taken in an order fixed by the shapes alone, so
 * results depend only on the seed: the same seed gives the same losses and
 * weights, bit for bit, on any number of threads, and a run resumed from a
 * checkpoint finishes where an uninterrupted one would. */
#ifndef DLAS_TRAIN_H
#define DLAS_TRAIN_H

#include <stdint.h>

#include <dlas/data.h>
#include <dlas/graph.h>
#include <dlas/params.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- autograd: forward with saved activations, and backward -------------
 *
 * An autograd binds a graph (borrowed, its weights used in place) and holds,
 * for batches of up to max_batch samples, every node's activation and
 * gradient and each parameter's gradient. A forward computes the
 * activations; the caller then puts d(loss)/d(activation) into the gradient
 * of the output node (and of any other node, for losses on intermediate
 * activations), and backward propagates them to every node and parameter.
 *
 * Activations and gradients are batch x (the node's per-sample shape),
 * row-major, so sample b, channel c, position s of a C x H x W node is at
 * [(b * C + c) * H * W + s]. */
struct dlas_autograd;

/* Forward flags. */
#define DLAS_AG_TRAIN 0x1u      /* batchnorm on batch statistics, dropout active */
#define DLAS_AG_NO_GRAD 0x2u    /* no backward will follow: keep nothing for it */
#define DLAS_AG_KEEP_STATS 0x4u /* TRAIN without updating BN running statistics */
/* The backward after this forward computes only what the kept nodes'
 * gradients (dlas_autograd_keep; and the input's, if wanted) need: nodes
 * upstream of all of them are skipped, and convolutions skip their weight
 * gradients. Parameter gradients mean nothing after it. For saliencies
 * (BlockSwap's Fisher potential), about a third cheaper than a full one. */
#define DLAS_AG_ACT_GRAD_ONLY 0x8u

/* threads: 0 = omp_get_max_threads(). The graph must validate; the
 * autograd follows later rewrites of it (see dlas_autograd_sync). */
int dlas_autograd_new(struct dlas_graph *g, int64_t max_batch, int threads,
                      struct dlas_autograd **out);
void dlas_autograd_free(struct dlas_autograd *a);
struct dlas_graph *dlas_autograd_graph(const struct dlas_autograd *a);
int dlas_autograd_threads(const struct dlas_autograd *a);
int64_t dlas_autograd_max_batch(const struct dlas_autograd *a);
/* Re-read the graph after a rewrite (pruning, block replacement): buffers
 * are rebuilt (and parameter gradients zeroed) when a shape, an op or a
 * parameter tensor changed. Forward and the optimiser call it themselves. */
int dlas_autograd_sync(struct dlas_autograd *a);
/* Point the autograd at another graph (the next candidate of an
 * architecture search, say) and build its buffers now, reusing the memory
 * of the old ones where it suffices: cheaper than a new autograd per graph.
 * Keeps the thread count, max_batch and input-gradient choice; forgets keeps
 * and profiling. The old graph is no longer referenced. */
int dlas_autograd_set_graph(struct dlas_autograd *a, struct dlas_graph *g);
/* A batchnorm whose only consumer is a relu is computed together with it:
 * its own activation and gradient are not materialised (act and grad return
 * NULL for it) unless it is kept, before the forward. The keep lasts until
 * the graph changes shape. */
int dlas_autograd_keep(struct dlas_autograd *a, int id);
/* Also compute d(loss)/d(input) (off by default: nothing else needs it). */
void dlas_autograd_want_input_grad(struct dlas_autograd *a, int on);
/* Seed of the dropout masks of the next forward: a mask element is a
 * function of (seed, node, element) alone, whatever the thread count. */
void dlas_autograd_set_seed(struct dlas_autograd *a, uint64_t seed);

/* input: batch x C x H x W (copied). */
int dlas_autograd_forward(struct dlas_autograd *a, int64_t batch, const float *input,
                          unsigned flags);
int64_t dlas_autograd_batch(const struct dlas_autograd *a); /* of the last forward */
/* A node's activation from the last forward (NULL for a bad id, or a
 * batchnorm folded into its relu). */
const float *dlas_autograd_act(const struct dlas_autograd *a, int id);
/* A node's gradient buffer. After a forward every gradient is zero; the
 * first call for a node in a pass clears it, so callers may add into it.
 * NULL (with a message) for a node no parameter or wanted input gradient
 * depends on. Readable after backward. */
float *dlas_autograd_grad(struct dlas_autograd *a, int id);
/* 1 if the node's gradient holds data in this pass (else it is all zero). */
int dlas_autograd_has_grad(const struct dlas_autograd *a, int id);
/* Propagate the gradients given since the last forward back to every node
 * and ADD the parameter gradients into the buffers below. */
int dlas_autograd_backward(struct dlas_autograd *a);
/* Gradients of a node's weight (which = 0) or bias (which = 1): conv and
 * linear weight and bias, batchnorm gamma and beta. Same shape as the
 * parameter; NULL if the node has no such parameter. */
struct dlas_tensor *dlas_autograd_param_grad(struct dlas_autograd *a, int id, int which);
void dlas_autograd_zero_grad(struct dlas_autograd *a);
/* Dropout's keep mask (1 kept, 0 dropped) of the last TRAIN forward,
 * batch x numel; NULL otherwise. */
const uint8_t *dlas_autograd_dropout_mask(const struct dlas_autograd *a, int id);
/* Logits for a loss: the output node, or its input when the graph ends in
 * a softmax (losses work on logits). Returns the node id. */
int dlas_autograd_logits_node(const struct dlas_autograd *a);
/* Per-node wall time of forward and backward kernels, summed over the
 * passes since profiling was turned on (which also clears it); NULL while
 * off. Indexed by node id. */
void dlas_autograd_profile(struct dlas_autograd *a, int on);
const double *dlas_autograd_profile_seconds(const struct dlas_autograd *a, int backward);

/* ---- losses ---------------------------------------------------------------
 * Each returns the loss (a mean over the batch) and, when grad is not NULL,
 * ADDS scale * d(loss)/d(input) into it. Sums run in double. */

/* Softmax cross-entropy of logits (n x classes) against labels, with label
 * smoothing eps (PyTorch's: target (1 - eps) one-hot + eps / classes). */
double dlas_loss_xent(const float *logits, const int32_t *labels, int64_t n, int64_t classes,
                      double smoothing, float *grad, double scale);
/* Knowledge distillation (Hinton et al. 2015): T^2 KL(p_t || p_s) with p =
 * softmax(logits / T), the batch mean of the per-sample divergence.
 * Gradient only into the student. The trainer adds it as
 * (1 - alpha) CE + alpha KD. */
double dlas_loss_kd(const float *student, const float *teacher, int64_t n, int64_t classes,
                    double temperature, float *grad, double scale);
/* Attention transfer (Zagoruyko & Komodakis 2017): with the spatial map
 * Q = mean over channels of a^2, q = Q / ||Q||_2 per sample, the loss is
 * the mean over samples and positions of (q_s - q_t)^2, as their code's
 * at_loss. student: n x cs x hw, teacher: n x ct x hw (channel counts may
 * differ, positions must not). Gradient only into the student. */
double dlas_loss_at(const float *student, int64_t cs, const float *teacher, int64_t ct,
                    int64_t n, int64_t hw, float *grad, double scale);
/* Top-1 and top-5 hits of a batch of logits (either pointer may be NULL). */
void dlas_topk_hits(const float *logits, const int32_t *labels, int64_t n, int64_t classes,
                    int64_t *top1, int64_t *top5);

/* ---- SGD ------------------------------------------------------------------
 * PyTorch's torch.optim.SGD: g = grad + wd * w; v = momentum * v + g (v = g
 * at the first step); w -= lr * (nesterov ? g + momentum * v : v). Weight
 * decay skips batchnorm parameters and biases when decay_bn_bias is 0.
 * Pruned weights (mask 0) get no gradient and no decay and stay exactly 0. */
struct dlas_sgd_options {
    double momentum, weight_decay;
    int nesterov;
    int decay_bn_bias;
};
struct dlas_sgd;
int dlas_sgd_new(const struct dlas_sgd_options *o, struct dlas_sgd **out);
void dlas_sgd_free(struct dlas_sgd *s);
/* One update of every parameter of a's graph from a's gradients. Velocity
 * is kept per parameter by name ("<node>.weight"), so it survives graph
 * rewrites; a parameter whose shape changed starts again from zero. */
int dlas_sgd_step(struct dlas_sgd *s, struct dlas_autograd *a, double lr);
/* Velocities, for checkpoints: count, name and tensor of the i-th. */
int dlas_sgd_n_states(const struct dlas_sgd *s);
const char *dlas_sgd_state_name(const struct dlas_sgd *s, int i);
const struct dlas_tensor *dlas_sgd_state(const struct dlas_sgd *s, int i);
/* Set (replace or add) the velocity of a parameter by name (copied). */
int dlas_sgd_set_state(struct dlas_sgd *s, const char *name, const struct dlas_tensor *v);
void dlas_sgd_reset(struct dlas_sgd *s);

/* ---- learning-rate schedules ---------------------------------------------
 * Rates are per optimiser step. Warm-up ramps linearly from lr / warmup_steps
 * to lr over the first warmup_steps steps; after it, step multiplies by
 * gamma every step_size epochs, multistep at each milestone epoch, and
 * cosine anneals from lr to lr_min over the steps after warm-up (per step,
 * not per epoch). */
enum dlas_lr_kind { DLAS_LR_CONSTANT = 0, DLAS_LR_STEP, DLAS_LR_MULTISTEP, DLAS_LR_COSINE };
#define DLAS_LR_MAX_MILESTONES 16
struct dlas_lr_schedule {
    enum dlas_lr_kind kind;
    double lr, lr_min, gamma;
    int64_t steps_per_epoch, total_steps, warmup_steps;
    int64_t step_size; /* epochs */
    int n_milestones;
    int64_t milestones[DLAS_LR_MAX_MILESTONES]; /* epochs, ascending */
};
double dlas_lr_at(const struct dlas_lr_schedule *s, int64_t step);
int dlas_lr_kind_parse(const char *name, enum dlas_lr_kind *out);
const char *dlas_lr_kind_name(enum dlas_lr_kind k);

/* ---- evaluation ----------------------------------------------------------- */
struct dlas_eval {
    int64_t n;
    double loss; /* mean cross-entropy (no smoothing) */
    double top1, top5;
};
/* The whole split s of d in eval mode, batch by batch. */
int dlas_evaluate(struct dlas_autograd *a, struct dlas_data *d, enum dlas_data_split s,
                  struct dlas_eval *out);

/* ---- the trainer ------------------------------------------------------------ */
struct dlas_train_options {
    uint32_t size; /* set by dlas_train_options_default; fields are append-only */
    int64_t epochs, batch;
    double lr, momentum, weight_decay;
    int nesterov, decay_bn_bias;
    enum dlas_lr_kind schedule;
    double lr_min, gamma;
    int64_t step_size;
    int n_milestones;
    int64_t milestones[DLAS_LR_MAX_MILESTONES];
    int64_t warmup; /* epochs */
    double label_smoothing;
    uint64_t seed;  /* dropout and the data order (through the data's own seed) */
    int threads;    /* 0: all cores */
    /* Checkpoints (written atomically) when checkpoint_path is set: after
     * every checkpoint_every epochs and every checkpoint_steps steps (0: off).
     * A present checkpoint is resumed from. */
    const char *checkpoint_path;
    int64_t checkpoint_every, checkpoint_steps;
    const char *csv_path; /* per-epoch metrics, rewritten atomically each epoch */
    int progress;         /* 1 bar, 0 log lines, -1 bar when stderr is a TTY */
    double log_interval;  /* seconds between log lines without a bar */
    int eval_every;       /* epochs between evaluations (0: never); the last always */
    int eval_split;       /* enum dlas_data_split; -1: VAL if it has samples, else TEST */
    int64_t max_steps;    /* stop an epoch after this many steps (0: whole epochs); tests */
    const char *label;    /* prefix of progress and log lines */
};
/* Defaults: the `train` config group's. */
void dlas_train_options_default(struct dlas_train_options *o);
/* The `train` config group's parameters, and turning validated ones into
 * options (strings in o point into p, which must outlive o). */
const struct dlas_param_spec *dlas_train_param_spec(void);
int dlas_train_options_from_params(const struct dlas_params *p, struct dlas_train_options *o);

/* Figures of one epoch (also the rows of the CSV). */
struct dlas_epoch_metrics {
    int64_t epoch; /* from 1 */
    int64_t steps, samples;
    double lr;     /* at the epoch's last step */
    double train_loss, train_top1;
    int evaluated; /* 1 when the eval_* fields hold an evaluation */
    int eval_split;
    double eval_loss, eval_top1, eval_top5;
    double seconds, images_per_s;
};

struct dlas_trainer;

/* What a hook sees of one step. */
struct dlas_train_step {
    int64_t epoch;      /* from 0 */
    int64_t step;       /* global, from 0 */
    int64_t index;      /* within the epoch */
    int64_t n;          /* samples */
    double lr;
    double loss;        /* so far: the losses, and extra_loss terms once added */
    const float *input; /* n x C x H x W */
    const int32_t *labels;
};

/* Callbacks for compressors. Any may be NULL; a non-zero return stops
 * training with that status. */
struct dlas_train_hook {
    uint32_t size;
    void *ctx;
    /* After the forward, before backward: add a loss term by adding its
     * gradient into dlas_autograd_grad() of any node and its value to *loss. */
    int (*extra_loss)(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s,
                      double *loss);
    /* After backward, before the optimiser step: every activation and its
     * gradient is readable (e.g. Fisher pruning's activation x gradient). */
    int (*after_backward)(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s);
    /* After the step; may rewrite the graph (the trainer follows). */
    int (*after_step)(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s);
    int (*end_epoch)(void *ctx, struct dlas_trainer *t, const struct dlas_epoch_metrics *m);
};

/* Distillation from a teacher graph (borrowed; run in eval mode). The loss
 * becomes (1 - alpha) CE + alpha KD(T) + beta/2 sum_j AT(pair j), with
 * AT pairs given as student and teacher node names (Zagoruyko & Komodakis'
 * beta/2 weighting; their beta is 1e3). */
#define DLAS_MAX_AT_PAIRS 16
struct dlas_distill {
    double alpha, temperature, beta;
    int n_pairs;
    const char *student[DLAS_MAX_AT_PAIRS], *teacher[DLAS_MAX_AT_PAIRS];
};

/* g and data are borrowed. */
int dlas_trainer_new(struct dlas_graph *g, struct dlas_data *data,
                     const struct dlas_train_options *o, struct dlas_trainer **out);
void dlas_trainer_free(struct dlas_trainer *t);
int dlas_trainer_add_hook(struct dlas_trainer *t, const struct dlas_train_hook *h);
/* Remove every hook whose ctx is `ctx` (a compressor that is done, so that
 * later steps of the chain never call into it). Returns how many went. */
int dlas_trainer_remove_hooks(struct dlas_trainer *t, const void *ctx);
/* From a hook: make dlas_trainer_fit return DLAS_OK after the step in
 * progress (e.g. a pruner that reached its target). The epoch in progress is
 * left unfinished: no metrics row, no evaluation; epoch and step counts keep
 * what was done. */
void dlas_trainer_stop(struct dlas_trainer *t);
int dlas_trainer_set_teacher(struct dlas_trainer *t, const struct dlas_graph *teacher,
                             const struct dlas_distill *d);
/* A new recipe (e.g. a compressor's fine-tuning): epochs and step count
 * start again from 0, velocities are cleared; graph, data, hooks and the
 * teacher stay. */
int dlas_trainer_reset(struct dlas_trainer *t, const struct dlas_train_options *o);
/* Train up to the options' epochs, resuming from the checkpoint if one is
 * there. Ends with the model in the state of the last step. */
int dlas_trainer_fit(struct dlas_trainer *t);
/* ABI 1.5: the training a compressor does between its own steps (pruning
 * while fine-tuning, recovering after a sparsity step): the trainer is reset
 * to its recipe at a constant learning rate lr (<= 0: the recipe's), without
 * warm-up, evaluation, checkpoint or CSV, logged as `label`, for the whole
 * epochs that cover at least `steps` steps; after_step(hook_ctx, ...) runs
 * after every step and ends the training early with dlas_trainer_stop. The
 * hook is removed at the end. */
int dlas_trainer_fit_steps(struct dlas_trainer *t, const char *label, double lr, int64_t steps,
                           int (*after_step)(void *hook_ctx, struct dlas_trainer *t,
                                             const struct dlas_train_step *s),
                           void *hook_ctx);
/* Evaluate the trainer's graph on split s. */
int dlas_trainer_evaluate(struct dlas_trainer *t, enum dlas_data_split s, struct dlas_eval *out);
struct dlas_autograd *dlas_trainer_autograd(struct dlas_trainer *t);
struct dlas_graph *dlas_trainer_graph(struct dlas_trainer *t);
struct dlas_data *dlas_trainer_data(struct dlas_trainer *t);
const struct dlas_train_options *dlas_trainer_options(const struct dlas_trainer *t);
int64_t dlas_trainer_epoch(const struct dlas_trainer *t); /* epochs completed */
int64_t dlas_trainer_step(const struct dlas_trainer *t);  /* steps completed */
/* Metrics of completed epochs (n of them). */
const struct dlas_epoch_metrics *dlas_trainer_history(const struct dlas_trainer *t, int64_t *n);
/* Checkpoint: weights, masks, running statistics, velocities, RNG, epoch,
 * step and the metric history; written atomically. */
int dlas_trainer_save(struct dlas_trainer *t, const char *path);
int dlas_trainer_load(struct dlas_trainer *t, const char *path);

#ifdef __cplusplus
}
#endif
#endif
