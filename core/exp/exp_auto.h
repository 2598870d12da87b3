/* An experiment's "auto": each conv layer bound to the fastest of the
 * experiment's primitives, as the plan measures it. Shared by the points
 * that sweep "auto" (runner.c) and by the latency a compressor asks for
 * (exp_latency.c), so both choose the same way. Not installed. */
#ifndef DLAS_EXP_AUTO_H
#define DLAS_EXP_AUTO_H

#include <stddef.h>
#include <stdint.h>

#include <dlas/plan.h>

#include "exp_internal.h"

/* The primitives auto chooses among: every instance in `primitives` that
 * runs on `device`, the point's own first (with its swept values), the
 * others with their parameters as written (a swept one at its first
 * value). */
struct exp_candidates {
    int n;
    struct dlas_primitive_choice *prims;
    struct dlas_params **params; /* owned, one per prims entry */
};
int exp_candidates_make(const struct dlas_experiment *e, const struct point *pt,
                        const char *device, struct exp_candidates *c);
void exp_candidates_free(struct exp_candidates *c);

/* How auto chose, for the row. */
struct exp_auto_choice {
    int blocks; /* 1: block_mask holds the fused blocks that won */
    int runs;   /* timed runs of each candidate (0: one breakdown each) */
    int unclear; /* layers decided by the median alone */
};

/* layer_prim and block_mask (dlas_graph_n_nodes(g) entries each) for a
 * plan's options: on the CPU the plan's own choice
 * (dlas_plan_auto_select: each layer timed inside whole plans until the
 * decision is clear, fused blocks raced against their layers), as `dlas
 * compare` and bench/vs_ort.py time it. On a device, or where no candidate
 * plans the graph on its own: each conv layer on the primitive whose own
 * plan ran it fastest in `repeat` timed runs. */
int exp_auto_choose(const struct dlas_graph *g, const struct dlas_host *host,
                    const struct dlas_backend *be, const struct exp_candidates *c,
                    const struct dlas_primitive_choice *fallback, int64_t batch, int repeat,
                    const struct dlas_tunelog *tunelog, uint64_t seed, int *layer_prim,
                    int *block_mask, struct exp_auto_choice *how);

/* "direct 12 winograd 4 in fused blocks 3": how many conv layers each
 * candidate (then the fallback, then fused blocks) runs in p. */
void exp_auto_describe(const struct dlas_plan *p, const struct exp_candidates *c, char *s,
                       size_t n);

#endif
