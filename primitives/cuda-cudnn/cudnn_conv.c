/* Primitive "cuda-cudnn": the vendor library's convolution (cuDNN 9,
 * cudnnConvolutionForward) with cuDNN's own algorithm choice, the baseline
 * every GPU study compares with. By default the algorithm is the fastest that
 * cudnnFindConvolutionForwardAlgorithmEx measures for the layer at the plan's
 * batch (what PyTorch's cudnn.benchmark = True does); it can also be cuDNN's
 * heuristic pick or a named algorithm. fp32 throughout: the convolution's
 * math type is CUDNN_FMA_MATH unless the backend allows TF32. Bias and the
 * activation follow in one pass over the output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include <dlas/plugin.h>

#include "../common/cuda_prim.h"

#define NAME "cuda-cudnn"

cudaError_t ccd_bias_act(cudaStream_t s, float *y, int64_t n, int64_t plane, int64_t channels,
                         const float *bias, int act);

struct state {
    struct cp_conv c; /* be, d, stream, w, b */
    cudnnHandle_t h;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo; /* chosen at the plan's batch */
    cudnnConvolutionFwdAlgo_t run_algo; /* the one run at desc_batch */
    int64_t desc_batch; /* the batch xd and yd describe */
    size_t ws_bytes;
};

static const struct {
    const char *name;
    cudnnConvolutionFwdAlgo_t algo;
} algos[] = {
    {"implicit-gemm", CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM},
    {"implicit-precomp-gemm", CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM},
    {"gemm", CUDNN_CONVOLUTION_FWD_ALGO_GEMM},
    {"direct", CUDNN_CONVOLUTION_FWD_ALGO_DIRECT},
    {"fft", CUDNN_CONVOLUTION_FWD_ALGO_FFT},
    {"fft-tiling", CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING},
    {"winograd", CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD},
    {"winograd-nonfused", CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED},
};

static const char *algo_name(cudnnConvolutionFwdAlgo_t a)
{
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++)
        if (algos[i].algo == a)
            return algos[i].name;
    return "?";
}

static int cdnn(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return DLAS_OK;
    return dlas_error(s == CUDNN_STATUS_ALLOC_FAILED ? DLAS_ERR_NOMEM
                      : s == CUDNN_STATUS_NOT_SUPPORTED ? DLAS_ERR_UNSUPPORTED
                                                        : DLAS_ERR_INTERNAL,
                      NAME ": %s: %s", what, cudnnGetErrorString(s));
}

static int supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                    size_t len)
{
    int rc = cp_check_desc(d, why, len);
    if (rc)
        return rc;
    if (d->in_c * d->in_h * d->in_w > INT32_MAX || d->out_c * d->out_h * d->out_w > INT32_MAX ||
        d->batch > INT32_MAX) {
        snprintf(why, len, "tensor larger than cuDNN's 32-bit descriptors");
        return DLAS_ERR_UNSUPPORTED;
    }
    return DLAS_OK;
}

static int set_batch(struct state *s, int64_t batch)
{
    const struct dlas_conv_desc *d = &s->c.d;
    int rc = cdnn(cudnnSetTensor4dDescriptor(s->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                             (int)batch, (int)d->in_c, (int)d->in_h, (int)d->in_w),
                  "input descriptor");
    if (!rc)
        rc = cdnn(cudnnSetTensor4dDescriptor(s->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                             (int)batch, (int)d->out_c, (int)d->out_h,
                                             (int)d->out_w),
                  "output descriptor");
    if (!rc)
        s->desc_batch = batch;
    return rc;
}

static void release(void *st);

