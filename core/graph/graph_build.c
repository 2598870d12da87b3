/* Graph builders and the per-op shape rules. The rules live here once and
 * serve the builders, dlas_graph_infer_shapes and dlas_graph_validate alike,
 * so a rewritten graph is held to exactly what a freshly built one is. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/ops.h>
#include <dlas/quant.h>
#include <dlas/status.h>

#include "graph_impl.h"

static int node_error(const struct dlas_node *n, int status, const char *fmt, ...)
    DLAS_PRINTF(3, 4);

static int node_error(const struct dlas_node *n, int status, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dlas_error(status, "%s '%s': %s", dlas_op_name(n->op), n->name, msg);
}

static const char *shape_str(int ndim, const int64_t *s, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "x" : "",
                                 (long long)s[i]);
    return buf;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* PyTorch's pooling_output_shape: with ceil_mode the last window may hang
 * over the edge, but must start inside the input or its left padding. */
static int64_t pool_out(int64_t in, int k, int stride, int pad, int ceil_mode)
{
    int64_t o = floor_div(in + 2 * pad - (k - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad)
        o--;
    return o;
}

static int arity(enum dlas_op op)
{
    switch (op) {
    case DLAS_OP_INPUT: return 0;
    case DLAS_OP_ADD: return 2;
    case DLAS_OP_CONCAT: return -1; /* one or more */
    default: return 1;
    }
}

static int derive_conv(const struct dlas_node *n, const struct dlas_node *x, int64_t s[3])
{
    const struct dlas_conv_attr *a = &n->attr.conv;
    struct dlas_conv_desc d = {
        .batch = 1, .in_c = x->out_shape[0], .in_h = x->out_shape[1], .in_w = x->out_shape[2],
        .out_c = a->out_channels, .kh = a->kh, .kw = a->kw, .stride_h = a->stride_h,
        .stride_w = a->stride_w, .pad_h = a->pad_h, .pad_w = a->pad_w, .dil_h = a->dil_h,
        .dil_w = a->dil_w, .groups = a->groups, .has_bias = a->bias};
    int rc = dlas_conv_desc_finish(&d);
    if (rc) {
        const char *msg = dlas_last_error();
        if (!strncmp(msg, "conv: ", 6)) /* the node prefix already says conv2d */
            msg += 6;
        return node_error(n, rc, "%s", msg);
    }
    s[0] = d.out_c;
    s[1] = d.out_h;
    s[2] = d.out_w;
    return DLAS_OK;
}

static int derive_pool(const struct dlas_node *n, const struct dlas_node *x, int64_t s[3])
{
    const struct dlas_pool_attr *a = &n->attr.pool;
    char buf[64];
    if (a->kh < 1 || a->kw < 1 || a->stride_h < 1 || a->stride_w < 1 || a->pad_h < 0 ||
        a->pad_w < 0)
        return node_error(n, DLAS_ERR_INVALID,
                          "kernel %dx%d, stride %dx%d, padding %dx%d: kernel and stride must "
                          "be positive, padding non-negative",
                          a->kh, a->kw, a->stride_h, a->stride_w, a->pad_h, a->pad_w);
    /* PyTorch refuses this too: a window could then lie wholly in padding. */
    if (a->pad_h > a->kh / 2 || a->pad_w > a->kw / 2)
        return node_error(n, DLAS_ERR_INVALID,
                          "padding %dx%d is more than half the kernel %dx%d", a->pad_h,
                          a->pad_w, a->kh, a->kw);
    s[0] = x->out_shape[0];
    s[1] = pool_out(x->out_shape[1], a->kh, a->stride_h, a->pad_h, a->ceil_mode);
    s[2] = pool_out(x->out_shape[2], a->kw, a->stride_w, a->pad_w, a->ceil_mode);
    if (s[1] < 1 || s[2] < 1)
        return node_error(n, DLAS_ERR_INVALID,
                          "input %s is too small for kernel %dx%d (output %lldx%lld)",
                          shape_str(3, x->out_shape, buf, sizeof buf), a->kh, a->kw,
                          (long long)s[1], (long long)s[2]);
    return DLAS_OK;
}

int graph_derive_shape(const struct dlas_graph *g, int id, int *ndim, int64_t s[3])
{
    const struct dlas_node *n = &g->nodes[id];
    char b1[64], b2[64];
    if ((unsigned)n->op >= DLAS_OP__COUNT)
        return dlas_error(DLAS_ERR_INVALID, "node %d '%s': unknown op %d", id, n->name,
                          (int)n->op);
    int want = arity(n->op);
    if ((want >= 0 && n->n_inputs != want) || (want < 0 && n->n_inputs < 1))
        return node_error(n, DLAS_ERR_INVALID, "has %d inputs, expected %s%d", n->n_inputs,
                          want < 0 ? "at least " : "", want < 0 ? 1 : want);
    if (n->n_inputs && !n->inputs)
        return node_error(n, DLAS_ERR_INVALID, "has no input list");
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] < 0 || n->inputs[k] >= id)
            return node_error(n, DLAS_ERR_INVALID,
                              "input %d is node %d, which does not precede node %d", k,
                              n->inputs[k], id);

    const struct dlas_node *x = n->n_inputs ? &g->nodes[n->inputs[0]] : NULL;
    *ndim = x ? x->out_ndim : n->out_ndim;
    for (int i = 0; i < 3; i++)
        s[i] = x ? x->out_shape[i] : n->out_shape[i];
    for (int i = *ndim; i < 3; i++)
        s[i] = 0;

    switch (n->op) {
    case DLAS_OP_INPUT:
        if (n->out_ndim != 3 || n->out_shape[0] < 1 || n->out_shape[1] < 1 ||
            n->out_shape[2] < 1)
            return node_error(n, DLAS_ERR_INVALID, "shape %s is not a positive CxHxW",
                              shape_str(n->out_ndim, n->out_shape, b1, sizeof b1));
        return DLAS_OK;
    case DLAS_OP_CONV2D:
    case DLAS_OP_MAXPOOL:
    case DLAS_OP_AVGPOOL:
    case DLAS_OP_GLOBAL_AVGPOOL:
        if (x->out_ndim != 3)
            return node_error(n, DLAS_ERR_INVALID, "input '%s' is %s, not a CxHxW feature map",
                              x->name, shape_str(x->out_ndim, x->out_shape, b1, sizeof b1));
        if (n->op == DLAS_OP_CONV2D)
            return derive_conv(n, x, s);
        if (n->op == DLAS_OP_GLOBAL_AVGPOOL) {
            s[1] = s[2] = 1; /* C x 1 x 1, as AdaptiveAvgPool2d(1); flatten follows */
            return DLAS_OK;
        }
        return derive_pool(n, x, s);
    case DLAS_OP_BATCHNORM:
        if (!(n->attr.bn.eps >= 0.0f) || !isfinite(n->attr.bn.eps))
            return node_error(n, DLAS_ERR_INVALID, "eps %g is not a finite non-negative number",
                              (double)n->attr.bn.eps);
        return DLAS_OK;
    case DLAS_OP_RELU:
    case DLAS_OP_RELU6:
    case DLAS_OP_SOFTMAX:
        return DLAS_OK;
    case DLAS_OP_DROPOUT:
        if (!(n->attr.dropout.p >= 0.0f && n->attr.dropout.p <= 1.0f))
            return node_error(n, DLAS_ERR_INVALID, "p = %g is outside [0, 1]",
                              (double)n->attr.dropout.p);
        return DLAS_OK;
    case DLAS_OP_FLATTEN:
        s[0] = x->out_shape[0] * (x->out_ndim == 3 ? x->out_shape[1] * x->out_shape[2] : 1);
        s[1] = s[2] = 0;
        *ndim = 1;
        return DLAS_OK;
    case DLAS_OP_LINEAR:
        if (x->out_ndim != 1)
            return node_error(n, DLAS_ERR_INVALID,
                              "input '%s' is %s; a linear layer takes a flat vector "
                              "(add a flatten)",
                              x->name, shape_str(x->out_ndim, x->out_shape, b1, sizeof b1));
        if (n->attr.linear.out_features < 1)
            return node_error(n, DLAS_ERR_INVALID, "out_features %d is not positive",
                              n->attr.linear.out_features);
        s[0] = n->attr.linear.out_features;
        return DLAS_OK;
    case DLAS_OP_ADD: {
        const struct dlas_node *y = &g->nodes[n->inputs[1]];
        if (x->out_ndim != y->out_ndim || memcmp(x->out_shape, y->out_shape,
                                                 (size_t)x->out_ndim * sizeof(int64_t)))
            return node_error(n, DLAS_ERR_INVALID, "shapes differ: '%s' is %s, '%s' is %s",
                              x->name, shape_str(x->out_ndim, x->out_shape, b1, sizeof b1),
                              y->name, shape_str(y->out_ndim, y->out_shape, b2, sizeof b2));
        return DLAS_OK;
    }
    case DLAS_OP_CONCAT:
        s[0] = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            const struct dlas_node *y = &g->nodes[n->inputs[k]];
            if (y->out_ndim != x->out_ndim ||
                (x->out_ndim == 3 && (y->out_shape[1] != x->out_shape[1] ||
                                      y->out_shape[2] != x->out_shape[2])))
                return node_error(
                    n, DLAS_ERR_INVALID,
                    "inputs must agree on all but channels: '%s' is %s, '%s' is %s", x->name,
                    shape_str(x->out_ndim, x->out_shape, b1, sizeof b1), y->name,
                    shape_str(y->out_ndim, y->out_shape, b2, sizeof b2));
            s[0] += y->out_shape[0];
        }
        return DLAS_OK;
    default:
        break;
    }
    return node_error(n, DLAS_ERR_INTERNAL, "no shape rule");
}

