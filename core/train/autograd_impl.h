/* The autograd's layout, shared by autograd.c (buffers, passes, API) and the
 * per-op kernels in backward_*.c. Not installed. */
#ifndef DLAS_AUTOGRAD_IMPL_H
#define DLAS_AUTOGRAD_IMPL_H

#include <stdint.h>

#include <dlas/ops.h>
#include <dlas/train.h>

#include "../kernels/conv_cvec.h"
#include "../kernels/conv_direct.h"

struct ag_node {
    const struct dlas_node *n; /* in the graph; refreshed by sync */
    int64_t numel;             /* per sample, of the output */
    float *act;                /* max_batch x numel */
    float *grad;               /* max_batch x numel, or NULL: no gradient flows here */
    int grad_set;              /* grad holds data in this pass (else it is garbage) */
    int needs_grad;            /* a parameter or the wanted input gradient lies upstream */
    /* A batchnorm whose only consumer is a relu runs as one kernel with it
     * (one pass less each way): the batchnorm's own output and gradient
     * are then never materialised, unless kept (dlas_autograd_keep). */
    int keep;
    int reach;                 /* ACT_GRAD_ONLY: kept, or downstream of a kept node */
    int fused_relu;            /* batchnorm: the relu it computes too (0: none) */
    int fused_bn;              /* relu: the batchnorm that computes it (0: none) */
    int act_gone, grad_gone;   /* not materialised in this pass */
    /* kept by the forward for backward */
    float *mean, *invstd;      /* batchnorm, per channel */
    int32_t *argmax;           /* maxpool: input position of each output's maximum */
    uint8_t *mask;             /* dropout */
    int mask_valid;
    /* parameter gradients, shaped as weight and bias */
    struct dlas_tensor gw, gb;
    /* conv: geometry, and how each pass is done (backward_conv.c) */
    struct dlas_conv_desc cd;
    int64_t col_floats;  /* im2col of the input; 0 for a 1x1 stride-1 conv */
    int fwd_direct, dw_mode, dx_mode;
    struct dlas_conv_desc cdt; /* the stride-1 convolution dy -> dx */
    int64_t colt_floats;
    struct cd_geom gf, gt;     /* direct kernels: forward, and dy -> dx */
    int fwd_cv, dx_cv;         /* small maps: conv_cvec.c instead, with these */
    struct cv_geom cf, ct;
    float *wpack;        /* forward weights packed for the direct kernel */
    float *wflip;        /* weights of dy -> dx: packed, or flipped for a GEMM */
    int64_t part_floats; /* a chunk's weight-gradient buffer, bias excluded */
    int32_t *dw_map;     /* where each of its elements goes in dW (-1: padding); NULL: same place */
};

struct dlas_autograd {
    struct dlas_graph *g;
    int n;
    struct ag_node *nd;
    int64_t max_batch, batch;
    int threads;
    int input_grad;
    unsigned flags; /* of the last forward */
    int have_forward;
    uint64_t seed;
    uint64_t sig; /* of the graph the buffers were built for */
    /* per-thread scratch: im2col columns, and partial parameter gradients */
    float *ws;
    int64_t ws_floats;
    float *pg; /* AG_CHUNKS x pg_floats */
    int64_t pg_floats;
    double *prof; /* 2 x n seconds (forward, backward), or NULL */
    /* the nodes' act, grad, argmax and mask (autograd.c: arena_walk) */
    char *arena;
    size_t arena_bytes;
};

/* Where backward writes the gradient of node `in`: NULL if none is needed.
 * *acc says whether to add (the buffer already holds another consumer's
 * part) or overwrite; ag_grad_done marks it written once the kernel ends. */
float *ag_grad_dst(struct dlas_autograd *a, int in, int *acc);
void ag_grad_done(struct dlas_autograd *a, int in);

/* Kernels. Forward writes nd[id].act from its inputs' act; backward reads
 * nd[id].grad and writes the inputs' gradients and the parameter gradients.
 * Both run their own OpenMP regions over a->threads threads. */
int ag_conv_forward(struct dlas_autograd *a, int id);
int ag_conv_backward(struct dlas_autograd *a, int id);
int ag_bn_forward(struct dlas_autograd *a, int id);
int ag_bn_backward(struct dlas_autograd *a, int id);
int ag_pool_forward(struct dlas_autograd *a, int id);
int ag_pool_backward(struct dlas_autograd *a, int id);
int ag_linear_forward(struct dlas_autograd *a, int id);
int ag_linear_backward(struct dlas_autograd *a, int id);
int ag_elem_forward(struct dlas_autograd *a, int id);  /* relu, relu6, add, dropout, flatten */
int ag_elem_backward(struct dlas_autograd *a, int id);
int ag_concat_forward(struct dlas_autograd *a, int id);
int ag_concat_backward(struct dlas_autograd *a, int id);
int ag_softmax_forward(struct dlas_autograd *a, int id);
int ag_softmax_backward(struct dlas_autograd *a, int id);

/* A batch is cut into at most AG_CHUNKS chunks of whole samples, handed
 * to threads as they come free (a thread the OS has preempted then holds
 * up nobody). Each chunk sums its own part of a reduction, and the chunks
 * are added in order: results do not depend on the threads at all. */
#define AG_CHUNKS 16
static inline int64_t ag_chunks(int64_t batch) { return batch < AG_CHUNKS ? batch : AG_CHUNKS; }

/* Choose how a conv node (x->cd set) runs each pass. Returns the floats of
 * per-thread scratch it needs, and the sizes of its packed and flipped
 * weight buffers (0: none). */
int64_t ag_conv_setup(struct ag_node *x, int dx_needed, int64_t *wpack_floats,
                      int64_t *wflip_floats);
/* 1 if the node's chunk buffers are laid out unlike dW; then fill map
 * (part_floats entries). */
int ag_conv_needs_map(const struct ag_node *x);
void ag_conv_fill_map(const struct ag_node *x, int32_t *map);

/* Split [0, n) into `parts` contiguous ranges; range k is [*b, *e). */
static inline void ag_range(int64_t n, int parts, int k, int64_t *b, int64_t *e)
{
    *b = n * k / parts;
    *e = n * (k + 1) / parts;
}

#endif
