#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dlas/file.h>
#include <dlas/status.h>

#include "util.h"

int dlas_buf_printf(struct dlas_buf *b, const char *fmt, ...)
{
    for (;;) {
        size_t avail = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? avail : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return dlas_error(DLAS_ERR_INTERNAL, "format error");
        if (b->s && (size_t)n < avail) {
            b->len += (size_t)n;
            return DLAS_OK;
        }
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        b->s = s;
        b->cap = cap;
        if (b->len == 0)
            b->s[0] = '\0';
    }
}

void dlas_buf_free(struct dlas_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

int dlas_write_atomic(const char *path, const void *data, size_t len)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int rc = dlas_error(DLAS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int rc = dlas_error(DLAS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return rc;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) || close(fd) || rename(tmp, path)) {
        int rc = dlas_error(DLAS_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return DLAS_OK;
}

int dlas_read_file(const char *path, char **data, size_t *len)
{
    FILE *f;
    int64_t size;
    int rc = dlas_file_fopen(path, &f, &size);
    if (rc)
        return rc;
    if ((uint64_t)size > DLAS_READ_FILE_MAX) {
        fclose(f);
        return dlas_error(DLAS_ERR_INVALID, "%s: %lld bytes, more than the %zu MiB dlas reads "
                          "whole; refused", path, (long long)size, DLAS_READ_FILE_MAX >> 20);
    }
    struct dlas_buf b = {0};
    char chunk[65536];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + r > DLAS_READ_FILE_MAX) { /* it grew while being read */
            fclose(f);
            dlas_buf_free(&b);
            return dlas_error(DLAS_ERR_INVALID, "%s: grew past %zu MiB while being read; refused",
                              path, DLAS_READ_FILE_MAX >> 20);
        }
        if (b.len + r + 1 > b.cap) {
            size_t cap = b.cap ? b.cap : 65536;
            while (cap < b.len + r + 1)
                cap *= 2;
            char *s = realloc(b.s, cap);
            if (!s) {
                fclose(f);
                dlas_buf_free(&b);
                return dlas_error(DLAS_ERR_NOMEM, "out of memory reading %s", path);
            }
            b.s = s;
            b.cap = cap;
        }
        memcpy(b.s + b.len, chunk, r);
        b.len += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        dlas_buf_free(&b);
        return dlas_error(DLAS_ERR_IO, "cannot read %s", path);
    }
    if (!b.s && !(b.s = calloc(1, 1)))
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    b.s[b.len] = '\0';
    *data = b.s;
    if (len)
        *len = b.len;
    return DLAS_OK;
}

int dlas_mkdirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) && errno != EEXIST) {
                int rc = dlas_error(DLAS_ERR_IO, "cannot create directory %s: %s", p,
                                    strerror(errno));
                free(p);
                return rc;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return DLAS_OK;
}

void dlas_csv_field(struct dlas_buf *b, const char *s)
{
    if (!s)
        s = "";
    if (!strpbrk(s, ",\"\n\r")) {
        dlas_buf_printf(b, "%s", s);
        return;
    }
    dlas_buf_printf(b, "\"");
    for (; *s; s++)
        dlas_buf_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    dlas_buf_printf(b, "\"");
}

void dlas_json_string(struct dlas_buf *b, const char *s)
{
    dlas_buf_printf(b, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            dlas_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            dlas_buf_printf(b, "\\u%04x", c);
        else
            dlas_buf_printf(b, "%c", c);
    }
    dlas_buf_printf(b, "\"");
}

double dlas_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int dlas_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
