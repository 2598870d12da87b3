/* What training tells the user: progress events (epoch, step, loss,
 * accuracy, images/s, ETA) that the application's progress sink draws as a
 * bar or as periodic lines, or log lines at INFO when progress is off; and
 * the per-epoch CSV, rewritten whole and atomically from the metric history
 * so that a run resumed from a checkpoint leaves exactly one row per epoch. */
#include <stdio.h>
#include <string.h>

#include <dlas/log.h>

#include "train_impl.h"
#include "../base/progress.h"
#include "../base/util.h"

void tlog_start(struct tlog *l, int mode, double interval, const char *label, int64_t epochs,
                int64_t steps_per_epoch)
{
    memset(l, 0, sizeof *l);
    l->mode = mode;
    l->interval = interval > 0 ? interval : 30.0;
    l->epochs = epochs;
    l->spe = steps_per_epoch;
    snprintf(l->label, sizeof l->label, "%s", label && *label ? label : "train");
    l->last = dlas_now();
}

static void fmt_time(char *buf, size_t len, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, len, "?");
    else if (s >= 3600)
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void emit(const struct tlog *l, enum dlas_progress_kind kind, const char *prefix,
                 int64_t done, double eta, const char *text)
{
    struct dlas_progress_event ev = {kind, l->mode, "train", prefix, (size_t)done,
                                     (size_t)l->spe, 0, eta, text};
    dlas_progress_emit(&ev);
}

void tlog_step(struct tlog *l, int64_t epoch, int64_t index, double loss, double acc,
               double ips, double eta)
{
    double now = dlas_now();
    char t[32];
    fmt_time(t, sizeof t, eta);
    if (l->mode && (now - l->drawn >= 0.1 || index + 1 >= l->spe)) {
        l->drawn = now;
        char prefix[192], text[160];
        snprintf(prefix, sizeof prefix, "%s epoch %lld/%lld", l->label, (long long)epoch + 1,
                 (long long)l->epochs);
        snprintf(text, sizeof text, "loss %.4f acc %.2f%% %.0f img/s ETA %s", loss, 100.0 * acc,
                 ips, t);
        emit(l, DLAS_PROGRESS_UPDATE, prefix, index + 1, eta, text);
    }
    if (now - l->last < l->interval)
        return;
    l->last = now;
    char line[512];
    snprintf(line, sizeof line,
             "%s: epoch %lld/%lld step %lld/%lld loss %.4f acc %.2f%% %.0f img/s ETA %s",
             l->label, (long long)epoch + 1, (long long)l->epochs, (long long)index + 1,
             (long long)l->spe, loss, 100.0 * acc, ips, t);
    if (l->mode)
        emit(l, DLAS_PROGRESS_TICK, "", index + 1, eta, line);
    else
        dlas_log(DLAS_LOG_INFO, "%s", line);
}

void tlog_epoch(struct tlog *l, const struct dlas_epoch_metrics *m)
{
    char line[512], ev[160] = "";
    if (m->evaluated)
        snprintf(ev, sizeof ev, ", %s loss %.4f top-1 %.2f%% top-5 %.2f%%",
                 dlas_data_split_name((enum dlas_data_split)m->eval_split), m->eval_loss,
                 100.0 * m->eval_top1, 100.0 * m->eval_top5);
    snprintf(line, sizeof line,
             "%s: epoch %lld/%lld: train loss %.4f acc %.2f%%%s; lr %.4g, %.1f s, %.0f img/s",
             l->label, (long long)m->epoch, (long long)l->epochs, m->train_loss,
             100.0 * m->train_top1, ev, m->lr, m->seconds, m->images_per_s);
    if (l->mode)
        emit(l, DLAS_PROGRESS_LINE, "", l->spe, 0, line);
    else
        dlas_log(DLAS_LOG_INFO, "%s", line);
    l->last = dlas_now();
}

void tlog_end(struct tlog *l)
{
    if (l->mode)
        emit(l, DLAS_PROGRESS_END, "", l->spe, 0, "");
}

int tlog_write_csv(const char *path, const struct dlas_epoch_metrics *h, int64_t n)
{
    struct dlas_buf b = {0};
    dlas_buf_printf(&b, "epoch,steps,samples,lr,train_loss,train_top1,eval_split,eval_loss,"
                        "eval_top1,eval_top5,seconds,images_per_s\n");
    for (int64_t i = 0; i < n; i++) {
        const struct dlas_epoch_metrics *m = &h[i];
        dlas_buf_printf(&b, "%lld,%lld,%lld,%.6g,%.6f,%.6f,", (long long)m->epoch,
                        (long long)m->steps, (long long)m->samples, m->lr, m->train_loss,
                        m->train_top1);
        if (m->evaluated)
            dlas_buf_printf(&b, "%s,%.6f,%.6f,%.6f,",
                            dlas_data_split_name((enum dlas_data_split)m->eval_split),
                            m->eval_loss, m->eval_top1, m->eval_top5);
        else
            dlas_buf_printf(&b, ",,,,");
        dlas_buf_printf(&b, "%.3f,%.1f\n", m->seconds, m->images_per_s);
    }
    int rc = b.s ? dlas_write_atomic(path, b.s, b.len) : DLAS_OK;
    dlas_buf_free(&b);
    return rc;
}
