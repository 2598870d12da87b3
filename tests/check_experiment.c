/* Experiments end to end: the quickstart runs and its CSV has the promised
 * columns; reruns resume; config mistakes are reported with file:line, the
 * key and a hint; a crashing plugin fails only its own point; the CLI's exit
 * codes hold. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dlas/dlas.h>

#include "testutil.h"

static char tmpdir[256];
static struct dlas_registry *reg;

static void setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "exp");
    reg = dlas_test_registry_at("check_experiment", getenv("DLAS_FIXTURES"));
    ck_assert_ptr_nonnull(reg);
}

static void teardown(void)
{
    dlas_registry_free(reg);
    dlas_test_rmtree(tmpdir);
}

static const char *write_cfg(const char *name, const char *text)
{
    return dlas_test_writef(dlas_test_path(tmpdir, name), "%s", text);
}

/* Load path and run it in this process, results in tmpdir; o keeps the
 * options for a rerun. */
static struct dlas_experiment *run_here(const char *path, struct dlas_run_options *o,
                                        struct dlas_run_summary *sum)
{
    dlas_run_options_default(o);
    o->output_dir = tmpdir;
    o->progress = 0;
    return dlas_test_experiment(path, reg, o, sum);
}

static const char *quickstart(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/examples/quickstart.cfg", getenv("DLAS_SRCDIR"));
    return path;
}

/* Index of a CSV header column (the header has no quoted fields). */
static int column(const char *header, const char *name)
{
    int idx = 0;
    const char *p = header;
    size_t n = strlen(name);
    for (;;) {
        if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\n' || !p[n]))
            return idx;
        p = strpbrk(p, ",\n");
        if (!p || *p == '\n')
            return -1;
        p++;
        idx++;
    }
}

/* Load an example from tmpdir, where the data folders it names (relative,
 * as "data/fmnist-5k") are made, empty, as a load refuses a dataset path
 * that does not exist. */
static int load_example(const char *path, struct dlas_experiment **e)
{
    for (int tries = 0; tries < 8; tries++) {
        int rc = dlas_experiment_load(path, reg, e);
        const char *m = dlas_last_error(), *q = rc ? strstr(m, "path '") : NULL;
        const char *end = q ? strstr(q + 6, "' does not exist") : NULL;
        if (!end || q[6] == '/' || strstr(q, ".."))
            return rc;
        char sub[1024];
        snprintf(sub, sizeof sub, "%.*s", (int)(end - q - 6), q + 6);
        for (char *c = sub; (c = strchr(c, '/')); c++) {
            *c = 0;
            mkdir(sub, 0700);
            *c = '/';
        }
        ck_assert_int_eq(mkdir(sub, 0700), 0);
    }
    return DLAS_ERR_INVALID;
}

/* Every experiment file in examples/ loads: its plugins and keys exist, its
 * values are in range, and it has points (none is run). */
START_TEST(examples_load)
{
    char dir_path[4096], cwd[4096];
    snprintf(dir_path, sizeof dir_path, "%s/examples", getenv("DLAS_SRCDIR"));
    DIR *d = opendir(dir_path);
    ck_assert_msg(d != NULL, "cannot open %s", dir_path);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".cfg"))
            continue;
        char path[16384]; /* absolute: the load runs in tmpdir */
        int w = snprintf(path, sizeof path, "%s%s%s/%s", dir_path[0] == '/' ? "" : cwd,
                         dir_path[0] == '/' ? "" : "/", dir_path, de->d_name);
        ck_assert(w > 0 && (size_t)w < sizeof path);
        struct dlas_experiment *e = NULL;
        const int rc = load_example(path, &e);
        if (rc && strstr(dlas_last_error(), "plugin named 'cuda") &&
            !dlas_registry_find(reg, DLAS_KIND_BACKEND, "cuda")) {
            /* a build without the CUDA plugins (the sanitized one) */
            printf("examples_load: %s left out: no CUDA plugins in this build\n", de->d_name);
            continue;
        }
        ck_assert_msg(rc == DLAS_OK, "%s: %s", de->d_name, dlas_last_error());
        ck_assert_msg(dlas_experiment_n_points(e) > 0, "%s: no points", de->d_name);
        dlas_experiment_free(e);
        n++;
    }
    closedir(d);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_ge(n, 10);
}
END_TEST

