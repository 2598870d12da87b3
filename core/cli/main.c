/* dlas: entry point and option dispatch. Only the CLI prints and decides
 * exit codes; the library reports through statuses and messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_mpi.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dlas [--plugin-path DIRS] [-v|-q] COMMAND [ARGS]\n"
            "\n"
            "Deep Learning Acceleration Stack: compose dataset, model, compressor,\n"
            "primitive and backend plugins into reproducible experiments.\n"
            "\n"
            "commands:\n"
            "  plugins [--kind K] [--verbose]   list plugins and their parameters\n"
            "  help NAME                        a plugin's documentation and parameters\n"
            "  validate FILE                    check an experiment file, list its points\n"
            "  run FILE [options]               run an experiment (see 'dlas run --help')\n"
            "  summary FILE | --model NAME      per-layer table and totals of a model\n"
            "  checkpoint info|save|load ...    inspect, verify, save and load weights\n"
            "  plot RESULTS_DIR [options]       one figure of the results, Pareto fronts (gnuplot)\n"
            "  report RESULTS_DIR [options]     tables, Pareto sets, rank correlations and figures\n"
            "  compare FILE | --model NAME      primitives side by side: per layer, end to end\n"
            "  tune FILE | --model NAME         search primitives' knobs, write a tuning log\n"
            "\n"
            "options:\n"
            "  --plugin-path DIRS  extra plugin directories (colon-separated), searched\n"
            "                      before $DLAS_PLUGIN_PATH and the installed plugins\n"
            "  -v, --verbose       more log output (repeat for debug); DLAS_LOG=debug also works\n"
            "  -q, --quiet         errors only\n"
            "  --version           version, git revision, plugin ABI and BLAS\n"
            "  -h, --help          this help\n"
            "\n"
            "exit status: 0 ok, 1 a run failed, 2 usage or configuration error\n"
            "example: dlas run examples/quickstart.cfg\n");
}

int cli_error(const char *what)
{
    fprintf(stderr, "dlas: %s%s%s\n", what ? what : "", what ? ": " : "", dlas_last_error());
    return EXIT_USAGE;
}

int cli_registry(struct cli *c)
{
    if (c->reg)
        return 0;
    c->reg = dlas_registry_new();
    if (!c->reg) {
        fprintf(stderr, "dlas: out of memory\n");
        return EXIT_USAGE;
    }
    if (dlas_registry_discover(c->reg, c->plugin_path)) {
        cli_error("plugin discovery");
        return EXIT_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli c = {0};
    int i = 1;
    int verbosity = 0;
    cli_install_sinks();
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("dlas %s (revision %s, plugin ABI %d.%d)\nBLAS: %s\nMPI: %s\nplugins: %s\n",
                   dlas_version(), dlas_revision(), DLAS_ABI_MAJOR, DLAS_ABI_MINOR,
                   dlas_blas_info(), cli_mpi_library(), dlas_plugin_install_dir());
            return EXIT_OK;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            verbosity++;
        else if (!strcmp(a, "-vv"))
            verbosity += 2;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
            verbosity = -1;
        else if (!strcmp(a, "--plugin-path") && i + 1 < argc)
            c.plugin_path = argv[++i];
        else if (!strncmp(a, "--plugin-path=", 14))
            c.plugin_path = a + 14;
        else {
            fprintf(stderr, "dlas: unknown option '%s'\n\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (verbosity < 0)
        dlas_log_set_level(DLAS_LOG_ERROR);
    else if (verbosity > 0)
        dlas_log_set_level(verbosity > 1 ? DLAS_LOG_DEBUG : DLAS_LOG_INFO);
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    static const struct {
        const char *name;
        int (*fn)(struct cli *, int, char **);
    } cmds[] = {{"plugins", cmd_plugins}, {"help", cmd_help}, {"validate", cmd_validate},
                {"run", cmd_run}, {"plot", cmd_plot}, {"report", cmd_report},
                {"summary", cmd_summary}, {"checkpoint", cmd_checkpoint},
                {"compare", cmd_compare}, {"tune", cmd_tune}};
    enum { N_CMDS = sizeof cmds / sizeof cmds[0] };
    const char *names[N_CMDS];
    for (size_t k = 0; k < N_CMDS; k++) {
        names[k] = cmds[k].name;
        if (!strcmp(argv[i], cmds[k].name)) {
            int rc = cmds[k].fn(&c, argc - i, argv + i);
            dlas_registry_free(c.reg);
            return rc;
        }
    }
    const char *near = dlas_nearest(argv[i], names, N_CMDS);
    fprintf(stderr, "dlas: unknown command '%s'%s%s%s (see 'dlas --help')\n", argv[i],
            near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    return EXIT_USAGE;
}
