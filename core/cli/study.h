/* A results table as a study reads it (dlas report, dlas plot): the ok rows,
 * filtered, grouped into configurations (one per cell id without its seed),
 * with each figure summarised over the seeds, and the statistics a paper
 * quotes (Pareto sets, rank correlations). */
#ifndef DLAS_CLI_STUDY_H
#define DLAS_CLI_STUDY_H

#include <stddef.h>

#include <dlas/results.h>

/* One configuration: the rows of its seeds. */
struct study_cfg {
    char *key;                   /* cell id without "/seed=N" */
    const struct dlas_row **rows;
    size_t n;
};

struct study {
    struct dlas_results res;
    struct study_cfg *cfgs;
    size_t n;
    size_t skipped_failed, skipped_filtered, skipped_fallback;
};

/* A figure of a configuration: centre (median over seeds of a latency, mean
 * of anything else) and the spread its error bar shows: over timing repeats
 * (IQR when recorded, else min..max) for latency, over seeds otherwise. */
struct study_val {
    double c, lo, hi;
    int ok;
};

/* Open DIR (or DIR/results.csv) read-only for the command `dlas CMD`. `where`
 * is a NULL-terminated list of "COL=VALUE" filters (all must hold). Rows whose
 * primitive ran no layer are left out unless keep_fallback. A study with no
 * ok row left is an error. Reports errors on stderr and returns an exit
 * status; on failure s holds nothing to free. */
int study_load(struct study *s, const char *cmd, const char *path, const char *const *where,
               int keep_fallback);
void study_free(struct study *s);

const char *study_str(const struct study_cfg *c, const char *col); /* first seed's, or "" */
struct study_val study_num(const struct study_cfg *c, const char *col);

/* Indices of the Pareto set of cfg[idx[0..n)] minimising x and maximising y
 * (or minimising y when min_y), sorted by x; returns how many. */
size_t study_pareto(const double *x, const double *y, size_t n, int min_y, size_t *out);

/* Spearman's rank correlation of x and y (ties get their mean rank); NaN
 * when fewer than 3 pairs or a variable is constant. */
double study_spearman(const double *x, const double *y, size_t n);

/* A human label for a column, with units ("Top-1 accuracy (%)"), and the
 * factor its values are shown with (100 for accuracy, 1 otherwise). */
const char *study_label(const char *col, double *scale);

#endif
