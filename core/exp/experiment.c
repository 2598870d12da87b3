/* Parsing an experiment file and expanding it into points.
 *
 * libconfig 1.5 has no overrides, so each thing is defined once, by name, and
 * the `sweep` group refers to instances by name. Every group is validated
 * against a parameter spec (the core's own for `experiment` and `train`, the
 * plugin's for the rest), so errors always carry file:line and a hint. */
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/experiment.h>
#include <dlas/train.h>

#include "cfgscan.h"
#include "exp_internal.h"
#include "../base/util.h"

static const struct dlas_param_spec experiment_spec[] = {
    {"name", DLAS_PARAM_STRING, 0, "\"\"", 0, 0, NULL,
     "experiment name (default: the file's base name)"},
    {"seeds", DLAS_PARAM_INT, DLAS_PARAM_LIST, "[1]", 0, 4294967295.0, NULL,
     "seeds: every point is run once per seed"},
    {"warmup", DLAS_PARAM_INT, 0, "3", 0, 100000, NULL, "untimed runs before timing"},
    {"repeat", DLAS_PARAM_INT, 0, "20", 1, 1000000, NULL,
     "timed runs; latency is reported as their median, min and max"},
    {"batch", DLAS_PARAM_INT, 0, "1", 1, 65536, NULL, "inference batch size"},
    {"eval_samples", DLAS_PARAM_INT, 0, "512", 0, 1000000000, NULL,
     "test images used for accuracy (0: skip)"},
    {"fallback", DLAS_PARAM_STRING, 0, "\"\"", 0, 0, NULL,
     "primitive instance for layers the compared primitive refuses (\"\": core reference)"},
    {"isolate", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "run each point in a child process so that a crash fails only that point"},
    {"point_timeout", DLAS_PARAM_FLOAT, 0, "0", 0, 1e9, NULL,
     "seconds a point may run before it is killed and recorded failed; 0 = auto: killed when "
     "it makes no progress (batches, inference runs, log lines) for max(1 h, 10x its longest "
     "pause so far); needs isolate"},
    {"tuning", DLAS_PARAM_ENUM, 0, "untuned", 0, 0, "untuned|log",
     "primitive parameters: as configured (untuned defaults), or with each layer's tuned "
     "settings from tuning_log where it has them (dlas tune writes it)"},
    {"tuning_log", DLAS_PARAM_STRING, 0, "\"tuning.log\"", 0, 0, NULL,
     "the tuning log read when tuning = \"log\""},
    {"save_models", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "keep every point's compressed model (pruned architecture, masks and all) as "
     "<output.dir>/models/compressed/<cell id>.ckpt"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_param_spec output_spec[] = {
    {"dir", DLAS_PARAM_STRING, 0, "\"results\"", 0, 0, NULL,
     "directory for results.csv, results.json and resolved.cfg (relative to the working directory)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

/* The `train` group's spec is the training engine's (dlas_train_param_spec). */

static const char *const top_keys[] = {"experiment", "dataset", "models", "train",
                                       "compressors", "primitives", "backends", "sweep"};
static const char *const sweep_keys[] = {"models", "compressors", "primitives", "backends"};
static const char *const plugin_key[] = {"plugin", NULL};
/* a model may also start from trained weights: models.X.weights = "file.ckpt" */
static const char *const model_keys[] = {"plugin", "weights", NULL};
static const char *const experiment_reserved[] = {"output", NULL};

static int where_error(const config_setting_t *s, int status, const char *fmt, const char *a,
                       const char *b)
{
    char at[512];
    dlas_cfg_where(s, at, sizeof at);
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    return dlas_error(status, "%s: %s", at, msg);
}

static void instance_free(struct instance *in)
{
    free(in->label);
    free(in->weights);
    free(in->desc);
    dlas_params_free(in->params);
    dlas_axes_free(in->axes, in->n_axes);
    memset(in, 0, sizeof *in);
}

/* "{ plugin = "x"; k = v; ... }" -> instance of `kind`. */
static int parse_instance(const config_setting_t *s, const char *label, enum dlas_kind kind,
                          struct dlas_registry *reg, struct instance *out)
{
    memset(out, 0, sizeof *out);
    if (!config_setting_is_group(s))
        return where_error(s, DLAS_ERR_INVALID, "%s '%s' must be a group { plugin = \"...\"; ... }",
                           dlas_kind_name(kind), label);
    const char *plugin = NULL;
    const config_setting_t *ps = config_setting_get_member(s, "plugin");
    if (!ps)
        return where_error(s, DLAS_ERR_INVALID, "%s '%s' has no 'plugin' key", dlas_kind_name(kind),
                           label);
    if (config_setting_type(ps) != CONFIG_TYPE_STRING)
        return where_error(ps, DLAS_ERR_INVALID, "key 'plugin' of '%s' must be a string%s", label,
                           NULL);
    plugin = config_setting_get_string(ps);
    const struct dlas_component *c = dlas_registry_find(reg, kind, plugin);
    if (!c) {
        char at[512];
        dlas_cfg_where(ps, at, sizeof at);
        return dlas_error_context("%s: key 'plugin'", at);
    }
    char what[256];
    snprintf(what, sizeof what, "%s '%s' (plugin '%s')", dlas_kind_name(kind), label, plugin);
    out->label = strdup(label);
    out->comp = c;
    int rc = dlas_cfg_params(s, what, c->params, kind == DLAS_KIND_MODEL ? model_keys : plugin_key,
                             1, &out->params, &out->axes, &out->n_axes);
    if (!rc && kind == DLAS_KIND_MODEL)
        rc = exp_parse_weights(s, label, &out->weights);
    if (!rc)
        rc = exp_check_paths(s, what, c->params, out->params);
    if (rc)
        instance_free(out);
    return rc;
}

/* A group of named instances: "models = { r20 = {...}; r56 = {...}; };" */
static int parse_instances(const config_setting_t *g, enum dlas_kind kind,
                           struct dlas_registry *reg, struct instance **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (!g)
        return DLAS_OK;
    if (!config_setting_is_group(g))
        return where_error(g, DLAS_ERR_INVALID,
                           "'%s' must be a group of named instances: %s = { name = { plugin = ... }; }",
                           config_setting_name(g), config_setting_name(g));
    int count = config_setting_length(g);
    *out = calloc((size_t)count + 1, sizeof **out);
    if (!*out)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc = parse_instance(s, config_setting_name(s), kind, reg, &(*out)[i]);
        if (rc)
            return rc;
        (*n)++;
    }
    return DLAS_OK;
}

static int parse_chains(const config_setting_t *g, struct dlas_registry *reg,
                        struct dlas_experiment *e)
{
    if (!g) { /* no compressors: one empty chain */
        e->chains = calloc(1, sizeof *e->chains);
        if (!e->chains || !(e->chains[0].label = strdup("none")))
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        e->n_chains = 1;
        return DLAS_OK;
    }
    if (!config_setting_is_group(g))
        return where_error(g, DLAS_ERR_INVALID,
                           "'compressors' must be a group of named chains: compressors = { none = (); "
                           "m50 = ( { plugin = \"magnitude\"; } ); }%s%s",
                           NULL, NULL);
    int count = config_setting_length(g);
    e->chains = calloc((size_t)count + 1, sizeof *e->chains);
    if (!e->chains)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        struct chain *ch = &e->chains[i];
        ch->label = strdup(config_setting_name(s));
        e->n_chains++;
        /* A single group is accepted as a chain of one. */
        int single = config_setting_is_group(s);
        if (!single && !config_setting_is_list(s))
            return where_error(s, DLAS_ERR_INVALID,
                               "compressor chain '%s' must be a list ( {...}, {...} ) or a group%s",
                               ch->label, NULL);
        int len = single ? 1 : config_setting_length(s);
        ch->steps = calloc((size_t)len + 1, sizeof *ch->steps);
        if (!ch->steps)
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        for (int k = 0; k < len; k++) {
            const config_setting_t *st = single ? s : config_setting_get_elem(s, (unsigned)k);
            int rc = parse_instance(st, ch->label, DLAS_KIND_COMPRESSOR, reg, &ch->steps[k]);
            if (rc)
                return rc;
            ch->n++;
        }
    }
    return DLAS_OK;
}

/* Resolve `sweep.<axis>` names to indices; absent: all, in file order.
 * reserved: NULL, or a name the axis takes that is no instance (the
 * primitives' "auto"); where the list holds it, *seen is 1 + the number of
 * names before it (0: not listed). */
static int parse_selection(const config_setting_t *sweep, const char *axis, int n_all,
                           const char *const *labels, const char *reserved, int *seen, int **sel,
                           int *n_sel)
{
    const config_setting_t *s = sweep ? config_setting_get_member(sweep, axis) : NULL;
    if (!s) {
        *sel = malloc(((size_t)n_all + 1) * sizeof **sel);
        if (!*sel)
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n_all; i++)
            (*sel)[i] = i;
        *n_sel = n_all;
        return DLAS_OK;
    }
    int single = config_setting_type(s) == CONFIG_TYPE_STRING;
    if (!single && !config_setting_is_aggregate(s))
        return where_error(s, DLAS_ERR_INVALID, "sweep.%s must be a list of names%s", axis, NULL);
    int len = single ? 1 : config_setting_length(s);
    *sel = malloc(((size_t)len + 1) * sizeof **sel);
    if (!*sel)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    *n_sel = 0;
    for (int i = 0; i < len; i++) {
        const config_setting_t *el = single ? s : config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_get_string(el);
        if (!name)
            return where_error(el, DLAS_ERR_INVALID, "sweep.%s: entries must be names (strings)%s",
                               axis, NULL);
        int found = -1;
        for (int k = 0; k < n_all; k++)
            if (!strcmp(labels[k], name))
                found = k;
        if (reserved && !strcmp(name, reserved)) {
            if (*seen)
                return where_error(el, DLAS_ERR_INVALID, "sweep.%s lists '%s' twice", axis,
                                   reserved);
            *seen = 1 + *n_sel; /* 1 + the number of names before it */
            continue;
        }
        if (found < 0) {
            const char *near = dlas_nearest(name, labels, (size_t)n_all);
            char at[512];
            dlas_cfg_where(el, at, sizeof at);
            return dlas_error(DLAS_ERR_INVALID, "%s: sweep.%s names '%s', which is not defined in '%s'%s%s%s",
                              at, axis, name, axis, near ? " (did you mean '" : "",
                              near ? near : "", near ? "'?)" : "");
        }
        (*sel)[(*n_sel)++] = found;
    }
    return DLAS_OK;
}

static int check_keys(const config_setting_t *g, const char *what, const char *const *keys,
                      size_t nkeys)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        int ok = 0;
        for (size_t k = 0; k < nkeys; k++)
            ok |= !strcmp(name, keys[k]);
        if (ok)
            continue;
        const char *near = dlas_nearest(name, keys, nkeys);
        char at[512], list[512] = "";
        dlas_cfg_where(s, at, sizeof at);
        for (size_t k = 0; k < nkeys; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", keys[k]);
        if (near)
            return dlas_error(DLAS_ERR_INVALID, "%s: unknown key '%s' in %s (did you mean '%s'?)", at,
                              name, what, near);
        return dlas_error(DLAS_ERR_INVALID, "%s: unknown key '%s' in %s (valid: %s)", at, name, what,
                          list);
    }
    return DLAS_OK;
}

