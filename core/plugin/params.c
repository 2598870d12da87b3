/* Validated parameter sets.
 *
 * Every value, whether a spec default, a key of a config file (cfgparams.c
 * renders it back to text) or a command-line override, goes through one
 * parser and one validator here, so that all three are accepted and refused
 * by the same rules and with the same messages. The text syntax is
 * libconfig's value syntax, plus bare words for strings and a scalar standing
 * for a one-element list, both for the convenience of overrides. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dlas/params.h>
#include <dlas/status.h>

#include "cfgparams.h"
#include "../base/util.h"

union item {
    int64_t i;
    double f;
    int b;
    char *s;
};

struct value {
    int has;   /* 0 only for a required parameter not yet given */
    int given; /* from the config rather than the default */
    int n;     /* 1 for scalars */
    union item *it;
};

struct dlas_params {
    const struct dlas_param_spec *spec;
    size_t count;
    struct value *v;
};

/* ---- shared config-syntax helpers ------------------------------------- */

void dlas_fmt_double(char *buf, size_t len, double v, int force_float)
{
    if (!buf || !len)
        return;
    /* The shortest precision that reads back to the same double: "0.1", not
     * "0.10000000000000001", and still exact for values that need 17 digits. */
    char tmp[64];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v || prec == 17)
            break;
    }
    /* libconfig reads "1" as an integer; keep floats floats when written back. */
    if (force_float && isfinite(v) && !strpbrk(tmp, ".eE"))
        strcat(tmp, ".0");
    snprintf(buf, len, "%s", tmp);
}

void dlas_fmt_int(char *buf, size_t len, int64_t v)
{
    /* libconfig 1.5 silently truncates an unsuffixed literal beyond 32 bits. */
    int wide = v < INT32_MIN || v > INT32_MAX;
    snprintf(buf, len, "%" PRId64 "%s", v, wide ? "L" : "");
}

int dlas_quote(struct dlas_buf *b, const char *s)
{
    int rc = dlas_buf_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; !rc && *c; c++) {
        switch (*c) {
        case '"': rc = dlas_buf_printf(b, "\\\""); break;
        case '\\': rc = dlas_buf_printf(b, "\\\\"); break;
        case '\n': rc = dlas_buf_printf(b, "\\n"); break;
        case '\r': rc = dlas_buf_printf(b, "\\r"); break;
        case '\t': rc = dlas_buf_printf(b, "\\t"); break;
        case '\f': rc = dlas_buf_printf(b, "\\f"); break;
        default:
            if (*c < 0x20 || *c == 0x7f)
                rc = dlas_buf_printf(b, "\\x%02x", *c);
            else
                rc = dlas_buf_printf(b, "%c", *c);
        }
    }
    return rc ? rc : dlas_buf_printf(b, "\"");
}

/* ---- edit distance ---------------------------------------------------- */

static size_t levenshtein(const char *a, const char *b, int fold)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t stack[64], *row = lb + 1 <= 64 ? stack : malloc((lb + 1) * sizeof *row);
    if (!row)
        return la > lb ? la : lb; /* an upper bound: never a false "near" */
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned char ca = (unsigned char)a[i - 1], cb = (unsigned char)b[j - 1];
            int same = fold ? tolower(ca) == tolower(cb) : ca == cb;
            size_t best = diag + (same ? 0 : 1);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = row[j];
            row[j] = best;
        }
    }
    size_t d = row[lb];
    if (row != stack)
        free(row);
    return d;
}

size_t dlas_edit_distance(const char *a, const char *b)
{
    return levenshtein(a ? a : "", b ? b : "", 0);
}

