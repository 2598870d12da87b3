/* The ops table of a convolution primitive plugin, CPU or GPU: the same
 * nine fields in every one of them. Not a plugin; header only, included by
 * prim_common.h and cuda_prim.h. */
#ifndef DLAS_PRIM_CONV_OPS_H
#define DLAS_PRIM_CONV_OPS_H

#include <dlas/plugin.h>

/* A conv2d primitive for backends of `device` ("cpu", "cuda") that applies
 * the layer's activation itself, fp32 only (no run_int8), from its five
 * functions:
 *     static const struct dlas_primitive_ops ops =
 *         PRIM_CONV_OPS("cpu", supports, prepare, workspace, run, release); */
#define PRIM_CONV_OPS(device_, supports_, prepare_, workspace_, run_, release_)              \
    {                                                                                       \
        .size = sizeof(struct dlas_primitive_ops), .op = "conv2d", .device = (device_),     \
        .supports = (supports_), .prepare = (prepare_), .workspace = (workspace_),          \
        .run = (run_), .release = (release_), .flags = DLAS_PRIM_ACTIVATION,                \
    }

/* The same, for a primitive that also adds a residual as it stores its
 * results (DLAS_PRIM_RESIDUAL): run_residual(state, batch, in, res, out, ws,
 * prof), of which run is the call with res NULL. */
#define PRIM_CONV_OPS_RESIDUAL(device_, supports_, prepare_, workspace_, run_, release_,      \
                               run_residual_)                                               \
    {                                                                                       \
        .size = sizeof(struct dlas_primitive_ops), .op = "conv2d", .device = (device_),     \
        .supports = (supports_), .prepare = (prepare_), .workspace = (workspace_),          \
        .run = (run_), .release = (release_),                                               \
        .flags = DLAS_PRIM_ACTIVATION | DLAS_PRIM_RESIDUAL, .run_residual = (run_residual_), \
    }

#endif
