/* The results of a run: one set of rows, written to results.csv and
 * results.json by one function so the two always hold the same rows with the
 * same fields, and read back strictly (a damaged or inconsistent pair is
 * refused, never silently truncated or blanked). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/log.h>
#include <dlas/status.h>

#include "results.h"
#include "../base/util.h"

/* Column order: identity and settings; the swept parameters; the figures;
 * the ratios against the dense baseline; any other reported figure; then
 * provenance. */
static const char *const head_cols[] = {
    "experiment", "cell_id", "config_hash", "status", "error", "dataset", "model",
    "model_plugin", "compressor", "compressor_settings", "primitive", "primitive_plugin",
    "primitive_settings", "fallback_layers", "primitive_layers", "conv_layers", "backend", "backend_plugin",
    "backend_settings", "threads", "batch", "seed", NULL};
static const char *const swept_prefixes[] = {"dataset.", "model.", "compressor.", "primitive.",
                                             "backend.", NULL};
static const char *const figure_cols[] = {
    "params", "nonzero_params", "sparsity", "macs", "weight_bytes", "peak_activation_bytes",
    "accuracy_top1", "eval_samples", "max_rel_err_vs_ref", "agreement_check", "latency_ms_median",
    "latency_ms_min", "latency_ms_max", "latency_ms_q1", "latency_ms_q3", "latency_spread",
    "timing_noisy", "timing_noise", "load_avg_1m", "cpu_wall_ratio", "probe_gflops_per_thread", "probe_wait_s", "probe_line_ns", "warmup", "repeat", "images_per_s",
    "baseline_id", "speedup_vs_dense", "compression_vs_dense", "macs_reduction_vs_dense",
    "accuracy_delta_vs_dense", NULL};
static const char *const tail_cols[] = {"dlas_version", "git_revision", "cpu_model", "blas",
                                        "hostname", "timestamp", "device", NULL};

static int in_list(const char *const *l, const char *k)
{
    for (; *l; l++)
        if (!strcmp(*l, k))
            return 1;
    return 0;
}

static int is_swept(const char *k)
{
    for (const char *const *p = swept_prefixes; *p; p++)
        if (!strncmp(k, *p, strlen(*p)))
            return 1;
    return 0;
}

const char *dlas_results_get(const struct dlas_results *res, size_t i, const char *key)
{
    const char *v = i < res->n ? dlas_row_get(&res->rows[i], key) : NULL;
    return v ? v : "";
}

long dlas_results_index(const struct dlas_results *res, const char *id)
{
    for (size_t i = 0; i < res->n; i++) {
        const char *rid = dlas_row_get(&res->rows[i], "cell_id");
        if (rid && !strcmp(rid, id))
            return (long)i;
    }
    return -1;
}

long dlas_results_find(const struct dlas_results *res, const char *id, const char *hash)
{
    long i = dlas_results_index(res, id);
    if (i < 0)
        return -1;
    const char *rh = dlas_row_get(&res->rows[i], "config_hash");
    const char *st = dlas_row_get(&res->rows[i], "status");
    return rh && !strcmp(rh, hash) && st && !strcmp(st, "ok") ? i : -1;
}

/* ---- derived columns -------------------------------------------------- */

static int num(const struct dlas_row *r, const char *k, double *v)
{
    const char *s = dlas_row_get(r, k);
    if (!s || !*s)
        return 0;
    char *end;
    *v = strtod(s, &end);
    return !*end && isfinite(*v);
}

static void ratio(struct dlas_row *r, const char *k, int ok, double v)
{
    if (ok && isfinite(v))
        dlas_row_setf(r, k, "%.6g", v);
    else
        dlas_row_set(r, k, "");
}

/* Speed-up, compression and accuracy change against the point's dense
 * baseline, recomputed at every write so a baseline that finishes after its
 * compressed points still fills their ratios. */
