/* Result rows: an ordered key -> value list, and the line format a child
 * process (or an MPI rank) hands its row back in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "results.h"
#include "../base/util.h"

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
