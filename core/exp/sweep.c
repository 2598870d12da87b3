/* A sweep: which points to run (resume), running them here or handing them
 * to a dispatcher (MPI ranks), writing each row through the one results
 * writer as it arrives, and progress with an ETA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "exp_internal.h"
#include "results.h"
#include "../base/progress.h"
#include "../base/util.h"

void dlas_run_options_default(struct dlas_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->resume = 1;
    o->isolate = -1; /* the experiment's `isolate` setting */
    o->progress = -1;
}

struct dlas_run_sink {
    struct dlas_experiment *e;
    struct dlas_results *res;
    struct dlas_run_summary *sum;
    int mode;               /* o->progress */
    size_t total;           /* points to run */
    size_t started, finished;
    double t0;              /* when the first point started */
    double *t_start;        /* per point of the grid */
};

static const char *run_dir(const struct dlas_experiment *e, const struct dlas_run_options *o)
{
    return o && o->output_dir ? o->output_dir : e->output_dir;
}

static int isolated(const struct dlas_experiment *e, const struct dlas_run_options *o)
{
    return o && o->isolate >= 0 ? o->isolate : dlas_param_bool(e->exp, "isolate");
}

/* "42s", "3m05s", "2h07m" */
static void duration(double s, char *out, size_t len)
{
    long t = s > 0 ? (long)(s + 0.5) : 0;
    if (s < 9.95)
        snprintf(out, len, "%.1fs", s > 0 ? s : 0.0);
    else if (t < 60)
        snprintf(out, len, "%lds", t);
    else if (t < 3600)
        snprintf(out, len, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, len, "%ldh%02ldm", t / 3600, t % 3600 / 60);
}

/* The bar (on a terminal) and, for logs, one line: a bar cannot be redrawn
 * in a file, so without a terminal each point's start and end is a line. */
static void progress(struct dlas_run_sink *s, const char *line, const char *label)
{
    if (!s->mode || !s->total)
        return;
    double el = dlas_now() - s->t0;
    double eta = s->finished ? el / (double)s->finished * (double)(s->total - s->finished) : -1;
    char text[200], e1[32], e2[32];
    duration(el, e1, sizeof e1);
    duration(eta, e2, sizeof e2);
    snprintf(text, sizeof text, " %s elapsed, ETA %s  %.60s", e1, eta < 0 ? "?" : e2, label);
    struct dlas_progress_event ev = {DLAS_PROGRESS_UPDATE, s->mode, "run", "", s->finished,
                                     s->total, el, eta, text};
    dlas_progress_emit(&ev);
    ev.kind = DLAS_PROGRESS_TICK;
    ev.text = line;
    dlas_progress_emit(&ev);
}

void dlas_run_started(struct dlas_run_sink *s, size_t i, const char *where)
{
    if (i >= s->e->n_points)
        return;
    double now = dlas_now();
    if (!s->started++)
        s->t0 = now;
    s->t_start[i] = now;
    const char *id = s->e->points[i].id;
    char line[4400];
    snprintf(line, sizeof line, "[%zu/%zu] start %s%s%s%s", s->started, s->total, id,
             where ? " (" : "", where ? where : "", where ? ")" : "");
    progress(s, line, id);
}

/* The row of point i is in pt->result: count it, say so, write it. */
static int finish(struct dlas_run_sink *s, size_t i)
{
    struct point *pt = &s->e->points[i];
    const char *st = dlas_row_get(&pt->result, "status");
    const char *err = dlas_row_get(&pt->result, "error");
    if (st && !strcmp(st, "unavailable")) {
        s->sum->unavailable++;
        dlas_log(DLAS_LOG_WARN, "%s skipped: %s", pt->id, err ? err : "");
    } else if (!st || strcmp(st, "ok")) {
        s->sum->failed++;
        dlas_log(DLAS_LOG_ERROR, "%s failed: %s", pt->id, err ? err : "");
    } else
        s->sum->ran++;
    /* the machine probe: a new best, or a row timed well below it */
    exp_probes_note(&s->e->probes, &pt->result);
    exp_probes_flag(&s->e->probes, &pt->result);
    const char *noisy = dlas_row_get(&pt->result, "timing_noisy");
    if (noisy && !strcmp(noisy, "1"))
        dlas_log(DLAS_LOG_WARN, "%s: noisy timing (%s); `dlas run --retry-noisy` reruns it",
                 pt->id, dlas_row_get(&pt->result, "timing_noise"));
    int rc = dlas_results_add(s->res, &pt->result);
    s->finished++;
    double now = dlas_now();
    double el = now - s->t0;
    char took[32], e1[32], e2[32], line[4400];
    duration(s->t_start[i] > 0 ? now - s->t_start[i] : 0, took, sizeof took);
    duration(el, e1, sizeof e1);
    duration(el / (double)s->finished * (double)(s->total - s->finished), e2, sizeof e2);
    snprintf(line, sizeof line, "[%zu/%zu] %s %s in %s; %zu to go, elapsed %s, ETA %s",
             s->finished, s->total, st ? st : "failed", pt->id, took, s->total - s->finished, e1,
             e2);
    progress(s, line, pt->id);
    return rc;
}

int dlas_run_finished(struct dlas_run_sink *s, size_t i, const char *text, const char *why)
{
    if (i >= s->e->n_points)
        return dlas_error(DLAS_ERR_INVALID, "a row for point %zu of %zu", i, s->e->n_points);
    struct point *pt = &s->e->points[i];
    struct dlas_row row = {0};
    const char *id = NULL;
    if (text && dlas_row_decode(text, &row) == DLAS_OK)
        id = dlas_row_get(&row, "cell_id");
    if (id && !strcmp(id, pt->id)) {
        dlas_row_free(&pt->result);
        pt->result = row;
    } else {
        dlas_row_free(&row);
        exp_run_point_failed(s->e, pt, why ? why : "its row came back unreadable");
    }
    return finish(s, i);
}

