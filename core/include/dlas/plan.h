/* Inference plan: every conv node bound to a primitive (prepared once),
 * every other node run by the core's operators, executed on a backend. */
#ifndef DLAS_PLAN_H
#define DLAS_PLAN_H

#include <dlas/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A primitive as configured: component plus validated parameters. */
struct dlas_primitive_choice {
    const char *label; /* the config instance name */
    const struct dlas_component *comp;
    const struct dlas_params *params;
};

struct dlas_plan;

/* Bind each conv to the first of `prims` whose supports() accepts it, else to
 * `fallback` (which may be NULL: then the core reference convolution). */
int dlas_plan_create(const struct dlas_graph *g, const struct dlas_host *host,
                     const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                     int n_prims, const struct dlas_primitive_choice *fallback,
                     int64_t max_batch, struct dlas_plan **out);
void dlas_plan_free(struct dlas_plan *p);
/* input: batch x C x H x W; output: batch x (graph output shape). */
int dlas_plan_run(struct dlas_plan *p, int64_t batch, const float *input, float *output);
/* Label of the primitive bound to node id ("ref" for core operators). */
const char *dlas_plan_binding(const struct dlas_plan *p, int id);
/* How many conv layers fell back, and a "layer: reason; ..." list. */
int dlas_plan_n_fallbacks(const struct dlas_plan *p);
const char *dlas_plan_fallbacks(const struct dlas_plan *p);
int64_t dlas_plan_output_numel(const struct dlas_plan *p); /* per sample */

#ifdef __cplusplus
}
#endif
#endif
