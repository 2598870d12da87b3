/* The graph container and its whole-graph passes: cloning, shape inference,
 * validation, weight initialisation and the reference forward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/ops.h>
#include <dlas/status.h>

#include "graph_impl.h"

static const char *const op_names[DLAS_OP__COUNT] = {
    [DLAS_OP_INPUT] = "input",         [DLAS_OP_CONV2D] = "conv2d",
    [DLAS_OP_BATCHNORM] = "batchnorm", [DLAS_OP_RELU] = "relu",
    [DLAS_OP_RELU6] = "relu6",         [DLAS_OP_MAXPOOL] = "maxpool",
    [DLAS_OP_AVGPOOL] = "avgpool",     [DLAS_OP_GLOBAL_AVGPOOL] = "global_avgpool",
    [DLAS_OP_LINEAR] = "linear",       [DLAS_OP_ADD] = "add",
    [DLAS_OP_CONCAT] = "concat",       [DLAS_OP_FLATTEN] = "flatten",
    [DLAS_OP_DROPOUT] = "dropout",     [DLAS_OP_SOFTMAX] = "softmax",
};

const char *dlas_op_name(enum dlas_op op)
{
    return (unsigned)op < DLAS_OP__COUNT ? op_names[op] : "unknown";
}

struct dlas_graph *dlas_graph_new(void)
{
    struct dlas_graph *g = calloc(1, sizeof *g);
    if (!g)
        dlas_error(DLAS_ERR_NOMEM, "graph: out of memory");
    return g;
}

void graph_node_release(struct dlas_node *n)
{
    free(n->inputs);
    dlas_tensor_free(&n->weight);
    dlas_tensor_free(&n->bias);
    dlas_tensor_free(&n->running_mean);
    dlas_tensor_free(&n->running_var);
    dlas_tensor_free(&n->weight_scale);
    dlas_tensor_free(&n->input_quant);
}

void dlas_graph_free(struct dlas_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n; i++)
        graph_node_release(&g->nodes[i]);
    free(g->nodes);
    free(g);
}

struct dlas_graph *dlas_graph_clone(const struct dlas_graph *g)
{
    if (!g) {
        dlas_error(DLAS_ERR_INVALID, "graph clone: NULL graph");
        return NULL;
    }
    struct dlas_graph *c = dlas_graph_new();
    if (!c)
        return NULL;
    c->status = g->status;
    if (g->n) {
        c->nodes = calloc((size_t)g->n, sizeof *c->nodes);
        if (!c->nodes)
            goto nomem;
        c->cap = g->n;
    }
    for (int i = 0; i < g->n; i++) {
        const struct dlas_node *s = &g->nodes[i];
        struct dlas_node *d = &c->nodes[i];
        *d = *s;
        d->inputs = NULL;
        memset(&d->weight, 0, sizeof d->weight);
        memset(&d->bias, 0, sizeof d->bias);
        memset(&d->running_mean, 0, sizeof d->running_mean);
        memset(&d->running_var, 0, sizeof d->running_var);
        memset(&d->weight_scale, 0, sizeof d->weight_scale);
        memset(&d->input_quant, 0, sizeof d->input_quant);
        c->n = i + 1; /* from here d is released with the clone on failure */
        if (s->n_inputs) {
            d->inputs = malloc((size_t)s->n_inputs * sizeof *d->inputs);
            if (!d->inputs)
                goto nomem;
            memcpy(d->inputs, s->inputs, (size_t)s->n_inputs * sizeof *d->inputs);
        }
        if (dlas_tensor_copy(&d->weight, &s->weight) || dlas_tensor_copy(&d->bias, &s->bias) ||
            dlas_tensor_copy(&d->running_mean, &s->running_mean) ||
            dlas_tensor_copy(&d->running_var, &s->running_var) ||
            dlas_tensor_copy(&d->weight_scale, &s->weight_scale) ||
            dlas_tensor_copy(&d->input_quant, &s->input_quant)) {
            dlas_error_context("graph clone: node '%s'", s->name);
            dlas_graph_free(c);
            return NULL;
        }
    }
    return c;
nomem:
    dlas_graph_free(c);
    dlas_error(DLAS_ERR_NOMEM, "graph clone: out of memory");
    return NULL;
}

