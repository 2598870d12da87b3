/* Compressor "finetune": a chain step that trains the current graph with its
 * own recipe, so chains read as the papers describe them:
 *
 *   ( { plugin = "magnitude"; sparsity = 0.9; },
 *     { plugin = "finetune"; epochs = 2; lr = 0.01; } )
 *
 * It uses the experiment's trainer (the data pipeline, augmentation, batch
 * size and seed of the `train` group); every key given here replaces the
 * recipe's, the others keep the recipe's values. Masks are kept: pruned
 * weights stay zero. */
#include <string.h>
#include <time.h>

#include <dlas/plugin.h>
#include <dlas/train.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct stopper {
    int64_t steps, done;
};

static int count_step(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    (void)s;
    struct stopper *st = ctx;
    if (++st->done >= st->steps)
        dlas_trainer_stop(t);
    return DLAS_OK;
}

static int ft_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    if (ctx->size < offsetof(struct dlas_compress_ctx, trainer) + sizeof ctx->trainer ||
        !ctx->trainer)
        return dlas_error(DLAS_ERR_INVALID,
                          "finetune: the experiment does not train (set train.epochs > 0 so "
                          "that compressors get a trainer and its data)");
    struct dlas_trainer *t = ctx->trainer;
    struct dlas_train_options o = *dlas_trainer_options(t);
    int rc;
    o.epochs = dlas_param_int(p, "epochs");
    int64_t steps = dlas_param_int(p, "steps");
    if (dlas_param_given(p, "lr"))
        o.lr = dlas_param_float(p, "lr");
    if (dlas_param_given(p, "lr_min"))
        o.lr_min = dlas_param_float(p, "lr_min");
    if (dlas_param_given(p, "schedule") &&
        (rc = dlas_lr_kind_parse(dlas_param_str(p, "schedule"), &o.schedule)))
        return dlas_error_context("finetune");
    if (dlas_param_given(p, "warmup"))
        o.warmup = dlas_param_int(p, "warmup");
    if (dlas_param_given(p, "momentum"))
        o.momentum = dlas_param_float(p, "momentum");
    if (dlas_param_given(p, "weight_decay"))
        o.weight_decay = dlas_param_float(p, "weight_decay");
    if (steps > 0) { /* enough epochs for the steps; a hook stops there */
        int64_t spe = dlas_data_batches(dlas_trainer_data(t), DLAS_DATA_TRAIN);
        o.epochs = spe > 0 ? (steps + spe - 1) / spe : 1;
    }
    if (o.epochs < 1)
        return dlas_error(DLAS_ERR_INVALID, "finetune: epochs or steps must be >= 1");
    o.eval_every = 0;
    o.checkpoint_path = NULL;
    o.csv_path = NULL;
    o.label = "finetune";
    int evaluate = dlas_param_bool(p, "evaluate");
    struct dlas_eval before = {0}, after = {0};
    if (evaluate && (rc = dlas_trainer_evaluate(t, DLAS_DATA_TEST, &before)))
        return rc;
    if ((rc = dlas_trainer_reset(t, &o)))
        return rc;
    struct stopper st = {steps, 0};
    struct dlas_train_hook h;
    memset(&h, 0, sizeof h);
    h.size = sizeof h;
    h.ctx = &st;
    h.after_step = count_step;
    if (steps > 0 && (rc = dlas_trainer_add_hook(t, &h)))
        return rc;
    double t0 = now_s();
    rc = dlas_trainer_fit(t);
    double seconds = now_s() - t0;
    dlas_trainer_remove_hooks(t, &st);
    if (rc)
        return dlas_error_context("finetune");
    if (evaluate && (rc = dlas_trainer_evaluate(t, DLAS_DATA_TEST, &after)))
        return rc;
    ctx->host->log(DLAS_LOG_INFO, "finetune: %lld steps at lr %g%s", (long long)dlas_trainer_step(t),
                   o.lr, evaluate ? "" : " (not evaluated)");
    if (ctx->report) {
        dlas_report_num(ctx->report, "finetune.steps", (double)dlas_trainer_step(t));
        dlas_report_num(ctx->report, "finetune.epochs", (double)o.epochs);
        dlas_report_num(ctx->report, "finetune.seconds", seconds);
        if (evaluate) {
            dlas_report_num(ctx->report, "finetune.top1_before", before.top1);
            dlas_report_num(ctx->report, "finetune.top1_after", after.top1);
        }
    }
    return DLAS_OK;
}

static const struct dlas_param_spec ft_params[] = {
    {"epochs", DLAS_PARAM_INT, 0, "1", 0, 1e6, NULL, "epochs to train (when steps is 0)"},
    {"steps", DLAS_PARAM_INT, 0, "0", 0, 1e12, NULL, "train this many steps instead (0: epochs)"},
    {"lr", DLAS_PARAM_FLOAT, 0, "0.01", 0, 10, NULL, "learning rate (the recipe's if not given)"},
    {"lr_min", DLAS_PARAM_FLOAT, 0, "0", 0, 10, NULL, "cosine schedule's final rate"},
    {"schedule", DLAS_PARAM_ENUM, 0, "cosine", 0, 0, "constant|step|multistep|cosine",
     "learning-rate schedule (the recipe's if not given)"},
    {"warmup", DLAS_PARAM_INT, 0, "0", 0, 1e6, NULL, "warm-up epochs (the recipe's if not given)"},
    {"momentum", DLAS_PARAM_FLOAT, 0, "0.9", 0, 1, NULL, "SGD momentum (the recipe's if not given)"},
    {"weight_decay", DLAS_PARAM_FLOAT, 0, "0.0005", 0, 1, NULL,
     "weight decay (the recipe's if not given)"},
    {"evaluate", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "report test accuracy before and after"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops ft_ops = {sizeof(struct dlas_compressor_ops), ft_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "finetune",
     "train the compressed graph with its own recipe (a chain step)",
     "the fine-tuning step of S. Han, J. Pool, J. Tran, W. J. Dally. Learning both Weights and "
     "Connections for Efficient Neural Networks. NeurIPS 2015",
     ft_params, &ft_ops},
};

DLAS_PLUGIN("finetune", "0.1.0", "fine-tuning as a chain step", components)
