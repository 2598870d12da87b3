/* Reading results.json: an array of flat objects whose values are strings,
 * numbers, booleans or null (what the writer produces). Strict mode fails on
 * the first fault with the file and line; lenient mode (--rebuild-results)
 * skips an object that does not parse and resumes at the next one. Numbers
 * keep their text, so a row read back is the row that was written. */
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "results.h"
#include "../base/util.h"

struct js {
    const char *s, *end;
    size_t line;
    const char *why;
};

static void ws(struct js *j)
{
    while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r')) {
        j->line += *j->s == '\n';
        j->s++;
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

static void utf8(struct dlas_buf *b, unsigned cp)
{
    if (cp < 0x80)
        dlas_buf_printf(b, "%c", (char)cp);
    else if (cp < 0x800)
        dlas_buf_printf(b, "%c%c", (char)(0xc0 | cp >> 6), (char)(0x80 | (cp & 0x3f)));
    else if (cp < 0x10000)
        dlas_buf_printf(b, "%c%c%c", (char)(0xe0 | cp >> 12), (char)(0x80 | ((cp >> 6) & 0x3f)),
                        (char)(0x80 | (cp & 0x3f)));
    else
        dlas_buf_printf(b, "%c%c%c%c", (char)(0xf0 | cp >> 18), (char)(0x80 | ((cp >> 12) & 0x3f)),
                        (char)(0x80 | ((cp >> 6) & 0x3f)), (char)(0x80 | (cp & 0x3f)));
}

static unsigned hex4(struct js *j)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = j->s < j->end ? hexval(*j->s) : -1;
        if (h < 0) {
            j->why = "bad \\u escape";
            return 0;
        }
        v = v * 16 + (unsigned)h;
        j->s++;
    }
    return v;
}

