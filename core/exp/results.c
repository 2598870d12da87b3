#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "results.h"
#include "../base/util.h"

const char *const dlas_result_columns[] = {
    "experiment", "cell_id", "config_hash", "status", "error",
    "dataset", "model", "model_plugin", "compressor", "compressor_settings",
    "primitive", "primitive_plugin", "primitive_settings", "fallback_layers",
    "backend", "backend_plugin", "backend_settings", "threads", "batch", "seed",
    "params", "nonzero_params", "sparsity", "macs", "weight_bytes", "peak_activation_bytes",
    "accuracy_top1", "eval_samples", "max_rel_err_vs_ref",
    "latency_ms_median", "latency_ms_min", "latency_ms_max", "warmup", "repeat",
    "images_per_s", "report",
    "dlas_version", "git_revision", "cpu_model", "blas", "hostname", "timestamp",
    "device",
    NULL};

int dlas_row_set(struct dlas_row *r, const char *key, const char *value)
{
    if (!value)
        value = "";
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->keys[i], key)) {
            char *v = strdup(value);
            if (!v)
                return dlas_error(DLAS_ERR_NOMEM, "out of memory");
            free(r->vals[i]);
            r->vals[i] = v;
            return DLAS_OK;
        }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        char **k = realloc(r->keys, cap * sizeof *k);
        if (!k)
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        r->keys = k;
        char **v = realloc(r->vals, cap * sizeof *v);
        if (!v)
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        r->vals = v;
        r->cap = cap;
    }
    r->keys[r->n] = strdup(key);
    r->vals[r->n] = strdup(value);
    if (!r->keys[r->n] || !r->vals[r->n])
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    r->n++;
    return DLAS_OK;
}

int dlas_row_setf(struct dlas_row *r, const char *key, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return dlas_row_set(r, key, buf);
}

const char *dlas_row_get(const struct dlas_row *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->keys[i], key))
            return r->vals[i];
    return NULL;
}

void dlas_row_free(struct dlas_row *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->keys[i]);
        free(r->vals[i]);
    }
    free(r->keys);
    free(r->vals);
    memset(r, 0, sizeof *r);
}

static void escape(struct dlas_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\t')
            dlas_buf_printf(b, "\\t");
        else if (*s == '\n')
            dlas_buf_printf(b, "\\n");
        else if (*s == '\\')
            dlas_buf_printf(b, "\\\\");
        else
            dlas_buf_printf(b, "%c", *s);
    }
}

char *dlas_row_encode(const struct dlas_row *r)
{
    struct dlas_buf b = {0};
    dlas_buf_printf(&b, "%s", "");
    for (size_t i = 0; i < r->n; i++) {
        escape(&b, r->keys[i]);
        dlas_buf_printf(&b, "\t");
        escape(&b, r->vals[i]);
        dlas_buf_printf(&b, "\n");
    }
    return b.s;
}

static char *unescape(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            i++;
            *o++ = s[i] == 't' ? '\t' : s[i] == 'n' ? '\n' : s[i];
        } else
            *o++ = s[i];
    }
    *o = '\0';
    return out;
}

int dlas_row_decode(const char *text, struct dlas_row *r)
{
    memset(r, 0, sizeof *r);
    while (*text) {
        const char *nl = strchr(text, '\n');
        if (!nl)
            nl = text + strlen(text);
        const char *tab = memchr(text, '\t', (size_t)(nl - text));
        if (!tab)
            return dlas_error(DLAS_ERR_CORRUPT, "malformed result line");
        char *k = unescape(text, (size_t)(tab - text));
        char *v = unescape(tab + 1, (size_t)(nl - tab - 1));
        int rc = (k && v) ? dlas_row_set(r, k, v) : dlas_error(DLAS_ERR_NOMEM, "out of memory");
        free(k);
        free(v);
        if (rc)
            return rc;
        text = *nl ? nl + 1 : nl;
    }
    return DLAS_OK;
}

/* ---- CSV reading (RFC 4180) ------------------------------------------- */

/* Parse one record starting at *p; fields are appended to a NULL-terminated
 * array. Returns NULL at end of input. */
static char **csv_record(const char **p, size_t *nf, int *bad)
{
    const char *s = *p;
    if (!*s)
        return NULL;
    char **fields = NULL;
    size_t n = 0;
    for (;;) {
        struct dlas_buf f = {0};
        dlas_buf_printf(&f, "%s", "");
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s) {
                    *bad = 1;
                    break;
                }
                if (*s == '"' && s[1] == '"') {
                    dlas_buf_printf(&f, "\"");
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else
                    dlas_buf_printf(&f, "%c", *s++);
            }
        } else
            while (*s && *s != ',' && *s != '\n' && *s != '\r')
                dlas_buf_printf(&f, "%c", *s++);
        char **nfields = realloc(fields, (n + 2) * sizeof *fields);
        if (!nfields) {
            *bad = 1;
            dlas_buf_free(&f);
            break;
        }
        fields = nfields;
        fields[n++] = f.s;
        fields[n] = NULL;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r')
            s++;
        if (*s == '\n')
            s++;
        else if (*s)
            *bad = 1;
        break;
    }
    *p = s;
    *nf = n;
    return fields;
}

static void free_fields(char **f)
{
    for (size_t i = 0; f && f[i]; i++)
        free(f[i]);
    free(f);
}

