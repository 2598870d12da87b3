/* `dlas plot`: one figure of a study's results, drawn by gnuplot (see
 * gnuplot.h for why no text from the results can program it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "gnuplot.h"
#include "scatter.h"

static const char plot_help[] =
    "usage: dlas plot RESULTS_DIR [options]\n"
    "  Plots one figure of every ok configuration (seeds summarised: median latency\n"
    "  with its spread over the timing repeats, mean of anything else with its range\n"
    "  over seeds) with the Pareto front of each panel, to PNG, PDF and SVG.\n\n"
    "  --x COL          x axis (default latency_ms_median)\n"
    "  --y COL          y axis (default accuracy_top1, or nonzero_params without accuracy)\n"
    "  --facet COL      one panel per value (default model; 'none' for one panel)\n"
    "  --colour COL     colour by (default primitive; 'none')\n"
    "  --shape COL      marker by (default compressor; 'none')\n"
    "  --where COL=VAL  keep rows whose COL is VAL (repeatable; all must hold)\n"
    "  --logx, --no-logx, --logy, --no-logy   log axes (default: where values span decades)\n"
    "  --front max|min|none   Pareto front: smaller x with larger (max) or smaller (min) y\n"
    "                   (default max for accuracy, min otherwise)\n"
    "  --keep-fallback  include rows whose primitive ran no layer (left out by default)\n"
    "  -o PATH          output PATH.{png,pdf,svg} (default RESULTS_DIR/plots/Y-vs-X)\n"
    "  COL is any column of results.csv, e.g. nonzero_params, macs, speedup_vs_dense,\n"
    "  compressor.mag.sparsity, backend.omp.threads.\n";

static const char *none_is_null(const char *v)
{
    return v && strcmp(v, "none") ? v : NULL;
}

int cmd_plot(struct cli *c, int argc, char **argv)
{
    (void)c;
    const char *in = NULL, *out = NULL, *front = NULL;
    struct scatter p = {"latency_ms_median", NULL, "primitive", "compressor", "model", -1, -1,
                        FRONT_MAX_Y, NULL, NULL, NULL, stdout};
    const char *where[65] = {0};
    int nwhere = 0, keep_fallback = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--x") && v)
            p.x = argv[++i];
        else if (!strcmp(a, "--y") && v)
            p.y = argv[++i];
        else if ((!strcmp(a, "--colour") || !strcmp(a, "--color") || !strcmp(a, "--group")) && v)
            p.colour = none_is_null(argv[++i]);
        else if (!strcmp(a, "--shape") && v)
            p.shape = none_is_null(argv[++i]);
        else if (!strcmp(a, "--facet") && v)
            p.facet = none_is_null(argv[++i]);
        else if (!strcmp(a, "--where") && v && strchr(v, '=') && nwhere < 64)
            where[nwhere++] = argv[++i];
        else if (!strcmp(a, "--logx") || !strcmp(a, "--no-logx"))
            p.logx = a[2] == 'l';
        else if (!strcmp(a, "--logy") || !strcmp(a, "--no-logy"))
            p.logy = a[2] == 'l';
        else if (!strcmp(a, "--front") && v)
            front = argv[++i];
        else if (!strcmp(a, "--minimise-y"))
            front = "min";
        else if (!strcmp(a, "--keep-fallback"))
            keep_fallback = 1;
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && v)
            out = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(plot_help, stdout);
            return EXIT_OK;
        } else if (!in && a[0] != '-')
            in = a;
        else {
            fprintf(stderr, "dlas plot: unexpected argument '%s' (see 'dlas plot --help')\n", a);
            return EXIT_USAGE;
        }
    }
    if (!in) {
        fprintf(stderr, "usage: dlas plot RESULTS_DIR [options] (see 'dlas plot --help')\n");
        return EXIT_USAGE;
    }
    struct study s;
    int rc = study_load(&s, "plot", in, where, keep_fallback);
    if (rc)
        return rc;
    if (!p.y) {
        p.y = "nonzero_params";
        for (size_t i = 0; i < s.n; i++)
            if (study_num(&s.cfgs[i], "accuracy_top1").ok)
                p.y = "accuracy_top1";
    }
    if (front && !strcmp(front, "min"))
        p.front = FRONT_MIN_Y;
    else if (front && !strcmp(front, "none"))
        p.front = FRONT_NONE;
    else if (front && strcmp(front, "max")) {
        fprintf(stderr, "dlas plot: --front takes max, min or none\n");
        study_free(&s);
        return EXIT_USAGE;
    } else if (!front)
        p.front = strstr(p.y, "accuracy") || strstr(p.y, "speedup") || strstr(p.y, "per_s")
                      ? FRONT_MAX_Y
                      : FRONT_MIN_Y;

    /* where: -o PATH (its folder and base name), or RESULTS_DIR/plots */
    char dir[4096], base[512], buf[4096];
    if (out) {
        snprintf(buf, sizeof buf, "%s", out);
        char *dot = strrchr(buf, '.'), *slash = strrchr(buf, '/');
        if (dot && (!slash || dot > slash) &&
            (!strcmp(dot, ".png") || !strcmp(dot, ".pdf") || !strcmp(dot, ".svg")))
            *dot = '\0';
        slash = strrchr(buf, '/');
        snprintf(dir, sizeof dir, "%s", slash ? buf : ".");
        if (slash)
            dir[slash - buf] = '\0';
        gp_file_name(base, sizeof base, slash ? slash + 1 : buf);
    } else {
        snprintf(dir, sizeof dir, "%s/plots", s.res.dir);
        snprintf(buf, sizeof buf, "%s-vs-%s", p.y, p.x);
        gp_file_name(base, sizeof base, buf);
        mkdir(dir, 0755);
    }
    p.dir = dir;
    p.base = base;
    size_t drawn;
    rc = scatter_plot(&s, &p, &drawn);
    if (!rc)
        printf("%zu configurations (%zu rows) plotted: %s/%s.png (.pdf, .svg; script %s.gp)\n",
               drawn, s.res.n - s.skipped_failed - s.skipped_filtered - s.skipped_fallback, dir,
               base, base);
    if (s.skipped_fallback)
        printf("%zu row(s) whose primitive ran no layer (everything fell back) left out "
               "(--keep-fallback to include)\n",
               s.skipped_fallback);
    study_free(&s);
    return rc;
}
