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

/* The units of g (see dlas_prune_units_find_wholes), each unit's class root
 * in root[] (out->n of them, the caller's to free), and the ties. */
static int list_units(const struct dlas_graph *g, enum dlas_prune_scope scope, int include_linear,
                      struct dlas_prune_units *out, struct ties *tout, int64_t **root)
{
    memset(out, 0, sizeof *out);
    *root = NULL;
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
    int *n_src = calloc((size_t)t.n_slots + 1, sizeof *n_src);
    int *ends = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *ends);
    int64_t total = 0, pool_len = 0;
    for (int k = 0; k < ng; k++)
        total += gr[k].n_prunable;
    out->u = calloc((size_t)(total > 0 ? total : 1), sizeof *out->u);
    *root = malloc((size_t)(total > 0 ? total : 1) * sizeof **root);
    if (!joins || !n_src || !ends || !out->u || !*root) {
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
            if ((tied && scope == DLAS_PRUNE_INTERNAL) || (linear && !include_linear))
                continue;
            (*root)[out->n] = r;
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
    if (rc) {
        dlas_prune_units_free(out);
        free(*root);
        *root = NULL;
        ties_free(&t);
    } else
        *tout = t;
    free(joins);
    free(n_src);
    free(ends);
    dlas_channel_groups_free(gr, ng);
    return rc;
}

/* Union-find over class roots, joining the classes a grouped conv makes
 * removable only together. */
static int64_t whole_find(int64_t *up, int64_t x)
{
    while (up[x] != x)
        x = up[x] = up[up[x]];
    return x;
}

/* For every grouped conv (not depthwise) of G groups, join the classes of
 * channels j, j + s, ..., j + (G-1)s of its input and of its output (s: the
 * channels a group): removal takes as many channels from every group, and
 * one class from each, at the same place in each, is the least it can
 * take. Classes joined through several such convs become one set. */
static void join_grouped(const struct dlas_graph *g, struct ties *t, int64_t *up)
{
    for (int i = 0; i < t->n_nodes; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_CONV2D || n->attr.conv.groups <= 1 || ties_depthwise(g, n))
            continue;
        const int64_t groups = n->attr.conv.groups;
        const int side[2] = {n->inputs[0], i};
        for (int k = 0; k < 2; k++) {
            const int64_t s = ties_width(t, side[k]) / groups;
            for (int64_t j = 0; j < s; j++)
                for (int64_t q = 1; q < groups; q++) {
                    int64_t a = whole_find(up, ties_find(t, ties_slot(t, side[k], j)));
                    int64_t b = whole_find(up, ties_find(t, ties_slot(t, side[k], j + q * s)));
                    if (a != b)
                        up[b] = a;
                }
        }
    }
}

/* Group units into wholes. A set of classes whose every class is a unit is
 * a whole, its units in graph order; a set with a class that is no unit (a
 * channel of the network input, a tied one in internal scope) cannot go,
 * and its units are dropped from u. */
