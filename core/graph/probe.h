/* A calibrated copy of a graph for end-to-end agreement checks (probe.c).
 * Internal to the core. */
#ifndef DLAS_GRAPH_PROBE_H
#define DLAS_GRAPH_PROBE_H

#include <stdint.h>

struct dlas_graph;

/* 1 when g's output may not show what its convolutions compute: float
 * (not int8) and some batchnorm still at its initial statistics. */
int graph_needs_probe(const struct dlas_graph *g);

/* A copy of g whose batchnorms carry the statistics of their inputs on
 * `input` (batch x the graph's input shape), so that no activation vanishes
 * or saturates. */
int graph_probe(const struct dlas_graph *g, const float *input, int64_t batch,
                struct dlas_graph **out);

#endif