static void derive(struct dlas_results *res)
{
    for (size_t i = 0; i < res->n; i++) {
        struct dlas_row *r = &res->rows[i];
        const char *bid = dlas_row_get(r, "baseline_id");
        if (!bid)
            continue;
        long b = *bid ? dlas_results_index(res, bid) : -1;
        const struct dlas_row *base = b >= 0 ? &res->rows[b] : NULL;
        const char *st = dlas_row_get(r, "status"), *bst = base ? dlas_row_get(base, "status") : NULL;
        int ok = base && st && bst && !strcmp(st, "ok") && !strcmp(bst, "ok");
        double x = 0, y = 0;
        int lat = ok && num(r, "latency_ms_median", &x) && num(base, "latency_ms_median", &y) && x > 0;
        ratio(r, "speedup_vs_dense", lat, y / (lat ? x : 1));
        int nz = ok && num(r, "nonzero_params", &x) && num(base, "nonzero_params", &y) && x > 0;
        ratio(r, "compression_vs_dense", nz, y / (nz ? x : 1));
        int mc = ok && num(r, "macs", &x) && num(base, "macs", &y) && x > 0;
        ratio(r, "macs_reduction_vs_dense", mc, y / (mc ? x : 1));
        int ac = ok && num(r, "accuracy_top1", &x) && num(base, "accuracy_top1", &y);
        ratio(r, "accuracy_delta_vs_dense", ac, x - y);
    }
}

/* ---- writing ------------------------------------------------------------ */

