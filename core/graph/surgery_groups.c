/* Enumerating channel groups: the source layers whose output channels are
 * tied together, so that a pruning method can score and remove independent
 * channels rather than per-layer ones. */
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>
#include <dlas/surgery.h>

#include "surgery_ties.h"

static int node_find(int *up, int i)
{
    while (up[i] != i)
        i = up[i] = up[up[i]];
    return i;
}

void dlas_channel_groups_free(struct dlas_channel_group *groups, int n_groups)
{
    for (int i = 0; groups && i < n_groups; i++) {
        free(groups[i].members);
        free(groups[i].node);
        free(groups[i].channel);
        free(groups[i].prunable);
    }
    free(groups);
}

/* Fill group `gr` from the sources whose component is `comp`. */
static int fill_group(const struct dlas_graph *g, struct ties *t, const int *up, int comp,
                      uint8_t *seen, struct dlas_channel_group *gr)
{
    const int nn = t->n_nodes;
    int64_t nch = 0;
    for (int i = 0; i < nn; i++)
        if (up[i] == comp && ties_source(g, dlas_graph_node(g, i))) {
            gr->n_members++;
            nch += ties_width(t, i);
        }
    gr->members = malloc((size_t)gr->n_members * sizeof *gr->members);
    gr->node = malloc((size_t)nch * sizeof *gr->node);
    gr->channel = malloc((size_t)nch * sizeof *gr->channel);
    gr->prunable = malloc((size_t)nch);
    if (!gr->members || !gr->node || !gr->channel || !gr->prunable)
        return dlas_error(DLAS_ERR_NOMEM, "channel groups: out of memory");
    int m = 0;
    for (int i = 0; i < nn; i++) {
        if (up[i] != comp || !ties_source(g, dlas_graph_node(g, i)))
            continue;
        gr->members[m++] = i;
        for (int64_t c = 0; c < ties_width(t, i); c++) {
            int64_t r = ties_find(t, ties_slot(t, i, c));
            if (seen[r])
                continue;
            seen[r] = 1;
            int64_t k = gr->n_channels++;
            gr->node[k] = i;
            gr->channel[k] = c;
            gr->prunable[k] = t->blocker[r] < 0;
            gr->n_prunable += gr->prunable[k];
        }
    }
    return DLAS_OK;
}

int dlas_graph_channel_groups(const struct dlas_graph *g, struct dlas_channel_group **groups,
                              int *n_groups)
{
    if (!groups || !n_groups)
        return dlas_error(DLAS_ERR_INVALID, "channel groups: NULL result");
    *groups = NULL;
    *n_groups = 0;
    int rc = dlas_graph_validate(g);
    if (rc)
        return dlas_error_context("channel groups");
    struct ties t;
    if ((rc = ties_build(g, &t)))
        return rc;
    const int nn = t.n_nodes;
    int *up = malloc((size_t)nn * sizeof *up);
    int *owner = malloc(((size_t)t.n_slots + 1) * sizeof *owner);
    uint8_t *seen = calloc((size_t)t.n_slots + 1, 1);
    struct dlas_channel_group *out = NULL;
    int ng = 0;
    if (!up || !owner || !seen) {
        rc = dlas_error(DLAS_ERR_NOMEM, "channel groups: out of memory");
        goto done;
    }
    for (int i = 0; i < nn; i++)
        up[i] = i;
    for (int64_t s = 0; s < t.n_slots; s++)
        owner[s] = -1;
    /* two sources sharing any class are one group */
    for (int i = 0; i < nn; i++) {
        if (!ties_source(g, dlas_graph_node(g, i)))
            continue;
        for (int64_t c = 0; c < ties_width(&t, i); c++) {
            int64_t r = ties_find(&t, ties_slot(&t, i, c));
            if (owner[r] < 0) {
                owner[r] = i;
                continue;
            }
            int a = node_find(up, owner[r]), b = node_find(up, i);
            if (a != b)
                up[a > b ? a : b] = a < b ? a : b; /* the first member is the root */
        }
    }
    for (int i = 0; i < nn; i++) {
        up[i] = node_find(up, i);
        if (up[i] == i && ties_source(g, dlas_graph_node(g, i)))
            ng++;
    }
    if (ng && !(out = calloc((size_t)ng, sizeof *out))) {
        rc = dlas_error(DLAS_ERR_NOMEM, "channel groups: out of memory");
        goto done;
    }
    for (int i = 0, k = 0; i < nn && !rc; i++)
        if (up[i] == i && ties_source(g, dlas_graph_node(g, i)))
            rc = fill_group(g, &t, up, i, seen, &out[k++]);
done:
    if (rc) {
        dlas_channel_groups_free(out, ng);
        out = NULL;
        ng = 0;
    }
    *groups = out;
    *n_groups = ng;
    free(up);
    free(owner);
    free(seen);
    ties_free(&t);
    return rc;
}
