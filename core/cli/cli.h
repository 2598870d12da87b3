/* The dlas command: shared declarations of its subcommands. */
#ifndef DLAS_CLI_H
#define DLAS_CLI_H

#include <dlas/dlas.h>

enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_USAGE = 2 };

struct cli {
    const char *plugin_path; /* --plugin-path */
    struct dlas_registry *reg;
    const char *device;      /* the backend's device ("cpu" when NULL): 'all' primitives */
};

/* Load plugins; reports and returns non-zero on a fatal discovery error. */
int cli_registry(struct cli *c);
int cli_error(const char *what); /* print dlas_last_error() to stderr, return EXIT_USAGE */
/* Send the library's log lines and progress to stderr (sinks.c). */
void cli_install_sinks(void);

int cmd_plugins(struct cli *c, int argc, char **argv);
int cmd_help(struct cli *c, int argc, char **argv);
int cmd_validate(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_plot(struct cli *c, int argc, char **argv);
int cmd_report(struct cli *c, int argc, char **argv);
int cmd_summary(struct cli *c, int argc, char **argv);
int cmd_checkpoint(struct cli *c, int argc, char **argv);

/* A model named on the command line (model_opts.c): --model NAME
 * [--input CxHxW] [--classes N] [--seed S] [key=value ...]. */
#define CLI_MODEL_SETS 64
struct cli_model {
    const char *name;
    int c, h, w, classes;
    unsigned long long seed;
    int n_sets;
    const char *sets[CLI_MODEL_SETS];
};
void cli_model_init(struct cli_model *m);
/* If argv[*i] is a model option, consume it (and its value) and return 1;
 * return 0 if it is not one, or EXIT_USAGE's negation after reporting. */
int cli_model_arg(struct cli_model *m, const char *cmd, int argc, char **argv, int *i);
extern const char cli_model_help[]; /* the options, for usage texts */
/* Build the model and initialise its weights as a run with this seed would;
 * reports failures and returns an exit status. */
int cli_model_build(struct cli *c, const struct cli_model *m, struct dlas_graph **out);

/* Primitives named on the command line (prim_opts.c), for compare and tune:
 * "NAME[:key=value[:key=value...]]", the whole spec being the label. */
#define CLI_MAX_PRIMS 32
struct cli_prims {
    int n;
    struct dlas_primitive_choice c[CLI_MAX_PRIMS];
    struct dlas_params *owned[CLI_MAX_PRIMS];
    char labels[CLI_MAX_PRIMS][128];
};
int cli_prim_parse(struct cli *c, const char *spec, struct cli_prims *p);
/* A comma-separated list, or "all": every cpu conv2d primitive found. */
int cli_prims_list(struct cli *c, const char *list, struct cli_prims *p);
int cli_prims_all(struct cli *c, struct cli_prims *p);
void cli_prims_free(struct cli_prims *p);
/* Append a primitive chosen elsewhere (an experiment), with a copy of its
 * settings. */
int cli_prims_copy(struct cli_prims *p, const char *label, const struct dlas_component *comp,
                   const struct dlas_params *params);
/* The experiment's primitives, as many as fit: what FILE means when no
 * --primitives is given. */
void cli_prims_from_experiment(const struct dlas_experiment *e, struct cli_prims *p);
/* Initialise backend `name` (default openmp) from base params (or its
 * defaults) with threads overridden when > 0. */
int cli_backend_init(struct cli *c, const char *name, const struct dlas_params *base,
                     int threads, const struct dlas_host *host, struct dlas_backend *be);

int cmd_compare(struct cli *c, int argc, char **argv);
int cmd_tune(struct cli *c, int argc, char **argv);

#endif
