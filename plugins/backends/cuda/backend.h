/* The cuda backend's context, shared by its files. */
#ifndef DLAS_CUDA_BACKEND_H
#define DLAS_CUDA_BACKEND_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <dlas/plugin.h>

#define CB_BLAS_WS (32u << 20)

struct pool_block {
    void *ptr;
    size_t bytes;
};

struct cb_ctx {
    const struct dlas_host *host;
    int device, tf32, graphs;
    cudaStream_t stream;
    cublasHandle_t cublas; /* created on first use */
    void *blas_ws;         /* its workspace */
    cudnnHandle_t cudnn;   /* created on first use */
    /* the memory pool: blocks freed by the plan are kept for its next
     * allocation of a size they fit, and returned to CUDA at release */
    struct pool_block *cache, *live;
    int n_cache, cap_cache, n_live, cap_live;
    size_t bytes_in_use, bytes_peak, bytes_cached;
    cudaEvent_t *marks;
    int n_marks;
    char describe[512];
};

/* A CUDA status as a dlas status with the CUDA error string. */
int cb_check(cudaError_t e, const char *what);
int cb_check_blas(cublasStatus_t s, const char *what);
cublasHandle_t cb_cublas(struct cb_ctx *c);

int cb_node_prepare(void *ctx, const struct dlas_graph *g, int id, int activation, void **state);
int cb_node_run(void *state, int64_t batch, const float *const *in, float *out);
void cb_node_release(void *state);

#endif
