/* Result files: tidy columns (one per swept parameter and per reported
 * figure, ratios against the dense baseline), CSV and JSON holding the same
 * rows and fields after a resume, damaged files refused with file and line
 * and left untouched, --rebuild-results keeping what parses, and a full disk
 * changing neither file. */
#define _GNU_SOURCE /* sched_setaffinity: the round trip on one CPU */
#include <check.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dlas/dlas.h>

#include "exp_probe.h"
#include "exp_timing.h" /* compiled in: internal */
#include "testutil.h"

static char tmpdir[256];
static struct dlas_registry *reg;

static void setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "res");
    reg = dlas_test_registry("check_results");
    ck_assert_ptr_nonnull(reg);
}

static void teardown(void)
{
    dlas_registry_free(reg);
    dlas_test_rmtree(tmpdir);
}

static const char *path_in(const char *name)
{
    return dlas_test_path(tmpdir, name);
}

static const char *cfg_text(const char *sparsities)
{
    static char t[2048];
    snprintf(t, sizeof t,
             "experiment = { name = \"tidy\"; repeat = 3; warmup = 0; eval_samples = 8; };\n"
             "dataset = { plugin = \"synthetic\"; train_size = 8; test_size = 8; };\n"
             "models = { lenet = { plugin = \"lenet5\"; }; };\n"
             "compressors = { none = (); mag = ( { plugin = \"magnitude\"; sparsity = %s; } ); };\n"
             "primitives = { im = { plugin = \"im2col-gemm\"; }; wino = { plugin = \"winograd\"; }; };\n"
             "backends = { omp = { plugin = \"openmp\"; threads = [1, 2]; }; };\n",
             sparsities);
    return t;
}

/* text written to the file name in tmpdir and run in this process with r's
 * plugins, results to the folder out */
static struct dlas_experiment *run_text(struct dlas_registry *r, const char *name,
                                        const char *text, const char *out,
                                        struct dlas_run_summary *sum)
{
    const char *cfg = path_in(name);
    dlas_test_spit(cfg, text, strlen(text));
    struct dlas_run_options o;
    dlas_run_options_default(&o);
    o.output_dir = out;
    o.progress = 0;
    o.isolate = 0;
    return dlas_test_experiment(cfg, r, &o, sum);
}

static struct dlas_experiment *run_cfg(const char *text, const char *out)
{
    struct dlas_run_summary sum;
    struct dlas_experiment *e = run_text(reg, "t.cfg", text, out, &sum);
    ck_assert_uint_eq(sum.failed, 0);
    return e;
}

static long find(const struct dlas_results *r, const char *id)
{
    long i = dlas_results_index(r, id);
    ck_assert_msg(i >= 0, "no row %s", id);
    return i;
}

START_TEST(tidy_columns_and_dense_ratios)
{
    const char *out = path_in("out");
    dlas_experiment_free(run_cfg(cfg_text("[0.5, 0.9]"), out));
    struct dlas_results r;
    ck_assert_msg(dlas_results_open(&r, out, DLAS_RESULTS_READONLY) == DLAS_OK, "%s",
                  dlas_last_error());
    ck_assert_uint_eq(r.n, 12);
    long m5 = find(&r, "lenet/mag.sparsity=0.5/im/omp.threads=2/seed=1");
    long m9 = find(&r, "lenet/mag.sparsity=0.9/im/omp.threads=1/seed=1");
    long d2 = find(&r, "lenet/none/im/omp.threads=2/seed=1");
    /* every swept parameter its own column, as plain data */
    ck_assert_str_eq(dlas_results_get(&r, m5, "compressor.mag.sparsity"), "0.5");
    ck_assert_str_eq(dlas_results_get(&r, m5, "backend.omp.threads"), "2");
    ck_assert_str_eq(dlas_results_get(&r, m9, "compressor.mag.sparsity"), "0.9");
    ck_assert_str_eq(dlas_results_get(&r, d2, "compressor.mag.sparsity"), "");
    /* a compressor's figures are columns, not "k=v; k=v" */
    ck_assert_double_eq_tol(atof(dlas_results_get(&r, m9, "magnitude.sparsity_achieved")), 0.9,
                            0.01);
    for (size_t c = 0; c < r.ncols; c++)
        ck_assert_msg(strcmp(r.cols[c], "report"), "a 'report' column of k=v strings");
    /* ratios against the same point without compression */
    ck_assert_str_eq(dlas_results_get(&r, m5, "baseline_id"), "lenet/none/im/omp.threads=2/seed=1");
    double nz_d = atof(dlas_results_get(&r, d2, "nonzero_params"));
    double nz_m = atof(dlas_results_get(&r, m5, "nonzero_params"));
    ck_assert_double_eq_tol(atof(dlas_results_get(&r, m5, "compression_vs_dense")), nz_d / nz_m,
                            1e-4 * nz_d / nz_m);
    double lat_d = atof(dlas_results_get(&r, d2, "latency_ms_median"));
    double lat_m = atof(dlas_results_get(&r, m5, "latency_ms_median"));
    ck_assert_double_eq_tol(atof(dlas_results_get(&r, m5, "speedup_vs_dense")), lat_d / lat_m,
                            1e-4 * lat_d / lat_m);
    ck_assert_str_eq(dlas_results_get(&r, d2, "speedup_vs_dense"), "1");
    /* LeNet-5's convolutions are 5x5: Winograd F(m,3) runs none of them, and
     * the row says so rather than passing the fallback's time off as its own */
    long w = find(&r, "lenet/none/wino/omp.threads=1/seed=1");
    ck_assert_str_eq(dlas_results_get(&r, w, "primitive_layers"), "0");
    ck_assert_str_eq(dlas_results_get(&r, w, "conv_layers"), "2");
    ck_assert_str_eq(dlas_results_get(&r, d2, "primitive_layers"), "2");
    /* the timing's own figures */
    ck_assert(atof(dlas_results_get(&r, d2, "latency_ms_q1")) <= lat_d);
    ck_assert(atof(dlas_results_get(&r, d2, "latency_ms_q3")) >= lat_d);
    ck_assert_msg(strchr("01", dlas_results_get(&r, d2, "timing_noisy")[0]), "timing_noisy");
    ck_assert_str_ne(dlas_results_get(&r, d2, "load_avg_1m"), "");
    dlas_results_close(&r);
}
END_TEST

