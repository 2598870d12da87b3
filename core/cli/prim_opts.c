/* Primitives and a backend named on the command line, for the commands
 * that time primitives outside an experiment run (compare, tune). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_prims_free(struct cli_prims *p)
{
    for (int i = 0; i < p->n; i++)
        dlas_params_free(p->owned[i]);
    memset(p, 0, sizeof *p);
}

static int add(struct cli_prims *p, const char *label, const struct dlas_component *comp,
               struct dlas_params *params)
{
    if (p->n == CLI_MAX_PRIMS) {
        dlas_params_free(params);
        return dlas_error(DLAS_ERR_INVALID, "at most %d primitives", CLI_MAX_PRIMS);
    }
    snprintf(p->labels[p->n], sizeof p->labels[p->n], "%s", label);
    p->owned[p->n] = params;
    p->c[p->n].label = p->labels[p->n];
    p->c[p->n].comp = comp;
    p->c[p->n].params = params;
    p->n++;
    return DLAS_OK;
}

int cli_prims_copy(struct cli_prims *p, const char *label, const struct dlas_component *comp,
                   const struct dlas_params *params)
{
    return add(p, label, comp, params ? dlas_params_clone(params) : NULL);
}

void cli_prims_from_experiment(const struct dlas_experiment *e, struct cli_prims *p)
{
    for (size_t i = 0; i < dlas_experiment_n_primitives(e) && p->n < CLI_MAX_PRIMS; i++) {
        const char *label;
        const struct dlas_component *comp;
        const struct dlas_params *pp;
        dlas_experiment_primitive(e, i, &label, &comp, &pp);
        cli_prims_copy(p, label, comp, pp);
    }
}

int cli_prim_parse(struct cli *c, const char *spec, struct cli_prims *p)
{
    char name[128];
    const char *colon = strchr(spec, ':');
    snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
    const struct dlas_component *comp = dlas_registry_find(c->reg, DLAS_KIND_PRIMITIVE, name);
    if (!comp)
        return dlas_last_status();
    struct dlas_params *params = NULL;
    if (comp->params && dlas_params_defaults(comp->params, &params))
        return dlas_last_status();
    if (colon) {
        /* NAME:key=value:key=value */
        char buf[512];
        snprintf(buf, sizeof buf, "%s", colon + 1);
        for (char *s = buf; s && *s;) {
            char *next = strchr(s, ':');
            if (next)
                *next++ = '\0';
            for (char *q = s; *q; q++)
                if (*q == ':')
                    *q = ';';
            int rc = dlas_params_apply(params, s, "command line");
            if (rc) {
                dlas_params_free(params);
                return rc;
            }
            s = next;
        }
    }
    return add(p, spec, comp, params);
}

int cli_prims_all(struct cli *c, struct cli_prims *p)
{
    for (size_t i = 0; i < dlas_registry_count(c->reg); i++) {
        const struct dlas_component *comp = dlas_registry_at(c->reg, i, NULL, NULL);
        if (!comp || comp->kind != DLAS_KIND_PRIMITIVE)
            continue;
        const struct dlas_primitive_ops *ops = comp->ops;
        if (strcmp(ops->op, "conv2d") || strcmp(ops->device, c->device ? c->device : "cpu"))
            continue;
        struct dlas_params *params = NULL;
        if (comp->params && dlas_params_defaults(comp->params, &params))
            return dlas_last_status();
        int rc = add(p, comp->name, comp, params);
        if (rc)
            return rc;
    }
    return p->n ? DLAS_OK
                : dlas_error(DLAS_ERR_NOTFOUND, "no %s conv2d primitive plugin was found",
                             c->device ? c->device : "cpu");
}

int cli_prims_list(struct cli *c, const char *list, struct cli_prims *p)
{
    if (!strcmp(list, "all"))
        return cli_prims_all(c, p);
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int rc = cli_prim_parse(c, tok, p);
        if (rc)
            return rc;
    }
    return p->n ? DLAS_OK : dlas_error(DLAS_ERR_INVALID, "empty primitive list");
}

int cli_backend_init(struct cli *c, const char *name, const struct dlas_params *base,
                     int threads, const struct dlas_host *host, struct dlas_backend *be)
{
    const struct dlas_component *comp =
        dlas_registry_find(c->reg, DLAS_KIND_BACKEND, name ? name : "openmp");
    if (!comp)
        return dlas_last_status();
    struct dlas_params *p = NULL;
    int rc = base ? ((p = dlas_params_clone(base)) ? DLAS_OK : DLAS_ERR_NOMEM)
                  : dlas_params_defaults(comp->params, &p);
    if (!rc && threads > 0) {
        char t[16];
        snprintf(t, sizeof t, "%d", threads);
        rc = dlas_params_set(p, "threads", t, "command line");
    }
    be->ops = comp->ops;
    be->ctx = NULL;
    if (!rc)
        rc = be->ops->init(host, p, &be->ctx);
    dlas_params_free(p);
    return rc;
}