static const char **labels_of(const struct instance *in, int n)
{
    const char **l = calloc((size_t)n + 1, sizeof *l);
    for (int i = 0; l && i < n; i++)
        l[i] = in[i].label;
    return l;
}

/* ---- expansion into points ---------------------------------------------- */

static void segment(struct dlas_buf *b, const char *label, const struct pick *picks, int n,
                    const struct instance *inst, int step)
{
    dlas_buf_printf(b, "%s", label);
    for (int i = 0; i < n; i++)
        if (picks[i].inst == inst) {
            const struct dlas_axis *ax = &inst->axes[picks[i].axis];
            if (step >= 0)
                dlas_buf_printf(b, ".%d", step);
            dlas_buf_printf(b, ".%s=%s", ax->key, ax->values[picks[i].value]);
        }
}

struct dlas_params *dlas_point_params(const struct point *pt, const struct instance *inst)
{
    struct dlas_params *p = dlas_params_clone(inst->params);
    if (!p)
        return NULL;
    for (int i = 0; i < pt->n_picks; i++)
        if (pt->picks[i].inst == inst) {
            const struct dlas_axis *ax = &inst->axes[pt->picks[i].axis];
            if (dlas_params_set(p, ax->key, ax->values[pt->picks[i].value], ax->origin)) {
                dlas_params_free(p);
                return NULL;
            }
        }
    return p;
}

