/* What the GPU primitive plugins share (header only, C): the backend's
 * stream and handles, weight upload, error text. Each GPU primitive runs only
 * on a device backend that hands out a CUDA stream (the `cuda` backend). */
#ifndef DLAS_CUDA_PRIM_H
#define DLAS_CUDA_PRIM_H

#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>

#include <dlas/plugin.h>

#include "conv_ops.h"

static inline int cp_cuda(cudaError_t e, const char *prim, const char *what)
{
    if (e == cudaSuccess)
        return DLAS_OK;
    (void)cudaGetLastError();
    return dlas_error(e == cudaErrorMemoryAllocation ? DLAS_ERR_NOMEM : DLAS_ERR_INTERNAL,
                      "%s: %s: %s (%s)", prim, what, cudaGetErrorString(e), cudaGetErrorName(e));
}

/* The backend's stream, or DLAS_ERR_UNAVAILABLE on a backend without one. */
static inline int cp_stream(const struct dlas_backend *be, const char *prim, cudaStream_t *s)
{
    *s = (cudaStream_t)dlas_backend_native(be, DLAS_NATIVE_CUDA_STREAM);
    if (!*s)
        return dlas_error(DLAS_ERR_UNAVAILABLE,
                          "%s runs on a CUDA device backend (backend 'cuda'), not on '%s'", prim,
                          be && be->ops && be->ops->device ? be->ops->device : "?");
    return DLAS_OK;
}

/* 1 when the backend allows TF32 tensor-core math for fp32. */
static inline int cp_tf32(const struct dlas_backend *be)
{
    const int *t = (const int *)dlas_backend_native(be, DLAS_NATIVE_CUDA_TF32);
    return t && *t;
}

/* n floats from the host into backend memory of the backend's pool. */
static inline int cp_upload(const struct dlas_backend *be, const char *prim, const float *src,
                            size_t n, float **dst)
{
    *dst = (float *)be->ops->alloc(be->ctx, (n ? n : 1) * sizeof(float));
    if (!*dst)
        return dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate %zu floats on the device", prim, n);
    if (!n)
        return DLAS_OK;
    int rc = be->ops->copy_in(be->ctx, *dst, src, n * sizeof(float));
    if (!rc)
        rc = be->ops->sync(be->ctx); /* the host buffer may go once prepare returns */
    if (rc) {
        be->ops->free(be->ctx, *dst);
        *dst = NULL;
    }
    return rc;
}

/* A well-formed description (the plan's are; a hand-made one may not be). */
static inline int cp_check_desc(const struct dlas_conv_desc *d, char *why, size_t len)
{
    if (d->batch < 1 || d->in_c < 1 || d->out_c < 1 || d->groups < 1 || d->in_c % d->groups ||
        d->out_c % d->groups || d->kh < 1 || d->kw < 1 || d->stride_h < 1 || d->stride_w < 1 ||
        d->dil_h < 1 || d->dil_w < 1 || d->pad_h < 0 || d->pad_w < 0 || d->out_h < 1 ||
        d->out_w < 1) {
        snprintf(why, len, "malformed convolution description");
        return DLAS_ERR_INVALID;
    }
    if (d->activation < DLAS_ACT_NONE || d->activation > DLAS_ACT_RELU6) {
        snprintf(why, len, "unknown activation %d", d->activation);
        return DLAS_ERR_INVALID;
    }
    return DLAS_OK;
}

/* ---- the state every GPU convolution starts with ------------------------- */

/* Where a prepared convolution runs, the layer, and its weights (in the
 * plugin's own layout) and bias in backend memory. Each plugin's state
 * begins with one, so that these steps are written once. */
struct cp_conv {
    const struct dlas_backend *be;
    struct dlas_conv_desc d;
    cudaStream_t stream;
    float *w, *b; /* b: NULL without a bias */
};

typedef int (*cp_supports_fn)(const struct dlas_conv_desc *d, const struct dlas_params *p,
                              char *why, size_t len);

/* prepare's first steps: the layer accepted (refused with supports' reason),
 * the backend's stream taken, and a zeroed state of `size` bytes (a struct
 * that begins with struct cp_conv) filled in. */
static inline int cp_conv_new(const char *prim, cp_supports_fn supports,
                              const struct dlas_backend *be, const struct dlas_conv_desc *d,
                              const struct dlas_params *p, size_t size, void **state)
{
    *state = NULL;
    char why[256];
    int rc = supports(d, p, why, sizeof why);
    if (rc)
        return dlas_error(rc, "%s: %s", prim, why);
    cudaStream_t stream;
    if ((rc = cp_stream(be, prim, &stream)))
        return rc;
    struct cp_conv *c = (struct cp_conv *)calloc(1, size);
    if (!c)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    c->be = be;
    c->d = *d;
    c->stream = stream;
    *state = c;
    return DLAS_OK;
}

/* A handle the backend lends (which: DLAS_NATIVE_CUBLAS, DLAS_NATIVE_CUDNN;
 * what: its name for the message), or NULL with DLAS_ERR_UNAVAILABLE set. */
static inline void *cp_handle(const struct dlas_backend *be, const char *prim,
                              const char *which, const char *what)
{
    void *h = dlas_backend_native(be, which);
    if (!h)
        dlas_error(DLAS_ERR_UNAVAILABLE, "%s: the backend has no %s handle", prim, what);
    return h;
}

/* The weights (n floats, already in the plugin's layout) and, when the layer
 * has one, the bias into backend memory. */
static inline int cp_conv_upload(struct cp_conv *c, const char *prim, const float *w, size_t n,
                                 const float *bias)
{
    int rc = cp_upload(c->be, prim, w, n, &c->w);
    if (!rc && c->d.has_bias && bias)
        rc = cp_upload(c->be, prim, bias, (size_t)c->d.out_c, &c->b);
    return rc;
}

/* A run's batch: at least one image, at most the prepared batch. */
static inline int cp_conv_batch(const struct cp_conv *c, const char *prim, int64_t batch)
{
    if (batch < 1 || batch > c->d.batch)
        return dlas_error(DLAS_ERR_INVALID, "%s: batch %lld outside 1..%lld", prim,
                          (long long)batch, (long long)c->d.batch);
    return DLAS_OK;
}

/* The weights, the bias and the state itself (after the plugin released
 * what it added). */
static inline void cp_conv_free(struct cp_conv *c)
{
    if (!c)
        return;
    if (c->w)
        c->be->ops->free(c->be->ctx, c->w);
    if (c->b)
        c->be->ops->free(c->be->ctx, c->b);
    free(c);
}

/* release() of a plugin whose state holds nothing beyond its cp_conv that
 * needs freeing (the state begins with the cp_conv). */
static inline void cp_conv_release(void *state) { cp_conv_free((struct cp_conv *)state); }

/* prepare's last step: on success the state goes to *out, on an error
 * (rc) it is released. */
static inline int cp_conv_finish(int rc, void *state, void (*release)(void *), void **out)
{
    if (rc) {
        release(state);
        return rc;
    }
    *out = state;
    return DLAS_OK;
}

/* workspace() of a plugin that needs none. */
static inline size_t cp_no_workspace(void *state, int64_t batch)
{
    (void)state;
    (void)batch;
    return 0;
}

#endif