/* A string literal; returns its text (caller frees) or NULL with j->why. */
static char *string(struct js *j)
{
    if (j->s >= j->end || *j->s != '"') {
        j->why = "expected a string";
        return NULL;
    }
    j->s++;
    struct dlas_buf b = {0};
    dlas_buf_printf(&b, "%s", "");
    while (!j->why) {
        if (j->s >= j->end) {
            j->why = "a string is not closed before the end of the file";
            break;
        }
        unsigned char c = (unsigned char)*j->s++;
        if (c == '"')
            return b.s;
        if (c < 0x20) {
            j->why = "a control character inside a string";
            break;
        }
        if (c != '\\') {
            dlas_buf_printf(&b, "%c", c);
            continue;
        }
        if (j->s >= j->end) {
            j->why = "a string is not closed before the end of the file";
            break;
        }
        char e = *j->s++;
        switch (e) {
        case '"': case '\\': case '/': dlas_buf_printf(&b, "%c", e); break;
        case 'b': dlas_buf_printf(&b, "\b"); break;
        case 'f': dlas_buf_printf(&b, "\f"); break;
        case 'n': dlas_buf_printf(&b, "\n"); break;
        case 'r': dlas_buf_printf(&b, "\r"); break;
        case 't': dlas_buf_printf(&b, "\t"); break;
        case 'u': {
            unsigned cp = hex4(j);
            if (!j->why && cp >= 0xd800 && cp < 0xdc00 && j->end - j->s >= 6 && j->s[0] == '\\' &&
                j->s[1] == 'u') {
                j->s += 2;
                unsigned lo = hex4(j);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (!j->why && cp == 0)
                j->why = "a NUL character (\\u0000) inside a string";
            if (!j->why)
                utf8(&b, cp);
            break;
        }
        default: j->why = "bad escape in a string";
        }
    }
    dlas_buf_free(&b);
    return NULL;
}

int results_json_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return 0;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* A scalar value as text: strings unescaped, numbers as written, null "". */
static char *value(struct js *j)
{
    if (j->s < j->end && *j->s == '"')
        return string(j);
    const char *start = j->s;
    while (j->s < j->end && !strchr(",}] \t\r\n", *j->s))
        j->s++;
    size_t n = (size_t)(j->s - start);
    char *t = malloc(n + 1);
    if (!t) {
        j->why = "out of memory";
        return NULL;
    }
    memcpy(t, start, n);
    t[n] = '\0';
    if (!strcmp(t, "null"))
        t[0] = '\0';
    else if (strcmp(t, "true") && strcmp(t, "false") && !results_json_number(t)) {
        free(t);
        j->why = n ? "expected a string, number, true, false or null"
                   : "expected a value (nested objects and arrays are not results)";
        return NULL;
    }
    return t;
}

static int object(struct js *j, struct dlas_row *row)
{
    memset(row, 0, sizeof *row);
    j->s++; /* '{' */
    ws(j);
    if (j->s < j->end && *j->s == '}') {
        j->s++;
        return 0;
    }
    while (!j->why) {
        ws(j);
        char *k = string(j);
        if (!k)
            break;
        ws(j);
        if (j->s >= j->end || *j->s != ':') {
            free(k);
            j->why = "expected ':' after a field name";
            break;
        }
        j->s++;
        ws(j);
        char *v = value(j);
        if (v && dlas_row_get(row, k))
            j->why = "a field appears twice in one row";
        else if (v && dlas_row_set(row, k, v))
            j->why = "out of memory";
        free(k);
        free(v);
        if (j->why)
            break;
        ws(j);
        if (j->s < j->end && *j->s == ',') {
            j->s++;
            continue;
        }
        if (j->s < j->end && *j->s == '}') {
            j->s++;
            return 0;
        }
        j->why = "expected ',' or '}' in a row";
    }
    dlas_row_free(row);
    return -1;
}

static int fail(const char *path, size_t line, const char *what)
{
    return dlas_error(DLAS_ERR_CORRUPT,
                      "%s:%zu: %s; the file was left untouched (move it away, or rerun with "
                      "--rebuild-results to keep the rows that parse)",
                      path, line, what);
}

/* Lenient recovery: the next line that starts an object. */
static void skip_to_next_object(struct js *j)
{
    while (j->s < j->end) {
        if (*j->s == '\n') {
            j->line++;
            const char *p = j->s + 1;
            while (p < j->end && (*p == ' ' || *p == '\t'))
                p++;
            if (p < j->end && *p == '{') {
                j->s = p;
                return;
            }
        }
        j->s++;
    }
}

int results_parse_json(const char *path, const char *text, size_t len, int lenient,
                       struct results_table *t)
{
    memset(t, 0, sizeof *t);
    const char *nul = memchr(text, '\0', len);
    struct js j = {text, nul ? nul : text + len, 1, NULL};
    if (nul && !lenient) {
        for (const char *p = text; p < nul; p++)
            j.line += *p == '\n';
        return fail(path, j.line, "a NUL byte");
    }
    ws(&j);
    if (j.s >= j.end || *j.s != '[') {
        if (!lenient)
            return fail(path, j.line, "expected '[' (an array of rows)");
        t->dropped++;
        skip_to_next_object(&j);
    } else
        j.s++;
    for (;;) {
        ws(&j);
        if (j.s < j.end && *j.s == ']') {
            j.s++;
            ws(&j);
            if (j.s < j.end && !lenient)
                return fail(path, j.line, "text after the closing ']'");
            return DLAS_OK;
        }
        if (j.s >= j.end) {
            if (!lenient)
                return fail(path, j.line, "the file ends before the closing ']' (truncated?)");
            return DLAS_OK;
        }
        size_t line = j.line;
        struct dlas_row row;
        j.why = NULL;
        if (*j.s != '{')
            j.why = "expected a row ('{')";
        else if (object(&j, &row) == 0) {
            const char *id = dlas_row_get(&row, "cell_id");
            if (!id || !*id) {
                dlas_row_free(&row);
                j.why = "a row without a cell_id";
            } else {
                int rc = results_table_push(t, &row, line);
                if (rc)
                    return rc;
                ws(&j);
                if (j.s < j.end && *j.s == ',') {
                    j.s++;
                    continue;
                }
                if (j.s >= j.end || *j.s == ']')
                    continue;
                j.why = "expected ',' or ']' after a row";
            }
        }
        if (!lenient)
            return fail(path, j.line, j.why);
        t->dropped++;
        skip_to_next_object(&j);
    }
}
