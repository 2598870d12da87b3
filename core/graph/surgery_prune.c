/* Removing output channels of a conv or linear layer together with every
 * channel tied to them (see <dlas/surgery.h>). All checks and all new
 * tensors come first; the graph changes only once nothing can fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>
#include <dlas/surgery.h>

#include "graph_impl.h"
#include "surgery_ties.h"

struct node_plan {
    int touched;
    int64_t new_out; /* conv out_channels / linear out_features */
    int new_groups;
    struct dlas_tensor w, b, rm, rv;
    struct dlas_tensor ws; /* a quantised conv's weight steps, one per output channel */
};

/* Copy of `src` without the rows (dim 0) marked in rm_out and, from rank 2
 * up, without the columns (dim 1) whose input channel is marked in rm_in:
 * column j of a row in group k reads input channel k * cols + j. The
 * caller has checked that every group keeps as many columns. */
static int slice(const struct dlas_tensor *src, const uint8_t *rm_out, const uint8_t *rm_in,
                 int64_t groups, struct dlas_tensor *dst)
{
    memset(dst, 0, sizeof *dst);
    if (!src->data)
        return DLAS_OK;
    const int64_t rows = src->dims[0], cols = src->ndim >= 2 ? src->dims[1] : 1;
    int64_t inner = 1;
    for (int d = 2; d < src->ndim; d++)
        inner *= src->dims[d];
    const int64_t per_group = rows / groups;
    int64_t new_rows = 0, first = -1;
    for (int64_t r = 0; r < rows; r++)
        if (!rm_out || !rm_out[r]) {
            new_rows++;
            if (first < 0)
                first = r;
        }
    int64_t new_cols = cols;
    if (src->ndim >= 2 && rm_in && first >= 0) {
        const uint8_t *grp = rm_in + (first / per_group) * cols;
        new_cols = 0;
        for (int64_t j = 0; j < cols; j++)
            new_cols += !grp[j];
    }
    int64_t dims[DLAS_MAX_DIMS];
    memcpy(dims, src->dims, sizeof dims);
    dims[0] = new_rows;
    if (src->ndim >= 2)
        dims[1] = new_cols;
    int rc = dlas_tensor_alloc(dst, src->dtype, src->ndim, dims);
    if (rc)
        return rc;
    if (src->mask && !(dst->mask = malloc((size_t)dlas_tensor_numel(dst)))) {
        dlas_tensor_free(dst);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    const size_t es = dlas_dtype_size(src->dtype), blk = (size_t)inner * es;
    const unsigned char *s = src->data;
    unsigned char *d = dst->data;
    int64_t out = 0; /* element blocks written */
    for (int64_t r = 0; r < rows; r++) {
        if (rm_out && rm_out[r])
            continue;
        const uint8_t *grp = rm_in && src->ndim >= 2 ? rm_in + (r / per_group) * cols : NULL;
        /* runs of kept columns, one copy each (a 1x1 conv's blocks are one
         * element: a copy an element made pruning MobileNet-v2 slow) */
        for (int64_t j = 0; j < cols;) {
            if (grp && grp[j]) {
                j++;
                continue;
            }
            int64_t end = j + 1;
            while (end < cols && !(grp && grp[end]))
                end++;
            const int64_t in = r * cols + j, n = end - j;
            memcpy(d + (size_t)out * blk, s + (size_t)in * blk, (size_t)n * blk);
            if (src->mask)
                memcpy(dst->mask + out * inner, src->mask + in * inner, (size_t)(n * inner));
            out += n;
            j = end;
        }
    }
    return DLAS_OK;
}

static int64_t count_marked(const uint8_t *m, int64_t n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        k += m[i] != 0;
    return k;
}

/* Each of `groups` equal parts of m has as many marks; *per gets that count. */
static int even_groups(const uint8_t *m, int64_t n, int64_t groups, int64_t *per)
{
    int64_t size = n / groups;
    *per = count_marked(m, size);
    for (int64_t k = 1; k < groups; k++)
        if (count_marked(m + k * size, size) != *per)
            return 0;
    return 1;
}

/* An add or concat that ties the class of `root`, to say how a tie arose. */
static const struct dlas_node *tie_via(const struct dlas_graph *g, struct ties *t, int64_t root)
{
    for (int i = 0; i < t->n_nodes; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_ADD && n->op != DLAS_OP_CONCAT && !ties_depthwise(g, n))
            continue;
        for (int64_t c = 0; c < ties_width(t, i); c++)
            if (ties_find(t, ties_slot(t, i, c)) == root)
                return n;
    }
    return NULL;
}

