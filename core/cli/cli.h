/* The dlas command: shared declarations of its subcommands. */
#ifndef DLAS_CLI_H
#define DLAS_CLI_H

#include <dlas/dlas.h>

enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_USAGE = 2 };

struct cli {
    const char *plugin_path; /* --plugin-path */
    struct dlas_registry *reg;
};

/* Load plugins; reports and returns non-zero on a fatal discovery error. */
int cli_registry(struct cli *c);
int cli_error(const char *what); /* print dlas_last_error() to stderr, return EXIT_USAGE */

int cmd_plugins(struct cli *c, int argc, char **argv);
int cmd_help(struct cli *c, int argc, char **argv);
int cmd_validate(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_plot(struct cli *c, int argc, char **argv);

#endif