const char *dlas_nearest(const char *word, const char *const *candidates, size_t n)
{
    if (!word || !candidates)
        return NULL;
    size_t len = strlen(word);
    size_t limit = len / 3 > 2 ? len / 3 : 2;
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i])
            continue;
        size_t d = levenshtein(word, candidates[i], 1);
        /* d < len: replacing every letter of a short word is no hint. */
        if (d <= limit && d < len && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* ---- lexing config-syntax text ---------------------------------------- */

enum tok_kind { TK_NONE, TK_INT, TK_FLOAT, TK_BOOL, TK_STR, TK_LIST, TK_GROUP };

struct tok {
    enum tok_kind kind;
    int overflow; /* a number literal beyond int64 (TK_INT) or double (TK_FLOAT) */
    int64_t i;
    double f;
    int b;
    char *s;   /* TK_STR: the unescaped string, owned */
    char *raw; /* as written, for messages and for numeric enum choices; owned */
};

static void tok_free(struct tok *t)
{
    free(t->s);
    free(t->raw);
    memset(t, 0, sizeof *t);
}

static void skip_ws(const char **p)
{
    while (isspace((unsigned char)**p))
        (*p)++;
}

static char *strndup_(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One or more adjacent "..." literals (libconfig concatenates them). */
static int lex_string(const char **pp, struct tok *t, char *err, size_t errlen)
{
    const char *p = *pp, *start = p;
    struct dlas_buf b = {0};
    if (dlas_buf_printf(&b, "%s", ""))
        return DLAS_ERR_NOMEM;
    while (*p == '"') {
        p++;
        while (*p && *p != '"') {
            char c = *p++;
            if (c == '\\') {
                char e = *p++;
                switch (e) {
                case '"': c = '"'; break;
                case '\\': c = '\\'; break;
                case '/': c = '/'; break;
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'x': {
                    int h = hexval((unsigned char)p[0]), l = h < 0 ? -1 : hexval((unsigned char)p[1]);
                    if (l < 0) {
                        snprintf(err, errlen, "bad \\x escape in a string");
                        dlas_buf_free(&b);
                        return DLAS_ERR_INVALID;
                    }
                    c = (char)(h * 16 + l);
                    p += 2;
                    break;
                }
                default:
                    snprintf(err, errlen, "unknown escape '\\%c' in a string", e ? e : ' ');
                    dlas_buf_free(&b);
                    return DLAS_ERR_INVALID;
                }
            }
            if (dlas_buf_printf(&b, "%c", c)) {
                dlas_buf_free(&b);
                return DLAS_ERR_NOMEM;
            }
        }
        if (*p != '"') {
            snprintf(err, errlen, "unterminated string");
            dlas_buf_free(&b);
            return DLAS_ERR_INVALID;
        }
        p++;
        const char *q = p;
        skip_ws(&q);
        if (*q == '"')
            p = q;
    }
    t->kind = TK_STR;
    t->s = b.s;
    t->raw = strndup_(start, (size_t)(p - start));
    *pp = p;
    return t->raw ? DLAS_OK : DLAS_ERR_NOMEM;
}

/* A nested [..], (..) or {..}: only skipped, since no parameter takes one. */
static int lex_nested(const char **pp, struct tok *t, char *err, size_t errlen)
{
    const char *p = *pp, *start = p;
    int depth = 0, in_str = 0;
    for (; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_str = 0;
        } else if (*p == '"')
            in_str = 1;
        else if (strchr("[({", *p))
            depth++;
        else if (strchr("])}", *p) && --depth == 0)
            break;
    }
    if (!*p) {
        snprintf(err, errlen, "unbalanced '%c'", *start);
        return DLAS_ERR_INVALID;
    }
    p++;
    t->kind = *start == '{' ? TK_GROUP : TK_LIST;
    t->raw = strndup_(start, (size_t)(p - start));
    *pp = p;
    return t->raw ? DLAS_OK : DLAS_ERR_NOMEM;
}

static int is_int_literal(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        if (!isxdigit((unsigned char)*s))
            return 0;
        while (isxdigit((unsigned char)*s))
            s++;
    } else {
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'L')
        s += s[1] == 'L' ? 2 : 1;
    return *s == '\0';
}

static void classify_bare(struct tok *t)
{
    const char *s = t->raw;
    if (!strcasecmp(s, "true") || !strcasecmp(s, "false")) {
        t->kind = TK_BOOL;
        t->b = tolower((unsigned char)s[0]) == 't';
        return;
    }
    if (is_int_literal(s)) {
        const char *d = s + (*s == '+' || *s == '-');
        int neg = *s == '-';
        errno = 0;
        if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
            /* Hex is a bit pattern, as in libconfig: 0xFFFFFFFFFFFFFFFFL is -1. */
            unsigned long long u = strtoull(d, NULL, 16);
            t->overflow = errno == ERANGE;
            t->i = (int64_t)(neg ? 0 - u : u);
            t->f = neg ? -(double)u : (double)u;
        } else {
            long long v = strtoll(s, NULL, 10);
            t->overflow = errno == ERANGE;
            t->i = v;
            t->f = strtod(s, NULL);
        }
        t->kind = TK_INT;
        return;
    }
    if (strchr("+-.0123456789", s[0]) && strpbrk(s, "0123456789")) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (*end == '\0') {
            t->kind = TK_FLOAT;
            t->f = v;
            t->overflow = !isfinite(v);
            return;
        }
    }
    t->kind = TK_STR;
    t->s = strdup(s);
}

