/* Primitive "cuda-depthwise": an own kernel for depthwise convolutions
 * (groups = in_c, out_c a multiple of in_c), the layers of MobileNet-style
 * networks that GEMM-based primitives handle badly (a reduction of only
 * kh x kw per output). Any kernel size, stride, padding and dilation; 3x3
 * and 5x5 kernels are unrolled. Refuses every other layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>

#include "../common/cuda_prim.h"
#include "kernels.h"

#define NAME "cuda-depthwise"

struct state {
    struct cp_conv c;
    struct cdw_geom G;
    int threads, per_thread;
};

static int supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                    size_t len)
{
    int rc = cp_check_desc(d, why, len);
    if (rc)
        return rc;
    if (d->groups != d->in_c || d->in_c < 2) {
        snprintf(why, len, "not depthwise (groups %d, in_c %lld)", d->groups, (long long)d->in_c);
        return DLAS_ERR_UNSUPPORTED;
    }
    int pt = p ? (int)dlas_param_int(p, "per_thread") : 1;
    if (pt != 1 && pt != 2 && pt != 4) {
        snprintf(why, len, "per_thread = %d is not 1, 2 or 4", pt);
        return DLAS_ERR_INVALID;
    }
    return DLAS_OK;
}

static int prepare(const struct dlas_host *host, const struct dlas_backend *be,
                   const struct dlas_conv_desc *d, const float *weight, const float *bias,
                   const struct dlas_params *p, void **out)
{
    *out = NULL;
    struct state *s;
    int rc = cp_conv_new(NAME, supports, be, d, p, sizeof *s, (void **)&s);
    if (rc)
        return rc;
    s->G = (struct cdw_geom){d->in_c, d->in_h, d->in_w, d->out_c, d->out_h, d->out_w,
                             d->out_c / d->in_c, d->kh, d->kw, d->stride_h, d->stride_w,
                             d->pad_h, d->pad_w, d->dil_h, d->dil_w, d->activation};
    s->threads = p ? (int)dlas_param_int(p, "threads") : 256;
    s->per_thread = p ? (int)dlas_param_int(p, "per_thread") : 1;
    rc = cp_conv_upload(&s->c, NAME, weight, (size_t)(d->out_c * d->kh * d->kw), bias);
    return cp_conv_finish(rc, s, cp_conv_release, out);
}

static int run(void *st, int64_t batch, const float *in, float *out, void *ws,
               struct dlas_profile *prof)
{
    struct state *s = st;
    int rc = cp_conv_batch(&s->c, NAME, batch);
    if (rc)
        return rc;
    return cp_cuda(cdw_conv(s->c.stream, &s->G, s->threads, s->per_thread, batch, in, s->c.w,
                            s->c.b, out),
                   NAME, "depthwise kernel");
}

static const struct dlas_param_spec params[] = {
    {"threads", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "256", 32, 1024, NULL,
     "threads per block (a multiple of 32 is best)"},
    {"per_thread", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "1", 1, 4, NULL,
     "neighbouring outputs of a row per thread: 1, 2 or 4"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_primitive_ops ops =
    PRIM_CONV_OPS("cuda", supports, prepare, cp_no_workspace, run, cp_conv_release);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "own depthwise convolution kernel (groups = in_c): one thread per output run",
     "A. G. Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile "
     "Vision Applications, arXiv:1704.04861, 2017 (depthwise separable convolution)",
     params, &ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "depthwise convolution on the GPU", components)
