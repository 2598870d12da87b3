/* Validating libconfig groups against parameter specs.
 *
 * Values are rendered back to config-syntax text and handed to
 * dlas_params_set, so that a file and a command-line override are checked by
 * the same code. Rendering keeps libconfig's integer/float distinction
 * (floats always carry '.' or an exponent), which is what lets an integer be
 * accepted for a float parameter but not a float for an integer one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "cfgparams.h"
#include "../base/util.h"

void dlas_cfg_where(const config_setting_t *s, char *buf, size_t len)
{
    if (!buf || !len)
        return;
    const char *file = s ? config_setting_source_file(s) : NULL;
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (file && line)
        snprintf(buf, len, "%s:%u", file, line);
    else if (file)
        snprintf(buf, len, "%s", file);
    else if (line)
        snprintf(buf, len, "line %u", line);
    else
        snprintf(buf, len, "<config>");
}

static int render(struct dlas_buf *b, const config_setting_t *s)
{
    char num[64];
    int rc = DLAS_OK;
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
        return dlas_buf_printf(b, "%d", config_setting_get_int(s));
    case CONFIG_TYPE_INT64:
        dlas_fmt_int(num, sizeof num, (int64_t)config_setting_get_int64(s));
        return dlas_buf_printf(b, "%s", num);
    case CONFIG_TYPE_FLOAT:
        dlas_fmt_double(num, sizeof num, config_setting_get_float(s), 1);
        return dlas_buf_printf(b, "%s", num);
    case CONFIG_TYPE_BOOL:
        return dlas_buf_printf(b, "%s", config_setting_get_bool(s) ? "true" : "false");
    case CONFIG_TYPE_STRING: {
        const char *str = config_setting_get_string(s);
        return dlas_quote(b, str ? str : "");
    }
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        int list = config_setting_type(s) == CONFIG_TYPE_LIST;
        rc = dlas_buf_printf(b, "%c", list ? '(' : '[');
        for (int i = 0; !rc && i < config_setting_length(s); i++) {
            if (i)
                rc = dlas_buf_printf(b, ", ");
            if (!rc)
                rc = render(b, config_setting_get_elem(s, (unsigned)i));
        }
        return rc ? rc : dlas_buf_printf(b, "%c", list ? ')' : ']');
    }
    case CONFIG_TYPE_GROUP:
        rc = dlas_buf_printf(b, "{");
        for (int i = 0; !rc && i < config_setting_length(s); i++) {
            const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
            rc = dlas_buf_printf(b, " %s = ", config_setting_name(m));
            if (!rc)
                rc = render(b, m);
            if (!rc)
                rc = dlas_buf_printf(b, ";");
        }
        return rc ? rc : dlas_buf_printf(b, " }");
    default:
        return dlas_buf_printf(b, "?");
    }
}

char *dlas_cfg_text(const config_setting_t *s)
{
    if (!s)
        return NULL;
    struct dlas_buf b = {0};
    if (dlas_buf_printf(&b, "%s", "") || render(&b, s)) {
        dlas_buf_free(&b);
        return NULL;
    }
    return b.s;
}

void dlas_axes_free(struct dlas_axis *axes, int n)
{
    if (!axes)
        return;
    for (int i = 0; i < n; i++) {
        free(axes[i].key);
        for (int j = 0; axes[i].values && j < axes[i].n; j++)
            free(axes[i].values[j]);
        free(axes[i].values);
        free(axes[i].origin);
    }
    free(axes);
}

static int is_aggregate(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_GROUP;
}

static int is_reserved(const char *const *reserved, const char *name)
{
    for (size_t i = 0; reserved && reserved[i]; i++)
        if (!strcmp(reserved[i], name))
            return 1;
    return 0;
}

static int unknown_key(const config_setting_t *m, const char *what,
                       const struct dlas_param_spec *spec, const char *const *reserved)
{
    size_t ns = 0, nr = 0;
    while (spec && spec[ns].name)
        ns++;
    while (reserved && reserved[nr])
        nr++;
    const char **names = malloc((ns + nr + 1) * sizeof *names);
    if (!names)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nr; i++)
        names[i] = reserved[i];
    for (size_t i = 0; i < ns; i++)
        names[nr + i] = spec[i].name;
    const char *key = config_setting_name(m);
    char at[512];
    dlas_cfg_where(m, at, sizeof at);
    struct dlas_buf hint = {0};
    const char *near = dlas_nearest(key, names, ns + nr);
    if (near)
        dlas_buf_printf(&hint, "did you mean '%s'?", near);
    else if (ns == 0)
        dlas_buf_printf(&hint, "it takes no parameters");
    else
        for (size_t i = 0; i < ns + nr; i++)
            dlas_buf_printf(&hint, "%s%s", i ? ", " : "valid keys: ", names[i]);
    int rc = dlas_error(DLAS_ERR_INVALID, "%s: unknown key '%s' in %s (%s)", at, key, what,
                        hint.s ? hint.s : "");
    dlas_buf_free(&hint);
    free(names);
    return rc;
}

/* The setting's value set through dlas_params_set, with its file:line. */
static int set_from(struct dlas_params *p, const char *key, const config_setting_t *s)
{
    char at[512];
    dlas_cfg_where(s, at, sizeof at);
    char *text = dlas_cfg_text(s);
    if (!text)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int rc = dlas_params_set(p, key, text, at);
    free(text);
    return rc;
}