static int add_col(struct dlas_results *res, const char *k)
{
    for (size_t i = 0; i < res->ncols; i++)
        if (!strcmp(res->cols[i], k))
            return DLAS_OK;
    char **c = realloc(res->cols, (res->ncols + 1) * sizeof *c);
    if (!c || !(c[res->ncols] = strdup(k))) {
        if (c)
            res->cols = c;
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    res->cols = c;
    res->ncols++;
    return DLAS_OK;
}

/* The header: fixed groups in order, other keys where their group is, in
 * the order rows first name them. */
static int columns(struct dlas_results *res)
{
    for (size_t i = 0; i < res->ncols; i++)
        free(res->cols[i]);
    free(res->cols);
    res->cols = NULL;
    res->ncols = 0;
    int rc = DLAS_OK;
    for (size_t i = 0; !rc && head_cols[i]; i++)
        rc = add_col(res, head_cols[i]);
    for (size_t r = 0; !rc && r < res->n; r++)
        for (size_t k = 0; !rc && k < res->rows[r].n; k++)
            if (is_swept(res->rows[r].keys[k]))
                rc = add_col(res, res->rows[r].keys[k]);
    for (size_t i = 0; !rc && figure_cols[i]; i++)
        rc = add_col(res, figure_cols[i]);
    for (size_t r = 0; !rc && r < res->n; r++)
        for (size_t k = 0; !rc && k < res->rows[r].n; k++) {
            const char *key = res->rows[r].keys[k];
            if (!in_list(tail_cols, key))
                rc = add_col(res, key);
        }
    for (size_t i = 0; !rc && tail_cols[i]; i++)
        rc = add_col(res, tail_cols[i]);
    return rc;
}

static void render(const struct dlas_results *res, struct dlas_buf *csv, struct dlas_buf *json)
{
    for (size_t c = 0; c < res->ncols; c++) {
        dlas_buf_printf(csv, "%s", c ? "," : "");
        dlas_csv_field(csv, res->cols[c]);
    }
    dlas_buf_printf(csv, "\n");
    dlas_buf_printf(json, "[\n");
    for (size_t r = 0; r < res->n; r++) {
        const struct dlas_row *row = &res->rows[r];
        dlas_buf_printf(json, "  {");
        for (size_t c = 0; c < res->ncols; c++) {
            const char *v = dlas_row_get(row, res->cols[c]);
            dlas_buf_printf(csv, "%s", c ? "," : "");
            dlas_csv_field(csv, v);
            dlas_buf_printf(json, "%s", c ? ", " : "");
            dlas_json_string(json, res->cols[c]);
            dlas_buf_printf(json, ": ");
            if (!v || !*v)
                dlas_buf_printf(json, "null");
            else if (results_json_number(v))
                dlas_buf_printf(json, "%s", v);
            else
                dlas_json_string(json, v);
        }
        dlas_buf_printf(csv, "\n");
        dlas_buf_printf(json, "}%s\n", r + 1 < res->n ? "," : "");
    }
    dlas_buf_printf(json, "]\n");
}

static char *tmp_name(const char *path)
{
    size_t n = strlen(path) + 32;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%s.tmp.%ld", path, (long)getpid());
    return t;
}

static int write_whole(const char *tmp, const char *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return dlas_error(DLAS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int rc = dlas_error(DLAS_ERR_IO, "cannot write %s: %s", tmp,
                                w < 0 ? strerror(errno) : "no space written");
            close(fd);
            return rc;
        }
        data += w;
        len -= (size_t)w;
    }
    if (fsync(fd)) {
        int rc = dlas_error(DLAS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        return rc;
    }
    if (close(fd))
        return dlas_error(DLAS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    return DLAS_OK;
}

/* Both files are written whole to temporary names before either is renamed:
 * a full disk or any write error leaves both as they were. */
int dlas_results_write(struct dlas_results *res)
{
    derive(res);
    int rc = columns(res);
    if (rc)
        return rc;
    struct dlas_buf csv = {0}, json = {0};
    render(res, &csv, &json);
    char *tc = tmp_name(res->csv_path), *tj = tmp_name(res->json_path);
    if (!csv.s || !json.s || !tc || !tj)
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = write_whole(tj, json.s, json.len);
    if (!rc)
        rc = write_whole(tc, csv.s, csv.len);
    if (!rc && rename(tj, res->json_path))
        rc = dlas_error(DLAS_ERR_IO, "cannot write %s: %s", res->json_path, strerror(errno));
    if (!rc && rename(tc, res->csv_path))
        rc = dlas_error(DLAS_ERR_IO, "cannot write %s: %s", res->csv_path, strerror(errno));
    if (rc) {
        if (tj)
            unlink(tj);
        if (tc)
            unlink(tc);
    }
    free(tc);
    free(tj);
    dlas_buf_free(&csv);
    dlas_buf_free(&json);
    return rc;
}

static int copy_row(struct dlas_row *dst, const struct dlas_row *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->n; i++)
        if (dlas_row_set(dst, src->keys[i], src->vals[i])) {
            dlas_row_free(dst);
            return DLAS_ERR_NOMEM;
        }
    return DLAS_OK;
}

int dlas_results_add(struct dlas_results *res, const struct dlas_row *in)
{
    struct dlas_row row;
    if (copy_row(&row, in))
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    const char *id = dlas_row_get(&row, "cell_id");
    long i = id ? dlas_results_index(res, id) : -1;
    if (i >= 0) {
        dlas_row_free(&res->rows[i]);
        res->rows[i] = row;
    } else {
        struct dlas_row *rows = realloc(res->rows, (res->n + 1) * sizeof *rows);
        if (!rows) {
            dlas_row_free(&row);
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        }
        res->rows = rows;
        rows[res->n++] = row;
    }
    return dlas_results_write(res);
}

/* ---- reading ------------------------------------------------------------ */

/* text of the file, or NULL with *missing set when it does not exist */
static int slurp(const char *path, char **text, size_t *len, int *missing)
{
    *missing = 0;
    int rc = dlas_read_file(path, text, len);
    if (rc == DLAS_ERR_NOTFOUND) {
        dlas_clear_error();
        *missing = 1;
        *text = NULL;
        *len = 0;
        return DLAS_OK;
    }
    return rc;
}

/* The two files must hold the same rows with the same fields. */
static int agree(const char *csvp, const struct results_table *c, const char *jsonp,
                 const struct results_table *j)
{
    const char *hint = "; both files were left untouched (rerun with --rebuild-results to "
                       "keep the rows that parse)";
    if (c->n != j->n)
        return dlas_error(DLAS_ERR_CORRUPT, "%s has %zu rows but %s has %zu%s", csvp, c->n, jsonp,
                          j->n, hint);
    for (size_t i = 0; i < c->n; i++) {
        const struct dlas_row *a = &c->rows[i], *b = &j->rows[i];
        for (size_t k = 0; k < b->n; k++)
            if (!dlas_row_get(a, b->keys[k]) && b->vals[k][0])
                return dlas_error(DLAS_ERR_CORRUPT,
                                  "%s:1: the header has no column '%s', which %s:%zu has "
                                  "(a renamed header cell?)%s",
                                  csvp, b->keys[k], jsonp, j->lines[i], hint);
        for (size_t k = 0; k < a->n; k++) {
            const char *v = dlas_row_get(b, a->keys[k]);
            if (!v)
                v = "";
            if (strcmp(v, a->vals[k]))
                return dlas_error(DLAS_ERR_CORRUPT,
                                  "%s:%zu and %s:%zu disagree on field '%s' of row %zu ('%.60s' "
                                  "vs '%.60s')%s",
                                  csvp, c->lines[i], jsonp, j->lines[i], a->keys[k], i + 1,
                                  a->vals[k], v, hint);
        }
    }
    return DLAS_OK;
}

static int take_rows(struct dlas_results *res, struct results_table *t)
{
    res->rows = t->rows;
    res->n = t->n;
    t->rows = NULL;
    t->n = 0;
    return columns(res);
}

/* Keep a damaged file beside the rebuilt one, never overwriting an earlier copy. */
static int keep_damaged(const char *path, char *kept, size_t len)
{
    kept[0] = '\0';
    if (access(path, F_OK))
        return DLAS_OK;
    for (int i = 0; i < 1000; i++) {
        if (i)
            snprintf(kept, len, "%s.damaged.%d", path, i);
        else
            snprintf(kept, len, "%s.damaged", path);
        if (!access(kept, F_OK))
            continue;
        if (link(path, kept) == 0)
            return DLAS_OK;
        char *text;
        size_t n;
        int rc = dlas_read_file(path, &text, &n);
        if (!rc) {
            rc = dlas_write_atomic(kept, text, n);
            free(text);
        }
        return rc;
    }
    return dlas_error(DLAS_ERR_IO, "%s: too many damaged copies kept beside it", path);
}

static int push(struct dlas_results *res, struct dlas_row *row)
{
    struct dlas_row *rows = realloc(res->rows, (res->n + 1) * sizeof *rows);
    if (!rows)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    res->rows = rows;
    rows[res->n++] = *row;
    memset(row, 0, sizeof *row);
    return DLAS_OK;
}

static long table_index(const struct results_table *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++) {
        const char *tid = dlas_row_get(&t->rows[i], "cell_id"); /* NULL once taken */
        if (tid && !strcmp(tid, id))
            return (long)i;
    }
    return -1;
}

