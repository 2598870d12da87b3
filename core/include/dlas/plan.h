/* Inference plan: every conv node bound to a primitive (prepared once),
 * every other node run by the core's operators, executed on a backend. On a
 * device backend (DLAS_BACKEND_DEVICE_MEMORY) every node runs on the device:
 * convs through primitives of that device, the rest through the backend's
 * node operators; activations live in device memory and only the input and
 * the output cross to the host. */
#ifndef DLAS_PLAN_H
#define DLAS_PLAN_H

#include <dlas/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A primitive as configured: component plus validated parameters. */
struct dlas_primitive_choice {
    const char *label; /* the config instance name */
    const struct dlas_component *comp;
    const struct dlas_params *params;
};

struct dlas_plan;

/* Bind each conv to the first of `prims` whose supports() accepts it, else to
 * `fallback` (which may be NULL: then the core reference convolution).
 * The plan keeps pointers to the choices (and their params): they must
 * outlive it. */
int dlas_plan_create(const struct dlas_graph *g, const struct dlas_host *host,
                     const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                     int n_prims, const struct dlas_primitive_choice *fallback,
                     int64_t max_batch, struct dlas_plan **out);
void dlas_plan_free(struct dlas_plan *p);
/* input: batch x C x H x W; output: batch x (graph output shape). */
int dlas_plan_run(struct dlas_plan *p, int64_t batch, const float *input, float *output);
/* Label of the primitive bound to node id ("ref" for core operators). */
const char *dlas_plan_binding(const struct dlas_plan *p, int id);
/* How many conv layers fell back, and a "layer (reason) -> primitive; ..."
 * list; grouped: the layers of one reason and primitive together,
 * "l1, l2, l3 (reason) -> primitive; ...". */
int dlas_plan_n_fallbacks(const struct dlas_plan *p);
const char *dlas_plan_fallbacks(const struct dlas_plan *p);
const char *dlas_plan_fallbacks_grouped(const struct dlas_plan *p);
int64_t dlas_plan_output_numel(const struct dlas_plan *p); /* per sample */

/* ---- options, per-layer control and timing (additive) ------------------- */

struct dlas_tunelog;

