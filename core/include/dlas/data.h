/* The data pipeline between a dataset plugin and training or evaluation.
 *
 * A dlas_data wraps an opened dataset: it carves a validation split out of
 * the plugin's train split, settles per-channel normalisation, and hands out
 * iterators that deliver batches (float NCHW, normalised, augmented for
 * training) ready to be bound as a graph's input tensor. Background workers
 * prepare the next batches while the consumer works on the current one, and
 * keep going across epoch boundaries so that a new epoch does not start
 * with an empty queue.
 *
 * Determinism: every random choice (the validation carve, each epoch's order,
 * each sample's crop and flip, a plugin's random views) is a function of the
 * seed, the epoch and the sample alone, never of which thread got there
 * first. The same seed gives the same batches with any number of workers and
 * any prefetch depth, including none. */
#ifndef DLAS_DATA_H
#define DLAS_DATA_H

#include <stdint.h>

#include <dlas/params.h>
#include <dlas/plugin.h>
#include <dlas/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dlas_data_split {
    DLAS_DATA_TRAIN = 0, /* the plugin's train split less the validation carve */
    DLAS_DATA_VAL = 1,   /* carved from the plugin's train split */
    DLAS_DATA_TEST = 2   /* the plugin's test split */
};
const char *dlas_data_split_name(enum dlas_data_split s); /* "train", "val", "test" */

enum dlas_norm {
    DLAS_NORM_NONE = 0, /* pixels stay in [0, 1] */
    DLAS_NORM_AUTO,     /* the dataset's mean/std if it reports them, else COMPUTE */
    DLAS_NORM_COMPUTE,  /* measured on the TRAIN split (the validation carve excluded) */
    DLAS_NORM_GIVEN     /* mean/std from the options */
};

struct dlas_data_options {
    uint32_t size; /* set by dlas_data_options_default; fields are append-only */
    /* The source of every random choice; derive it from the experiment's RNG,
     * e.g. dlas_rng_u64(&stream) of a stream made with dlas_rng_derive. */
    uint64_t seed;
    double val_fraction; /* share of the plugin's train split held out, [0, 1) */
    enum dlas_norm normalise;
    float mean[4], std[4];  /* per channel, in [0, 1] units: DLAS_NORM_GIVEN */
    int64_t stats_samples;  /* computing stats: at most this many, evenly spaced; 0 = all */
    int64_t batch;          /* samples per batch, >= 1 */
    /* TRAIN only: VAL and TEST are always read in order, whole, as they are. */
    int shuffle;      /* a new order every epoch */
    int drop_last;    /* leave out a last batch shorter than `batch` */
    int crop_padding; /* random crop of the image zero-padded by this many pixels; 0 off */
    int hflip;        /* mirror each image with probability 1/2 */
    int views;        /* ask the plugin for its own random views (read_views) if it has them */
    /* Loading: `workers` background threads keep up to `prefetch` batches
     * ready ahead of the consumer; workers = 0 loads in the caller's thread. */
    int workers;
    int prefetch;
    /* TRAIN only: train on part of the training split (after the validation
     * carve): a fraction (0 < x <= 1) or a count of samples (x > 1), picked
     * by a permutation keyed with the seed and kept in the plugin's order;
     * the same samples every epoch. 0: all. */
    double train_subset;
};
/* seed 0, no validation, AUTO normalisation over at most 10000 samples,
 * batch 128, shuffle, keep the last batch, no augmentation, views on,
 * 1 worker, prefetch 2. */
void dlas_data_options_default(struct dlas_data_options *o);

/* The pipeline options as plugin-style parameters ("val_fraction",
 * "normalise" = none|auto|compute|given, "mean", "std", "stats_samples",
 * "batch", "shuffle", "drop_last", "crop_padding", "hflip", "views",
 * "workers", "prefetch"), so that a config group can be validated with the
 * same machinery as plugins' and turned into options. The seed is not a
 * parameter, it comes from the experiment: options_from_params keeps
 * o->seed when o was initialised by dlas_data_options_default, else sets 0. */