static void plans_free(struct node_plan *p, int n)
{
    for (int i = 0; p && i < n; i++) {
        dlas_tensor_free(&p[i].w);
        dlas_tensor_free(&p[i].b);
        dlas_tensor_free(&p[i].rm);
        dlas_tensor_free(&p[i].rv);
        dlas_tensor_free(&p[i].ws);
    }
    free(p);
}

/* Check what removing the slots marked in rm does to node i and prepare its
 * new parameters. */
static int plan_node(const struct dlas_graph *g, const struct ties *t, const uint8_t *rm, int i,
                     int dry, struct node_plan *p)
{
    const struct dlas_node *n = dlas_graph_node(g, i);
    const uint8_t *own = rm + t->base[i];
    const int64_t w = ties_width(t, i), lost = count_marked(own, w);
    if (lost == w)
        return dlas_error(DLAS_ERR_INVALID, "%s '%s' would be left with no channels",
                          dlas_op_name(n->op), n->name);
    if (n->op != DLAS_OP_CONV2D && n->op != DLAS_OP_LINEAR && n->op != DLAS_OP_BATCHNORM)
        return DLAS_OK; /* no parameters: its shape follows by inference */
    const int x = n->n_inputs ? n->inputs[0] : -1;
    const uint8_t *in = n->op == DLAS_OP_BATCHNORM ? NULL : rm + t->base[x];
    const int64_t in_w = x >= 0 ? ties_width(t, x) : 0;
    const int64_t in_lost = in ? count_marked(in, in_w) : 0;
    if (!lost && !in_lost)
        return DLAS_OK;

    int64_t groups = 1;
    p->new_groups = 1;
    if (n->op == DLAS_OP_CONV2D) {
        groups = n->attr.conv.groups;
        p->new_groups = (int)groups;
        if (ties_depthwise(g, n)) {
            p->new_groups = (int)(in_w - in_lost);
        } else if (groups > 1) {
            int64_t per_in, per_out;
            if (!even_groups(in, in_w, groups, &per_in) || !even_groups(own, w, groups, &per_out))
                return dlas_error(DLAS_ERR_UNSUPPORTED,
                                  "grouped conv2d '%s' (%lld groups) would lose a different "
                                  "number of %s channels from each group",
                                  n->name, (long long)groups,
                                  even_groups(in, in_w, groups, &per_in) ? "output" : "input");
            if (per_in == in_w / groups)
                return dlas_error(DLAS_ERR_UNSUPPORTED,
                                  "grouped conv2d '%s' would lose every input channel of its "
                                  "groups",
                                  n->name);
        }
    }
    if (dry)
        return DLAS_OK;
    p->touched = 1;
    p->new_out = w - lost;
    int rc;
    if (n->op == DLAS_OP_BATCHNORM) {
        if ((rc = slice(&n->weight, own, NULL, 1, &p->w)) ||
            (rc = slice(&n->bias, own, NULL, 1, &p->b)) ||
            (rc = slice(&n->running_mean, own, NULL, 1, &p->rm)) ||
            (rc = slice(&n->running_var, own, NULL, 1, &p->rv)))
            return rc;
        return DLAS_OK;
    }
    if ((rc = slice(&n->weight, own, in, groups, &p->w)) ||
        (rc = slice(&n->bias, own, NULL, 1, &p->b)) ||
        (rc = slice(&n->weight_scale, own, NULL, 1, &p->ws)))
        return rc;
    return DLAS_OK;
}

static void commit(struct dlas_graph *g, struct node_plan *plans)
{
    for (int i = 0; i < g->n; i++) {
        struct node_plan *p = &plans[i];
        struct dlas_node *n = &g->nodes[i];
        if (!p->touched)
            continue;
        dlas_tensor_free(&n->weight);
        dlas_tensor_free(&n->bias);
        dlas_tensor_free(&n->running_mean);
        dlas_tensor_free(&n->running_var);
        n->weight = p->w;
        n->bias = p->b;
        n->running_mean = p->rm;
        n->running_var = p->rv;
        if (n->op == DLAS_OP_CONV2D) {
            dlas_tensor_free(&n->weight_scale);
            n->weight_scale = p->ws;
            memset(&p->ws, 0, sizeof p->ws);
        }
        memset(&p->w, 0, sizeof p->w);
        memset(&p->b, 0, sizeof p->b);
        memset(&p->rm, 0, sizeof p->rm);
        memset(&p->rv, 0, sizeof p->rv);
        if (n->op == DLAS_OP_CONV2D) {
            n->attr.conv.out_channels = (int)p->new_out;
            n->attr.conv.groups = p->new_groups;
        } else if (n->op == DLAS_OP_LINEAR)
            n->attr.linear.out_features = (int)p->new_out;
    }
}

