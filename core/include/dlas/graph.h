/* The network graph: a DAG of nodes kept in topological order (a node's inputs
 * always have smaller ids). Shapes are per sample (batch is not part of the
 * graph): C,H,W for feature maps, F after flatten/linear.
 *
 * Builder calls return the new node id (>= 0) or a negative status and record
 * the first error in the graph, so a model can chain calls and check
 * dlas_graph_status() once at the end; a negative input id propagates. */
#ifndef DLAS_GRAPH_H
#define DLAS_GRAPH_H

#include <dlas/rng.h>
#include <dlas/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DLAS_NAME_MAX 96

enum dlas_op {
    DLAS_OP_INPUT = 0,
    DLAS_OP_CONV2D,
    DLAS_OP_BATCHNORM,
    DLAS_OP_RELU,
    DLAS_OP_RELU6,
    DLAS_OP_MAXPOOL,
    DLAS_OP_AVGPOOL,
    DLAS_OP_GLOBAL_AVGPOOL,
    DLAS_OP_LINEAR,
    DLAS_OP_ADD,
    DLAS_OP_CONCAT,
    DLAS_OP_FLATTEN,
    DLAS_OP_DROPOUT,
    DLAS_OP_SOFTMAX,
    DLAS_OP__COUNT
};

struct dlas_conv_attr {
    int out_channels;
    int kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
    int bias; /* 1: has a bias vector */
};

struct dlas_pool_attr {
    int kh, kw, stride_h, stride_w, pad_h, pad_w;
    int ceil_mode;         /* output size rounds up, as PyTorch's ceil_mode */
    int count_include_pad; /* avgpool: padding counts in the divisor */
};

struct dlas_node {
    char name[DLAS_NAME_MAX];
    enum dlas_op op;
    int n_inputs;
    int *inputs;
    int out_ndim;          /* 3 (C,H,W) or 1 (F) */
    int64_t out_shape[3];
    union {
        struct dlas_conv_attr conv;
        struct dlas_pool_attr pool;
        struct { int out_features; int bias; } linear;
        struct { float eps, momentum; } bn;
        struct { float p; } dropout;
    } attr;
    /* Parameters (present according to op): conv/linear weight and bias;
     * batchnorm weight = gamma, bias = beta, running_mean, running_var.
     * Checkpoints name them "<node>.weight", "<node>.bias", ... */
    struct dlas_tensor weight, bias, running_mean, running_var;
    /* ABI 1.3: int8 quantisation of a conv (<dlas/quant.h>), both absent for
     * an fp32 layer: weight_scale (f32, out_channels steps; the weight tensor
     * then holds step * q exactly) and input_quant (f32 {scale, zero_point} of
     * its uint8 input). Checkpointed as "<node>.weight_scale" and
     * "<node>.input_quant". */
    struct dlas_tensor weight_scale, input_quant;
};

struct dlas_graph;

struct dlas_graph *dlas_graph_new(void);
void dlas_graph_free(struct dlas_graph *g);
struct dlas_graph *dlas_graph_clone(const struct dlas_graph *g);
int dlas_graph_status(const struct dlas_graph *g); /* first builder error, 0 if none */

int dlas_graph_n_nodes(const struct dlas_graph *g);
struct dlas_node *dlas_graph_node(const struct dlas_graph *g, int id);
int dlas_graph_find(const struct dlas_graph *g, const char *name); /* id or -1 */
int dlas_graph_output(const struct dlas_graph *g);  /* the last node */
int dlas_graph_n_consumers(const struct dlas_graph *g, int id);
const char *dlas_op_name(enum dlas_op op);

static inline struct dlas_conv_attr dlas_conv(int out_channels, int k, int stride, int pad)
{
    struct dlas_conv_attr a = {out_channels, k, k, stride, stride, pad, pad, 1, 1, 1, 0};
    return a;
}
static inline struct dlas_pool_attr dlas_pool(int k, int stride, int pad)
{
    struct dlas_pool_attr a = {k, k, stride, stride, pad, pad, 0, 1};
    return a;
}