START_TEST(quickstart_runs_and_resumes)
{
    struct dlas_experiment *e;
    ck_assert_msg(dlas_experiment_load(quickstart(), reg, &e) == DLAS_OK, "%s", dlas_last_error());
    ck_assert_uint_eq(dlas_experiment_n_points(e), 6);
    ck_assert_str_eq(dlas_experiment_point_id(e, 0), "lenet/none/im2col/omp.threads=1/seed=1");
    ck_assert_str_eq(dlas_experiment_point_id(e, 3), "lenet/mag50/im2col/omp.threads=2/seed=1");
    struct dlas_run_options o;
    dlas_run_options_default(&o);
    o.output_dir = tmpdir;
    o.progress = 0;
    struct dlas_run_summary sum;
    ck_assert_msg(dlas_experiment_run(e, &o, &sum) == DLAS_OK, "%s", dlas_last_error());
    for (size_t i = 0; i < 6; i++)
        ck_assert_msg(!strcmp(dlas_experiment_result(e, i, "status"), "ok"), "%s: %s",
                      dlas_experiment_point_id(e, i), dlas_experiment_result(e, i, "error"));
    ck_assert_uint_eq(sum.ran, 6);
    ck_assert_uint_eq(sum.failed, 0);

    /* the compressor did its job and the metrics say so */
    double params = atof(dlas_experiment_result(e, 0, "params"));
    double nz50 = atof(dlas_experiment_result(e, 2, "nonzero_params"));
    double nz90 = atof(dlas_experiment_result(e, 4, "nonzero_params"));
    ck_assert_double_eq(params, 61706);
    ck_assert_double_eq_tol(nz50 / params, 0.5, 0.01);
    ck_assert_double_eq_tol(nz90 / params, 0.1, 0.01);
    ck_assert_str_eq(dlas_experiment_result(e, 1, "threads"), "2");
    ck_assert_double_lt(atof(dlas_experiment_result(e, 0, "max_rel_err_vs_ref")), 1e-4);
    ck_assert_double_gt(atof(dlas_experiment_result(e, 0, "latency_ms_median")), 0);
    /* the machine probe ran around the timing (a CPU backend) */
    ck_assert_double_gt(atof(dlas_experiment_result(e, 0, "probe_gflops_per_thread")), 0);
    /* two epochs of training take LeNet-5 far above chance (10%) */
    double top1 = atof(dlas_experiment_result(e, 0, "accuracy_top1"));
    ck_assert_msg(top1 > 0.75, "trained quickstart model at %.4f top-1", top1);

    char *csv = dlas_test_slurp(sum.csv_path, NULL);
    static const char *const need[] = {
        "cell_id", "model", "compressor", "compressor_settings", "params", "nonzero_params",
        "macs", "latency_ms_median", "latency_ms_min", "latency_ms_max", "primitive", "backend",
        "seed", "dlas_version", "git_revision", "cpu_model", "threads", "blas", "accuracy_top1",
        "probe_gflops_per_thread", "probe_wait_s"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        ck_assert_msg(column(csv, need[i]) >= 0, "results.csv lacks column %s", need[i]);
    int lines = 0;
    for (char *p = csv; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 7);
    ck_assert_ptr_nonnull(strstr(csv, "magnitude{sparsity=0.5"));
    free(csv);
    char *json = dlas_test_slurp(sum.json_path, NULL);
    ck_assert_ptr_nonnull(strstr(json, "\"cell_id\": \"lenet/mag90/im2col/omp.threads=2/seed=1\""));
    free(json);
    char *resolved = dlas_test_slurp(sum.config_path, NULL);
    ck_assert_ptr_nonnull(strstr(resolved, "scope = \"global\""));  /* a default, filled in */
    ck_assert_ptr_nonnull(strstr(resolved, "threads = [1, 2]"));
    free(resolved);

    /* a rerun skips everything */
    ck_assert_int_eq(dlas_experiment_run(e, &o, &sum), DLAS_OK);
    ck_assert_uint_eq(sum.skipped, 6);
    ck_assert_uint_eq(sum.ran, 0);
    ck_assert_str_eq(dlas_experiment_result(e, 5, "status"), "ok");
    dlas_experiment_free(e);
}
END_TEST

/* A minimal valid experiment, with one line replaceable. */
static const char *base_cfg(const char *extra_line)
{
    static char text[4096];
    snprintf(text, sizeof text,
             "experiment = { repeat = 2; warmup = 0; eval_samples = 8; };\n"    /* 1 */
             "dataset = { plugin = \"synthetic\"; train_size = 16; test_size = 8; };\n" /* 2 */
             "models = { lenet = { plugin = \"lenet5\"; }; };\n"               /* 3 */
             "compressors = { m = ( { plugin = \"magnitude\"; sparsity = 0.3; } ); };\n" /* 4 */
             "primitives = { im = { plugin = \"im2col-gemm\"; }; };\n"          /* 5 */
             "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n"   /* 6 */
             "%s\n",                                                          /* 7 */
             extra_line);
    return text;
}

static void expect_error(const char *text, const char *const *want)
{
    const char *path = write_cfg("bad.cfg", text);
    struct dlas_experiment *e = NULL;
    int rc = dlas_experiment_load(path, reg, &e);
    ck_assert_msg(rc != DLAS_OK, "config was accepted:\n%s", text);
    ck_assert_ptr_null(e);
    for (; *want; want++) {
        char w[1024];
        /* "@" stands for the file's path */
        if (!strncmp(*want, "@", 1))
            snprintf(w, sizeof w, "%s%s", path, *want + 1);
        else
            snprintf(w, sizeof w, "%s", *want);
        ck_assert_msg(strstr(dlas_last_error(), w) != NULL, "message '%s' lacks '%s'",
                      dlas_last_error(), w);
    }
}

START_TEST(base_config_is_valid)
{
    struct dlas_experiment *e;
    const char *path = write_cfg("ok.cfg", base_cfg(""));
    ck_assert_msg(dlas_experiment_load(path, reg, &e) == DLAS_OK, "%s", dlas_last_error());
    ck_assert_uint_eq(dlas_experiment_n_points(e), 1);
    dlas_experiment_free(e);
}
END_TEST

START_TEST(config_errors)
{
    expect_error(base_cfg("modles = { };"),
                 (const char *[]){"@:7", "unknown key 'modles'", "did you mean 'models'", NULL});
    expect_error("experiment = { repeat = 2; };\n"
                 "dataset = { plugin = \"synthetic\"; };\n"
                 "models = { lenet = { plugin = \"lenet5\"; }; };\n"
                 "compressors = { m = ( { plugin = \"magnitude\";\n"
                 "   sparsty = 0.3; } ); };\n"
                 "backends = { omp = { plugin = \"openmp\"; }; };\n",
                 (const char *[]){"@:5", "unknown key 'sparsty'", "did you mean 'sparsity'", NULL});
    expect_error(base_cfg("primitives2 = 1;"), (const char *[]){"@:7", "primitives2", NULL});
    expect_error(
        "dataset = { plugin = \"synthetic\"; };\nmodels = { l = { plugin = \"lenet5\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = \"two\"; }; };\n",
        (const char *[]){"@:3", "threads", NULL});
    expect_error(
        "dataset = { plugin = \"synthetic\"; };\nmodels = { l = { plugin = \"lenet5\"; }; };\n"
        "compressors = { m = ( { plugin = \"magnitude\"; sparsity = 1.5; } ); };\n"
        "backends = { omp = { plugin = \"openmp\"; }; };\n",
        (const char *[]){"@:3", "sparsity", "range", NULL});
    expect_error(
        "dataset = { plugin = \"synthetic\"; };\nmodels = { l = { plugin = \"lenet\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; }; };\n",
        (const char *[]){"@:2", "no model plugin named 'lenet'", "did you mean 'lenet5'", NULL});
    expect_error(
        "dataset = { plugin = \"synthetic\"; };\nmodels = { l = { plugin = \"lenet5\"; }; };\n"
        "compressors = { m = ( { plugin = \"magnitude\"; scope = \"globl\"; } ); };\n"
        "backends = { omp = { plugin = \"openmp\"; }; };\n",
        (const char *[]){"@:3", "scope", "did you mean 'global'", NULL});
    expect_error(base_cfg("sweep = { models = [\"lenett\"]; };"),
                 (const char *[]){"@:7", "lenett", "did you mean 'lenet'", NULL});
    expect_error(base_cfg("sweep = { model = [\"lenet\"]; };"),
                 (const char *[]){"@:7", "unknown key 'model'", "did you mean 'models'", NULL});
    expect_error(base_cfg("train = { epochs = -3; };"),
                 (const char *[]){"@:7", "epochs", "range", NULL});
    expect_error(base_cfg("train = { epohcs = 3; };"),
                 (const char *[]){"@:7", "did you mean 'epochs'", NULL});
    expect_error(base_cfg("experiment2 = { "), (const char *[]){"@:", "syntax error", NULL});
    expect_error("models = { l = { plugin = \"lenet5\"; }; };\n"
                 "backends = { omp = { plugin = \"openmp\"; }; };\n",
                 (const char *[]){"no 'dataset' group", NULL});
    expect_error(
        "experiment = { fallback = \"imm\"; };\n"
        "dataset = { plugin = \"synthetic\"; };\nmodels = { l = { plugin = \"lenet5\"; }; };\n"
        "primitives = { im = { plugin = \"im2col-gemm\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; }; };\n",
        (const char *[]){"@:1", "fallback", "did you mean 'im'", NULL});
    /* a file that does not exist */
    struct dlas_experiment *e = NULL;
    ck_assert_int_eq(dlas_experiment_load("/nonexistent/x.cfg", reg, &e), DLAS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "/nonexistent/x.cfg"));
}
END_TEST

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Values libconfig 1.5 would get wrong, and limits that must not drop work:
 * integers past 32 bits, an empty seed list, an @include of a directory, a
 * long chain, a large sweep. */
