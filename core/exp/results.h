/* Result rows and the files they are kept in (results.csv and results.json,
 * both rewritten atomically after every point so a killed run loses nothing
 * already finished and never leaves a torn file). */
#ifndef DLAS_RESULTS_H
#define DLAS_RESULTS_H

#include <stddef.h>

/* An ordered key -> value list. */
struct dlas_row {
    size_t n, cap;
    char **keys, **vals;
};
int dlas_row_set(struct dlas_row *r, const char *key, const char *value);
int dlas_row_setf(struct dlas_row *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *dlas_row_get(const struct dlas_row *r, const char *key);
void dlas_row_free(struct dlas_row *r);
/* "key\tvalue\n" lines with \t \n \\ escaped: how a child process hands its
 * row to the parent. */
char *dlas_row_encode(const struct dlas_row *r);
int dlas_row_decode(const char *text, struct dlas_row *r);

struct dlas_report {
    struct dlas_row row;
};

/* The fixed CSV columns, in order; keys outside it go to the "report"
 * column as "k=v; ..." and to the JSON file as their own fields. */
extern const char *const dlas_result_columns[];

struct dlas_results {
    char *csv_path, *json_path;
    struct dlas_row *rows;
    size_t n;
};
/* Open the results in dir, reading rows a previous run left. A results.csv
 * that cannot be parsed is refused, not overwritten. */
int dlas_results_open(struct dlas_results *res, const char *dir);
/* Index of a finished ("ok") row with this id and config hash, or -1. */
long dlas_results_find(const struct dlas_results *res, const char *id, const char *hash);
/* Append (replacing an earlier row of the same id) and rewrite both files. */
int dlas_results_add(struct dlas_results *res, const struct dlas_row *row);
void dlas_results_close(struct dlas_results *res);

#endif