/* The algorithm: measured (find), cuDNN's heuristic, or the one named. */
static int choose(struct state *s, const char *how, int tf32, size_t ws_limit)
{
    cudnnMathType_t fp32_math = tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++)
        if (!strcmp(how, algos[i].name)) {
            s->algo = algos[i].algo;
            return cdnn(cudnnGetConvolutionForwardWorkspaceSize(s->h, s->xd, s->wd, s->cd, s->yd,
                                                                s->algo, &s->ws_bytes),
                        algos[i].name);
        }
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0, rc = DLAS_OK;
    if (!strcmp(how, "heuristic")) {
        rc = cdnn(cudnnGetConvolutionForwardAlgorithm_v7(s->h, s->xd, s->wd, s->cd, s->yd,
                                                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n,
                                                         perf),
                  "heuristic algorithm choice");
    } else { /* find: time every algorithm on device buffers of the layer's size */
        const struct dlas_conv_desc *d = &s->c.d;
        size_t xb = (size_t)(d->batch * d->in_c * d->in_h * d->in_w) * sizeof(float);
        size_t yb = (size_t)(d->batch * d->out_c * d->out_h * d->out_w) * sizeof(float);
        void *x = NULL, *y = NULL, *ws = NULL;
        size_t wsb = ws_limit;
        rc = cp_cuda(cudaMalloc(&x, xb), NAME, "allocating the search input");
        if (!rc)
            rc = cp_cuda(cudaMalloc(&y, yb), NAME, "allocating the search output");
        if (!rc)
            rc = cp_cuda(cudaMemsetAsync(x, 0, xb, s->c.stream), NAME, "clearing the search input");
        while (!rc && wsb && cudaMalloc(&ws, wsb) != cudaSuccess) {
            (void)cudaGetLastError();
            wsb /= 2; /* less free memory than the limit: search within what there is */
        }
        if (!rc)
            rc = cdnn(cudnnFindConvolutionForwardAlgorithmEx(
                          s->h, s->xd, x, s->wd, s->c.w, s->cd, s->yd, y,
                          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, ws, wsb),
                      "measuring the algorithms (cudnnFindConvolutionForwardAlgorithmEx)");
        cudaStreamSynchronize(s->c.stream);
        cudaFree(x);
        cudaFree(y);
        cudaFree(ws);
    }
    if (rc)
        return rc;
    for (int i = 0; i < n; i++) {
        /* fp32 products only, unless TF32 was allowed */
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ws_limit ||
            (!tf32 && perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH))
            continue;
        s->algo = perf[i].algo;
        s->ws_bytes = perf[i].memory;
        return cdnn(cudnnSetConvolutionMathType(s->cd, perf[i].mathType == CUDNN_DEFAULT_MATH
                                                           ? fp32_math
                                                           : perf[i].mathType),
                    "math type");
    }
    return dlas_error(DLAS_ERR_UNSUPPORTED, NAME ": cuDNN offers no fp32 algorithm for this layer "
                                           "within %zu MiB of workspace",
                      ws_limit >> 20);
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
    cudnnHandle_t h = cp_handle(be, NAME, DLAS_NATIVE_CUDNN, "cuDNN");
    if (!h)
        return cp_conv_finish(DLAS_ERR_UNAVAILABLE, s, release, out);
    s->h = h;
    const int tf32 = cp_tf32(be);
    const char *how = p ? dlas_param_str(p, "algo") : NULL;
    size_t ws_limit = (size_t)(p ? dlas_param_int(p, "workspace_mb") : 1024) << 20;
    const int64_t wn = d->out_c * (d->in_c / d->groups) * d->kh * d->kw;
    rc = cdnn(cudnnCreateTensorDescriptor(&s->xd), "descriptor");
    if (!rc)
        rc = cdnn(cudnnCreateTensorDescriptor(&s->yd), "descriptor");
    if (!rc)
        rc = cdnn(cudnnCreateFilterDescriptor(&s->wd), "descriptor");
    if (!rc)
        rc = cdnn(cudnnCreateConvolutionDescriptor(&s->cd), "descriptor");
    if (!rc)
        rc = cdnn(cudnnSetFilter4dDescriptor(s->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                             (int)d->out_c, (int)(d->in_c / d->groups), d->kh,
                                             d->kw),
                  "filter descriptor");
    if (!rc)
        rc = cdnn(cudnnSetConvolution2dDescriptor(s->cd, d->pad_h, d->pad_w, d->stride_h,
                                                  d->stride_w, d->dil_h, d->dil_w,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                  "convolution descriptor");
    if (!rc)
        rc = cdnn(cudnnSetConvolutionGroupCount(s->cd, d->groups), "group count");
    if (!rc)
        rc = cdnn(cudnnSetConvolutionMathType(s->cd, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH),
                  "math type");
    if (!rc)
        rc = set_batch(s, d->batch);
    if (!rc)
        rc = cp_conv_upload(&s->c, NAME, weight, (size_t)wn, bias);
    if (!rc)
        rc = choose(s, how ? how : "find", tf32, ws_limit);
    s->run_algo = s->algo;
    if (!rc)
        host->log(DLAS_LOG_DEBUG, NAME ": algorithm %s, workspace %zu bytes",
                  algo_name(s->algo), s->ws_bytes);
    return cp_conv_finish(rc, s, release, out);
}

