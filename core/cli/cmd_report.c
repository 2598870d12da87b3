/* `dlas report DIR`: what a study found, as a paper would quote it: the best
 * configuration per model and compressor, the fastest primitive per
 * compression level (and where it changes), the Pareto set per model, rank
 * correlations of size, accuracy and latency, and the standard figures. The
 * text goes to stdout and to DIR/report/report.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gnuplot.h"
#include "scatter.h"

static const char report_help[] =
    "usage: dlas report RESULTS_DIR [--where COL=VAL]... [-o DIR] [--no-plots] [--keep-fallback]\n"
    "  Summarises a study's results.csv: the best configuration per model and\n"
    "  compressor, the fastest primitive per compression level and thread count,\n"
    "  each `auto` point against the fastest single primitive of its configuration,\n"
    "  the Pareto set per model (top-1 against latency), Spearman rank correlations\n"
    "  of size (non-zero parameters), accuracy and latency, and the figures\n"
    "  accuracy-vs-latency, accuracy-vs-params and latency-vs-params (PNG, PDF, SVG)\n"
    "  drawn with gnuplot. Writes report.md and the figures to RESULTS_DIR/report\n"
    "  (or -o DIR). Seeds are summarised: median latency, mean accuracy.\n";

struct names {
    const char *v[512];
    size_t n;
};

static size_t idx(struct names *l, const char *v)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], v))
            return i;
    if (l->n < 512)
        l->v[l->n++] = v;
    return l->n - 1;
}

static void fmt_count(char *b, size_t n, double v)
{
    if (!isfinite(v))
        snprintf(b, n, "-");
    else if (v >= 1e9)
        snprintf(b, n, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(b, n, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(b, n, "%.1fk", v / 1e3);
    else
        snprintf(b, n, "%.0f", v);
}

static double val(const struct study_cfg *c, const char *col)
{
    struct study_val v = study_num(c, col);
    return v.ok ? v.c : NAN;
}

/* the configurations of a model and compressor (and thread count) */
static int same(const struct study_cfg *c, const char *model, const char *comp, const char *thr)
{
    return !strcmp(study_str(c, "model"), model) &&
           (!comp || !strcmp(study_str(c, "compressor"), comp)) &&
           (!thr || !strcmp(study_str(c, "threads"), thr));
}

static long fastest(const struct study *s, const char *model, const char *comp, const char *thr)
{
    long best = -1;
    for (size_t i = 0; i < s->n; i++) {
        if (!same(&s->cfgs[i], model, comp, thr))
            continue;
        double l = val(&s->cfgs[i], "latency_ms_median");
        if (isfinite(l) && (best < 0 || l < val(&s->cfgs[best], "latency_ms_median")))
            best = (long)i;
    }
    return best;
}

