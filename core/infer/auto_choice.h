/* `auto` as the tools that report it choose it (dlas compare's end-to-end
 * auto, latency_auto's plan): dlas_plan_auto_select on the CPU, and, where
 * that cannot choose, nothing, so that the caller falls back on its own
 * rule (one timed breakdown of each primitive's plan). One place decides
 * when the plan's own choice applies. */
#ifndef DLAS_AUTO_CHOICE_H
#define DLAS_AUTO_CHOICE_H

#include <stdint.h>

#include <dlas/plan.h>

/* layer_prim and block_mask (dlas_graph_n_nodes(g) each) as
 * dlas_plan_auto_select fills them at this batch, tuning log and input
 * seed, and *chosen = 1; or *chosen = 0 with DLAS_OK on a device backend
 * (the fused blocks are the CPU's) or where no candidate plans the graph.
 * plans: NULL, or each primitive's own plan (prepared as
 * dlas_plan_auto_select would, with the fallback, at this batch and
 * tuning log; NULL where it failed), timed as the candidates instead of
 * preparing them again, and left to the caller. runs, unclear: NULL, or
 * the report's figures. Another failure is returned as it is, with its
 * message. */
int auto_choose(const struct dlas_graph *g, const struct dlas_host *host,
                const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                int n_prims, const struct dlas_primitive_choice *fallback, int64_t batch,
                const struct dlas_tunelog *tunelog, uint64_t seed,
                struct dlas_plan *const *plans, int *layer_prim, int *block_mask, int *runs,
                int *unclear, int *chosen);

#endif
