/* Primitive "cuda-im2col-gemm": convolution as im2col + SGEMM on the GPU
 * (Chellapilla et al. 2006), the im2col an own kernel, the GEMM cuBLAS's
 * (fp32; TF32 only if the backend allows it). Images are processed in
 * chunks of `images` (the workspace holds one chunk of column matrices); a
 * chunk's GEMMs are one strided-batched cuBLAS call: over its images when
 * groups = 1, over the groups of each image otherwise. 1x1, stride-1,
 * unpadded layers skip im2col (the input is the column matrix). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>

#include <dlas/plugin.h>

#include "../common/cuda_prim.h"
#include "kernels.h"

#define NAME "cuda-im2col-gemm"

struct state {
    struct cp_conv c; /* be, d, stream, w, b */
    cublasHandle_t blas;
    struct cig_geom G;
    int64_t K, P, chunk; /* GEMM depth, columns per image, images per chunk */
    int pointwise;       /* 1x1 s1 p0 d1: no im2col */
};

static int blas(cublasStatus_t s, const char *what)
{
    return s == CUBLAS_STATUS_SUCCESS
               ? DLAS_OK
               : dlas_error(DLAS_ERR_INTERNAL, NAME ": %s: %s", what, cublasGetStatusString(s));
}

static int supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                    size_t len)
{
    int rc = cp_check_desc(d, why, len);
    if (rc)
        return rc;
    int64_t K = d->in_c / d->groups * d->kh * d->kw, P = d->out_h * d->out_w;
    if (K > INT32_MAX || P > INT32_MAX || d->out_c > INT32_MAX || d->batch * d->groups > INT32_MAX) {
        snprintf(why, len, "GEMM dimension beyond cuBLAS's int range");
        return DLAS_ERR_UNSUPPORTED;
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
    cublasHandle_t h = cp_handle(be, NAME, DLAS_NATIVE_CUBLAS, "cuBLAS");
    if (!h)
        return cp_conv_finish(DLAS_ERR_UNAVAILABLE, s, cp_conv_release, out);
    s->blas = h;
    s->G = (struct cig_geom){d->in_c, d->in_h, d->in_w, d->out_h, d->out_w, d->in_c / d->groups,
                             d->kh, d->kw, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
                             d->dil_h, d->dil_w};
    s->K = s->G.cg * d->kh * d->kw;
    s->P = d->out_h * d->out_w;
    s->pointwise = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 &&
                   d->pad_h == 0 && d->pad_w == 0;
    /* images per chunk: the knob, else as many as fit in workspace_mb */
    int64_t per_img = s->K * s->P * (d->groups > 1 ? d->groups : 1) * (int64_t)sizeof(float);
    int64_t chunk = p ? dlas_param_int(p, "images") : 0;
    if (chunk <= 0) {
        int64_t limit = (p ? dlas_param_int(p, "workspace_mb") : 512) << 20;
        chunk = per_img ? limit / per_img : d->batch;
    }
    s->chunk = chunk < 1 ? 1 : chunk > d->batch ? d->batch : chunk;
    rc = cp_conv_upload(&s->c, NAME, weight, (size_t)(d->out_c * s->K), bias);
    return cp_conv_finish(rc, s, cp_conv_release, out);
}

static size_t workspace(void *st, int64_t batch)
{
    struct state *s = st;
    if (s->pointwise)
        return 0;
    int64_t imgs = batch < s->chunk ? batch : s->chunk;
    return (size_t)(imgs * s->c.d.groups * s->K * s->P) * sizeof(float);
}

static int run(void *st, int64_t batch, const float *in, float *out, void *ws,
               struct dlas_profile *prof)
{
    struct state *s = st;
    const struct dlas_conv_desc *d = &s->c.d;
    int rc = cp_conv_batch(&s->c, NAME, batch);
    if (rc)
        return rc;
    const int64_t G = d->groups, M = d->out_c / G, K = s->K, P = s->P;
    const int64_t in_img = d->in_c * d->in_h * d->in_w, out_img = d->out_c * P;
    const float one = 1.0f, zero = 0.0f;
    float *col = ws;
    /* row-major out (M x P) = W (M x K) col (K x P) is column-major
     * out^T (P x M) = col^T (P x K) W^T (K x M) */
    for (int64_t i0 = 0; !rc && i0 < batch; i0 += s->chunk) {
        int64_t imgs = batch - i0 < s->chunk ? batch - i0 : s->chunk;
        const float *x = in + i0 * in_img;
        float *y = out + i0 * out_img;
        if (G == 1) {
            const float *B = x;
            if (!s->pointwise) {
                rc = cp_cuda(cig_im2col(s->c.stream, x, col, &s->G, imgs, 0), NAME, "im2col");
                B = col;
            }
            if (!rc)
                rc = blas(cublasSgemmStridedBatched(s->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)P,
                                                    (int)M, (int)K, &one, B, (int)P,
                                                    s->pointwise ? in_img : K * P, s->c.w, (int)K,
                                                    0, &zero, y, (int)P, out_img, (int)imgs),
                          "strided-batched GEMM");
            continue;
        }
        for (int64_t i = 0; !rc && i < imgs; i++) {
            /* one image: its groups' column matrices, then one batched GEMM */
            const float *xi = x + i * in_img;
            for (int g = 0; !rc && g < G && !s->pointwise; g++)
                rc = cp_cuda(cig_im2col(s->c.stream, xi, col + g * K * P, &s->G, 1, g), NAME,
                             "im2col");
            if (!rc)
                rc = blas(cublasSgemmStridedBatched(
                              s->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)P, (int)M, (int)K, &one,
                              s->pointwise ? xi : col, (int)P, K * P, s->c.w, (int)K, M * K, &zero,
                              y + i * out_img, (int)P, M * P, (int)G),
                          "grouped strided-batched GEMM");
        }
    }
    if (!rc)
        rc = cp_cuda(cig_bias_act(s->c.stream, out, batch * out_img, P, d->out_c, s->c.b,
                                  d->activation),
                     NAME, "bias and activation");
    return rc;
}

static const struct dlas_param_spec params[] = {
    {"images", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 256, NULL,
     "images per im2col + GEMM chunk; 0 = as many as workspace_mb holds"},
    {"workspace_mb", DLAS_PARAM_INT, 0, "512", 1, 65536, NULL,
     "column-matrix workspace when images = 0, MiB"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_primitive_ops ops =
    PRIM_CONV_OPS("cuda", supports, prepare, workspace, run, cp_conv_release);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "im2col (own kernel) + cuBLAS SGEMM, strided-batched over images or groups",
     "K. Chellapilla, S. Puri, P. Simard, High Performance Convolutional Neural Networks for "
     "Document Processing, IWFHR 2006",
     params, &ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "im2col + cuBLAS GEMM convolution on the GPU", components)
