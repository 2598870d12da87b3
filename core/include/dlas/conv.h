/* The convolution descriptor shared by the graph, the plan, the trainer,
 * the kernels and every primitive, and its one validator. Pure geometry: no
 * graph, no plugin. */
#ifndef DLAS_CONV_H
#define DLAS_CONV_H

#include <stddef.h>
#include <stdint.h>

struct dlas_conv_quant;

#ifdef __cplusplus
extern "C" {
#endif

/* An activation applied to every output of a convolution. */
enum dlas_activation {
    DLAS_ACT_NONE = 0,
    DLAS_ACT_RELU = 1,  /* max(0, x), NaN kept (torch.relu) */
    DLAS_ACT_RELU6 = 2  /* min(6, max(0, x)), NaN kept */
};

/* Everything a convolution primitive needs to know about one layer. */
struct dlas_conv_desc {
    int64_t batch;                   /* largest batch run() will be given */
    int64_t in_c, in_h, in_w;
    int64_t out_c, out_h, out_w;
    int kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
    int has_bias;
    /* ABI 1.2: enum dlas_activation, applied after the bias. The core sets
     * it only for primitives whose ops declare DLAS_PRIM_ACTIVATION (so that
     * the activation costs no separate pass over the output); for others it
     * stays DLAS_ACT_NONE. */
    int activation;
    /* ABI 1.3: the layer's int8 quantisation (<dlas/quant.h>), set by the
     * core only for primitives whose ops declare DLAS_PRIM_INT8 and only for
     * layers quantised by a compressor; NULL for an fp32 layer. */
    const struct dlas_conv_quant *quant;
    /* ABI 1.3: the fraction of the layer's weights that are exactly zero
     * (pruned), as the core counted them when it built the plan (after
     * folding batchnorm, which keeps zeros); 0 for a dense layer and from
     * callers that do not count. Sparse primitives may refuse layers below
     * their break-even with it; the tuner prunes its random weights to it. */
    float weight_sparsity;
};

/* The one validator of a descriptor, used by the graph, the plan and every
 * primitive: sizes, strides and dilations of at least 1, padding not
 * negative, groups dividing both channel counts, the dilated kernel fitting
 * the padded input, a known activation, and out_h x out_w what the geometry
 * gives. DLAS_ERR_INVALID with the reason (also in why, when given). */
int dlas_conv_desc_check(const struct dlas_conv_desc *d, char *why, size_t len);
/* Fill out_h/out_w from the rest (then check as above). */
int dlas_conv_desc_finish(struct dlas_conv_desc *d);
int64_t dlas_conv_desc_macs(const struct dlas_conv_desc *d); /* per sample */
/* "64x56x56 -> 64x56x56 k3x3 s1 p1 d1 g1" (+ " relu" / " relu6") */
void dlas_conv_desc_format(const struct dlas_conv_desc *d, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