START_TEST(config_values_and_limits)
{
    expect_error(base_cfg("train = { epochs = 1; batch = 4294967297; };"),
                 (const char *[]){"@:7", "batch = 4294967297", "32-bit", "as 1", NULL});
    expect_error(base_cfg("train = { epochs = 1; batch = 4294967297L; };"),
                 (const char *[]){"@:7", "batch", "range", NULL});
    expect_error("experiment = {\n seeds = [4294967296]; };\n"
                 "dataset = { plugin = \"synthetic\"; };\n"
                 "models = { l = { plugin = \"lenet5\"; }; };\n"
                 "backends = { omp = { plugin = \"openmp\"; }; };\n",
                 (const char *[]){"@:2", "seeds = 4294967296", "as 0", NULL});
    expect_error("experiment = {\n seeds = [4294967296L]; };\n"
                 "dataset = { plugin = \"synthetic\"; };\n"
                 "models = { l = { plugin = \"lenet5\"; }; };\n"
                 "backends = { omp = { plugin = \"openmp\"; }; };\n",
                 (const char *[]){"@:2", "seeds", "out of range", NULL});
    expect_error(base_cfg("dummy = 0x100000001;"), (const char *[]){"@:7", "0x100000001", NULL});
    /* not integers: left alone (a float, a name with digits, a string) */
    struct dlas_experiment *e;
    const char *ok = write_cfg("ok.cfg", base_cfg("# 99999999999 in a comment\n"
                                                 "train = { lr = 5e-2; schedule = \"cosine\"; }; /* 99999999999 */"));
    ck_assert_msg(dlas_experiment_load(ok, reg, &e) == DLAS_OK, "%s", dlas_last_error());
    dlas_experiment_free(e);
    /* seeds = []: an error, not a run of nothing with exit status 0 */
    expect_error("experiment = {\n seeds = []; };\n"
                 "dataset = { plugin = \"synthetic\"; };\n"
                 "models = { l = { plugin = \"lenet5\"; }; };\n"
                 "backends = { omp = { plugin = \"openmp\"; }; };\n",
                 (const char *[]){"@", "seeds", "empty", NULL});
    /* an empty sweep list or an empty axis likewise */
    expect_error(base_cfg("sweep = { models = []; };"), (const char *[]){"@", "empty", NULL});
    expect_error("dataset = { plugin = \"synthetic\"; };\n"
                 "models = { l = { plugin = \"lenet5\"; }; };\n"
                 "backends = { omp = { plugin = \"openmp\"; threads = []; }; };\n",
                 (const char *[]){"@:3", "threads", NULL});
    /* @include of a directory: file and line, no exit() */
    char inc[4096 + 512]; /* base_cfg's text and the directory */
    snprintf(inc, sizeof inc, "%s\n@include \"%s\"\n", base_cfg(""), tmpdir);
    expect_error(inc, (const char *[]){"@:9", "is a directory", NULL});
    /* names libconfig would resolve to the including directory (empty, or cut
     * short by a NUL byte) or read differently (a line break, a backslash):
     * refused with file and line before libconfig's scanner can exit() */
    expect_error(base_cfg("@include \"\""), (const char *[]){"@:7", "include path is empty", NULL});
    expect_error(base_cfg("@include \"x\ny.cfg\""), (const char *[]){"@:7", "line break", NULL});
    expect_error(base_cfg("@include \"a\\\\b\""), (const char *[]){"@:7", "backslash", NULL});
    {
        /* `@include "<NUL>..."`: the fuzzer's reproducer, in short */
        static const char nul_inc[] = "@include \"\0\0x.cfg\"\n";
        const char *p = write_cfg("nul.cfg", "");
        FILE *f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(nul_inc, 1, sizeof nul_inc - 1, f);
        fclose(f);
        struct dlas_experiment *x = NULL;
        ck_assert_int_ne(dlas_experiment_load(p, reg, &x), DLAS_OK);
        ck_assert_ptr_null(x);
        ck_assert_msg(strstr(dlas_last_error(), "NUL byte") != NULL, "%s", dlas_last_error());
    }

    /* a chain of 80 steps keeps every step's sweep axis: the last step's two
     * values make two points */
    char *chain = malloc(1 << 16);
    int n = snprintf(chain, 1 << 16,
                     "dataset = { plugin = \"synthetic\"; };\n"
                     "models = { l = { plugin = \"lenet5\"; }; };\n"
                     "backends = { omp = { plugin = \"openmp\"; }; };\n"
                     "compressors = { long = (");
    for (int k = 0; k < 80; k++)
        n += snprintf(chain + n, (size_t)(1 << 16) - (size_t)n,
                      "%s{ plugin = \"magnitude\"; sparsity = %s; }", k ? ", " : "",
                      k == 79 ? "[0.1, 0.2]" : "0.1");
    snprintf(chain + n, (size_t)(1 << 16) - (size_t)n, "); };\n");
    const char *path = write_cfg("chain.cfg", chain);
    ck_assert_msg(dlas_experiment_load(path, reg, &e) == DLAS_OK, "%s", dlas_last_error());
    ck_assert_uint_eq(dlas_experiment_n_points(e), 2);
    dlas_experiment_free(e);

    /* 96,000 points validate in well under the test's time limit (the
     * duplicate-id check is a hash set), and a sweep past the cap is
     * refused with its size */
    snprintf(chain, 1 << 16,
             "experiment = { seeds = [%s]; };\n"
             "dataset = { plugin = \"synthetic\"; };\n"
             "models = { l = { plugin = \"lenet5\"; }; };\n"
             "backends = { omp = { plugin = \"openmp\"; threads = [1, 2, 3, 4, 5, 6, 7, 8]; }; };\n"
             "compressors = { m = ( { plugin = \"magnitude\"; sparsity = [0.1, 0.2, 0.3, 0.4, "
             "0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97]; } ); };\n",
             "SEEDS");
    char *seeds = malloc(1 << 16), *big = malloc(1 << 17);
    n = 0;
    for (int k = 0; k < 1000; k++)
        n += snprintf(seeds + n, (size_t)(1 << 16) - (size_t)n, "%s%d", k ? ", " : "", k + 1);
    char *at = strstr(chain, "SEEDS");
    snprintf(big, 1 << 17, "%.*s%s%s", (int)(at - chain), chain, seeds, at + 5);
    path = write_cfg("big.cfg", big);
    double t0 = now_s();
    ck_assert_msg(dlas_experiment_load(path, reg, &e) == DLAS_OK, "%s", dlas_last_error());
    ck_assert_uint_eq(dlas_experiment_n_points(e), 96000);
    dlas_experiment_free(e);
    fprintf(stderr, "96000 points validated in %.2f s\n", now_s() - t0);
    /* x 12 more: 1,152,000 points, past the cap */
    char *at2 = strstr(big, "threads = [");
    char big2[1 << 17];
    snprintf(big2, sizeof big2, "%.*sthreads = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, "
             "15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, "
             "36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, "
             "57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, "
             "78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96]%s",
             (int)(at2 - big), big, strchr(at2, ']') + 1);
    expect_error(big2, (const char *[]){"@", "more than 1000000 points", NULL});
    free(chain);
    free(seeds);
    free(big);
}
END_TEST

