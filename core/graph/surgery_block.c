/* Replacing a single-entry, single-exit block of a graph by another
 * (BlockSwap, Moonshine). The new block is built in a scratch graph of its
 * own, so its names may reuse the old block's, and is moved in only once
 * everything has been checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>
#include <dlas/surgery.h>

#include "graph_impl.h"

/* Mark in `in_block` the nodes on a path from f to t (t included, f not),
 * and check that the block has one entry (f) and one exit (t). */
static int find_block(const struct dlas_graph *g, int f, int t, uint8_t *in_block)
{
    const struct dlas_node *nf = &g->nodes[f], *nt = &g->nodes[t];
    uint8_t *desc = calloc((size_t)g->n, 1), *anc = calloc((size_t)g->n, 1);
    int rc = DLAS_OK;
    if (!desc || !anc) {
        rc = dlas_error(DLAS_ERR_NOMEM, "replace block: out of memory");
        goto out;
    }
    desc[f] = 1;
    for (int i = f + 1; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            desc[i] |= desc[g->nodes[i].inputs[k]];
    anc[t] = 1;
    for (int i = t; i >= 0; i--)
        if (anc[i])
            for (int k = 0; k < g->nodes[i].n_inputs; k++)
                anc[g->nodes[i].inputs[k]] = 1;
    if (t <= f || !desc[t]) {
        rc = dlas_error(DLAS_ERR_INVALID, "'%s' does not depend on '%s', so they bound no block",
                        nt->name, nf->name);
        goto out;
    }
    for (int i = 0; i < g->n; i++)
        in_block[i] = desc[i] && anc[i] && i != f;
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++) {
            int o = g->nodes[i].inputs[k];
            if (in_block[i] && o != f && !in_block[o]) {
                rc = dlas_error(DLAS_ERR_INVALID,
                                "'%s' in the block reads '%s', which is outside it; a block "
                                "is entered only through '%s'",
                                g->nodes[i].name, g->nodes[o].name, nf->name);
                goto out;
            }
            if (!in_block[i] && in_block[o] && o != t) {
                rc = dlas_error(DLAS_ERR_INVALID,
                                "'%s' reads '%s' inside the block; only the block's output "
                                "'%s' may be read from outside",
                                g->nodes[i].name, g->nodes[o].name, nt->name);
                goto out;
            }
        }
out:
    free(desc);
    free(anc);
    return rc;
}

static int same_shape(const struct dlas_node *a, const struct dlas_node *b)
{
    return a->out_ndim == b->out_ndim &&
           !memcmp(a->out_shape, b->out_shape, (size_t)a->out_ndim * sizeof *a->out_shape);
}

static const char *shape_str(const struct dlas_node *n, char *buf, size_t len)
{
    if (n->out_ndim == 3)
        snprintf(buf, len, "%lldx%lldx%lld", (long long)n->out_shape[0],
                 (long long)n->out_shape[1], (long long)n->out_shape[2]);
    else
        snprintf(buf, len, "%lld", (long long)n->out_shape[0]);
    return buf;
}

/* Move the ancestors of `out` in scratch graph s (its input standing for f)
 * into g in place of the block marked in in_block, whose output is t. */
static int splice(struct dlas_graph *g, int f, int t, const uint8_t *in_block,
                  struct dlas_graph *s, int out)
{
    char b1[64], b2[64];
    int rc = dlas_graph_validate(s);
    if (rc)
        return dlas_error_context("the new block");
    if (!same_shape(&s->nodes[0], &g->nodes[f]))
        return dlas_error(DLAS_ERR_INVALID, "the new block takes %s, but '%s' gives %s",
                          shape_str(&s->nodes[0], b1, sizeof b1), g->nodes[f].name,
                          shape_str(&g->nodes[f], b2, sizeof b2));
    if (!same_shape(&s->nodes[out], &g->nodes[t]))
        return dlas_error(DLAS_ERR_INVALID,
                          "the new block outputs %s ('%s'), but '%s' it replaces gives %s",
                          shape_str(&s->nodes[out], b1, sizeof b1), s->nodes[out].name,
                          g->nodes[t].name, shape_str(&g->nodes[t], b2, sizeof b2));

