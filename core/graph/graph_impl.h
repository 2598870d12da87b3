/* The graph container's layout, shared by graph.c (container, whole-graph
 * passes) and graph_build.c (builders and the per-op shape rules). Not
 * installed: plugins see the graph only through <dlas/graph.h>. */
#ifndef DLAS_GRAPH_IMPL_H
#define DLAS_GRAPH_IMPL_H

#include <dlas/graph.h>

struct dlas_graph {
    struct dlas_node *nodes; /* ids are indices; reallocated as the graph grows */
    int n, cap;
    int status; /* first builder error (a positive status), 0 if none */
};

/* Free what a node owns (inputs, parameter tensors); the struct itself is
 * left for the caller, who may reuse its slot. */
void graph_node_release(struct dlas_node *n);
/* Rebuild g's node array from the nodes of g for which keep[i] is set, in
 * order, with `n_ins` nodes taken from `ins` (ownership moves, the source
 * slots are zeroed) placed just before node `at`'s position. remap
 * receives each kept node's new id (-1 for dropped ones); ins_base receives
 * the new id of ins[0]. Inputs are not rewritten: the caller does that with
 * the maps. Dropped nodes are released. Fails only for lack of memory, and
 * then changes nothing. */
int graph_splice(struct dlas_graph *g, const uint8_t *keep, int at, struct dlas_node *ins,
                 int n_ins, int *remap, int *ins_base);

/* Output shape of node `id` from its attributes and the stored shapes of its
 * inputs; on failure the message names the node. */
int graph_derive_shape(const struct dlas_graph *g, int id, int *ndim, int64_t shape[3]);
/* Parameter tensors of node `id` against its attributes and input shape. */
int graph_check_params(const struct dlas_graph *g, int id);

#endif
