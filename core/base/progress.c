#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

void dlas_progress_start(struct dlas_progress *p, size_t total, int mode)
{
    memset(p, 0, sizeof *p);
    p->enabled = mode < 0 ? isatty(STDERR_FILENO) : mode;
    p->total = total;
    p->start = dlas_now();
}

void dlas_progress_update(struct dlas_progress *p, size_t done, const char *label)
{
    p->done = done;
    if (!p->enabled || !p->total)
        return;
    enum { WIDTH = 28 };
    char bar[WIDTH + 1];
    size_t fill = done * WIDTH / p->total;
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    double el = dlas_now() - p->start;
    double eta = done ? el / (double)done * (double)(p->total - done) : 0;
    fprintf(stderr, "\r\033[K[%s] %zu/%zu  %.0fs elapsed, ETA %.0fs  %.60s", bar, done, p->total,
            el, eta, label ? label : "");
    fflush(stderr);
}

void dlas_progress_end(struct dlas_progress *p)
{
    if (p->enabled && p->total) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}
