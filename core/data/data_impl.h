/* Internals of the data pipeline, shared by data.c (opening, splits,
 * statistics), data_batch.c (making one batch) and data_iter.c (workers). */
#ifndef DLAS_DATA_IMPL_H
#define DLAS_DATA_IMPL_H

#include <dlas/data.h>

struct dlas_data {
    const struct dlas_dataset_ops *ops;
    void *handle;
    int own; /* close the dataset with the pipeline */
    struct dlas_data_options opt;
    struct dlas_dataset_info info; /* mean/std: what is applied */
    int normalise;                 /* 0 under DLAS_NORM_NONE */
    int has_views;                 /* the plugin implements read_views */
    int64_t pix;                   /* C * H * W */
    /* Plugin indices of the TRAIN and VAL samples, ascending. NULL for TRAIN
     * when nothing is carved out (the identity). */
    int64_t *train_idx, *val_idx;
    int64_t n[3]; /* by enum dlas_data_split */
};

/* The plugin split a pipeline split reads from. */
static inline enum dlas_split dlas_data_plugin_split(enum dlas_data_split s)
{
    return s == DLAS_DATA_TEST ? DLAS_SPLIT_TEST : DLAS_SPLIT_TRAIN;
}

/* Everything a batch needs besides its data, so that one worker's scratch
 * never meets another's. */
struct dlas_batch_scratch {
    float *image;    /* (H + 2 pad) x (W + 2 pad) floats, one channel at a time */
    uint64_t *views; /* batch seeds for read_views */
};
int dlas_batch_scratch_init(const struct dlas_data *d, struct dlas_batch_scratch *s);
void dlas_batch_scratch_free(struct dlas_batch_scratch *s);

/* Storage of one batch; b.images/labels/indices point into it. */
struct dlas_batch_slot {
    struct dlas_batch b;
    float *images;
    int32_t *labels;
    int64_t *indices;
};
int dlas_batch_slot_init(const struct dlas_data *d, struct dlas_batch_slot *s);
void dlas_batch_slot_free(struct dlas_batch_slot *s);

/* Batch `index` of `epoch` of split s, deterministically. */
int dlas_data_fill(const struct dlas_data *d, enum dlas_data_split s, int64_t epoch,
                   int64_t index, struct dlas_batch_slot *slot, struct dlas_batch_scratch *sc);

/* Samples in split s per epoch as iterated (drop_last applied to TRAIN). */
int64_t dlas_data_epoch_samples(const struct dlas_data *d, enum dlas_data_split s);

/* Keyed random permutation of [0, n), evaluated one position at a time (a
 * Feistel network with cycle walking): any worker can place any sample of
 * any epoch without a shared shuffled array. */
struct dlas_perm {
    uint64_t n, mask, keys[6];
    int half;
};
void dlas_perm_init(struct dlas_perm *p, uint64_t n, uint64_t key);
uint64_t dlas_perm_at(const struct dlas_perm *p, uint64_t i);

/* splitmix64's finaliser, and a seed for (seed, purpose, a, b). */
uint64_t dlas_mix64(uint64_t z);
uint64_t dlas_data_seed(uint64_t seed, const char *purpose, uint64_t a, uint64_t b);

#endif
