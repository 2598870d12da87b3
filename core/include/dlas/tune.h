/* Auto-scheduling of convolution primitives ("untuned vs auto-scheduled").
 *
 * A primitive marks its knobs DLAS_PARAM_TUNABLE with a range (INT, FLOAT),
 * a choice list (ENUM) or as BOOL. The tuner searches them for one layer on
 * one backend instance within a time budget, validating every candidate's
 * output against the reference convolution, and the best configuration goes
 * into a tuning log keyed by (primitive, device, threads, layer shape,
 * batch). A plan given the log (dlas_plan_options.tunelog) prepares each
 * layer with its tuned parameters where the log has them. */
#ifndef DLAS_TUNE_H
#define DLAS_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include <dlas/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the tuning log ------------------------------------------------------
 *
 * A text file, one entry per line, tab-separated:
 *   primitive device threads layer settings ms gflops default_ms timestamp
 * e.g.
 *   winograd cpu 2 64x56x56-64:k3x3s1x1p1x1d1x1g1b1 tile=4;oc_vectors=2 1.02 226.3 1.31 ...
 * Lines starting with '#' are comments. A later line for the same key
 * replaces an earlier one, so re-tuning appends and the file stays a log. */
struct dlas_tune_entry {
    char primitive[64], device[16];
    int threads;
    char layer[128];    /* dlas_tune_layer_key() */
    char settings[512]; /* "key=value;key=value" of the tunable parameters */
    double ms, gflops, default_ms;
    char timestamp[32];
};

struct dlas_tunelog;

struct dlas_tunelog *dlas_tunelog_new(void);
void dlas_tunelog_free(struct dlas_tunelog *t);
/* Read a log; a missing file is an empty log when missing_ok, else
 * DLAS_ERR_IO. A malformed line is DLAS_ERR_CORRUPT naming file:line. */
int dlas_tunelog_load(const char *path, int missing_ok, struct dlas_tunelog **out);
/* Add (or replace) an entry in memory. */
int dlas_tunelog_add(struct dlas_tunelog *t, const struct dlas_tune_entry *e);
/* Append one entry to the file (created with a header comment if absent). */
int dlas_tunelog_append(const char *path, const struct dlas_tune_entry *e);
size_t dlas_tunelog_count(const struct dlas_tunelog *t);
const struct dlas_tune_entry *dlas_tunelog_at(const struct dlas_tunelog *t, size_t i);
/* The entry for this primitive, device, thread count and layer, or NULL. */
const struct dlas_tune_entry *dlas_tunelog_find(const struct dlas_tunelog *t, const char *prim,
                                                const char *device, int threads,
                                                const struct dlas_conv_desc *d);

/* "64x56x56-64:k3x3s1x1p1x1d1x1g1b1": what the log keys a layer by (the
 * shape and batch; bias does not change the schedule). */
void dlas_tune_layer_key(const struct dlas_conv_desc *d, char *buf, size_t len);

/* Set "key=value;key=value" on p (each validated against its spec). */
int dlas_params_apply(struct dlas_params *p, const char *settings, const char *origin);
/* "key=value;..." of p's tunable parameters, in spec order. */
int dlas_params_tunables(const struct dlas_params *p, char *buf, size_t len);

/* ---- the tuner ------------------------------------------------------------ */

struct dlas_tune_options {
    uint32_t size;     /* sizeof(struct dlas_tune_options) */
    double budget_s;   /* wall time for one (layer, primitive); the defaults always run */
    int warmup, repeat; /* per candidate: runs discarded, runs timed (median) */
    int max_candidates; /* 0: no limit but the budget */
    uint64_t seed;     /* order in which a large search space is sampled */
    double tolerance;  /* largest relative error a candidate may have */
    /* Optional (NULL: drawn at random from `seed`): the layer's weights
     * (out_c x in_c/groups x kh x kw) and bias, an input batch, and the
     * reference output for that input (else computed with dlas_ref_conv2d). */
    const float *weight, *bias, *input, *reference;
};
void dlas_tune_options_default(struct dlas_tune_options *o);

struct dlas_tune_result {
    char settings[512];   /* the best candidate's tunables */
    double best_ms;       /* its median */
    double default_ms;    /* the defaults' median */
    double best_err;      /* its relative error against the reference */
    int tried, refused, invalid; /* candidates timed, refused by supports(), wrong */
    int space;            /* size of the search space */
};

/* Search prim's tunable parameters (starting from `base`, which may be NULL
 * for the defaults) for layer d on backend be. DLAS_ERR_UNSUPPORTED when the
 * primitive refuses the layer with its default parameters and every
 * candidate. */
int dlas_tune_layer(const struct dlas_component *prim, const struct dlas_params *base,
                    const struct dlas_host *host, const struct dlas_backend *be,
                    const struct dlas_conv_desc *d, const struct dlas_tune_options *o,
                    struct dlas_tune_result *r);

#ifdef __cplusplus
}
#endif
#endif