    uint8_t *used = calloc((size_t)s->n, 1), *keep = malloc((size_t)g->n);
    int *pos = malloc((size_t)s->n * sizeof *pos), *remap = malloc((size_t)g->n * sizeof *remap);
    struct dlas_node *ins = calloc((size_t)s->n, sizeof *ins);
    if (!used || !keep || !pos || !remap || !ins) {
        rc = dlas_error(DLAS_ERR_NOMEM, "replace block: out of memory");
        goto out;
    }
    used[out] = 1;
    for (int j = out; j > 0; j--)
        if (used[j])
            for (int k = 0; k < s->nodes[j].n_inputs; k++)
                used[s->nodes[j].inputs[k]] = 1;
    int last_kept = -1;
    for (int i = 0; i < g->n; i++) {
        keep[i] = !in_block[i];
        if (keep[i])
            last_kept = i;
    }
    /* an identity block at the end would make some other node the output */
    if (out == 0 && t == g->n - 1 && last_kept != f) {
        rc = dlas_error(DLAS_ERR_INVALID,
                        "an empty block in place of the network output '%s' would make '%s' "
                        "the output",
                        g->nodes[t].name, g->nodes[last_kept].name);
        goto out;
    }
    int n_ins = 0;
    for (int j = 1; j < s->n; j++) {
        pos[j] = -1;
        if (!used[j])
            continue;
        for (int i = 0; i < g->n; i++)
            if (keep[i] && !strcmp(g->nodes[i].name, s->nodes[j].name)) {
                rc = dlas_error(DLAS_ERR_INVALID,
                                "the new block's node '%s' has the name of node %d outside "
                                "the block",
                                s->nodes[j].name, i);
                goto out;
            }
        pos[j] = n_ins;
        ins[n_ins++] = s->nodes[j];
    }
    int base = 0;
    if ((rc = graph_splice(g, keep, t, ins, n_ins, remap, &base)))
        goto out;
    /* the scratch graph no longer owns what moved */
    for (int j = 1; j < s->n; j++)
        if (used[j])
            memset(&s->nodes[j], 0, sizeof s->nodes[j]);
    const int new_out = out == 0 ? remap[f] : base + pos[out];
    for (int j = 0; j < n_ins; j++) {
        struct dlas_node *n = &g->nodes[base + j];
        for (int k = 0; k < n->n_inputs; k++)
            n->inputs[k] = n->inputs[k] == 0 ? remap[f] : base + pos[n->inputs[k]];
    }
    for (int i = 0; i < g->n; i++) {
        if (i >= base && i < base + n_ins)
            continue;
        struct dlas_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            n->inputs[k] = n->inputs[k] == t ? new_out : remap[n->inputs[k]];
    }
    if ((rc = dlas_graph_infer_shapes(g)) || (rc = dlas_graph_validate(g)))
        dlas_error_context("replace block: internal error, graph left inconsistent");
out:
    free(used);
    free(keep);
    free(pos);
    free(remap);
    free(ins);
    return rc;
}

/* Resolve and check `from` and `to`; fill in_block (g->n bytes, allocated). */
static int prepare(struct dlas_graph *g, const char *from, const char *to, int *f, int *t,
                   uint8_t **in_block)
{
    int rc = dlas_graph_validate(g);
    if (rc)
        return rc;
    if (!from || !to)
        return dlas_error(DLAS_ERR_INVALID, "NULL block bound");
    if ((*f = dlas_graph_find(g, from)) < 0)
        return dlas_error(DLAS_ERR_NOTFOUND, "no node named '%s' (the block's input)", from);
    if ((*t = dlas_graph_find(g, to)) < 0)
        return dlas_error(DLAS_ERR_NOTFOUND, "no node named '%s' (the block's output)", to);
    if (g->nodes[*f].out_ndim != 3)
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "the block's input '%s' is a flat vector; blocks start from a CxHxW "
                          "feature map",
                          from);
    if (!(*in_block = calloc((size_t)g->n, 1)))
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if ((rc = find_block(g, *f, *t, *in_block))) {
        free(*in_block);
        *in_block = NULL;
    }
    return rc;
}

static int scratch_with_input(const struct dlas_node *from, struct dlas_graph **s)
{
    if (!(*s = dlas_graph_new()))
        return DLAS_ERR_NOMEM;
    if (dlas_graph_input(*s, from->name, (int)from->out_shape[0], (int)from->out_shape[1],
                         (int)from->out_shape[2]) < 0) {
        dlas_graph_free(*s);
        *s = NULL;
        return dlas_last_status() ? dlas_last_status() : DLAS_ERR_INTERNAL;
    }
    return DLAS_OK;
}

int dlas_graph_replace_block(struct dlas_graph *g, const char *from, const char *to,
                             dlas_block_builder build, void *ctx)
{
    int f, t, rc;
    uint8_t *in_block = NULL;
    struct dlas_graph *s = NULL;
    if (!build)
        rc = dlas_error(DLAS_ERR_INVALID, "NULL block builder");
    else if (!(rc = prepare(g, from, to, &f, &t, &in_block)) &&
             !(rc = scratch_with_input(&g->nodes[f], &s))) {
        int out = build(ctx, s, 0);
        if (out < 0 || dlas_graph_status(s)) {
            rc = out < 0 && -out <= DLAS_ERR_INTERNAL ? -out : dlas_graph_status(s);
            if (!rc)
                rc = DLAS_ERR_INVALID;
            dlas_error_context("building the new block");
        } else if (out >= dlas_graph_n_nodes(s))
            rc = dlas_error(DLAS_ERR_INVALID,
                            "the block builder returned node %d, but built only %d", out,
                            dlas_graph_n_nodes(s));
        else
            rc = splice(g, f, t, in_block, s, out);
    }
    if (rc && from && to)
        dlas_error_context("replace block '%s' .. '%s'", from, to);
    dlas_graph_free(s);
    free(in_block);
    return rc;
}

int dlas_graph_replace_block_graph(struct dlas_graph *g, const char *from, const char *to,
                                   const struct dlas_graph *block)
{
    int f, t, rc;
    uint8_t *in_block = NULL;
    struct dlas_graph *s = NULL;
    if (!block)
        rc = dlas_error(DLAS_ERR_INVALID, "NULL block graph");
    else if ((rc = dlas_graph_validate(block)))
        dlas_error_context("the new block");
    else if (!(rc = prepare(g, from, to, &f, &t, &in_block))) {
        if (!(s = dlas_graph_clone(block)))
            rc = dlas_last_status() ? dlas_last_status() : DLAS_ERR_NOMEM;
        else
            rc = splice(g, f, t, in_block, s, s->n - 1);
    }
    if (rc && from && to)
        dlas_error_context("replace block '%s' .. '%s'", from, to);
    dlas_graph_free(s);
    free(in_block);
    return rc;
}
