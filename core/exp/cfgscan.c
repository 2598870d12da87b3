/* dlas_cfg_prescan: the tokens of a libconfig file that libconfig 1.5 itself
 * mishandles, found before it reads the file.
 *
 * The scan follows libconfig's lexical rules only as far as needed to find
 * integer literals and @include directives: comments (#, //, slash-star) and
 * strings are skipped, names are read whole (they may hold digits and '-'),
 * and a number is an integer when it has no '.' and no exponent. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlas/file.h>
#include <dlas/status.h>

#include "cfgscan.h"

/* libconfig allows 10 levels of @include; a little more is harmless. */
#define MAX_INCLUDE_DEPTH 16
/* An experiment file is text written by hand. */
#define MAX_CONFIG_BYTES ((int64_t)64 << 20)

struct scan {
    const char *path;
    const char *s, *end;
    int line;
    char key[128]; /* the last name followed by '=' or ':' */
};

static int read_text(const char *path, char **text, size_t *len)
{
    int fd;
    int64_t size;
    int rc = dlas_file_open(path, &fd, &size);
    if (rc)
        return rc;
    if (size > MAX_CONFIG_BYTES) {
        close(fd);
        return dlas_error(DLAS_ERR_INVALID, "%s: %lld bytes is too large for an experiment file",
                          path, (long long)size);
    }
    char *b = malloc((size_t)size + 1);
    if (!b) {
        close(fd);
        return dlas_error(DLAS_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t n = read(fd, b + got, (size_t)size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    b[got] = '\0';
    *text = b;
    *len = got;
    return DLAS_OK;
}

static int is_name_start(int c) { return isalpha(c) || c == '*'; }
static int is_name_char(int c) { return isalnum(c) || c == '_' || c == '-' || c == '*'; }

static void skip_to_eol(struct scan *sc)
{
    while (sc->s < sc->end && *sc->s != '\n')
        sc->s++;
}

static void skip_block_comment(struct scan *sc)
{
    sc->s += 2;
    while (sc->s < sc->end && !(sc->s[0] == '*' && sc->s + 1 < sc->end && sc->s[1] == '/')) {
        if (*sc->s == '\n')
            sc->line++;
        sc->s++;
    }
    sc->s = sc->s < sc->end ? sc->s + 2 : sc->end;
}

static void skip_string(struct scan *sc)
{
    sc->s++;
    while (sc->s < sc->end && *sc->s != '"') {
        if (*sc->s == '\\' && sc->s + 1 < sc->end)
            sc->s++;
        if (*sc->s == '\n')
            sc->line++;
        sc->s++;
    }
    if (sc->s < sc->end)
        sc->s++;
}

/* A number token starting at sc->s; an error when it is an integer without
 * the L suffix that libconfig would wrap to 32 bits. */
static int number(struct scan *sc)
{
    const char *t = sc->s;
    if (*sc->s == '+' || *sc->s == '-')
        sc->s++;
    int hex = sc->s + 1 < sc->end && sc->s[0] == '0' && (sc->s[1] == 'x' || sc->s[1] == 'X');
    int is_float = 0;
    while (sc->s < sc->end) {
        char c = *sc->s;
        if (c == '.' || (!hex && (c == 'e' || c == 'E')))
            is_float = 1;
        if (isalnum((unsigned char)c) || c == '.')
            sc->s++;
        else if ((c == '+' || c == '-') && !hex && (sc->s[-1] == 'e' || sc->s[-1] == 'E'))
            sc->s++;
        else
            break;
    }
    if (is_float)
        return DLAS_OK;
    size_t len = (size_t)(sc->s - t);
    char tok[64];
    if (len >= sizeof tok)
        len = sizeof tok - 1;
    memcpy(tok, t, len);
    tok[len] = '\0';
    size_t n = strlen(tok);
    int suffix = 0;
    while (n && (tok[n - 1] == 'L' || tok[n - 1] == 'l')) {
        tok[--n] = '\0';
        suffix = 1;
    }
    errno = 0;
    char *e;
    int wraps;
    long long shown;
    if (hex) {
        unsigned long long u = strtoull(tok, &e, 16);
        wraps = errno == ERANGE || u > 0xFFFFFFFFull;
        shown = (long long)(int32_t)(uint32_t)u;
        if (suffix && errno == ERANGE)
            return dlas_error(DLAS_ERR_INVALID, "%s:%d: %s%s%s: integer does not fit in 64 bits",
                              sc->path, sc->line, sc->key, *sc->key ? " = " : "", tok);
    } else {
        long long v = strtoll(tok, &e, 10);
        if (errno == ERANGE)
            return dlas_error(DLAS_ERR_INVALID, "%s:%d: %s%s%s: integer does not fit in 64 bits",
                              sc->path, sc->line, sc->key, *sc->key ? " = " : "", tok);
        wraps = v < INT32_MIN || v > INT32_MAX;
        shown = (long long)(int32_t)(uint32_t)(unsigned long long)v;
    }
    if (*e || suffix || !wraps)
        return DLAS_OK; /* not a number libconfig wraps (or not one at all: its parser says) */
    return dlas_error(DLAS_ERR_INVALID,
                      "%s:%d: %s%s%s: integer out of the 32-bit range, which libconfig would "
                      "silently read as %lld; write %sL if a 64-bit value is meant",
                      sc->path, sc->line, sc->key, *sc->key ? " = " : "", tok, shown, tok);
}

static int scan_file(const char *path, const char *include_dir, int depth);

/* The name of `@include "name"`: up to the next quote. libconfig 1.5 reads it
 * the same way, across line breaks, opens include_dir/name with fopen and, if
 * that stream cannot be read (a directory: an empty name, or one cut short by
 * a NUL byte), its flex scanner calls exit(). So a name that is empty or holds
 * a NUL byte, a line break or a backslash (whose escapes libconfig versions
 * read differently) is refused here, and the file it names must be one the
 * pre-scan can read, a regular file. Sets *found when the quote closes (else
 * libconfig reports the unclosed quote). */
static int include_name(struct scan *sc, const char **q, char *file, size_t cap, int *found)
{
    const char *name = *q, *p = *q;
    const char *why = NULL;
    for (; p < sc->end && *p != '"'; p++) {
        if (*p == '\\')
            why = "a backslash";
        else if (*p == '\0')
            why = "a NUL byte";
        else if (*p == '\n')
            why = "a line break";
    }
    *found = p < sc->end;
    if (!*found)
        return DLAS_OK;
    *q = p;
    size_t n = (size_t)(p - name);
    if (why)
        return dlas_error(DLAS_ERR_INVALID, "%s:%d: @include path holds %s", sc->path, sc->line, why);
    if (n == 0)
        return dlas_error(DLAS_ERR_INVALID, "%s:%d: @include path is empty", sc->path, sc->line);
    if (n >= cap)
        return dlas_error(DLAS_ERR_INVALID, "%s:%d: @include path is too long", sc->path, sc->line);
    memcpy(file, name, n);
    file[n] = '\0';
    return DLAS_OK;
}

/* `@include "file"` at the start of a line (libconfig's rule). */
static int include(struct scan *sc, const char *include_dir, int depth)
{
    const char *q = sc->s + 8;
    while (q < sc->end && (*q == ' ' || *q == '\t'))
        q++;
    if (q >= sc->end || *q != '"')
        return DLAS_OK; /* libconfig's parser reports it */
    q++;
    char file[PATH_MAX], full[PATH_MAX];
    int found = 0;
    int rc = include_name(sc, &q, file, sizeof file, &found);
    if (rc || !found)
        return rc;
    int w = file[0] != '/' && include_dir ? snprintf(full, sizeof full, "%s/%s", include_dir, file)
                                          : snprintf(full, sizeof full, "%s", file);
    if (w < 0 || (size_t)w >= sizeof full)
        return dlas_error(DLAS_ERR_INVALID, "%s:%d: @include path is too long", sc->path, sc->line);
    if (depth >= MAX_INCLUDE_DEPTH)
        return dlas_error(DLAS_ERR_INVALID, "%s:%d: @include \"%s\": includes nested deeper than %d "
                          "(a file that includes itself?)",
                          sc->path, sc->line, file, MAX_INCLUDE_DEPTH);
    rc = scan_file(full, include_dir, depth + 1);
    if (rc)
        return dlas_error_context("%s:%d: @include \"%s\"", sc->path, sc->line, file);
    sc->s = q + 1;
    return DLAS_OK;
}

static int scan_file(const char *path, const char *include_dir, int depth)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_text(path, &text, &len);
    if (rc == DLAS_ERR_NOTFOUND && depth == 0)
        return dlas_error(DLAS_ERR_IO, "%s: cannot read file: %s", path, "no such file");
    if (rc)
        return rc;
    struct scan sc = {path, text, text + len, 1, ""};
    int line_start = 1;
    while (!rc && sc.s < sc.end) {
        char c = *sc.s;
        if (c == '\n') {
            sc.line++;
            sc.s++;
            line_start = 1;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r') {
            sc.s++;
            continue;
        }
        if (line_start && c == '@' && (size_t)(sc.end - sc.s) > 8 && !strncmp(sc.s, "@include", 8)) {
            rc = include(&sc, include_dir, depth);
            if (!rc)
                skip_to_eol(&sc);
            continue;
        }
        line_start = 0;
        if (c == '#' || (c == '/' && sc.s + 1 < sc.end && sc.s[1] == '/'))
            skip_to_eol(&sc);
        else if (c == '/' && sc.s + 1 < sc.end && sc.s[1] == '*')
            skip_block_comment(&sc);
        else if (c == '"')
            skip_string(&sc);
        else if (is_name_start((unsigned char)c)) {
            const char *t = sc.s;
            while (sc.s < sc.end && is_name_char((unsigned char)*sc.s))
                sc.s++;
            const char *u = sc.s;
            while (u < sc.end && (*u == ' ' || *u == '\t'))
                u++;
            if (u < sc.end && (*u == '=' || *u == ':')) {
                size_t n = (size_t)(sc.s - t) < sizeof sc.key ? (size_t)(sc.s - t) : sizeof sc.key - 1;
                memcpy(sc.key, t, n);
                sc.key[n] = '\0';
            }
        } else if (isdigit((unsigned char)c) ||
                   ((c == '+' || c == '-') && sc.s + 1 < sc.end &&
                    isdigit((unsigned char)sc.s[1])))
            rc = number(&sc);
        else
            sc.s++;
    }
    free(text);
    return rc;
}

int dlas_cfg_prescan(const char *path, const char *include_dir)
{
    return scan_file(path, include_dir, 0);
}
