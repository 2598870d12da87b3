/* `dlas validate FILE` and `dlas run FILE`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_mpi.h"

static int load(struct cli *c, const char *file, struct dlas_experiment **e)
{
    int rc = cli_registry(c);
    if (rc)
        return rc;
    if (dlas_experiment_load(file, c->reg, e)) {
        fprintf(stderr, "dlas: %s\n", dlas_last_error());
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static void list_points(const struct dlas_experiment *e)
{
    size_t n = dlas_experiment_n_points(e);
    printf("%s: %zu point%s\n", dlas_experiment_name(e), n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
        printf("  %s\n", dlas_experiment_point_id(e, i));
}

int cmd_validate(struct cli *c, int argc, char **argv)
{
    int show_resolved = 0;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--resolved"))
            show_resolved = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: dlas validate FILE [--resolved]\n  Checks FILE against every "
                   "plugin's parameter specs and lists the points it expands to;\n  --resolved "
                   "prints the configuration with all defaults filled in.\n");
            return EXIT_OK;
        } else if (!file && argv[i][0] != '-')
            file = argv[i];
        else {
            fprintf(stderr, "dlas validate: unexpected argument '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!file) {
        fprintf(stderr, "usage: dlas validate FILE [--resolved]\n");
        return EXIT_USAGE;
    }
    struct dlas_experiment *e;
    int rc = load(c, file, &e);
    if (rc)
        return rc;
    if (show_resolved) {
        char *r = dlas_experiment_resolved(e);
        fputs(r ? r : "", stdout);
        free(r);
    } else {
        printf("%s: ok\n", file);
        list_points(e);
    }
    dlas_experiment_free(e);
    return EXIT_OK;
}

static const char *short_num(const char *v, char *buf, size_t len)
{
    double x = v && *v ? atof(v) : 0;
    if (!v || !*v)
        return "-";
    if (x >= 1e9)
        snprintf(buf, len, "%.2fG", x / 1e9);
    else if (x >= 1e6)
        snprintf(buf, len, "%.2fM", x / 1e6);
    else if (x >= 1e3)
        snprintf(buf, len, "%.1fk", x / 1e3);
    else
        snprintf(buf, len, "%s", v);
    return buf;
}

/* The points, each marked with what a run would do with it. */
static void dry_run(const struct dlas_experiment *e, const char *dir, int resume, int retry_noisy)
{
    struct dlas_results res;
    int have = dlas_results_open(&res, dir, DLAS_RESULTS_READONLY) == DLAS_OK;
    if (!have && dlas_last_status() != DLAS_ERR_NOTFOUND)
        fprintf(stderr, "dlas: warning: %s\n", dlas_last_error());
    size_t n = dlas_experiment_n_points(e), todo = 0;
    printf("%s: %zu point%s (results in %s)\n", dlas_experiment_name(e), n, n == 1 ? "" : "s", dir);
    for (size_t i = 0; i < n; i++) {
        const char *id = dlas_experiment_point_id(e, i);
        long k = have ? dlas_results_index(&res, id) : -1;
        const char *mark = "to run";
        if (k >= 0) {
            const char *st = dlas_results_get(&res, (size_t)k, "status");
            if (strcmp(dlas_results_get(&res, (size_t)k, "config_hash"),
                       dlas_experiment_point_hash(e, i)))
                mark = "to rerun (configuration changed)";
            else if (strcmp(st, "ok"))
                mark = "to rerun (failed before)";
            else if (!resume)
                mark = "to rerun (--no-resume)";
            else if (retry_noisy && !strcmp(dlas_results_get(&res, (size_t)k, "timing_noisy"), "1"))
                mark = "to rerun (noisy timing)";
            else
                mark = "done";
        }
        todo += strcmp(mark, "done") != 0;
        printf("  %-8s %s\n", !strcmp(mark, "done") ? "[done]" : "[ ]", id);
        if (strcmp(mark, "done") && strcmp(mark, "to run"))
            printf("           %s\n", mark);
    }
    printf("%zu to run, %zu already done\n", todo, n - todo);
    if (have)
        dlas_results_close(&res);
}

