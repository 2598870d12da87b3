/* What structured (channel) pruners share: the channels they may remove, as
 * units of tied channels with the activations that carry them, and the cost
 * of the network once its masked channels are removed.
 *
 * A pruner typically: lists the units (dlas_prune_units_find), scores the
 * live ones (a weight norm, Fisher saliency on unit->acts, an activation
 * statistic), masks the lowest with dlas_graph_mask_channels (so that
 * fine-tuning keeps it at zero and the network computes what the pruned one
 * will), measures the cost (dlas_prune_cost, or the latency of the pruned
 * copy through dlas_compress_latency) against its target, and at the end
 * removes the masked channels with dlas_graph_remove_masked_channels. */
#ifndef DLAS_PRUNE_H
#define DLAS_PRUNE_H

#include <stdint.h>

#include <dlas/graph.h>
#include <dlas/plugin.h>
#include <dlas/surgery.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dlas_prune_scope {
    /* Channels of one layer that reach no add and no concat: inside
     * residual blocks, the output of a block's first conv (what Crowley et
     * al.'s and Theis et al.'s code prune). */
    DLAS_PRUNE_INTERNAL = 0,
    /* Also channels tied across layers (residual streams, shortcut convs,
     * concatenated features), each class as one unit. */
    DLAS_PRUNE_ALL = 1
};

struct dlas_prune_unit {
    int group;         /* its channel group (dlas_graph_channel_groups order) */
    int node;          /* a source conv or linear carrying it ... */
    int64_t channel;   /* ... as this output channel: mask it with keep[channel] = 0 */
    int tied;          /* the class spans several sources, an add or a concat */
    int linear;        /* the source is a linear layer (features, not channels) */
    /* The activations that carry the unit: for every source of the class,
     * the end of its chain source -> batchnorm -> relu/relu6 (each the only
     * consumer of the one before), where the channel leaves the layer; the
     * unit is channel `channel` of each (sources tied by adds share the
     * index). Fisher pruning's a and g are taken there. */
    int n_acts;
    const int *acts;
    const int *sources; /* the n_acts sources whose chains end at acts */
};

struct dlas_prune_units {
    int64_t n;
    struct dlas_prune_unit *u;
    int *pool; /* storage of the acts lists */
};

/* The prunable units of g in `scope`: one per independent channel that
 * surgery may remove alone (not tied to the network input or output, or a
 * softmax, not read or written by a grouped conv that is not depthwise:
 * its groups must lose channels alike; dlas_prune_units_find_wholes lists
 * those too), in graph order, masked ones
 * included (check them with
 * dlas_graph_channel_masked(g, u->node, u->channel)). Conv sources only
 * unless include_linear (hidden linear layers' features, e.g. LeNet's
 * fc1). The graph must validate. Free with dlas_prune_units_free. */
int dlas_prune_units_find(const struct dlas_graph *g, enum dlas_prune_scope scope,
                          int include_linear, struct dlas_prune_units *out);
void dlas_prune_units_free(struct dlas_prune_units *u);
/* How many convs of g are grouped but not depthwise (their channels are no
 * units of dlas_prune_units_find); with one or more, a note naming the
 * first for an error message that says why a network has few or no units,
 * else "", into buf. */
int dlas_prune_grouped_note(const struct dlas_graph *g, char *buf, size_t len);
int dlas_prune_scope_parse(const char *s, enum dlas_prune_scope *out); /* "internal", "all" */

/* ---- wholes: units that go together (ABI 1.7) --------------------------------
 * A grouped conv (not depthwise) of G groups of s channels loses as many
 * channels from every group, on input and on output: the least it can lose
 * is channels j, j + s, ..., j + (G-1)s, one from each group. Those G
 * channel classes are the parts of one whole; classes joined so through
 * several grouped convs are one whole. A unit that no grouped conv reads or
 * writes is a whole of one part.
 *
 * dlas_prune_units_find_wholes lists the units as dlas_prune_units_find
 * does, and also the parts of every whole that may go (one whose every
 * part is a unit in `scope`; the others are left out), with how they
 * group: whole k's parts are units part[first[k]] .. part[first[k+1]-1]
 * (in graph order; k in order of first part), and unit i is part of
 * whole_of[i]. A pruner scores every unit as usual and removes whole by
 * whole (dlas_prune_mask_whole); dlas_prune_run scores a whole by the mean
 * of its parts' scores, the criterion's value per channel removed. Free
 * with dlas_prune_units_free and dlas_prune_wholes_free. */