static int check_tensor(const struct dlas_node *n, const char *what, const struct dlas_tensor *t,
                        int ndim, const int64_t *dims)
{
    char b1[64], b2[64];
    if (!t->data)
        return node_error(n, DLAS_ERR_INVALID, "%s is missing", what);
    if (t->ndim != ndim || memcmp(t->dims, dims, (size_t)ndim * sizeof *dims))
        return node_error(n, DLAS_ERR_INVALID, "%s is %s, expected %s", what,
                          shape_str(t->ndim, t->dims, b1, sizeof b1),
                          shape_str(ndim, dims, b2, sizeof b2));
    return DLAS_OK;
}

static int check_absent(const struct dlas_node *n, const char *what, const struct dlas_tensor *t)
{
    if (t->data || t->mask)
        return node_error(n, DLAS_ERR_INVALID, "has a %s, which this node does not use", what);
    return DLAS_OK;
}

/* A conv's int8 parameters (<dlas/quant.h>): both or neither, well formed. */
static int check_quant(const struct dlas_node *n)
{
    int rc;
    if (!n->weight_scale.data && !n->input_quant.data)
        return DLAS_OK;
    if (n->op != DLAS_OP_CONV2D)
        return (rc = check_absent(n, "weight_scale", &n->weight_scale))
                   ? rc
                   : check_absent(n, "input_quant", &n->input_quant);
    int64_t oc = n->attr.conv.out_channels, two = 2;
    if ((rc = check_tensor(n, "weight_scale", &n->weight_scale, 1, &oc)) ||
        (rc = check_tensor(n, "input_quant", &n->input_quant, 1, &two)))
        return rc;
    if (n->weight_scale.dtype != DLAS_F32 || n->input_quant.dtype != DLAS_F32)
        return node_error(n, DLAS_ERR_INVALID, "weight_scale and input_quant must be f32");
    for (int64_t o = 0; o < oc; o++) {
        float v = dlas_f32(&n->weight_scale)[o];
        if (!(v > 0.0f) || !isfinite(v))
            return node_error(n, DLAS_ERR_INVALID, "weight_scale[%lld] is %g (must be > 0)",
                              (long long)o, (double)v);
    }
    struct dlas_act_quant q;
    if (dlas_node_input_quant(n, &q)) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", dlas_last_error());
        return node_error(n, DLAS_ERR_INVALID, "%s", msg);
    }
    return DLAS_OK;
}

