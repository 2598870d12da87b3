/* Result tables: the rows an experiment writes (results.csv and results.json,
 * one row per point, the same rows and the same fields in both), read back by
 * resume, `dlas report` and `dlas plot`.
 *
 * The files are tidy: every swept parameter is its own column
 * (`compressor.mag.sparsity`, `backend.omp.threads`), every figure a plugin or
 * the trainer reports is its own column, and ratios against the point's dense
 * baseline (same model, primitive, backend and seed with the empty compressor
 * chain) are derived whenever both rows are present. Both files are written
 * from one set of rows by one function, to temporary files first, and renamed
 * only when both were written whole, so a full disk changes neither.
 *
 * Files that do not parse, or that disagree with each other, are refused with
 * the file and line, and left untouched; DLAS_RESULTS_REBUILD recovers the rows
 * that parse, keeping the damaged files beside them. */
#ifndef DLAS_RESULTS_H
#define DLAS_RESULTS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An ordered key -> value list. */
struct dlas_row {
    size_t n, cap;
    char **keys, **vals;
};
int dlas_row_set(struct dlas_row *r, const char *key, const char *value);
int dlas_row_setf(struct dlas_row *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* NULL when the row has no such key. */
const char *dlas_row_get(const struct dlas_row *r, const char *key);
void dlas_row_free(struct dlas_row *r);
/* "key\tvalue\n" lines with \t \n \\ escaped: how a child process or an MPI
 * rank hands its row to the writer. */
char *dlas_row_encode(const struct dlas_row *r);
int dlas_row_decode(const char *text, struct dlas_row *r);

struct dlas_results {
    char *dir, *csv_path, *json_path;
    struct dlas_row *rows;
    size_t n;
    char **cols; /* the column order of the last write (or of the file read) */
    size_t ncols;
    size_t recovered, dropped; /* after DLAS_RESULTS_REBUILD */
};

enum {
    DLAS_RESULTS_READONLY = 1, /* never create the directory or write */
    DLAS_RESULTS_REBUILD = 2,  /* keep the rows that parse from damaged files */
};

/* Open the results in dir (creating it unless READONLY), reading the rows a
 * previous run left. A damaged or inconsistent pair of files is refused
 * (DLAS_ERR_CORRUPT, naming file and line) unless REBUILD is given: then the
 * rows that parse are kept, the damaged files are copied to
 * results.csv.damaged / results.json.damaged, and both files are rewritten. */
int dlas_results_open(struct dlas_results *res, const char *dir, int flags);
/* Index of a finished ("ok") row with this id and config hash, or -1. */
long dlas_results_find(const struct dlas_results *res, const char *id, const char *hash);
/* Index of the row with this id (any status), or -1. */
long dlas_results_index(const struct dlas_results *res, const char *id);
/* Append (replacing an earlier row of the same id) and rewrite both files. */
int dlas_results_add(struct dlas_results *res, const struct dlas_row *row);
/* Rewrite both files from the rows held. */
int dlas_results_write(struct dlas_results *res);
void dlas_results_close(struct dlas_results *res);

/* The value of column `key` in row i ("" when absent). */
const char *dlas_results_get(const struct dlas_results *res, size_t i, const char *key);

#ifdef __cplusplus
}
#endif
#endif