int graph_splice(struct dlas_graph *g, const uint8_t *keep, int at, struct dlas_node *ins,
                 int n_ins, int *remap, int *ins_base)
{
    int n = n_ins;
    for (int i = 0; i < g->n; i++)
        n += keep[i] != 0;
    struct dlas_node *nodes = calloc(n > 0 ? (size_t)n : 1, sizeof *nodes);
    if (!nodes)
        return dlas_error(DLAS_ERR_NOMEM, "graph: out of memory");
    int k = 0;
    for (int i = 0; i <= g->n; i++) {
        if (i == at) {
            *ins_base = k;
            for (int j = 0; j < n_ins; j++) {
                nodes[k++] = ins[j];
                memset(&ins[j], 0, sizeof ins[j]);
            }
        }
        if (i == g->n)
            break;
        if (keep[i]) {
            remap[i] = k;
            nodes[k++] = g->nodes[i];
        } else {
            remap[i] = -1;
            graph_node_release(&g->nodes[i]);
        }
    }
    free(g->nodes);
    g->nodes = nodes;
    g->n = g->cap = n;
    return DLAS_OK;
}

int dlas_graph_status(const struct dlas_graph *g) { return g ? g->status : DLAS_ERR_INVALID; }

int dlas_graph_n_nodes(const struct dlas_graph *g) { return g ? g->n : 0; }

struct dlas_node *dlas_graph_node(const struct dlas_graph *g, int id)
{
    return g && id >= 0 && id < g->n ? &g->nodes[id] : NULL;
}

int dlas_graph_find(const struct dlas_graph *g, const char *name)
{
    if (!g || !name)
        return -1;
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->nodes[i].name, name))
            return i;
    return -1;
}

int dlas_graph_output(const struct dlas_graph *g) { return g && g->n ? g->n - 1 : -1; }

/* Distinct consuming nodes: add(x, x) is one consumer of x, which is what a
 * rewrite asking "does anything else read this?" needs. */
int dlas_graph_n_consumers(const struct dlas_graph *g, int id)
{
    int count = 0;
    if (!g || id < 0 || id >= g->n)
        return 0;
    for (int i = id + 1; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == id) {
                count++;
                break;
            }
    return count;
}

static int check_structure(const struct dlas_graph *g)
{
    if (!g)
        return dlas_error(DLAS_ERR_INVALID, "graph: NULL graph");
    if (g->status)
        return dlas_error(g->status, "graph: an earlier builder call failed (%s)",
                          dlas_status_name(g->status));
    if (g->n == 0)
        return dlas_error(DLAS_ERR_INVALID, "graph: empty");
    if (g->nodes[0].op != DLAS_OP_INPUT)
        return dlas_error(DLAS_ERR_INVALID, "graph: node 0 '%s' is a %s, not the input",
                          g->nodes[0].name, dlas_op_name(g->nodes[0].op));
    for (int i = 1; i < g->n; i++)
        if (g->nodes[i].op == DLAS_OP_INPUT)
            return dlas_error(DLAS_ERR_INVALID, "graph: second input node '%s' (node %d)",
                              g->nodes[i].name, i);
    return DLAS_OK;
}

int dlas_graph_infer_shapes(struct dlas_graph *g)
{
    int rc = check_structure(g);
    for (int i = 0; !rc && i < g->n; i++) {
        struct dlas_node *n = &g->nodes[i];
        if (!(rc = graph_derive_shape(g, i, &n->out_ndim, n->out_shape)))
            rc = graph_check_params(g, i);
    }
    return rc;
}

struct named {
    const char *name;
    int id;
};

