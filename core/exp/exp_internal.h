/* The parsed experiment, shared by the parser (experiment.c) and the runner
 * (runner.c). */
#ifndef DLAS_EXP_INTERNAL_H
#define DLAS_EXP_INTERNAL_H

#include <dlas/experiment.h>

#include "../plugin/cfgparams.h"
#include "results.h"

/* A named, configured component: "wino = { plugin = "winograd"; tile = 4; }" */
struct instance {
    char *label;
    const struct dlas_component *comp;
    struct dlas_params *params;
    struct dlas_axis *axes; /* parameters given a list: swept */
    int n_axes;
};

struct chain { /* a compressor chain; may be empty ("none") */
    char *label;
    int n;
    struct instance *steps;
};

/* One swept parameter value chosen for a point. */
struct pick {
    struct instance *inst;
    int axis, value;
};

struct point {
    char *id;
    char *hash;
    int model, chain, prim, backend;
    int64_t seed;
    struct pick *picks;
    int n_picks;
    struct dlas_row result;
};

struct dlas_experiment {
    char *path, *name, *output_dir;
    struct dlas_params *exp;   /* the experiment group, core spec */
    struct dlas_params *train; /* the train group, core spec */
    struct instance dataset;
    struct instance *models, *prims, *backends;
    int n_models, n_prims, n_backends;
    struct chain *chains;
    int n_chains;
    int *sel_models, *sel_chains, *sel_prims, *sel_backends; /* from `sweep` */
    int n_sel_models, n_sel_chains, n_sel_prims, n_sel_backends;
    int fallback; /* index into prims, or -1: core reference */
    struct point *points;
    size_t n_points;
    const char *run_dir; /* output directory of the run in progress */
};

/* Parameters of one instance as used at a point (axis values applied).
 * Caller frees. */
struct dlas_params *dlas_point_params(const struct point *pt, const struct instance *inst);

#endif