/* Builders. A NULL name gets "<op><id>". Names must be unique. */
int dlas_graph_input(struct dlas_graph *g, const char *name, int c, int h, int w);
int dlas_graph_conv2d(struct dlas_graph *g, const char *name, int in,
                      const struct dlas_conv_attr *a);
int dlas_graph_batchnorm(struct dlas_graph *g, const char *name, int in, float eps);
int dlas_graph_relu(struct dlas_graph *g, const char *name, int in);
int dlas_graph_relu6(struct dlas_graph *g, const char *name, int in);
int dlas_graph_maxpool(struct dlas_graph *g, const char *name, int in,
                       const struct dlas_pool_attr *a);
int dlas_graph_avgpool(struct dlas_graph *g, const char *name, int in,
                       const struct dlas_pool_attr *a);
int dlas_graph_global_avgpool(struct dlas_graph *g, const char *name, int in);
int dlas_graph_linear(struct dlas_graph *g, const char *name, int in, int out_features,
                      int bias);
int dlas_graph_add(struct dlas_graph *g, const char *name, int a, int b);
int dlas_graph_concat(struct dlas_graph *g, const char *name, int n, const int *inputs);
int dlas_graph_flatten(struct dlas_graph *g, const char *name, int in);
int dlas_graph_dropout(struct dlas_graph *g, const char *name, int in, float p);
int dlas_graph_softmax(struct dlas_graph *g, const char *name, int in);

/* Re-derive every shape from the input and attributes, check parameter
 * tensors against them; a message names the node on failure. */
int dlas_graph_infer_shapes(struct dlas_graph *g);
int dlas_graph_validate(const struct dlas_graph *g);
/* Initialise parameters as torchvision does (Kaiming-normal fan_out for convs,
 * uniform for linear, BN gamma=1 beta=0), drawing from rng. */
int dlas_graph_init_weights(struct dlas_graph *g, struct dlas_rng *rng);

/* Per-node and whole-graph metrics. MACs are per sample. */
struct dlas_graph_stats {
    int64_t params;       /* parameter elements (BN running stats excluded) */
    int64_t nonzero;      /* of those, non-zero and unmasked */
    int64_t macs;         /* multiply-accumulates of conv and linear */
    int64_t weight_bytes; /* storage of all parameter tensors, by their dtype */
    int64_t peak_activation_bytes; /* live activations at worst point, batch 1 */
};
int64_t dlas_node_params(const struct dlas_graph *g, int id);
int64_t dlas_node_nonzero(const struct dlas_graph *g, int id);
int64_t dlas_node_macs(const struct dlas_graph *g, int id);
/* Floating-point operations per sample under one stated convention: conv and
 * linear 2 per MAC plus 1 per output when biased; batchnorm 2 per element
 * (folded scale and shift); relu, relu6 and add 1 per element; max/avg pool
 * one per window element of each output; global average pool one per input
 * element; softmax 5 per element (max, subtract, exp, sum, divide); input,
 * flatten, dropout and concat 0 (they move data). */
int64_t dlas_node_flops(const struct dlas_graph *g, int id);
/* Storage of a node's parameter tensors (BN running statistics included,
 * masks not), each at its own dtype's size. */
int64_t dlas_node_weight_bytes(const struct dlas_graph *g, int id);
int dlas_graph_stats(const struct dlas_graph *g, struct dlas_graph_stats *s);
/* The part of dlas_graph_stats' weight_bytes held in tensors of `dtype`, so a
 * partly quantised graph reports e.g. f32 and i8 storage apart. */
int64_t dlas_graph_weight_bytes_of(const struct dlas_graph *g, enum dlas_dtype dtype);
/* Whole-graph FLOPs: the sum of dlas_node_flops. */
int64_t dlas_graph_flops(const struct dlas_graph *g);

/* Reference forward of the whole graph (inference mode): input N,C,H,W;
 * output is allocated to N x (output shape). The correctness oracle. */
int dlas_graph_forward_ref(const struct dlas_graph *g, const struct dlas_tensor *input,
                           struct dlas_tensor *output);

#ifdef __cplusplus
}
#endif
#endif
