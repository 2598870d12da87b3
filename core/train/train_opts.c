/* The training recipe: defaults, the `train` config group's parameter spec
 * (so that `dlas validate` checks it like any plugin's), and turning
 * validated parameters into options. */
#include <math.h>
#include <string.h>

#include <dlas/status.h>
#include <dlas/train.h>

static const struct dlas_param_spec train_spec[] = {
    {"epochs", DLAS_PARAM_INT, 0, "0", 0, 100000, NULL, "training epochs (0: evaluate as built)"},
    {"batch", DLAS_PARAM_INT, 0, "128", 1, 65536, NULL, "training batch size"},
    {"lr", DLAS_PARAM_FLOAT, 0, "0.1", 0, 100, NULL, "base learning rate"},
    {"momentum", DLAS_PARAM_FLOAT, 0, "0.9", 0, 1, NULL, "SGD momentum"},
    {"nesterov", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL, "Nesterov momentum"},
    {"weight_decay", DLAS_PARAM_FLOAT, 0, "5e-4", 0, 1, NULL, "L2 weight decay"},
    {"decay_bn_bias", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "apply weight decay to batchnorm parameters and biases too (PyTorch's default)"},
    {"schedule", DLAS_PARAM_ENUM, 0, "cosine", 0, 0, "constant|step|multistep|cosine",
     "learning-rate schedule (after warm-up; cosine anneals per step to lr_min)"},
    {"lr_min", DLAS_PARAM_FLOAT, 0, "0", 0, 100, NULL, "cosine: final learning rate"},
    {"gamma", DLAS_PARAM_FLOAT, 0, "0.1", 0, 1, NULL, "step, multistep: factor at each decay"},
    {"step_size", DLAS_PARAM_INT, 0, "30", 1, 100000, NULL, "step: epochs between decays"},
    {"milestones", DLAS_PARAM_INT, DLAS_PARAM_LIST, "[]", 1, 100000, NULL,
     "multistep: epochs at which the rate is multiplied by gamma"},
    {"warmup", DLAS_PARAM_INT, 0, "0", 0, 100000, NULL,
     "linear warm-up epochs (the rate ramps up per step)"},
    {"label_smoothing", DLAS_PARAM_FLOAT, 0, "0", 0, 1, NULL, "label smoothing"},
    {"seed", DLAS_PARAM_INT, 0, "0", 0, 4294967295.0, NULL, "0: the experiment seed"},
    {"checkpoint_every", DLAS_PARAM_INT, 0, "1", 0, 1000000, NULL,
     "epochs between checkpoints (0: none)"},
    {"checkpoint_steps", DLAS_PARAM_INT, 0, "0", 0, 1000000000, NULL,
     "also a checkpoint every this many steps (0: off)"},
    {"threads", DLAS_PARAM_INT, 0, "0", 0, 1024, NULL, "training threads (0: all cores)"},
    {"eval_every", DLAS_PARAM_INT, 0, "1", 0, 100000, NULL,
     "epochs between evaluations on the validation split, else the test split (0: only at "
     "the end)"},
    {"val_fraction", DLAS_PARAM_FLOAT, 0, "0", 0, 0.9, NULL,
     "share of the training split held out for validation"},
    {"crop_padding", DLAS_PARAM_INT, 0, "0", 0, 64, NULL,
     "augmentation: random crop of the image zero-padded by this many pixels (0: off)"},
    {"hflip", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL, "augmentation: random horizontal flips"},
    {"workers", DLAS_PARAM_INT, 0, "1", 0, 64, NULL, "data loading threads (0: inline)"},
    {"max_steps", DLAS_PARAM_INT, 0, "0", 0, 1000000000, NULL,
     "quick runs: at most this many steps per epoch (0: whole epochs); the schedule follows"},
    {"subset", DLAS_PARAM_FLOAT, 0, "0", 0, 1e12, NULL,
     "quick runs: train on part of the training split, a fraction (0 < subset <= 1) or a "
     "count of samples (> 1), picked by the seed (0: all)"},
    {"cache", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "reuse a model trained by an earlier point with the same dataset, model, recipe and seed"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

const struct dlas_param_spec *dlas_train_param_spec(void) { return train_spec; }

void dlas_train_options_default(struct dlas_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->epochs = 0;
    o->batch = 128;
    o->lr = 0.1;
    o->momentum = 0.9;
    o->weight_decay = 5e-4;
    o->decay_bn_bias = 1;
    o->schedule = DLAS_LR_COSINE;
    o->gamma = 0.1;
    o->step_size = 30;
    o->checkpoint_every = 1;
    o->progress = -1;
    o->log_interval = 30.0;
    o->eval_every = 1;
    o->eval_split = -1;
}

int dlas_train_options_from_params(const struct dlas_params *p, struct dlas_train_options *o)
{
    dlas_train_options_default(o);
    if (!p)
        return DLAS_OK;
    o->epochs = dlas_param_int(p, "epochs");
    o->batch = dlas_param_int(p, "batch");
    o->lr = dlas_param_float(p, "lr");
    o->momentum = dlas_param_float(p, "momentum");
    o->nesterov = dlas_param_bool(p, "nesterov");
    o->weight_decay = dlas_param_float(p, "weight_decay");
    o->decay_bn_bias = dlas_param_bool(p, "decay_bn_bias");
    int rc = dlas_lr_kind_parse(dlas_param_str(p, "schedule"), &o->schedule);
    if (rc)
        return rc;
    o->lr_min = dlas_param_float(p, "lr_min");
    o->gamma = dlas_param_float(p, "gamma");
    o->step_size = dlas_param_int(p, "step_size");
    int nm = dlas_param_list_len(p, "milestones");
    if (nm > DLAS_LR_MAX_MILESTONES)
        return dlas_error(DLAS_ERR_INVALID, "train: %d milestones; at most %d", nm,
                          DLAS_LR_MAX_MILESTONES);
    o->n_milestones = nm;
    for (int i = 0; i < nm; i++) {
        o->milestones[i] = dlas_param_list_int(p, "milestones", i);
        if (i && o->milestones[i] <= o->milestones[i - 1])
            return dlas_error(DLAS_ERR_INVALID, "train: milestones must be ascending");
    }
    o->warmup = dlas_param_int(p, "warmup");
    o->label_smoothing = dlas_param_float(p, "label_smoothing");
    o->seed = (uint64_t)dlas_param_int(p, "seed");
    o->checkpoint_every = dlas_param_int(p, "checkpoint_every");
    o->checkpoint_steps = dlas_param_int(p, "checkpoint_steps");
    o->threads = (int)dlas_param_int(p, "threads");
    o->eval_every = (int)dlas_param_int(p, "eval_every");
    o->max_steps = dlas_param_int(p, "max_steps");
    double subset = dlas_param_float(p, "subset");
    if (subset > 1 && subset != floor(subset))
        return dlas_error(DLAS_ERR_INVALID,
                          "train: subset = %g: a fraction is at most 1, a count of samples is a "
                          "whole number", subset);
    if (o->nesterov && !(o->momentum > 0))
        return dlas_error(DLAS_ERR_INVALID, "train: nesterov = true needs momentum > 0");
    return DLAS_OK;
}