struct dlas_plan_options {
    uint32_t size; /* sizeof(struct dlas_plan_options) */
    /* NULL, or one entry per graph node: for a conv, the index into `prims`
     * of the primitive it must be bound to (if that primitive refuses it, the
     * layer falls back as usual and says why); -1 = the default rule. */
    const int *layer_prim;
    /* NULL, or a tuning log: a conv bound to a primitive is prepared with the
     * settings the log holds for (primitive, device, threads, layer shape at
     * the plan's batch), applied over the configured parameters. */
    const struct dlas_tunelog *tunelog;
    /* Fold a batchnorm that alone consumes a conv into the conv's weights and
     * bias, and run a relu/relu6 that alone consumes a node (conv, add,
     * batchnorm, ...) in place right after it; flatten and dropout become
     * views. Changes results only by float rounding. */
    int fuse;
    /* Fuse mobile blocks (needs fuse; CPU backends): a [1x1 expansion ->]
     * depthwise 3x3 -> 1x1 projection [+ the block's input] chain, as in
     * MobileNet v1/v2, runs as one kernel that keeps the expanded activation
     * in cache. 0 (the default): every conv runs on its own primitive. */
    int blocks;
    /* NULL, or one entry per node: with blocks, the chain whose first conv
     * is node id is fused only where the entry is nonzero. */
    const int *block_mask;
    /* With blocks: 1 makes every block read and write NCHW, packing and
     * scattering on its own; 0 (the default) keeps the blocked layout
     * between consecutive blocks (dlas_plan_conversions). A study knob: the
     * results are the same either way. */
    int block_nchw;
    /* With fuse: a concat whose only readers are batchnorms is read in
     * place by them (binding "view": no buffer, no copy; CPU backends), as
     * DenseNet's are. 1 makes every concat copy its inputs. A study knob: the
     * results are bit for bit the same either way. */
    int concat_copy;
    /* With blocks: how a fused block's work is split over the threads. 0
     * (the default): the kernel's rule (by channel groups, or by bands of
     * rows with the depthwise output a row at a time where an image's
     * depthwise output is large: MobileNet-v2's 112x112 to 14x14 blocks);
     * 1: always groups; 2: always rows. A study knob: results are the same
     * within float rounding. */
    int block_schedule;
    /* With blocks: a network's head, a 1x1 conv read only by a global
     * average pool read only by a linear layer (MobileNet v2's last conv,
     * pool and classifier), runs as one kernel that overlaps the conv's
     * compute with the linear layer's weight traffic (core/kernels/head.h).
     * 1 leaves the head to its layers, to measure it. Results are the same
     * within float rounding. */
    int block_no_head;
    /* With blocks: a network's stem, a dense conv of at most 4 input
     * channels (its batchnorm and activation fused) read only by a max pool
     * (ResNet's and DenseNet's 7x7 conv and 3x3 pool), runs as one kernel
     * that pools the conv's rows while they are in cache and writes only
     * the pooled output (core/kernels/stem.h). 1 leaves the stem to its
     * layers, to measure it. Results are the same within float rounding. */
    int block_no_stem;
    /* With fuse: a residual add (a conv's output plus an earlier node's,
     * the conv's only reader) runs inside the conv, with the relu after it,
     * where the conv's primitive declares DLAS_PRIM_RESIDUAL: one pass over
     * the output instead of three. 1 leaves every add to its own node, to
     * measure it (auto times its candidates so, each layer without its add).
     * Results are the same within float rounding. */
    int no_residual;
    /* With fuse: an average pool whose windows all lie inside its input,
     * the only reader of a 1x1 stride-1 conv with no activation (DenseNet's
     * transitions: the conv, then a 2x2 pool), runs first, on the conv's
     * input, and the conv on the pooled map: the same output, for a quarter
     * of the conv's work there. The conv's layer description
     * (dlas_plan_conv_desc) is the pooled one; the pool reports itself fused
     * into the conv. 1 keeps the graph's order, to measure it. Results are
     * the same within float rounding. */
    int no_pool_first;
    /* With fuse: a batchnorm (and its relu) whose only reader is a conv
     * runs inside that conv, applied as the conv reads its input, where
     * the conv's primitive takes a prologue (DLAS_PRIM_PROLOGUE: `direct` on
     * 1x1 layers that read their input in place; DenseNet's norm1, relu1
     * and conv1, over a concatenation read in place). The batchnorm then
     * writes nothing and reads only the rows its conv's threads compute;
     * it reports itself fused into the conv (binding "prologue"), whose
     * time includes it. Only where the backend's threads do not divide the
     * plan's batch: where they do, the pass splits by images and hands
     * nothing from one thread to another. 1 keeps it a pass of its own, to
     * measure it. Results are bit for bit the same either way. */
    int no_prologue;
    /* With fuse: an activation stays in channel blocks of 16
     * (DLAS_LAYOUT_C16, <dlas/plugin.h>) where the conv that writes it and
     * every reader take that layout (DLAS_PRIM_C16: `direct` and
     * `winograd`, on layers of one group or of groups of whole blocks of
     * 16 channels):
     * as a conv's input, or as the residual a conv adds. A layer split by
     * rows on two threads then meets the other thread at two boundaries a
     * block of 16 channels instead of two a channel. dlas_plan_layout says
     * which; 1 keeps every activation NCHW, to measure it. Results are the
     * same within float rounding. */
    int no_c16;
};
void dlas_plan_options_default(struct dlas_plan_options *o); /* fuse = 1, the rest none */
/* Fused mobile blocks in a plan, and "first > conv > conv [+ add]; ..."
 * naming them. Their convs' binding is "block" (index -3); the nodes a block
 * computes report dlas_plan_fused_into() its first conv, which carries the
 * block's whole time in dlas_plan_run_timed(). */
int dlas_plan_n_blocks(const struct dlas_plan *p);
const char *dlas_plan_blocks(const struct dlas_plan *p);
/* Where the plan converts activations between NCHW and the fused blocks'
 * channel-blocked layout: a block whose input comes from the block before
 * reads it in that layout (no conversion), so conversions happen only where
 * a chain of blocks starts ("pack 'X' CxHxW": node X's output, packed by
 * the chain's first block) and ends ("scatter 'Y' CxHxW": the chain's last
 * node Y, written back as NCHW), in graph order, joined by "; ". The size
 * is per image; each conversion reads and writes it once a forward.
 * dlas_plan_n_conversions counts them (packs + scatters); "" and 0 without
 * blocks. */
const char *dlas_plan_conversions(const struct dlas_plan *p);
int dlas_plan_n_conversions(const struct dlas_plan *p);

/* dlas_plan_create() is this with the default options. */
int dlas_plan_create_ex(const struct dlas_graph *g, const struct dlas_host *host,
                        const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                        int n_prims, const struct dlas_primitive_choice *fallback,
                        int64_t max_batch, const struct dlas_plan_options *opt,
                        struct dlas_plan **out);
/* Run as dlas_plan_run and add the seconds each node took (backend clock,
 * synchronised) to node_seconds[id] (dlas_plan_n_nodes entries). A node
 * fused into another (dlas_plan_fused_into >= 0) adds 0: its time is in the
 * node it was fused into. */
int dlas_plan_run_timed(struct dlas_plan *p, int64_t batch, const float *input, float *output,
                        double *node_seconds);
int dlas_plan_n_nodes(const struct dlas_plan *p);
/* The layer description a conv node was prepared with (batch = the plan's
 * max batch; has_bias set when a batchnorm was folded in), NULL otherwise. */