static void best_table(FILE *o, const struct study *s, struct names *models, struct names *comps)
{
    fprintf(o, "\n## Best configuration per model and compressor (fastest median latency)\n\n"
               "| model | compressor | primitive | backend | threads | latency ms (IQR or min-max) "
               "| top-1 %% | non-zero params | MACs | speed-up vs dense | compression |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t m = 0; m < models->n; m++)
        for (size_t k = 0; k < comps->n; k++) {
            long b = fastest(s, models->v[m], comps->v[k], NULL);
            if (b < 0)
                continue;
            const struct study_cfg *c = &s->cfgs[b];
            struct study_val lat = study_num(c, "latency_ms_median");
            double acc = val(c, "accuracy_top1"), sp = val(c, "speedup_vs_dense"),
                   cr = val(c, "compression_vs_dense");
            char nz[32], mac[32], a[32], sps[32], crs[32];
            fmt_count(nz, sizeof nz, val(c, "nonzero_params"));
            fmt_count(mac, sizeof mac, val(c, "macs"));
            snprintf(a, sizeof a, isfinite(acc) ? "%.2f" : "-", 100 * acc);
            snprintf(sps, sizeof sps, isfinite(sp) ? "%.2fx" : "-", sp);
            snprintf(crs, sizeof crs, isfinite(cr) ? "%.2fx" : "-", cr);
            fprintf(o, "| %s | %s | %s | %s | %s | %.4g (%.4g-%.4g) | %s | %s | %s | %s | %s |\n",
                    models->v[m], comps->v[k], study_str(c, "primitive"), study_str(c, "backend"),
                    study_str(c, "threads"), lat.c, lat.lo, lat.hi, a, nz, mac, sps, crs);
        }
}

/* The fastest primitive of each model, thread count and compressor: the
 * across-stack point is that it changes with the compression. */
static void primitive_table(FILE *o, const struct study *s, struct names *models,
                            struct names *comps, struct names *threads)
{
    fprintf(o, "\n## Fastest primitive per model, thread count and compressor\n\n| model | threads |");
    for (size_t k = 0; k < comps->n; k++)
        fprintf(o, " %s |", comps->v[k]);
    fprintf(o, "\n|---|---|");
    for (size_t k = 0; k < comps->n; k++)
        fprintf(o, "---|");
    fprintf(o, "\n");
    struct names changes = {0};
    char line[512][256];
    size_t nline = 0;
    for (size_t m = 0; m < models->n; m++)
        for (size_t t = 0; t < threads->n; t++) {
            fprintf(o, "| %s | %s |", models->v[m], threads->v[t]);
            const char *first = NULL, *first_comp = NULL;
            int changed = 0;
            for (size_t k = 0; k < comps->n; k++) {
                long b = fastest(s, models->v[m], comps->v[k], threads->v[t]);
                if (b < 0) {
                    fprintf(o, " - |");
                    continue;
                }
                const char *prim = study_str(&s->cfgs[b], "primitive");
                fprintf(o, " %s (%.3g ms) |", prim, val(&s->cfgs[b], "latency_ms_median"));
                if (!first) {
                    first = prim;
                    first_comp = comps->v[k];
                } else if (strcmp(first, prim) && nline < 512 && !changed) {
                    snprintf(line[nline++], sizeof line[0], "%s on %s thread(s): %s with %s, %s with %s",
                             models->v[m], threads->v[t], first, first_comp, prim, comps->v[k]);
                    changed = 1;
                }
            }
            fprintf(o, "\n");
            (void)changes;
        }
    if (nline) {
        fprintf(o, "\nThe fastest primitive changes with the compression for %zu model/thread "
                   "combination(s):\n",
                nline);
        for (size_t i = 0; i < nline; i++)
            fprintf(o, "- %s\n", line[i]);
    } else
        fprintf(o, "\nThe fastest primitive is the same at every compression level here.\n");
}

/* A configuration's key without its primitive: the cell id's segments
 * before it (*pre, its length) and after it (the backend's, *post). 0 when
 * the key has no such segment. */
static int split_prim(const char *key, size_t *pre, const char **post)
{
    const char *last = strrchr(key, '/');
    if (!last || last == key)
        return 0;
    const char *before = last - 1;
    while (before > key && *before != '/')
        before--;
    if (*before != '/')
        return 0;
    *pre = (size_t)(before - key);
    *post = last;
    return 1;
}

/* The same configuration but for the primitive. */
static int peers(const struct study_cfg *a, const struct study_cfg *b)
{
    size_t pa, pb;
    const char *sa, *sb;
    return split_prim(a->key, &pa, &sa) && split_prim(b->key, &pb, &sb) && pa == pb &&
           !strncmp(a->key, b->key, pa) && !strcmp(sa, sb);
}

/* Each `auto` configuration against the fastest single primitive of the
 * same configuration: what choosing per layer by measurement buys. */
static void auto_table(FILE *o, const struct study *s)
{
    size_t n_auto = 0, n_better = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct study_cfg *a = &s->cfgs[i];
        if (strcmp(study_str(a, "primitive"), "auto"))
            continue;
        long best = -1;
        for (size_t j = 0; j < s->n; j++) {
            const struct study_cfg *b = &s->cfgs[j];
            double l = val(b, "latency_ms_median");
            if (j == i || !strcmp(study_str(b, "primitive"), "auto") || !peers(a, b) ||
                !isfinite(l))
                continue;
            if (best < 0 || l < val(&s->cfgs[best], "latency_ms_median"))
                best = (long)j;
        }
        if (!n_auto++)
            fprintf(o, "\n## `auto` against the fastest single primitive\n\n"
                       "| configuration | auto ms (IQR or min-max) | fastest primitive | its ms | "
                       "auto / fastest | auto's layers |\n|---|---|---|---|---|---|\n");
        struct study_val la = study_num(a, "latency_ms_median");
        if (best < 0) {
            fprintf(o, "| %s | %.4g (%.4g-%.4g) | - | - | - | %s |\n", a->key, la.c, la.lo, la.hi,
                    study_str(a, "auto_choice"));
            continue;
        }
        const struct study_cfg *b = &s->cfgs[best];
        struct study_val lb = study_num(b, "latency_ms_median");
        n_better += la.c < lb.c;
        fprintf(o, "| %s | %.4g (%.4g-%.4g) | %s | %.4g (%.4g-%.4g) | %.2f | %s |\n", a->key, la.c,
                la.lo, la.hi, study_str(b, "primitive"), lb.c, lb.lo, lb.hi, la.c / lb.c,
                study_str(a, "auto_choice"));
    }
    if (n_auto)
        fprintf(o, "\n`auto` was faster than every single primitive in %zu of %zu configuration(s). "
                   "Each point was timed in its own process at its own time: compare within "
                   "the ranges, and rerun a close call.\n",
                n_better, n_auto);
}

