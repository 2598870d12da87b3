/* Masking channels instead of removing them, and removing masked channels
 * later (see <dlas/surgery.h>): what structured pruners do while they
 * fine-tune, as the papers' code does with its channel masks. A masked class
 * of tied channels is exactly zero in every tensor it runs through, so
 * removing it afterwards changes no output. */
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>
#include <dlas/surgery.h>

#include "surgery_ties.h"

/* Zero entry c of a per-channel tensor (bias, gamma, beta) through its mask. */
static int mask_entry(struct dlas_tensor *t, int64_t c)
{
    if (!t->data)
        return DLAS_OK;
    int rc = dlas_tensor_mask_ensure(t);
    if (rc)
        return rc;
    t->mask[c] = 0;
    ((float *)t->data)[c] = 0.0f;
    return DLAS_OK;
}

/* Zero row c (output channel or feature c) of a weight through its mask. */
static int mask_row(struct dlas_tensor *t, int64_t c)
{
    if (!t->data)
        return DLAS_OK;
    int rc = dlas_tensor_mask_ensure(t);
    if (rc)
        return rc;
    const int64_t per = dlas_tensor_numel(t) / t->dims[0];
    memset(t->mask + c * per, 0, (size_t)per);
    memset((float *)t->data + c * per, 0, (size_t)per * sizeof(float));
    return DLAS_OK;
}

static int row_masked(const struct dlas_tensor *t, int64_t c)
{
    if (!t->data)
        return 1;
    if (!t->mask)
        return 0;
    const int64_t per = dlas_tensor_numel(t) / t->dims[0];
    for (int64_t i = 0; i < per; i++)
        if (t->mask[c * per + i])
            return 0;
    return 1;
}

static int entry_masked(const struct dlas_tensor *t, int64_t c)
{
    return !t->data || (t->mask && !t->mask[c]);
}

/* The nodes that give a channel its value from nothing but their own
 * parameters: convs (depthwise too), linears and batchnorms. */
static int sets_value(const struct dlas_node *n)
{
    return n->op == DLAS_OP_CONV2D || n->op == DLAS_OP_LINEAR || n->op == DLAS_OP_BATCHNORM;
}

static int mask_classes(struct dlas_graph *g, int id, const uint8_t *keep)
{
    struct ties t;
    int rc;
    if ((rc = ties_build(g, &t)))
        return rc;
    uint8_t *gone = calloc((size_t)t.n_slots + 1, 1);
    if (!gone) {
        ties_free(&t);
        return dlas_error(DLAS_ERR_NOMEM, "mask channels: out of memory");
    }
    for (int64_t c = 0; c < ties_width(&t, id); c++)
        if (!keep[c])
            gone[ties_find(&t, ties_slot(&t, id, c))] = 1;
    for (int i = 0; i < t.n_nodes && !rc; i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (!sets_value(n))
            continue;
        for (int64_t c = 0; c < ties_width(&t, i) && !rc; c++) {
            if (!gone[ties_find(&t, ties_slot(&t, i, c))])
                continue;
            if (n->op == DLAS_OP_BATCHNORM) {
                if (!(rc = mask_entry(&n->weight, c)))
                    rc = mask_entry(&n->bias, c);
            } else if (!(rc = mask_row(&n->weight, c)))
                rc = mask_entry(&n->bias, c);
        }
    }
    free(gone);
    ties_free(&t);
    return rc;
}

