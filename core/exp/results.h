/* Result rows and the files they are kept in: the public part is
 * <dlas/results.h>; this is what the core's writers and readers share. */
#ifndef DLAS_RESULTS_INTERNAL_H
#define DLAS_RESULTS_INTERNAL_H

#include <stddef.h>

#include <dlas/results.h>

/* Figures a compressor reports through dlas_report_num/str. */
struct dlas_report {
    struct dlas_row row;
};

/* A parsed results file: rows in file order and the line each starts on. */
struct results_table {
    char **cols;
    size_t ncols;
    struct dlas_row *rows;
    size_t *lines;
    size_t n;
    size_t dropped; /* lenient parse: records skipped */
};
void results_table_free(struct results_table *t);
int results_table_push(struct results_table *t, struct dlas_row *row, size_t line);

/* Parse results.csv / results.json text. Strict: the first fault fails with
 * "PATH:LINE: what". Lenient (rebuild): records that do not parse are
 * skipped and counted in t->dropped. */
int results_parse_csv(const char *path, const char *text, size_t len, int lenient,
                      struct results_table *t);
int results_parse_json(const char *path, const char *text, size_t len, int lenient,
                       struct results_table *t);

/* Columns every results.csv must have: without them the file is not ours or
 * was damaged. */
extern const char *const dlas_results_required[];

/* Whether s is a JSON number literal (so it may be written unquoted). */
int results_json_number(const char *s);

#endif