const struct dlas_param_spec *dlas_data_param_spec(void);
int dlas_data_options_from_params(const struct dlas_params *p, struct dlas_data_options *o);

struct dlas_data;

/* Wrap an opened dataset (borrowed: ops and handle must outlive the
 * pipeline). Carves VAL, settles normalisation (COMPUTE reads the samples it
 * needs here) and checks the options against the dataset. */
int dlas_data_open(const struct dlas_dataset_ops *ops, void *handle,
                   const struct dlas_data_options *o, struct dlas_data **out);
/* Open a dataset component with params and wrap it; the pipeline owns it and
 * closes it in dlas_data_close. */
int dlas_data_open_component(const struct dlas_component *c, const struct dlas_host *host,
                             const struct dlas_params *p, const struct dlas_data_options *o,
                             struct dlas_data **out);
/* Iterators of d must be freed first. */
void dlas_data_close(struct dlas_data *d);

/* The dataset's info, with mean/std those the pipeline applies (0 and 1
 * under DLAS_NORM_NONE). */
const struct dlas_dataset_info *dlas_data_info(const struct dlas_data *d);
const struct dlas_data_options *dlas_data_options(const struct dlas_data *d);
int64_t dlas_data_size(const struct dlas_data *d, enum dlas_data_split s);
/* Batches of s in one epoch (drop_last counted for TRAIN). */
int64_t dlas_data_batches(const struct dlas_data *d, enum dlas_data_split s);
/* The index, in the plugin's own split, of the i-th sample of s (in the
 * unshuffled order: VAL and TRAIN keep the plugin's order). -1 if out of range. */
int64_t dlas_data_index(const struct dlas_data *d, enum dlas_data_split s, int64_t i);

/* Samples first .. first+n-1 of s, in order, normalised, without augmentation,
 * in the caller's thread. images: n x C x H x W floats; either may be NULL. */
int dlas_data_read(const struct dlas_data *d, enum dlas_data_split s, int64_t first, int64_t n,
                   float *images, int32_t *labels);

struct dlas_batch {
    int64_t epoch; /* the epoch it belongs to */
    int64_t index; /* its number within the epoch, from 0 */
    int last;      /* 1 for the last batch of its epoch */
    int64_t n;     /* samples; < batch only for a last, short batch */
    struct dlas_tensor images; /* F32, n x C x H x W, normalised; owned by the iterator */
    const int32_t *labels;     /* n */
    const int64_t *indices;    /* n: each sample's index in the plugin's split */
};

struct dlas_data_iter;

/* Batches of s for epochs first_epoch .. first_epoch + n_epochs - 1, one after
 * another (n_epochs <= 0: without end). Several iterators may run at once on
 * one dlas_data, e.g. validation while training batches are prefetched. */
int dlas_data_iter_new(struct dlas_data *d, enum dlas_data_split s, int64_t first_epoch,
                       int64_t n_epochs, struct dlas_data_iter **out);
/* The next batch, valid until the next call or dlas_data_iter_free; NULL
 * after the last. A worker's failure is returned here, in order, with its
 * message (the plugin's, naming the file), and again on every later call. */
int dlas_data_iter_next(struct dlas_data_iter *it, const struct dlas_batch **batch);
/* Stops the workers (they may be mid-batch) and frees everything. */
void dlas_data_iter_free(struct dlas_data_iter *it);

/* Copy a batch into a caller's tensor, e.g. a graph's fixed-size input: F32,
 * 4-D, the batch's C x H x W, at least b->n rows (rows past n are zeroed).
 * labels, if not NULL, receives n labels. */
int dlas_batch_copy(const struct dlas_batch *b, struct dlas_tensor *images, int32_t *labels);

#ifdef __cplusplus
}
#endif
#endif