/* One scalar (or a skipped nested aggregate). In a list a bare word ends at
 * ',' or the closing bracket; at the top level it is the whole text. */
static int lex_scalar(const char **pp, int in_list, struct tok *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    skip_ws(pp);
    const char *p = *pp;
    if (*p == '"')
        return lex_string(pp, t, err, errlen);
    if (*p && strchr("[({", *p))
        return lex_nested(pp, t, err, errlen);
    const char *start = p;
    while (*p && !(in_list && strchr(",])", *p))) {
        if (strchr("\"[](){};=,", *p)) {
            snprintf(err, errlen, "unexpected '%c'", *p);
            return DLAS_ERR_INVALID;
        }
        p++;
    }
    const char *end = p;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    *pp = p;
    if (end == start)
        return DLAS_OK; /* TK_NONE: nothing there */
    t->raw = strndup_(start, (size_t)(end - start));
    if (!t->raw)
        return DLAS_ERR_NOMEM;
    classify_bare(t);
    return t->kind == TK_STR && !t->s ? DLAS_ERR_NOMEM : DLAS_OK;
}

struct parsed {
    int is_list;
    int n;
    struct tok *t;
};

static void parsed_free(struct parsed *v)
{
    for (int i = 0; i < v->n; i++)
        tok_free(&v->t[i]);
    free(v->t);
    memset(v, 0, sizeof *v);
}

static int parsed_push(struct parsed *v, struct tok *t)
{
    struct tok *nt = realloc(v->t, (size_t)(v->n + 1) * sizeof *nt);
    if (!nt) {
        tok_free(t);
        return DLAS_ERR_NOMEM;
    }
    v->t = nt;
    v->t[v->n++] = *t;
    return DLAS_OK;
}

/* Text -> one token or a flat list of tokens. Syntax problems go into err;
 * type problems are the validator's. */
static int parse_text(const char *text, struct parsed *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    const char *p = text ? text : "";
    struct tok t;
    int rc;
    skip_ws(&p);
    if (*p == '[' || *p == '(') {
        char close = *p == '[' ? ']' : ')';
        v->is_list = 1;
        p++;
        skip_ws(&p);
        if (*p == close)
            p++;
        else
            for (;;) {
                if ((rc = lex_scalar(&p, 1, &t, err, errlen)))
                    goto fail;
                if (t.kind == TK_NONE) {
                    snprintf(err, errlen, "empty list element");
                    rc = DLAS_ERR_INVALID;
                    goto fail;
                }
                if ((rc = parsed_push(v, &t)))
                    goto fail;
                skip_ws(&p);
                if (*p == ',') {
                    p++;
                    continue;
                }
                if (*p == close) {
                    p++;
                    break;
                }
                if (*p)
                    snprintf(err, errlen, "expected ',' or '%c' in a list, found '%c'", close, *p);
                else
                    snprintf(err, errlen, "unterminated list: missing '%c'", close);
                rc = DLAS_ERR_INVALID;
                goto fail;
            }
    } else {
        if ((rc = lex_scalar(&p, 0, &t, err, errlen)))
            goto fail;
        if ((rc = parsed_push(v, &t)))
            goto fail;
    }
    skip_ws(&p);
    if (*p) {
        snprintf(err, errlen, "unexpected '%c' after the value", *p);
        rc = DLAS_ERR_INVALID;
        goto fail;
    }
    return DLAS_OK;
fail:
    parsed_free(v);
    return rc;
}

/* ---- validation ------------------------------------------------------- */

static int is_str_type(enum dlas_param_type t)
{
    return t == DLAS_PARAM_STRING || t == DLAS_PARAM_ENUM;
}

static void free_items(enum dlas_param_type type, union item *it, int n)
{
    if (it && is_str_type(type))
        for (int i = 0; i < n; i++)
            free(it[i].s);
    free(it);
}

static void value_clear(const struct dlas_param_spec *sp, struct value *v)
{
    free_items(sp->type, v->it, v->n);
    memset(v, 0, sizeof *v);
}