/* In the CSV's order; a row both files hold is taken from the JSON (renamed
 * first, so never the older) with any field only the CSV has; then the rows
 * only the JSON holds. The first of two rows with one id wins. */
static int merge(struct dlas_results *res, struct results_table *c, struct results_table *j)
{
    int rc = DLAS_OK;
    for (size_t i = 0; !rc && i < c->n; i++) {
        const char *id = dlas_row_get(&c->rows[i], "cell_id");
        if (dlas_results_index(res, id) >= 0)
            continue;
        long k = table_index(j, id);
        if (k < 0) {
            rc = push(res, &c->rows[i]);
            continue;
        }
        for (size_t f = 0; f < c->rows[i].n; f++)
            if (!dlas_row_get(&j->rows[k], c->rows[i].keys[f]))
                dlas_row_set(&j->rows[k], c->rows[i].keys[f], c->rows[i].vals[f]);
        rc = push(res, &j->rows[k]);
    }
    for (size_t i = 0; !rc && i < j->n; i++) {
        const char *id = dlas_row_get(&j->rows[i], "cell_id");
        if (id && dlas_results_index(res, id) < 0)
            rc = push(res, &j->rows[i]);
    }
    return rc;
}

static int rebuild(struct dlas_results *res, const char *ctext, size_t clen, const char *jtext,
                   size_t jlen)
{
    struct results_table c = {0}, j = {0};
    int rc = ctext ? results_parse_csv(res->csv_path, ctext, clen, 1, &c) : DLAS_OK;
    if (rc == DLAS_ERR_CORRUPT) { /* the header itself is damaged: no CSV row is usable */
        dlas_clear_error();
        rc = DLAS_OK;
        c.dropped = 1;
    }
    if (!rc && jtext)
        rc = results_parse_json(res->json_path, jtext, jlen, 1, &j);
    if (!rc)
        rc = merge(res, &c, &j);
    res->recovered = res->n;
    res->dropped = c.dropped + j.dropped;
    results_table_free(&c);
    results_table_free(&j);
    char kc[4200], kj[4200];
    if (!rc)
        rc = keep_damaged(res->csv_path, kc, sizeof kc);
    if (!rc)
        rc = keep_damaged(res->json_path, kj, sizeof kj);
    if (!rc) {
        dlas_log(DLAS_LOG_WARN,
                 "%s: rebuilt from %zu row(s) that parse (%zu damaged record(s) dropped); the "
                 "damaged files are kept as %s%s%s",
                 res->dir, res->recovered, res->dropped, kc[0] ? kc : "", kc[0] && kj[0] ? " and " : "",
                 kj[0] ? kj : "");
        rc = dlas_results_write(res);
    }
    return rc;
}

