/* The units structured pruners choose among (see <dlas/prune.h>): classes
 * of tied channels, with the activations that carry them, and the cost of
 * a network once its masked channels are gone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/prune.h>
#include <dlas/status.h>

#include "surgery_ties.h"

void dlas_prune_units_free(struct dlas_prune_units *u)
{
    if (!u)
        return;
    free(u->u);
    free(u->pool);
    memset(u, 0, sizeof *u);
}

int dlas_prune_scope_parse(const char *s, enum dlas_prune_scope *out)
{
    if (s && !strcmp(s, "internal"))
        *out = DLAS_PRUNE_INTERNAL;
    else if (s && !strcmp(s, "all"))
        *out = DLAS_PRUNE_ALL;
    else
        return dlas_error(DLAS_ERR_INVALID, "scope = \"%s\" is not one of internal, all",
                          s ? s : "(null)");
    return DLAS_OK;
}

int64_t dlas_prune_live_channels(const struct dlas_graph *g, int id)
{
    const struct dlas_node *n = g ? dlas_graph_node(g, id) : NULL;
    if (!n)
        return 0;
    int64_t live = 0;
    for (int64_t c = 0; c < n->out_shape[0]; c++)
        live += !dlas_graph_channel_masked(g, id, c);
    return live;
}

/* The only consumer of node x, or -1. */
static int sole_consumer(const struct dlas_graph *g, int x)
{
    if (dlas_graph_n_consumers(g, x) != 1)
        return -1;
    for (int i = x + 1; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == x)
                return n->n_inputs == 1 ? i : -1;
    }
    return -1;
}

/* Where a source's channel leaves its layer: source -> batchnorm -> relu. */
static int chain_end(const struct dlas_graph *g, int src)
{
    int x = src;
    for (;;) {
        int y = sole_consumer(g, x);
        if (y < 0)
            return x;
        enum dlas_op op = dlas_graph_node(g, y)->op;
        if (op == DLAS_OP_BATCHNORM && dlas_graph_node(g, x)->op != DLAS_OP_BATCHNORM)
            x = y;
        else if (op == DLAS_OP_RELU || op == DLAS_OP_RELU6)
            return y;
        else
            return x;
    }
}

/* Mark the classes of the channels that a grouped conv (not depthwise)
 * reads or writes. Surgery removes them only the same number from every
 * group at once (a conv of 2 groups of 4 inputs may go to 2 of 3, not to
 * 4 + 3), and a unit is one channel: a pruner that chose one would have
 * its removal refused and stop. They are left out of the units; a
 * depthwise conv's channels follow their input's and stay in. */
static void mark_grouped(const struct dlas_graph *g, struct ties *t, uint8_t *grouped)
{
    for (int i = 0; i < t->n_nodes; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_CONV2D || n->attr.conv.groups <= 1 || ties_depthwise(g, n))
            continue;
        for (int64_t c = 0; c < ties_width(t, i); c++)
            grouped[ties_find(t, ties_slot(t, i, c))] = 1;
        for (int64_t c = 0; c < ties_width(t, n->inputs[0]); c++)
            grouped[ties_find(t, ties_slot(t, n->inputs[0], c))] = 1;
    }
}

int dlas_prune_grouped_note(const struct dlas_graph *g, char *buf, size_t len)
{
    int n = 0, first = -1;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *c = dlas_graph_node(g, i);
        if (c->op == DLAS_OP_CONV2D && c->attr.conv.groups > 1 && !ties_depthwise(g, c) &&
            !n++)
            first = i;
    }
    if (buf && len)
        buf[0] = 0;
    if (n && buf && len)
        snprintf(buf, len,
                 " (the channels that %d grouped conv%s such as '%s' read or write are not "
                 "pruned: a group cannot lose a channel alone)",
                 n, n > 1 ? "s" : "", dlas_graph_node(g, first)->name);
    return n;
}

