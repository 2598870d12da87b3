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

/* A conv whose output channels each come from one input channel. */
int ties_depthwise(const struct dlas_graph *g, const struct dlas_node *n);
/* A node that starts fresh channels: a conv other than depthwise, a linear. */
int ties_source(const struct dlas_graph *g, const struct dlas_node *n);
/* Why `blocker` forbids removing a class, for messages: "the network input
 * 'x'", "the network output 'y'", "softmax 'z' (it normalises across
 * channels)". */
const char *ties_block_reason(const struct dlas_graph *g, int blocker, char *buf, size_t len);

#endif
