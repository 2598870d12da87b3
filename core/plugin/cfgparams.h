/* Validating libconfig groups against parameter specs (internal to the core).
 *
 * The bridge between libconfig and dlas_params: plugins never see libconfig,
 * so every value is rendered back to config-syntax text and validated by
 * dlas_params_set, which keeps file values and command-line overrides under
 * one set of rules and messages. */
#ifndef DLAS_CFGPARAMS_H
#define DLAS_CFGPARAMS_H

#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>

#include <dlas/params.h>

struct dlas_buf;

/* A sweep axis: a scalar parameter given a list in the config. */
struct dlas_axis {
    char *key;
    int n;
    char **values; /* each in config syntax, as dlas_params_set takes it */
    char *origin;  /* "file:line" of the setting */
};

/* Validate `group` against `spec` and return its parameters, defaults filled.
 * `what` names the group in messages ("compressor 'magnitude'"); keys listed
 * in the NULL-terminated `reserved` (may be NULL) are skipped. With
 * `allow_axes` (and non-NULL `axes`, `n_axes`), a non-list parameter given a
 * list becomes an axis: every element is validated and the parameter holds
 * the first one; otherwise that is an error. A NULL group gives the defaults
 * (and fails if a parameter is required). On failure nothing is returned and
 * the message carries file:line. */
int dlas_cfg_params(const config_setting_t *group, const char *what,
                    const struct dlas_param_spec *spec, const char *const *reserved,
                    int allow_axes, struct dlas_params **out, struct dlas_axis **axes,
                    int *n_axes);

/* A setting's value in config syntax ("4", "0.5", "\"x\"", "[1, 2]",
 * "{ a = 1; }"); NULL when out of memory. Caller frees. */
char *dlas_cfg_text(const config_setting_t *s);

/* "file:line" of a setting ("line N" when read from a string). */
void dlas_cfg_where(const config_setting_t *s, char *buf, size_t len);

void dlas_axes_free(struct dlas_axis *axes, int n);

/* Config-syntax writers shared by params.c and cfgparams.c, so that a value
 * read from a file and the same value formatted from a dlas_params look the
 * same. Floats use the shortest text that reads back exactly; force_float
 * appends ".0" where libconfig would otherwise read an integer. Integers
 * beyond 32 bits get libconfig's "L" suffix. */
void dlas_fmt_double(char *buf, size_t len, double v, int force_float);
void dlas_fmt_int(char *buf, size_t len, int64_t v);
int dlas_quote(struct dlas_buf *b, const char *s);

#endif