int dlas_experiment_run_point(struct dlas_experiment *e, const struct dlas_run_options *o,
                              size_t i, char **row)
{
    *row = NULL;
    if (i >= e->n_points)
        return dlas_error(DLAS_ERR_INVALID, "point %zu of %zu", i, e->n_points);
    e->run_dir = run_dir(e, o);
    exp_run_point(e, &e->points[i], isolated(e, o));
    *row = dlas_row_encode(&e->points[i].result);
    return *row ? DLAS_OK : dlas_error(DLAS_ERR_NOMEM, "out of memory");
}

uint64_t dlas_experiment_point_group(const struct dlas_experiment *e, size_t i)
{
    return i < e->n_points ? exp_point_model_key(e, &e->points[i]) : 0;
}

/* Which points a run has to run; the others take their rows from the
 * results. */
static size_t points_to_run(struct dlas_experiment *e, const struct dlas_run_options *o,
                            struct dlas_results *res, size_t *todo, size_t *skipped)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_points; i++) {
        struct point *pt = &e->points[i];
        long done = o->resume ? dlas_results_find(res, pt->id, pt->hash) : -1;
        if (done >= 0 && o->retry_noisy &&
            !strcmp(dlas_results_get(res, (size_t)done, "timing_noisy"), "1"))
            done = -1; /* rerun it */
        dlas_row_free(&pt->result);
        if (done >= 0) {
            const struct dlas_row *old = &res->rows[done];
            for (size_t k = 0; k < old->n; k++)
                dlas_row_set(&pt->result, old->keys[k], old->vals[k]);
            (*skipped)++;
        } else
            todo[n++] = i;
    }
    return n;
}

static int write_resolved(const struct dlas_experiment *e, const char *path)
{
    char *resolved = dlas_experiment_resolved(e);
    int rc = resolved ? dlas_write_atomic(path, resolved, strlen(resolved))
                      : dlas_error(DLAS_ERR_NOMEM, "out of memory");
    free(resolved);
    return rc;
}

/* Rows timed before a better probe came on their host: flagged now, and
 * the files rewritten once if any changed. */
static int reflag_probes(struct dlas_experiment *e, struct dlas_results *res)
{
    size_t changed = 0;
    for (size_t k = 0; k < res->n; k++)
        changed += (size_t)exp_probes_flag(&e->probes, &res->rows[k]);
    if (!changed)
        return DLAS_OK;
    dlas_log(DLAS_LOG_WARN,
             "%zu row(s) were timed while the machine was short of the best probed later (an "
             "FMA rate below %.0f%% of it, or threads over %.0fx its shortest round trip "
             "apart); `dlas run --retry-noisy` reruns them",
             changed, 100 * EXP_PROBE_FULL, EXP_PROBE_NEAR);
    return dlas_results_write(res);
}

static int run_here(struct dlas_experiment *e, const struct dlas_run_options *o,
                    const size_t *todo, size_t n, struct dlas_run_sink *s)
{
    int rc = DLAS_OK;
    for (size_t k = 0; k < n && !rc; k++) {
        dlas_run_started(s, todo[k], NULL);
        exp_run_point(e, &e->points[todo[k]], isolated(e, o));
        rc = finish(s, todo[k]);
    }
    return rc;
}

int dlas_experiment_run(struct dlas_experiment *e, const struct dlas_run_options *o,
                        struct dlas_run_summary *sum)
{
    struct dlas_run_options def;
    if (!o) {
        dlas_run_options_default(&def);
        o = &def;
    }
    memset(sum, 0, sizeof *sum);
    const char *dir = run_dir(e, o);
    struct dlas_results res;
    int rc = dlas_results_open(&res, dir, o->rebuild_results ? DLAS_RESULTS_REBUILD : 0);
    if (rc) {
        dlas_results_close(&res);
        return rc;
    }
    snprintf(sum->csv_path, sizeof sum->csv_path, "%s", res.csv_path);
    snprintf(sum->json_path, sizeof sum->json_path, "%s", res.json_path);
    snprintf(sum->config_path, sizeof sum->config_path, "%s/resolved.cfg", dir);
    size_t *todo = malloc((e->n_points ? e->n_points : 1) * sizeof *todo);
    double *t_start = calloc(e->n_points ? e->n_points : 1, sizeof *t_start);
    if (!todo || !t_start)
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = write_resolved(e, sum->config_path);
    if (!rc) {
        e->run_dir = dir;
        struct dlas_run_sink s = {e, &res, sum, o->progress, 0, 0, 0, dlas_now(), t_start};
        s.total = points_to_run(e, o, &res, todo, &sum->skipped);
        for (size_t k = 0; k < res.n; k++) /* the bests so far, for the points to wait for */
            exp_probes_note(&e->probes, &res.rows[k]);
        if (s.total && o->dispatch)
            rc = o->dispatch->run(o->dispatch->ctx, e, o, todo, s.total, &s);
        else
            rc = run_here(e, o, todo, s.total, &s);
        if (!rc)
            rc = reflag_probes(e, &res);
        if (s.mode && s.total) {
            struct dlas_progress_event ev = {DLAS_PROGRESS_END, s.mode, "run", "", s.finished,
                                             s.total, dlas_now() - s.t0, 0, ""};
            dlas_progress_emit(&ev);
        }
    }
    free(todo);
    free(t_start);
    dlas_results_close(&res);
    return rc;
}