/* A scalar parameter given [a, b, ...]: validate each value, keep their
 * texts as an axis, and leave the parameter at the first. */
static int make_axis(struct dlas_params *p, const char *key, const config_setting_t *m,
                     struct dlas_axis *ax)
{
    char at[512];
    dlas_cfg_where(m, at, sizeof at);
    int n = config_setting_length(m);
    if (n == 0)
        return dlas_error(DLAS_ERR_INVALID, "%s: key '%s' is given an empty list: a sweep needs "
                          "at least one value", at, key);
    if (!(ax->key = strdup(key)) || !(ax->origin = strdup(at)) ||
        !(ax->values = calloc((size_t)n, sizeof *ax->values)))
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        if (is_aggregate(e)) {
            char eat[512];
            dlas_cfg_where(e, eat, sizeof eat);
            return dlas_error(DLAS_ERR_INVALID, "%s: key '%s': a swept value must be a single "
                              "value, element %d is a %s", eat, key, i + 1,
                              config_setting_type(e) == CONFIG_TYPE_GROUP ? "group" : "list");
        }
        int rc = set_from(p, key, e);
        if (rc)
            return rc;
        if (!(ax->values[i] = dlas_cfg_text(e)))
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        ax->n = i + 1;
    }
    return dlas_params_set(p, key, ax->values[0], ax->origin);
}

/* The entry an alias names (the entry itself when it is none). */
static const struct dlas_param_spec *target_of(const struct dlas_param_spec *spec,
                                              const struct dlas_param_spec *sp)
{
    if (!(sp->flags & DLAS_PARAM_ALIAS))
        return sp;
    for (size_t k = 0; spec[k].name; k++)
        if (!strcmp(spec[k].name, sp->def))
            return &spec[k];
    return sp; /* not reached: dlas_params_defaults checked the spec */
}

/* A group may set a parameter under one of its names only: libconfig
 * refuses a key given twice, but not a key and its alias. */
static int alias_once(const struct dlas_params *p, const struct dlas_param_spec *spec,
                      const struct dlas_param_spec *sp, const config_setting_t *m,
                      const char *what)
{
    const struct dlas_param_spec *t = target_of(spec, sp);
    if (!dlas_param_given(p, t->name))
        return DLAS_OK;
    char at[512];
    dlas_cfg_where(m, at, sizeof at);
    const char *other = NULL; /* the name it was set under first */
    for (size_t k = 0; spec[k].name && !other; k++)
        if (&spec[k] != sp && (&spec[k] == t || target_of(spec, &spec[k]) == t))
            other = spec[k].name;
    return dlas_error(DLAS_ERR_INVALID, "%s: '%s' and '%s' in %s name one parameter ('%s'): "
                      "give it once", at, other ? other : t->name, sp->name, what, t->name);
}