struct dlas_prune_wholes {
    int64_t n;         /* wholes */
    int64_t *first;    /* n + 1 offsets into part */
    int64_t *part;     /* unit indices, whole by whole */
    int64_t *whole_of; /* per unit: its whole */
};
int dlas_prune_units_find_wholes(const struct dlas_graph *g, enum dlas_prune_scope scope,
                                 int include_linear, struct dlas_prune_units *out,
                                 struct dlas_prune_wholes *wholes);
void dlas_prune_wholes_free(struct dlas_prune_wholes *w);
/* Whole k's score: the mean of its parts' scores (scores[] per unit), the
 * criterion per channel removed, as dlas_prune_run ranks wholes. */
double dlas_prune_whole_score(const struct dlas_prune_wholes *w, const double *scores, int64_t k);
/* 1 when no part of whole k is masked yet. */
int dlas_prune_whole_live(const struct dlas_graph *g, const struct dlas_prune_units *u,
                          const struct dlas_prune_wholes *w, int64_t k);
/* Mask every part of whole k at once (in every source of each part's class),
 * refused as dlas_graph_mask_channels refuses, g unchanged then. */
int dlas_prune_mask_whole(struct dlas_graph *g, const struct dlas_prune_units *u,
                          const struct dlas_prune_wholes *w, int64_t k);

/* Statistics of g as it will be once its masked channels are removed
 * (dlas_graph_stats of a pruned copy). *pruned (may be NULL) receives that
 * copy, the caller's to free (e.g. to time it). */
int dlas_prune_cost(const struct dlas_graph *g, struct dlas_graph_stats *s,
                    struct dlas_graph **pruned);

/* Live (unmasked) output channels of a conv or linear. */
int64_t dlas_prune_live_channels(const struct dlas_graph *g, int id);

/* ---- targets: parameters, MACs or measured latency ----------------------
 * A pruner stops when the network, its masked channels removed, costs no
 * more than the goal: `ratio` of the unpruned cost, or an `absolute` count
 * (parameters, MACs per sample) or time (milliseconds per batch of the
 * experiment, measured as dlas_compress_latency does: the point's primitive
 * and backend, or "auto" with DLAS_LATENCY_AUTO). */
enum dlas_prune_metric { DLAS_PRUNE_PARAMS = 0, DLAS_PRUNE_MACS, DLAS_PRUNE_LATENCY };
int dlas_prune_metric_parse(const char *s, enum dlas_prune_metric *out); /* params|macs|latency */
const char *dlas_prune_metric_name(enum dlas_prune_metric m);

struct dlas_prune_target {
    enum dlas_prune_metric metric;
    unsigned latency_flags;
    double start;      /* the cost when the target was set (seconds for latency) */
    double goal;       /* the cost to reach, same unit */
    double now;        /* the last measured cost */
    int measurements;
    struct dlas_latency last; /* the last latency measured (metric LATENCY) */
};
/* Measure the starting cost of ctx->graph and set the goal: absolute > 0
 * wins over ratio (0 < ratio <= 1). A latency target without a latency in
 * the context is refused (DLAS_ERR_UNAVAILABLE, saying so). A latency's
 * start is the median of three measurements. */
int dlas_prune_target_init(struct dlas_prune_target *t, struct dlas_compress_ctx *ctx,
                           enum dlas_prune_metric metric, double ratio, double absolute,
                           unsigned latency_flags);
/* The cost of ctx->graph now (masked channels removed on a copy); *met =
 * whether it is at or under the goal. A latency reading at or under the
 * goal is confirmed by two more, and the median of the three is `now`: one
 * lucky reading on a busy machine does not end the pruning. */
int dlas_prune_target_measure(struct dlas_prune_target *t, struct dlas_compress_ctx *ctx,
                              int *met);
/* The cost for humans: "1.23M params", "45.6M MACs", "3.21 ms". */
void dlas_prune_cost_format(enum dlas_prune_metric m, double v, char *buf, size_t len);