int graph_check_params(const struct dlas_graph *g, int id)
{
    const struct dlas_node *n = &g->nodes[id];
    /* graph_derive_shape has accepted the node, so x exists where used */
    const struct dlas_node *x = n->n_inputs > 0 ? &g->nodes[n->inputs[0]] : NULL;
    int rc = check_quant(n);
    if (rc)
        return rc;

    switch (n->op) {
    case DLAS_OP_CONV2D: {
        const struct dlas_conv_attr *a = &n->attr.conv;
        int64_t w[4] = {a->out_channels, x->out_shape[0] / (a->groups > 0 ? a->groups : 1),
                        a->kh, a->kw};
        if ((rc = check_tensor(n, "weight", &n->weight, 4, w)) ||
            (rc = a->bias ? check_tensor(n, "bias", &n->bias, 1, w)
                          : check_absent(n, "bias", &n->bias)))
            return rc;
        break;
    }
    case DLAS_OP_LINEAR: {
        int64_t w[2] = {n->attr.linear.out_features, x->out_shape[0]};
        if ((rc = check_tensor(n, "weight", &n->weight, 2, w)) ||
            (rc = n->attr.linear.bias ? check_tensor(n, "bias", &n->bias, 1, w)
                                      : check_absent(n, "bias", &n->bias)))
            return rc;
        break;
    }
    case DLAS_OP_BATCHNORM:
        if ((rc = check_tensor(n, "weight", &n->weight, 1, x->out_shape)) ||
            (rc = check_tensor(n, "bias", &n->bias, 1, x->out_shape)) ||
            (rc = check_tensor(n, "running_mean", &n->running_mean, 1, x->out_shape)) ||
            (rc = check_tensor(n, "running_var", &n->running_var, 1, x->out_shape)))
            return rc;
        return DLAS_OK;
    default:
        if ((rc = check_absent(n, "weight", &n->weight)) ||
            (rc = check_absent(n, "bias", &n->bias)))
            return rc;
        break;
    }
    if ((rc = check_absent(n, "running_mean", &n->running_mean)) ||
        (rc = check_absent(n, "running_var", &n->running_var)))
        return rc;
    return DLAS_OK;
}

