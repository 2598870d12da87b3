/* Reading results.csv (RFC 4180) strictly: a NUL byte, an unterminated quote,
 * a record with the wrong number of fields, a header without the columns
 * every results file has, or a repeated header cell is an error naming the
 * file and line. The lenient mode (for --rebuild-results) skips what does not
 * parse and keeps the rest. */
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "results.h"
#include "../base/util.h"

const char *const dlas_results_required[] = {"experiment", "cell_id", "config_hash", "status",
                                             "model", "compressor", "primitive", "backend",
                                             "seed", NULL};

void results_table_free(struct results_table *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        free(t->cols[i]);
    free(t->cols);
    for (size_t i = 0; i < t->n; i++)
        dlas_row_free(&t->rows[i]);
    free(t->rows);
    free(t->lines);
    memset(t, 0, sizeof *t);
}

int results_table_push(struct results_table *t, struct dlas_row *row, size_t line)
{
    struct dlas_row *rows = realloc(t->rows, (t->n + 1) * sizeof *rows);
    if (rows)
        t->rows = rows;
    size_t *lines = rows ? realloc(t->lines, (t->n + 1) * sizeof *lines) : NULL;
    if (!lines) {
        dlas_row_free(row);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    t->lines = lines;
    t->rows[t->n] = *row;
    t->lines[t->n++] = line;
    memset(row, 0, sizeof *row);
    return DLAS_OK;
}

struct cursor {
    const char *s, *end;
    size_t line;
};

static void free_fields(char **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i]);
    free(f);
}

/* One record; *why is set when it does not parse (the cursor then stands at
 * the start of the next line, so a lenient reader can go on). */
static char **record(struct cursor *c, size_t *nf, const char **why)
{
    char **fields = NULL;
    size_t n = 0;
    *why = NULL;
    for (;;) {
        struct dlas_buf f = {0};
        dlas_buf_printf(&f, "%s", "");
        if (c->s < c->end && *c->s == '"') {
            c->s++;
            for (;;) {
                if (c->s >= c->end) {
                    *why = "a quoted field is not closed before the end of the file";
                    break;
                }
                if (*c->s == '"' && c->s + 1 < c->end && c->s[1] == '"') {
                    dlas_buf_printf(&f, "\"");
                    c->s += 2;
                } else if (*c->s == '"') {
                    c->s++;
                    break;
                } else {
                    if (*c->s == '\n')
                        c->line++;
                    dlas_buf_printf(&f, "%c", *c->s++);
                }
            }
        } else
            while (c->s < c->end && *c->s != ',' && *c->s != '\n' && *c->s != '\r') {
                if (*c->s == '"' && !*why)
                    *why = "a quote inside an unquoted field";
                dlas_buf_printf(&f, "%c", *c->s++);
            }
        char **nfields = realloc(fields, (n + 1) * sizeof *fields);
        if (!nfields) {
            dlas_buf_free(&f);
            *why = "out of memory";
            break;
        }
        fields = nfields;
        fields[n++] = f.s;
        if (*why)
            break;
        if (c->s < c->end && *c->s == ',') {
            c->s++;
            continue;
        }
        if (c->s < c->end && *c->s == '\r')
            c->s++;
        if (c->s < c->end && *c->s == '\n') {
            c->s++;
            c->line++;
        } else if (c->s < c->end)
            *why = "text after a closing quote";
        break;
    }
    if (*why) { /* resynchronise at the next line */
        while (c->s < c->end && *c->s != '\n')
            c->s++;
        if (c->s < c->end) {
            c->s++;
            c->line++;
        }
    }
    *nf = n;
    return fields;
}

static int fail(const char *path, size_t line, const char *what)
{
    return dlas_error(DLAS_ERR_CORRUPT,
                      "%s:%zu: %s; the file was left untouched (move it away, or rerun with "
                      "--rebuild-results to keep the rows that parse)",
                      path, line, what);
}

static int check_header(const char *path, char **h, size_t nh)
{
    char msg[512];
    for (size_t i = 0; i < nh; i++) {
        if (!h[i][0]) {
            snprintf(msg, sizeof msg, "header cell %zu is empty", i + 1);
            return fail(path, 1, msg);
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(h[i], h[j])) {
                snprintf(msg, sizeof msg, "header names column '%.100s' twice", h[i]);
                return fail(path, 1, msg);
            }
    }
    for (size_t r = 0; dlas_results_required[r]; r++) {
        size_t i = 0;
        while (i < nh && strcmp(h[i], dlas_results_required[r]))
            i++;
        if (i == nh) {
            snprintf(msg, sizeof msg, "header has no column '%s' (renamed or damaged?)",
                     dlas_results_required[r]);
            return fail(path, 1, msg);
        }
    }
    return DLAS_OK;
}

int results_parse_csv(const char *path, const char *text, size_t len, int lenient,
                      struct results_table *t)
{
    memset(t, 0, sizeof *t);
    const char *nul = memchr(text, '\0', len);
    if (nul && !lenient) {
        size_t line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        return fail(path, line, "a NUL byte");
    }
    struct cursor c = {text, nul ? nul : text + len, 1};
    if (c.s == c.end)
        return DLAS_OK; /* empty file: no rows yet */
    const char *why;
    size_t nh;
    char **header = record(&c, &nh, &why);
    int rc = why ? fail(path, 1, why) : check_header(path, header, nh);
    if (rc) {
        free_fields(header, nh);
        return rc;
    }
    t->cols = header;
    t->ncols = nh;
    while (c.s < c.end) {
        size_t line = c.line, nf;
        char **f = record(&c, &nf, &why);
        char msg[256];
        if (!why && nf == 1 && !f[0][0]) { /* blank line */
            free_fields(f, nf);
            continue;
        }
        if (!why && nf != nh) {
            snprintf(msg, sizeof msg, "record has %zu fields, the header %zu", nf, nh);
            why = msg;
        }
        struct dlas_row row = {0};
        for (size_t i = 0; !why && i < nh; i++)
            if (dlas_row_set(&row, header[i], f[i]))
                why = "out of memory";
        const char *id = why ? NULL : dlas_row_get(&row, "cell_id");
        if (!why && (!id || !*id))
            why = "record has an empty cell_id";
        free_fields(f, nf);
        if (why) {
            dlas_row_free(&row);
            if (!lenient)
                return fail(path, line, why);
            t->dropped++;
            continue;
        }
        if ((rc = results_table_push(t, &row, line)))
            return rc;
    }
    if (nul)
        t->dropped++; /* lenient: whatever followed the NUL byte */
    return DLAS_OK;
}