/* ---- reports ---------------------------------------------------------------
 * Live channels of every conv and linear of g, "name:kept/was" joined by
 * spaces (was: of `before`, a copy of the graph before pruning, matched by
 * name; NULL: kept only): the architecture pruning found, for the result
 * row. Caller frees. */
char *dlas_prune_arch_string(const struct dlas_graph *g, const struct dlas_graph *before);

/* ---- the pruning loop -------------------------------------------------------
 * What a structured pruner plugin needs to write is how it scores channels;
 * dlas_prune_run does the rest, the same way for every criterion:
 *
 *   list the units and wholes (scope) -> measure the unpruned cost and set
 *   the goal
 *   repeat: [train `interval` steps with the lent trainer, the pruner's
 *            hooks watching] -> score the live units -> mask the lowest
 *            wholes (a whole: the mean of its parts' scores) until
 *            `per_step` channels went (never a layer's last live channel;
 *            with beta > 0 the score is penalised by the MACs a whole saves
 *            per channel, as Theis et al.'s Delta_k - beta * DeltaC_k)
 *            -> measure the cost
 *   until the cost is at or under the goal (or nothing is left to prune:
 *   an error saying how far it got); then remove the masked channels
 *   physically, evaluate, and report.
 *
 * Report keys (prefix = the pruner's name): <p>.params_before/after,
 * <p>.nonzero_before/after, <p>.macs_before/after, <p>.top1_before/after
 * (test split, when evaluate), <p>.target (metric), <p>.goal,
 * <p>.cost_before/after (metric units: count, or ms), <p>.latency_binding,
 * <p>.channels_removed, <p>.prune_steps, <p>.train_steps, <p>.seconds,
 * <p>.arch ("layer:kept/was ..."), <p>.saved (the checkpoint written, if any). */
struct dlas_pruner {
    uint32_t size;    /* sizeof(struct dlas_pruner) */
    const char *name; /* "fisher": logs and report keys */
    void *state;
    /* Optional: called once the units are listed, before the first score
     * (e.g. attach a Fisher accumulator to ctx->trainer). */
    int (*begin)(void *state, struct dlas_compress_ctx *ctx, const struct dlas_prune_units *u);
    /* Required: scores[i] for every unit u->u[i] (lower is pruned first).
     * Masked units' scores are ignored. */
    int (*score)(void *state, struct dlas_compress_ctx *ctx, const struct dlas_prune_units *u,
                 double *scores);
    /* Optional: after each pruning step (e.g. reset accumulated saliency). */
    int (*after_prune)(void *state, struct dlas_compress_ctx *ctx);
    /* Optional: always called at the end (detach hooks, free). */
    void (*end)(void *state, struct dlas_compress_ctx *ctx);
};

struct dlas_prune_options {
    uint32_t size; /* sizeof(struct dlas_prune_options) */
    enum dlas_prune_scope scope;
    int include_linear;
    enum dlas_prune_metric metric;
    double ratio, absolute;  /* the goal: see dlas_prune_target_init */
    unsigned latency_flags;  /* DLAS_LATENCY_AUTO */
    int64_t per_step;        /* units masked per pruning step (>= 1) */
    /* Training steps (with ctx->trainer) before each pruning step; 0: no
     * training in between (scores must not need it). */
    int64_t interval;
    double lr;               /* learning rate of that training (constant) */
    double beta;             /* compute penalty per MAC saved (0: none) */
    int evaluate;            /* test accuracy before and after into the report */
    /* Round every layer's live channels down to a multiple of this (> 1) at
     * the end, masking the lowest-scored extra ones (e.g. the vector width
     * a primitive prefers); 0 or 1: no rounding. */
    int round_to;
    const char *history_csv; /* NULL or "": none; else one row per pruning step */
    int64_t max_prune_steps; /* 0: until the target or nothing is left */
    /* NULL or "": nothing; else a checkpoint of the pruned network: its
     * tensors (as dlas_checkpoint_save_graph) and its architecture, an int32
     * tensor "prune.arch.<layer>" = {channels kept, channels before} per conv
     * and linear (load the weights with DLAS_CKPT_ALLOW_UNEXPECTED). */
    const char *save_path;
};
void dlas_prune_options_default(struct dlas_prune_options *o);
int dlas_prune_run(struct dlas_compress_ctx *ctx, const struct dlas_pruner *p,
                   const struct dlas_prune_options *o);

