/* Backend "cuda": one NVIDIA GPU through the CUDA runtime. One stream per
 * backend instance carries everything the plan and its primitives queue;
 * device memory comes from a pool that keeps freed blocks for reuse;
 * timing uses CUDA events on that stream; a forward can be captured into a
 * CUDA graph and replayed. Without a driver or a device, init() reports the
 * backend unavailable with CUDA's reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cudnn.h>

#include "backend.h"

int cb_check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return DLAS_OK;
    int st = e == cudaErrorMemoryAllocation ? DLAS_ERR_NOMEM
             : (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ||
                e == cudaErrorSystemDriverMismatch || e == cudaErrorCompatNotSupportedOnDevice)
                 ? DLAS_ERR_UNAVAILABLE
                 : DLAS_ERR_INTERNAL;
    (void)cudaGetLastError(); /* clear a sticky-free error so later calls report their own */
    return dlas_error(st, "cuda: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int cb_check_blas(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return DLAS_OK;
    return dlas_error(s == CUBLAS_STATUS_ALLOC_FAILED ? DLAS_ERR_NOMEM : DLAS_ERR_INTERNAL,
                      "cuda: %s: %s", what, cublasGetStatusString(s));
}

static void drop_cache(struct cb_ctx *c);

/* ---- init / release ---------------------------------------------------------- */

static void describe_device(struct cb_ctx *c)
{
    struct cudaDeviceProp prop;
    int drv = 0, rt = 0;
    memset(&prop, 0, sizeof prop);
    cudaGetDeviceProperties(&prop, c->device);
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    size_t cudnn = cudnnGetVersion();
    int blas = 0;
    cublasGetVersion_v2(NULL, &blas);
    snprintf(c->describe, sizeof c->describe,
             "%s (sm_%d%d, %d SMs, %.0f GiB); CUDA driver %d.%d; CUDA runtime %d.%d; "
             "cuBLAS %d.%d.%d; cuDNN %zu.%zu.%zu; TF32 %s",
             prop.name, prop.major, prop.minor, prop.multiProcessorCount,
             (double)prop.totalGlobalMem / (1 << 30), drv / 1000, drv % 1000 / 10, rt / 1000,
             rt % 1000 / 10, blas / 10000, blas / 100 % 100, blas % 100, cudnn / 10000,
             cudnn / 100 % 100, cudnn % 100, c->tf32 ? "on" : "off");
}

static int be_init(const struct dlas_host *host, const struct dlas_params *p, void **out)
{
    *out = NULL;
    int64_t dev = p ? dlas_param_int(p, "device") : 0;
    int tf32 = p ? dlas_param_bool(p, "tf32") : 0;
    int graphs = p ? dlas_param_bool(p, "graphs") : 1;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return dlas_error(DLAS_ERR_UNAVAILABLE, "cuda: no usable GPU: %s (%s)",
                          cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (count < 1)
        return dlas_error(DLAS_ERR_UNAVAILABLE, "cuda: no CUDA device found");
    if (dev < 0 || dev >= count)
        return dlas_error(DLAS_ERR_INVALID, "cuda: device = %lld, but this machine has %d (0..%d)",
                          (long long)dev, count, count - 1);
    struct cb_ctx *c = host->alloc(sizeof *c);
    if (!c)
        return dlas_error(DLAS_ERR_NOMEM, "cuda: cannot allocate the backend context");
    c->host = host;
    c->device = (int)dev;
    c->tf32 = tf32;
    c->graphs = graphs;
    int rc = cb_check(cudaSetDevice(c->device), "selecting the device");
    if (!rc)
        rc = cb_check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking),
                      "creating the stream");
    if (rc) {
        host->free(c);
        return rc;
    }
    describe_device(c);
    host->log(DLAS_LOG_DEBUG, "cuda: %s", c->describe);
    *out = c;
    return DLAS_OK;
}

