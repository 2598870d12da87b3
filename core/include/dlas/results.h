/* Reading back the results of a run (results.csv), for tools that plot or
 * compare them (`dlas plot`). Writing them is the runner's job. */
#ifndef DLAS_RESULTS_PUBLIC_H
#define DLAS_RESULTS_PUBLIC_H

#include <stddef.h>

struct dlas_result_table;

/* Read dir/results.csv. A file that cannot be parsed is refused with the
 * line; a missing one gives an empty table. */
int dlas_result_table_read(const char *dir, struct dlas_result_table **out);
size_t dlas_result_table_rows(const struct dlas_result_table *t);
/* The value of column in row i, or NULL where the row has no such column. */
const char *dlas_result_table_get(const struct dlas_result_table *t, size_t i,
                                  const char *column);
/* The file read: "dir/results.csv". */
const char *dlas_result_table_path(const struct dlas_result_table *t);
void dlas_result_table_free(struct dlas_result_table *t);

#endif