/* Resume with one more point: the JSON rows of earlier points keep every
 * field, and CSV and JSON name the same fields for every row. */
START_TEST(resume_keeps_fields_in_both_files)
{
    const char *out = path_in("out");
    dlas_experiment_free(run_cfg(cfg_text("[0.5]"), out));
    char *json1 = dlas_test_slurp(path_in("out/results.json"), NULL);
    ck_assert_ptr_nonnull(strstr(json1, "\"magnitude.sparsity_achieved\": 0.5"));
    dlas_experiment_free(run_cfg(cfg_text("[0.5, 0.75]"), out));
    char *json2 = dlas_test_slurp(path_in("out/results.json"), NULL);
    /* the four magnitude points of the first run kept their reported figures */
    int n = 0;
    for (const char *p = json2; (p = strstr(p, "\"magnitude.sparsity_achieved\": 0.5")); p++)
        n++;
    ck_assert_int_eq(n, 4);
    struct dlas_results r;
    ck_assert_int_eq(dlas_results_open(&r, out, DLAS_RESULTS_READONLY), DLAS_OK);
    ck_assert_uint_eq(r.n, 12);
    /* every JSON row has every CSV column (the reader checks they agree) */
    for (size_t c = 0; c < r.ncols; c++) {
        char key[600];
        snprintf(key, sizeof key, "\"%s\": ", r.cols[c]);
        size_t k = 0;
        for (const char *p = json2; (p = strstr(p, key)); p++)
            k++;
        ck_assert_msg(k == r.n, "JSON field %s in %zu of %zu rows", r.cols[c], k, r.n);
    }
    dlas_results_close(&r);
    free(json1);
    free(json2);
}
END_TEST

static void write_pair(const char *dir, int nrows)
{
    struct dlas_results r;
    ck_assert_int_eq(dlas_results_open(&r, dir, 0), DLAS_OK);
    for (int i = 0; i < nrows; i++) {
        struct dlas_row row = {0};
        dlas_row_set(&row, "experiment", "x");
        dlas_row_setf(&row, "cell_id", "m/none/p/b/seed=%d", i + 1);
        dlas_row_set(&row, "config_hash", "00ff");
        dlas_row_set(&row, "status", "ok");
        dlas_row_set(&row, "model", "m");
        dlas_row_set(&row, "compressor", "none");
        dlas_row_set(&row, "primitive", "p");
        dlas_row_set(&row, "backend", "b");
        dlas_row_setf(&row, "seed", "%d", i + 1);
        dlas_row_setf(&row, "accuracy_top1", "0.%d5", i + 1);
        dlas_row_set(&row, "note", "a, \"quoted\"\nvalue");
        ck_assert_int_eq(dlas_results_add(&r, &row), DLAS_OK);
        dlas_row_free(&row);
    }
    dlas_results_close(&r);
}

/* Open must fail naming `where`, and leave both files byte for byte. */
static void expect_refused(const char *dir, const char *where)
{
    size_t lc, lj, lc2, lj2;
    char csvp[600], jsonp[600];
    snprintf(csvp, sizeof csvp, "%s/results.csv", dir);
    snprintf(jsonp, sizeof jsonp, "%s/results.json", dir);
    char *c1 = dlas_test_slurp(csvp, &lc), *j1 = dlas_test_slurp(jsonp, &lj);
    struct dlas_results r;
    int rc = dlas_results_open(&r, dir, 0);
    ck_assert_int_eq(rc, DLAS_ERR_CORRUPT);
    ck_assert_msg(strstr(dlas_last_error(), where), "'%s' lacks '%s'", dlas_last_error(), where);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "--rebuild-results"));
    dlas_results_close(&r);
    char *c2 = dlas_test_slurp(csvp, &lc2), *j2 = dlas_test_slurp(jsonp, &lj2);
    ck_assert_msg(lc == lc2 && !memcmp(c1, c2, lc), "results.csv was changed");
    ck_assert_msg(lj == lj2 && !memcmp(j1, j2, lj), "results.json was changed");
    free(c1);
    free(c2);
    free(j1);
    free(j2);
}

