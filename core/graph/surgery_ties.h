/* Which channels of a graph are tied together (see <dlas/surgery.h>): every
 * channel or feature of every node's output is a "slot", and slots that must
 * be removed together fall in one class of a union-find. Shared by channel
 * removal and group enumeration. Internal to the core. */
#ifndef DLAS_SURGERY_TIES_H
#define DLAS_SURGERY_TIES_H

#include <stdint.h>

#include <dlas/graph.h>

struct ties {
    int n_nodes;
    int64_t *base;    /* node i's slots are base[i] .. base[i+1]-1 */
    int64_t n_slots;
    int64_t *parent;  /* union-find forest over slots */
    int *blocker;     /* at a class root: a node that forbids removing the class, or -1 */
};

/* The graph must validate. */
int ties_build(const struct dlas_graph *g, struct ties *t);
void ties_free(struct ties *t);
int64_t ties_find(struct ties *t, int64_t slot);
static inline int64_t ties_slot(const struct ties *t, int node, int64_t c)
{
    return t->base[node] + c;
}
static inline int64_t ties_width(const struct ties *t, int node)
{
    return t->base[node + 1] - t->base[node];
}

/* Channel removal's two steps (defined in surgery_prune.c), for pruning and
 * for masking alike.
 *
 * ties_mark_keep: mark at their roots in rm_root the classes of node id's
 * channels that keep leaves out (*n_removed of them); refuse a class a
 * blocker holds, or one tied to a channel keep keeps.
 *
 * ties_remove_classes: remove every class marked at its root in rm
 * (t->n_slots + 1 bytes; every slot's byte is overwritten with its class's
 * mark). Every node's new parameters are made first: a refusal (a node left
 * with no channels, a grouped conv losing channels unevenly) leaves g as it
 * was. dry: only refuse or accept, change nothing (no tensor is copied).
 * *inconsistent is set when g failed to re-derive its shapes after the
 * change (a bug). */
int ties_mark_keep(const struct dlas_graph *g, struct ties *t, int id, const uint8_t *keep,
                   uint8_t *rm_root, int64_t *n_removed);
int ties_remove_classes(struct dlas_graph *g, struct ties *t, uint8_t *rm, int dry,
                        int *inconsistent);

/* Mask, all at once, the channels that keeps[s] leaves out of conv or
 * linear ids[s] for every s < n (dlas_graph_mask_channels for several
 * layers): channels that removal accepts only together, such as one from
 * every group of a grouped conv where those come from different layers. */
int graph_mask_channel_sets(struct dlas_graph *g, int n, const int *ids,
                            const uint8_t *const *keeps);

/* A conv whose output channels each come from one input channel. */
int ties_depthwise(const struct dlas_graph *g, const struct dlas_node *n);
/* A node that starts fresh channels: a conv other than depthwise, a linear. */
int ties_source(const struct dlas_graph *g, const struct dlas_node *n);
/* Why `blocker` forbids removing a class, for messages: "the network input
 * 'x'", "the network output 'y'", "softmax 'z' (it normalises across
 * channels)". */
const char *ties_block_reason(const struct dlas_graph *g, int blocker, char *buf, size_t len);

#endif
