/* Training lent to a compressor between its own steps (see
 * dlas_trainer_fit_steps in <dlas/train.h>): the experiment's recipe at a
 * constant rate, for as many steps as the compressor's hook lets it. */
#include <string.h>

#include <dlas/status.h>
#include <dlas/train.h>

int dlas_trainer_fit_steps(struct dlas_trainer *t, const char *label, double lr, int64_t steps,
                           int (*after_step)(void *hook_ctx, struct dlas_trainer *t,
                                             const struct dlas_train_step *s),
                           void *hook_ctx)
{
    struct dlas_train_options o = *dlas_trainer_options(t);
    int64_t spe = dlas_data_batches(dlas_trainer_data(t), DLAS_DATA_TRAIN);
    o.epochs = spe > 0 ? steps / spe + 1 : 1;
    if (lr > 0)
        o.lr = lr;
    o.schedule = DLAS_LR_CONSTANT;
    o.warmup = 0;
    o.eval_every = 0;
    o.checkpoint_path = NULL;
    o.csv_path = NULL;
    o.label = label;
    int rc = dlas_trainer_reset(t, &o);
    struct dlas_train_hook h;
    memset(&h, 0, sizeof h);
    h.size = sizeof h;
    h.ctx = hook_ctx;
    h.after_step = after_step;
    if (!rc)
        rc = dlas_trainer_add_hook(t, &h);
    if (!rc)
        rc = dlas_trainer_fit(t);
    dlas_trainer_remove_hooks(t, hook_ctx);
    return rc;
}