static size_t workspace(void *st, int64_t batch)
{
    struct state *s = st;
    return s->ws_bytes;
}

/* The algorithm for a batch smaller than the plan's. The one chosen at the
 * plan's batch may need more workspace than the plan holds at another batch,
 * or refuse it (cudnnConvolutionForward: CUDNN_STATUS_BAD_PARAM, seen on
 * DenseNet layers planned at batch 2 and run at 1, depending on which
 * algorithm the measurement picked); implicit GEMM needs no workspace and
 * takes every fp32 NCHW shape. */
static cudnnConvolutionFwdAlgo_t algo_for_batch(struct state *s)
{
    size_t need = 0;
    if (s->desc_batch == s->c.d.batch)
        return s->algo;
    if (cudnnGetConvolutionForwardWorkspaceSize(s->h, s->xd, s->wd, s->cd, s->yd, s->algo,
                                                &need) == CUDNN_STATUS_SUCCESS &&
        need <= s->ws_bytes)
        return s->algo;
    return CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
}

static cudnnStatus_t forward(struct state *s, const float *in, float *out, void *ws)
{
    const float one = 1.0f, zero = 0.0f;
    return cudnnConvolutionForward(s->h, &one, s->xd, in, s->wd, s->c.w, s->cd, s->run_algo, ws,
                                   s->ws_bytes, &zero, s->yd, out);
}

static int run(void *st, int64_t batch, const float *in, float *out, void *ws,
               struct dlas_profile *prof)
{
    struct state *s = st;
    const struct dlas_conv_desc *d = &s->c.d;
    int rc = cp_conv_batch(&s->c, NAME, batch);
    if (rc)
        return rc;
    if (batch != s->desc_batch) {
        rc = set_batch(s, batch);
        if (rc)
            return rc;
        s->run_algo = algo_for_batch(s);
    }
    cudnnStatus_t st_fwd = forward(s, in, out, ws);
    if (st_fwd != CUDNN_STATUS_SUCCESS && batch != d->batch &&
        s->run_algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) {
        /* refused at this batch although the workspace query passed */
        s->run_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        st_fwd = forward(s, in, out, ws);
    }
    rc = cdnn(st_fwd, "cudnnConvolutionForward");
    if (!rc)
        rc = cp_cuda(ccd_bias_act(s->c.stream, out, batch * d->out_c * d->out_h * d->out_w,
                                  d->out_h * d->out_w, d->out_c, s->c.b, d->activation),
                     NAME, "bias and activation");
    return rc;
}

static void release(void *st)
{
    struct state *s = st;
    if (!s)
        return;
    if (s->xd)
        cudnnDestroyTensorDescriptor(s->xd);
    if (s->yd)
        cudnnDestroyTensorDescriptor(s->yd);
    if (s->wd)
        cudnnDestroyFilterDescriptor(s->wd);
    if (s->cd)
        cudnnDestroyConvolutionDescriptor(s->cd);
    cp_conv_free(&s->c);
}

static const struct dlas_param_spec params[] = {
    {"algo", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "find", 0, 0,
     "find|heuristic|implicit-gemm|implicit-precomp-gemm|gemm|direct|fft|fft-tiling|winograd|"
     "winograd-nonfused",
     "find = the fastest algorithm measured on the layer at prepare time (as "
     "cudnn.benchmark); heuristic = cuDNN's guess without measuring; or one algorithm by name"},
    {"workspace_mb", DLAS_PARAM_INT, 0, "1024", 0, 65536, NULL,
     "largest workspace an algorithm may use, MiB"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_primitive_ops ops =
    PRIM_CONV_OPS("cuda", supports, prepare, workspace, run, release);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "NVIDIA cuDNN's convolution with its own algorithm choice (measured, as cudnn.benchmark)",
     "S. Chetlur et al., cuDNN: Efficient Primitives for Deep Learning, arXiv:1410.0759, 2014",
     params, &ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "cuDNN convolution (GPU baseline)", components)