static void rebuild_keeps(const char *dir, size_t want)
{
    struct dlas_results r;
    ck_assert_msg(dlas_results_open(&r, dir, DLAS_RESULTS_REBUILD) == DLAS_OK, "%s",
                  dlas_last_error());
    ck_assert_uint_eq(r.n, want);
    ck_assert_str_eq(dlas_results_get(&r, 0, "note"), "a, \"quoted\"\nvalue");
    dlas_results_close(&r);
    ck_assert_int_eq(dlas_results_open(&r, dir, 0), DLAS_OK); /* clean again */
    ck_assert_uint_eq(r.n, want);
    dlas_results_close(&r);
    char kept[600];
    snprintf(kept, sizeof kept, "%s/results.csv.damaged", dir);
    ck_assert_int_eq(access(kept, F_OK), 0);
}

START_TEST(renamed_header_cell_refused)
{
    const char *dir = path_in("h");
    write_pair(dir, 3);
    size_t n;
    char *csv = dlas_test_slurp(path_in("h/results.csv"), &n);
    char *p = strstr(csv, "accuracy_top1");
    memcpy(p, "accuracy_xxx1", 13);
    dlas_test_spit(path_in("h/results.csv"), csv, n);
    expect_refused(dir, "results.csv:1: the header has no column 'accuracy_top1'");
    p = strstr(csv, "cell_id");
    memcpy(p, "cell_ix", 7);
    dlas_test_spit(path_in("h/results.csv"), csv, n);
    expect_refused(dir, "results.csv:1: header has no column 'cell_id'");
    rebuild_keeps(dir, 3); /* every row is still whole in the JSON */
    free(csv);
}
END_TEST

START_TEST(nul_byte_refused_with_line)
{
    const char *dir = path_in("z");
    write_pair(dir, 4);
    size_t n;
    char *csv = dlas_test_slurp(path_in("z/results.csv"), &n);
    /* the third record starts on line 6 (line 1 header, two-line records) */
    char *p = strstr(csv, "m/none/p/b/seed=3");
    ck_assert_ptr_nonnull(p);
    p[3] = '\0';
    dlas_test_spit(path_in("z/results.csv"), csv, n);
    expect_refused(dir, "results.csv:6: a NUL byte");
    free(csv);
}
END_TEST

/* results.csv / results.json that are not regular files, or are huge, are
 * refused before anything is read or allocated: a FIFO would block the
 * reader forever (alarm: a hang fails the test), a sparse file of more than
 * DLAS_READ_FILE_MAX bytes would be read whole into memory (the message says
 * it was refused by its size, before reading). */
START_TEST(fifo_and_huge_results_refused)
{
    const char *dir = path_in("fifo");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(mkfifo(path_in("fifo/results.csv"), 0600), 0);
    struct dlas_results r;
    alarm(20);
    ck_assert_int_ne(dlas_results_open(&r, dir, DLAS_RESULTS_READONLY), DLAS_OK);
    alarm(0);
    ck_assert_msg(strstr(dlas_last_error(), "results.csv: is a FIFO"), "%s", dlas_last_error());

    dir = path_in("huge");
    write_pair(dir, 2);
    int fd = open(path_in("huge/results.json"), O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, ((off_t)1 << 30) + 1), 0); /* sparse: no disk used */
    close(fd);
    ck_assert_int_ne(dlas_results_open(&r, dir, DLAS_RESULTS_READONLY), DLAS_OK);
    ck_assert_msg(strstr(dlas_last_error(), "results.json: 1073741825 bytes, more than"), "%s",
                  dlas_last_error());
}
END_TEST

START_TEST(corrupt_json_refused_and_rebuilt)
{
    const char *dir = path_in("j");
    write_pair(dir, 4);
    size_t n;
    char *json = dlas_test_slurp(path_in("j/results.json"), &n);
    char *p = strstr(json, "\"m/none/p/b/seed=2\"");
    ck_assert_ptr_nonnull(p);
    p[0] = '{'; /* no longer a string */
    dlas_test_spit(path_in("j/results.json"), json, n);
    expect_refused(dir, "results.json:3: ");
    /* the CSV still has all four rows */
    rebuild_keeps(dir, 4);
    /* a truncated JSON is refused too */
    json = (free(json), dlas_test_slurp(path_in("j/results.json"), &n));
    dlas_test_spit(path_in("j/results.json"), json, n / 2);
    expect_refused(dir, "results.json:");
    /* a row dropped from one file */
    char *csv = dlas_test_slurp(path_in("j/results.csv"), &n);
    dlas_test_spit(path_in("j/results.json"), json, strlen(json));
    char *last = strstr(csv, "m/none/p/b/seed=4");
    while (last > csv && last[-1] != '\n')
        last--;
    dlas_test_spit(path_in("j/results.csv"), csv, (size_t)(last - csv));
    expect_refused(dir, "has 3 rows but");
    free(csv);
    free(json);
}
END_TEST