static void be_release(void *ctx)
{
    struct cb_ctx *c = ctx;
    if (!c)
        return;
    cudaSetDevice(c->device);
    cudaStreamSynchronize(c->stream);
    drop_cache(c);
    free(c->cache);
    for (int i = 0; i < c->n_live; i++) /* not freed by their owners */
        cudaFree(c->live[i].ptr);
    free(c->live);
    for (int i = 0; i < c->n_marks; i++)
        cudaEventDestroy(c->marks[i]);
    free(c->marks);
    if (c->cublas)
        cublasDestroy(c->cublas);
    if (c->blas_ws)
        cudaFree(c->blas_ws);
    if (c->cudnn)
        cudnnDestroy(c->cudnn);
    cudaStreamDestroy(c->stream);
    c->host->free(c);
}

static int be_threads(void *ctx) { return 1; }

/* Host-side work (a CPU primitive's helper) runs on the calling thread. */
static void be_parallel_for(void *ctx, int64_t n, dlas_range_fn fn, void *arg)
{
    if (n > 0)
        fn(arg, 0, n, 0);
}

/* ---- memory: a pool of device blocks ----------------------------------------- */

/* Sizes round up to 512 bytes (and to 2 MiB steps past 16 MiB) so that the
 * same buffer shapes find each other again; a cached block serves a request
 * it exceeds by at most a quarter. */
static size_t round_size(size_t b)
{
    size_t q = b > (16u << 20) ? (2u << 20) : 512u;
    return (b + q - 1) / q * q;
}

static int push_block(struct pool_block **v, int *n, int *cap, void *ptr, size_t bytes)
{
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 32;
        struct pool_block *nb = realloc(*v, (size_t)nc * sizeof *nb);
        if (!nb)
            return DLAS_ERR_NOMEM;
        *v = nb;
        *cap = nc;
    }
    (*v)[(*n)++] = (struct pool_block){ptr, bytes};
    return DLAS_OK;
}

static void drop_cache(struct cb_ctx *c)
{
    cudaStreamSynchronize(c->stream);
    for (int i = 0; i < c->n_cache; i++)
        cudaFree(c->cache[i].ptr);
    c->n_cache = 0;
    c->bytes_cached = 0;
}

static void *be_alloc(void *ctx, size_t bytes)
{
    struct cb_ctx *c = ctx;
    size_t need = round_size(bytes ? bytes : 1);
    int best = -1;
    for (int i = 0; i < c->n_cache; i++)
        if (c->cache[i].bytes >= need && c->cache[i].bytes <= need + need / 4 &&
            (best < 0 || c->cache[i].bytes < c->cache[best].bytes))
            best = i;
    void *ptr = NULL;
    size_t got = need;
    if (best >= 0) {
        ptr = c->cache[best].ptr;
        got = c->cache[best].bytes;
        c->cache[best] = c->cache[--c->n_cache];
        c->bytes_cached -= got;
    } else {
        cudaError_t e = cudaMalloc(&ptr, need);
        if (e != cudaSuccess && c->n_cache) { /* give the cache back and retry */
            (void)cudaGetLastError();
            drop_cache(c);
            e = cudaMalloc(&ptr, need);
        }
        if (e != cudaSuccess) {
            cb_check(e, "allocating device memory");
            return NULL;
        }
    }
    if (push_block(&c->live, &c->n_live, &c->cap_live, ptr, got)) {
        cudaFree(ptr);
        dlas_error(DLAS_ERR_NOMEM, "cuda: out of host memory for the pool");
        return NULL;
    }
    c->bytes_in_use += got;
    if (c->bytes_in_use > c->bytes_peak)
        c->bytes_peak = c->bytes_in_use;
    return ptr;
}