int dlas_graph_mask_channels(struct dlas_graph *g, int id, const uint8_t *keep)
{
    if (!g || !keep)
        return dlas_error(DLAS_ERR_INVALID, "mask channels: NULL %s", g ? "keep" : "graph");
    if (id < 0 || id >= dlas_graph_n_nodes(g))
        return dlas_error(DLAS_ERR_INVALID, "mask channels: no node %d", id);
    /* The refusals of removal, on one copy: these channels now, then every
     * channel masked so far (still masked in the copy) together with them,
     * so that a layer masked channel by channel is still refused its last
     * one. A masked class stays dead whatever else is removed, so removing
     * these first leaves the same set to remove as masking them would. */
    struct dlas_graph *trial = dlas_graph_clone(g);
    if (!trial)
        return dlas_error(DLAS_ERR_NOMEM, "mask channels: out of memory");
    int rc = dlas_graph_prune_channels(trial, id, keep);
    if (rc) {
        dlas_graph_free(trial);
        return rc;
    }
    rc = dlas_graph_remove_masked_channels(trial, NULL);
    dlas_graph_free(trial);
    if (rc)
        return dlas_error_context("masking channels of '%s'", dlas_graph_node(g, id)->name);
    return mask_classes(g, id, keep);
}

int dlas_graph_channel_masked(const struct dlas_graph *g, int id, int64_t c)
{
    const struct dlas_node *n = g ? dlas_graph_node(g, id) : NULL;
    if (!n || c < 0 || c >= n->out_shape[0] || !sets_value(n))
        return 0;
    if (n->op == DLAS_OP_BATCHNORM)
        return entry_masked(&n->weight, c) && entry_masked(&n->bias, c);
    return row_masked(&n->weight, c) && entry_masked(&n->bias, c);
}

/* One pass: the first source with a dead class loses every dead class it
 * carries. Returns 1 when it removed something, 0 when none is left. */
static int remove_one(struct dlas_graph *g, int64_t *removed)
{
    struct ties t;
    int rc = ties_build(g, &t);
    if (rc)
        return -rc;
    uint8_t *alive = calloc((size_t)t.n_slots + 1, 1), *has_src = calloc((size_t)t.n_slots + 1, 1);
    uint8_t *keep = NULL;
    int done = 0;
    if (!alive || !has_src) {
        rc = dlas_error(DLAS_ERR_NOMEM, "remove masked channels: out of memory");
        goto out;
    }
    /* a class is dead when every node that sets a value in it is masked
     * there, at least one source is in it, and nothing blocks removing it */
    for (int i = 0; i < t.n_nodes; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        for (int64_t c = 0; c < ties_width(&t, i); c++) {
            int64_t r = ties_find(&t, ties_slot(&t, i, c));
            if (sets_value(n) && !dlas_graph_channel_masked(g, i, c))
                alive[r] = 1;
            if (ties_source(g, n))
                has_src[r] = 1;
        }
    }
    for (int i = 0; i < t.n_nodes && !done; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (!ties_source(g, n))
            continue;
        const int64_t w = ties_width(&t, i);
        int64_t dead = 0;
        for (int64_t c = 0; c < w; c++) {
            int64_t r = ties_find(&t, ties_slot(&t, i, c));
            dead += !alive[r] && has_src[r] && t.blocker[r] < 0;
        }
        if (!dead)
            continue;
        if (!(keep = malloc((size_t)w))) {
            rc = dlas_error(DLAS_ERR_NOMEM, "remove masked channels: out of memory");
            goto out;
        }
        for (int64_t c = 0; c < w; c++) {
            int64_t r = ties_find(&t, ties_slot(&t, i, c));
            keep[c] = !(!alive[r] && has_src[r] && t.blocker[r] < 0);
        }
        if ((rc = dlas_graph_prune_channels(g, i, keep))) {
            dlas_error_context("removing the masked channels of '%s'", n->name);
            goto out;
        }
        if (removed)
            *removed += dead;
        done = 1;
    }
out:
    free(keep);
    free(alive);
    free(has_src);
    ties_free(&t);
    return rc ? -rc : done;
}

int dlas_graph_remove_masked_channels(struct dlas_graph *g, int64_t *removed)
{
    if (removed)
        *removed = 0;
    if (!g)
        return dlas_error(DLAS_ERR_INVALID, "remove masked channels: NULL graph");
    int rc = dlas_graph_validate(g);
    if (rc)
        return dlas_error_context("remove masked channels");
    for (;;) {
        int r = remove_one(g, removed);
        if (r < 0)
            return -r;
        if (r == 0)
            return DLAS_OK;
    }
}