START_TEST(short_record_refused)
{
    const char *dir = path_in("s");
    write_pair(dir, 2);
    size_t n;
    char *csv = dlas_test_slurp(path_in("s/results.csv"), &n);
    char *p = strstr(csv, ",0.15,");
    memmove(p, p + 5, strlen(p + 5) + 1); /* one field fewer in record 1 */
    dlas_test_spit(path_in("s/results.csv"), csv, strlen(csv));
    expect_refused(dir, "results.csv:2: record has");
    free(csv);
}
END_TEST

/* A write that fails part-way (here: the file-size limit, as a full disk
 * would) leaves both files as they were, holding the same rows. */
START_TEST(full_disk_changes_neither_file)
{
    const char *dir = path_in("d");
    write_pair(dir, 3);
    size_t lc, lj;
    char *c1 = dlas_test_slurp(path_in("d/results.csv"), &lc), *j1 = dlas_test_slurp(path_in("d/results.json"), &lj);
    pid_t pid = fork();
    if (pid == 0) {
        /* the child frees what it owns before _exit: under valgrind (make
         * check-valgrind) its leaks would change its exit status */
        free(c1);
        free(j1);
        signal(SIGXFSZ, SIG_IGN);
        struct dlas_results r;
        if (dlas_results_open(&r, dir, 0))
            _exit(3);
        /* room for a bigger CSV but not a bigger JSON */
        struct rlimit lim = {(rlim_t)(lj + 10), (rlim_t)(lj + 10)};
        setrlimit(RLIMIT_FSIZE, &lim);
        struct dlas_row row = {0};
        dlas_row_set(&row, "cell_id", "m/none/p/b/seed=9");
        dlas_row_set(&row, "status", "ok");
        int rc = dlas_results_add(&r, &row);
        dlas_row_free(&row);
        dlas_results_close(&r);
        _exit(rc == DLAS_ERR_IO ? 0 : 4);
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    size_t lc2, lj2;
    char *c2 = dlas_test_slurp(path_in("d/results.csv"), &lc2), *j2 = dlas_test_slurp(path_in("d/results.json"), &lj2);
    ck_assert(lc == lc2 && !memcmp(c1, c2, lc));
    ck_assert(lj == lj2 && !memcmp(j1, j2, lj));
    struct dlas_results r;
    ck_assert_int_eq(dlas_results_open(&r, dir, 0), DLAS_OK);
    ck_assert_uint_eq(r.n, 3);
    dlas_results_close(&r);
    /* no temporary file left behind */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", dir);
    ck_assert_int_ne(system(cmd), 0);
    free(c1);
    free(c2);
    free(j1);
    free(j2);
}
END_TEST

/* A writer stopped between renaming results.json and results.csv leaves the
 * new JSON, the old CSV (or none) and the new CSV under its temporary name:
 * opening finishes the write (read-only opening only reads it); a temporary
 * that does not agree with the JSON changes nothing. */
START_TEST(write_stopped_between_renames_is_finished)
{
    const char *dir = path_in("k");
    write_pair(dir, 2);
    size_t lold, lnew;
    char *old = dlas_test_slurp(path_in("k/results.csv"), &lold);
    write_pair(dir, 3); /* rows 1..3: the write that was stopped */
    char *new = dlas_test_slurp(path_in("k/results.csv"), &lnew);
    dlas_test_spit(path_in("k/results.csv.tmp.424242"), new, lnew);
    dlas_test_spit(path_in("k/results.csv"), old, lold);
    /* a stale temporary of another write, which agrees with nothing */
    dlas_test_spit(path_in("k/results.csv.tmp.7"), old, lold);
    struct dlas_results r;
    ck_assert_msg(dlas_results_open(&r, dir, DLAS_RESULTS_READONLY) == DLAS_OK, "%s",
                  dlas_last_error());
    ck_assert_uint_eq(r.n, 3);
    dlas_results_close(&r);
    ck_assert_int_eq(access(path_in("k/results.csv.tmp.424242"), F_OK), 0);
    ck_assert_msg(dlas_results_open(&r, dir, 0) == DLAS_OK, "%s", dlas_last_error());
    ck_assert_uint_eq(r.n, 3);
    dlas_results_close(&r);
    ck_assert_int_ne(access(path_in("k/results.csv.tmp.424242"), F_OK), 0);
    size_t l;
    char *now = dlas_test_slurp(path_in("k/results.csv"), &l);
    ck_assert(l == lnew && !memcmp(now, new, l));
    free(now);

    /* the first row's write: no CSV before it */
    unlink(path_in("k/results.csv"));
    dlas_test_spit(path_in("k/results.csv.tmp.5"), new, lnew);
    ck_assert_msg(dlas_results_open(&r, dir, 0) == DLAS_OK, "%s", dlas_last_error());
    ck_assert_uint_eq(r.n, 3);
    dlas_results_close(&r);

    /* only temporaries that disagree with the JSON: refused, nothing changed */
    dlas_test_spit(path_in("k/results.csv"), old, lold);
    expect_refused(dir, "has 2 rows");

    /* a damaged JSON finishes nothing, whatever temporary lies beside it:
     * here one that holds only the header, as many rows as the JSON's
     * parsed part, which must not replace the CSV */
    unlink(path_in("k/results.csv.tmp.7"));
    dlas_test_spit(path_in("k/results.csv"), new, lnew);
    dlas_test_spit(path_in("k/results.csv.tmp.9"), new, (size_t)(strchr(new, '\n') - new + 1));
    char *json = dlas_test_slurp(path_in("k/results.json"), &l);
    dlas_test_spit(path_in("k/results.json"), "[{\"cell_id\"", 12);
    expect_refused(dir, "results.json");
    dlas_test_spit(path_in("k/results.json"), json, l);
    free(json);
    free(old);
    free(new);
}
END_TEST

/* Weights out and in: every point keeps its compressed model, and a model
 * started from one of them has its pruned weights (masks included); a
 * missing weights file is a configuration error with file and line. */
START_TEST(weights_out_and_in)
{
    char text[2048], cfg[600];
    const char *out1 = path_in("w1");
    snprintf(text, sizeof text,
             "experiment = { repeat = 2; warmup = 0; eval_samples = 8; save_models = true; };\n"
             "dataset = { plugin = \"synthetic\"; train_size = 8; test_size = 8; };\n"
             "models = { lenet = { plugin = \"lenet5\"; }; };\n"
             "compressors = { none = (); mag = ( { plugin = \"magnitude\"; sparsity = 0.7; } ); };\n"
             "primitives = { im = { plugin = \"im2col-gemm\"; }; };\n"
             "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n");
    struct dlas_experiment *e = run_cfg(text, out1);
    const char *saved = dlas_experiment_result(e, 1, "saved_model");
    ck_assert_ptr_nonnull(strstr(saved, "/models/compressed/lenet~mag~im~omp~seed=1.ckpt"));
    ck_assert_int_eq(access(saved, R_OK), 0);
    char nz[64], path[1024];
    snprintf(nz, sizeof nz, "%s", dlas_experiment_result(e, 1, "nonzero_params"));
    snprintf(path, sizeof path, "%s", saved);
    dlas_experiment_free(e);

    snprintf(text, sizeof text,
             "experiment = { repeat = 2; warmup = 0; eval_samples = 8; seeds = [5]; };\n"
             "dataset = { plugin = \"synthetic\"; train_size = 8; test_size = 8; };\n"
             "models = { lenet = { plugin = \"lenet5\"; weights = \"%s\"; }; };\n"
             "primitives = { im = { plugin = \"im2col-gemm\"; }; };\n"
             "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n",
             path);
    e = run_cfg(text, path_in("w2"));
    ck_assert_str_eq(dlas_experiment_result(e, 0, "nonzero_params"), nz);
    ck_assert_str_eq(dlas_experiment_result(e, 0, "weights"), path);
    dlas_experiment_free(e);

    /* a missing file: refused at load, with the line */
    snprintf(text, sizeof text,
             "dataset = { plugin = \"synthetic\"; };\n"
             "models = { lenet = { plugin = \"lenet5\"; weights = \"%s/none.ckpt\"; }; };\n"
             "backends = { omp = { plugin = \"openmp\"; }; };\n",
             tmpdir);
    snprintf(cfg, sizeof cfg, "%s", path_in("bad.cfg"));
    dlas_test_spit(cfg, text, strlen(text));
    ck_assert_int_eq(dlas_experiment_load(cfg, reg, &e), DLAS_ERR_INVALID);
    ck_assert_msg(strstr(dlas_last_error(), "bad.cfg:2: model 'lenet': weights"), "%s",
                  dlas_last_error());
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "do not exist"));
}
END_TEST