static void be_free(void *ctx, void *p)
{
    struct cb_ctx *c = ctx;
    if (!p)
        return;
    int k = -1;
    for (int i = c->n_live - 1; i >= 0 && k < 0; i--)
        if (c->live[i].ptr == p)
            k = i;
    if (k < 0) {
        c->host->log(DLAS_LOG_WARN, "cuda: free of %p, which the pool did not allocate", p);
        return;
    }
    struct pool_block b = c->live[k];
    c->live[k] = c->live[--c->n_live];
    c->bytes_in_use -= b.bytes;
    /* work queued before the free may still read the block: a later
     * allocation reuses it only after the stream has drained */
    cudaStreamSynchronize(c->stream);
    if (push_block(&c->cache, &c->n_cache, &c->cap_cache, b.ptr, b.bytes))
        cudaFree(b.ptr);
    else
        c->bytes_cached += b.bytes;
}

static int be_sync(void *ctx)
{
    struct cb_ctx *c = ctx;
    return cb_check(cudaStreamSynchronize(c->stream), "synchronising the stream");
}

static double be_now(void *ctx)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int be_copy_in(void *ctx, void *dst, const void *src, size_t bytes)
{
    struct cb_ctx *c = ctx;
    return cb_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream),
                    "copying to the device");
}

static int be_copy_out(void *ctx, void *dst, const void *src, size_t bytes)
{
    struct cb_ctx *c = ctx;
    int rc = cb_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream),
                      "copying to the host");
    return rc ? rc : be_sync(ctx);
}

static int be_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    struct cb_ctx *c = ctx;
    return cb_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream),
                    "copying on the device");
}

/* ---- events ------------------------------------------------------------------ */

static int be_marks_reserve(void *ctx, int n)
{
    struct cb_ctx *c = ctx;
    if (n <= c->n_marks)
        return DLAS_OK;
    cudaEvent_t *m = realloc(c->marks, (size_t)n * sizeof *m);
    if (!m)
        return dlas_error(DLAS_ERR_NOMEM, "cuda: out of memory for %d events", n);
    c->marks = m;
    for (; c->n_marks < n; c->n_marks++) {
        int rc = cb_check(cudaEventCreate(&c->marks[c->n_marks]), "creating an event");
        if (rc)
            return rc;
    }
    return DLAS_OK;
}

static int be_mark(void *ctx, int i)
{
    struct cb_ctx *c = ctx;
    if (i < 0 || i >= c->n_marks)
        return dlas_error(DLAS_ERR_INVALID, "cuda: mark %d of %d", i, c->n_marks);
    return cb_check(cudaEventRecord(c->marks[i], c->stream), "recording an event");
}

static double be_elapsed(void *ctx, int i, int j)
{
    struct cb_ctx *c = ctx;
    float ms = 0;
    if (i < 0 || j < 0 || i >= c->n_marks || j >= c->n_marks ||
        cb_check(cudaEventSynchronize(c->marks[j]), "waiting for an event") ||
        cb_check(cudaEventElapsedTime(&ms, c->marks[i], c->marks[j]), "reading an event"))
        return -1.0;
    return ms * 1e-3;
}

/* ---- graphs -------------------------------------------------------------------- */

static int be_capture_begin(void *ctx)
{
    struct cb_ctx *c = ctx;
    if (!c->graphs)
        return dlas_error(DLAS_ERR_UNSUPPORTED, "cuda: graphs = false");
    return cb_check(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal),
                    "beginning a graph capture");
}

static int be_capture_end(void *ctx, void **out)
{
    struct cb_ctx *c = ctx;
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    *out = NULL;
    int rc = cb_check(cudaStreamEndCapture(c->stream, &g), "ending a graph capture");
    if (!rc)
        rc = cb_check(cudaGraphInstantiate(&x, g, 0), "instantiating a graph");
    if (g)
        cudaGraphDestroy(g);
    if (!rc)
        *out = x;
    return rc;
}

static int be_graph_launch(void *ctx, void *graph)
{
    struct cb_ctx *c = ctx;
    return cb_check(cudaGraphLaunch((cudaGraphExec_t)graph, c->stream), "launching a graph");
}

static void be_graph_free(void *ctx, void *graph)
{
    if (graph)
        cudaGraphExecDestroy((cudaGraphExec_t)graph);
}

/* ---- handles and provenance ------------------------------------------------------ */

