/* Progress of long work, reported to the application's progress sink
 * (dlas/log.h); the library draws nothing itself. */
#ifndef DLAS_PROGRESS_H
#define DLAS_PROGRESS_H

#include <stddef.h>

#include <dlas/log.h>

/* Hand ev to the sink, if one is set. */
void dlas_progress_emit(const struct dlas_progress_event *ev);

/* A counted task (a sweep's points): UPDATE events with elapsed time and ETA,
 * then END. */
struct dlas_progress {
    int mode; /* 1 bar, 0 nothing, -1 a bar when the sink's output is a terminal */
    size_t total, done;
    double start;
};
void dlas_progress_start(struct dlas_progress *p, size_t total, int mode);
void dlas_progress_update(struct dlas_progress *p, size_t done, const char *label);
void dlas_progress_end(struct dlas_progress *p);

#endif