START_TEST(sweep_axes_and_seeds)
{
    const char *path = write_cfg(
        "sweep.cfg",
        "experiment = { seeds = [3, 4]; repeat = 1; warmup = 0; eval_samples = 4; };\n"
        "dataset = { plugin = \"synthetic\"; train_size = 8; test_size = 4; };\n"
        "models = { a = { plugin = \"lenet5\"; }; };\n"
        "compressors = { none = (); m = ( { plugin = \"magnitude\"; sparsity = [0.2, 0.4, 0.6]; } ); };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = [1, 2]; }; };\n");
    struct dlas_experiment *e;
    ck_assert_msg(dlas_experiment_load(path, reg, &e) == DLAS_OK, "%s", dlas_last_error());
    /* (none + 3 sparsities) x 2 threads x 2 seeds */
    ck_assert_uint_eq(dlas_experiment_n_points(e), 16);
    int found = 0;
    for (size_t i = 0; i < dlas_experiment_n_points(e); i++)
        found += !strcmp(dlas_experiment_point_id(e, i), "a/m.sparsity=0.4/ref/omp.threads=2/seed=4");
    ck_assert_int_eq(found, 1);
    dlas_experiment_free(e);
}
END_TEST

/* "auto" in sweep.primitives: one more point per cell, where the list puts
 * it, each conv layer on the fastest of the experiment's primitives that
 * takes it. A case with a known answer whatever the timings: Winograd takes
 * only the 3x3 stride-1 layers and pointwise only the 1x1 ones, so each
 * layer has one candidate at most, and the strided 3x3 layers run on the
 * core reference (no fallback). */
