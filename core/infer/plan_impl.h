/* The inference plan's state, shared by plan.c (binding, buffers, running)
 * and plan_quant.c (where int8 layers meet fp32 ones). Not installed. */
#ifndef DLAS_PLAN_IMPL_H
#define DLAS_PLAN_IMPL_H

#include <dlas/plan.h>
#include <dlas/quant.h>

#include "fallbacks.h"
#include "plan_ops.h"

/* Captured forwards kept per plan (one per batch size, the oldest replaced). */
#define PLAN_MAX_GRAPHS 4

struct binding {
    const struct dlas_primitive_choice *choice; /* NULL: core reference op */
    int index;                                  /* into prims, -2 fallback, -1 none */
    void *state;
    struct dlas_conv_desc desc;
    struct dlas_params *tuned; /* owned: the choice's params + the tuning log's */
    char *settings;            /* the tuned settings applied, or NULL */
    float *fw, *fb;            /* owned weights and bias with a batchnorm folded in */
    int act_fused;             /* the primitive applies the node's relu itself */
    /* int8 (plan_quant.c): a conv quantised by a compressor keeps its
     * parameters here for a primitive that declares DLAS_PRIM_INT8 */
    struct dlas_conv_quant q;
    int int8; /* runs through run_int8 */
    int in_block; /* computed by a fused mobile block (plan_blocks.c) */
    int residual; /* node whose output run_residual adds (a fused add), or -1 */
    int pool_first; /* average pool run on the input first (plan_pool_first.c), or -1 */
    /* plan_prologue.c: a conv's batchnorm applied as it reads its input
     * (its node, or -1), with that batchnorm's affine map; and on the
     * batchnorm, the conv that applies it (or -1) */
    int prologue, prologue_into;
    float *pro_scale, *pro_shift;
};

struct dlas_plan {
    const struct dlas_graph *g;
    const struct dlas_host *host;
    const struct dlas_backend *be;
    int n;
    struct binding *bind;
    int *root;            /* node whose buffer holds this node's output */
    enum plan_post *post; /* activation applied in place after the node */
    int *slot;            /* node -> buffer slot (-1 for the input) */
    int n_slots;
    float **slots;
    size_t *slot_size; /* floats per slot */
    void *ws;
    size_t ws_size;
    int64_t max_batch;
    struct fallbacks fb;
    /* device backends (dlas_backend_device_ops): every node runs there */
    const struct dlas_backend_ops *dev;
    void **node_state;  /* backend operator state of each non-conv node that runs */
    float *input_buf;   /* the graph input in backend memory (max batch) */
    struct plan_graph { int64_t batch; void *exec; } graphs[PLAN_MAX_GRAPHS];
    int n_graphs, no_capture;
    uint8_t *u8;    /* per node: its buffer holds uint8 (an int8 layer's output) */
    void *qbuf;     /* a quantised conv's input, quantised or fake-quantised */
    size_t qbuf_size;
    /* fused mobile blocks (plan_blocks.c): block_of[head] indexes blocks */
    struct plan_block *blocks;
    int n_blocks;
    int *block_of; /* NULL when the plan fuses none */
    char *block_names;
    char *conversions; /* dlas_plan_conversions */
    int n_conversions;
    /* concatenations left as views (plan_views.c): view[id] = 1 */
    unsigned char *view;
    /* per node: its buffer holds DLAS_LAYOUT_C16 (plan_layout.c); NULL: none does */
    unsigned char *c16;
    /* a pool-first conv's pooled input (plan_pool_first.c), the largest's */
    float *pool_buf;
    size_t pool_size; /* floats */
};

/* The graph's sole reader of node id, when it reads n_inputs inputs (1:
 * id alone), or -1 (none, several, another input count, or id is the
 * output). */
int plan_sole_consumer(const struct dlas_graph *g, int id, int n_inputs);
/* The last node whose output node id's buffer ends up holding (id, or a
 * node fused into it). */
int plan_tail(const struct dlas_plan *p, int id);

/* int8 (plan_quant.c). Before prepare: mark the convs that run int8 and
 * decide which int8 layers hand uint8 to the next; after: size the scratch
 * buffer of the boundaries. */
