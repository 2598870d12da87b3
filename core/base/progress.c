#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

void dlas_progress_start(struct dlas_progress *p, size_t total, int mode)
{
    memset(p, 0, sizeof *p);
    p->enabled = mode < 0 ? isatty(STDERR_FILENO) : mode;
    p->lines = mode < 0 && !p->enabled;
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

void dlas_progress_duration(char *buf, size_t len, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, len, "%lds", t);
}

void dlas_progress_point(struct dlas_progress *p, const char *id, const char *status)
{
    if (!p->lines)
        return;
    double now = dlas_now();
    if (!status) {
        p->item_start = now;
        fprintf(stderr, "[%zu/%zu] start %s\n", p->done + 1, p->total, id);
    } else {
        double took = now - p->item_start;
        p->run_seconds += took;
        p->ran++;
        size_t left = p->total > p->done + 1 ? p->total - p->done - 1 : 0;
        char t[32], eta[32];
        dlas_progress_duration(t, sizeof t, took);
        dlas_progress_duration(eta, sizeof eta, p->run_seconds / (double)p->ran * (double)left);
        fprintf(stderr, "[%zu/%zu] %s %s in %s; %zu left, ETA %s\n", p->done + 1, p->total,
                status, id, t, left, left ? eta : "0s");
    }
    fflush(stderr);
}

void dlas_progress_end(struct dlas_progress *p)
{
    if (p->enabled && p->total) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}