static int load_error(const char *text, const char *want1, const char *want2)
{
    const char *cfg = path_in("q.cfg");
    dlas_test_spit(cfg, text, strlen(text));
    struct dlas_experiment *e = NULL;
    int rc = dlas_experiment_load(cfg, reg, &e);
    dlas_experiment_free(e);
    ck_assert_msg(rc != DLAS_OK, "loaded: %s", text);
    ck_assert_msg(strstr(dlas_last_error(), want1) && strstr(dlas_last_error(), want2),
                  "'%s' lacks '%s' / '%s'", dlas_last_error(), want1, want2);
    return rc;
}

/* train.max_steps and train.subset shorten training by what they say;
 * bad values and missing dataset paths are refused at load, with the line. */
START_TEST(quick_training_and_validated_paths)
{
    static const char *head =
        "experiment = { repeat = 1; warmup = 0; eval_samples = 8; };\n"
        "dataset = { plugin = \"synthetic\"; train_size = 256; test_size = 8; };\n"
        "models = { lenet = { plugin = \"lenet5\"; }; };\n"
        "primitives = { im = { plugin = \"im2col-gemm\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n";
    static const struct {
        const char *train;
        const char *steps, *samples;
    } cases[] = {
        /* drop_last: 256 / 32 = 8 steps an epoch */
        {"epochs = 2; batch = 32;", "16", "512"},
        {"epochs = 2; batch = 32; max_steps = 3;", "6", "192"},  /* per epoch */
        {"epochs = 2; batch = 32; subset = 0.25;", "4", "128"},  /* 64 samples */
        {"epochs = 1; batch = 8; subset = 40;", "5", "40"},      /* a count */
        {"epochs = 1; batch = 8; subset = 40; max_steps = 2;", "2", "16"},
    };
    char text[2048];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "%strain = { %s lr = 0.01; };\n", head, cases[i].train);
        char out[64];
        snprintf(out, sizeof out, "q%zu", i);
        struct dlas_experiment *e = run_cfg(text, path_in(out));
        ck_assert_msg(!strcmp(dlas_experiment_result(e, 0, "train_steps"), cases[i].steps) &&
                          !strcmp(dlas_experiment_result(e, 0, "train_samples"), cases[i].samples),
                      "%s: %s steps, %s samples", cases[i].train,
                      dlas_experiment_result(e, 0, "train_steps"),
                      dlas_experiment_result(e, 0, "train_samples"));
        dlas_experiment_free(e);
    }
    /* a count larger than the training split fails the point, saying so */
    snprintf(text, sizeof text, "%strain = { epochs = 1; subset = 300; };\n", head);
    struct dlas_run_summary sum;
    struct dlas_experiment *e = run_text(reg, "big.cfg", text, path_in("big"), &sum);
    ck_assert_uint_eq(sum.failed, 1);
    ck_assert_ptr_nonnull(strstr(dlas_experiment_result(e, 0, "error"), "300 samples"));
    dlas_experiment_free(e);

    /* refused at load: file and line of the key */
    snprintf(text, sizeof text, "%strain = { epochs = 1;\n  subset = 2.5; };\n", head);
    load_error(text, "q.cfg:7:", "subset = 2.5");
    snprintf(text, sizeof text, "%strain = { epochs = 1;\n  max_steps = -1; };\n", head);
    load_error(text, "q.cfg:7:", "max_steps");
    snprintf(text, sizeof text, "%strain = { epochs = 1;\n  subset = -0.5; };\n", head);
    load_error(text, "q.cfg:7:", "subset");
    /* a dataset folder that is not there */
    snprintf(text, sizeof text,
             "dataset = { plugin = \"fashion-mnist\";\n  path = \"%s/nowhere\"; };\n"
             "models = { lenet = { plugin = \"lenet5\"; }; };\n"
             "backends = { omp = { plugin = \"openmp\"; }; };\n", tmpdir);
    load_error(text, "q.cfg:2: dataset 'dataset' (plugin 'fashion-mnist'): path", "does not exist");
    /* swept paths: each value */
    snprintf(text, sizeof text,
             "dataset = { plugin = \"fashion-mnist\";\n  path = [\"%s\",\n \"%s/gone\"]; };\n"
             "models = { lenet = { plugin = \"lenet5\"; }; };\n"
             "backends = { omp = { plugin = \"openmp\"; }; };\n", tmpdir, tmpdir);
    load_error(text, "q.cfg:3:", "gone' does not exist");
}
END_TEST