/* ---- builders ---------------------------------------------------------- */

static int fail(struct dlas_graph *g, int status)
{
    if (!g->status)
        g->status = status;
    return -status;
}

static int name_taken(const struct dlas_graph *g, const char *name)
{
    return dlas_graph_find(g, name) >= 0;
}

static int resolve_name(struct dlas_graph *g, const char *name, enum dlas_op op, char *out)
{
    if (name) {
        size_t len = strlen(name);
        if (len == 0)
            return dlas_error(DLAS_ERR_INVALID, "%s: empty node name", dlas_op_name(op));
        if (len >= DLAS_NAME_MAX)
            return dlas_error(DLAS_ERR_INVALID, "%s: node name '%.40s...' is longer than %d",
                              dlas_op_name(op), name, DLAS_NAME_MAX - 1);
        if (name_taken(g, name))
            return dlas_error(DLAS_ERR_INVALID, "%s: duplicate node name '%s' (node %d has it)",
                              dlas_op_name(op), name, dlas_graph_find(g, name));
        memcpy(out, name, len + 1);
        return DLAS_OK;
    }
    /* A generated name may collide with one the model chose ("relu3"). */
    snprintf(out, DLAS_NAME_MAX, "%s%d", dlas_op_name(op), g->n);
    for (int k = 2; name_taken(g, out); k++)
        snprintf(out, DLAS_NAME_MAX, "%s%d_%d", dlas_op_name(op), g->n, k);
    return DLAS_OK;
}

static void drop_last(struct dlas_graph *g)
{
    struct dlas_node *n = &g->nodes[--g->n];
    free(n->inputs);
    dlas_tensor_free(&n->weight);
    dlas_tensor_free(&n->bias);
    dlas_tensor_free(&n->running_mean);
    dlas_tensor_free(&n->running_var);
    memset(n, 0, sizeof *n);
}

static void fill_ones(struct dlas_tensor *t)
{
    float *d = dlas_f32(t);
    for (int64_t i = 0, n = dlas_tensor_numel(t); i < n; i++)
        d[i] = 1.0f;
}

static int alloc_params(struct dlas_graph *g, struct dlas_node *n)
{
    const struct dlas_node *x = n->n_inputs > 0 ? &g->nodes[n->inputs[0]] : NULL;
    int rc = DLAS_OK;
    switch (n->op) {
    case DLAS_OP_CONV2D: {
        const struct dlas_conv_attr *a = &n->attr.conv;
        int64_t w[4] = {a->out_channels, x->out_shape[0] / a->groups, a->kh, a->kw};
        rc = dlas_tensor_alloc(&n->weight, DLAS_F32, 4, w);
        if (!rc && a->bias)
            rc = dlas_tensor_alloc(&n->bias, DLAS_F32, 1, w);
        break;
    }
    case DLAS_OP_LINEAR: {
        int64_t w[2] = {n->attr.linear.out_features, x->out_shape[0]};
        rc = dlas_tensor_alloc(&n->weight, DLAS_F32, 2, w);
        if (!rc && n->attr.linear.bias)
            rc = dlas_tensor_alloc(&n->bias, DLAS_F32, 1, w);
        break;
    }
    case DLAS_OP_BATCHNORM: {
        const int64_t *c = n->out_shape;
        if (!(rc = dlas_tensor_alloc(&n->weight, DLAS_F32, 1, c)) &&
            !(rc = dlas_tensor_alloc(&n->bias, DLAS_F32, 1, c)) &&
            !(rc = dlas_tensor_alloc(&n->running_mean, DLAS_F32, 1, c)) &&
            !(rc = dlas_tensor_alloc(&n->running_var, DLAS_F32, 1, c))) {
            fill_ones(&n->weight);
            fill_ones(&n->running_var);
        }
        break;
    }
    default:
        break;
    }
    if (rc)
        return dlas_error_context("%s '%s'", dlas_op_name(n->op), n->name);
    return DLAS_OK;
}

