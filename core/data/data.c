/* The data pipeline: options, opening over a dataset, the validation carve,
 * and the accessors. Statistics are in data_stats.c, batches in
 * data_batch.c, the workers in data_iter.c. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/data.h>
#include <dlas/log.h>

#include "data_impl.h"

int dlas_data_compute_stats(struct dlas_data *d); /* data_stats.c */

const char *dlas_data_split_name(enum dlas_data_split s)
{
    switch (s) {
    case DLAS_DATA_TRAIN: return "train";
    case DLAS_DATA_VAL: return "val";
    case DLAS_DATA_TEST: return "test";
    }
    return "?";
}

void dlas_data_options_default(struct dlas_data_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->normalise = DLAS_NORM_AUTO;
    o->stats_samples = 10000;
    o->batch = 128;
    o->shuffle = 1;
    o->views = 1;
    o->workers = 1;
    o->prefetch = 2;
    for (int c = 0; c < 4; c++)
        o->std[c] = 1.0f;
}

static const struct dlas_param_spec data_spec[] = {
    {"val_fraction", DLAS_PARAM_FLOAT, 0, "0.0", 0, 0.99, NULL,
     "share of the dataset's train split held out for validation"},
    {"normalise", DLAS_PARAM_ENUM, 0, "auto", 0, 0, "none|auto|compute|given",
     "per-channel normalisation: none, the dataset's statistics (auto: computed if it has "
     "none), computed on the train split, or given mean/std"},
    {"mean", DLAS_PARAM_FLOAT, DLAS_PARAM_LIST, "[]", 0, 1, NULL,
     "per-channel mean for normalise = \"given\", in [0,1] units"},
    {"std", DLAS_PARAM_FLOAT, DLAS_PARAM_LIST, "[]", 1e-6, 1, NULL,
     "per-channel standard deviation for normalise = \"given\""},
    {"stats_samples", DLAS_PARAM_INT, 0, "10000", 0, 1e12, NULL,
     "train samples used to compute statistics, evenly spaced; 0 = all"},
    {"batch", DLAS_PARAM_INT, 0, "128", 1, 1 << 20, NULL, "samples per batch"},
    {"shuffle", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL, "a new train order every epoch"},
    {"drop_last", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL, "drop a last, short train batch"},
    {"crop_padding", DLAS_PARAM_INT, 0, "0", 0, 256, NULL,
     "train augmentation: random crop of the image zero-padded by this many pixels; 0 = off"},
    {"hflip", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "train augmentation: mirror each image with probability 1/2"},
    {"views", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "train: use the dataset's own random views (e.g. imagefolder's random-resized crop)"},
    {"workers", DLAS_PARAM_INT, 0, "1", 0, 64, NULL,
     "background loader threads; 0 = load in the training thread"},
    {"prefetch", DLAS_PARAM_INT, 0, "2", 1, 64, NULL, "batches kept ready ahead of training"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

const struct dlas_param_spec *dlas_data_param_spec(void) { return data_spec; }

int dlas_data_options_from_params(const struct dlas_params *p, struct dlas_data_options *o)
{
    uint64_t seed = o->size == sizeof *o ? o->seed : 0;
    dlas_data_options_default(o);
    o->seed = seed;
    if (!p)
        return DLAS_OK;
    o->val_fraction = dlas_param_float(p, "val_fraction");
    const char *norm = dlas_param_str(p, "normalise");
    static const char *const names[] = {"none", "auto", "compute", "given"};
    for (int i = 0; i < 4; i++)
        if (norm && !strcmp(norm, names[i]))
            o->normalise = (enum dlas_norm)i;
    int nm = dlas_param_list_len(p, "mean"), ns = dlas_param_list_len(p, "std");
    if (nm > 4 || ns > 4)
        return dlas_error(DLAS_ERR_INVALID, "data: mean and std take at most 4 channels");
    if (o->normalise == DLAS_NORM_GIVEN && (nm == 0 || nm != ns))
        return dlas_error(DLAS_ERR_INVALID,
                          "data: normalise = \"given\" needs mean and std of one length per "
                          "channel (got %d and %d)", nm, ns);
    for (int c = 0; c < nm; c++)
        o->mean[c] = (float)dlas_param_list_float(p, "mean", c);
    for (int c = 0; c < ns; c++)
        o->std[c] = (float)dlas_param_list_float(p, "std", c);
    /* One value given for every channel: repeat it. */
    for (int c = nm; nm == 1 && c < 4; c++)
        o->mean[c] = o->mean[0];
    for (int c = ns; ns == 1 && c < 4; c++)
        o->std[c] = o->std[0];
    o->stats_samples = dlas_param_int(p, "stats_samples");
    o->batch = dlas_param_int(p, "batch");
    o->shuffle = dlas_param_bool(p, "shuffle");
    o->drop_last = dlas_param_bool(p, "drop_last");
    o->crop_padding = (int)dlas_param_int(p, "crop_padding");
    o->hflip = dlas_param_bool(p, "hflip");
    o->views = dlas_param_bool(p, "views");
    o->workers = (int)dlas_param_int(p, "workers");
    o->prefetch = (int)dlas_param_int(p, "prefetch");
    return DLAS_OK;
}

static int check_options(const struct dlas_data_options *o, const struct dlas_dataset_info *in)
{
    if (o->size != sizeof *o)
        return dlas_error(DLAS_ERR_INVALID,
                          "data: options not initialised with dlas_data_options_default");
    if (!(o->val_fraction >= 0.0 && o->val_fraction < 1.0))
        return dlas_error(DLAS_ERR_INVALID, "data: val_fraction = %g is outside [0, 1)",
                          o->val_fraction);
    if (!(o->train_subset >= 0) || (o->train_subset > 1 && o->train_subset != floor(o->train_subset)))
        return dlas_error(DLAS_ERR_INVALID,
                          "data: train subset = %g is neither a fraction in (0, 1] nor a count",
                          o->train_subset);
    if ((unsigned)o->normalise > DLAS_NORM_GIVEN)
        return dlas_error(DLAS_ERR_INVALID, "data: unknown normalisation %d", (int)o->normalise);
    if (o->batch < 1 || o->batch > (1 << 20))
        return dlas_error(DLAS_ERR_INVALID, "data: batch = %lld is outside 1..%d",
                          (long long)o->batch, 1 << 20);
    if (o->stats_samples < 0)
        return dlas_error(DLAS_ERR_INVALID, "data: stats_samples must not be negative");
    if (o->workers < 0 || o->workers > 64 || o->prefetch < 0 || o->prefetch > 64)
        return dlas_error(DLAS_ERR_INVALID,
                          "data: workers = %d and prefetch = %d must be within 0..64",
                          o->workers, o->prefetch);
    if (o->crop_padding < 0 || o->crop_padding > 256)
        return dlas_error(DLAS_ERR_INVALID, "data: crop_padding = %d is outside 0..256",
                          o->crop_padding);
    if (in->channels < 1 || in->channels > 4 || in->height < 1 || in->width < 1 ||
        in->classes < 1 || in->n_train < 0 || in->n_test < 0)
        return dlas_error(DLAS_ERR_INVALID,
                          "data: the dataset reports %dx%dx%d images, %d classes, %lld/%lld "
                          "samples: outside what the pipeline takes (1..4 channels)",
                          in->channels, in->height, in->width, in->classes,
                          (long long)in->n_train, (long long)in->n_test);
    if (o->normalise == DLAS_NORM_GIVEN)
        for (int c = 0; c < in->channels; c++)
            if (!(o->std[c] > 0.0f) || !isfinite(o->mean[c]))
                return dlas_error(DLAS_ERR_INVALID,
                                  "data: given normalisation of channel %d has std %g", c,
                                  (double)o->std[c]);
    return DLAS_OK;
}

/* k of n samples picked by the permutation keyed by (seed, what): a flag per
 * sample, for the caller to split the indices keeping the plugin's order.
 * NULL when out of memory. */
static unsigned char *keyed_pick(int64_t n, int64_t k, uint64_t seed, const char *what)
{
    unsigned char *picked = calloc((size_t)n, 1);
    if (!picked)
        return NULL;
    struct dlas_perm p;
    dlas_perm_init(&p, (uint64_t)n, dlas_data_seed(seed, what, 0, 0));
    for (int64_t j = 0; j < k; j++)
        picked[dlas_perm_at(&p, (uint64_t)j)] = 1;
    return picked;
}

/* Hold out round(val_fraction * n) train samples picked by a keyed
 * permutation; both parts keep the plugin's order. */
static int carve(struct dlas_data *d)
{
    int64_t n = d->info.n_train;
    int64_t n_val = (int64_t)llround(d->opt.val_fraction * (double)n);
    if (n_val > 0 && n_val >= n)
        return dlas_error(DLAS_ERR_INVALID,
                          "data: val_fraction = %g leaves no training samples of %lld",
                          d->opt.val_fraction, (long long)n);
    d->n[DLAS_DATA_TRAIN] = n - n_val;
    d->n[DLAS_DATA_VAL] = n_val;
    d->n[DLAS_DATA_TEST] = d->info.n_test;
    if (n_val == 0)
        return DLAS_OK;
    unsigned char *is_val = keyed_pick(n, n_val, d->opt.seed, "val-split");
    d->train_idx = malloc((size_t)(n - n_val) * sizeof(int64_t));
    d->val_idx = malloc((size_t)n_val * sizeof(int64_t));
    if (!is_val || !d->train_idx || !d->val_idx) {
        free(is_val);
        return dlas_error(DLAS_ERR_NOMEM, "data: cannot allocate the validation split");
    }
    int64_t t = 0, v = 0;
    for (int64_t i = 0; i < n; i++) {
        if (is_val[i])
            d->val_idx[v++] = i;
        else
            d->train_idx[t++] = i;
    }
    free(is_val);
    return DLAS_OK;
}

/* train_subset: keep that many of the TRAIN samples, picked by a keyed
 * permutation, in the plugin's order. */
static int take_subset(struct dlas_data *d)
{
    int64_t n = d->n[DLAS_DATA_TRAIN];
    double x = d->opt.train_subset;
    if (x <= 0)
        return DLAS_OK;
    int64_t keep = x <= 1 ? (int64_t)llround(x * (double)n) : (int64_t)x;
    if (keep > n)
        return dlas_error(DLAS_ERR_INVALID,
                          "data: train subset = %lld samples, but the training split has %lld",
                          (long long)keep, (long long)n);
    if (keep < 1)
        return dlas_error(DLAS_ERR_INVALID,
                          "data: train subset = %g of %lld samples leaves none", x, (long long)n);
    if (keep == n)
        return DLAS_OK;
    unsigned char *in = keyed_pick(n, keep, d->opt.seed, "train-subset");
    int64_t *idx = malloc((size_t)keep * sizeof *idx);
    if (!in || !idx) {
        free(in);
        free(idx);
        return dlas_error(DLAS_ERR_NOMEM, "data: cannot allocate the training subset");
    }
    int64_t t = 0;
    for (int64_t i = 0; i < n; i++)
        if (in[i])
            idx[t++] = d->train_idx ? d->train_idx[i] : i;
    free(in);
    free(d->train_idx);
    d->train_idx = idx;
    d->n[DLAS_DATA_TRAIN] = keep;
    return DLAS_OK;
}

static int settle_normalisation(struct dlas_data *d)
{
    const struct dlas_data_options *o = &d->opt;
    int known = 1;
    for (int c = 0; c < d->info.channels; c++)
        known = known && d->info.std[c] > 0.0f && isfinite(d->info.mean[c]);
    switch (o->normalise) {
    case DLAS_NORM_NONE:
        break;
    case DLAS_NORM_GIVEN:
        memcpy(d->info.mean, o->mean, sizeof d->info.mean);
        memcpy(d->info.std, o->std, sizeof d->info.std);
        d->normalise = 1;
        return DLAS_OK;
    case DLAS_NORM_AUTO:
        if (known) {
            d->normalise = 1;
            break;
        }
        /* fall through */
    case DLAS_NORM_COMPUTE:
        if (d->n[DLAS_DATA_TRAIN] == 0)
            return dlas_error(DLAS_ERR_INVALID,
                              "data: cannot compute normalisation: the train split is empty");
        d->normalise = 1;
        return dlas_data_compute_stats(d);
    }
    if (!d->normalise)
        for (int c = 0; c < 4; c++) {
            d->info.mean[c] = 0.0f;
            d->info.std[c] = 1.0f;
        }
    /* Channels the dataset does not have stay harmless. */
    for (int c = d->info.channels; c < 4; c++) {
        d->info.mean[c] = 0.0f;
        d->info.std[c] = 1.0f;
    }
    return DLAS_OK;
}

int dlas_data_open(const struct dlas_dataset_ops *ops, void *handle,
                   const struct dlas_data_options *o, struct dlas_data **out)
{
    *out = NULL;
    if (!ops || !o || ops->size < offsetof(struct dlas_dataset_ops, read_views) || !ops->info ||
        !ops->read)
        return dlas_error(DLAS_ERR_INVALID, "data: no dataset operations");
    struct dlas_data *d = calloc(1, sizeof *d);
    if (!d)
        return dlas_error(DLAS_ERR_NOMEM, "data: out of memory");
    d->ops = ops;
    d->handle = handle;
    d->opt = *o;
    if (d->opt.workers > 0 && d->opt.prefetch < 1)
        d->opt.prefetch = 1;
    d->has_views = ops->size >= offsetof(struct dlas_dataset_ops, read_views) +
                                    sizeof ops->read_views &&
                   ops->read_views != NULL;
    int rc = ops->info(handle, &d->info);
    if (rc)
        dlas_error_context("data: dataset info");
    if (!rc)
        rc = check_options(o, &d->info);
    if (!rc) {
        d->pix = (int64_t)d->info.channels * d->info.height * d->info.width;
        rc = carve(d);
    }
    if (!rc)
        rc = take_subset(d);
    if (!rc)
        rc = settle_normalisation(d);
    if (rc) {
        dlas_data_close(d);
        return rc;
    }
    *out = d;
    return DLAS_OK;
}

int dlas_data_open_component(const struct dlas_component *c, const struct dlas_host *host,
                             const struct dlas_params *p, const struct dlas_data_options *o,
                             struct dlas_data **out)
{
    *out = NULL;
    if (!c || c->kind != DLAS_KIND_DATASET || !c->ops)
        return dlas_error(DLAS_ERR_INVALID, "data: '%s' is not a dataset component",
                          c && c->name ? c->name : "?");
    const struct dlas_dataset_ops *ops = c->ops;
    void *handle = NULL;
    int rc = ops->open(host, p, &handle);
    if (rc)
        return dlas_error_context("dataset '%s'", c->name);
    rc = dlas_data_open(ops, handle, o, out);
    if (rc) {
        ops->close(handle);
        return dlas_error_context("dataset '%s'", c->name);
    }
    (*out)->own = 1;
    return DLAS_OK;
}

void dlas_data_close(struct dlas_data *d)
{
    if (!d)
        return;
    if (d->own && d->ops->close)
        d->ops->close(d->handle);
    free(d->train_idx);
    free(d->val_idx);
    free(d);
}

const struct dlas_dataset_info *dlas_data_info(const struct dlas_data *d) { return &d->info; }
const struct dlas_data_options *dlas_data_options(const struct dlas_data *d) { return &d->opt; }

int64_t dlas_data_size(const struct dlas_data *d, enum dlas_data_split s)
{
    return (unsigned)s <= DLAS_DATA_TEST ? d->n[s] : 0;
}

int64_t dlas_data_batches(const struct dlas_data *d, enum dlas_data_split s)
{
    if ((unsigned)s > DLAS_DATA_TEST)
        return 0;
    int64_t n = dlas_data_epoch_samples(d, s);
    return (n + d->opt.batch - 1) / d->opt.batch;
}

int64_t dlas_data_index(const struct dlas_data *d, enum dlas_data_split s, int64_t i)
{
    if ((unsigned)s > DLAS_DATA_TEST || i < 0 || i >= d->n[s])
        return -1;
    if (s == DLAS_DATA_VAL)
        return d->val_idx[i];
    if (s == DLAS_DATA_TRAIN && d->train_idx)
        return d->train_idx[i];
    return i;
}
