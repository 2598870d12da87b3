/* Internal to hakd: timing candidate students (hakd_timer.c). */
#ifndef HAKD_TIMER_H
#define HAKD_TIMER_H

#include <stdio.h>

#include <dlas/plugin.h>
#include <dlas/registry.h>

struct hakd_timer {
    const struct dlas_host *host;
    struct dlas_registry *reg;
    const struct dlas_component *prim;
    struct dlas_params *pp, *bp;
    struct dlas_backend be;
    int be_open, warmup, repeat;
};

/* The named primitive on the openmp backend with `threads` threads. */
int hakd_timer_open(const struct dlas_host *host, const char *primitive, int threads,
                    int warmup, int repeat, struct hakd_timer *t);
void hakd_timer_close(struct hakd_timer *t);
/* Median seconds of a batch-1 run of g, and (node_seconds: NULL or
 * dlas_graph_n_nodes(g) entries) each node's mean seconds. */
int hakd_time(struct hakd_timer *t, const struct dlas_graph *g, double *median_s,
              double *node_seconds);

#endif
