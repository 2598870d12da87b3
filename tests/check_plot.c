/* dlas plot and dlas report on a fixed results file: the figures are drawn
 * (PNG, PDF, SVG), the gnuplot script says what it should, and names in the
 * results (and the results folder's own name) holding quotes, semicolons,
 * backticks, system(...) calls and newlines reach neither a shell nor
 * gnuplot as code. Exits 77 (skip) without gnuplot. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlas/dlas.h>

#include "testutil.h"

static char tmpdir[256], resdir[1024], marker[288];

/* Names an attacker would write into a shared results folder. */
static const char *const hostile[] = {
    "m'; system('touch MARK') ; '",
    "c\"; system(\"touch MARK\"); \"",
    "p`touch MARK`",
    "b\nset output '/tmp/x'\nsystem('touch MARK')",
    "@x; ! touch MARK",
};

static char *with_marker(const char *s)
{
    static char out[8][1024];
    static int k;
    k = (k + 1) % 8;
    char *o = out[k];
    o[0] = '\0';
    for (const char *p = s; *p;) {
        if (!strncmp(p, "MARK", 4)) {
            strncat(o, marker, sizeof out[0] - strlen(o) - 1);
            p += 4;
        } else {
            size_t n = strlen(o);
            if (n + 1 < sizeof out[0]) {
                o[n] = *p;
                o[n + 1] = '\0';
            }
            p++;
        }
    }
    return o;
}

static void setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "plot");
    snprintf(marker, sizeof marker, "%s/PWNED", tmpdir);
    /* the folder's own name is hostile too */
    snprintf(resdir, sizeof resdir, "%s/r'; system(\"touch %s\"); `touch %s` \"", tmpdir, marker,
             marker);
}

static void teardown(void)
{
    dlas_test_rmtree(tmpdir);
}

/* 3 models x 3 compressors x 2 primitives x 2 threads x 2 seeds, with
 * figures that make a front: compression trades accuracy for speed. */
static void write_results(int hostile_names)
{
    struct dlas_results r;
    ck_assert_msg(dlas_results_open(&r, resdir, 0) == DLAS_OK, "%s", dlas_last_error());
    const char *models[] = {"lenet", "resnet20", "vgg11"};
    const char *comps[] = {"none", "mag50", "mag90"};
    const char *prims[] = {"im2col", "direct"};
    for (int m = 0; m < 3; m++)
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 2; p++)
                for (int t = 1; t <= 2; t++)
                    for (int s = 1; s <= 2; s++) {
                        const char *mn = hostile_names ? with_marker(hostile[m]) : models[m];
                        const char *cn = hostile_names ? with_marker(hostile[(c + 1) % 5]) : comps[c];
                        const char *pn = hostile_names ? with_marker(hostile[(p + 2) % 5]) : prims[p];
                        struct dlas_row row = {0};
                        dlas_row_set(&row, "experiment", hostile_names ? with_marker(hostile[4]) : "fixed");
                        dlas_row_setf(&row, "cell_id", "%s/%s/%s/omp.threads=%d/seed=%d", mn, cn, pn, t, s);
                        dlas_row_set(&row, "config_hash", "0123456789abcdef");
                        dlas_row_set(&row, "status", "ok");
                        dlas_row_set(&row, "model", mn);
                        dlas_row_set(&row, "compressor", cn);
                        dlas_row_set(&row, "primitive", pn);
                        dlas_row_set(&row, "backend", "omp");
                        dlas_row_setf(&row, "threads", "%d", t);
                        dlas_row_setf(&row, "seed", "%d", s);
                        double keep = c == 0 ? 1 : c == 1 ? 0.5 : 0.1;
                        double params = 6e4 * (m + 1) * (m + 1);
                        dlas_row_setf(&row, "params", "%.0f", params);
                        dlas_row_setf(&row, "nonzero_params", "%.0f", params * keep);
                        dlas_row_setf(&row, "accuracy_top1", "%.4f", 0.9 - 0.03 * c + 0.002 * s);
                        double lat = 0.1 * (m + 1) * (m + 1) * (p ? 1.3 : 1) / t * (0.3 + keep);
                        dlas_row_setf(&row, "latency_ms_median", "%.5g", lat);
                        dlas_row_setf(&row, "latency_ms_min", "%.5g", lat * 0.9);
                        dlas_row_setf(&row, "latency_ms_max", "%.5g", lat * 1.2);
                        dlas_row_setf(&row, "latency_ms_q1", "%.5g", lat * 0.95);
                        dlas_row_setf(&row, "latency_ms_q3", "%.5g", lat * 1.05);
                        dlas_row_set(&row, "primitive_layers", "3");
                        ck_assert_int_eq(dlas_results_add(&r, &row), DLAS_OK);
                        dlas_row_free(&row);
                    }
    dlas_results_close(&r);
}

/* dlas with the arguments of argv (argv[0] "dlas", NULL-terminated), run
 * without a shell; its exit status */