static const char *expected(const struct dlas_param_spec *sp, char *buf, size_t len)
{
    switch (sp->type) {
    case DLAS_PARAM_INT: return "an integer";
    case DLAS_PARAM_FLOAT: return "a number";
    case DLAS_PARAM_BOOL: return "true or false";
    case DLAS_PARAM_STRING: return "a string";
    case DLAS_PARAM_ENUM:
        snprintf(buf, len, "one of %s", sp->choices ? sp->choices : "");
        return buf;
    }
    return "a value";
}

/* What the user wrote, as a message shows it. */
static void shown(const struct tok *t, struct dlas_buf *b)
{
    switch (t->kind) {
    case TK_NONE: dlas_buf_printf(b, "nothing"); break;
    case TK_STR: dlas_quote(b, t->s); break;
    case TK_LIST: dlas_buf_printf(b, "a list %s", t->raw); break;
    case TK_GROUP: dlas_buf_printf(b, "a group %s", t->raw); break;
    default: dlas_buf_printf(b, "%s", t->raw); break;
    }
}

static int choice_index(const char *choices, const char *word, char ***names, size_t *n)
{
    /* Split "a|b|c" once per call; enum checks are rare and lists tiny. */
    *names = NULL;
    *n = 0;
    int found = -1;
    const char *c = choices ? choices : "";
    for (;;) {
        const char *bar = strchr(c, '|');
        size_t l = bar ? (size_t)(bar - c) : strlen(c);
        char **nn = realloc(*names, (*n + 1) * sizeof *nn);
        if (!nn)
            return -2;
        *names = nn;
        if (!(nn[*n] = strndup_(c, l)))
            return -2;
        if (found < 0 && word && !strcmp(nn[*n], word))
            found = (int)*n;
        (*n)++;
        if (!bar)
            break;
        c = bar + 1;
    }
    return found;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void fmt_bound(char *buf, size_t len, double v)
{
    dlas_fmt_double(buf, len, v, 0);
}

/* Exact for integers that a double cannot hold (9007199254740993 vs a bound
 * of 2^53), which a comparison in double would let through. */
static int int_in_range(int64_t v, double min, double max)
{
    const double two63 = 9223372036854775808.0;
    if (min >= two63 || max < -two63)
        return 0;
    if (min > -two63 && v < (int64_t)ceil(min))
        return 0;
    return !(max < two63 && v > (int64_t)floor(max));
}

/* One token -> one item of the spec's type. On a type or range error, `why`
 * receives what follows "key 'x'" in the message. */
static int convert(const struct dlas_param_spec *sp, const struct tok *t, union item *it,
                   struct dlas_buf *why)
{
    char ebuf[512];
    double range_v = 0;
    int ranged = 0, out_of_range = 0;
    memset(it, 0, sizeof *it);
    switch (sp->type) {
    case DLAS_PARAM_INT:
        if (t->kind == TK_INT && !t->overflow) {
            it->i = t->i;
            ranged = 1;
            out_of_range = sp->min < sp->max && !int_in_range(t->i, sp->min, sp->max);
        } else if (t->kind == TK_INT) {
            dlas_buf_printf(why, " = %s is beyond the 64-bit integer range", t->raw);
            return DLAS_ERR_INVALID;
        }
        break;
    case DLAS_PARAM_FLOAT:
        if ((t->kind == TK_INT || t->kind == TK_FLOAT) && isfinite(t->f)) {
            it->f = t->kind == TK_INT && !t->overflow ? (double)t->i : t->f;
            range_v = it->f;
            ranged = 1;
            out_of_range = sp->min < sp->max && (range_v < sp->min || range_v > sp->max);
        } else if (t->kind == TK_INT || t->kind == TK_FLOAT) {
            dlas_buf_printf(why, " = %s is beyond the range of a double", t->raw);
            return DLAS_ERR_INVALID;
        }
        break;
    case DLAS_PARAM_BOOL:
        if (t->kind == TK_BOOL) {
            it->b = t->b;
            return DLAS_OK;
        }
        break;
    case DLAS_PARAM_STRING:
        if (t->kind == TK_STR) {
            it->s = strdup(t->s);
            return it->s ? DLAS_OK : DLAS_ERR_NOMEM;
        }
        break;
    case DLAS_PARAM_ENUM: {
        /* A bare number may name a numeric choice ("tile = 4" for "2|4|6"). */
        const char *word = t->kind == TK_STR ? t->s
                         : (t->kind == TK_INT || t->kind == TK_FLOAT || t->kind == TK_BOOL) ? t->raw
                                                                                            : NULL;
        if (!word)
            break;
        char **names;
        size_t n;
        int k = choice_index(sp->choices, word, &names, &n);
        if (k >= 0) {
            it->s = strdup(names[k]);
            free_names(names, n);
            return it->s ? DLAS_OK : DLAS_ERR_NOMEM;
        }
        if (k == -2) {
            free_names(names, n);
            return DLAS_ERR_NOMEM;
        }
        const char *near = dlas_nearest(word, (const char *const *)names, n);
        dlas_buf_printf(why, " = ");
        shown(t, why);
        dlas_buf_printf(why, " is not one of %s", sp->choices);
        if (near)
            dlas_buf_printf(why, " (did you mean '%s'?)", near);
        free_names(names, n);
        return DLAS_ERR_INVALID;
    }
    }
    if (ranged) {
        if (out_of_range) {
            char lo[64], hi[64];
            fmt_bound(lo, sizeof lo, sp->min);
            fmt_bound(hi, sizeof hi, sp->max);
            dlas_buf_printf(why, " = %s is out of range [%s, %s]", t->raw, lo, hi);
            return DLAS_ERR_INVALID;
        }
        return DLAS_OK;
    }
    dlas_buf_printf(why, " expects %s, got ", expected(sp, ebuf, sizeof ebuf));
    shown(t, why);
    return DLAS_ERR_INVALID;
}

static int where_error(int status, const char *origin, const char *fmt, ...)
    DLAS_PRINTF(3, 4);
static int where_error(int status, const char *origin, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (origin && *origin)
        return dlas_error(status, "%s: %s", origin, msg);
    return dlas_error(status, "%s", msg);
}

/* Text -> a new value for parameter `sp`, leaving `out` untouched on error. */
static int parse_value(const struct dlas_param_spec *sp, const char *text, const char *origin,
                       struct value *out)
{
    char err[256] = "";
    struct parsed pv;
    int rc = parse_text(text, &pv, err, sizeof err);
    if (rc == DLAS_ERR_NOMEM)
        return dlas_error(rc, "out of memory");
    if (rc)
        return where_error(rc, origin, "key '%s': cannot read '%s': %s", sp->name,
                           text ? text : "", err);
    int list = (sp->flags & DLAS_PARAM_LIST) != 0;
    if (!list && pv.is_list) {
        rc = where_error(DLAS_ERR_INVALID, origin, "key '%s' expects a single value, got %s",
                         sp->name, text);
        parsed_free(&pv);
        return rc;
    }
    union item *items = calloc(pv.n ? (size_t)pv.n : 1, sizeof *items);
    if (!items) {
        parsed_free(&pv);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    struct dlas_buf why = {0};
    int i;
    for (i = 0; i < pv.n; i++) {
        if ((rc = convert(sp, &pv.t[i], &items[i], &why)))
            break;
    }
    if (rc == DLAS_ERR_NOMEM)
        dlas_error(rc, "out of memory");
    else if (rc && list && pv.is_list)
        where_error(rc, origin, "key '%s' element %d%s", sp->name, i + 1, why.s ? why.s : "");
    else if (rc)
        where_error(rc, origin, "key '%s'%s", sp->name, why.s ? why.s : "");
    dlas_buf_free(&why);
    if (rc) {
        free_items(sp->type, items, i);
        parsed_free(&pv);
        return rc;
    }
    out->has = 1;
    out->n = pv.n;
    out->it = items;
    parsed_free(&pv);
    return DLAS_OK;
}

/* ---- building --------------------------------------------------------- */

static int spec_error(const struct dlas_param_spec *sp, const char *fmt, const char *a)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a ? a : "");
    return dlas_error(DLAS_ERR_INVALID, "parameter spec: '%s': %s", sp->name, msg);
}

