#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gnuplot.h"
#include "scatter.h"

/* Okabe & Ito's colour-blind-safe palette, then two of Tol's. */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                      "#56B4E9", "#000000", "#882255", "#44AA99", "#999933"};
enum { N_COLOURS = sizeof palette / sizeof *palette };
/* filled circle, square, triangle, diamond, inverted triangle, then open */
static const int markers[] = {7, 5, 9, 13, 11, 6, 4, 8, 12, 10};
enum { N_MARKERS = sizeof markers / sizeof *markers };

struct names {
    const char *v[256];
    size_t n;
};

static size_t name_index(struct names *l, const char *v)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], v))
            return i;
    if (l->n < 256)
        l->v[l->n++] = v;
    return l->n - 1;
}

struct pt {
    double x, y, xlo, xhi, ylo, yhi;
    size_t f, c, m;
    size_t cfg;
};

/* whether positive values span at least a factor of 30 */
static int spans_decades(const struct pt *p, size_t n, int axis)
{
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++) {
        double v = axis ? p[i].y : p[i].x;
        if (v <= 0)
            return 0;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    return n && hi / lo >= 30;
}

static FILE *open_in(const char *dir, const char *name)
{
    char path[4600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "dlas: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static int key_file(const char *dir, const char *base, const char *kind, size_t i,
                    const char *label)
{
    char name[600];
    snprintf(name, sizeof name, "%s.key-%s%zu.dat", base, kind, i);
    FILE *f = open_in(dir, name);
    if (!f)
        return -1;
    gp_data_text(f, label);
    fprintf(f, " \"-\"\nNaN NaN\n");
    return fclose(f) ? -1 : 0;
}

static int is_count(const char *col)
{
    static const char *const counts[] = {"params", "nonzero_params", "macs", "weight_bytes",
                                         "peak_activation_bytes", NULL};
    for (size_t i = 0; counts[i]; i++)
        if (!strcmp(col, counts[i]))
            return 1;
    return 0;
}

/* A linear axis of counts in the tens of thousands and beyond reads better
 * in thousands or millions ("Parameters (thousands)", ticks 20, 40, ...) than
 * as six-digit numbers that run into each other; on a log axis the ticks are
 * written as 10k, 1M instead. */
static double count_unit(const struct pt *pts, size_t n, int axis)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double v = fabs(axis ? pts[i].yhi : pts[i].xhi);
        if (v > m)
            m = v;
    }
    return m >= 1e10 ? 1e9 : m >= 1e7 ? 1e6 : m >= 1e4 ? 1e3 : 1;
}

static const char *unit_name(double u)
{
    return u == 1e9 ? " (billions)" : u == 1e6 ? " (millions)" : u == 1e3 ? " (thousands)" : "";
}

