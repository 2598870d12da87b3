/* Training an experiment point's model (runner.c calls it between building
 * the model and compressing it). Not installed. */
#ifndef DLAS_EXP_TRAIN_H
#define DLAS_EXP_TRAIN_H

#include <dlas/train.h>

#include "exp_internal.h"

/* What stays alive for the compressors: the pipeline, the trainer (on the
 * point's graph) and the trained model before compression. */
struct exp_training {
    struct dlas_data *data;
    struct dlas_trainer *trainer;
    struct dlas_graph *teacher;
};

/* Train g as the experiment's `train` group says, or load it from the model
 * cache: <dir>/models/<model>-<key>.ckpt, where key hashes the dataset's and
 * model's parameters, the recipe and the seed, so that points differing only
 * in compressors, primitives or backends share one trained model. The same
 * file is the training checkpoint, so a killed run resumes. Adds train_*
 * columns to row. */
int exp_train_point(const struct dlas_experiment *e, const struct point *pt, const char *dir,
                    const struct dlas_dataset_ops *dops, void *dataset,
                    const struct dlas_params *p_data, const struct dlas_params *p_model,
                    const struct dlas_rng *root, struct dlas_graph *g, struct dlas_row *row,
                    struct exp_training *out);
void exp_training_free(struct exp_training *t);

#endif