static int is_alias(const struct dlas_param_spec *sp)
{
    return (sp->flags & DLAS_PARAM_ALIAS) != 0;
}

/* An alias must name a real parameter of its own kind. */
static int alias_check(const struct dlas_param_spec *spec, size_t count,
                       const struct dlas_param_spec *sp)
{
    if (sp->flags != DLAS_PARAM_ALIAS)
        return spec_error(sp, "an alias takes no other flag%s", NULL);
    for (size_t j = 0; sp->def && j < count; j++) {
        const struct dlas_param_spec *t = &spec[j];
        if (strcmp(t->name, sp->def))
            continue;
        if (is_alias(t))
            return spec_error(sp, "is an alias of '%s', itself an alias", sp->def);
        if (t->type != sp->type)
            return spec_error(sp, "is an alias of '%s', of another type", sp->def);
        return DLAS_OK;
    }
    return spec_error(sp, "is an alias of '%s', which is not declared", sp->def ? sp->def : "");
}

static int spec_check(const struct dlas_param_spec *spec, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct dlas_param_spec *sp = &spec[i];
        if (!*sp->name)
            return dlas_error(DLAS_ERR_INVALID, "parameter spec: entry %zu has an empty name", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(spec[j].name, sp->name))
                return spec_error(sp, "declared twice%s", NULL);
        if (is_alias(sp)) {
            int rc = alias_check(spec, count, sp);
            if (rc)
                return rc;
            continue;
        }
        if (sp->type < DLAS_PARAM_INT || sp->type > DLAS_PARAM_ENUM)
            return spec_error(sp, "unknown type%s", NULL);
        if ((sp->flags & DLAS_PARAM_PATH) && sp->type != DLAS_PARAM_STRING)
            return spec_error(sp, "DLAS_PARAM_PATH marks strings only%s", NULL);
        if (sp->type == DLAS_PARAM_ENUM) {
            const char *c = sp->choices;
            if (!c || !*c || *c == '|' || c[strlen(c) - 1] == '|' || strstr(c, "||"))
                return spec_error(sp, "an enum needs choices \"a|b|c\", has \"%s\"", c);
        }
        if (!(sp->flags & DLAS_PARAM_REQUIRED) && !sp->def)
            return spec_error(sp, "neither a default nor DLAS_PARAM_REQUIRED%s", NULL);
    }
    return DLAS_OK;
}

