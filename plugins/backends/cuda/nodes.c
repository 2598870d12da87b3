/* The cuda backend's operators for the graph's nodes other than
 * convolutions (which primitives run): prepared once per plan (parameters
 * folded and copied to the device), then queued on the backend's stream. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kernels.h"

struct node_state {
    struct cb_ctx *c;
    const struct dlas_graph *g;
    int id;
    enum dlas_op op;
    int act;
    int64_t per_in, per_out;    /* elements per sample of input 0 and of the output */
    int64_t channels, plane;    /* batchnorm, softmax */
    struct cbk_pool pool;       /* pools: planes per sample */
    int64_t in_f, out_f;        /* linear */
    float *w, *b;               /* device: linear weight/bias; batchnorm scale/shift */
    int n_inputs;
    int64_t *in_numel;          /* concat: elements per sample of each input */
};

static int64_t numel(const struct dlas_node *n)
{
    int64_t m = 1;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

static int f32(const struct dlas_node *n, const struct dlas_tensor *t, const char *what)
{
    if (!t->data)
        return dlas_error(DLAS_ERR_INVALID, "cuda: %s '%s' has no %s", dlas_op_name(n->op),
                          n->name, what);
    if (t->dtype != DLAS_F32)
        return dlas_error(DLAS_ERR_UNSUPPORTED, "cuda: %s '%s': %s is %s, not f32",
                          dlas_op_name(n->op), n->name, what, dlas_dtype_name(t->dtype));
    return DLAS_OK;
}

static int upload(struct node_state *s, float **dst, const float *src, int64_t n)
{
    *dst = NULL;
    cudaError_t e = cudaMalloc((void **)dst, (size_t)(n ? n : 1) * sizeof(float));
    if (e == cudaSuccess)
        e = cudaMemcpy(*dst, src, (size_t)n * sizeof(float), cudaMemcpyHostToDevice);
    return cb_check(e, "copying node parameters to the device");
}

static int prepare_bn(struct node_state *s, const struct dlas_node *n)
{
    int rc;
    if ((rc = f32(n, &n->weight, "weight")) || (rc = f32(n, &n->bias, "bias")) ||
        (rc = f32(n, &n->running_mean, "running_mean")) ||
        (rc = f32(n, &n->running_var, "running_var")))
        return rc;
    const int64_t C = n->out_shape[0];
    float *scale = malloc((size_t)C * sizeof(float)), *shift = malloc((size_t)C * sizeof(float));
    if (!scale || !shift) {
        free(scale);
        free(shift);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    const float *gam = dlas_f32(&n->weight), *bet = dlas_f32(&n->bias);
    const float *mean = dlas_f32(&n->running_mean), *var = dlas_f32(&n->running_var);
    for (int64_t c = 0; c < C; c++) {
        double inv = 1.0 / sqrt((double)var[c] + (double)n->attr.bn.eps);
        scale[c] = (float)(inv * gam[c]);
        shift[c] = (float)(bet[c] - mean[c] * inv * gam[c]);
    }
    s->channels = C;
    s->plane = numel(n) / C;
    rc = upload(s, &s->w, scale, C);
    if (!rc)
        rc = upload(s, &s->b, shift, C);
    free(scale);
    free(shift);
    return rc;
}

static int prepare_linear(struct node_state *s, const struct dlas_node *n,
                          const struct dlas_node *x)
{
    int rc;
    if ((rc = f32(n, &n->weight, "weight")) ||
        (n->attr.linear.bias && (rc = f32(n, &n->bias, "bias"))))
        return rc;
    s->in_f = numel(x);
    s->out_f = numel(n);
    if (!cb_cublas(s->c))
        return dlas_last_status();
    rc = upload(s, &s->w, dlas_f32(&n->weight), s->in_f * s->out_f);
    if (!rc && n->attr.linear.bias)
        rc = upload(s, &s->b, dlas_f32(&n->bias), s->out_f);
    return rc;
}

int cb_node_prepare(void *ctx, const struct dlas_graph *g, int id, int activation, void **out)
{
    struct cb_ctx *c = ctx;
    *out = NULL;
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!n || n->op == DLAS_OP_INPUT || n->op == DLAS_OP_CONV2D)
        return dlas_error(DLAS_ERR_INVALID, "cuda: node %d is not a node the backend runs", id);
    if (activation < DLAS_ACT_NONE || activation > DLAS_ACT_RELU6)
        return dlas_error(DLAS_ERR_INVALID, "cuda: activation %d", activation);
    struct node_state *s = calloc(1, sizeof *s);
    if (!s)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    const struct dlas_node *x = dlas_graph_node(g, n->inputs[0]);
    s->c = c;
    s->g = g;
    s->id = id;
    s->op = n->op;
    s->act = activation;
    s->per_in = numel(x);
    s->per_out = numel(n);
    s->n_inputs = n->n_inputs;
    int rc = cb_check(cudaSetDevice(c->device), "selecting the device");
    switch (rc ? DLAS_OP__COUNT : n->op) {
    case DLAS_OP_BATCHNORM:
        rc = prepare_bn(s, n);
        break;
    case DLAS_OP_LINEAR:
        rc = prepare_linear(s, n, x);
        break;
    case DLAS_OP_MAXPOOL:
    case DLAS_OP_AVGPOOL: {
        const struct dlas_pool_attr *a = &n->attr.pool;
        s->pool = (struct cbk_pool){x->out_shape[0], x->out_shape[1], x->out_shape[2],
                                    n->out_shape[1], n->out_shape[2], a->kh, a->kw,
                                    a->stride_h, a->stride_w, a->pad_h, a->pad_w,
                                    a->count_include_pad};
        break;
    }
    case DLAS_OP_GLOBAL_AVGPOOL:
        s->channels = x->out_shape[0];
        s->plane = x->out_shape[1] * x->out_shape[2];
        break;
    case DLAS_OP_SOFTMAX:
        s->channels = n->out_shape[0];
        s->plane = s->per_out / s->channels;
        break;
    case DLAS_OP_CONCAT:
        s->in_numel = malloc((size_t)n->n_inputs * sizeof *s->in_numel);
        if (!s->in_numel)
            rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
        for (int k = 0; !rc && k < n->n_inputs; k++)
            s->in_numel[k] = numel(dlas_graph_node(g, n->inputs[k]));
        break;
    case DLAS_OP_RELU:
    case DLAS_OP_RELU6:
    case DLAS_OP_ADD:
    case DLAS_OP_FLATTEN:
    case DLAS_OP_DROPOUT:
        break;
    default:
        if (!rc)
            rc = dlas_error(DLAS_ERR_UNSUPPORTED, "cuda: no device operator for %s '%s'",
                            dlas_op_name(n->op), n->name);
    }
    if (rc) {
        cb_node_release(s);
        return rc;
    }
    *out = s;
    return DLAS_OK;
}

/* relu after relu6 (or the reverse) is the stricter of the two */
static int combine(int a, int b) { return a > b ? a : b; }

int cb_node_run(void *state, int64_t batch, const float *const *in, float *out)
{
    struct node_state *s = state;
    cudaStream_t st = s->c->stream;
    cudaError_t e = cudaSuccess;
    const int64_t total = batch * s->per_out;
    switch (s->op) {
    case DLAS_OP_BATCHNORM:
        e = cbk_affine(st, in[0], out, total, s->plane, s->channels, s->w, s->b, s->act);
        break;
    case DLAS_OP_RELU:
        e = cbk_act(st, in[0], out, total, combine(DLAS_ACT_RELU, s->act));
        break;
    case DLAS_OP_RELU6:
        e = cbk_act(st, in[0], out, total, DLAS_ACT_RELU6);
        break;
    case DLAS_OP_ADD:
        e = cbk_add(st, in[0], in[1], out, total, s->act);
        break;
    case DLAS_OP_MAXPOOL: {
        struct cbk_pool p = s->pool;
        p.planes *= batch;
        e = cbk_maxpool(st, &p, in[0], out, s->act);
        break;
    }
    case DLAS_OP_AVGPOOL: {
        struct cbk_pool p = s->pool;
        p.planes *= batch;
        e = cbk_avgpool(st, &p, in[0], out, s->act);
        break;
    }
    case DLAS_OP_GLOBAL_AVGPOOL:
        e = cbk_global_avgpool(st, in[0], out, batch * s->channels, s->plane, s->act);
        break;
    case DLAS_OP_LINEAR: {
        /* row-major out[b][o] = sum_i in[b][i] w[o][i]: column-major
         * out^T (O x B) = W^T (O x I, stored as I x O) * in^T (I x B) */
        const float one = 1.0f, zero = 0.0f;
        int rc = cb_check_blas(cublasSgemm(s->c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)s->out_f,
                                           (int)batch, (int)s->in_f, &one, s->w, (int)s->in_f,
                                           in[0], (int)s->in_f, &zero, out, (int)s->out_f),
                               "linear GEMM");
        if (rc)
            return rc;
        e = cbk_bias_rows(st, out, batch, s->out_f, s->b, s->act);
        break;
    }
    case DLAS_OP_CONCAT: {
        int64_t off = 0;
        for (int k = 0; k < s->n_inputs && e == cudaSuccess; k++) {
            size_t w = (size_t)s->in_numel[k] * sizeof(float);
            e = cudaMemcpy2DAsync(out + off, (size_t)s->per_out * sizeof(float), in[k], w, w,
                                  (size_t)batch, cudaMemcpyDeviceToDevice, st);
            off += s->in_numel[k];
        }
        if (e == cudaSuccess && s->act)
            e = cbk_act(st, out, out, total, s->act);
        break;
    }
    case DLAS_OP_FLATTEN:
    case DLAS_OP_DROPOUT:
        if (s->act)
            e = cbk_act(st, in[0], out, total, s->act);
        else if (out != in[0])
            e = cudaMemcpyAsync(out, in[0], (size_t)total * sizeof(float),
                                cudaMemcpyDeviceToDevice, st);
        break;
    case DLAS_OP_SOFTMAX:
        e = cbk_softmax(st, in[0], out, batch, s->channels, s->plane);
        if (e == cudaSuccess && s->act)
            e = cbk_act(st, out, out, total, s->act);
        break;
    default:
        return dlas_error(DLAS_ERR_INTERNAL, "cuda: node op %d was not prepared", (int)s->op);
    }
    if (e != cudaSuccess) {
        const struct dlas_node *n = dlas_graph_node(s->g, s->id);
        char what[160];
        snprintf(what, sizeof what, "%s '%s'", dlas_op_name(n->op), n->name);
        return cb_check(e, what);
    }
    return DLAS_OK;
}

void cb_node_release(void *state)
{
    struct node_state *s = state;
    if (!s)
        return;
    if (s->w)
        cudaFree(s->w);
    if (s->b)
        cudaFree(s->b);
    free(s->in_numel);
    free(s);
}