static int dlas_argv(char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        const char *bin = getenv("DLAS_BIN");
        if (!freopen("/dev/null", "w", stdout))
            _exit(125);
        execv(bin, argv);
        _exit(126);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int dlas(const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {(char *)"dlas", (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    return dlas_argv(argv);
}

static void assert_png(const char *path)
{
    char *s = dlas_test_slurp(path, NULL);
    ck_assert_msg(!memcmp(s, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", path);
    free(s);
}

START_TEST(figures_from_fixed_results)
{
    write_results(0);
    char out[1200], p[1400];
    snprintf(out, sizeof out, "%s/fig", tmpdir);
    ck_assert_int_eq(dlas("plot", resdir, "-o", out), 0);
    snprintf(p, sizeof p, "%s.png", out);
    assert_png(p);
    snprintf(p, sizeof p, "%s.pdf", out);
    char *pdf = dlas_test_slurp(p, NULL);
    ck_assert(!strncmp(pdf, "%PDF", 4));
    free(pdf);
    snprintf(p, sizeof p, "%s.gp", out);
    char *gp = dlas_test_slurp(p, NULL);
    /* one panel per model, log axes (latency spans decades), the front */
    ck_assert_ptr_nonnull(strstr(gp, "set multiplot layout 1,3"));
    ck_assert_ptr_nonnull(strstr(gp, "set title 'resnet20'"));
    ck_assert_ptr_nonnull(strstr(gp, "set logscale x"));
    ck_assert_ptr_nonnull(strstr(gp, "title 'Pareto front'"));
    ck_assert_ptr_nonnull(strstr(gp, "Top-1 accuracy (%)"));
    ck_assert_ptr_nonnull(strstr(gp, "with xyerrorbars"));
    ck_assert_ptr_nonnull(strstr(gp, "set terminal pdfcairo"));
    ck_assert_ptr_nonnull(strstr(gp, "set terminal svg"));
    free(gp);
    /* parameters on a linear axis: in thousands, so the ticks stay short */
    snprintf(out, sizeof out, "%s/lin", tmpdir);
    char *lin[] = {"dlas", "plot", resdir, "--x", "nonzero_params", "--no-logx", "-o", out, NULL};
    ck_assert_int_eq(dlas_argv(lin), 0);
    snprintf(p, sizeof p, "%s.gp", out);
    gp = dlas_test_slurp(p, NULL);
    ck_assert_ptr_nonnull(strstr(gp, "Non-zero parameters (thousands)"));
    ck_assert_ptr_nonnull(strstr(gp, "unset logscale x"));
    free(gp);
    snprintf(p, sizeof p, "%s.dat", out);
    char *ld = dlas_test_slurp(p, NULL);
    for (char *line = strtok(ld, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] != '#')
            ck_assert_msg(atof(line) < 1000, "x not in thousands: %s", line);
    free(ld);
    snprintf(out, sizeof out, "%s/fig", tmpdir);

    /* the front of lenet's panel: its fastest point first (mag90, im2col, 2 threads) */
    snprintf(p, sizeof p, "%s.dat", out);
    char *dat = dlas_test_slurp(p, NULL);
    ck_assert_ptr_nonnull(strstr(dat, "# Pareto front\n0.02 84.3\n"));
    free(dat);

    /* the report: tables, correlations and three figures */
    ck_assert_int_eq(dlas("report", resdir, NULL, NULL), 0);
    char rep[1400];
    snprintf(rep, sizeof rep, "%s/report/report.md", resdir);
    char *md = dlas_test_slurp(rep, NULL);
    ck_assert_ptr_nonnull(strstr(md, "## Best configuration per model and compressor"));
    ck_assert_ptr_nonnull(strstr(md, "| vgg11 | mag90 | im2col | omp | 2 |"));
    ck_assert_ptr_nonnull(strstr(md, "## Rank correlations (Spearman)"));
    ck_assert_ptr_nonnull(strstr(md, "| all | 36 |"));
    ck_assert_ptr_null(strstr(md, "`auto` against")); /* no auto point, no table */
    free(md);
    const char *figs[] = {"accuracy-vs-latency", "accuracy-vs-params", "latency-vs-params"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/report/%s.png", resdir, figs[i]);
        assert_png(p);
    }
}
END_TEST

/* dlas report's `auto` table on constructed rows: each auto configuration
 * against the fastest single primitive of the same configuration (same
 * model, compressor and backend settings), not of another thread count. */
static void auto_row(struct dlas_results *r, const char *prim, int threads, double ms,
                     const char *choice)
{
    struct dlas_row row = {0};
    dlas_row_set(&row, "experiment", "autos");
    dlas_row_setf(&row, "cell_id", "m/none/%s/omp.threads=%d/seed=1", prim, threads);
    dlas_row_set(&row, "config_hash", "0123456789abcdef");
    dlas_row_set(&row, "status", "ok");
    dlas_row_set(&row, "model", "m");
    dlas_row_set(&row, "compressor", "none");
    dlas_row_set(&row, "primitive", prim);
    dlas_row_set(&row, "backend", "omp");
    dlas_row_setf(&row, "threads", "%d", threads);
    dlas_row_set(&row, "seed", "1");
    dlas_row_set(&row, "nonzero_params", "1000");
    dlas_row_setf(&row, "latency_ms_median", "%g", ms);
    dlas_row_setf(&row, "latency_ms_min", "%g", ms);
    dlas_row_setf(&row, "latency_ms_max", "%g", ms);
    dlas_row_set(&row, "primitive_layers", "3");
    if (choice)
        dlas_row_set(&row, "auto_choice", choice);
    ck_assert_int_eq(dlas_results_add(r, &row), DLAS_OK);
    dlas_row_free(&row);
}

START_TEST(report_auto_against_fastest)
{
    struct dlas_results r;
    ck_assert_msg(dlas_results_open(&r, resdir, 0) == DLAS_OK, "%s", dlas_last_error());
    auto_row(&r, "p1", 1, 2.0, NULL);
    auto_row(&r, "p2", 1, 1.5, NULL);
    auto_row(&r, "auto", 1, 1.2, "p1 3 p2 1");
    auto_row(&r, "p2", 2, 0.5, NULL); /* faster, but at 2 threads */
    auto_row(&r, "auto", 2, 0.6, "p2 4");
    dlas_results_close(&r);
    char out[1200], rep[1400];
    snprintf(out, sizeof out, "%s/rep", tmpdir);
    char *argv[] = {"dlas", "report", resdir, "--no-plots", "-o", out, NULL};
    ck_assert_int_eq(dlas_argv(argv), 0);
    snprintf(rep, sizeof rep, "%s/report.md", out);
    char *md = dlas_test_slurp(rep, NULL);
    ck_assert_ptr_nonnull(strstr(md, "## `auto` against the fastest single primitive"));
    ck_assert_msg(strstr(md, "| m/none/auto/omp.threads=1 | 1.2 (1.2-1.2) | p2 | 1.5 (1.5-1.5) | "
                             "0.80 | p1 3 p2 1 |"),
                  "%s", md);
    ck_assert_msg(strstr(md, "| m/none/auto/omp.threads=2 | 0.6 (0.6-0.6) | p2 | 0.5 (0.5-0.5) | "
                             "1.20 | p2 4 |"),
                  "%s", md);
    ck_assert_ptr_nonnull(strstr(md, "faster than every single primitive in 1 of 2"));
    free(md);
}
END_TEST

/* Every text in the script is allow-listed; nothing from the results runs. */
START_TEST(hostile_names_run_nothing)
{
    write_results(1);
    ck_assert_int_eq(dlas("plot", resdir, NULL, NULL), 0);
    ck_assert_int_eq(dlas("report", resdir, NULL, NULL), 0);
    ck_assert_msg(access(marker, F_OK) != 0, "a name in the results ran a command");
    char p[1400];
    snprintf(p, sizeof p, "%s/plots/accuracy_top1-vs-latency_ms_median.png", resdir);
    assert_png(p);
    const char *scripts[] = {"plots/accuracy_top1-vs-latency_ms_median.gp",
                             "report/accuracy-vs-latency.gp", "report/latency-vs-params.gp"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", resdir, scripts[i]);
        char *gp = dlas_test_slurp(p, NULL);
        /* results text appears only as panel titles, allow-listed inside one
         * single-quoted string: "set title '<no quote>' font ',12'" */
        for (char *line = strtok(gp, "\n"); line; line = strtok(NULL, "\n")) {
            if (!strstr(line, "touch") && !strstr(line, "system") && !strchr(line, '`') &&
                !strstr(line, "/tmp/x"))
                continue;
            ck_assert_msg(!strncmp(line, "set title '", 11), "%s: results text in '%s'",
                          scripts[i], line);
            char *close = strchr(line + 11, '\'');
            ck_assert_msg(close && !strcmp(close, "' font ',12'"), "%s: '%s' escapes its quotes",
                          scripts[i], line);
            ck_assert_msg(!strpbrk(line, "`\"\\@$"), "%s: '%s' holds a character gnuplot "
                          "might interpret", scripts[i], line);
        }
        free(gp);
    }
    /* legend names travel in data files, where gnuplot never runs them */
    snprintf(p, sizeof p, "%s/plots/accuracy_top1-vs-latency_ms_median.key-c0.dat", resdir);
    char *key = dlas_test_slurp(p, NULL);
    ck_assert_ptr_nonnull(strstr(key, "touch"));
    int lines = 0;
    for (const char *q = key; *q; q++)
        lines += *q == '\n';
    ck_assert_msg(lines == 2, "a newline in a name split the key file:\n%s", key);
    free(key);
}
END_TEST

int main(void)
{
    if (system("gnuplot --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: gnuplot is not installed (Debian package: gnuplot-nox)\n");
        return 77;
    }
    Suite *s = suite_create("plot");
    TCase *tc = dlas_test_case(s, "plot", setup, teardown, 300);
    tcase_add_test(tc, figures_from_fixed_results);
    tcase_add_test(tc, hostile_names_run_nothing);
    tcase_add_test(tc, report_auto_against_fastest);
    return dlas_test_run(s);
}