/* A writer stopped between its two renames (SIGKILL, a rank ended by
 * mpirun, power) leaves the new results.json beside the old results.csv (or
 * none, at the first row), with the new CSV complete under its temporary
 * name: both temporaries are written and synced before either rename. Finish
 * that write: a results.csv.tmp.* that agrees with the JSON takes the CSV's
 * place (read-only: it is only read). Sets *finished and puts its rows in *c
 * when it did; when no such file exists, the error set before is kept. */
static int finish_interrupted_write(struct dlas_results *res, const struct results_table *j,
                                    struct results_table *c, int readonly, int *finished)
{
    *finished = 0;
    const char *base = strrchr(res->csv_path, '/');
    base = base ? base + 1 : res->csv_path;
    size_t nb = strlen(base);
    DIR *d = opendir(res->dir);
    if (!d) /* the disagreement reported stands */
        return DLAS_ERR_CORRUPT;
    char *why = strdup(dlas_last_error());
    int rc = DLAS_OK;
    struct dirent *e;
    while (!rc && !*finished && (e = readdir(d))) {
        if (strncmp(e->d_name, base, nb) || strncmp(e->d_name + nb, ".tmp.", 5))
            continue;
        size_t n = strlen(res->dir) + strlen(e->d_name) + 2;
        char *tmp = malloc(n), *text = NULL;
        size_t len;
        int missing;
        struct results_table t = {0};
        if (tmp)
            snprintf(tmp, n, "%s/%s", res->dir, e->d_name);
        if (tmp && !slurp(tmp, &text, &len, &missing) && !missing &&
            !results_parse_csv(tmp, text, len, 0, &t) && !agree(tmp, &t, res->json_path, j)) {
            if (!readonly && rename(tmp, res->csv_path))
                rc = dlas_error(DLAS_ERR_IO, "cannot write %s: %s", res->csv_path,
                                  strerror(errno));
            else {
                dlas_log(DLAS_LOG_WARN, "%s: completed a write that was stopped between "
                         "results.json and results.csv (%s)", res->dir, e->d_name);
                results_table_free(c);
                *c = t;
                t = (struct results_table){0};
                *finished = 1;
            }
        }
        results_table_free(&t);
        free(text);
        free(tmp);
    }
    closedir(d);
    if (*finished)
        dlas_clear_error();
    else if (!rc)
        rc = dlas_error(DLAS_ERR_CORRUPT, "%s", why ? why : "results.csv and results.json disagree");
    free(why);
    return rc;
}

