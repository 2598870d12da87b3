/* The public, read-only view of a results directory (dlas/results.h). */
#include <stdlib.h>

#include <dlas/results.h>
#include <dlas/status.h>

#include "results.h"

struct dlas_result_table {
    struct dlas_results res;
};

int dlas_result_table_read(const char *dir, struct dlas_result_table **out)
{
    *out = NULL;
    struct dlas_result_table *t = calloc(1, sizeof *t);
    if (!t)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int rc = dlas_results_open(&t->res, dir);
    if (rc) {
        dlas_result_table_free(t);
        return rc;
    }
    *out = t;
    return DLAS_OK;
}

size_t dlas_result_table_rows(const struct dlas_result_table *t) { return t ? t->res.n : 0; }

const char *dlas_result_table_get(const struct dlas_result_table *t, size_t i, const char *column)
{
    if (!t || i >= t->res.n)
        return NULL;
    return dlas_row_get(&t->res.rows[i], column);
}

const char *dlas_result_table_path(const struct dlas_result_table *t)
{
    return t ? t->res.csv_path : NULL;
}

void dlas_result_table_free(struct dlas_result_table *t)
{
    if (!t)
        return;
    dlas_results_close(&t->res);
    free(t);
}