/* The end-to-end agreement check sees a wrong convolution on an untrained
 * MobileNet-v2, whose own output is only its classifier's bias: fx-wrong
 * (tests/fixtures) reads depthwise filters transposed. */
START_TEST(agreement_check_catches_a_wrong_primitive)
{
    struct dlas_registry *fx = dlas_test_registry_at("check_results", getenv("DLAS_FIXTURES"));
    ck_assert_ptr_nonnull(fx);
    static const char *text =
        "experiment = { repeat = 1; warmup = 0; eval_samples = 4; batch = 2; fallback = \"im\"; };\n"
        "dataset = { plugin = \"synthetic\"; channels = 3; height = 32; width = 32; classes = 10;\n"
        "            train_size = 8; test_size = 8; };\n"
        "models = { mb = { plugin = \"mobilenet\"; version = 2; }; };\n"
        "primitives = { im = { plugin = \"im2col-gemm\"; }; bad = { plugin = \"fx-wrong\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = 1; }; };\n";
    struct dlas_run_summary sum;
    struct dlas_experiment *e = run_text(fx, "mb.cfg", text, path_in("mb"), &sum);
    for (size_t i = 0; i < dlas_experiment_n_points(e); i++) {
        const char *id = dlas_experiment_point_id(e, i);
        const char *st = dlas_experiment_result(e, i, "status");
        const char *err = dlas_experiment_result(e, i, "error");
        if (strstr(id, "/bad/")) {
            ck_assert_msg(!strcmp(st, "failed") && strstr(err, "differs from the reference") &&
                              strstr(err, "calibrated"),
                          "%s: %s %s", id, st, err);
            /* the model's own output would have let it pass */
            const char *own = strstr(err, "show it: ");
            ck_assert_ptr_nonnull(own);
            ck_assert_msg(atof(own + 9) < 1e-3, "the plain check caught it already: %s", err);
        } else {
            ck_assert_msg(!strcmp(st, "ok"), "%s: %s %s", id, st, err);
            ck_assert_str_eq(dlas_experiment_result(e, i, "agreement_check"), "calibrated copy");
            double rel = atof(dlas_experiment_result(e, i, "max_rel_err_vs_ref"));
            ck_assert_msg(rel > 0 && rel < 1e-3, "%s: rel. err %g", id, rel);
        }
    }
    ck_assert_uint_eq(sum.failed, 1);
    dlas_experiment_free(e);
    dlas_registry_free(fx);
}
END_TEST