int ties_mark_keep(const struct dlas_graph *g, struct ties *t, int id, const uint8_t *keep,
                   uint8_t *rm_root, int64_t *n_removed)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    const int64_t w = ties_width(t, id);
    char why[256];
    *n_removed = 0;
    for (int64_t c = 0; c < w; c++) {
        if (keep[c])
            continue;
        int64_t r = ties_find(t, ties_slot(t, id, c));
        if (t->blocker[r] >= 0) {
            const struct dlas_node *via = tie_via(g, t, r);
            return dlas_error(DLAS_ERR_UNSUPPORTED,
                              "channel %lld of %s '%s' is tied to %s%s%s%s%s%s and cannot "
                              "be removed",
                              (long long)c, dlas_op_name(n->op), n->name,
                              ties_block_reason(g, t->blocker[r], why, sizeof why),
                              via ? " through " : "", via ? dlas_op_name(via->op) : "",
                              via ? " '" : "", via ? via->name : "", via ? "'" : "");
        }
        rm_root[r] = 1;
        (*n_removed)++;
    }
    for (int64_t c = 0; c < w; c++) {
        int64_t r = ties_find(t, ties_slot(t, id, c));
        if (!keep[c] || !rm_root[r])
            continue;
        int64_t other = 0;
        while (other < w && (keep[other] || ties_find(t, ties_slot(t, id, other)) != r))
            other++;
        const struct dlas_node *via = tie_via(g, t, r);
        return dlas_error(DLAS_ERR_INVALID,
                          "channel %lld of %s '%s' is kept but is tied to removed channel "
                          "%lld%s%s%s%s%s: keep or remove both",
                          (long long)c, dlas_op_name(n->op), n->name, (long long)other,
                          via ? " through " : "", via ? dlas_op_name(via->op) : "",
                          via ? " '" : "", via ? via->name : "", via ? "'" : "");
    }
    return DLAS_OK;
}

int ties_remove_classes(struct dlas_graph *g, struct ties *t, uint8_t *rm, int dry,
                        int *inconsistent)
{
    *inconsistent = 0;
    struct node_plan *plans = calloc((size_t)g->n, sizeof *plans);
    if (!plans)
        return dlas_error(DLAS_ERR_NOMEM, "prune channels: out of memory");
    /* every slot takes its class's mark (roots are a class's first slot, so
     * a root is always marked before its members are read) */
    for (int64_t s = 0; s < t->n_slots; s++)
        rm[s] = rm[ties_find(t, s)];
    int rc = DLAS_OK;
    for (int i = 0; i < g->n && !rc; i++)
        rc = plan_node(g, t, rm, i, dry, &plans[i]);
    if (!rc && !dry) {
        commit(g, plans);
        if ((rc = dlas_graph_infer_shapes(g)) || (rc = dlas_graph_validate(g)))
            *inconsistent = 1;
    }
    plans_free(plans, g->n);
    return rc;
}

int dlas_graph_prune_channels(struct dlas_graph *g, int id, const uint8_t *keep)
{
    int rc = dlas_graph_validate(g);
    if (rc)
        return dlas_error_context("prune channels");
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!n || !keep)
        return dlas_error(DLAS_ERR_INVALID, "prune channels: %s",
                          !n ? "no such node" : "NULL keep mask");
    if (n->op != DLAS_OP_CONV2D && n->op != DLAS_OP_LINEAR)
        return dlas_error(DLAS_ERR_INVALID,
                          "prune channels: '%s' is a %s; only conv2d and linear outputs are "
                          "removed directly",
                          n->name, dlas_op_name(n->op));

    struct ties t;
    if ((rc = ties_build(g, &t)))
        return rc;
    uint8_t *rm = calloc((size_t)t.n_slots + 1, 1);
    int64_t n_removed = 0;
    int inconsistent = 0;
    if (!rm) {
        rc = dlas_error(DLAS_ERR_NOMEM, "prune channels: out of memory");
        goto out;
    }
    if ((rc = ties_mark_keep(g, &t, id, keep, rm, &n_removed)) || !n_removed)
        goto out;
    if ((rc = ties_remove_classes(g, &t, rm, 0, &inconsistent))) {
        if (inconsistent)
            dlas_error_context("prune channels of '%s': internal error, graph left "
                               "inconsistent",
                               g->nodes[id].name);
        else
            dlas_error_context("removing %lld channel%s of %s '%s'", (long long)n_removed,
                               n_removed == 1 ? "" : "s", dlas_op_name(n->op), n->name);
    }
out:
    free(rm);
    ties_free(&t);
    return rc;
}
