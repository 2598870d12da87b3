/* Where int8 layers meet fp32 ones in the inference plan.
 *
 * A conv that a compressor quantised (weight_scale and input_quant in the
 * graph) runs in one of two ways:
 *   - bound to an int8 primitive (DLAS_PRIM_INT8): it reads uint8 and writes
 *     uint8 or f32. Its output is uint8 when every node that reads it is an
 *     int8 layer expecting the same input parameters (then the tensor between
 *     them never exists in f32); otherwise the primitive dequantises as it
 *     stores (the int8 -> fp32 boundary). Where its input is f32 (the network
 *     input, a pooling or residual add, an fp32 layer), the plan quantises it
 *     into a scratch buffer first (the fp32 -> int8 boundary).
 *   - bound to an fp32 primitive: the plan fake-quantises its input
 *     (quantise, dequantise) into the scratch buffer, and the weights already
 *     lie on their grid, so the layer computes what the int8 layer computes
 *     up to float rounding, whichever primitive runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_impl.h"
#include "../kernels/eltwise.h"

/* The node whose buffer holds node id's input 0 (through fused nodes). */
static int input_root(const struct dlas_plan *p, int id)
{
    return p->root[dlas_graph_node(p->g, id)->inputs[0]];
}

static int64_t numel_of(const struct dlas_node *n)
{
    int64_t e = 1;
    for (int i = 0; i < n->out_ndim; i++)
        e *= n->out_shape[i];
    return e;
}

void plan_quant_candidate(struct dlas_plan *p, int id, const struct dlas_primitive_ops *ops)
{
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    struct binding *b = &p->bind[id];
    b->desc.quant = NULL;
    b->int8 = 0;
    if (!dlas_node_is_quantised(n))
        return;
    /* the input's parameters serve the fake-quantisation of an fp32 binding too */
    memset(&b->q, 0, sizeof b->q);
    b->q.size = sizeof b->q;
    if (dlas_node_input_quant(n, &b->q.in)) {
        dlas_clear_error(); /* dlas_graph_validate has checked it; cannot happen */
        return;
    }
    b->q.weight_step = dlas_f32(&n->weight_scale);
    if (!dlas_prim_runs_int8(ops))
        return;
    b->desc.quant = &b->q;
    b->int8 = 1;
}

static int same_quant(const struct dlas_act_quant *a, const struct dlas_act_quant *b)
{
    return a->scale == b->scale && a->zero_point == b->zero_point;
}

/* uint8 output for int8 conv i when all its readers are int8 layers that
 * quantise their input alike; their parameters in *out. */
static int u8_readers(const struct dlas_plan *p, int i, struct dlas_act_quant *out)
{
    int readers = 0;
    if (p->root[p->n - 1] == i)
        return 0; /* the network's output is f32 */
    for (int j = i + 1; j < p->n; j++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, j);
        if (p->root[j] != j)
            continue;
        int reads = 0;
        for (int k = 0; k < nd->n_inputs; k++)
            reads |= p->root[nd->inputs[k]] == i;
        if (!reads)
            continue;
        const struct binding *b = &p->bind[j];
        if (nd->op != DLAS_OP_CONV2D || !b->choice || !b->int8 || nd->n_inputs != 1)
            return 0;
        if (readers++ && !same_quant(out, &b->q.in))
            return 0;
        *out = b->q.in;
    }
    return readers > 0;
}

int plan_quant_decide(struct dlas_plan *p)
{
    p->u8 = calloc((size_t)p->n, 1);
    if (!p->u8)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n; i++) {
        struct binding *b = &p->bind[i];
        if (!b->choice || !b->int8)
            continue;
        struct dlas_act_quant out;
        const struct dlas_node *n = dlas_graph_node(p->g, i);
        /* a bias the int32 accumulator cannot hold at this input scale:
         * the layer adds it in float and hands f32 on */
        if (u8_readers(p, i, &out) &&
            dlas_int8_bias_fits(n->attr.conv.bias ? dlas_f32(&n->bias) : NULL,
                                n->attr.conv.out_channels, b->q.in.scale, b->q.weight_step)) {
            b->q.out_u8 = 1;
            b->q.out = out;
            p->u8[i] = 1;
        }
    }
    return DLAS_OK;
}

/* Bytes of scratch conv id needs: its input quantised (int8 binding on an
 * f32 input) or fake-quantised (fp32 binding). */
size_t plan_quant_scratch(const struct dlas_plan *p, int id)
{
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    const struct binding *b = &p->bind[id];
    if (n->op != DLAS_OP_CONV2D || !dlas_node_is_quantised(n) || !b->choice)
        return 0;
    const struct dlas_node *x = dlas_graph_node(p->g, n->inputs[0]);
    size_t elems = (size_t)(numel_of(x) * p->max_batch);
    if (b->int8)
        return p->u8[input_root(p, id)] ? 0 : elems;
    return elems * sizeof(float);
}

int plan_quant_run(struct dlas_plan *p, int id, int64_t batch, const float **in_io, float *out,
                   int *done)
{
    const float *in = *in_io;
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    const struct binding *b = &p->bind[id];
    *done = 0;
    /* the core reference conv fake-quantises by itself */
    if (!dlas_node_is_quantised(n) || !b->choice)
        return DLAS_OK;
    if (p->dev) /* the scratch buffer and the conversions are host code */
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "layer '%s': int8 layers (quant-int8) run on CPU backends only",
                          n->name);
    const struct dlas_node *x = dlas_graph_node(p->g, n->inputs[0]);
    const int64_t elems = numel_of(x) * batch;
    const struct dlas_primitive_ops *ops = b->choice->comp->ops;
    int rc;
    if (b->int8) {
        const uint8_t *qin = (const uint8_t *)in;
        if (!p->u8[input_root(p, id)]) { /* the fp32 -> int8 boundary */
            /* dlas_quantize_u8's arithmetic, vectorised */
            ew_quantize_u8(p->qbuf, in, elems, 1.0f / b->q.in.scale, b->q.in.zero_point);
            qin = p->qbuf;
        }
        rc = ops->run_int8(b->state, batch, qin, out, p->ws, NULL);
    } else {
        /* an fp32 binding runs as any other, on its input fake-quantised:
         * the fp32 path applies a residual add fused into it and the
         * activation (it once ran the plain run here and dropped the add) */
        dlas_fake_quant(in, elems, &b->q.in, p->qbuf);
        *in_io = p->qbuf;
        return DLAS_OK;
    }
    if (rc)
        return dlas_error_context("layer '%s': primitive '%s'", n->name, b->choice->label);
    *done = 1;
    return DLAS_OK;
}

const char *dlas_plan_precision(const struct dlas_plan *p, int id)
{
    if (!p || id < 0 || id >= p->n)
        return "";
    const struct dlas_node *n = dlas_graph_node(p->g, id);
    if (n->op != DLAS_OP_CONV2D)
        return "";
    if (!dlas_node_is_quantised(n))
        return "fp32";
    const struct binding *b = &p->bind[id];
    if (!b->int8)
        return "int8-fake"; /* an fp32 primitive on the fake-quantised input */
    int in_u8 = p->u8[input_root(p, id)];
    return in_u8 ? (b->q.out_u8 ? "int8 u8>u8" : "int8 u8>f32")
                 : (b->q.out_u8 ? "int8 f32>u8" : "int8 f32>f32");
}
