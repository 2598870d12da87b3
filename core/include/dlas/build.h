/* Building blocks for model plugins. The zoo's networks are assembled from
 * the same few pieces (a convolution with its batch normalisation, the
 * ImageNet stem, the pooled classifier head); building them in one place
 * keeps node names and parameter counts from drifting apart between models
 * that must match torchvision's layouts. */
#ifndef DLAS_BUILD_H
#define DLAS_BUILD_H

#include <dlas/graph.h>
#include <dlas/params.h>
#include <dlas/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* torch.nn.BatchNorm2d's default, which parity with torchvision needs. */
#define DLAS_BN_EPS 1e-5f

/* printf into buf (DLAS_NAME_MAX bytes, the longest node name); returns buf
 * so that a name can be formed inside a builder call. */
const char *dlas_name(char *buf, const char *fmt, ...) DLAS_PRINTF(2, 3);

/* A model's graph for validated parameters: what dlas_model_ops.build does
 * once the parameters are known. */
typedef int (*dlas_model_graph_fn)(const struct dlas_params *p, int c, int h, int w,
                                   int classes, struct dlas_graph *g);

/* Run fn on p, or on spec's defaults when p is NULL (the core may build a
 * model without parameters). */
int dlas_model_with_defaults(const struct dlas_param_spec *spec, const struct dlas_params *p,
                             dlas_model_graph_fn fn, int c, int h, int w, int classes,
                             struct dlas_graph *g);

/* 1 when a "style" parameter (auto|imagenet|cifar) asks for the ImageNet
 * form: "imagenet", or "auto" with an input of at least 64x64. */
int dlas_style_imagenet(const char *style, int h, int w);

/* n when depth = per_block * n + fixed for some n >= 1 (the CIFAR layouts:
 * ResNet 6n+2, DenseNet-BC and WRN 6n+4), else 0. */
int dlas_depth_blocks(int depth, int per_block, int fixed);

/* Convolution `conv` (attributes a) followed by batchnorm `bn`. */
int dlas_conv_bn(struct dlas_graph *g, const char *conv, const char *bn, int x,
                 struct dlas_conv_attr a);
/* The same followed by ReLU `relu`. */
int dlas_conv_bn_relu(struct dlas_graph *g, const char *conv, const char *bn, const char *relu,
                      int x, struct dlas_conv_attr a);

/* The ImageNet stem: 7x7/2 convolution to out_c channels without bias, BN,
 * ReLU, 3x3/2 max pool; names[] are those four nodes' names. */
int dlas_imagenet_stem(struct dlas_graph *g, int x, int out_c, const char *const names[4]);

/* The classifier head: global average pool "avgpool", "flatten", and the
 * biased linear layer `fc` of `classes` outputs. */
int dlas_pooled_head(struct dlas_graph *g, int x, const char *fc, int classes);

#ifdef __cplusplus
}
#endif
#endif
