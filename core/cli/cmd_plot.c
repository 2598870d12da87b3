/* `dlas plot`: a Pareto plot of one result column against another, drawn by
 * gnuplot. The script and data are written beside the results, so a user can
 * restyle the plot without dlas. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

struct pt {
    double x, y;
    const char *label, *group;
    int front;
};

static int by_x(const void *a, const void *b)
{
    const struct pt *p = a, *q = b;
    return (p->x > q->x) - (p->x < q->x);
}

static int parse_num(const char *s, double *v)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !*end && !errno && isfinite(*v);
}

int cmd_plot(struct cli *c, int argc, char **argv)
{
    (void)c;
    const char *in = NULL, *xcol = "latency_ms_median", *ycol = NULL, *gcol = "primitive";
    const char *out = NULL;
    int minimise_y = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--x") && i + 1 < argc)
            xcol = argv[++i];
        else if (!strcmp(argv[i], "--y") && i + 1 < argc)
            ycol = argv[++i];
        else if (!strcmp(argv[i], "--group") && i + 1 < argc)
            gcol = argv[++i];
        else if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--minimise-y"))
            minimise_y = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: dlas plot RESULTS_DIR [--x COL] [--y COL] [--group COL] [--minimise-y] [-o FILE.png]\n"
                   "  Plots COL y against COL x for every ok point (default: accuracy_top1, or\n"
                   "  nonzero_params when there is no accuracy, against latency_ms_median),\n"
                   "  coloured by --group (default: primitive), with the Pareto front (smaller x,\n"
                   "  larger y; --minimise-y for smaller y) drawn as a line. Writes pareto.dat and\n"
                   "  pareto.gp beside the results and runs gnuplot (Debian: gnuplot-nox).\n");
            return EXIT_OK;
        } else if (!in && argv[i][0] != '-')
            in = argv[i];
        else {
            fprintf(stderr, "dlas plot: unexpected argument '%s' (see 'dlas plot --help')\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!in) {
        fprintf(stderr, "usage: dlas plot RESULTS_DIR [options] (see 'dlas plot --help')\n");
        return EXIT_USAGE;
    }
    char dir[4096];
    struct stat st;
    snprintf(dir, sizeof dir, "%s", in);
    if (stat(in, &st) == 0 && S_ISREG(st.st_mode)) { /* given results.csv itself */
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    } else if (stat(in, &st) != 0) {
        fprintf(stderr, "dlas plot: %s: %s\n", in, strerror(errno));
        return EXIT_USAGE;
    }
    struct dlas_result_table *res;
    if (dlas_result_table_read(dir, &res))
        return cli_error("plot");
    size_t nrows = dlas_result_table_rows(res);
    if (!nrows) {
        fprintf(stderr, "dlas plot: no results in %s\n", dlas_result_table_path(res));
        dlas_result_table_free(res);
        return EXIT_USAGE;
    }
    if (!ycol) {
        double v;
        ycol = "nonzero_params";
        for (size_t i = 0; i < nrows; i++)
            if (parse_num(dlas_result_table_get(res, i, "accuracy_top1"), &v))
                ycol = "accuracy_top1";
        minimise_y |= !strcmp(ycol, "nonzero_params");
    }
    struct pt *pts = calloc(nrows, sizeof *pts);
    size_t n = 0;
    for (size_t i = 0; pts && i < nrows; i++) {
        const char *status = dlas_result_table_get(res, i, "status");
        struct pt p = {0};
        if (!status || strcmp(status, "ok") ||
            !parse_num(dlas_result_table_get(res, i, xcol), &p.x) ||
            !parse_num(dlas_result_table_get(res, i, ycol), &p.y))
            continue;
        p.label = dlas_result_table_get(res, i, "cell_id");
        p.group = dlas_result_table_get(res, i, gcol);
        if (!p.group || !*p.group)
            p.group = "all";
        pts[n++] = p;
    }
    if (!n) {
        fprintf(stderr, "dlas plot: no ok rows with numeric '%s' and '%s' in %s\n", xcol, ycol,
                dlas_result_table_path(res));
        free(pts);
        dlas_result_table_free(res);
        return EXIT_USAGE;
    }
    /* Pareto front: sweep by increasing x, keep points that improve y. */
    qsort(pts, n, sizeof *pts, by_x);
    double best = minimise_y ? INFINITY : -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (minimise_y ? pts[i].y < best : pts[i].y > best) {
            best = pts[i].y;
            pts[i].front = 1;
        }
    char dat[4200], gp[4200], png[4200];
    snprintf(dat, sizeof dat, "%s/pareto.dat", dir);
    snprintf(gp, sizeof gp, "%s/pareto.gp", dir);
    snprintf(png, sizeof png, "%s", out ? out : "");
    if (!out)
        snprintf(png, sizeof png, "%s/pareto.png", dir);
    FILE *f = fopen(dat, "w");
    if (!f) {
        fprintf(stderr, "dlas plot: cannot write %s: %s\n", dat, strerror(errno));
        free(pts);
        dlas_result_table_free(res);
        return EXIT_RUN_FAILED;
    }
    /* one gnuplot data block per group, then the front */
    const char *groups[64];
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        size_t g = 0;
        while (g < ng && strcmp(groups[g], pts[i].group))
            g++;
        if (g == ng && ng < 64)
            groups[ng++] = pts[i].group;
    }
    for (size_t g = 0; g < ng; g++) {
        fprintf(f, "# %s\n", groups[g]);
        for (size_t i = 0; i < n; i++)
            if (!strcmp(pts[i].group, groups[g]))
                fprintf(f, "%.9g %.9g \"%s\"\n", pts[i].x, pts[i].y, pts[i].label);
        fprintf(f, "\n\n");
    }
    fprintf(f, "# pareto front\n");
    for (size_t i = 0; i < n; i++)
        if (pts[i].front)
            fprintf(f, "%.9g %.9g \"%s\"\n", pts[i].x, pts[i].y, pts[i].label);
    fclose(f);
    f = fopen(gp, "w");
    if (!f) {
        fprintf(stderr, "dlas plot: cannot write %s: %s\n", gp, strerror(errno));
        free(pts);
        dlas_result_table_free(res);
        return EXIT_RUN_FAILED;
    }
    fprintf(f,
            "# dlas plot: %s against %s, Pareto front of %s %s\n"
            "set terminal pngcairo size 1000,700 noenhanced\n"
            "set output '%s'\n"
            "set title '%s: %s vs %s'\n"
            "set xlabel '%s'\nset ylabel '%s'\nset grid\nset key outside right\n"
            "plot ",
            ycol, xcol, minimise_y ? "min" : "max", ycol, png, dlas_result_table_get(res, 0, "experiment") ?
            dlas_result_table_get(res, 0, "experiment") : "dlas", ycol, xcol, xcol, ycol);
    for (size_t g = 0; g < ng; g++)
        fprintf(f, "'%s' index %zu using 1:2 with points pt 7 ps 1.5 title '%s', ", dat, g, groups[g]);
    fprintf(f, "'%s' index %zu using 1:2 with linespoints lw 2 dt 2 lc rgb 'black' title 'Pareto front'\n",
            dat, ng);
    fclose(f);
    size_t nfront = 0;
    for (size_t i = 0; i < n; i++)
        nfront += pts[i].front;
    printf("%zu points, %zu on the Pareto front (%s %s, min %s):\n", n, nfront,
           minimise_y ? "min" : "max", ycol, xcol);
    for (size_t i = 0; i < n; i++)
        if (pts[i].front)
            printf("  %-50s %s=%-10.4g %s=%.4g\n", pts[i].label, xcol, pts[i].x, ycol, pts[i].y);
    free(pts);
    dlas_result_table_free(res);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", gp);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr,
                "dlas plot: gnuplot failed or is missing (Debian package: gnuplot-nox); "
                "data and script are in %s and %s\n",
                dat, gp);
        return EXIT_RUN_FAILED;
    }
    printf("plot: %s\n", png);
    return EXIT_OK;
}
