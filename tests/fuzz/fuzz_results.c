/* The results reader a resumed run starts from: results.csv (and, where the
 * reader looks at it, results.json) as a previous run, a crash or a careless
 * edit left them. The first byte picks which file the rest becomes. */
#include <sys/stat.h>

#include "fuzz_common.h"
#include "results.h" /* core/exp: the runner's reader, which resume uses */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/res", fz_scratch());
    mkdir(dir, 0700);
    char p[1200];
    snprintf(p, sizeof p, "%s/results.csv", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/results.json", dir);
    remove(p);
    fz_write(data[0] & 1 ? "res/results.json" : "res/results.csv", data + 1, size - 1);
    /* the reader a resumed run and `dlas plot` use */
    struct dlas_result_table *t = NULL;
    if (dlas_result_table_read(dir, &t) == DLAS_OK) {
        for (size_t i = 0; i < dlas_result_table_rows(t); i++)
            dlas_result_table_get(t, i, "cell_id");
        dlas_result_table_free(t);
    }
    struct dlas_results res;
    if (dlas_results_open(&res, dir) == DLAS_OK)
        dlas_results_find(&res, "x", "y");
    dlas_results_close(&res);
    return 0;
}
