/* Levelled logging and progress. The library never writes to stdout or
 * stderr itself: its log lines and the progress of long work (a sweep's
 * points, training steps and epochs) go to sinks that the application sets.
 * The dlas command sets sinks that write to stderr (a bar on a terminal,
 * plain lines otherwise); with no sink set, both are dropped. */
#ifndef DLAS_LOG_H
#define DLAS_LOG_H

#include <stddef.h>

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

/* Receives each log line at or above the level (without a newline). May be
 * called from several threads at once. NULL drops log lines. */
typedef void (*dlas_log_sink)(void *ctx, enum dlas_log_level level, const char *line);
void dlas_log_set_sink(dlas_log_sink sink, void *ctx);

enum dlas_progress_kind {
    DLAS_PROGRESS_UPDATE, /* a task's state changed: a bar may redraw (at most ~10 a second) */
    DLAS_PROGRESS_TICK,   /* the same state as a line, every few seconds, for outputs that
                           * cannot redraw a bar (a log file) */
    DLAS_PROGRESS_LINE,   /* a line to keep (an epoch's summary) */
    DLAS_PROGRESS_END     /* the task ended: clear the bar */
};

struct dlas_progress_event {
    enum dlas_progress_kind kind;
    int mode;            /* what the caller asked for: 1 a bar, -1 a bar on a terminal,
                          * 0 never a bar (then only lines come) */
    const char *task;    /* "run", "train" */
    const char *prefix;  /* before the bar ("train epoch 3/15"), or "" */
    size_t done, total;  /* units of work of the bar */
    double elapsed, eta; /* seconds; eta < 0 when unknown */
    const char *text;    /* after the bar (UPDATE), or the whole line (TICK, LINE) */
};
/* Receives progress events of long work; NULL drops them. */
typedef void (*dlas_progress_sink)(void *ctx, const struct dlas_progress_event *ev);
void dlas_progress_set_sink(dlas_progress_sink sink, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