void plan_quant_candidate(struct dlas_plan *p, int id, const struct dlas_primitive_ops *ops);
int plan_quant_decide(struct dlas_plan *p);
size_t plan_quant_scratch(const struct dlas_plan *p, int id);
/* Conv node id where it or its input is quantised: an int8 binding runs
 * here (*done = 1); for an fp32 one, *in_io is replaced by its input
 * fake-quantised and *done = 0 leaves the run to the fp32 path, as for any
 * other conv. */
int plan_quant_run(struct dlas_plan *p, int id, int64_t batch, const float **in_io, float *out,
                   int *done);

/* Mobile blocks (plan_blocks.c): after binding, fuse the chains the options
 * allow; the head's buffer holds the block's output (out_numel), run() runs
 * the block from the head's input. */
int plan_blocks_find(struct dlas_plan *p, const struct dlas_plan_options *opt);
int64_t plan_blocks_out_numel(const struct dlas_plan *p, int id, int64_t own);
/* 1 when node id's buffer holds its output as a plain NCHW float tensor of
 * the node's shape: it runs no block, or a block that writes NCHW (a stem). */
int plan_blocks_out_nchw(const struct dlas_plan *p, int id);
int plan_blocks_run(struct dlas_plan *p, int id, int64_t batch, const float *in, float *out);
void plan_blocks_free(struct dlas_plan *p);

/* The conv whose output add node k reads and could run inside, by the
 * graph alone (plan.c): one input of the add is a conv's output, or its
 * batchnorm's, read by nothing else, and the other input (*other) comes
 * before that conv in the graph, so it is written before the conv runs.
 * -1 if none. Whether a plan fuses them also depends on the conv's
 * primitive (DLAS_PRIM_RESIDUAL); autoselect times the two as one. */
int plan_residual_conv(const struct dlas_graph *g, int k, int *other);

/* Concat views (plan_views.c). After the blocks: mark the concats read in
 * place; assign_slots then gives them no buffer and keeps their parts alive
 * as long as the view (extend_lifetimes), and a batchnorm reading a view
 * runs through plan_views_batchnorm. */
int plan_views_find(struct dlas_plan *p, const struct dlas_plan_options *opt);
void plan_views_extend_lifetimes(const struct dlas_plan *p, int *last_use);
int plan_views_batchnorm(struct dlas_plan *p, int id, int64_t batch, const float *input,
                         float *out);
/* The buffers tensor x lies in: a view's parts in order, or x's own buffer
 * (the plan's input where x has no slot). plan_view_n_parts says how many
 * plan_view_parts writes. */
int plan_view_n_parts(const struct dlas_plan *p, int x);
void plan_view_parts(const struct dlas_plan *p, int x, const float *input,
                     struct plan_part *parts);

/* Batchnorms applied by their conv as it reads its input (plan_prologue.c).
 * plan_prologue_bn is the graph's side (autoselect times a conv with it);
 * after prepare: plan_prologue_find marks the pairs whose conv's state takes
 * a prologue; assign_slots keeps the batchnorm's input alive until the conv
 * ran (extend_lifetimes, before the views'); at run time the batchnorm
 * does nothing and its conv runs plan_prologue_run. */
int plan_prologue_bn(const struct dlas_graph *g, int c);
int plan_prologue_find(struct dlas_plan *p, const struct dlas_plan_options *opt);
void plan_prologue_extend_lifetimes(const struct dlas_plan *p, int *last_use);
int plan_prologue_run(struct dlas_plan *p, int c, int64_t batch, const float *input,
                      float *out);
/* Activations kept in C16 between convs that take it (plan_layout.c):
 * after prepare and the prologues, set each such conv's layouts, mark
 * p->c16 and grow the workspace to what they ask; before assign_slots,
 * which sizes a C16 buffer for its padded channels. */
int plan_layout_find(struct dlas_plan *p, const struct dlas_plan_options *opt);
/* Average pools run before their 1x1 conv (plan_pool_first.c). Before
 * binding: mark each conv whose output only such a pool reads (binding
 * pool_first; the pool becomes fused into it) and size pool_buf; the
 * conv's description is then the pooled one (plan_pool_first_desc); at run
 * time plan_pool_first_input pools its input into pool_buf. */
int plan_pool_first_find(struct dlas_plan *p, const struct dlas_plan_options *opt);
int plan_pool_first_desc(const struct dlas_plan *p, int c, struct dlas_conv_desc *d);
const float *plan_pool_first_input(struct dlas_plan *p, int c, int64_t batch, const float *in);

#endif