const struct dlas_conv_desc *dlas_plan_conv_desc(const struct dlas_plan *p, int id);
/* Index into `prims` of the primitive bound to node id, -2 for the
 * fallback, -1 for the core's operators. */
int dlas_plan_binding_index(const struct dlas_plan *p, int id);
/* The tuned settings a conv was prepared with ("" when none came from the
 * tuning log). */
const char *dlas_plan_layer_settings(const struct dlas_plan *p, int id);
/* The node whose operator computes node id's output (a folded batchnorm,
 * an in-place relu, a flatten view), or -1 if id runs itself. */
int dlas_plan_fused_into(const struct dlas_plan *p, int id);
/* The layout (enum dlas_layout) in which the plan keeps node id's output:
 * DLAS_LAYOUT_C16 between convs that take it (no_c16), else NCHW. */
int dlas_plan_layout(const struct dlas_plan *p, int id);
/* How conv node id computes, and where the plan converts between f32 and
 * uint8 around it: "fp32"; "int8-fake" (a quantised layer on an fp32
 * primitive: the plan fake-quantises its input); or "int8 A>B" for an int8
 * primitive, A = f32 when the plan quantises its input (an fp32 -> int8
 * boundary) or u8 when it reads the previous int8 layer's output as is, B =
 * u8 when it hands uint8 to int8 readers or f32 when it dequantises (an int8
 * -> fp32 boundary). "" for other nodes. */
const char *dlas_plan_precision(const struct dlas_plan *p, int id);

/* ---- data kept in backend memory (ABI 1.3) ---------------------------------

 * The plan's own input buffer (backend memory: device memory on a device
 * backend; room for the max batch) and the buffer its output ends in. Put
 * the input there (e.g. with the backend's copy_in) and
 * dlas_plan_run_resident() runs the forward with no host copy at all; on a
 * device backend it returns once the work is queued (the backend's sync()
 * waits for it). dlas_plan_run() is this with the copies around it. The
 * output buffer holds batch x dlas_plan_output_numel floats after a run and
 * stays valid until the next one. */
float *dlas_plan_input_buffer(struct dlas_plan *p);
const float *dlas_plan_output_buffer(const struct dlas_plan *p);
int dlas_plan_run_resident(struct dlas_plan *p, int64_t batch);

/* ---- auto: primitives chosen by measurement (additive) --------------------

 * dlas_plan_auto_select() prepares one plan per candidate primitive (with
 * the fallback where it refuses a layer), runs them in interleaved rounds
 * timing every node, and binds each conv layer to the primitive that ran it
 * fastest in context: layer_prim (dlas_graph_n_nodes entries) then holds a
 * plan's `layer_prim` option (-1 for every other node and for layers no
 * candidate ran itself). Rounds go on from min_runs until every layer's
 * decision is clear (the winner's upper quartile below every rival's lower
 * quartile), or the rivals are within `tolerance` of it (a tie: the previous
 * choice if it is among them, else the primitive listed first, so the
 * choice is stable under noise), or max_runs is reached.
 *
 * With block_mask (NULL: not considered), the mobile blocks the plan can
 * fuse (dlas_plan_options.blocks) then race their layers on the chosen
 * primitives, in rounds under the same rule; block_mask (one entry per
 * node) gets 1 at the first conv of each block that won, for a plan's
 * block_mask option (with blocks = 1). */
struct dlas_plan_auto_options {
    uint32_t size;        /* sizeof(struct dlas_plan_auto_options) */
    int64_t batch;        /* the batch the chosen plan will run (1) */
    int min_runs;         /* timed runs of each candidate before deciding (5) */
    int max_runs;         /* at most this many (15) */
    double tolerance;     /* a rival within this fraction of the best median ties (0.03) */
    const int *previous;  /* NULL, or an earlier layer_prim: kept where it ties */
    const int *previous_blocks; /* NULL, or an earlier block_mask: kept where it ties */
    const struct dlas_tunelog *tunelog; /* candidates prepared with its settings */
    uint64_t seed;        /* the input the candidates run */
};
void dlas_plan_auto_options_default(struct dlas_plan_auto_options *o);
struct dlas_plan_auto_report {
    int runs;     /* timed runs of each candidate */
    int layers;   /* conv layers */
    int unclear;  /* layers decided by the median alone after max_runs */
    int blocks;   /* mobile blocks fused (block_mask) */
    char *text;   /* "layer: prim MS, rival MS, ...; ..." (free() it) */
};
int dlas_plan_auto_select(const struct dlas_graph *g, const struct dlas_host *host,
                          const struct dlas_backend *be,
                          const struct dlas_primitive_choice *prims, int n_prims,
                          const struct dlas_primitive_choice *fallback,
                          const struct dlas_plan_auto_options *opt, int *layer_prim,
                          int *block_mask, struct dlas_plan_auto_report *report);

#ifdef __cplusplus
}
#endif
#endif
