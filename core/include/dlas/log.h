/* Levelled logging to stderr. The library only ever logs through here, so a
 * user can silence or raise verbosity in one place. */
#ifndef DLAS_LOG_H
#define DLAS_LOG_H

#include <dlas/status.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dlas_log_level {
    DLAS_LOG_ERROR = 0,
    DLAS_LOG_WARN = 1,
    DLAS_LOG_INFO = 2,
    DLAS_LOG_DEBUG = 3
};

void dlas_log(enum dlas_log_level level, const char *fmt, ...) DLAS_PRINTF(2, 3);
void dlas_log_set_level(enum dlas_log_level level);
enum dlas_log_level dlas_log_get_level(void);

#ifdef __cplusplus
}
#endif
#endif
