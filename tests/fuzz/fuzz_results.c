/* The results reader a resumed run, `dlas report` and `dlas plot` start
 * from: results.csv and results.json as a previous run, a crash or a
 * careless edit left them. Only the public API (dlas/results.h).
 *
 * The first byte picks the files: 0 the rest is results.csv, 1 results.json,
 * 2 and 3 both (split where the next two bytes say), so that the check that
 * the two files agree is reached too. Each input is read as a resume reads
 * it; when bit 2 of the first byte is set and that read refused the files,
 * again with DLAS_RESULTS_REBUILD (which rewrites, and syncs, what it
 * recovers: slow, hence not every time). With bit 3 and both files, the
 * CSV part is also left as results.csv.tmp.7 and results.csv keeps only its
 * first half: a write stopped between its two renames, which the reader
 * finishes when the temporary agrees with the JSON. */
#include <sys/stat.h>

#include "fuzz_common.h"

static void put(const char *dir, const char *name, const uint8_t *d, size_t n)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    remove(p);
    if (d) {
        snprintf(p, sizeof p, "res/%s", name);
        fz_write(p, d, n);
    }
}

static int read_all(const char *dir, int flags)
{
    struct dlas_results res;
    int rc = dlas_results_open(&res, dir, flags);
    if (rc == DLAS_OK) {
        for (size_t i = 0; i < res.n; i++)
            dlas_results_get(&res, i, "cell_id");
        dlas_results_find(&res, "x", "y");
        dlas_results_index(&res, "x");
        dlas_results_close(&res);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] & 3, rebuild = data[0] & 4, stopped = data[0] & 8;
    data++, size--;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/res", fz_scratch());
    mkdir(dir, 0700);
    static const char *const leftovers[] = {"results.csv.damaged", "results.json.damaged",
                                            "results.csv.tmp", "results.json.tmp",
                                            "results.csv.tmp.7"};
    for (size_t i = 0; i < sizeof leftovers / sizeof *leftovers; i++)
        put(dir, leftovers[i], NULL, 0);
    if (mode == 0) {
        put(dir, "results.csv", data, size);
        put(dir, "results.json", NULL, 0);
    } else if (mode == 1) {
        put(dir, "results.csv", NULL, 0);
        put(dir, "results.json", data, size);
    } else {
        size_t cut = 0;
        if (size >= 2) {
            cut = ((size_t)data[0] | (size_t)data[1] << 8) % (size - 1);
            data += 2, size -= 2;
        }
        if (cut > size)
            cut = size;
        if (stopped) { /* a write stopped between its renames: the new CSV a temporary */
            put(dir, "results.csv.tmp.7", data, cut);
            put(dir, "results.csv", data, cut / 2);
        } else
            put(dir, "results.csv", data, cut);
        put(dir, "results.json", data + cut, size - cut);
    }
    if (read_all(dir, DLAS_RESULTS_READONLY) != DLAS_OK && rebuild)
        read_all(dir, DLAS_RESULTS_REBUILD);
    return 0;
}