/* An instance without axes reads the same in every point: described once
 * (a sweep of 10^5 points would otherwise clone and print its parameters
 * 10^5 times). */
static void describe_instance(struct dlas_buf *b, const struct point *pt, struct instance *in)
{
    if (in->desc) {
        dlas_buf_printf(b, "%s", in->desc);
        return;
    }
    struct dlas_params *p = dlas_point_params(pt, in);
    char *d = p ? dlas_params_describe(p) : NULL;
    size_t at = b->len;
    dlas_buf_printf(b, "%s{%s}", in->comp->name, d ? d : "");
    if (!in->n_axes && b->s)
        in->desc = strdup(b->s + at);
    free(d);
    dlas_params_free(p);
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* "model/chain/prim/backend/seed=N" with the point's axis values, for the
 * given chain (a point's own, or the dense one its ratios refer to). */
static void point_id(const struct dlas_experiment *e, const struct point *proto, int chain,
                     struct dlas_buf *id)
{
    if (e->dataset.n_axes) {
        segment(id, "data", proto->picks, proto->n_picks, &e->dataset, -1);
        dlas_buf_printf(id, "/");
    }
    segment(id, e->models[proto->model].label, proto->picks, proto->n_picks,
            &e->models[proto->model], -1);
    dlas_buf_printf(id, "/%s", e->chains[chain].label);
    const struct chain *ch = &e->chains[chain];
    for (int s = 0; s < ch->n; s++) {
        struct dlas_buf tmp = {0};
        segment(&tmp, "", proto->picks, proto->n_picks, &ch->steps[s], ch->n > 1 ? s : -1);
        if (tmp.s)
            dlas_buf_printf(id, "%s", tmp.s);
        dlas_buf_free(&tmp);
    }
    dlas_buf_printf(id, "/");
    if (proto->prim >= 0)
        segment(id, e->prims[proto->prim].label, proto->picks, proto->n_picks,
                &e->prims[proto->prim], -1);
    else
        dlas_buf_printf(id, proto->prim == POINT_AUTO ? "auto" : "ref");
    dlas_buf_printf(id, "/");
    segment(id, e->backends[proto->backend].label, proto->picks, proto->n_picks,
            &e->backends[proto->backend], -1);
    dlas_buf_printf(id, "/seed=%lld", (long long)proto->seed);
}

/* The dense baseline of a point: the same point with the first empty chain. */
static char *baseline_id(const struct dlas_experiment *e, const struct point *proto)
{
    for (int c = 0; c < e->n_chains; c++)
        if (e->chains[c].n == 0) {
            struct dlas_buf id = {0};
            point_id(e, proto, c, &id);
            return id.s;
        }
    return strdup("");
}

static int add_point(struct dlas_experiment *e, struct point *proto)
{
    struct dlas_buf id = {0}, key = {0};
    point_id(e, proto, proto->chain, &id);
    const struct chain *ch = &e->chains[proto->chain];

    /* The hash covers everything that shapes the result, defaults included,
     * so editing a parameter reruns exactly the points it touches. */
    describe_instance(&key, proto, &e->dataset);
    describe_instance(&key, proto, &e->models[proto->model]);
    exp_describe_weights(&key, &e->models[proto->model]);
    for (int s = 0; s < ch->n; s++)
        describe_instance(&key, proto, &ch->steps[s]);
    if (proto->prim >= 0)
        describe_instance(&key, proto, &e->prims[proto->prim]);
    if (proto->prim == POINT_AUTO) { /* its result depends on every candidate */
        dlas_buf_printf(&key, "auto[");
        for (int i = 0; i < e->n_prims; i++) {
            dlas_buf_printf(&key, "%s=", e->prims[i].label);
            describe_instance(&key, proto, &e->prims[i]);
        }
        dlas_buf_printf(&key, "]");
    }
    if (e->fallback >= 0)
        describe_instance(&key, proto, &e->prims[e->fallback]);
    describe_instance(&key, proto, &e->backends[proto->backend]);
    if (!e->settings_desc) {
        char *ed = dlas_params_describe(e->exp), *td = dlas_params_describe(e->train);
        struct dlas_buf d = {0};
        dlas_buf_printf(&d, "exp{%s}train{%s}", ed ? ed : "", td ? td : "");
        e->settings_desc = d.s;
        free(ed);
        free(td);
    }
    dlas_buf_printf(&key, "%sseed=%lld", e->settings_desc ? e->settings_desc : "",
                    (long long)proto->seed);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv(key.s ? key.s : ""));
    dlas_buf_free(&key);

    if (e->n_points == e->cap_points) {
        size_t cap = e->cap_points ? 2 * e->cap_points : 64;
        struct point *pts = realloc(e->points, cap * sizeof *pts);
        if (!pts) {
            dlas_buf_free(&id);
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        }
        e->points = pts;
        e->cap_points = cap;
    }
    struct point *pt = &e->points[e->n_points++];
    *pt = *proto;
    pt->id = id.s;
    pt->hash = strdup(hash);
    pt->baseline = baseline_id(e, proto);
    pt->picks = malloc(((size_t)proto->n_picks + 1) * sizeof *pt->picks);
    if (!pt->picks || !pt->hash || !pt->baseline)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    memcpy(pt->picks, proto->picks, (size_t)proto->n_picks * sizeof *pt->picks);
    memset(&pt->result, 0, sizeof pt->result);
    return DLAS_OK;
}

/* Every combination of the axes of the instances one point uses. No fixed
 * limit: a chain of any length keeps every step's axes. */
static int expand_axes(struct dlas_experiment *e, struct point *proto)
{
    const struct chain *ch = &e->chains[proto->chain];
    size_t n_used = 0, n_axes = 0;
    struct instance **used = malloc(((size_t)ch->n + 4) * sizeof *used);
    if (!used)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    used[n_used++] = &e->dataset;
    used[n_used++] = &e->models[proto->model];
    for (int s = 0; s < ch->n; s++)
        used[n_used++] = &ch->steps[s];
    if (proto->prim >= 0)
        used[n_used++] = &e->prims[proto->prim];
    used[n_used++] = &e->backends[proto->backend];
    for (size_t u = 0; u < n_used; u++)
        n_axes += (size_t)used[u]->n_axes;
    struct pick *picks = malloc((n_axes + 1) * sizeof *picks);
    if (!picks) {
        free(used);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    for (size_t u = 0; u < n_used; u++)
        for (int a = 0; a < used[u]->n_axes; a++)
            picks[n++] = (struct pick){used[u], a, 0};
    free(used);
    proto->picks = picks;
    proto->n_picks = n;
    int rc = DLAS_OK;
    for (;;) {
        if ((rc = add_point(e, proto)))
            break;
        int k = n - 1; /* odometer, last axis fastest */
        while (k >= 0) {
            const struct dlas_axis *ax = &picks[k].inst->axes[picks[k].axis];
            if (++picks[k].value < ax->n)
                break;
            picks[k].value = 0;
            k--;
        }
        if (k < 0)
            break;
    }
    free(picks);
    proto->picks = NULL;
    return rc;
}

/* Points per cell on the primitives axis: the selected instances and
 * "auto", in the sweep's order; none selected is one point on the core
 * reference. */
static int prim_points(const struct dlas_experiment *e)
{
    int n = e->n_sel_prims + (e->sweep_auto > 0);
    return n ? n : 1;
}

/* The point.prim of the p-th of them. */
static int prim_at(const struct dlas_experiment *e, int p)
{
    if (e->sweep_auto && p == e->sweep_auto - 1)
        return POINT_AUTO;
    if (e->sweep_auto && p > e->sweep_auto - 1)
        p--;
    return p < e->n_sel_prims ? e->sel_prims[p] : -1;
}

/* The number of points before making any: the product of the selections,
 * seeds and every used instance's axes, so that a sweep past the cap is
 * refused with its size rather than after minutes of expansion. */
static int count_points(const struct dlas_experiment *e, int n_seeds, uint64_t *total)
{
    *total = 0;
    int n_prim_sel = prim_points(e);
    uint64_t base_axes = 1;
    const struct instance *fixed = &e->dataset;
    for (int a = 0; a < fixed->n_axes; a++)
        base_axes *= (uint64_t)fixed->axes[a].n;
    for (int m = 0; m < e->n_sel_models; m++)
        for (int c = 0; c < e->n_sel_chains; c++)
            for (int p = 0; p < n_prim_sel; p++)
                for (int b = 0; b < e->n_sel_backends; b++) {
                    const struct instance *in[3] = {
                        &e->models[e->sel_models[m]],
                        prim_at(e, p) >= 0 ? &e->prims[prim_at(e, p)] : NULL,
                        &e->backends[e->sel_backends[b]]};
                    const struct chain *ch = &e->chains[e->sel_chains[c]];
                    uint64_t k = base_axes * (uint64_t)n_seeds;
                    for (int i = 0; i < 3 + ch->n && k <= DLAS_MAX_POINTS; i++) {
                        const struct instance *x = i < 3 ? in[i] : &ch->steps[i - 3];
                        for (int a = 0; x && a < x->n_axes && k <= DLAS_MAX_POINTS; a++)
                            k *= (uint64_t)x->axes[a].n;
                    }
                    *total += k;
                    if (*total > DLAS_MAX_POINTS)
                        return DLAS_OK;
                }
    return DLAS_OK;
}

/* A set of point ids (open addressing, FNV-1a), so that spotting a
 * duplicate costs one probe per point, not a scan of all earlier ones. */
static int find_duplicate_id(const struct dlas_experiment *e, const char **dup)
{
    *dup = NULL;
    size_t cap = 16;
    while (cap < 2 * e->n_points)
        cap *= 2;
    const char **slot = calloc(cap, sizeof *slot);
    if (!slot)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < e->n_points && !*dup; i++) {
        const char *id = e->points[i].id;
        size_t h = (size_t)fnv(id) & (cap - 1);
        while (slot[h] && strcmp(slot[h], id))
            h = (h + 1) & (cap - 1);
        if (slot[h])
            *dup = id;
        slot[h] = id;
    }
    free(slot);
    return DLAS_OK;
}

static int expand(struct dlas_experiment *e)
{
    int n_seeds = dlas_param_list_len(e->exp, "seeds");
    int n_prim_sel = prim_points(e);
    uint64_t total;
    int rc = count_points(e, n_seeds, &total);
    if (rc)
        return rc;
    if (total > DLAS_MAX_POINTS)
        return dlas_error(DLAS_ERR_INVALID,
                          "%s: the sweep expands to more than %d points; split it into several "
                          "experiment files or shorten the lists",
                          e->path, DLAS_MAX_POINTS);
    if (total == 0)
        return dlas_error(DLAS_ERR_INVALID,
                          "%s: the experiment expands to no point: an empty list in 'sweep' or "
                          "an instance with nothing to run",
                          e->path);
    e->points = malloc((size_t)total * sizeof *e->points);
    if (!e->points)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory for %llu points",
                          (unsigned long long)total);
    e->cap_points = (size_t)total;
    for (int m = 0; m < e->n_sel_models; m++)
        for (int c = 0; c < e->n_sel_chains; c++)
            for (int p = 0; p < n_prim_sel; p++)
                for (int b = 0; b < e->n_sel_backends; b++)
                    for (int s = 0; s < n_seeds; s++) {
                        struct point proto = {0};
                        proto.model = e->sel_models[m];
                        proto.chain = e->sel_chains[c];
                        proto.prim = prim_at(e, p);
                        proto.backend = e->sel_backends[b];
                        proto.seed = dlas_param_list_int(e->exp, "seeds", s);
                        if ((rc = expand_axes(e, &proto)))
                            return rc;
                    }
    const char *dup;
    if ((rc = find_duplicate_id(e, &dup)))
        return rc;
    if (dup)
        return dlas_error(DLAS_ERR_INVALID,
                          "%s: two points share the id '%s' (a seed or name listed twice?)",
                          e->path, dup);
    return DLAS_OK;
}

