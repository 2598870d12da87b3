/* Reference operators: plain C, obviously correct, and the oracle every
 * primitive and optimisation is compared with. */
#ifndef DLAS_OPS_H
#define DLAS_OPS_H

#include <stdint.h>
#include <dlas/conv.h>
#include <dlas/graph.h>

#ifdef __cplusplus
extern "C" {
#endif

/* weight: out_c x (in_c/groups) x kh x kw; bias may be NULL. The
 * activation of d is applied. */
void dlas_ref_conv2d(const struct dlas_conv_desc *d, int64_t batch, const float *in,
                     const float *weight, const float *bias, float *out);

/* Reference forward of one non-input node over a batch. `in` holds the node's
 * input activations (n_inputs pointers, NCHW). */
int dlas_ref_node_forward(const struct dlas_graph *g, int id, int64_t batch,
                          const float *const *in, float *out);

/* Largest relative error max|a-b| / max(max|b|, tiny); used by conformance tests. */
double dlas_rel_error(const float *a, const float *b, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