static void summary_table(const struct dlas_experiment *e)
{
    size_t n = dlas_experiment_n_points(e);
    size_t w = 7;
    for (size_t i = 0; i < n; i++)
        if (strlen(dlas_experiment_point_id(e, i)) > w)
            w = strlen(dlas_experiment_point_id(e, i));
    printf("\n%-*s  %-6s %9s %9s %8s %7s %9s %17s\n", (int)w, "point", "status", "params",
           "nonzero", "MACs", "top1", "ms(med)", "ms(min..max)");
    for (size_t i = 0; i < n; i++) {
        char a[32], b[32], m[32], range[48];
        const char *st = dlas_experiment_result(e, i, "status");
        const char *acc = dlas_experiment_result(e, i, "accuracy_top1");
        const char *lo = dlas_experiment_result(e, i, "latency_ms_min");
        const char *hi = dlas_experiment_result(e, i, "latency_ms_max");
        const char *med = dlas_experiment_result(e, i, "latency_ms_median");
        char medb[32] = "-";
        if (*lo && *hi)
            snprintf(range, sizeof range, "%.3f..%.3f", atof(lo), atof(hi));
        else
            snprintf(range, sizeof range, "-");
        if (*med)
            snprintf(medb, sizeof medb, "%.3f", atof(med));
        char accb[16] = "-";
        if (*acc)
            snprintf(accb, sizeof accb, "%.2f%%", 100 * atof(acc));
        printf("%-*s  %-6s %9s %9s %8s %7s %9s %17s\n", (int)w, dlas_experiment_point_id(e, i),
               *st ? st : "-", short_num(dlas_experiment_result(e, i, "params"), a, sizeof a),
               short_num(dlas_experiment_result(e, i, "nonzero_params"), b, sizeof b),
               short_num(dlas_experiment_result(e, i, "macs"), m, sizeof m), accb,
               medb, range);
        if (*st && strcmp(st, "ok"))
            printf("%-*s    error: %s\n", (int)w, "", dlas_experiment_result(e, i, "error"));
    }
}

static int dry_run_file(struct cli *c, const char *file, const struct dlas_run_options *o)
{
    int rank, size;
    if (cli_launched(&rank, &size) && rank > 0)
        return EXIT_OK; /* under mpirun: rank 0 lists them */
    struct dlas_experiment *e;
    int rc = load(c, file, &e);
    if (rc)
        return rc;
    dry_run(e, o->output_dir ? o->output_dir : dlas_experiment_output_dir(e), o->resume,
            o->retry_noisy);
    dlas_experiment_free(e);
    return EXIT_OK;
}

/* Run the sweep: here, or (rank 0 of an MPI job) by handing points to the
 * other ranks, or (the other ranks) running what rank 0 hands out. */
static int run_file(struct cli *c, const char *file, struct dlas_run_options *o,
                    struct cli_mpi *mpi)
{
    struct dlas_experiment *e = NULL;
    int rc = load(c, file, &e);
    /* every rank loaded it, or all stop: none waits for another */
    int all = cli_mpi_agree(mpi, rc);
    if (rc || all) {
        if (!rc && mpi->rank == 0)
            fprintf(stderr, "dlas: another rank could not load %s\n", file);
        dlas_experiment_free(e);
        return rc ? rc : all;
    }
    if (mpi->rank > 0) {
        rc = cli_mpi_work(mpi, e, o);
        dlas_experiment_free(e);
        return rc;
    }
    o->dispatch = cli_mpi_dispatch(mpi);
    if (o->dispatch)
        dlas_log(DLAS_LOG_INFO, "%zu points over %d ranks (rank 0 hands them out and writes "
                 "the results)", dlas_experiment_n_points(e), mpi->size - 1);
    struct dlas_run_summary sum;
    if (dlas_experiment_run(e, o, &sum)) {
        fprintf(stderr, "dlas: %s\n", dlas_last_error());
        dlas_experiment_free(e);
        return EXIT_RUN_FAILED;
    }
    summary_table(e);
    printf("\n%zu ran, %zu failed, %zu already done", sum.ran, sum.failed, sum.skipped);
    if (sum.unavailable)
        printf(", %zu unavailable (hardware missing: see the error column)", sum.unavailable);
    printf("\nresults: %s\n         %s\nconfig:  %s\n", sum.csv_path, sum.json_path,
           sum.config_path);
    dlas_experiment_free(e);
    return sum.failed ? EXIT_RUN_FAILED : EXIT_OK;
}

