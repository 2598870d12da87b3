/* The per-thread error message behind every failing status. Thread-local so
 * that primitives running in worker threads cannot clobber the caller's. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <dlas/status.h>

#define ERRMSG_MAX 2048

static _Thread_local char errmsg[ERRMSG_MAX];
static _Thread_local int errstatus;

int dlas_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    errstatus = status;
    return status;
}

int dlas_error_context(const char *fmt, ...)
{
    char prefix[ERRMSG_MAX], old[ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errmsg, sizeof old);
    /* Keep the prefix whole; the old message is truncated if both overflow. */
    size_t n = strlen(prefix);
    memcpy(errmsg, prefix, n + 1);
    if (old[0] && n + 2 < sizeof errmsg) {
        memcpy(errmsg + n, ": ", 3);
        strncat(errmsg, old, sizeof errmsg - n - 3);
    }
    return errstatus;
}

const char *dlas_last_error(void) { return errmsg; }
int dlas_last_status(void) { return errstatus; }

void dlas_clear_error(void)
{
    errmsg[0] = '\0';
    errstatus = DLAS_OK;
}

const char *dlas_status_name(int status)
{
    switch (status) {
    case DLAS_OK: return "ok";
    case DLAS_ERR_INVALID: return "invalid";
    case DLAS_ERR_UNSUPPORTED: return "unsupported";
    case DLAS_ERR_UNAVAILABLE: return "unavailable";
    case DLAS_ERR_NOMEM: return "out of memory";
    case DLAS_ERR_IO: return "i/o error";
    case DLAS_ERR_CORRUPT: return "corrupt";
    case DLAS_ERR_NOTFOUND: return "not found";
    case DLAS_ERR_ABI: return "abi mismatch";
    case DLAS_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}