/* ---- loading -------------------------------------------------------------- */

/* The file, parsed; @include paths are relative to the including file's
 * directory. */
static int read_config(const char *path, config_t *cfg)
{
    char *dir = strdup(path);
    if (!dir)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        config_set_include_dir(cfg, dir);
    }
    /* What libconfig 1.5 would wrap silently (integers past 32 bits) or die
     * on (an @include of a directory), refused first with file and line. */
    int rc = dlas_cfg_prescan(path, slash ? dir : NULL);
    free(dir);
    if (rc)
        return rc;
    if (config_read_file(cfg, path))
        return DLAS_OK;
    if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
        return dlas_error(DLAS_ERR_IO, "%s: cannot read file", path);
    return dlas_error(DLAS_ERR_INVALID, "%s:%d: syntax error: %s",
                      config_error_file(cfg) ? config_error_file(cfg) : path,
                      config_error_line(cfg), config_error_text(cfg));
}

/* The experiment's name (default: the file's base name without extension). */
static void name_experiment(const char *path, struct dlas_experiment *e)
{
    const char *nm = dlas_param_str(e->exp, "name");
    if (nm && *nm) {
        e->name = strdup(nm);
        return;
    }
    const char *base = strrchr(path, '/');
    e->name = strdup(base ? base + 1 : path);
    char *dot = e->name ? strrchr(e->name, '.') : NULL;
    if (dot && dot != e->name)
        *dot = '\0';
}