int dlas_prune_units_find(const struct dlas_graph *g, enum dlas_prune_scope scope,
                          int include_linear, struct dlas_prune_units *out)
{
    if (!out)
        return dlas_error(DLAS_ERR_INVALID, "prune units: NULL output");
    memset(out, 0, sizeof *out);
    struct dlas_channel_group *gr = NULL;
    int ng = 0;
    int rc = dlas_graph_channel_groups(g, &gr, &ng); /* validates */
    if (rc)
        return rc;
    struct ties t;
    if ((rc = ties_build(g, &t))) {
        dlas_channel_groups_free(gr, ng);
        return rc;
    }
    const int nn = t.n_nodes;
    uint8_t *joins = calloc((size_t)t.n_slots + 1, 1); /* class runs through add/concat */
    uint8_t *grouped = calloc((size_t)t.n_slots + 1, 1); /* enters or leaves a grouped conv */
    int *n_src = calloc((size_t)t.n_slots + 1, sizeof *n_src);
    int *ends = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *ends);
    int64_t total = 0, pool_len = 0;
    for (int k = 0; k < ng; k++)
        total += gr[k].n_prunable;
    out->u = calloc((size_t)(total > 0 ? total : 1), sizeof *out->u);
    if (!joins || !grouped || !n_src || !ends || !out->u) {
        rc = dlas_error(DLAS_ERR_NOMEM, "prune units: out of memory");
        goto done;
    }
    for (int i = 0; i < nn; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        int src = ties_source(g, n);
        ends[i] = src ? chain_end(g, i) : -1;
        for (int64_t c = 0; c < ties_width(&t, i); c++) {
            int64_t r = ties_find(&t, ties_slot(&t, i, c));
            if (n->op == DLAS_OP_ADD || n->op == DLAS_OP_CONCAT)
                joins[r] = 1;
            n_src[r] += src;
        }
    }
    mark_grouped(g, &t, grouped);
    for (int i = 0; i < nn; i++)
        if (ends[i] >= 0)
            pool_len += ties_width(&t, i);
    if (!(out->pool = malloc((size_t)(pool_len > 0 ? 2 * pool_len : 1) * sizeof *out->pool))) {
        rc = dlas_error(DLAS_ERR_NOMEM, "prune units: out of memory");
        goto done;
    }
    int64_t used = 0;
    for (int k = 0; k < ng; k++) {
        for (int64_t j = 0; j < gr[k].n_channels; j++) {
            if (!gr[k].prunable[j])
                continue;
            const int node = gr[k].node[j];
            const int64_t ch = gr[k].channel[j];
            const int64_t r = ties_find(&t, ties_slot(&t, node, ch));
            const int tied = n_src[r] > 1 || joins[r];
            const int linear = dlas_graph_node(g, node)->op == DLAS_OP_LINEAR;
            if ((tied && scope == DLAS_PRUNE_INTERNAL) || (linear && !include_linear) || grouped[r])
                continue;
            struct dlas_prune_unit *u = &out->u[out->n++];
            u->group = k;
            u->node = node;
            u->channel = ch;
            u->tied = tied;
            u->linear = linear;
            u->acts = out->pool + used;
            u->sources = out->pool + pool_len + used;
            /* every source slot of the class, at the same channel index */
            for (int m = 0; m < gr[k].n_members; m++) {
                int s = gr[k].members[m];
                if (ch >= ties_width(&t, s) || ties_find(&t, ties_slot(&t, s, ch)) != r)
                    continue;
                out->pool[pool_len + used] = s;
                out->pool[used++] = ends[s];
                u->n_acts++;
            }
        }
    }
done:
    if (rc)
        dlas_prune_units_free(out);
    free(joins);
    free(grouped);
    free(n_src);
    free(ends);
    ties_free(&t);
    dlas_channel_groups_free(gr, ng);
    return rc;
}

int dlas_prune_cost(const struct dlas_graph *g, struct dlas_graph_stats *s,
                    struct dlas_graph **pruned)
{
    if (pruned)
        *pruned = NULL;
    if (!g || !s)
        return dlas_error(DLAS_ERR_INVALID, "prune cost: NULL %s", g ? "stats" : "graph");
    struct dlas_graph *c = dlas_graph_clone(g);
    if (!c)
        return dlas_error(DLAS_ERR_NOMEM, "prune cost: out of memory");
    int rc = dlas_graph_remove_masked_channels(c, NULL);
    if (!rc)
        rc = dlas_graph_stats(c, s);
    if (!rc && pruned)
        *pruned = c;
    else
        dlas_graph_free(c);
    return rc;
}
