/* The trainer's layout, shared by train.c (the loop), train_ckpt.c
 * (checkpoints) and train_log.c (progress and CSV). Not installed. */
#ifndef DLAS_TRAIN_IMPL_H
#define DLAS_TRAIN_IMPL_H

#include <dlas/rng.h>
#include <dlas/train.h>

struct tlog {
    int mode;  /* 1 bar, -1 bar on a terminal (the progress sink decides), 0 log lines */
    double interval, last, drawn;
    int64_t epochs, spe;
    char label[128];
};
void tlog_start(struct tlog *l, int mode, double interval, const char *label, int64_t epochs,
                int64_t steps_per_epoch);
void tlog_step(struct tlog *l, int64_t epoch, int64_t index, double loss, double acc,
               double ips, double eta);
void tlog_epoch(struct tlog *l, const struct dlas_epoch_metrics *m);
void tlog_end(struct tlog *l);
int tlog_write_csv(const char *path, const struct dlas_epoch_metrics *h, int64_t n);

/* The running sums of the epoch in progress; checkpointed mid-epoch so that
 * a resumed epoch reports what an uninterrupted one would. */
struct epoch_acc {
    double loss_sum; /* sum over samples of the per-sample loss */
    int64_t correct, samples, steps;
    double seconds;  /* of training steps so far */
};

struct dlas_trainer {
    struct dlas_train_options o;
    char *ckpt_path, *csv_path, *label; /* owned copies of o's strings */
    struct dlas_graph *g;
    struct dlas_data *data;
    struct dlas_autograd *ag;
    struct dlas_sgd *sgd;
    struct dlas_lr_schedule sched;
    struct dlas_rng rng; /* dropout seeds, one draw per step */
    int64_t epoch, step; /* completed */
    struct epoch_acc acc;
    struct dlas_epoch_metrics *hist;
    int64_t n_hist, cap_hist;
    struct dlas_train_hook *hooks;
    int n_hooks;
    int stop; /* dlas_trainer_stop: leave fit after the step in progress */
    /* distillation */
    struct dlas_graph *teacher; /* borrowed (const in the API; only read) */
    struct dlas_autograd *tag;
    struct dlas_distill dist; /* its names point into at_names */
    char at_names[2 * DLAS_MAX_AT_PAIRS][DLAS_NAME_MAX];
    int64_t classes, spe;
};

/* Recompute the schedule from the options and the data's batches. */
void trainer_schedule(struct dlas_trainer *t);
/* A fingerprint of what determines the weights (recipe and seed), kept in
 * checkpoints so that one is never resumed under another recipe. */
uint64_t trainer_recipe_sig(const struct dlas_trainer *t);
/* Append to the history. */
int trainer_push_history(struct dlas_trainer *t, const struct dlas_epoch_metrics *m);

#endif