/* `experiment` and its `output` group, against the core's specs */
static int parse_experiment_group(const config_t *cfg, const char *path,
                                  struct dlas_experiment *e)
{
    const config_setting_t *ex = config_lookup(cfg, "experiment");
    const config_setting_t *out = ex ? config_setting_get_member(ex, "output") : NULL;
    struct dlas_params *outp = NULL;
    int rc;
    if (ex)
        rc = dlas_cfg_params(ex, "group 'experiment'", experiment_spec, experiment_reserved, 0,
                             &e->exp, NULL, NULL);
    else
        rc = dlas_params_defaults(experiment_spec, &e->exp);
    if (!rc && dlas_param_list_len(e->exp, "seeds") == 0)
        rc = where_error(config_setting_get_member(ex, "seeds"), DLAS_ERR_INVALID,
                         "experiment.seeds is empty: no point would run (give at least one "
                         "seed, e.g. seeds = [1];)%s%s",
                         NULL, NULL);
    if (!rc) {
        if (out && !config_setting_is_group(out))
            rc = where_error(out, DLAS_ERR_INVALID, "experiment.output must be a group { dir = \"...\"; }%s%s",
                             NULL, NULL);
        else if (out)
            rc = dlas_cfg_params(out, "group 'experiment.output'", output_spec, NULL, 0, &outp, NULL,
                                 NULL);
        else
            rc = dlas_params_defaults(output_spec, &outp);
    }
    if (!rc) {
        e->output_dir = strdup(dlas_param_str(outp, "dir"));
        name_experiment(path, e);
    }
    dlas_params_free(outp);
    return rc;
}

