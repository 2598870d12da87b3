/* Progress of a long run on stderr: a one-line bar on a terminal; without
 * one (a batch job, a log file) one plain line per item started and
 * finished, with its id and an ETA. */
#ifndef DLAS_PROGRESS_H
#define DLAS_PROGRESS_H

#include <stddef.h>

struct dlas_progress {
    int enabled; /* the bar */
    int lines;   /* plain lines */
    size_t total, done, ran;
    double start, item_start, run_seconds;
};
/* mode: 1 bar, 0 nothing, -1 a bar on a TTY, plain lines otherwise */
void dlas_progress_start(struct dlas_progress *p, size_t total, int mode);
void dlas_progress_update(struct dlas_progress *p, size_t done, const char *label);
/* Plain-lines mode: item `id` starts (status NULL) or ends with `status`. */
void dlas_progress_point(struct dlas_progress *p, const char *id, const char *status);
void dlas_progress_end(struct dlas_progress *p);
/* "1h02m", "3m05s", "42s" */
void dlas_progress_duration(char *buf, size_t len, double seconds);

#endif