/* Append a node made from `proto` (op, attributes, inputs; for an input node
 * its shape), derive its shape and allocate its parameters. */
static int add_node(struct dlas_graph *g, const char *name, const struct dlas_node *proto)
{
    if (!g)
        return -dlas_error(DLAS_ERR_INVALID, "%s: NULL graph", dlas_op_name(proto->op));
    if (g->status)
        return -g->status;
    for (int k = 0; k < proto->n_inputs; k++) {
        int in = proto->inputs[k];
        if (in < 0) {
            /* An earlier builder failed (normally on another graph, else
             * g->status would be set): its message stands. */
            g->status = -in <= DLAS_ERR_INTERNAL ? -in : DLAS_ERR_INVALID;
            return in;
        }
        if (in >= g->n) {
            dlas_error(DLAS_ERR_INVALID, "%s '%s': input id %d does not exist (graph has %d nodes)",
                       dlas_op_name(proto->op), name ? name : "", in, g->n);
            return fail(g, DLAS_ERR_INVALID);
        }
    }

    char resolved[DLAS_NAME_MAX];
    int rc = resolve_name(g, name, proto->op, resolved);
    if (rc)
        return fail(g, rc);
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        struct dlas_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            dlas_error(DLAS_ERR_NOMEM, "graph: cannot grow to %d nodes", cap);
            return fail(g, DLAS_ERR_NOMEM);
        }
        g->nodes = nodes;
        g->cap = cap;
    }
    int *inputs = NULL;
    if (proto->n_inputs) {
        inputs = malloc((size_t)proto->n_inputs * sizeof *inputs);
        if (!inputs) {
            dlas_error(DLAS_ERR_NOMEM, "graph: cannot allocate the inputs of '%s'", resolved);
            return fail(g, DLAS_ERR_NOMEM);
        }
        memcpy(inputs, proto->inputs, (size_t)proto->n_inputs * sizeof *inputs);
    }
    int id = g->n++;
    struct dlas_node *n = &g->nodes[id];
    *n = *proto;
    memcpy(n->name, resolved, sizeof resolved);
    n->inputs = inputs;
    memset(&n->weight, 0, sizeof n->weight);
    memset(&n->bias, 0, sizeof n->bias);
    memset(&n->running_mean, 0, sizeof n->running_mean);
    memset(&n->running_var, 0, sizeof n->running_var);

    if ((rc = graph_derive_shape(g, id, &n->out_ndim, n->out_shape)) ||
        (rc = alloc_params(g, n))) {
        drop_last(g);
        return fail(g, rc);
    }
    return id;
}

static struct dlas_node proto_of(enum dlas_op op, int n_inputs, int *inputs)
{
    struct dlas_node p;
    memset(&p, 0, sizeof p);
    p.op = op;
    p.n_inputs = n_inputs;
    p.inputs = inputs;
    return p;
}

int dlas_graph_input(struct dlas_graph *g, const char *name, int c, int h, int w)
{
    struct dlas_node p = proto_of(DLAS_OP_INPUT, 0, NULL);
    if (g && !g->status && g->n > 0) {
        dlas_error(DLAS_ERR_INVALID, "input: a graph has one input and it comes first "
                                     "(this graph already has %d nodes)", g->n);
        return fail(g, DLAS_ERR_INVALID);
    }
    p.out_ndim = 3;
    p.out_shape[0] = c;
    p.out_shape[1] = h;
    p.out_shape[2] = w;
    return add_node(g, name, &p);
}

