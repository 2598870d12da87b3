/* Status codes and the per-thread error message.
 *
 * Every fallible dlas function returns an int status (0 = DLAS_OK). On failure
 * it records a human-readable message that the caller may fetch with
 * dlas_last_error(); libraries never print or exit, only the CLI reports. */
#ifndef DLAS_STATUS_H
#define DLAS_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

enum dlas_status {
    DLAS_OK = 0,
    DLAS_ERR_INVALID = 1,     /* bad argument or configuration */
    DLAS_ERR_UNSUPPORTED = 2, /* valid, but this implementation cannot do it */
    DLAS_ERR_UNAVAILABLE = 3, /* needed hardware or library is missing */
    DLAS_ERR_NOMEM = 4,
    DLAS_ERR_IO = 5,
    DLAS_ERR_CORRUPT = 6,     /* a file failed a format or checksum test */
    DLAS_ERR_NOTFOUND = 7,
    DLAS_ERR_ABI = 8,         /* plugin built for an incompatible core */
    DLAS_ERR_INTERNAL = 9
};

#if defined(__GNUC__)
#define DLAS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DLAS_PRINTF(a, b)
#endif

/* Record a message for `status` and return `status`, so that
 * `return dlas_error(DLAS_ERR_IO, "cannot open %s", path);` reads naturally. */
int dlas_error(int status, const char *fmt, ...) DLAS_PRINTF(2, 3);

/* Prefix the current message with context ("loading x: " + old message) and
 * return the current status unchanged. */
int dlas_error_context(const char *fmt, ...) DLAS_PRINTF(1, 2);

const char *dlas_last_error(void); /* "" when none */
int dlas_last_status(void);
void dlas_clear_error(void);
const char *dlas_status_name(int status);

#ifdef __cplusplus
}
#endif
#endif