static int make_wholes(const struct dlas_graph *g, struct ties *t, const int64_t *root,
                       struct dlas_prune_units *u, struct dlas_prune_wholes *w)
{
    const int64_t ns = t->n_slots + 1;
    int64_t *up = malloc((size_t)ns * sizeof *up);
    int64_t *classes = calloc((size_t)ns, sizeof *classes); /* per set: its classes */
    int64_t *units = calloc((size_t)ns, sizeof *units);     /* per set: its units */
    int64_t *leader = malloc((size_t)ns * sizeof *leader);  /* per set: its whole */
    uint8_t *seen = calloc((size_t)ns, 1);
    int64_t *set = malloc((size_t)(u->n > 0 ? u->n : 1) * sizeof *set);
    int rc = DLAS_OK;
    if (!up || !classes || !units || !leader || !seen || !set) {
        rc = dlas_error(DLAS_ERR_NOMEM, "prune units: out of memory");
        goto done;
    }
    for (int64_t x = 0; x < ns; x++)
        up[x] = x, leader[x] = -1;
    join_grouped(g, t, up);
    for (int64_t x = 0; x < t->n_slots; x++) {
        int64_t r = ties_find(t, x);
        if (!seen[r]) {
            seen[r] = 1;
            classes[whole_find(up, r)]++;
        }
    }
    for (int64_t i = 0; i < u->n; i++)
        units[set[i] = whole_find(up, root[i])]++;
    /* drop the units of sets that cannot go, keeping the order */
    int64_t kept = 0;
    for (int64_t i = 0; i < u->n; i++)
        if (units[set[i]] == classes[set[i]]) {
            set[kept] = set[i];
            u->u[kept++] = u->u[i];
        }
    u->n = kept;
    w->whole_of = malloc((size_t)(kept > 0 ? kept : 1) * sizeof *w->whole_of);
    w->first = malloc((size_t)(kept + 1) * sizeof *w->first);
    w->part = malloc((size_t)(kept > 0 ? kept : 1) * sizeof *w->part);
    if (!w->whole_of || !w->first || !w->part) {
        rc = dlas_error(DLAS_ERR_NOMEM, "prune units: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < kept; i++) {
        if (leader[set[i]] < 0)
            leader[set[i]] = w->n++;
        w->whole_of[i] = leader[set[i]];
    }
    /* parts listed whole by whole (counting sort on whole_of) */
    memset(w->first, 0, (size_t)(kept + 1) * sizeof *w->first);
    for (int64_t i = 0; i < kept; i++)
        w->first[w->whole_of[i] + 1]++;
    for (int64_t k = 0; k < w->n; k++)
        w->first[k + 1] += w->first[k];
    for (int64_t k = 0; k < w->n; k++)
        units[k] = w->first[k]; /* reused: next free place of whole k */
    for (int64_t i = 0; i < kept; i++)
        w->part[units[w->whole_of[i]]++] = i;
done:
    free(up);
    free(classes);
    free(units);
    free(leader);
    free(seen);
    free(set);
    return rc;
}

void dlas_prune_wholes_free(struct dlas_prune_wholes *w)
{
    if (!w)
        return;
    free(w->first);
    free(w->part);
    free(w->whole_of);
    memset(w, 0, sizeof *w);
}

int dlas_prune_units_find_wholes(const struct dlas_graph *g, enum dlas_prune_scope scope,
                                 int include_linear, struct dlas_prune_units *out,
                                 struct dlas_prune_wholes *wholes)
{
    if (!out || !wholes)
        return dlas_error(DLAS_ERR_INVALID, "prune units: NULL output");
    memset(wholes, 0, sizeof *wholes);
    struct ties t;
    int64_t *root;
    int rc = list_units(g, scope, include_linear, out, &t, &root);
    if (rc)
        return rc;
    rc = make_wholes(g, &t, root, out, wholes);
    if (rc) {
        dlas_prune_units_free(out);
        dlas_prune_wholes_free(wholes);
    }
    free(root);
    ties_free(&t);
    return rc;
}

int dlas_prune_units_find(const struct dlas_graph *g, enum dlas_prune_scope scope,
                          int include_linear, struct dlas_prune_units *out)
{
    struct dlas_prune_wholes w;
    int rc = dlas_prune_units_find_wholes(g, scope, include_linear, out, &w);
    if (rc)
        return rc;
    /* the units that stand alone */
    int64_t kept = 0;
    for (int64_t i = 0; i < out->n; i++) {
        int64_t k = w.whole_of[i];
        if (w.first[k + 1] - w.first[k] == 1)
            out->u[kept++] = out->u[i];
    }
    out->n = kept;
    dlas_prune_wholes_free(&w);
    return DLAS_OK;
}

double dlas_prune_whole_score(const struct dlas_prune_wholes *w, const double *scores, int64_t k)
{
    double s = 0.0;
    for (int64_t p = w->first[k]; p < w->first[k + 1]; p++)
        s += scores[w->part[p]];
    return s / (double)(w->first[k + 1] - w->first[k]);
}

int dlas_prune_whole_live(const struct dlas_graph *g, const struct dlas_prune_units *u,
                          const struct dlas_prune_wholes *w, int64_t k)
{
    for (int64_t p = w->first[k]; p < w->first[k + 1]; p++) {
        const struct dlas_prune_unit *x = &u->u[w->part[p]];
        if (dlas_graph_channel_masked(g, x->node, x->channel))
            return 0;
    }
    return 1;
}

int dlas_prune_mask_whole(struct dlas_graph *g, const struct dlas_prune_units *u,
                          const struct dlas_prune_wholes *w, int64_t k)
{
    if (!g || !u || !w || k < 0 || k >= w->n)
        return dlas_error(DLAS_ERR_INVALID, "mask whole: no whole %lld", (long long)k);
    /* one keep array per source of any part; a part's channel goes from every
     * source of its class, so that no listed layer keeps a channel of a
     * class another removes */
    int most = 0, n = 0, rc = DLAS_OK;
    for (int64_t p = w->first[k]; p < w->first[k + 1]; p++)
        most += u->u[w->part[p]].n_acts;
    int *ids = malloc((size_t)(most > 0 ? most : 1) * sizeof *ids);
    uint8_t **keeps = calloc((size_t)(most > 0 ? most : 1), sizeof *keeps);
    if (!ids || !keeps)
        rc = dlas_error(DLAS_ERR_NOMEM, "mask whole: out of memory");
    for (int64_t p = w->first[k]; !rc && p < w->first[k + 1]; p++) {
        const struct dlas_prune_unit *x = &u->u[w->part[p]];
        for (int a = 0; !rc && a < x->n_acts; a++) {
            int s = 0;
            while (s < n && ids[s] != x->sources[a])
                s++;
            if (s == n) { /* a source not seen yet: all kept */
                const int64_t width = dlas_graph_node(g, x->sources[a])->out_shape[0];
                if (!(keeps[n] = malloc((size_t)width))) {
                    rc = dlas_error(DLAS_ERR_NOMEM, "mask whole: out of memory");
                    break;
                }
                memset(keeps[n], 1, (size_t)width);
                ids[n++] = x->sources[a];
            }
            keeps[s][x->channel] = 0;
        }
    }
    if (!rc)
        rc = graph_mask_channel_sets(g, n, ids, (const uint8_t *const *)keeps);
    for (int s = 0; s < n; s++)
        free(keeps[s]);
    free(keeps);
    free(ids);
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