/* The plot commands, emitted once per output format. */
static void body(FILE *g, const struct scatter *p, const char *base, const struct names *facets,
                 const struct names *colours, const struct names *marks, const int *block,
                 size_t nc, size_t nm, const int *front_block, int logx, int logy, double ux,
                 double uy, double right, double w, double h)
{
    size_t nf = facets->n ? facets->n : 1;
    size_t rows = nf > 3 ? 2 : 1, cols = (nf + rows - 1) / rows;
    char xl[512], yl[512], t[512], lab[512];
    double sx, sy;
    snprintf(lab, sizeof lab, "%s%s", study_label(p->x, &sx), unit_name(ux));
    gp_script_text(xl, sizeof xl, lab);
    snprintf(lab, sizeof lab, "%s%s", study_label(p->y, &sy), unit_name(uy));
    gp_script_text(yl, sizeof yl, lab);
    /* margins in pixels of the PNG, as fractions so every format matches */
    fprintf(g, "set multiplot layout %zu,%zu margins %.3f,%.3f,%.3f,%.3f spacing %.3f,%.3f\n",
            rows, cols, 100 / w, right, (p->note ? 80 : 62) / h, 1 - 40 / h, 70 / w,
            (p->note ? 120 : 100) / h);
    fprintf(g, "%s logscale x\n%s logscale y\n", logx ? "set" : "unset", logy ? "set" : "unset");
    /* counts on log axes as 10k, 1M; everything else as plain numbers */
    fprintf(g, "set format x '%s'\nset format y '%s'\n", logx && is_count(p->x) ? "%.0s%c" : "%g",
            logy && is_count(p->y) ? "%.0s%c" : "%g");
    for (size_t f = 0; f < nf; f++) {
        if (facets->n) {
            gp_script_text(t, sizeof t, facets->v[f]);
            fprintf(g, "set title '%s' font ',12'\n", t);
        } else
            fprintf(g, "unset title\n");
        /* double quotes for the line break; both parts are allow-listed text */
        gp_script_text(t, sizeof t, p->note ? p->note : "");
        fprintf(g, "set xlabel \"%s%s%s\"\n", xl, p->note ? "\\n" : "", t);
        fprintf(g, "set ylabel '%s'\n", f % cols == 0 ? yl : "");
        if (f == 0)
            fprintf(g, "set key at screen %.3f,%.3f left top Left reverse samplen 2.5 spacing 1.1 "
                       "box lc rgb '#bbbbbb'\n",
                    right + 0.015, 1 - 40 / h);
        else
            fprintf(g, "unset key\n");
        fprintf(g, "plot ");
        int first = 1;
        if (front_block[f] >= 0) { /* drawn first, behind the points */
            fprintf(g, "'%s.dat' index %d using 1:2 with lines dt (8,5) lw 2 lc rgb '#777777' %s",
                    base, front_block[f], f == 0 ? "title 'Pareto front'" : "notitle");
            first = 0;
        }
        for (size_t c = 0; c < nc; c++)
            for (size_t m = 0; m < nm; m++) {
                int b = block[(f * nc + c) * nm + m];
                if (b < 0)
                    continue;
                fprintf(g, "%s'%s.dat' index %d using 1:2:3:4:5:6 with xyerrorbars pt %d ps 1.3 "
                           "lw 1.2 lc rgb '%s' notitle",
                        first ? "" : ", \\\n     ", base, b, markers[m % N_MARKERS],
                        palette[c % N_COLOURS]);
                first = 0;
            }
        if (f == 0) {
            char head[300];
            if (colours->n > 1) {
                gp_script_text(head, sizeof head, p->colour);
                fprintf(g, ", \\\n     keyentry with points ps 0 lc rgb 'white' title '%s'", head);
            }
            for (size_t c = 0; colours->n > 1 && c < colours->n; c++)
                fprintf(g, ", \\\n     '%s.key-c%zu.dat' using 1:2 title columnheader(1) with "
                           "points pt 7 ps 1.3 lc rgb '%s'",
                        base, c, palette[c % N_COLOURS]);
            if (marks->n > 1) {
                gp_script_text(head, sizeof head, p->shape);
                fprintf(g, ", \\\n     keyentry with points ps 0 lc rgb 'white' title '%s'", head);
            }
            for (size_t m = 0; marks->n > 1 && m < marks->n; m++)
                fprintf(g, ", \\\n     '%s.key-m%zu.dat' using 1:2 title columnheader(1) with "
                           "points pt %d ps 1.3 lc rgb '#555555'",
                        base, m, markers[m % N_MARKERS]);
        }
        fprintf(g, "\n");
    }
    fprintf(g, "unset multiplot\n");
}