int dlas_graph_conv2d(struct dlas_graph *g, const char *name, int in,
                      const struct dlas_conv_attr *a)
{
    struct dlas_node p = proto_of(DLAS_OP_CONV2D, 1, &in);
    if (!a) {
        if (g && !g->status)
            dlas_error(DLAS_ERR_INVALID, "conv2d: NULL attributes");
        return g ? fail(g, g->status ? g->status : DLAS_ERR_INVALID) : -DLAS_ERR_INVALID;
    }
    p.attr.conv = *a;
    p.attr.conv.bias = a->bias ? 1 : 0;
    return add_node(g, name, &p);
}

int dlas_graph_batchnorm(struct dlas_graph *g, const char *name, int in, float eps)
{
    struct dlas_node p = proto_of(DLAS_OP_BATCHNORM, 1, &in);
    p.attr.bn.eps = eps;
    p.attr.bn.momentum = 0.1f; /* PyTorch's default */
    return add_node(g, name, &p);
}

int dlas_graph_relu(struct dlas_graph *g, const char *name, int in)
{
    struct dlas_node p = proto_of(DLAS_OP_RELU, 1, &in);
    return add_node(g, name, &p);
}

int dlas_graph_relu6(struct dlas_graph *g, const char *name, int in)
{
    struct dlas_node p = proto_of(DLAS_OP_RELU6, 1, &in);
    return add_node(g, name, &p);
}

static int pool(struct dlas_graph *g, const char *name, enum dlas_op op, int in,
                const struct dlas_pool_attr *a)
{
    struct dlas_node p = proto_of(op, 1, &in);
    if (!a) {
        if (g && !g->status)
            dlas_error(DLAS_ERR_INVALID, "%s: NULL attributes", dlas_op_name(op));
        return g ? fail(g, g->status ? g->status : DLAS_ERR_INVALID) : -DLAS_ERR_INVALID;
    }
    p.attr.pool = *a;
    p.attr.pool.ceil_mode = a->ceil_mode ? 1 : 0;
    p.attr.pool.count_include_pad = a->count_include_pad ? 1 : 0;
    return add_node(g, name, &p);
}

int dlas_graph_maxpool(struct dlas_graph *g, const char *name, int in,
                       const struct dlas_pool_attr *a)
{
    return pool(g, name, DLAS_OP_MAXPOOL, in, a);
}

int dlas_graph_avgpool(struct dlas_graph *g, const char *name, int in,
                       const struct dlas_pool_attr *a)
{
    return pool(g, name, DLAS_OP_AVGPOOL, in, a);
}

int dlas_graph_global_avgpool(struct dlas_graph *g, const char *name, int in)
{
    struct dlas_node p = proto_of(DLAS_OP_GLOBAL_AVGPOOL, 1, &in);
    return add_node(g, name, &p);
}

int dlas_graph_linear(struct dlas_graph *g, const char *name, int in, int out_features,
                      int bias)
{
    struct dlas_node p = proto_of(DLAS_OP_LINEAR, 1, &in);
    p.attr.linear.out_features = out_features;
    p.attr.linear.bias = bias ? 1 : 0;
    return add_node(g, name, &p);
}

int dlas_graph_add(struct dlas_graph *g, const char *name, int a, int b)
{
    int ins[2] = {a, b};
    struct dlas_node p = proto_of(DLAS_OP_ADD, 2, ins);
    return add_node(g, name, &p);
}

int dlas_graph_concat(struct dlas_graph *g, const char *name, int n, const int *inputs)
{
    if (n < 1 || !inputs) {
        if (!g)
            return -dlas_error(DLAS_ERR_INVALID, "concat: NULL graph");
        if (g->status)
            return -g->status;
        dlas_error(DLAS_ERR_INVALID, "concat '%s': needs at least one input, got %d",
                   name ? name : "", inputs ? n : 0);
        return fail(g, DLAS_ERR_INVALID);
    }
    struct dlas_node p = proto_of(DLAS_OP_CONCAT, n, (int *)inputs);
    return add_node(g, name, &p);
}

int dlas_graph_flatten(struct dlas_graph *g, const char *name, int in)
{
    struct dlas_node p = proto_of(DLAS_OP_FLATTEN, 1, &in);
    return add_node(g, name, &p);
}

int dlas_graph_dropout(struct dlas_graph *g, const char *name, int in, float prob)
{
    struct dlas_node p = proto_of(DLAS_OP_DROPOUT, 1, &in);
    p.attr.dropout.p = prob;
    return add_node(g, name, &p);
}

int dlas_graph_softmax(struct dlas_graph *g, const char *name, int in)
{
    struct dlas_node p = proto_of(DLAS_OP_SOFTMAX, 1, &in);
    return add_node(g, name, &p);
}