/* `train`, against the training engine's spec, and the recipe's own
 * consistency (milestones, Nesterov), with file:line */
static int parse_train_group(const config_t *cfg, struct dlas_experiment *e)
{
    const config_setting_t *tr = config_lookup(cfg, "train");
    int rc = tr ? dlas_cfg_params(tr, "group 'train'", dlas_train_param_spec(), NULL, 0, &e->train,
                                  NULL, NULL)
                : dlas_params_defaults(dlas_train_param_spec(), &e->train);
    struct dlas_train_options to;
    if (!rc && dlas_train_options_from_params(e->train, &to)) {
        /* at the key the message names, if it names one */
        const config_setting_t *at = tr ? tr : config_root_setting(cfg);
        static const char *const keys[] = {"subset", "milestones", "nesterov"};
        for (size_t k = 0; tr && k < sizeof keys / sizeof keys[0]; k++) {
            char needle[32];
            snprintf(needle, sizeof needle, "%s ", keys[k]);
            if (strstr(dlas_last_error(), needle) && config_setting_get_member(tr, keys[k])) {
                at = config_setting_get_member(tr, keys[k]);
                break;
            }
        }
        rc = where_error(at, DLAS_ERR_INVALID, "%s%s", dlas_last_error(), NULL);
    }
    return rc;
}

/* The named instances of every kind, each checked against its plugin's spec:
 * the dataset, models, compressor chains, primitives, backends. */
static int parse_plugin_groups(const config_t *cfg, const char *path, struct dlas_registry *reg,
                               struct dlas_experiment *e)
{
    const config_setting_t *ds = config_lookup(cfg, "dataset");
    if (!ds)
        return dlas_error(DLAS_ERR_INVALID, "%s: no 'dataset' group (e.g. dataset = { plugin = \"synthetic\"; };)",
                          path);
    int rc = parse_instance(ds, "dataset", DLAS_KIND_DATASET, reg, &e->dataset);
    const config_setting_t *g;
    if (!rc) {
        g = config_lookup(cfg, "models");
        rc = g ? parse_instances(g, DLAS_KIND_MODEL, reg, &e->models, &e->n_models)
               : dlas_error(DLAS_ERR_INVALID, "%s: no 'models' group (e.g. models = { lenet = { plugin = \"lenet5\"; }; };)",
                            path);
    }
    if (!rc && !e->n_models)
        rc = where_error(g, DLAS_ERR_INVALID, "'models' defines no model%s%s", NULL, NULL);
    if (!rc)
        rc = parse_chains(config_lookup(cfg, "compressors"), reg, e);
    if (!rc)
        rc = parse_instances(config_lookup(cfg, "primitives"), DLAS_KIND_PRIMITIVE, reg, &e->prims,
                             &e->n_prims);
    for (int i = 0; !rc && i < e->n_prims; i++) /* "auto" in the sweep is the plan's choice */
        if (!strcmp(e->prims[i].label, "auto"))
            rc = where_error(config_setting_get_member(config_lookup(cfg, "primitives"), "auto"),
                             DLAS_ERR_INVALID,
                             "the primitive name 'auto' is reserved: sweep.primitives = [..., "
                             "\"auto\"] is each layer on the fastest of the other primitives; "
                             "name this instance otherwise%s%s",
                             NULL, NULL);
    if (!rc) {
        g = config_lookup(cfg, "backends");
        rc = g ? parse_instances(g, DLAS_KIND_BACKEND, reg, &e->backends, &e->n_backends)
               : dlas_error(DLAS_ERR_INVALID,
                            "%s: no 'backends' group (e.g. backends = { omp = { plugin = \"openmp\"; threads = 2; }; };)",
                            path);
    }
    if (!rc && !e->n_backends)
        rc = where_error(g, DLAS_ERR_INVALID, "'backends' defines no backend%s%s", NULL, NULL);
    return rc;
}

/* `sweep`: which instances of each kind take part (all, where it is silent) */
static int parse_sweep(const config_t *cfg, struct dlas_experiment *e)
{
    const config_setting_t *sw = config_lookup(cfg, "sweep");
    int rc = DLAS_OK;
    if (sw) {
        if (!config_setting_is_group(sw))
            return where_error(sw, DLAS_ERR_INVALID, "'sweep' must be a group%s%s", NULL, NULL);
        rc = check_keys(sw, "group 'sweep'", sweep_keys, sizeof sweep_keys / sizeof *sweep_keys);
    }
    if (!rc) {
        const char **l = labels_of(e->models, e->n_models);
        rc = parse_selection(sw, "models", e->n_models, l, NULL, NULL, &e->sel_models, &e->n_sel_models);
        free(l);
    }
    if (!rc) {
        const char **l = calloc((size_t)e->n_chains + 1, sizeof *l);
        for (int i = 0; l && i < e->n_chains; i++)
            l[i] = e->chains[i].label;
        rc = parse_selection(sw, "compressors", e->n_chains, l, NULL, NULL, &e->sel_chains, &e->n_sel_chains);
        free(l);
    }
    if (!rc) {
        const char **l = labels_of(e->prims, e->n_prims);
        rc = parse_selection(sw, "primitives", e->n_prims, l, "auto", &e->sweep_auto,
                             &e->sel_prims, &e->n_sel_prims);
        free(l);
        if (!rc && e->sweep_auto && !e->n_prims)
            rc = where_error(config_setting_get_member(sw, "primitives"), DLAS_ERR_INVALID,
                             "sweep.primitives lists \"auto\", the fastest of the experiment's "
                             "primitives for each layer, but 'primitives' defines none%s%s",
                             NULL, NULL);
    }
    if (!rc) {
        const char **l = labels_of(e->backends, e->n_backends);
        rc = parse_selection(sw, "backends", e->n_backends, l, NULL, NULL, &e->sel_backends, &e->n_sel_backends);
        free(l);
    }
    return rc;
}