int scatter_plot(const struct study *s, const struct scatter *p, size_t *drawn)
{
    *drawn = 0;
    struct names facets = {0}, colours = {0}, marks = {0};
    struct pt *pts = calloc(s->n ? s->n : 1, sizeof *pts);
    if (!pts)
        return EXIT_RUN_FAILED;
    double sx, sy;
    study_label(p->x, &sx);
    study_label(p->y, &sy);
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct study_cfg *c = &s->cfgs[i];
        struct study_val x = study_num(c, p->x), y = study_num(c, p->y);
        if (!x.ok || !y.ok)
            continue;
        struct pt q = {x.c * sx, y.c * sy, x.lo * sx, x.hi * sx, y.lo * sy, y.hi * sy, 0, 0, 0, i};
        q.f = p->facet ? name_index(&facets, study_str(c, p->facet)) : 0;
        q.c = p->colour ? name_index(&colours, study_str(c, p->colour)) : 0;
        q.m = p->shape ? name_index(&marks, study_str(c, p->shape)) : 0;
        pts[n++] = q;
    }
    if (!n) {
        const char *missing = NULL;
        for (int a = 0; a < 2 && !missing; a++) {
            const char *col = a ? p->y : p->x;
            size_t k = 0;
            while (k < s->res.ncols && strcmp(s->res.cols[k], col))
                k++;
            if (k == s->res.ncols)
                missing = col;
        }
        fprintf(stderr, "dlas: no ok rows have a numeric '%s' and '%s'", p->x, p->y);
        if (missing)
            fprintf(stderr, " (%s has no column '%s')", s->res.csv_path, missing);
        fprintf(stderr, "\n");
        free(pts);
        return EXIT_USAGE;
    }
    int logx = p->logx >= 0 ? p->logx : spans_decades(pts, n, 0);
    int logy = p->logy >= 0 ? p->logy : spans_decades(pts, n, 1);
    const double ux = !logx && is_count(p->x) ? count_unit(pts, n, 0) : 1;
    const double uy = !logy && is_count(p->y) ? count_unit(pts, n, 1) : 1;
    for (size_t i = 0; i < n; i++) {
        pts[i].x /= ux, pts[i].xlo /= ux, pts[i].xhi /= ux;
        pts[i].y /= uy, pts[i].ylo /= uy, pts[i].yhi /= uy;
    }
    sx /= ux; /* so that the listed front reads in the column's own units */
    sy /= uy;
    size_t nf = facets.n ? facets.n : 1, nc = colours.n ? colours.n : 1, nm = marks.n ? marks.n : 1;
    int *block = malloc(nf * nc * nm * sizeof *block), *front_block = malloc(nf * sizeof *front_block);
    char name[600];
    snprintf(name, sizeof name, "%s.dat", p->base);
    FILE *d = block && front_block ? open_in(p->dir, name) : NULL;
    if (!d) {
        free(pts);
        free(block);
        free(front_block);
        return EXIT_RUN_FAILED;
    }
    /* one data block per panel x colour x marker, then each panel's front */
    int nb = 0;
    for (size_t k = 0; k < nf * nc * nm; k++) {
        size_t f = k / (nc * nm), c = (k / nm) % nc, m = k % nm;
        block[k] = -1;
        for (size_t i = 0; i < n; i++)
            if (pts[i].f == f && pts[i].c == c && pts[i].m == m) {
                if (block[k] < 0) {
                    block[k] = nb++;
                    fprintf(d, "# x y xlow xhigh ylow yhigh\n");
                }
                fprintf(d, "%.9g %.9g %.9g %.9g %.9g %.9g\n", pts[i].x, pts[i].y, pts[i].xlo,
                        pts[i].xhi, pts[i].ylo, pts[i].yhi);
            }
        if (block[k] >= 0)
            fprintf(d, "\n\n");
    }
    double *fx = malloc(n * sizeof *fx), *fy = malloc(n * sizeof *fy);
    size_t *map = malloc(n * sizeof *map), *front = malloc(n * sizeof *front);
    for (size_t f = 0; f < nf; f++) {
        front_block[f] = -1;
        if (p->front == FRONT_NONE || !fx || !fy || !map || !front)
            continue;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (pts[i].f == f) {
                fx[k] = pts[i].x;
                fy[k] = pts[i].y;
                map[k++] = i;
            }
        size_t nfront = study_pareto(fx, fy, k, p->front == FRONT_MIN_Y, front);
        if (p->list) {
            fprintf(p->list, "%s%s%s%zu on the Pareto front (of %zu configurations; lower %s, %s %s):\n",
                    facets.n ? p->facet : "", facets.n ? " " : "", facets.n ? facets.v[f] : "",
                    nfront, k, p->x, p->front == FRONT_MIN_Y ? "lower" : "higher", p->y);
            for (size_t i = 0; i < nfront; i++)
                fprintf(p->list, "  %-50s %s=%-10.4g %s=%.4g\n", s->cfgs[pts[map[front[i]]].cfg].key,
                        p->x, fx[front[i]] / sx, p->y, fy[front[i]] / sy);
        }
        if (nfront < 2)
            continue;
        front_block[f] = nb++;
        fprintf(d, "# Pareto front\n");
        for (size_t i = 0; i < nfront; i++)
            fprintf(d, "%.9g %.9g\n", fx[front[i]], fy[front[i]]);
        fprintf(d, "\n\n");
    }
    free(fx);
    free(fy);
    free(map);
    free(front);
    int rc = fclose(d) ? -1 : 0;
    for (size_t c = 0; !rc && colours.n > 1 && c < colours.n; c++)
        rc = key_file(p->dir, p->base, "c", c, colours.v[c]);
    for (size_t m = 0; !rc && marks.n > 1 && m < marks.n; m++)
        rc = key_file(p->dir, p->base, "m", m, marks.v[m]);

    /* size: panels of ~430x380 px, plus a legend column */
    size_t rows = nf > 3 ? 2 : 1, cols = (nf + rows - 1) / rows;
    double legend_px = (colours.n > 1 || marks.n > 1 || p->front) ? 230 : 40;
    double w = 120 + 440.0 * (double)cols + legend_px, h = 70 + 400.0 * (double)rows;
    double right = 1 - legend_px / w;
    snprintf(name, sizeof name, "%s.gp", p->base);
    FILE *g = rc ? NULL : open_in(p->dir, name);
    if (!g)
        rc = -1;
    if (g) {
        fprintf(g, "# Drawn by dlas from the results of a study: %s against %s.\n"
                   "# Rerun with: gnuplot %s.gp (in this folder)\n",
                p->y, p->x, p->base);
        fprintf(g, "set encoding utf8\nset border 3 lw 1.2\nset tics nomirror out\n"
                   "set grid xtics ytics mxtics mytics lc rgb '#e6e6e6' lw 1, lc rgb '#f2f2f2' lw 1\n"
                   "set style line 100 lc rgb '#444444'\nset bars small\n"
                   "set autoscale xfix\nset autoscale yfix\n"
                   "set offsets graph 0.05, graph 0.05, graph 0.07, graph 0.07\n");
        static const struct {
            const char *term, *ext;
            double scale;
            const char *unit, *font;
        } fmt[] = {{"pngcairo", "png", 1, "", "DejaVu Sans,11"},
                   {"pdfcairo", "pdf", 1.0 / 110, "in", "DejaVu Sans,8"},
                   {"svg", "svg", 1, "", "DejaVu Sans,11"}};
        for (size_t k = 0; k < 3; k++) {
            fprintf(g, "\nset terminal %s size %.3g%s,%.3g%s noenhanced font '%s'%s\n", fmt[k].term,
                    w * fmt[k].scale, fmt[k].unit, h * fmt[k].scale, fmt[k].unit, fmt[k].font,
                    k == 2 ? " background rgb 'white'" : "");
            fprintf(g, "set output '%s.%s'\n", p->base, fmt[k].ext);
            body(g, p, p->base, &facets, &colours, &marks, block, nc, nm, front_block, logx, logy,
                 ux, uy, right, w, h);
        }
        fprintf(g, "set output\n");
        rc = fclose(g) ? -1 : 0;
    }
    free(pts);
    free(block);
    free(front_block);
    if (rc)
        return EXIT_RUN_FAILED;
    snprintf(name, sizeof name, "%s.gp", p->base);
    if (gp_run(p->dir, name))
        return EXIT_RUN_FAILED;
    *drawn = n;
    return EXIT_OK;
}