cublasHandle_t cb_cublas(struct cb_ctx *c)
{
    if (c->cublas)
        return c->cublas;
    cublasHandle_t h;
    if (cb_check_blas(cublasCreate(&h), "creating the cuBLAS handle"))
        return NULL;
    cublasSetStream(h, c->stream);
    /* a workspace of its own, so that cuBLAS never allocates while the
     * plan captures a graph */
    if (!c->blas_ws && cb_check(cudaMalloc(&c->blas_ws, CB_BLAS_WS), "allocating cuBLAS's workspace")) {
        cublasDestroy(h);
        return NULL;
    }
    cublasSetWorkspace(h, c->blas_ws, CB_BLAS_WS);
    /* fp32 GEMMs stay fp32 unless TF32 was asked for */
    cublasSetMathMode(h, c->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    c->cublas = h;
    return h;
}

static void *be_native(void *ctx, const char *name)
{
    struct cb_ctx *c = ctx;
    if (!strcmp(name, DLAS_NATIVE_CUDA_STREAM))
        return c->stream;
    if (!strcmp(name, DLAS_NATIVE_CUBLAS))
        return cb_cublas(c);
    if (!strcmp(name, DLAS_NATIVE_CUDA_TF32))
        return &c->tf32;
    if (!strcmp(name, DLAS_NATIVE_CUDNN)) {
        if (!c->cudnn) {
            cudnnStatus_t s = cudnnCreate(&c->cudnn);
            if (s != CUDNN_STATUS_SUCCESS) {
                dlas_error(DLAS_ERR_UNAVAILABLE, "cuda: creating the cuDNN handle: %s",
                           cudnnGetErrorString(s));
                c->cudnn = NULL;
                return NULL;
            }
            cudnnSetStream(c->cudnn, c->stream);
        }
        return c->cudnn;
    }
    return NULL;
}

static int be_describe(void *ctx, char *buf, size_t len)
{
    struct cb_ctx *c = ctx;
    snprintf(buf, len, "%s", c->describe);
    return DLAS_OK;
}

/* ---- the component ------------------------------------------------------------------ */

static const struct dlas_param_spec be_params[] = {
    {"device", DLAS_PARAM_INT, 0, "0", 0, 1024, NULL, "CUDA device ordinal"},
    {"graphs", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "capture each forward once per batch size as a CUDA graph and replay it (removes the "
     "launch overhead of many small kernels)"},
    {"tf32", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "let cuBLAS and cuDNN use TF32 tensor cores for fp32 (10-bit mantissa products); off "
     "keeps fp32 results within 1e-4 of the CPU reference"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_backend_ops be_ops = {
    .size = sizeof(struct dlas_backend_ops),
    .device = "cuda",
    .init = be_init,
    .threads = be_threads,
    .parallel_for = be_parallel_for,
    .alloc = be_alloc,
    .free = be_free,
    .sync = be_sync,
    .now = be_now,
    .release = be_release,
    .flags = DLAS_BACKEND_DEVICE_MEMORY,
    .copy_in = be_copy_in,
    .copy_out = be_copy_out,
    .copy = be_copy,
    .node_prepare = cb_node_prepare,
    .node_run = cb_node_run,
    .node_release = cb_node_release,
    .marks_reserve = be_marks_reserve,
    .mark = be_mark,
    .elapsed = be_elapsed,
    .capture_begin = be_capture_begin,
    .capture_end = be_capture_end,
    .graph_launch = be_graph_launch,
    .graph_free = be_graph_free,
    .native = be_native,
    .describe = be_describe,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_BACKEND, "cuda",
     "one NVIDIA GPU: a stream, a device memory pool, CUDA-event timing, CUDA graphs; the "
     "whole forward on the device",
     "NVIDIA CUDA C++ Programming Guide, release 13.0 (streams, events, graphs)", be_params,
     &be_ops},
};

DLAS_PLUGIN("cuda", "0.1.0", "CUDA GPU backend", components)