/* The noisy flag on constructed spreads: IQR over the median above 10%
 * (range over the median above 20% with fewer than 4 runs). */
START_TEST(noisy_flag_on_constructed_spread)
{
    struct exp_timing t;
    double quiet[10] = {1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01, 1.00, 1.03, 5.0};
    exp_timing_stats(quiet, 10, &t);
    ck_assert_int_eq(t.noisy, 0); /* one outlier does not make a busy machine */
    ck_assert_double_eq_tol(t.median, 1.005, 1e-9);
    ck_assert_double_eq(t.max, 5.0);
    double busy[8] = {1.0, 1.3, 1.0, 1.3, 1.0, 1.3, 1.0, 1.3};
    exp_timing_stats(busy, 8, &t);
    ck_assert_int_eq(t.noisy, 1);
    ck_assert_double_eq_tol(t.q1, 1.0, 1e-9);
    ck_assert_double_eq_tol(t.q3, 1.3, 1e-9);
    ck_assert_ptr_nonnull(strstr(t.why, "IQR"));
    double few_ok[3] = {1.0, 1.15, 1.0}, few_bad[3] = {1.0, 1.3, 1.0};
    exp_timing_stats(few_ok, 3, &t);
    ck_assert_int_eq(t.noisy, 0);
    exp_timing_stats(few_bad, 3, &t);
    ck_assert_int_eq(t.noisy, 1);
}
END_TEST

/* The machine probe's flag on constructed rows: a row whose probe is below
 * EXP_PROBE_FULL of the best for its host and thread count is noisy, with
 * the reason; other hosts, other thread counts and failed rows keep their
 * own bests; flagging twice changes nothing. */
static void probe_row(struct dlas_row *r, const char *status, const char *host, int threads,
                      double gflops)
{
    memset(r, 0, sizeof *r);
    dlas_row_set(r, "status", status);
    dlas_row_set(r, "hostname", host);
    dlas_row_setf(r, "threads", "%d", threads);
    dlas_row_setf(r, "probe_gflops_per_thread", "%.1f", gflops);
    dlas_row_set(r, "timing_noisy", "0");
    dlas_row_set(r, "timing_noise", "");
}

START_TEST(probe_flags_rows_below_the_best)
{
    struct exp_probes p = {0};
    struct dlas_row best, half, other_host, other_threads, near, failed;
    probe_row(&best, "ok", "h1", 2, 100);
    probe_row(&half, "ok", "h1", 2, 50);
    probe_row(&other_host, "ok", "h2", 2, 50);
    probe_row(&other_threads, "ok", "h1", 1, 60);
    probe_row(&near, "ok", "h1", 2, 90);
    probe_row(&failed, "failed", "h1", 2, 400);
    struct dlas_row *all[] = {&best, &half, &other_host, &other_threads, &near, &failed};
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(exp_probes_note(&p, all[i]), DLAS_OK);
    ck_assert_double_eq(exp_probes_best(&p, "h1", 2), 100);
    ck_assert_double_eq(exp_probes_best(&p, "h2", 2), 50);
    ck_assert_double_eq(exp_probes_best(&p, "h1", 1), 60);
    ck_assert_double_eq(exp_probes_best(&p, "h3", 2), 0);
    ck_assert_int_eq(exp_probes_flag(&p, &half), 1);
    ck_assert_str_eq(dlas_row_get(&half, "timing_noisy"), "1");
    ck_assert_ptr_nonnull(strstr(dlas_row_get(&half, "timing_noise"), "50% of its best FMA rate"));
    ck_assert_int_eq(exp_probes_flag(&p, &half), 0); /* once */
    for (size_t i = 0; i < 6; i++)
        if (all[i] != &half) {
            ck_assert_int_eq(exp_probes_flag(&p, all[i]), 0);
            ck_assert_str_eq(dlas_row_get(all[i], "timing_noisy"), "0");
        }
    /* a reason already there is kept */
    struct dlas_row busy;
    probe_row(&busy, "ok", "h1", 2, 40);
    dlas_row_set(&busy, "timing_noise", "IQR 30% of the median");
    ck_assert_int_eq(exp_probes_flag(&p, &busy), 1);
    ck_assert_ptr_nonnull(strstr(dlas_row_get(&busy, "timing_noise"), "IQR 30% of the median; "));
    for (size_t i = 0; i < 6; i++)
        dlas_row_free(all[i]);
    dlas_row_free(&busy);
    exp_probes_free(&p);
    /* the probe itself: a rate, per thread, for one thread and for two */
    double g1 = exp_fma_probe(1), g2 = exp_fma_probe(2);
    ck_assert_msg(g1 > 0.5 && g1 < 1e4 && g2 > 0.5 && g2 < 1e4, "probe %g, %g GFLOP/s", g1, g2);
}
END_TEST

/* The round trip's flag: a row whose threads were over EXP_PROBE_NEAR
 * times the shortest round trip apart (same host, same thread count) is
 * noisy with the reason, beside an FMA-rate reason; rows without a round
 * trip (one thread, rows from before it was probed) and others' bests are
 * left alone. */
