/* A one-line progress bar on stderr, drawn only when stderr is a terminal. */
#ifndef DLAS_PROGRESS_H
#define DLAS_PROGRESS_H

#include <stddef.h>

struct dlas_progress {
    int enabled;
    size_t total, done;
    double start;
};
/* mode: 1 on, 0 off, -1 when stderr is a TTY */
void dlas_progress_start(struct dlas_progress *p, size_t total, int mode);
void dlas_progress_update(struct dlas_progress *p, size_t done, const char *label);
void dlas_progress_end(struct dlas_progress *p);

#endif
