/* The options of the structured pruning loop (see <dlas/prune.h>): their
 * defaults, and the shared parameters of a pruner plugin read into them, so
 * that every pruner reads the same keys the same way. */
#include <string.h>

#include <dlas/params.h>
#include <dlas/prune.h>
#include <dlas/status.h>

void dlas_prune_options_default(struct dlas_prune_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->scope = DLAS_PRUNE_INTERNAL;
    o->metric = DLAS_PRUNE_PARAMS;
    o->ratio = 0.5;
    o->per_step = 1;
    o->evaluate = 1;
}

/* Whether the plugin's spec has `name`: a pruner need not offer every
 * shared key (only fisher has beta), and one it does not offer keeps the
 * loop's default rather than reading as 0. */
static int declared(const struct dlas_params *p, const char *name)
{
    for (const struct dlas_param_spec *s = dlas_params_spec(p); s && s->name; s++)
        if (!strcmp(s->name, name))
            return 1;
    return 0;
}

/* Read `name` into *to when the spec declares it. */
static void read_float(const struct dlas_params *p, const char *name, double *to)
{
    if (declared(p, name))
        *to = dlas_param_float(p, name);
}

static void read_int(const struct dlas_params *p, const char *name, int64_t *to)
{
    if (declared(p, name))
        *to = dlas_param_int(p, name);
}

static void read_bool(const struct dlas_params *p, const char *name, int *to)
{
    if (declared(p, name))
        *to = dlas_param_bool(p, name);
}

static void read_str(const struct dlas_params *p, const char *name, const char **to)
{
    if (declared(p, name))
        *to = dlas_param_str(p, name);
}

int dlas_prune_options_from_params(struct dlas_prune_options *o, const struct dlas_params *p,
                                   const char *who)
{
    dlas_prune_options_default(o);
    if ((declared(p, "target") &&
         dlas_prune_metric_parse(dlas_param_str(p, "target"), &o->metric)) ||
        (declared(p, "scope") && dlas_prune_scope_parse(dlas_param_str(p, "scope"), &o->scope)))
        return dlas_error_context("%s", who);
    int64_t round_to = o->round_to;
    int latency_auto = 0;
    read_float(p, "ratio", &o->ratio);
    read_float(p, "absolute", &o->absolute);
    read_bool(p, "latency_auto", &latency_auto);
    read_int(p, "channels_per_step", &o->per_step);
    read_int(p, "prune_every", &o->interval);
    read_float(p, "lr", &o->lr);
    read_float(p, "beta", &o->beta);
    read_bool(p, "evaluate", &o->evaluate);
    read_int(p, "round_to", &round_to);
    read_bool(p, "include_linear", &o->include_linear);
    read_str(p, "history_csv", &o->history_csv);
    read_str(p, "save", &o->save_path);
    o->latency_flags = latency_auto ? DLAS_LATENCY_AUTO : 0;
    o->round_to = (int)round_to;
    return DLAS_OK;
}