static int load(struct dlas_results *res, int flags)
{
    char *ctext = NULL, *jtext = NULL;
    size_t clen, jlen;
    int cmiss, jmiss;
    int rc = slurp(res->csv_path, &ctext, &clen, &cmiss);
    if (!rc)
        rc = slurp(res->json_path, &jtext, &jlen, &jmiss);
    if (rc || (cmiss && jmiss)) {
        free(ctext);
        free(jtext);
        return rc;
    }
    struct results_table c = {0}, j = {0};
    int jparsed = 0;
    if (!cmiss)
        rc = results_parse_csv(res->csv_path, ctext, clen, 0, &c);
    if (!rc && !jmiss)
        jparsed = !(rc = results_parse_json(res->json_path, jtext, jlen, 0, &j));
    if (!rc && !cmiss && !jmiss)
        rc = agree(res->csv_path, &c, res->json_path, &j);
    if (!rc && cmiss && !jmiss)
        rc = dlas_error(DLAS_ERR_CORRUPT,
                        "%s exists but %s does not; both are written together (rerun with "
                        "--rebuild-results to rebuild the CSV from the JSON)",
                        res->json_path, res->csv_path);
    /* only a whole JSON is the new side of a stopped write */
    if (rc == DLAS_ERR_CORRUPT && jparsed) {
        int finished;
        rc = finish_interrupted_write(res, &j, &c, flags & DLAS_RESULTS_READONLY, &finished);
    }
    if (!rc) {
        rc = take_rows(res, &c);
        /* the JSON is derived from the same rows: a missing one is rewritten */
        if (!rc && jmiss && !(flags & DLAS_RESULTS_READONLY))
            rc = dlas_results_write(res);
    } else if (rc == DLAS_ERR_CORRUPT && (flags & DLAS_RESULTS_REBUILD) &&
               !(flags & DLAS_RESULTS_READONLY)) {
        dlas_clear_error();
        results_table_free(&c);
        results_table_free(&j);
        rc = rebuild(res, ctext, clen, jtext, jlen);
    }
    results_table_free(&c);
    results_table_free(&j);
    free(ctext);
    free(jtext);
    return rc;
}

int dlas_results_open(struct dlas_results *res, const char *dir, int flags)
{
    memset(res, 0, sizeof *res);
    int rc = flags & DLAS_RESULTS_READONLY ? DLAS_OK : dlas_mkdirs(dir);
    if (rc)
        return rc;
    size_t n = strlen(dir) + 32;
    res->dir = strdup(dir);
    res->csv_path = malloc(n);
    res->json_path = malloc(n);
    if (!res->dir || !res->csv_path || !res->json_path) {
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    } else {
        snprintf(res->csv_path, n, "%s/results.csv", dir);
        snprintf(res->json_path, n, "%s/results.json", dir);
        rc = load(res, flags);
        if (!rc && (flags & DLAS_RESULTS_READONLY) && access(res->csv_path, F_OK))
            rc = dlas_error(DLAS_ERR_NOTFOUND, "no results in %s (no results.csv)", dir);
    }
    /* A refused open holds nothing: callers close only what opened. */
    if (rc)
        dlas_results_close(res);
    return rc;
}

void dlas_results_close(struct dlas_results *res)
{
    for (size_t i = 0; i < res->n; i++)
        dlas_row_free(&res->rows[i]);
    free(res->rows);
    for (size_t i = 0; i < res->ncols; i++)
        free(res->cols[i]);
    free(res->cols);
    free(res->dir);
    free(res->csv_path);
    free(res->json_path);
    memset(res, 0, sizeof *res);
}