static void pareto_sets(FILE *o, const struct study *s, struct names *models)
{
    fprintf(o, "\n## Pareto set per model (lower latency, higher top-1)\n");
    double *x = malloc((s->n + 1) * sizeof *x), *y = malloc((s->n + 1) * sizeof *y);
    size_t *map = malloc((s->n + 1) * sizeof *map), *front = malloc((s->n + 1) * sizeof *front);
    for (size_t m = 0; x && y && map && front && m < models->n; m++) {
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++)
            if (same(&s->cfgs[i], models->v[m], NULL, NULL)) {
                x[k] = val(&s->cfgs[i], "latency_ms_median");
                y[k] = val(&s->cfgs[i], "accuracy_top1");
                if (isfinite(x[k]) && isfinite(y[k]))
                    map[k++] = i;
            }
        size_t nf = study_pareto(x, y, k, 0, front);
        fprintf(o, "\n%s: %zu of %zu configurations\n\n", models->v[m], nf, k);
        for (size_t i = 0; i < nf; i++)
            fprintf(o, "- %s: %.4g ms, %.2f%% top-1\n", s->cfgs[map[front[i]]].key, x[front[i]],
                    100 * y[front[i]]);
    }
    free(x);
    free(y);
    free(map);
    free(front);
}

static void corr_row(FILE *o, const struct study *s, const char *scope, const char *model,
                     const char *thr)
{
    size_t n = 0;
    double *sz = malloc((s->n + 1) * sizeof *sz), *ac = malloc((s->n + 1) * sizeof *ac),
           *lt = malloc((s->n + 1) * sizeof *lt);
    for (size_t i = 0; sz && ac && lt && i < s->n; i++) {
        const struct study_cfg *c = &s->cfgs[i];
        if ((model && strcmp(study_str(c, "model"), model)) ||
            (thr && strcmp(study_str(c, "threads"), thr)))
            continue;
        sz[n] = val(c, "nonzero_params");
        ac[n] = val(c, "accuracy_top1");
        lt[n] = val(c, "latency_ms_median");
        if (isfinite(sz[n]) && isfinite(ac[n]) && isfinite(lt[n]))
            n++;
    }
    char a[16], b[16], d[16];
    double r1 = study_spearman(sz, ac, n), r2 = study_spearman(sz, lt, n),
           r3 = study_spearman(ac, lt, n);
    snprintf(a, sizeof a, isfinite(r1) ? "%+.2f" : "-", r1);
    snprintf(b, sizeof b, isfinite(r2) ? "%+.2f" : "-", r2);
    snprintf(d, sizeof d, isfinite(r3) ? "%+.2f" : "-", r3);
    fprintf(o, "| %s | %zu | %s | %s | %s |\n", scope, n, a, b, d);
    free(sz);
    free(ac);
    free(lt);
}

static void correlations(FILE *o, const struct study *s, struct names *models, struct names *threads)
{
    fprintf(o, "\n## Rank correlations (Spearman) across configurations\n\n"
               "Size is the non-zero parameter count, latency the median per batch; |rho| near 1 "
               "means one orders the configurations as the other does.\n\n"
               "| scope | n | size ~ accuracy | size ~ latency | accuracy ~ latency |\n"
               "|---|---|---|---|---|\n");
    corr_row(o, s, "all", NULL, NULL);
    char scope[300];
    for (size_t t = 0; threads->n > 1 && t < threads->n; t++) {
        snprintf(scope, sizeof scope, "threads = %s", threads->v[t]);
        corr_row(o, s, scope, NULL, threads->v[t]);
    }
    for (size_t m = 0; models->n > 1 && m < models->n; m++) {
        snprintf(scope, sizeof scope, "model %s", models->v[m]);
        corr_row(o, s, scope, models->v[m], NULL);
    }
}

