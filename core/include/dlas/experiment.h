/* Experiments: a libconfig file naming a dataset, models, a training recipe,
 * compressor chains, primitives and backends, expanded into a grid of points
 * (their cartesian product, times seeds, times any parameter given a list).
 * Each point has a stable id; results are written atomically as each point
 * ends, and a rerun skips points already done with the same configuration. */
#ifndef DLAS_EXPERIMENT_H
#define DLAS_EXPERIMENT_H

#include <stddef.h>
#include <stdio.h>

#include <dlas/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dlas_experiment;

/* Parse and validate; every error names file:line and the offending key. */
int dlas_experiment_load(const char *path, struct dlas_registry *reg,
                         struct dlas_experiment **out);
void dlas_experiment_free(struct dlas_experiment *e);

const char *dlas_experiment_name(const struct dlas_experiment *e);
const char *dlas_experiment_output_dir(const struct dlas_experiment *e);
size_t dlas_experiment_n_points(const struct dlas_experiment *e);
const char *dlas_experiment_point_id(const struct dlas_experiment *e, size_t i);
/* The configuration with every default filled in, in libconfig syntax. */
char *dlas_experiment_resolved(const struct dlas_experiment *e);

struct dlas_run_options {
    int resume;     /* skip points already in the results with the same config */
    int isolate;    /* run each point in a child process: a crash fails only it */
    int progress;   /* show progress on stderr: 1 yes, 0 no, -1 when it is a TTY */
    const char *output_dir; /* overrides the config's output directory if set */
};
void dlas_run_options_default(struct dlas_run_options *o);

struct dlas_run_summary {
    size_t ran, failed, skipped;
    char csv_path[4096], json_path[4096], config_path[4096];
};

/* Run every point. Returns 0 when all ran (some may have failed: see summary),
 * non-zero when the experiment could not run at all. */
int dlas_experiment_run(struct dlas_experiment *e, const struct dlas_run_options *o,
                        struct dlas_run_summary *summary);

/* After a run: the value of a result column for point i ("" if none). */
const char *dlas_experiment_result(const struct dlas_experiment *e, size_t i,
                                   const char *column);

#ifdef __cplusplus
}
#endif
#endif
