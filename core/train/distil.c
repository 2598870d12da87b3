/* Training a student from the teacher with attention transfer (the shared
 * part of the moonshine, blockswap and hakd compressors). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <dlas/distil.h>
#include <dlas/status.h>
#include <dlas/train.h>

int dlas_distil_from_scratch(const struct dlas_params *p)
{
    const char *init = p ? dlas_param_str(p, "init") : NULL;
    return !init || strcmp(init, "teacher") != 0;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Attention points: the sums of the blocks that end a stage, or of all. */
static int attention_pairs(const struct dlas_params *p, const struct dlas_residual_block *b,
                           int n, struct dlas_distill *d, const char *who)
{
    const char *mode = dlas_param_str(p, "attention");
    int all = mode && !strcmp(mode, "blocks"), none = mode && !strcmp(mode, "none");
    d->n_pairs = 0;
    for (int i = 0; i < n && !none; i++) {
        if (!all && !b[i].stage_end)
            continue;
        if (d->n_pairs == DLAS_MAX_AT_PAIRS)
            return dlas_error(DLAS_ERR_INVALID,
                              "%s: %d attention points are more than the trainer takes (%d); "
                              "use attention = \"stages\"",
                              who, all ? n : d->n_pairs + 1, DLAS_MAX_AT_PAIRS);
        d->student[d->n_pairs] = d->teacher[d->n_pairs] = b[i].add;
        d->n_pairs++;
    }
    return DLAS_OK;
}

static int report(struct dlas_compress_ctx *ctx, const char *who, const char *key, double v)
{
    char k[128];
    snprintf(k, sizeof k, "%s.%s", who, key);
    return dlas_report_num(ctx->report, k, v);
}

int dlas_distil_student(struct dlas_compress_ctx *ctx, const struct dlas_params *p,
                        const char *who, const struct dlas_residual_block *blocks, int n_blocks)
{
    if (!ctx || !p || !who)
        return dlas_error(DLAS_ERR_INVALID, "distil: NULL argument");
    const int has_train = ctx->size >= offsetof(struct dlas_compress_ctx, teacher) +
                                           sizeof ctx->teacher &&
                          ctx->trainer && ctx->teacher;
    int64_t epochs = dlas_param_int(p, "epochs");
    if (epochs < 0)
        epochs = has_train ? dlas_trainer_options(ctx->trainer)->epochs : 0;
    if (epochs == 0) {
        /* asked for, it is news; fallen back to, a warning */
        if (ctx->host)
            ctx->host->log(dlas_param_int(p, "epochs") == 0 ? DLAS_LOG_INFO : DLAS_LOG_WARN,
                           "%s: the student is not trained (epochs = 0%s)", who,
                           has_train ? "" : ", and the experiment trains no teacher");
        return report(ctx, who, "train_epochs", 0);
    }
    if (!has_train)
        return dlas_error(DLAS_ERR_INVALID,
                          "%s: training the student needs a trained teacher: set train.epochs > 0 "
                          "in the experiment (or epochs = 0 here to build the student only)",
                          who);

    struct dlas_train_options o = *dlas_trainer_options(ctx->trainer);
    o.epochs = epochs;
    if (dlas_param_float(p, "lr") > 0)
        o.lr = dlas_param_float(p, "lr");
    o.checkpoint_path = NULL;
    o.csv_path = NULL;
    struct dlas_distill d;
    memset(&d, 0, sizeof d);
    d.alpha = dlas_param_float(p, "alpha");
    d.temperature = dlas_param_float(p, "temperature");
    int rc = attention_pairs(p, blocks, n_blocks, &d, who);
    /* the trainer weighs AT by beta/2 (Zagoruyko & Komodakis); Moonshine by
     * beta * 3/n */
    d.beta = d.n_pairs ? 2.0 * dlas_param_float(p, "beta") * 3.0 / d.n_pairs : 0.0;
    if (!rc && (rc = dlas_trainer_reset(ctx->trainer, &o)))
        dlas_error_context("%s: student recipe", who);
    if (!rc && (rc = dlas_trainer_set_teacher(ctx->trainer, ctx->teacher, &d)))
        dlas_error_context("%s: teacher", who);
    if (rc)
        return rc;
    if (ctx->host)
        ctx->host->log(DLAS_LOG_INFO,
                       "%s: training the student for %lld epochs (lr %g, alpha %g, beta %g at %d "
                       "attention points)",
                       who, (long long)epochs, o.lr, d.alpha, dlas_param_float(p, "beta"),
                       d.n_pairs);
    double t0 = seconds_now();
    rc = dlas_trainer_fit(ctx->trainer);
    double secs = seconds_now() - t0;
    dlas_trainer_set_teacher(ctx->trainer, NULL, NULL);
    if (rc)
        return dlas_error_context("%s: training the student", who);
    int64_t nh = 0;
    const struct dlas_epoch_metrics *h = dlas_trainer_history(ctx->trainer, &nh);
    if ((rc = report(ctx, who, "train_seconds", secs)) ||
        (rc = report(ctx, who, "train_epochs", (double)epochs)))
        return rc;
    if (nh > 0 && h[nh - 1].evaluated)
        rc = report(ctx, who, "student_top1", h[nh - 1].eval_top1);
    return rc;
}
