/* Parameter specifications and validated parameter values.
 *
 * A plugin describes its parameters with a static array of dlas_param_spec
 * terminated by an entry whose name is NULL. The core validates a config group
 * against the spec (unknown keys, types, ranges, required keys), fills in
 * defaults, and hands the plugin a read-only dlas_params. Plugins never see
 * libconfig. `dlas help NAME` is generated from the same spec. */
#ifndef DLAS_PARAMS_H
#define DLAS_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dlas_param_type {
    DLAS_PARAM_INT = 1,
    DLAS_PARAM_FLOAT,
    DLAS_PARAM_BOOL,
    DLAS_PARAM_STRING,
    DLAS_PARAM_ENUM /* a string restricted to `choices` */
};

/* Flags for dlas_param_spec.flags */
#define DLAS_PARAM_LIST 0x1u     /* the value is a list of `type` */
#define DLAS_PARAM_REQUIRED 0x2u /* no default: the config must give it */
#define DLAS_PARAM_TUNABLE 0x4u  /* a knob `dlas tune` may search within [min, max] */
/* Another name for the parameter that `def` names (same type and LIST flag):
 * a knob renamed to the shared vocabulary keeps its old name working in
 * configs and tuning logs. An alias holds no value of its own, takes no other
 * flag, and the indexed views below (count, name, format, describe) skip it,
 * so every parameter is listed, logged and written to results once, under its
 * one name; reading or setting through the alias reaches the named one. */
#define DLAS_PARAM_ALIAS 0x8u
/* A STRING naming a file or folder the plugin reads (a dataset's path):
 * loading an experiment (dlas validate) checks that it exists and can be
 * read, and says so with the config's file:line, before anything runs. */
#define DLAS_PARAM_PATH 0x10u

struct dlas_param_spec {
    const char *name;
    enum dlas_param_type type;
    unsigned flags;
    const char *def;     /* default in config syntax: "3", "0.5", "true", "name", "[1, 2]" */
    double min, max;     /* inclusive range for INT/FLOAT; ignored unless min < max */
    const char *choices; /* ENUM: "a|b|c" */
    const char *help;
};

struct dlas_params;

/* Accessors. Validation guarantees that every specified parameter has a value
 * of its declared type; asking for an undeclared name or the wrong type
 * returns 0 / NULL. Lists are read element-wise (a LIST parameter is not a
 * scalar: dlas_param_int on it returns 0); a BOOL list reads as 0/1 through
 * dlas_param_list_int. */
int64_t dlas_param_int(const struct dlas_params *p, const char *name);
double dlas_param_float(const struct dlas_params *p, const char *name);
int dlas_param_bool(const struct dlas_params *p, const char *name);
const char *dlas_param_str(const struct dlas_params *p, const char *name);
int dlas_param_list_len(const struct dlas_params *p, const char *name);
int64_t dlas_param_list_int(const struct dlas_params *p, const char *name, int i);
double dlas_param_list_float(const struct dlas_params *p, const char *name, int i);
const char *dlas_param_list_str(const struct dlas_params *p, const char *name, int i);
/* 1 when the value came from the config rather than the default. */
int dlas_param_given(const struct dlas_params *p, const char *name);

/* Building and inspecting parameter sets (core and tools). */
const struct dlas_param_spec *dlas_params_spec(const struct dlas_params *p);
/* All defaults. Required parameters stay unset; see dlas_params_check_required.
 * Fails (DLAS_ERR_INVALID) on a malformed spec: a duplicate name, an enum
 * without choices, or a default that is missing or fails its own checks. */
int dlas_params_defaults(const struct dlas_param_spec *spec, struct dlas_params **out);
/* Set one value from config syntax text ("2", "0.1", "[1,2]", "cosine"),
 * validated against the spec. `origin` names where it came from for errors
 * (e.g. "exp.cfg:12"), may be NULL. Strings may be bare words; a scalar sets
 * a LIST parameter to one element. On error the old value stays. */
int dlas_params_set(struct dlas_params *p, const char *name, const char *text,
                    const char *origin);
/* Check that every required parameter has been set. */
int dlas_params_check_required(const struct dlas_params *p, const char *origin);
struct dlas_params *dlas_params_clone(const struct dlas_params *p);
void dlas_params_free(struct dlas_params *p);
/* Number of specified parameters and the i-th one's effective value written
 * in config syntax into buf (truncated to len). */
size_t dlas_params_count(const struct dlas_params *p);
const char *dlas_params_name(const struct dlas_params *p, size_t i);
int dlas_params_format(const struct dlas_params *p, size_t i, char *buf, size_t len);
/* "k=v; k=v" of all effective values, for provenance. Caller frees. */
char *dlas_params_describe(const struct dlas_params *p);

/* Levenshtein distance, and the nearest of `n` candidates to `word` (NULL when
 * nothing is within a useful distance). Shared by every "did you mean" hint. */
size_t dlas_edit_distance(const char *a, const char *b);
const char *dlas_nearest(const char *word, const char *const *candidates, size_t n);

#ifdef __cplusplus
}
#endif
#endif