int dlas_params_defaults(const struct dlas_param_spec *spec, struct dlas_params **out)
{
    if (!out)
        return dlas_error(DLAS_ERR_INVALID, "dlas_params_defaults: no output");
    *out = NULL;
    size_t count = 0;
    while (spec && spec[count].name)
        count++;
    int rc = spec_check(spec, count);
    if (rc)
        return rc;
    struct dlas_params *p = calloc(1, sizeof *p);
    if (!p || !(p->v = calloc(count ? count : 1, sizeof *p->v))) {
        free(p);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    p->spec = spec;
    p->count = count;
    for (size_t i = 0; i < count; i++) {
        if (spec[i].flags & (DLAS_PARAM_REQUIRED | DLAS_PARAM_ALIAS))
            continue;
        char origin[256];
        snprintf(origin, sizeof origin, "parameter spec: default of '%s'", spec[i].name);
        if ((rc = parse_value(&spec[i], spec[i].def, origin, &p->v[i]))) {
            dlas_params_free(p);
            return rc;
        }
    }
    *out = p;
    return DLAS_OK;
}

static long raw_find(const struct dlas_params *p, const char *name)
{
    for (size_t i = 0; i < p->count; i++)
        if (!strcmp(p->spec[i].name, name))
            return (long)i;
    return -1;
}

/* The entry holding `name`'s value: an alias leads to the one it names. */
static long find_index(const struct dlas_params *p, const char *name)
{
    if (!p || !name)
        return -1;
    long k = raw_find(p, name);
    return k >= 0 && is_alias(&p->spec[k]) ? raw_find(p, p->spec[k].def) : k;
}

/* Entry of the i-th parameter that is not an alias (the public index). */
static long nth_param(const struct dlas_params *p, size_t i)
{
    for (size_t k = 0; p && k < p->count; k++)
        if (!is_alias(&p->spec[k]) && i-- == 0)
            return (long)k;
    return -1;
}

int dlas_params_set(struct dlas_params *p, const char *name, const char *text, const char *origin)
{
    if (!p || !name)
        return dlas_error(DLAS_ERR_INVALID, "dlas_params_set: no parameters or no name");
    long k = find_index(p, name);
    if (k < 0) {
        const char **names = malloc((p->count ? p->count : 1) * sizeof *names);
        for (size_t i = 0; names && i < p->count; i++)
            names[i] = p->spec[i].name;
        const char *near = names ? dlas_nearest(name, names, p->count) : NULL;
        int rc = near ? where_error(DLAS_ERR_INVALID, origin, "unknown key '%s' (did you mean '%s'?)",
                                    name, near)
                      : where_error(DLAS_ERR_INVALID, origin, "unknown key '%s'", name);
        free(names);
        return rc;
    }
    struct value nv = {0};
    int rc = parse_value(&p->spec[k], text, origin, &nv);
    if (rc)
        return rc;
    value_clear(&p->spec[k], &p->v[k]);
    nv.given = 1;
    p->v[k] = nv;
    return DLAS_OK;
}

int dlas_params_check_required(const struct dlas_params *p, const char *origin)
{
    if (!p)
        return dlas_error(DLAS_ERR_INVALID, "dlas_params_check_required: no parameters");
    struct dlas_buf b = {0};
    int missing = 0;
    long k = -1;
    for (size_t i = 0; i < p->count; i++)
        if (!p->v[i].has && !is_alias(&p->spec[i])) {
            dlas_buf_printf(&b, "%s'%s'", missing ? ", " : "", p->spec[i].name);
            missing++;
            k = (long)i;
        }
    if (!missing)
        return DLAS_OK;
    int rc;
    if (missing == 1) {
        const char *help = p->spec[k].help;
        rc = where_error(DLAS_ERR_INVALID, origin, "missing required key %s%s%s%s", b.s,
                         help ? " (" : "", help ? help : "", help ? ")" : "");
    } else
        rc = where_error(DLAS_ERR_INVALID, origin, "missing required keys %s", b.s);
    dlas_buf_free(&b);
    return rc;
}

struct dlas_params *dlas_params_clone(const struct dlas_params *p)
{
    if (!p)
        return NULL;
    struct dlas_params *c = calloc(1, sizeof *c);
    if (!c || !(c->v = calloc(p->count ? p->count : 1, sizeof *c->v))) {
        free(c);
        dlas_error(DLAS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->spec = p->spec;
    c->count = p->count;
    for (size_t i = 0; i < p->count; i++) {
        const struct value *s = &p->v[i];
        struct value *d = &c->v[i];
        *d = *s;
        d->it = NULL;
        if (!s->has)
            continue;
        d->it = calloc(s->n ? (size_t)s->n : 1, sizeof *d->it);
        if (!d->it)
            goto nomem;
        for (int j = 0; j < s->n; j++) {
            d->it[j] = s->it[j];
            if (is_str_type(p->spec[i].type) && !(d->it[j].s = strdup(s->it[j].s))) {
                d->n = j; /* so that free releases only what was copied */
                goto nomem;
            }
        }
    }
    return c;
nomem:
    dlas_params_free(c);
    dlas_error(DLAS_ERR_NOMEM, "out of memory");
    return NULL;
}

void dlas_params_free(struct dlas_params *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++)
        value_clear(&p->spec[i], &p->v[i]);
    free(p->v);
    free(p);
}

/* ---- inspecting ------------------------------------------------------- */

const struct dlas_param_spec *dlas_params_spec(const struct dlas_params *p)
{
    return p ? p->spec : NULL;
}

size_t dlas_params_count(const struct dlas_params *p)
{
    size_t n = 0;
    for (size_t k = 0; p && k < p->count; k++)
        n += !is_alias(&p->spec[k]);
    return n;
}

const char *dlas_params_name(const struct dlas_params *p, size_t i)
{
    long k = nth_param(p, i);
    return k >= 0 ? p->spec[k].name : NULL;
}

static int format_item(struct dlas_buf *b, const struct dlas_param_spec *sp, const union item *it)
{
    char num[64];
    switch (sp->type) {
    case DLAS_PARAM_INT:
        dlas_fmt_int(num, sizeof num, it->i);
        return dlas_buf_printf(b, "%s", num);
    case DLAS_PARAM_FLOAT:
        dlas_fmt_double(num, sizeof num, it->f, 1);
        return dlas_buf_printf(b, "%s", num);
    case DLAS_PARAM_BOOL:
        return dlas_buf_printf(b, "%s", it->b ? "true" : "false");
    case DLAS_PARAM_STRING:
    case DLAS_PARAM_ENUM:
        return dlas_quote(b, it->s);
    }
    return DLAS_ERR_INTERNAL;
}

static int format_value(struct dlas_buf *b, const struct dlas_param_spec *sp, const struct value *v)
{
    if (!v->has)
        return dlas_buf_printf(b, "<unset>");
    if (!(sp->flags & DLAS_PARAM_LIST))
        return format_item(b, sp, &v->it[0]);
    int rc = dlas_buf_printf(b, "[");
    for (int i = 0; !rc && i < v->n; i++) {
        if (i)
            rc = dlas_buf_printf(b, ", ");
        if (!rc)
            rc = format_item(b, sp, &v->it[i]);
    }
    return rc ? rc : dlas_buf_printf(b, "]");
}

int dlas_params_format(const struct dlas_params *p, size_t i, char *buf, size_t len)
{
    if (buf && len)
        buf[0] = '\0';
    long k = nth_param(p, i);
    if (k < 0)
        return dlas_error(DLAS_ERR_INVALID, "dlas_params_format: no parameter %zu", i);
    struct dlas_buf b = {0};
    int rc = format_value(&b, &p->spec[k], &p->v[k]);
    if (!rc && buf && len)
        snprintf(buf, len, "%s", b.s);
    dlas_buf_free(&b);
    if (!rc && !p->v[k].has)
        rc = dlas_error(DLAS_ERR_INVALID, "required key '%s' is unset", p->spec[k].name);
    return rc;
}

char *dlas_params_describe(const struct dlas_params *p)
{
    struct dlas_buf b = {0};
    int rc = dlas_buf_printf(&b, "%s", "");
    for (size_t i = 0, n = 0; !rc && p && i < p->count; i++) {
        if (is_alias(&p->spec[i]))
            continue;
        rc = dlas_buf_printf(&b, "%s%s=", n++ ? "; " : "", p->spec[i].name);
        if (!rc)
            rc = format_value(&b, &p->spec[i], &p->v[i]);
    }
    if (rc) {
        dlas_buf_free(&b);
        return NULL;
    }
    return b.s;
}

/* ---- accessors -------------------------------------------------------- */

/* The value of `name` if it is declared with one of the types in `types`
 * (a bit mask of 1 << type), is (or is not) a list, and has a value. */
static const struct value *lookup(const struct dlas_params *p, const char *name, unsigned types,
                                  int list)
{
    long k = find_index(p, name);
    if (k < 0)
        return NULL;
    const struct dlas_param_spec *sp = &p->spec[k];
    if (!(types & (1u << sp->type)) || !!(sp->flags & DLAS_PARAM_LIST) != list || !p->v[k].has)
        return NULL;
    return &p->v[k];
}

#define T(x) (1u << DLAS_PARAM_##x)

int64_t dlas_param_int(const struct dlas_params *p, const char *name)
{
    const struct value *v = lookup(p, name, T(INT), 0);
    return v ? v->it[0].i : 0;
}

double dlas_param_float(const struct dlas_params *p, const char *name)
{
    const struct value *v = lookup(p, name, T(FLOAT), 0);
    return v ? v->it[0].f : 0.0;
}

int dlas_param_bool(const struct dlas_params *p, const char *name)
{
    const struct value *v = lookup(p, name, T(BOOL), 0);
    return v ? v->it[0].b : 0;
}

const char *dlas_param_str(const struct dlas_params *p, const char *name)
{
    const struct value *v = lookup(p, name, T(STRING) | T(ENUM), 0);
    return v ? v->it[0].s : NULL;
}

int dlas_param_list_len(const struct dlas_params *p, const char *name)
{
    const struct value *v = lookup(p, name, T(INT) | T(FLOAT) | T(BOOL) | T(STRING) | T(ENUM), 1);
    return v ? v->n : 0;
}

/* There is no list_bool accessor, so bool lists read as 0/1 through list_int. */
int64_t dlas_param_list_int(const struct dlas_params *p, const char *name, int i)
{
    long k = find_index(p, name);
    const struct value *v = lookup(p, name, T(INT) | T(BOOL), 1);
    if (!v || i < 0 || i >= v->n)
        return 0;
    return p->spec[k].type == DLAS_PARAM_BOOL ? v->it[i].b : v->it[i].i;
}

double dlas_param_list_float(const struct dlas_params *p, const char *name, int i)
{
    const struct value *v = lookup(p, name, T(FLOAT), 1);
    return v && i >= 0 && i < v->n ? v->it[i].f : 0.0;
}

const char *dlas_param_list_str(const struct dlas_params *p, const char *name, int i)
{
    const struct value *v = lookup(p, name, T(STRING) | T(ENUM), 1);
    return v && i >= 0 && i < v->n ? v->it[i].s : NULL;
}

int dlas_param_given(const struct dlas_params *p, const char *name)
{
    long k = find_index(p, name);
    return k >= 0 && p->v[k].given;
}
