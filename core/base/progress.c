#include <stdio.h>
#include <string.h>

#include "progress.h"
#include "util.h"

static dlas_progress_sink sink;
static void *sink_ctx;

void dlas_progress_set_sink(dlas_progress_sink s, void *ctx)
{
    sink = s;
    sink_ctx = ctx;
}

void dlas_progress_emit(const struct dlas_progress_event *ev)
{
    if (sink)
        sink(sink_ctx, ev);
}

void dlas_progress_start(struct dlas_progress *p, size_t total, int mode)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->total = total;
    p->start = dlas_now();
}

void dlas_progress_update(struct dlas_progress *p, size_t done, const char *label)
{
    p->done = done;
    if (!p->mode || !p->total)
        return;
    double el = dlas_now() - p->start;
    double eta = done ? el / (double)done * (double)(p->total - done) : 0;
    char text[160];
    snprintf(text, sizeof text, " %.0fs elapsed, ETA %.0fs  %.60s", el, eta, label ? label : "");
    struct dlas_progress_event ev = {DLAS_PROGRESS_UPDATE, p->mode, "run", "", done, p->total,
                                     el, eta, text};
    dlas_progress_emit(&ev);
}

void dlas_progress_end(struct dlas_progress *p)
{
    if (!p->mode || !p->total)
        return;
    struct dlas_progress_event ev = {DLAS_PROGRESS_END, p->mode, "run", "", p->done, p->total,
                                     dlas_now() - p->start, 0, ""};
    dlas_progress_emit(&ev);
}
