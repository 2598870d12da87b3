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

/* Output shape of node `id` from its attributes and the stored shapes of its
 * inputs; on failure the message names the node. */
int graph_derive_shape(const struct dlas_graph *g, int id, int *ndim, int64_t shape[3]);
/* Parameter tensors of node `id` against its attributes and input shape. */
int graph_check_params(const struct dlas_graph *g, int id);

#endif
