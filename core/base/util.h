/* Small internal helpers shared by the core's files. */
#ifndef DLAS_UTIL_H
#define DLAS_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Growable string. */
struct dlas_buf {
    char *s;
    size_t len, cap;
};
int dlas_buf_printf(struct dlas_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dlas_buf_free(struct dlas_buf *b);

/* Write `len` bytes to path atomically: temp file in the same directory,
 * fsync, rename. Readers see the old or the new file, never a torn one. */
int dlas_write_atomic(const char *path, const void *data, size_t len);
/* Read a whole regular file (NUL-terminated); caller frees. A FIFO or a
 * device is refused before a byte is read (dlas/file.h), and so is a file
 * longer than DLAS_READ_FILE_MAX, before anything is allocated. */
#define DLAS_READ_FILE_MAX ((size_t)1 << 30)
int dlas_read_file(const char *path, char **data, size_t *len);
int dlas_mkdirs(const char *path);
/* A CSV field, quoted when needed (RFC 4180). */
void dlas_csv_field(struct dlas_buf *b, const char *s);
/* A JSON string literal. */
void dlas_json_string(struct dlas_buf *b, const char *s);
/* Number of seconds on the monotonic clock. */
double dlas_now(void);
int dlas_cmp_double(const void *a, const void *b);

#endif