/* experiment.fallback: the primitive instance (unswept) for layers the
 * compared primitive refuses, or the core reference when empty */
static int resolve_fallback(const config_t *cfg, const char *path, struct dlas_experiment *e)
{
    e->fallback = -1;
    const char *fb = dlas_param_str(e->exp, "fallback");
    if (!fb || !*fb)
        return DLAS_OK;
    for (int i = 0; i < e->n_prims; i++)
        if (!strcmp(e->prims[i].label, fb))
            e->fallback = i;
    if (e->fallback < 0) {
        const char **l = labels_of(e->prims, e->n_prims);
        const char *near = l ? dlas_nearest(fb, l, (size_t)e->n_prims) : NULL;
        const config_setting_t *ex = config_lookup(cfg, "experiment");
        const config_setting_t *f = config_setting_get_member(ex, "fallback");
        char at[512];
        dlas_cfg_where(f, at, sizeof at);
        int rc = dlas_error(DLAS_ERR_INVALID,
                            "%s: experiment.fallback names '%s', which is not in 'primitives'%s%s%s", at,
                            fb, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        free(l);
        return rc;
    }
    if (e->prims[e->fallback].n_axes)
        return dlas_error(DLAS_ERR_INVALID, "%s: the fallback primitive '%s' cannot have swept parameters",
                          path, fb);
    return DLAS_OK;
}

/* Loading is a pipeline: read the file, check its top-level keys, parse the
 * core's groups, then the plugins' instances, the sweep and the fallback,
 * and expand the grid into points. */
static int load(const char *path, struct dlas_registry *reg, struct dlas_experiment *e)
{
    config_t cfg;
    config_init(&cfg);
    e->fallback = -1;
    int rc = read_config(path, &cfg);
    if (!rc)
        rc = check_keys(config_root_setting(&cfg), "the experiment file", top_keys,
                        sizeof top_keys / sizeof *top_keys);
    if (!rc)
        rc = parse_experiment_group(&cfg, path, e);
    if (!rc)
        rc = parse_train_group(&cfg, e);
    if (!rc)
        rc = parse_plugin_groups(&cfg, path, reg, e);
    if (!rc)
        rc = parse_sweep(&cfg, e);
    if (!rc)
        rc = resolve_fallback(&cfg, path, e);
    if (!rc && (!e->n_sel_models || !e->n_sel_chains || !e->n_sel_backends))
        rc = dlas_error(DLAS_ERR_INVALID, "%s: the sweep is empty", path);
    if (!rc)
        rc = expand(e);
    config_destroy(&cfg);
    return rc;
}

int dlas_experiment_load(const char *path, struct dlas_registry *reg,
                         struct dlas_experiment **out)
{
    *out = NULL;
    struct dlas_experiment *e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path))) {
        free(e);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    int rc = load(path, reg, e);
    if (rc) {
        dlas_experiment_free(e);
        return rc;
    }
    *out = e;
    return DLAS_OK;
}

void dlas_experiment_free(struct dlas_experiment *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_points; i++) {
        free(e->points[i].id);
        free(e->points[i].hash);
        free(e->points[i].baseline);
        free(e->points[i].picks);
        dlas_row_free(&e->points[i].result);
    }
    free(e->points);
    free(e->settings_desc);
    instance_free(&e->dataset);
    for (int i = 0; i < e->n_models; i++)
        instance_free(&e->models[i]);
    for (int i = 0; i < e->n_prims; i++)
        instance_free(&e->prims[i]);
    for (int i = 0; i < e->n_backends; i++)
        instance_free(&e->backends[i]);
    for (int i = 0; i < e->n_chains; i++) {
        for (int k = 0; k < e->chains[i].n; k++)
            instance_free(&e->chains[i].steps[k]);
        free(e->chains[i].steps);
        free(e->chains[i].label);
    }
    free(e->models);
    free(e->prims);
    free(e->backends);
    free(e->chains);
    free(e->sel_models);
    free(e->sel_chains);
    free(e->sel_prims);
    exp_probes_free(&e->probes);
    free(e->sel_backends);
    dlas_params_free(e->exp);
    dlas_params_free(e->train);
    free(e->path);
    free(e->name);
    free(e->output_dir);
    free(e);
}

const char *dlas_experiment_name(const struct dlas_experiment *e) { return e->name; }
const char *dlas_experiment_output_dir(const struct dlas_experiment *e) { return e->output_dir; }
size_t dlas_experiment_n_points(const struct dlas_experiment *e) { return e->n_points; }

