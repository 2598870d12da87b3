/* The inference plan's fast operators for non-convolution nodes. */
#ifndef DLAS_PLAN_OPS_H
#define DLAS_PLAN_OPS_H

#include <stdlib.h>

#include <dlas/dlas.h>

/* An activation folded into the node that produces its input. */
enum plan_post { PLAN_POST_NONE = 0, PLAN_POST_RELU, PLAN_POST_RELU6 };

/* Run node id (not a conv) over a batch, then apply `post`; falls back to
 * the reference operator where there is no fast path. */
int plan_fast_forward(const struct dlas_graph *g, int id, int64_t batch,
                      const float *const *in, float *out, enum plan_post post,
                      const struct dlas_backend *be);

/* One input of a concatenation the plan did not copy: `channels` channel
 * planes per image, images one after another. */
struct plan_part {
    const float *data;
    int64_t channels;
};

/* 1 when batchnorm node n's four parameters are f32: what plan_batchnorm
 * and folding into a conv need. */
int plan_bn_f32(const struct dlas_node *n);
/* Batchnorm node n's input channels given as parts: src[c] = channel c's
 * plane in image 0, bstride[c] = floats from one image's plane to the
 * next (n's channels entries each). DLAS_ERR_INTERNAL (message set) when
 * the parts do not hold n's channels. */
int plan_part_channels(const struct dlas_node *n, const struct plan_part *parts, int n_parts,
                       const float **src, int64_t *bstride);
/* Batchnorm node n's affine map (plan_bn_f32): y = x * scale[c] + shift[c],
 * the coefficients every fast path of the plan uses (ew_bn_coeffs). */
void plan_bn_coefficients(const struct dlas_node *n, float *scale, float *shift);

/* Batchnorm node id (then `post`) over its input given as consecutive
 * channel ranges, each in its own buffer: a concatenation read in place.
 * DLAS_ERR_UNSUPPORTED (no message) where plan_bn_f32 says no: use
 * the reference operator. */
int plan_batchnorm(const struct dlas_graph *g, int id, int64_t batch,
                   const struct plan_part *parts, int n_parts, float *out, enum plan_post post,
                   const struct dlas_backend *be);

/* 1 when node `pool` is an average pool whose every window lies inside its
 * input (no padding, no ceil-mode overhang): each divides by kh * kw. */
int plan_avgpool_full(const struct dlas_graph *g, int pool);
/* Average pool node `pool` (plan_avgpool_full) over `planes` planes of its
 * input's height and width, whatever node they come from, split over the
 * backend's threads. */
void plan_avgpool_planes(const struct dlas_graph *g, int pool, int64_t planes, const float *in,
                         float *out, const struct dlas_backend *be);

/* The threads the plan's own passes split over: the backend's, where it
 * runs parallel loops; else 1. */
int plan_pass_threads(const struct dlas_backend *be);

/* y = post(y), split over the backend's threads when large. */
void plan_post_inplace(const struct dlas_backend *be, float *y, int64_t n, enum plan_post post);

#endif