START_TEST(probe_flags_threads_apart)
{
    struct exp_probes p = {0};
    struct dlas_row nearest, apart, edge, both, old, other_host;
    probe_row(&nearest, "ok", "h1", 2, 100);
    dlas_row_set(&nearest, "probe_line_ns", "55");
    probe_row(&apart, "ok", "h1", 2, 100);
    dlas_row_set(&apart, "probe_line_ns", "320");
    probe_row(&edge, "ok", "h1", 2, 100);
    dlas_row_set(&edge, "probe_line_ns", "110"); /* exactly 2x: near */
    probe_row(&both, "ok", "h1", 2, 40);
    dlas_row_set(&both, "probe_line_ns", "500");
    probe_row(&old, "ok", "h1", 2, 100); /* no probe_line_ns */
    probe_row(&other_host, "ok", "h2", 2, 100);
    dlas_row_set(&other_host, "probe_line_ns", "400");
    struct dlas_row *all[] = {&apart, &nearest, &edge, &both, &old, &other_host};
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(exp_probes_note(&p, all[i]), DLAS_OK);
    ck_assert_double_eq(exp_probes_best_line(&p, "h1", 2), 55);
    ck_assert_double_eq(exp_probes_best_line(&p, "h2", 2), 400);
    ck_assert_double_eq(exp_probes_best_line(&p, "h1", 1), 0);
    /* the predicate the flag and the wait before timing share */
    ck_assert_int_eq(exp_probe_short(40, 500, 100, 55), EXP_PROBE_LOW_FMA | EXP_PROBE_APART);
    ck_assert_int_eq(exp_probe_short(90, 110, 100, 55), 0);
    ck_assert_int_eq(exp_probe_short(84, 0, 100, 0), EXP_PROBE_LOW_FMA);
    ck_assert_int_eq(exp_probe_short(1, 1e6, 0, 0), 0);
    ck_assert_int_eq(exp_probes_flag(&p, &apart), 1);
    ck_assert_str_eq(dlas_row_get(&apart, "timing_noisy"), "1");
    ck_assert_ptr_nonnull(strstr(dlas_row_get(&apart, "timing_noise"), "threads apart"));
    ck_assert_ptr_nonnull(strstr(dlas_row_get(&apart, "timing_noise"), "320 ns, 5.8x"));
    ck_assert_int_eq(exp_probes_flag(&p, &apart), 0); /* once */
    ck_assert_int_eq(exp_probes_flag(&p, &both), 1);
    const char *why = dlas_row_get(&both, "timing_noise");
    ck_assert_ptr_nonnull(strstr(why, "40% of its best FMA rate"));
    ck_assert_ptr_nonnull(strstr(why, "; threads apart"));
    struct dlas_row *quiet[] = {&nearest, &edge, &old, &other_host};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(exp_probes_flag(&p, quiet[i]), 0);
        ck_assert_str_eq(dlas_row_get(quiet[i], "timing_noisy"), "0");
    }
    for (size_t i = 0; i < 6; i++)
        dlas_row_free(all[i]);
    exp_probes_free(&p);
    /* the probe itself: none for one thread; two threads where OpenMP gives
     * them, a round trip over 1 ns and under a second (on a busy machine,
     * `make -j` running other suites, one round trip can wait for the
     * scheduler: 8 ms was seen) */
    ck_assert_double_eq(exp_line_probe(1), 0);
    double l2 = exp_line_probe(2);
    ck_assert_msg(l2 == 0 || (l2 > 1 && l2 < 1e9), "round trip %g ns", l2);
    /* both threads on one CPU: each round trip waits for the scheduler, and
     * the probe must still end in milliseconds (2000 of them took 48 s) */
    cpu_set_t mask, one;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0) {
        int cpu = 0;
        while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &mask))
            cpu++;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (cpu < CPU_SETSIZE && sched_setaffinity(0, sizeof one, &one) == 0) {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            double l1 = exp_line_probe(2);
            clock_gettime(CLOCK_MONOTONIC, &b);
            double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
            ck_assert_msg(s < 2.0, "the probe on one CPU took %.1f s (round trip %g ns)", s, l1);
            sched_setaffinity(0, sizeof mask, &mask);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("results");
    TCase *tc = dlas_test_case(s, "results", setup, teardown, 300);
    tcase_add_test(tc, tidy_columns_and_dense_ratios);
    tcase_add_test(tc, probe_flags_rows_below_the_best);
    tcase_add_test(tc, probe_flags_threads_apart);
    tcase_add_test(tc, resume_keeps_fields_in_both_files);
    tcase_add_test(tc, renamed_header_cell_refused);
    tcase_add_test(tc, nul_byte_refused_with_line);
    tcase_add_test(tc, corrupt_json_refused_and_rebuilt);
    tcase_add_test(tc, fifo_and_huge_results_refused);
    tcase_add_test(tc, short_record_refused);
    tcase_add_test(tc, full_disk_changes_neither_file);
    tcase_add_test(tc, write_stopped_between_renames_is_finished);
    tcase_add_test(tc, noisy_flag_on_constructed_spread);
    tcase_add_test(tc, weights_out_and_in);
    tcase_add_test(tc, quick_training_and_validated_paths);
    tcase_add_test(tc, agreement_check_catches_a_wrong_primitive);
    return dlas_test_run(s);
}
