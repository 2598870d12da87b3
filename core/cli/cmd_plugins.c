/* `dlas plugins` and `dlas help NAME`: documentation generated from the same
 * parameter specs that validate configs, so the two cannot drift. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *type_name(const struct dlas_param_spec *s)
{
    static char buf[64];
    const char *t = s->type == DLAS_PARAM_INT      ? "int"
                    : s->type == DLAS_PARAM_FLOAT  ? "float"
                    : s->type == DLAS_PARAM_BOOL   ? "bool"
                    : s->type == DLAS_PARAM_STRING ? "string"
                                                   : "enum";
    snprintf(buf, sizeof buf, "%s%s", t, (s->flags & DLAS_PARAM_LIST) ? "[]" : "");
    return buf;
}

/* One row of the parameter table. A field wider than its column is followed
 * by two spaces instead of running into the next; later fields go back to
 * their columns as soon as they can. */
static void print_row(FILE *f, const char *const cells[5])
{
    static const int width[4] = {16, 8, 12, 18};
    int col = 4, at = fprintf(f, "    ");
    for (int i = 0; i < 4; i++) {
        at += fprintf(f, "%s", cells[i]);
        col += width[i] + 1;
        int pad = at < col ? col - at : 2;
        at += fprintf(f, "%*s", pad, "");
    }
    fprintf(f, "%s\n", cells[4]);
}

static void print_param(FILE *f, const struct dlas_param_spec *s)
{
    char range[128] = "", help[1024];
    if (s->flags & DLAS_PARAM_ALIAS) {
        snprintf(help, sizeof help, "another name for '%s'", s->def);
        print_row(f, (const char *const[5]){s->name, "alias", "", "", help});
        return;
    }
    if (s->type == DLAS_PARAM_ENUM && s->choices)
        snprintf(range, sizeof range, "%s", s->choices);
    else if ((s->type == DLAS_PARAM_INT || s->type == DLAS_PARAM_FLOAT) && s->min < s->max)
        snprintf(range, sizeof range, "%.10g..%.10g", s->min, s->max);
    snprintf(help, sizeof help, "%s%s", (s->flags & DLAS_PARAM_TUNABLE) ? "[tunable] " : "",
             s->help ? s->help : "");
    const char *def = (s->flags & DLAS_PARAM_REQUIRED) ? "(required)" : s->def ? s->def : "";
    print_row(f, (const char *const[5]){s->name, type_name(s), def, range, help});
}

static void print_params(FILE *f, const struct dlas_param_spec *spec)
{
    if (!spec || !spec->name) {
        fprintf(f, "    (no parameters)\n");
        return;
    }
    print_row(f, (const char *const[5]){"parameter", "type", "default", "range", "help"});
    for (; spec->name; spec++)
        print_param(f, spec);
}

int cmd_plugins(struct cli *c, int argc, char **argv)
{
    int verbose = 0, has_kind = 0;
    enum dlas_kind kind = DLAS_KIND_DATASET;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "--kind") && i + 1 < argc) {
            if (dlas_kind_parse(argv[++i], &kind))
                return cli_error("plugins");
            has_kind = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: dlas plugins [--kind dataset|model|compressor|primitive|backend] "
                   "[--verbose]\n  Lists every component with its parameters; --verbose adds "
                   "file paths and plugins that failed to load, with the reason.\n");
            return EXIT_OK;
        } else {
            fprintf(stderr, "dlas plugins: unknown argument '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    int rc = cli_registry(c);
    if (rc)
        return rc;
    size_t shown = 0;
    for (int k = DLAS_KIND_DATASET; k < DLAS_KIND__END; k++) {
        if (has_kind && k != (int)kind)
            continue;
        int header = 0;
        for (size_t i = 0; i < dlas_registry_count(c->reg); i++) {
            const struct dlas_plugin *p;
            const char *path;
            const struct dlas_component *comp = dlas_registry_at(c->reg, i, &p, &path);
            if ((int)comp->kind != k)
                continue;
            if (!header)
                printf("%s%ss:\n", shown ? "\n" : "", dlas_kind_name((enum dlas_kind)k));
            header = 1;
            printf("  %-20s %s\n", comp->name, comp->summary ? comp->summary : "");
            if (verbose)
                printf("    plugin %s %s, %s\n", p->name, p->version ? p->version : "", path);
            print_params(stdout, comp->params);
            shown++;
        }
    }
    if (!shown)
        printf("no plugins found (searched --plugin-path, $DLAS_PLUGIN_PATH and %s)\n",
               dlas_plugin_install_dir());
    size_t nf = dlas_registry_n_failures(c->reg);
    if (nf && verbose) {
        printf("\nnot loaded:\n");
        for (size_t i = 0; i < nf; i++) {
            const char *path, *why;
            dlas_registry_failure(c->reg, i, &path, &why);
            printf("  %s: %s\n", path, why);
        }
    } else if (nf)
        fprintf(stderr, "dlas: %zu plugin file(s) failed to load; 'dlas plugins --verbose' says why\n",
                nf);
    return EXIT_OK;
}

int cmd_help(struct cli *c, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        printf("usage: dlas help NAME\n  Shows a plugin component's summary, source paper and "
               "parameters.\n");
        return argc == 2 ? EXIT_OK : EXIT_USAGE;
    }
    int rc = cli_registry(c);
    if (rc)
        return rc;
    int found = 0;
    const char *names[512];
    size_t n = 0;
    for (size_t i = 0; i < dlas_registry_count(c->reg); i++) {
        const struct dlas_plugin *p;
        const char *path;
        const struct dlas_component *comp = dlas_registry_at(c->reg, i, &p, &path);
        if (n < 512)
            names[n++] = comp->name;
        if (strcmp(comp->name, argv[1]) && strcmp(p->name, argv[1]))
            continue;
        printf("%s%s (%s)\n  %s\n", found ? "\n" : "", comp->name,
               dlas_kind_name(comp->kind), comp->summary ? comp->summary : "");
        if (comp->reference)
            printf("  reference: %s\n", comp->reference);
        printf("  plugin: %s %s (%s)\n\n", p->name, p->version ? p->version : "", path);
        print_params(stdout, comp->params);
        /* Formatted from real defaults, so the example is valid config syntax. */
        printf("\n  config example:\n    x = { plugin = \"%s\";", comp->name);
        struct dlas_params *defs = NULL;
        if (comp->params && dlas_params_defaults(comp->params, &defs) == DLAS_OK) {
            for (size_t k = 0; k < dlas_params_count(defs); k++) {
                char val[512];
                if (dlas_params_format(defs, k, val, sizeof val) != DLAS_OK)
                    snprintf(val, sizeof val, "...");
                printf(" %s = %s;", dlas_params_name(defs, k), val);
            }
        }
        dlas_params_free(defs);
        printf(" };\n");
        found++;
    }
    if (!found) {
        const char *near = dlas_nearest(argv[1], names, n);
        fprintf(stderr, "dlas help: no plugin named '%s'%s%s%s (see 'dlas plugins')\n", argv[1],
                near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}