static int missing_required(const config_setting_t *group, const char *what,
                            const struct dlas_params *p)
{
    struct dlas_buf names = {0};
    const struct dlas_param_spec *spec = dlas_params_spec(p), *one = NULL;
    int missing = 0;
    for (size_t i = 0; i < dlas_params_count(p); i++)
        if ((spec[i].flags & DLAS_PARAM_REQUIRED) && !dlas_param_given(p, spec[i].name)) {
            dlas_buf_printf(&names, "%s'%s'", missing ? ", " : "", spec[i].name);
            one = &spec[i];
            missing++;
        }
    if (!missing)
        return DLAS_OK;
    char at[512];
    dlas_cfg_where(group, at, sizeof at);
    int rc;
    if (missing == 1 && one->help)
        rc = dlas_error(DLAS_ERR_INVALID, "%s: missing required key %s for %s (%s)", at, names.s,
                        what, one->help);
    else
        rc = dlas_error(DLAS_ERR_INVALID, "%s: missing required key%s %s for %s", at,
                        missing > 1 ? "s" : "", names.s, what);
    dlas_buf_free(&names);
    return rc;
}

int dlas_cfg_params(const config_setting_t *group, const char *what,
                    const struct dlas_param_spec *spec, const char *const *reserved,
                    int allow_axes, struct dlas_params **out, struct dlas_axis **axes,
                    int *n_axes)
{
    if (axes)
        *axes = NULL;
    if (n_axes)
        *n_axes = 0;
    if (!out)
        return dlas_error(DLAS_ERR_INVALID, "dlas_cfg_params: no output");
    *out = NULL;
    if (!what)
        what = "this group";
    allow_axes = allow_axes && axes && n_axes;

    struct dlas_params *p = NULL;
    struct dlas_axis *ax = NULL;
    int nax = 0;
    int rc = dlas_params_defaults(spec, &p);
    if (rc)
        return dlas_error_context("%s", what);
    if (group && !config_setting_is_group(group)) {
        char at[512];
        dlas_cfg_where(group, at, sizeof at);
        rc = dlas_error(DLAS_ERR_INVALID, "%s: %s must be a group { key = value; ... }", at, what);
        goto done;
    }
    int n = group ? config_setting_length(group) : 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
        const char *key = config_setting_name(m);
        if (!key || is_reserved(reserved, key))
            continue;
        const struct dlas_param_spec *sp = NULL;
        for (size_t k = 0; spec && spec[k].name && !sp; k++)
            if (!strcmp(spec[k].name, key))
                sp = &spec[k];
        if (!sp) {
            rc = unknown_key(m, what, spec, reserved);
            goto done;
        }
        if ((sp->flags & DLAS_PARAM_ALIAS) || dlas_param_given(p, key)) {
            if ((rc = alias_once(p, spec, sp, m, what)))
                goto done;
            sp = target_of(spec, sp);
        }
        int t = config_setting_type(m);
        int listy = t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST;
        if (listy && !(sp->flags & DLAS_PARAM_LIST)) {
            if (!allow_axes) {
                char at[512];
                dlas_cfg_where(m, at, sizeof at);
                char *text = dlas_cfg_text(m);
                rc = dlas_error(DLAS_ERR_INVALID, "%s: key '%s' expects a single value, got %s",
                                at, key, text ? text : "a list");
                free(text);
                goto done;
            }
            struct dlas_axis *na = realloc(ax, (size_t)(nax + 1) * sizeof *na);
            if (!na) {
                rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
                goto done;
            }
            ax = na;
            memset(&ax[nax++], 0, sizeof *ax);
            if ((rc = make_axis(p, key, m, &ax[nax - 1])))
                goto done;
        } else if ((rc = set_from(p, key, m)))
            goto done;
    }
    rc = missing_required(group, what, p);
done:
    if (rc) {
        dlas_params_free(p);
        dlas_axes_free(ax, nax);
        return rc;
    }
    *out = p;
    if (allow_axes) {
        *axes = ax;
        *n_axes = nax;
    } else
        dlas_axes_free(ax, nax);
    return DLAS_OK;
}