/* ---- the parameters every channel pruner shares (ABI 1.5) -------------------
 * A pruner plugin built on dlas_prune_run states only what is its own (its
 * criterion's knobs); the goal, the stepping and the run's options are
 * spelled once here. Its spec lists the shared rows among its own, in the
 * order it wants them listed (the order is also that of the effective values
 * recorded with results, which a point's id hashes):
 *
 *   static const struct dlas_param_spec params[] = {
 *       DLAS_PRUNE_PARAMS_GOAL,
 *       {"my_knob", DLAS_PARAM_FLOAT, 0, "1", 0, 10, NULL, "..."},
 *       DLAS_PRUNE_PARAMS_STEPS("100", 1, "training steps between pruning steps"),
 *       DLAS_PRUNE_PARAMS_RUN,
 *       {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
 *
 * and its apply() reads them with dlas_prune_options_from_params. */

/* target, ratio, absolute, latency_auto: what the goal counts, and the goal. */
#define DLAS_PRUNE_PARAMS_GOAL                                                                 \
    {"target", DLAS_PARAM_ENUM, 0, "params", 0, 0, "params|macs|latency",                     \
     "what the goal counts: parameters, MACs, or the measured latency of the pruned network "  \
     "on the experiment's primitive and backend"},                                             \
    {"ratio", DLAS_PARAM_FLOAT, DLAS_PARAM_TUNABLE, "0.5", 0.001, 1.0, NULL,                   \
     "goal as a fraction of the unpruned cost (used when absolute is 0)"},                    \
    {"absolute", DLAS_PARAM_FLOAT, 0, "0", 0, 1e15, NULL,                                      \
     "goal as a count (params, MACs per sample) or milliseconds per batch; 0: use ratio"},     \
    {"latency_auto", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,                                  \
     "time latency with each conv on the fastest of the experiment's primitives (auto)"}

/* prune_every (its default, minimum and meaning are the criterion's: a
 * saliency summed over training needs >= 1, a weight norm none),
 * channels_per_step, scope. */
#define DLAS_PRUNE_PARAMS_STEPS(every_default, every_min, every_help)                          \
    {"prune_every", DLAS_PARAM_INT, 0, every_default, every_min, 1e9, NULL, every_help},       \
    {"channels_per_step", DLAS_PARAM_INT, 0, "1", 1, 1e6, NULL,                                \
     "channels (filters) removed at each pruning step"},                                       \
    {"scope", DLAS_PARAM_ENUM, 0, "internal", 0, 0, "internal|all",                            \
     "internal: channels reaching no add or concat (inside residual blocks); all: also "      \
     "residual streams and concatenated features, as tied groups"}

/* lr, include_linear, round_to, evaluate, history_csv, save. */
#define DLAS_PRUNE_PARAMS_RUN                                                                  \
    {"lr", DLAS_PARAM_FLOAT, 0, "0.0008", 0, 10, NULL,                                         \
     "learning rate of the training between pruning steps (constant; 0: the recipe's)"},      \
    {"include_linear", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,                                \
     "also prune features of hidden linear layers"},                                           \
    {"round_to", DLAS_PARAM_INT, 0, "0", 0, 1024, NULL,                                        \
     "at the end, round each layer's channels down to a multiple of this (0: off)"},           \
    {"evaluate", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,                                       \
     "report test accuracy before and after pruning (when the experiment trains)"},            \
    {"history_csv", DLAS_PARAM_STRING, 0, "\"\"", 0, 0, NULL,                                  \
     "write every pruning step (layer, channel, score, cost) to this CSV file"},               \
    {"save", DLAS_PARAM_STRING, 0, "\"\"", 0, 0, NULL,                                         \
     "write the pruned network (weights, and channels per layer as prune.arch.<layer>) to "    \
     "this checkpoint"}

/* o = dlas_prune_options_default, then every shared key that p's spec
 * declares (the rows above, and "beta": the compute penalty, the
 * criterion's to offer) read into it; an undeclared one keeps its default.
 * A bad target or scope is refused with the message prefixed by `who` (the
 * pruner's name). */
int dlas_prune_options_from_params(struct dlas_prune_options *o, const struct dlas_params *p,
                                   const char *who);

#ifdef __cplusplus
}
#endif
#endif
