/* Activations kept in the C16 layout (enum dlas_layout) between the convs
 * that take it (DLAS_PRIM_C16, set_layouts).
 *
 * At batch 1 a two-thread conv splits its output by rows. In NCHW every
 * output plane then holds two boundaries between the threads' regions,
 * and a core writing up to the end of its region fetches the next two or
 * three lines, which the other core writes (bench_handoff's write_rows:
 * about 125 ns a boundary with the vCPUs apart, 22 near). ResNet-50's 1x1
 * expansions write 512-2048 planes: that was most of what they grew apart
 * (bench/README-ort.md, twenty-second stop). In C16 a block of 16 channels
 * is one region of rows x columns x 16, so the boundaries are 16 times
 * fewer, and each pixel's 16 channels are one line that the kernel stores
 * without transposing.
 *
 * A tensor is kept in C16 where the conv that writes it and every node
 * that reads it take C16: as a conv's input, or as the residual a conv
 * adds. Nothing converts: a conv that reads NCHW and writes C16 starts a
 * chain, one that reads C16 and writes NCHW ends it, and a residual may lie
 * either way (ResNet-18's first block adds the max pool's NCHW output and
 * writes C16; the last block adds a C16 shortcut and writes NCHW for the
 * global pool). Every other reader (a pool, a concatenation, a batchnorm, a
 * fused block, the graph's output) keeps NCHW. A primitive that refuses a
 * choice of layouts keeps NCHW on every side. */
#include <stdlib.h>

#include <dlas/quant.h>

#include "plan_impl.h"

/* Conv c runs on its own through a primitive that can take C16, and
 * nothing of the plan's reads or writes its buffers in NCHW on its behalf
 * (a prologue, a pool-first input, int8 boundaries, a fused block). Its
 * groups are the primitive's to judge: set_layouts refuses those it cannot
 * lay out (pc_c16_groups), and the refusal keeps them NCHW. */
static int c16_conv(const struct dlas_plan *p, int c, const unsigned char *refused)
{
    const struct dlas_node *nd = dlas_graph_node(p->g, c);
    const struct binding *b = &p->bind[c];
    return nd->op == DLAS_OP_CONV2D && p->root[c] == c && !refused[c] && b->choice &&
           b->state && !b->int8 && !b->in_block && b->prologue < 0 && b->pool_first < 0 &&
           !dlas_node_is_quantised(nd) && dlas_prim_sets_layouts(b->choice->comp->ops);
}

/* 1 when node i (of root k) reads its input j as the plan can hand it in
 * C16: the input of a conv that takes C16, or the residual added by one. */
static int reads_c16(const struct dlas_plan *p, int i, int j, const unsigned char *refused)
{
    const int k = p->root[i], r = p->root[dlas_graph_node(p->g, i)->inputs[j]];
    if (k == i)
        return j == 0 && c16_conv(p, i, refused);
    return p->bind[k].residual == r && c16_conv(p, k, refused);
}

/* Mark the tensors kept in C16 (c16[root]), given the convs refused so
 * far: every C16 conv's output but those that some reader takes only in
 * NCHW. (Whether a reader takes C16 depends on the reader alone, so one
 * pass does it.) */
static void mark(const struct dlas_plan *p, const unsigned char *refused, unsigned char *c16)
{
    const int n = p->n;
    for (int i = 0; i < n; i++)
        c16[i] = c16_conv(p, i, refused);
    c16[p->root[n - 1]] = 0; /* the caller reads the output */
    for (int i = 1; i < n; i++) {
        const struct dlas_node *nd = dlas_graph_node(p->g, i);
        for (int j = 0; j < nd->n_inputs; j++) {
            const int r = p->root[nd->inputs[j]];
            /* a node fused into r reads r's buffer as r writes it */
            if (r != p->root[i] && !reads_c16(p, i, j, refused))
                c16[r] = 0;
        }
    }
}

int plan_layout_find(struct dlas_plan *p, const struct dlas_plan_options *opt)
{
    if (opt->no_c16 || p->dev)
        return DLAS_OK;
    const int n = p->n;
    unsigned char *refused = calloc((size_t)n, 1), *c16 = calloc((size_t)n, 1);
    if (!refused || !c16) {
        free(refused);
        free(c16);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    /* a state that refuses its pair leaves the chains through it; mark again */
    int rc = DLAS_OK;
    for (int again = 1; again && !rc;) {
        again = 0;
        mark(p, refused, c16);
        for (int c = 0; c < n && !rc; c++) {
            if (!c16_conv(p, c, refused))
                continue;
            const struct dlas_primitive_ops *ops = p->bind[c].choice->comp->ops;
            const int o = p->bind[c].residual;
            const int in = c16[p->root[dlas_graph_node(p->g, c)->inputs[0]]];
            const int res = o >= 0 ? c16[o] : c16[c]; /* no residual: as the output */
            rc = ops->set_layouts(p->bind[c].state, in ? DLAS_LAYOUT_C16 : DLAS_LAYOUT_NCHW,
                                  c16[c] ? DLAS_LAYOUT_C16 : DLAS_LAYOUT_NCHW,
                                  res ? DLAS_LAYOUT_C16 : DLAS_LAYOUT_NCHW);
            if (rc == DLAS_ERR_UNSUPPORTED && (in || c16[c] || res)) {
                refused[c] = 1; /* and NCHW, whatever an earlier round set */
                rc = ops->set_layouts(p->bind[c].state, DLAS_LAYOUT_NCHW, DLAS_LAYOUT_NCHW,
                                      DLAS_LAYOUT_NCHW);
                again = 1;
            }
            if (rc)
                rc = dlas_error_context("layer '%s': primitive '%s': set_layouts",
                                        dlas_graph_node(p->g, c)->name,
                                        p->bind[c].choice->label);
        }
    }
    int any = 0;
    for (int c = 0; c < n && !rc; c++) {
        any |= c16[c];
        if (!c16_conv(p, c, refused))
            continue;
        const struct dlas_primitive_ops *ops = p->bind[c].choice->comp->ops;
        size_t ws = ops->workspace(p->bind[c].state, p->max_batch);
        if (ws > p->ws_size)
            p->ws_size = ws;
    }
    free(refused);
    if (rc || !any)
        free(c16);
    else
        p->c16 = c16;
    return rc;
}