static void overview(FILE *o, const struct study *s)
{
    size_t noisy = 0;
    double lmin = INFINITY, lmax = -INFINITY;
    for (size_t i = 0; i < s->res.n; i++) {
        noisy += !strcmp(dlas_results_get(&s->res, i, "timing_noisy"), "1");
        const char *la = dlas_results_get(&s->res, i, "load_avg_1m");
        if (*la) {
            lmin = fmin(lmin, atof(la));
            lmax = fmax(lmax, atof(la));
        }
    }
    char name[256];
    gp_script_text(name, sizeof name, s->res.n ? dlas_results_get(&s->res, 0, "experiment") : "");
    fprintf(o, "# Study report: %s\n\nresults: %s\n\n", name, s->res.csv_path);
    fprintf(o, "- rows: %zu (%zu failed, %zu filtered out, %zu whose primitive ran no layer)\n",
            s->res.n, s->skipped_failed, s->skipped_filtered, s->skipped_fallback);
    fprintf(o, "- configurations (seeds summarised): %zu\n", s->n);
    if (isfinite(lmin))
        fprintf(o, "- load average (1 min) while timing: %.2f to %.2f\n", lmin, lmax);
    fprintf(o, "- rows with noisy timing (flagged timing_noisy; `dlas run --retry-noisy` reruns "
               "them): %zu\n",
            noisy);
}

int cmd_report(struct cli *c, int argc, char **argv)
{
    (void)c;
    const char *in = NULL, *out = NULL;
    const char *where[65] = {0};
    int nwhere = 0, plots = 1, keep_fallback = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--where") && v && strchr(v, '=') && nwhere < 64)
            where[nwhere++] = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && v)
            out = argv[++i];
        else if (!strcmp(a, "--no-plots"))
            plots = 0;
        else if (!strcmp(a, "--keep-fallback"))
            keep_fallback = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(report_help, stdout);
            return EXIT_OK;
        } else if (!in && a[0] != '-')
            in = a;
        else {
            fprintf(stderr, "dlas report: unexpected argument '%s' (see 'dlas report --help')\n", a);
            return EXIT_USAGE;
        }
    }
    if (!in) {
        fprintf(stderr, "usage: dlas report RESULTS_DIR [options] (see 'dlas report --help')\n");
        return EXIT_USAGE;
    }
    struct study s;
    int rc = study_load(&s, "report", in, where, keep_fallback);
    if (rc)
        return rc;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out ? out : s.res.dir);
    if (!out)
        snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/report");
    if (mkdir(dir, 0755) && access(dir, W_OK)) {
        fprintf(stderr, "dlas report: cannot create %s\n", dir);
        study_free(&s);
        return EXIT_RUN_FAILED;
    }
    struct names models = {0}, comps = {0}, threads = {0};
    for (size_t i = 0; i < s.n; i++) {
        idx(&models, study_str(&s.cfgs[i], "model"));
        idx(&comps, study_str(&s.cfgs[i], "compressor"));
        idx(&threads, study_str(&s.cfgs[i], "threads"));
    }
    char *text = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&text, &len);
    if (!o) {
        study_free(&s);
        return EXIT_RUN_FAILED;
    }
    overview(o, &s);
    best_table(o, &s, &models, &comps);
    primitive_table(o, &s, &models, &comps, &threads);
    auto_table(o, &s);
    pareto_sets(o, &s, &models);
    correlations(o, &s, &models, &threads);
    if (plots) {
        static const struct scatter figs[] = {
            {"latency_ms_median", "accuracy_top1", "primitive", "compressor", "model", -1, -1,
             FRONT_MAX_Y, NULL, "accuracy-vs-latency", "bars: latency IQR over timing runs, top-1 range over seeds", NULL},
            {"nonzero_params", "accuracy_top1", "compressor", NULL, "model", -1, -1, FRONT_MAX_Y,
             NULL, "accuracy-vs-params", "bars: top-1 range over seeds", NULL},
            {"nonzero_params", "latency_ms_median", "primitive", "compressor", "model", -1, -1,
             FRONT_MIN_Y, NULL, "latency-vs-params", NULL, NULL},
        };
        fprintf(o, "\n## Figures\n\n");
        for (size_t f = 0; f < sizeof figs / sizeof *figs; f++) {
            struct scatter p = figs[f];
            p.dir = dir;
            size_t drawn;
            if (!strcmp(p.y, "accuracy_top1") && !study_num(&s.cfgs[0], "accuracy_top1").ok)
                continue;
            if (scatter_plot(&s, &p, &drawn) == EXIT_OK)
                fprintf(o, "- %s/%s.png (.pdf, .svg): %zu configurations\n", dir, p.base, drawn);
            else
                rc = EXIT_RUN_FAILED;
        }
    }
    fclose(o);
    fputs(text, stdout);
    char path[4200];
    snprintf(path, sizeof path, "%s/report.md", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "dlas report: cannot write %s\n", path);
        rc = EXIT_RUN_FAILED;
    } else
        printf("\nreport: %s\n", path);
    free(text);
    study_free(&s);
    return rc;
}