int cmd_run(struct cli *c, int argc, char **argv)
{
    struct dlas_run_options o;
    dlas_run_options_default(&o);
    int dry = 0;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dry-run"))
            dry = 1;
        else if (!strcmp(a, "--no-resume"))
            o.resume = 0;
        else if (!strcmp(a, "--no-isolate"))
            o.isolate = 0;
        else if (!strcmp(a, "--isolate"))
            o.isolate = 1;
        else if (!strcmp(a, "--progress"))
            o.progress = 1;
        else if (!strcmp(a, "--no-progress"))
            o.progress = 0;
        else if (!strcmp(a, "--retry-noisy"))
            o.retry_noisy = 1;
        else if (!strcmp(a, "--rebuild-results"))
            o.rebuild_results = 1;
        else if ((!strcmp(a, "--output") || !strcmp(a, "-o")) && i + 1 < argc)
            o.output_dir = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: dlas run FILE [options]\n"
                   "  Runs every point of the experiment in FILE and writes results.csv,\n"
                   "  results.json and resolved.cfg to its output directory, appending each\n"
                   "  point as it ends. Rerunning skips points already done with the same\n"
                   "  configuration. sweep.primitives may list \"auto\": a point whose plan puts\n"
                   "  each conv layer on the fastest of the experiment's primitives, measured\n"
                   "  (its row's auto_choice and auto_layers say which).\n\n"
                   "  --dry-run       list the expanded points, marking those already done\n"
                   "  --retry-noisy   rerun finished points whose timing was flagged noisy\n"
                   "                  (timing_noisy = 1: their spread, the FMA rate probed\n"
                   "                  around them, or their threads' distance (a cache line's\n"
                   "                  round trip, probe_line_ns) says the machine was busy or\n"
                   "                  not all there);\n"
                   "                  the whole point reruns: trained models come from the model\n"
                   "                  cache, compressors run again\n"
                   "  -o, --output D  write results to D instead of experiment.output.dir\n"
                   "  --no-resume     rerun points that are already in the results\n"
                   "  --rebuild-results  results files that do not parse are refused; this keeps\n"
                   "                  the rows that parse (damaged files are kept as *.damaged)\n"
                   "  --no-isolate    run points in this process (debugging; a crash ends the run)\n"
                   "  --progress / --no-progress   force the progress bar on or off (default: a bar\n"
                   "                  on a TTY, otherwise one line per point with an ETA)\n\n"
                   "  Under MPI (mpirun -n K dlas run FILE, or srun --mpi=pmix), rank 0 hands the\n"
                   "  points out one at a time and writes every row; ranks 1..K-1 run them, each on\n"
                   "  its share of its node's cores. The output directory must be on a file system\n"
                   "  all ranks see (the model cache is there). Without MPI the same command runs\n"
                   "  here.\n");
            return EXIT_OK;
        } else if (!file && a[0] != '-')
            file = a;
        else {
            fprintf(stderr, "dlas run: unexpected argument '%s' (see 'dlas run --help')\n", a);
            return EXIT_USAGE;
        }
    }
    if (!file) {
        fprintf(stderr, "usage: dlas run FILE [options] (see 'dlas run --help')\n");
        return EXIT_USAGE;
    }
    if (dry)
        return dry_run_file(c, file, &o);
    struct cli_mpi mpi;
    int leave = 0;
    int rc = cli_mpi_start(&mpi, &leave);
    if (!rc && !leave)
        rc = run_file(c, file, &o, &mpi);
    cli_mpi_end(&mpi);
    return rc;
}