const char *dlas_experiment_point_id(const struct dlas_experiment *e, size_t i)
{
    return i < e->n_points ? e->points[i].id : NULL;
}

const char *dlas_experiment_point_hash(const struct dlas_experiment *e, size_t i)
{
    return i < e->n_points ? e->points[i].hash : NULL;
}

const char *dlas_experiment_result(const struct dlas_experiment *e, size_t i, const char *column)
{
    if (i >= e->n_points)
        return "";
    const char *v = dlas_row_get(&e->points[i].result, column);
    return v ? v : "";
}

/* ---- the resolved configuration --------------------------------------- */

static void write_params(struct dlas_buf *b, const struct dlas_params *p,
                         const struct dlas_axis *axes, int n_axes, const char *indent)
{
    for (size_t i = 0; i < dlas_params_count(p); i++) {
        const char *name = dlas_params_name(p, i);
        const struct dlas_axis *ax = NULL;
        for (int a = 0; a < n_axes; a++)
            if (!strcmp(axes[a].key, name))
                ax = &axes[a];
        dlas_buf_printf(b, "%s%s = ", indent, name);
        if (ax) {
            dlas_buf_printf(b, "[");
            for (int v = 0; v < ax->n; v++)
                dlas_buf_printf(b, "%s%s", v ? ", " : "", ax->values[v]);
            dlas_buf_printf(b, "];\n");
        } else {
            char val[4096];
            dlas_params_format(p, i, val, sizeof val);
            dlas_buf_printf(b, "%s;\n", val);
        }
    }
}

static void write_instance(struct dlas_buf *b, const struct instance *in, const char *indent)
{
    char inner[64];
    snprintf(inner, sizeof inner, "%s  ", indent);
    dlas_buf_printf(b, "{\n%splugin = ", inner);
    dlas_json_string(b, in->comp->name);
    dlas_buf_printf(b, ";\n");
    write_params(b, in->params, in->axes, in->n_axes, inner);
    dlas_buf_printf(b, "%s}", indent);
}

char *dlas_experiment_resolved(const struct dlas_experiment *e)
{
    struct dlas_buf b = {0};
    dlas_buf_printf(&b, "# Resolved configuration of %s: every default filled in.\n", e->path);
    dlas_buf_printf(&b, "experiment = {\n");
    write_params(&b, e->exp, NULL, 0, "  ");
    dlas_buf_printf(&b, "  output = { dir = ");
    dlas_json_string(&b, e->output_dir);
    dlas_buf_printf(&b, "; };\n};\n");
    dlas_buf_printf(&b, "dataset = ");
    write_instance(&b, &e->dataset, "");
    dlas_buf_printf(&b, ";\ntrain = {\n");
    write_params(&b, e->train, NULL, 0, "  ");
    dlas_buf_printf(&b, "};\nmodels = {\n");
    for (int i = 0; i < e->n_models; i++) {
        dlas_buf_printf(&b, "  %s = ", e->models[i].label);
        write_instance(&b, &e->models[i], "  ");
        dlas_buf_printf(&b, ";\n");
    }
    dlas_buf_printf(&b, "};\ncompressors = {\n");
    for (int i = 0; i < e->n_chains; i++) {
        dlas_buf_printf(&b, "  %s = (", e->chains[i].label);
        for (int k = 0; k < e->chains[i].n; k++) {
            dlas_buf_printf(&b, "%s", k ? ", " : "");
            write_instance(&b, &e->chains[i].steps[k], "    ");
        }
        dlas_buf_printf(&b, ");\n");
    }
    dlas_buf_printf(&b, "};\nprimitives = {\n");
    for (int i = 0; i < e->n_prims; i++) {
        dlas_buf_printf(&b, "  %s = ", e->prims[i].label);
        write_instance(&b, &e->prims[i], "  ");
        dlas_buf_printf(&b, ";\n");
    }
    dlas_buf_printf(&b, "};\nbackends = {\n");
    for (int i = 0; i < e->n_backends; i++) {
        dlas_buf_printf(&b, "  %s = ", e->backends[i].label);
        write_instance(&b, &e->backends[i], "  ");
        dlas_buf_printf(&b, ";\n");
    }
    dlas_buf_printf(&b, "};\nsweep = {\n");
    struct {
        const char *axis;
        const int *sel;
        int n;
    } ax[] = {{"models", e->sel_models, e->n_sel_models},
              {"compressors", e->sel_chains, e->n_sel_chains},
              {"primitives", e->sel_prims, e->n_sel_prims},
              {"backends", e->sel_backends, e->n_sel_backends}};
    for (size_t a = 0; a < 4; a++) {
        /* the primitives' list holds "auto" too, where the sweep put it */
        const int n = a == 2 ? e->n_sel_prims + (e->sweep_auto > 0) : ax[a].n;
        dlas_buf_printf(&b, "  %s = [", ax[a].axis);
        for (int i = 0; i < n; i++) {
            const int p = a == 2 ? prim_at(e, i) : 0;
            const char *l = a == 0   ? e->models[ax[a].sel[i]].label
                            : a == 1 ? e->chains[ax[a].sel[i]].label
                            : a == 2 ? (p == POINT_AUTO ? "auto" : e->prims[p].label)
                                     : e->backends[ax[a].sel[i]].label;
            dlas_buf_printf(&b, "%s", i ? ", " : "");
            dlas_json_string(&b, l);
        }
        dlas_buf_printf(&b, "];\n");
    }
    dlas_buf_printf(&b, "};\n");
    return b.s;
}
