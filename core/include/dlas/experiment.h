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
/* The hash of point i's resolved configuration (a rerun skips a point whose
 * row has the same id and hash). */
const char *dlas_experiment_point_hash(const struct dlas_experiment *e, size_t i);
/* The configuration with every default filled in, in libconfig syntax. */
char *dlas_experiment_resolved(const struct dlas_experiment *e);

struct dlas_run_dispatch;

struct dlas_run_options {
    int resume;     /* skip points already in the results with the same config */
    int isolate;    /* run each point in a child process: a crash fails only it */
    int progress;   /* progress on stderr: 1 bar, 0 none, -1 a bar on a TTY and one line
                       per point started and finished (with an ETA) otherwise */
    const char *output_dir; /* overrides the config's output directory if set */
    int rebuild_results; /* keep the rows that parse from damaged results files */
    int retry_noisy;     /* rerun finished points whose timing was flagged noisy */
    /* NULL: run the points here, one after another. Else the points to run
     * are handed to it (e.g. spread over the ranks of an MPI job). */
    const struct dlas_run_dispatch *dispatch;
};
void dlas_run_options_default(struct dlas_run_options *o);

struct dlas_run_summary {
    size_t ran, failed, skipped;
    char csv_path[4096], json_path[4096], config_path[4096];
    /* points whose hardware or library is missing (a GPU backend without a
     * GPU): recorded with status "unavailable" and the reason, tried again by
     * a rerun; not counted in ran, failed or skipped */
    size_t unavailable;
};

/* Run every point. Returns 0 when all ran (some may have failed: see summary),
 * non-zero when the experiment could not run at all. */
int dlas_experiment_run(struct dlas_experiment *e, const struct dlas_run_options *o,
                        struct dlas_run_summary *summary);

/* Running points elsewhere. dlas_experiment_run opens the results, decides
 * which points to run (resume, --retry-noisy) and hands their indices, in
 * grid order, to dispatch->run. That runs them anywhere (a point's row comes
 * from dlas_experiment_run_point, possibly in another process with the same
 * experiment loaded) and reports each point's start and row through the
 * sink, from the calling thread. Rows are written as they are reported,
 * through the one results writer. A non-zero return of dlas_run_finished
 * (the results could not be written) must end the dispatch, which returns
 * it. */
struct dlas_run_sink;
struct dlas_run_dispatch {
    void *ctx;
    int (*run)(void *ctx, struct dlas_experiment *e, const struct dlas_run_options *o,
               const size_t *points, size_t n, struct dlas_run_sink *sink);
};
/* where: who runs it ("rank 3"), or NULL. */
void dlas_run_started(struct dlas_run_sink *s, size_t point, const char *where);
/* row: the encoded row (dlas_row_encode) from dlas_experiment_run_point; NULL
 * or text that does not decode records the point as failed with why. */
int dlas_run_finished(struct dlas_run_sink *s, size_t point, const char *row, const char *why);

/* Run point i in this process (in a child process when o->isolate, or the
 * experiment's `isolate`, says so) without touching the results files;
 * *row receives its encoded row (free it). Output goes to o->output_dir or
 * the experiment's (the model cache lives there). */
int dlas_experiment_run_point(struct dlas_experiment *e, const struct dlas_run_options *o,
                              size_t i, char **row);
/* Points with the same non-zero group start from the same trained model
 * (the model cache shares one training between them); 0 when the
 * experiment does not train. A dispatcher keeps a group on one worker. */
uint64_t dlas_experiment_point_group(const struct dlas_experiment *e, size_t i);

/* After a run: the value of a result column for point i ("" if none). */
const char *dlas_experiment_result(const struct dlas_experiment *e, size_t i,
                                   const char *column);

/* The models the experiment's sweep selects, for tools that inspect them
 * (dlas summary). build_model builds model i on the dataset's input shape
 * with its configured parameters (a swept one at its first value) and
 * initialises the weights as a run's point with this seed would; shape, if
 * not NULL, receives channels, height, width and classes. */
size_t dlas_experiment_n_models(const struct dlas_experiment *e);
const char *dlas_experiment_model_label(const struct dlas_experiment *e, size_t i);
int dlas_experiment_build_model(const struct dlas_experiment *e, size_t i, uint64_t seed,
                                struct dlas_graph **out, int shape[4]);

/* The primitives, backends and compressor chains the sweep selects, the
 * fallback primitive and integer settings of the `experiment` group
 * ("warmup", "repeat", "batch", ...), for tools that use them outside a run
 * (dlas compare, dlas tune). Parameters are the instance's as configured (a
 * swept one at its first value). compress applies chain i to g with the
 * compressor stream a run's point with this seed would use. */
size_t dlas_experiment_n_primitives(const struct dlas_experiment *e);
int dlas_experiment_primitive(const struct dlas_experiment *e, size_t i, const char **label,
                              const struct dlas_component **comp,
                              const struct dlas_params **params);
/* DLAS_ERR_NOTFOUND (no message) when the experiment names no fallback. */
int dlas_experiment_fallback(const struct dlas_experiment *e, const char **label,
                             const struct dlas_component **comp,
                             const struct dlas_params **params);
size_t dlas_experiment_n_backends(const struct dlas_experiment *e);
int dlas_experiment_backend(const struct dlas_experiment *e, size_t i, const char **label,
                            const struct dlas_component **comp,
                            const struct dlas_params **params);
int64_t dlas_experiment_setting_int(const struct dlas_experiment *e, const char *key);
size_t dlas_experiment_n_chains(const struct dlas_experiment *e);
const char *dlas_experiment_chain_label(const struct dlas_experiment *e, size_t i);
int dlas_experiment_compress(const struct dlas_experiment *e, size_t i, uint64_t seed,
                             struct dlas_graph *g);

#ifdef __cplusplus
}
#endif
#endif