int dlas_results_open(struct dlas_results *res, const char *dir)
{
    memset(res, 0, sizeof *res);
    int rc = dlas_mkdirs(dir);
    if (rc)
        return rc;
    size_t n = strlen(dir) + 32;
    res->csv_path = malloc(n);
    res->json_path = malloc(n);
    if (!res->csv_path || !res->json_path)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    snprintf(res->csv_path, n, "%s/results.csv", dir);
    snprintf(res->json_path, n, "%s/results.json", dir);

    char *text;
    rc = dlas_read_file(res->csv_path, &text, NULL);
    if (rc == DLAS_ERR_NOTFOUND) {
        dlas_clear_error();
        return DLAS_OK;
    }
    if (rc)
        return rc;
    const char *p = text;
    int bad = 0;
    size_t nh;
    char **header = csv_record(&p, &nh, &bad);
    size_t line = 1;
    if (header && !bad) {
        int has_id = 0;
        for (size_t i = 0; i < nh; i++)
            has_id |= !strcmp(header[i], "cell_id");
        bad = !has_id;
    }
    char **rec;
    size_t nf;
    while (!bad && (rec = csv_record(&p, &nf, &bad))) {
        line++;
        if (nf != nh && !(nf == 1 && !rec[0][0]))
            bad = 1;
        if (!bad && nf == nh) {
            struct dlas_row row = {0};
            for (size_t i = 0; i < nh; i++)
                dlas_row_set(&row, header[i], rec[i]);
            struct dlas_row *rows = realloc(res->rows, (res->n + 1) * sizeof *rows);
            if (rows) {
                res->rows = rows;
                rows[res->n++] = row;
            } else
                dlas_row_free(&row);
        }
        free_fields(rec);
    }
    free_fields(header);
    free(text);
    if (bad)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "%s: cannot parse record %zu; move the file away to start afresh",
                          res->csv_path, line);
    return DLAS_OK;
}

long dlas_results_find(const struct dlas_results *res, const char *id, const char *hash)
{
    for (size_t i = 0; i < res->n; i++) {
        const char *rid = dlas_row_get(&res->rows[i], "cell_id");
        const char *rh = dlas_row_get(&res->rows[i], "config_hash");
        const char *st = dlas_row_get(&res->rows[i], "status");
        if (rid && !strcmp(rid, id) && rh && !strcmp(rh, hash) && st && !strcmp(st, "ok"))
            return (long)i;
    }
    return -1;
}

static int is_column(const char *k)
{
    for (size_t i = 0; dlas_result_columns[i]; i++)
        if (!strcmp(dlas_result_columns[i], k))
            return 1;
    return 0;
}

static int looks_numeric(const char *s)
{
    if (!*s)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    return !*end && !errno && isfinite(v) && strcmp(s, "-") != 0;
}

static int write_files(const struct dlas_results *res)
{
    struct dlas_buf csv = {0}, json = {0};
    for (size_t c = 0; dlas_result_columns[c]; c++) {
        dlas_buf_printf(&csv, "%s", c ? "," : "");
        dlas_csv_field(&csv, dlas_result_columns[c]);
    }
    dlas_buf_printf(&csv, "\n");
    dlas_buf_printf(&json, "[\n");
    for (size_t r = 0; r < res->n; r++) {
        const struct dlas_row *row = &res->rows[r];
        for (size_t c = 0; dlas_result_columns[c]; c++) {
            dlas_buf_printf(&csv, "%s", c ? "," : "");
            dlas_csv_field(&csv, dlas_row_get(row, dlas_result_columns[c]));
        }
        dlas_buf_printf(&csv, "\n");
        dlas_buf_printf(&json, "  {");
        for (size_t i = 0; i < row->n; i++) {
            dlas_buf_printf(&json, "%s", i ? ", " : "");
            dlas_json_string(&json, row->keys[i]);
            dlas_buf_printf(&json, ": ");
            if (looks_numeric(row->vals[i]))
                dlas_buf_printf(&json, "%s", row->vals[i]);
            else
                dlas_json_string(&json, row->vals[i]);
        }
        dlas_buf_printf(&json, "}%s\n", r + 1 < res->n ? "," : "");
    }
    dlas_buf_printf(&json, "]\n");
    int rc = dlas_write_atomic(res->csv_path, csv.s, csv.len);
    if (!rc)
        rc = dlas_write_atomic(res->json_path, json.s, json.len);
    dlas_buf_free(&csv);
    dlas_buf_free(&json);
    return rc;
}

int dlas_results_add(struct dlas_results *res, const struct dlas_row *in)
{
    struct dlas_row row = {0};
    struct dlas_buf extra = {0};
    for (size_t i = 0; i < in->n; i++) {
        dlas_row_set(&row, in->keys[i], in->vals[i]);
        if (!is_column(in->keys[i]))
            dlas_buf_printf(&extra, "%s%s=%s", extra.len ? "; " : "", in->keys[i], in->vals[i]);
    }
    if (extra.s)
        dlas_row_set(&row, "report", extra.s);
    dlas_buf_free(&extra);
    const char *id = dlas_row_get(&row, "cell_id");
    for (size_t i = 0; id && i < res->n; i++) {
        const char *rid = dlas_row_get(&res->rows[i], "cell_id");
        if (rid && !strcmp(rid, id)) {
            dlas_row_free(&res->rows[i]);
            res->rows[i] = row;
            return write_files(res);
        }
    }
    struct dlas_row *rows = realloc(res->rows, (res->n + 1) * sizeof *rows);
    if (!rows) {
        dlas_row_free(&row);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    res->rows = rows;
    rows[res->n++] = row;
    return write_files(res);
}

void dlas_results_close(struct dlas_results *res)
{
    for (size_t i = 0; i < res->n; i++)
        dlas_row_free(&res->rows[i]);
    free(res->rows);
    free(res->csv_path);
    free(res->json_path);
    memset(res, 0, sizeof *res);
}