static int cmp_named(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strncmp(x->name, y->name, DLAS_NAME_MAX);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* first[i]: the earliest node named as node i, or -1 when none before i is.
 * Sorted, not pairwise: surgery validates large graphs many times over. */
static int earlier_names(const struct dlas_graph *g, int *first)
{
    struct named *v = malloc(((size_t)g->n + 1) * sizeof *v);
    if (!v)
        return dlas_error(DLAS_ERR_NOMEM, "graph: out of memory");
    for (int i = 0; i < g->n; i++) {
        v[i].name = g->nodes[i].name;
        v[i].id = i;
        first[i] = -1;
    }
    qsort(v, (size_t)g->n, sizeof *v, cmp_named);
    for (int k = 1; k < g->n; k++)
        if (!strncmp(v[k].name, v[k - 1].name, DLAS_NAME_MAX))
            first[v[k].id] = first[v[k - 1].id] >= 0 ? first[v[k - 1].id] : v[k - 1].id;
    free(v);
    return DLAS_OK;
}

static int validate_nodes(const struct dlas_graph *g, int *first)
{
    int rc;
    for (int i = 0; i < g->n; i++) {
        const struct dlas_node *n = &g->nodes[i];
        if (!memchr(n->name, '\0', sizeof n->name) || !n->name[0])
            return dlas_error(DLAS_ERR_INVALID, "graph: node %d has no name", i);
    }
    if ((rc = earlier_names(g, first)))
        return rc;
    for (int i = 0; i < g->n; i++) {
        const struct dlas_node *n = &g->nodes[i];
        if (first[i] >= 0)
            return dlas_error(DLAS_ERR_INVALID, "graph: nodes %d and %d are both named '%s'",
                              first[i], i, n->name);
        int ndim;
        int64_t s[3];
        if ((rc = graph_derive_shape(g, i, &ndim, s)))
            return rc;
        if (ndim != n->out_ndim || memcmp(s, n->out_shape, (size_t)ndim * sizeof *s))
            return dlas_error(DLAS_ERR_INVALID,
                              "%s '%s': recorded output shape is stale (run "
                              "dlas_graph_infer_shapes after a rewrite)",
                              dlas_op_name(n->op), n->name);
        if ((rc = graph_check_params(g, i)))
            return rc;
    }
    return DLAS_OK;
}

int dlas_graph_validate(const struct dlas_graph *g)
{
    int rc = check_structure(g);
    if (rc)
        return rc;
    int *first = malloc(((size_t)g->n + 1) * sizeof *first);
    if (!first)
        return dlas_error(DLAS_ERR_NOMEM, "graph: out of memory");
    rc = validate_nodes(g, first);
    free(first);
    return rc;
}

static int need_f32(const struct dlas_node *n, const struct dlas_tensor *t, const char *what)
{
    if (t->data && t->dtype != DLAS_F32)
        return dlas_error(DLAS_ERR_UNSUPPORTED, "%s '%s': %s is %s; only f32 is supported here",
                          dlas_op_name(n->op), n->name, what, dlas_dtype_name(t->dtype));
    return DLAS_OK;
}

static void fill(struct dlas_tensor *t, float v)
{
    float *d = dlas_f32(t);
    for (int64_t i = 0, n = dlas_tensor_numel(t); i < n; i++)
        d[i] = v;
}

static void fill_uniform(struct dlas_tensor *t, double bound, struct dlas_rng *rng)
{
    float *d = dlas_f32(t);
    for (int64_t i = 0, n = dlas_tensor_numel(t); i < n; i++)
        d[i] = (float)((2.0 * dlas_rng_uniform(rng) - 1.0) * bound);
}

int dlas_graph_init_weights(struct dlas_graph *g, struct dlas_rng *rng)
{
    if (!g || !rng)
        return dlas_error(DLAS_ERR_INVALID, "graph init_weights: NULL %s", g ? "rng" : "graph");
    for (int i = 0; i < g->n; i++) {
        struct dlas_node *n = &g->nodes[i];
        int rc;
        if ((rc = need_f32(n, &n->weight, "weight")) || (rc = need_f32(n, &n->bias, "bias")) ||
            (rc = need_f32(n, &n->running_mean, "running_mean")) ||
            (rc = need_f32(n, &n->running_var, "running_var")))
            return rc;
        switch (n->op) {
        case DLAS_OP_CONV2D: {
            /* kaiming_normal_(mode="fan_out", nonlinearity="relu"); PyTorch's
             * fan_out is size(0) * receptive field, groups do not enter. */
            const int64_t *w = n->weight.dims;
            double std = sqrt(2.0 / (double)(w[0] * w[2] * w[3]));
            float *d = dlas_f32(&n->weight);
            for (int64_t k = 0, m = dlas_tensor_numel(&n->weight); k < m; k++)
                d[k] = (float)(std * dlas_rng_normal(rng));
            if (n->bias.data)
                fill(&n->bias, 0.0f);
            break;
        }
        case DLAS_OP_LINEAR: {
            /* nn.Linear's reset_parameters: kaiming_uniform_(a=sqrt(5)) gives
             * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias uses the same bound. */
            double bound = 1.0 / sqrt((double)n->weight.dims[1]);
            fill_uniform(&n->weight, bound, rng);
            if (n->bias.data)
                fill_uniform(&n->bias, bound, rng);
            break;
        }
        case DLAS_OP_BATCHNORM:
            fill(&n->weight, 1.0f);
            fill(&n->bias, 0.0f);
            fill(&n->running_mean, 0.0f);
            fill(&n->running_var, 1.0f);
            break;
        default:
            continue;
        }
        /* pruned elements must stay exactly zero */
        dlas_tensor_mask_apply(&n->weight);
        dlas_tensor_mask_apply(&n->bias);
    }
    return DLAS_OK;
}

static int64_t node_numel(const struct dlas_node *n)
{
    int64_t m = 1;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

int dlas_graph_forward_ref(const struct dlas_graph *g, const struct dlas_tensor *input,
                           struct dlas_tensor *output)
{
    int rc = dlas_graph_validate(g);
    if (rc)
        return rc;
    if (!input || !output || !input->data)
        return dlas_error(DLAS_ERR_INVALID, "forward_ref: NULL %s",
                          !output ? "output" : "input");
    const struct dlas_node *in0 = &g->nodes[0];
    if (input->dtype != DLAS_F32 || input->ndim != 4 || input->dims[0] < 1 ||
        input->dims[1] != in0->out_shape[0] || input->dims[2] != in0->out_shape[1] ||
        input->dims[3] != in0->out_shape[2])
        return dlas_error(DLAS_ERR_INVALID,
                          "forward_ref: input must be f32 N x %lld x %lld x %lld",
                          (long long)in0->out_shape[0], (long long)in0->out_shape[1],
                          (long long)in0->out_shape[2]);
    const int64_t batch = input->dims[0];
    const int out_id = g->n - 1;
    const struct dlas_node *last = &g->nodes[out_id];
    int64_t odims[4] = {batch, last->out_shape[0], last->out_shape[1], last->out_shape[2]};
    if ((rc = dlas_tensor_alloc(output, DLAS_F32, last->out_ndim == 1 ? 2 : 4, odims)))
        return rc;

    float **act = calloc((size_t)g->n, sizeof *act);
    int *last_use = malloc((size_t)g->n * sizeof *last_use);
    const float **ins = NULL;
    int max_in = 1;
    if (!act || !last_use)
        goto nomem;
    for (int i = 0; i < g->n; i++) {
        last_use[i] = i;
        if (g->nodes[i].n_inputs > max_in)
            max_in = g->nodes[i].n_inputs;
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            last_use[g->nodes[i].inputs[k]] = i;
    }
    if (!(ins = malloc((size_t)max_in * sizeof *ins)))
        goto nomem;

    act[0] = dlas_f32(input); /* borrowed; never freed here */
    for (int i = 1; i < g->n; i++) {
        const struct dlas_node *n = &g->nodes[i];
        if (i == out_id)
            act[i] = dlas_f32(output);
        else if (!(act[i] = dlas_aligned_alloc((size_t)(batch * node_numel(n)) * sizeof(float))))
            goto nomem;
        for (int k = 0; k < n->n_inputs; k++)
            ins[k] = act[n->inputs[k]];
        if ((rc = dlas_ref_node_forward(g, i, batch, ins, act[i])))
            goto out;
        /* free what nothing later reads (this node too, if it is a dead end) */
        for (int k = 0; k < n->n_inputs; k++) {
            int j = n->inputs[k];
            if (j != 0 && last_use[j] == i && act[j]) {
                dlas_aligned_free(act[j]);
                act[j] = NULL;
            }
        }
        if (last_use[i] == i && i != out_id) {
            dlas_aligned_free(act[i]);
            act[i] = NULL;
        }
    }
    if (out_id == 0)
        memcpy(output->data, input->data, dlas_tensor_bytes(output));
    goto out;
nomem:
    rc = dlas_error(DLAS_ERR_NOMEM, "forward_ref: out of memory");
out:
    if (act)
        for (int i = 1; i < out_id; i++)
            dlas_aligned_free(act[i]);
    free(act);
    free(last_use);
    free(ins);
    if (rc)
        dlas_tensor_free(output);
    return rc;
}
