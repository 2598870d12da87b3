/* Naming a model plugin directly on the command line, for commands that
 * inspect one model without an experiment file (summary, checkpoint). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cli_model_help[] =
    "  --model NAME       a model plugin (see 'dlas plugins --kind model')\n"
    "  --input CxHxW      input shape (default 3x32x32)\n"
    "  --classes N        outputs of the classifier (default 10)\n"
    "  --seed S           weight initialisation seed, as a run's seed (default 1)\n"
    "  KEY=VALUE          a model parameter, in config syntax (repeatable)\n";

void cli_model_init(struct cli_model *m)
{
    memset(m, 0, sizeof *m);
    m->c = 3;
    m->h = m->w = 32;
    m->classes = 10;
    m->seed = 1;
}

static int bad(const char *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "dlas %s: %s '%s'\n", cmd, what, arg);
    return -EXIT_USAGE;
}

int cli_model_arg(struct cli_model *m, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    char extra;
    if (!strcmp(a, "--model") || !strcmp(a, "--input") || !strcmp(a, "--classes") ||
        !strcmp(a, "--seed")) {
        if (!val)
            return bad(cmd, "missing value after", a);
        ++*i;
        if (!strcmp(a, "--model"))
            m->name = val;
        else if (!strcmp(a, "--input")) {
            if (sscanf(val, "%dx%dx%d%c", &m->c, &m->h, &m->w, &extra) != 3 || m->c < 1 ||
                m->h < 1 || m->w < 1)
                return bad(cmd, "--input takes CxHxW with positive sizes, not", val);
        } else if (!strcmp(a, "--classes")) {
            if (sscanf(val, "%d%c", &m->classes, &extra) != 1 || m->classes < 1)
                return bad(cmd, "--classes takes a positive number, not", val);
        } else if (sscanf(val, "%llu%c", &m->seed, &extra) != 1)
            return bad(cmd, "--seed takes a non-negative number, not", val);
        return 1;
    }
    if (a[0] != '-' && strchr(a, '=') && a[0] != '=') {
        if (m->n_sets == CLI_MODEL_SETS)
            return bad(cmd, "too many KEY=VALUE settings at", a);
        m->sets[m->n_sets++] = a;
        return 1;
    }
    return 0;
}

int cli_model_build(struct cli *c, const struct cli_model *m, struct dlas_graph **out)
{
    *out = NULL;
    int rc = cli_registry(c);
    if (rc)
        return rc;
    const struct dlas_component *comp = dlas_registry_find(c->reg, DLAS_KIND_MODEL, m->name);
    if (!comp)
        return cli_error(NULL);
    struct dlas_params *p = NULL;
    if (dlas_params_defaults(comp->params, &p))
        return cli_error(m->name);
    for (int k = 0; k < m->n_sets; k++) {
        const char *eq = strchr(m->sets[k], '=');
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - m->sets[k]), m->sets[k]);
        if (dlas_params_set(p, key, eq + 1, "command line")) {
            dlas_params_free(p);
            return cli_error(m->name);
        }
    }
    if (dlas_params_check_required(p, "command line")) {
        dlas_params_free(p);
        return cli_error(m->name);
    }
    /* the streams a run's point derives for its seed */
    struct dlas_rng root, rng_model;
    struct dlas_host host;
    dlas_rng_seed(&root, (uint64_t)m->seed);
    rng_model = dlas_rng_derive(&root, dlas_rng_hash("model"));
    dlas_host_init(&host, &rng_model, (uint64_t)m->seed);
    struct dlas_graph *g = dlas_graph_new();
    const struct dlas_model_ops *ops = comp->ops;
    rc = g ? ops->build(&host, p, m->c, m->h, m->w, m->classes, g) : DLAS_ERR_NOMEM;
    if (!rc)
        rc = dlas_graph_status(g);
    if (!rc)
        rc = dlas_graph_validate(g);
    if (!rc) {
        struct dlas_rng init = dlas_rng_derive(&root, dlas_rng_hash("init"));
        rc = dlas_graph_init_weights(g, &init);
    }
    dlas_params_free(p);
    if (rc) {
        dlas_graph_free(g);
        char what[160];
        snprintf(what, sizeof what, "model '%s' on %dx%dx%d", m->name, m->c, m->h, m->w);
        return cli_error(what);
    }
    *out = g;
    return EXIT_OK;
}
