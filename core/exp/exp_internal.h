/* The parsed experiment, shared by the parser (experiment.c) and the runner
 * (runner.c). */
#ifndef DLAS_EXP_INTERNAL_H
#define DLAS_EXP_INTERNAL_H

#include <dlas/experiment.h>

#include "../plugin/cfgparams.h"
#include "exp_probe.h"
#include "results.h"

/* A named, configured component: "wino = { plugin = "winograd"; tile = 4; }" */
struct instance {
    char *label;
    const struct dlas_component *comp;
    struct dlas_params *params;
    struct dlas_axis *axes; /* parameters given a list: swept */
    int n_axes;
    char *weights; /* models: a checkpoint to start from (models.X.weights), or NULL */
    char *desc; /* "plugin{params}" for the point hash, kept when there is no axis */
};

struct chain { /* a compressor chain; may be empty ("none") */
    char *label;
    int n;
    struct instance *steps;
};

/* One swept parameter value chosen for a point. */
/* The most points one experiment file may expand to: past it, the sweep is
 * refused with its size (a typo such as a list of 10^6 seeds would
 * otherwise take hours and gigabytes before anything ran). */
#define DLAS_MAX_POINTS 1000000

struct pick {
    struct instance *inst;
    int axis, value;
};

/* point.prim of a point that sweeps "auto": each conv layer on the
 * fastest of the experiment's primitives, measured (exp_auto.h) */
#define POINT_AUTO (-2)

struct point {
    char *id;
    char *hash;
    char *baseline; /* id of its dense baseline (same point, empty chain), or "" */
    int model, chain, prim, backend; /* prim: -1 none (the reference), or POINT_AUTO */
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
    /* sweep.primitives lists "auto" (one more point per cell): 1 + the
     * number of names before it; 0 when it does not */
    int sweep_auto;
    int fallback; /* index into prims, or -1: core reference */
    struct point *points;
    size_t n_points, cap_points;
    char *settings_desc; /* the experiment and train groups, described once for the hashes */
    struct exp_probes probes; /* the best machine probes seen (exp_probe.h); a point's child
                                 inherits them at its fork */
    const char *run_dir; /* output directory of the run in progress */
};

/* Parameters of one instance as used at a point (axis values applied).
 * Caller frees. */
struct dlas_params *dlas_point_params(const struct point *pt, const struct instance *inst);

/* The point's own columns: each swept parameter ("compressor.mag.sparsity")
 * and the id of its dense baseline (exp_columns.c). */
void exp_point_columns(const struct dlas_experiment *e, const struct point *pt,
                       struct dlas_row *row);

/* Trained weights in and compressed models out (exp_weights.c). */
struct dlas_buf;
int exp_parse_weights(const config_setting_t *s, const char *label, char **out);
/* "weights=PATH@SIZE:MTIME" into a point's hash key, so new weights rerun it */
void exp_describe_weights(struct dlas_buf *key, const struct instance *model);
int exp_load_weights(const struct instance *model, struct dlas_graph *g, struct dlas_row *row);
/* experiment.save_models: the compressed graph, masks and all, as
 * <dir>/models/compressed/<cell id>.ckpt */
int exp_save_model(const struct dlas_experiment *e, const struct point *pt,
                   const struct dlas_graph *g, struct dlas_row *row);

/* Parameters marked DLAS_PARAM_PATH exist and can be read (exp_paths.c);
 * errors name the config's file:line. */
int exp_check_paths(const config_setting_t *group, const char *what,
                    const struct dlas_param_spec *spec, const struct dlas_params *p);

/* Run one point (runner.c) into pt->result, in a child process when
 * isolate: its failure, crash or hang becomes the row's status and error. */
void exp_run_point(struct dlas_experiment *e, struct point *pt, int isolate);
/* A point that ran elsewhere and came back with no row: failed, with why. */
void exp_run_point_failed(struct dlas_experiment *e, struct point *pt, const char *why);

/* The key of the trained model a point starts from (exp_train.c): points
 * with the same key share one training through the model cache; 0 when the
 * experiment does not train. */
uint64_t exp_point_model_key(const struct dlas_experiment *e, const struct point *pt);

#endif