static const char *auto_cfg(const char *wino)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "experiment = { repeat = 3; warmup = 1; eval_samples = 4; batch = 2; };\n"
             "dataset = { plugin = \"synthetic\"; channels = 3; height = 16; width = 16; "
             "classes = 10; train_size = 8; test_size = 4; };\n"
             "models = { r = { plugin = \"resnet\"; depth = 8; }; };\n"
             "primitives = { wino = { plugin = \"winograd\"; %s }; pw = { plugin = \"pointwise\"; }; };\n"
             "backends = { omp = { plugin = \"openmp\"; threads = 2; }; };\n"
             "sweep = { primitives = [\"wino\", \"auto\", \"pw\"]; };\n",
             wino);
    return text;
}

START_TEST(auto_point)
{
    const char *path = write_cfg("auto.cfg", auto_cfg(""));
    struct dlas_run_options o;
    struct dlas_run_summary sum;
    struct dlas_experiment *e = run_here(path, &o, &sum);
    ck_assert_uint_eq(dlas_experiment_n_points(e), 3);
    ck_assert_str_eq(dlas_experiment_point_id(e, 0), "r/none/wino/omp/seed=1");
    ck_assert_str_eq(dlas_experiment_point_id(e, 1), "r/none/auto/omp/seed=1");
    ck_assert_str_eq(dlas_experiment_point_id(e, 2), "r/none/pw/omp/seed=1");
    for (size_t i = 0; i < 3; i++)
        ck_assert_msg(!strcmp(dlas_experiment_result(e, i, "status"), "ok"), "%s: %s",
                      dlas_experiment_point_id(e, i), dlas_experiment_result(e, i, "error"));
    ck_assert_str_eq(dlas_experiment_result(e, 1, "primitive"), "auto");
    ck_assert_str_eq(dlas_experiment_result(e, 1, "primitive_plugin"), "auto");
    ck_assert_str_eq(dlas_experiment_result(e, 1, "primitive_settings"), "candidates=wino,pw");
    ck_assert_str_eq(dlas_experiment_result(e, 1, "auto_layers"),
                     "conv1=wino;layer1.0.conv1=wino;layer1.0.conv2=wino;layer2.0.conv1=ref;"
                     "layer2.0.conv2=wino;layer2.0.downsample.0=pw;layer3.0.conv1=ref;"
                     "layer3.0.conv2=wino;layer3.0.downsample.0=pw");
    ck_assert_str_eq(dlas_experiment_result(e, 1, "auto_choice"), "wino 5 pw 2");
    ck_assert_str_eq(dlas_experiment_result(e, 1, "primitive_layers"), "7");
    ck_assert_str_eq(dlas_experiment_result(e, 1, "conv_layers"), "9");
    /* chosen by timing whole plans (at least min_runs of them) on the CPU */
    ck_assert_int_ge(atoi(dlas_experiment_result(e, 1, "auto_runs")), 5);
    ck_assert_double_lt(atof(dlas_experiment_result(e, 1, "max_rel_err_vs_ref")), 1e-4);
    ck_assert_double_gt(atof(dlas_experiment_result(e, 1, "latency_ms_median")), 0);
    /* the other points have no auto columns */
    ck_assert_str_eq(dlas_experiment_result(e, 0, "auto_layers"), "");

    /* the resolved config keeps "auto" where the sweep listed it */
    char resolved[4096];
    snprintf(resolved, sizeof resolved, "%s/resolved.cfg", tmpdir);
    struct dlas_experiment *r = NULL;
    ck_assert_msg(dlas_experiment_load(resolved, reg, &r) == DLAS_OK, "%s", dlas_last_error());
    ck_assert_uint_eq(dlas_experiment_n_points(r), 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_str_eq(dlas_experiment_point_id(r, i), dlas_experiment_point_id(e, i));
    dlas_experiment_free(r);
    dlas_experiment_free(e);

    /* a rerun does nothing; a candidate's new parameter reruns that
     * candidate and auto, which depends on it, and nothing else */
    e = run_here(path, &o, &sum);
    ck_assert_uint_eq(sum.ran, 0);
    ck_assert_uint_eq(sum.skipped, 3);
    dlas_experiment_free(e);
    e = run_here(write_cfg("auto2.cfg", auto_cfg("tile = 2;")), &o, &sum);
    ck_assert_uint_eq(sum.ran, 2);
    ck_assert_uint_eq(sum.skipped, 1);
    ck_assert_str_eq(dlas_experiment_result(e, 1, "status"), "ok");
    dlas_experiment_free(e);

    /* "auto" is the sweep's word: listed twice, with nothing to choose
     * from, or as an instance's name, it is refused with file and line */
    expect_error(base_cfg("sweep = { primitives = [\"auto\", \"im\", \"auto\"]; };"),
                 (const char *[]){"@:7", "'auto' twice", NULL});
    expect_error("dataset = { plugin = \"synthetic\"; };\n"
                 "models = { l = { plugin = \"lenet5\"; }; };\n"
                 "backends = { omp = { plugin = \"openmp\"; }; };\n"
                 "sweep = { primitives = [\"auto\"]; };\n",
                 (const char *[]){"@:4", "defines none", NULL});
    expect_error("dataset = { plugin = \"synthetic\"; };\n"
                 "models = { l = { plugin = \"lenet5\"; }; };\n"
                 "primitives = { im = { plugin = \"im2col-gemm\"; };\n"
                 "  auto = { plugin = \"direct\"; }; };\n"
                 "backends = { omp = { plugin = \"openmp\"; }; };\n",
                 (const char *[]){"@:4", "reserved", NULL});
}
END_TEST

START_TEST(crash_fails_only_its_point)
{
    const char *path = write_cfg(
        "crash.cfg",
        "experiment = { repeat = 1; warmup = 0; eval_samples = 4; };\n"
        "dataset = { plugin = \"synthetic\"; train_size = 8; test_size = 4; };\n"
        "models = { boom = { plugin = \"fx-crash\"; }; fine = { plugin = \"lenet5\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n");
    struct dlas_run_options o;
    struct dlas_run_summary sum;
    struct dlas_experiment *e = run_here(path, &o, &sum);
    ck_assert_uint_eq(sum.failed, 1);
    ck_assert_uint_eq(sum.ran, 1);
    ck_assert_str_eq(dlas_experiment_result(e, 0, "status"), "failed");
    ck_assert_msg(strstr(dlas_experiment_result(e, 0, "error"), "signal") ||
                      strstr(dlas_experiment_result(e, 0, "error"), "status"),
                  "%s", dlas_experiment_result(e, 0, "error"));
    ck_assert_str_eq(dlas_experiment_result(e, 1, "status"), "ok");
    /* the failed point is retried on resume, the good one is not */
    ck_assert_int_eq(dlas_experiment_run(e, &o, &sum), DLAS_OK);
    ck_assert_uint_eq(sum.skipped, 1);
    ck_assert_uint_eq(sum.failed, 1);
    dlas_experiment_free(e);
}
END_TEST

/* A point that hangs is killed at experiment.point_timeout and recorded
 * failed ("timed out after N s"); the sweep goes on. Without point_timeout,
 * a point that makes no progress for the auto limit is killed likewise. */
START_TEST(hang_times_out)
{
    const char *path = write_cfg(
        "hang.cfg",
        "experiment = { repeat = 1; warmup = 0; eval_samples = 4; point_timeout = 2; };\n"
        "dataset = { plugin = \"synthetic\"; train_size = 8; test_size = 4; };\n"
        "models = { stuck = { plugin = \"fx-hang\"; }; fine = { plugin = \"lenet5\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n");
    struct dlas_run_options o;
    struct dlas_run_summary sum;
    double t0 = now_s();
    struct dlas_experiment *e = run_here(path, &o, &sum);
    double took = now_s() - t0;
    ck_assert_uint_eq(sum.failed, 1);
    ck_assert_uint_eq(sum.ran, 1);
    ck_assert_str_eq(dlas_experiment_result(e, 0, "status"), "failed");
    ck_assert_str_eq(dlas_experiment_result(e, 0, "error"),
                     "timed out after 2 s (experiment.point_timeout)");
    ck_assert_str_eq(dlas_experiment_result(e, 1, "status"), "ok");
    ck_assert_msg(took < 60, "the sweep took %.1f s", took);
    dlas_experiment_free(e);

    /* auto: no point_timeout, a stall floor lowered for the test */
    path = write_cfg(
        "hang2.cfg",
        "experiment = { repeat = 1; warmup = 0; eval_samples = 4; };\n"
        "dataset = { plugin = \"synthetic\"; train_size = 8; test_size = 4; };\n"
        "models = { stuck = { plugin = \"fx-hang\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n");
    ck_assert_msg(dlas_experiment_load(path, reg, &e) == DLAS_OK, "%s", dlas_last_error());
    setenv("DLAS_POINT_STALL_MIN", "2", 1);
    o.output_dir = tmpdir;
    char out2[512];
    snprintf(out2, sizeof out2, "%s/auto", tmpdir);
    o.output_dir = out2;
    ck_assert_int_eq(dlas_experiment_run(e, &o, &sum), DLAS_OK);
    unsetenv("DLAS_POINT_STALL_MIN");
    ck_assert_uint_eq(sum.failed, 1);
    ck_assert_msg(strstr(dlas_experiment_result(e, 0, "error"), "no progress for"), "%s",
                  dlas_experiment_result(e, 0, "error"));
    dlas_experiment_free(e);
}
END_TEST

static int run_cli(const char *args, const char *out_must_have)
{
    char cmd[16384], out[512];
    snprintf(out, sizeof out, "%s/cli.out", tmpdir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > '%s' 2>&1", tmpdir, getenv("DLAS_BIN"), args, out);
    int st = system(cmd);
    ck_assert(WIFEXITED(st));
    if (out_must_have) {
        char *text = dlas_test_slurp(out, NULL);
        ck_assert_msg(strstr(text, out_must_have) != NULL, "'dlas %s' output lacks '%s':\n%s", args,
                      out_must_have, text);
        free(text);
    }
    return WEXITSTATUS(st);
}

START_TEST(cli_exit_codes)
{
    ck_assert_int_eq(run_cli("--version", "plugin ABI"), 0);
    ck_assert_int_eq(run_cli("--help", "usage: dlas"), 0);
    ck_assert_int_eq(run_cli("plugins", "im2col-gemm"), 0);
    ck_assert_int_eq(run_cli("plugins", "sparsity"), 0);
    ck_assert_int_eq(run_cli("plugins --kind backend", "openmp"), 0);
    ck_assert_int_eq(run_cli("plugins --kind backnd", "did you mean 'backend'"), 2);
    ck_assert_int_eq(run_cli("help magnitude", "sparsity"), 0);
    ck_assert_int_eq(run_cli("help magnitud", "did you mean 'magnitude'"), 2);
    ck_assert_int_eq(run_cli("frobnicate", "unknown command"), 2);
    ck_assert_int_eq(run_cli("runn", "did you mean 'run'"), 2);
    char args[8192];
    snprintf(args, sizeof args, "validate '%s'", quickstart());
    ck_assert_int_eq(run_cli(args, "6 points"), 0);
    snprintf(args, sizeof args, "run --dry-run '%s'", quickstart());
    ck_assert_int_eq(run_cli(args, "lenet/mag90/im2col/omp.threads=2/seed=1"), 0);
    const char *bad = write_cfg("bad.cfg", base_cfg("modles = 1;"));
    snprintf(args, sizeof args, "validate '%s'", bad);
    ck_assert_int_eq(run_cli(args, "did you mean 'models'"), 2);
    snprintf(args, sizeof args, "run '%s'", bad);
    ck_assert_int_eq(run_cli(args, ":7:"), 2);
    const char *good = write_cfg("good.cfg", base_cfg(""));
    snprintf(args, sizeof args, "run --no-progress -o out '%s'", good);
    ck_assert_int_eq(run_cli(args, "1 ran, 0 failed"), 0);
    ck_assert_int_eq(run_cli("plot out --y nonzero_params --minimise-y", "1 on the Pareto front"), 0);
    ck_assert_int_eq(run_cli("plot out --x no_such_column", "no ok rows"), 2);
    ck_assert_int_eq(run_cli("plot nowhere", "nowhere"), 2);
    snprintf(args, sizeof args, "--plugin-path '%s' run --no-progress -o out2 '%s'",
             getenv("DLAS_FIXTURES"),
             write_cfg("crash.cfg", "dataset = { plugin = \"synthetic\"; test_size = 4; };\n"
                                    "models = { boom = { plugin = \"fx-crash\"; }; };\n"
                                    "backends = { omp = { plugin = \"openmp\"; }; };\n"));
    ck_assert_int_eq(run_cli(args, "0 ran, 1 failed"), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("experiment");
    TCase *tc = dlas_test_case(s, "experiment", setup, teardown, 600);
    tcase_add_test(tc, quickstart_runs_and_resumes);
    tcase_add_test(tc, examples_load);
    tcase_add_test(tc, base_config_is_valid);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, sweep_axes_and_seeds);
    tcase_add_test(tc, auto_point);
    tcase_add_test(tc, crash_fails_only_its_point);
    tcase_add_test(tc, cli_exit_codes);
    /* Hardening: hostile or careless configs, hanging points. */
    tc = dlas_test_case(s, "limits", setup, teardown, 600);
    tcase_add_test(tc, config_values_and_limits);
    tcase_add_test(tc, hang_times_out);
    return dlas_test_run(s);
}
