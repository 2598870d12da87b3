/* The core's data pipeline (dlas/data.h) over a dataset defined here, whose
 * every pixel and label is known: the validation carve, epoch order,
 * normalisation, crop and flip, background prefetch, error propagation. */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "testutil.h"

/* ---- a dataset with known contents ------------------------------------------ */

struct fake {
    int c, h, w, classes;
    int label_mod;   /* labels are i * 7 + split modulo this: > classes is a bug */
    int64_t n[2];
    int64_t fail_at; /* a train index whose read fails; -1 none */
    float mean[4], std[4];
    int views;       /* read_views used */
    atomic_int views_calls;
};

static float fake_pixel(int split, int64_t i, int c, int y, int x)
{
    /* Never 0, so a padded (zero) pixel cannot pass for image content. */
    return (float)((i * 31 + split * 101 + c * 7 + y * 13 + x * 17) % 251 + 1) / 255.0f;
}

static int32_t fake_label(const struct fake *f, int split, int64_t i)
{
    return (int32_t)((i * 7 + split) % f->label_mod);
}

static int fake_info(void *handle, struct dlas_dataset_info *info)
{
    const struct fake *f = handle;
    memset(info, 0, sizeof *info);
    info->channels = f->c;
    info->height = f->h;
    info->width = f->w;
    info->classes = f->classes;
    info->n_train = f->n[0];
    info->n_test = f->n[1];
    memcpy(info->mean, f->mean, sizeof f->mean);
    memcpy(info->std, f->std, sizeof f->std);
    return DLAS_OK;
}

static int fake_read_views(void *handle, enum dlas_split split, const int64_t *idx, int64_t n,
                           const uint64_t *views, float *images, int32_t *labels)
{
    struct fake *f = handle;
    if (views)
        atomic_fetch_add(&f->views_calls, 1);
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= f->n[split])
            return dlas_error(DLAS_ERR_INVALID, "fake: index %lld", (long long)idx[i]);
        if (split == DLAS_SPLIT_TRAIN && idx[i] == f->fail_at)
            return dlas_error(DLAS_ERR_CORRUPT, "fake: /data/broken-%lld.bin is unreadable",
                              (long long)idx[i]);
        if (labels)
            labels[i] = fake_label(f, split, idx[i]);
        if (!images)
            continue;
        float *img = images + i * f->c * f->h * f->w;
        /* A view shifts every pixel by a seed-dependent amount, so tests can
         * tell which view they got. */
        float shift = views && views[i] ? (float)(views[i] % 7 + 1) : 0.0f;
        for (int c = 0; c < f->c; c++)
            for (int y = 0; y < f->h; y++)
                for (int x = 0; x < f->w; x++)
                    img[(c * f->h + y) * f->w + x] = fake_pixel(split, idx[i], c, y, x) + shift;
    }
    return DLAS_OK;
}

static int fake_read(void *handle, enum dlas_split split, const int64_t *idx, int64_t n,
                     float *images, int32_t *labels)
{
    return fake_read_views(handle, split, idx, n, NULL, images, labels);
}

static const struct dlas_dataset_ops fake_ops = {
    sizeof(struct dlas_dataset_ops), NULL, fake_info, fake_read, NULL, fake_read_views,
};
/* The same dataset as an ABI 1.0 plugin: no read_views. */
static const struct dlas_dataset_ops fake_ops_v10 = {
    offsetof(struct dlas_dataset_ops, read_views), NULL, fake_info, fake_read, NULL, NULL,
};

static struct fake fake_make(int c, int h, int w, int64_t n_train, int64_t n_test)
{
    struct fake f;
    memset(&f, 0, sizeof f);
    f.c = c;
    f.h = h;
    f.w = w;
    f.classes = 5;
    f.label_mod = 5;
    f.n[0] = n_train;
    f.n[1] = n_test;
    f.fail_at = -1;
    return f;
}

static struct dlas_data *open_data(struct fake *f, const struct dlas_data_options *o)
{
    struct dlas_data *d = NULL;
    int rc = dlas_data_open(&fake_ops, f, o, &d);
    ck_assert_msg(rc == 0, "dlas_data_open: %s", dlas_last_error());
    return d;
}

static struct dlas_data_options opts(int64_t batch, uint64_t seed)
{
    struct dlas_data_options o;
    dlas_data_options_default(&o);
    o.batch = batch;
    o.seed = seed;
    o.normalise = DLAS_NORM_NONE;
    o.views = 0; /* the fake's views shift pixels; plugin_views turns them on */
    return o;
}

/* Every batch of `epochs` epochs of split s, concatenated. */
struct run {
    int64_t n_batches, n_samples;
    float *images;
    int32_t *labels;
    int64_t *indices, *epoch_of;
};

static struct run collect(struct dlas_data *d, enum dlas_data_split s, int64_t first, int64_t epochs)
{
    struct run r;
    memset(&r, 0, sizeof r);
    const struct dlas_dataset_info *in = dlas_data_info(d);
    int64_t pix = (int64_t)in->channels * in->height * in->width;
    int64_t cap = dlas_data_size(d, s) * epochs + 1;
    r.images = malloc((size_t)(cap * pix) * sizeof(float));
    r.labels = malloc((size_t)cap * sizeof(int32_t));
    r.indices = malloc((size_t)cap * sizeof(int64_t));
    r.epoch_of = malloc((size_t)cap * sizeof(int64_t));
    struct dlas_data_iter *it;
    ck_assert_msg(dlas_data_iter_new(d, s, first, epochs, &it) == 0, "%s", dlas_last_error());
    const struct dlas_batch *b;
    int64_t expect_index = 0, expect_epoch = first;
    for (;;) {
        int rc = dlas_data_iter_next(it, &b);
        ck_assert_msg(rc == 0, "iter_next: %s", dlas_last_error());
        if (!b)
            break;
        ck_assert_int_eq(b->epoch, expect_epoch);
        ck_assert_int_eq(b->index, expect_index);
        ck_assert(r.n_samples + b->n <= cap);
        ck_assert_int_eq(b->images.ndim, 4);
        ck_assert_int_eq(b->images.dims[0], b->n);
        memcpy(r.images + r.n_samples * pix, b->images.data, (size_t)(b->n * pix) * sizeof(float));
        memcpy(r.labels + r.n_samples, b->labels, (size_t)b->n * sizeof(int32_t));
        memcpy(r.indices + r.n_samples, b->indices, (size_t)b->n * sizeof(int64_t));
        for (int64_t i = 0; i < b->n; i++)
            r.epoch_of[r.n_samples + i] = b->epoch;
        r.n_samples += b->n;
        r.n_batches++;
        expect_index++;
        if (b->last) {
            ck_assert_int_eq(expect_index, dlas_data_batches(d, s));
            expect_index = 0;
            expect_epoch++;
        }
    }
    ck_assert_int_eq(r.n_batches, dlas_data_batches(d, s) * epochs);
    dlas_data_iter_free(it);
    return r;
}

static void run_free(struct run *r)
{
    free(r->images);
    free(r->labels);
    free(r->indices);
    free(r->epoch_of);
}

static int same_run(const struct run *a, const struct run *b, int64_t pix)
{
    return a->n_samples == b->n_samples && a->n_batches == b->n_batches &&
           !memcmp(a->images, b->images, (size_t)(a->n_samples * pix) * sizeof(float)) &&
           !memcmp(a->labels, b->labels, (size_t)a->n_samples * sizeof(int32_t)) &&
           !memcmp(a->indices, b->indices, (size_t)a->n_samples * sizeof(int64_t));
}

/* ---- epochs, shuffling, the validation carve ----------------------------------- */

START_TEST(every_sample_once_per_epoch)
{
    struct fake f = fake_make(1, 3, 3, 50, 11);
    struct dlas_data_options o = opts(7, 42);
    o.workers = 2;
    struct dlas_data *d = open_data(&f, &o);
    ck_assert_int_eq(dlas_data_batches(d, DLAS_DATA_TRAIN), 8);
    struct run r = collect(d, DLAS_DATA_TRAIN, 0, 3);
    ck_assert_int_eq(r.n_samples, 150);
    for (int e = 0; e < 3; e++) {
        int seen[50] = {0};
        for (int64_t i = 0; i < 50; i++)
            seen[r.indices[e * 50 + i]]++;
        for (int i = 0; i < 50; i++)
            ck_assert_msg(seen[i] == 1, "epoch %d: sample %d seen %d times", e, i, seen[i]);
        /* Labels and pixels travel with their sample. */
        for (int64_t i = 0; i < 50; i++) {
            int64_t k = e * 50 + i, idx = r.indices[k];
            ck_assert_int_eq(r.labels[k], fake_label(&f, 0, idx));
            ck_assert(r.images[k * 9 + 4] == fake_pixel(0, idx, 0, 1, 1));
        }
    }
    /* Shuffled, and differently each epoch. */
    int in_order = 1, same_order = 1;
    for (int64_t i = 0; i < 50; i++) {
        in_order &= r.indices[i] == i;
        same_order &= r.indices[i] == r.indices[50 + i];
    }
    ck_assert_msg(!in_order && !same_order, "epochs are not reshuffled");
    run_free(&r);

    /* Test split: in order, whole, never shuffled. */
    r = collect(d, DLAS_DATA_TEST, 0, 2);
    ck_assert_int_eq(r.n_samples, 22);
    for (int64_t i = 0; i < 22; i++)
        ck_assert_int_eq(r.indices[i], i % 11);
    run_free(&r);
    dlas_data_close(d);
}
END_TEST

START_TEST(drop_last_and_no_shuffle)
{
    struct fake f = fake_make(1, 2, 2, 50, 0);
    struct dlas_data_options o = opts(7, 1);
    o.drop_last = 1;
    o.shuffle = 0;
    struct dlas_data *d = open_data(&f, &o);
    ck_assert_int_eq(dlas_data_batches(d, DLAS_DATA_TRAIN), 7);
    ck_assert_int_eq(dlas_data_batches(d, DLAS_DATA_TEST), 0);
    struct run r = collect(d, DLAS_DATA_TRAIN, 5, 2);
    ck_assert_int_eq(r.n_samples, 98);
    for (int64_t i = 0; i < 98; i++)
        ck_assert_int_eq(r.indices[i], i % 49);
    run_free(&r);

    /* An empty split gives no batch at once, with or without workers. */
    struct dlas_data_iter *it;
    const struct dlas_batch *b = (const void *)1;
    ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_TEST, 0, 0, &it), 0);
    ck_assert_int_eq(dlas_data_iter_next(it, &b), 0);
    ck_assert_ptr_null(b);
    dlas_data_iter_free(it);
    dlas_data_close(d);

    /* drop_last with shuffling: 49 distinct samples per epoch. */
    o.shuffle = 1;
    d = open_data(&f, &o);
    r = collect(d, DLAS_DATA_TRAIN, 0, 1);
    int seen[50] = {0};
    for (int64_t i = 0; i < 49; i++)
        ck_assert_int_eq(seen[r.indices[i]]++, 0);
    run_free(&r);
    dlas_data_close(d);
}
END_TEST

START_TEST(validation_split)
{
    struct fake f = fake_make(1, 2, 2, 103, 5);
    struct dlas_data_options o = opts(16, 9);
    o.val_fraction = 0.2;
    struct dlas_data *d = open_data(&f, &o);
    ck_assert_int_eq(dlas_data_size(d, DLAS_DATA_VAL), 21); /* round(20.6) */
    ck_assert_int_eq(dlas_data_size(d, DLAS_DATA_TRAIN), 82);
    ck_assert_int_eq(dlas_data_size(d, DLAS_DATA_TEST), 5);
    int owner[103];
    for (int i = 0; i < 103; i++)
        owner[i] = -1;
    for (int s = DLAS_DATA_TRAIN; s <= DLAS_DATA_VAL; s++)
        for (int64_t i = 0; i < dlas_data_size(d, s); i++) {
            int64_t k = dlas_data_index(d, s, i);
            ck_assert(k >= 0 && k < 103);
            ck_assert_msg(owner[k] == -1, "sample %lld in both train and val", (long long)k);
            owner[k] = s;
            if (i)
                ck_assert(k > dlas_data_index(d, s, i - 1)); /* the plugin's order */
        }
    for (int i = 0; i < 103; i++)
        ck_assert_msg(owner[i] != -1, "sample %d in neither", i);
    ck_assert_int_eq(dlas_data_index(d, DLAS_DATA_VAL, 21), -1);

    /* Training epochs never touch the validation samples. */
    struct run r = collect(d, DLAS_DATA_TRAIN, 0, 2);
    for (int64_t i = 0; i < r.n_samples; i++)
        ck_assert_int_eq(owner[r.indices[i]], DLAS_DATA_TRAIN);
    run_free(&r);
    /* VAL comes in order, unaugmented, from the plugin's train split. */
    r = collect(d, DLAS_DATA_VAL, 0, 1);
    for (int64_t i = 0; i < 21; i++) {
        ck_assert_int_eq(r.indices[i], dlas_data_index(d, DLAS_DATA_VAL, i));
        ck_assert(r.images[i * 4 + 3] == fake_pixel(0, r.indices[i], 0, 1, 1));
    }
    run_free(&r);

    /* Same seed, same carve; another seed, another carve. */
    struct dlas_data *d2 = open_data(&f, &o);
    o.seed = 10;
    struct dlas_data *d3 = open_data(&f, &o);
    int same2 = 1, same3 = 1;
    for (int64_t i = 0; i < 21; i++) {
        same2 &= dlas_data_index(d, DLAS_DATA_VAL, i) == dlas_data_index(d2, DLAS_DATA_VAL, i);
        same3 &= dlas_data_index(d, DLAS_DATA_VAL, i) == dlas_data_index(d3, DLAS_DATA_VAL, i);
    }
    ck_assert(same2 && !same3);
    dlas_data_close(d);
    dlas_data_close(d2);
    dlas_data_close(d3);

    /* Refusals: everything held out, or an out-of-range fraction. */
    o.val_fraction = 0.999;
    struct dlas_data *bad = NULL;
    ck_assert_int_eq(dlas_data_open(&fake_ops, &f, &o, &bad), DLAS_ERR_INVALID);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "val_fraction"));
    o.val_fraction = 1.0;
    ck_assert_int_eq(dlas_data_open(&fake_ops, &f, &o, &bad), DLAS_ERR_INVALID);
}
END_TEST

/* ---- determinism and prefetch ------------------------------------------------------ */

START_TEST(same_seed_same_batches_whatever_the_workers)
{
    struct fake f = fake_make(3, 6, 5, 61, 13);
    const int64_t pix = 3 * 6 * 5;
    struct dlas_data_options o = opts(8, 1234);
    o.val_fraction = 0.1;
    o.crop_padding = 2;
    o.hflip = 1;
    o.normalise = DLAS_NORM_COMPUTE;
    o.workers = 0;
    struct dlas_data *d0 = open_data(&f, &o);
    struct run ref = collect(d0, DLAS_DATA_TRAIN, 0, 3);
    struct run ref_val = collect(d0, DLAS_DATA_VAL, 0, 1);
    static const int workers[] = {1, 2, 3, 2}, prefetch[] = {1, 3, 1, 8};
    for (int k = 0; k < 4; k++) {
        o.workers = workers[k];
        o.prefetch = prefetch[k];
        struct dlas_data *d = open_data(&f, &o);
        ck_assert(!memcmp(dlas_data_info(d)->mean, dlas_data_info(d0)->mean, sizeof(float) * 4));
        struct run r = collect(d, DLAS_DATA_TRAIN, 0, 3);
        ck_assert_msg(same_run(&ref, &r, pix), "workers %d prefetch %d: other batches",
                      workers[k], prefetch[k]);
        run_free(&r);
        r = collect(d, DLAS_DATA_VAL, 0, 1);
        ck_assert(same_run(&ref_val, &r, pix));
        run_free(&r);
        /* Starting at epoch 1 gives what the second epoch was. */
        r = collect(d, DLAS_DATA_TRAIN, 1, 1);
        int64_t per = dlas_data_size(d, DLAS_DATA_TRAIN);
        ck_assert(!memcmp(r.indices, ref.indices + per, (size_t)per * sizeof(int64_t)));
        ck_assert(!memcmp(r.images, ref.images + per * pix, (size_t)(per * pix) * sizeof(float)));
        run_free(&r);
        dlas_data_close(d);
    }
    /* Another seed: another order. */
    o.seed = 1235;
    struct dlas_data *d = open_data(&f, &o);
    struct run r = collect(d, DLAS_DATA_TRAIN, 0, 3);
    ck_assert(!same_run(&ref, &r, pix));
    run_free(&r);
    dlas_data_close(d);
    run_free(&ref);
    run_free(&ref_val);
    dlas_data_close(d0);
}
END_TEST

START_TEST(two_iterators_at_once_and_early_free)
{
    struct fake f = fake_make(1, 4, 4, 200, 40);
    struct dlas_data_options o = opts(10, 3);
    o.workers = 2;
    o.prefetch = 4;
    o.val_fraction = 0.2;
    struct dlas_data *d = open_data(&f, &o);
    struct dlas_data_iter *train, *val;
    ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_TRAIN, 0, 0, &train), 0); /* no end */
    const struct dlas_batch *b;
    for (int k = 0; k < 40; k++) { /* past two epoch boundaries */
        ck_assert_int_eq(dlas_data_iter_next(train, &b), 0);
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(b->epoch, k / 16);
        if (b->last) { /* validate between epochs while training batches are prefetched */
            struct run r = collect(d, DLAS_DATA_VAL, 0, 1);
            ck_assert_int_eq(r.n_samples, 40);
            run_free(&r);
        }
    }
    /* Freed with workers mid-stream, then a fresh iterator with the slots
     * still full of the old ones' batches elsewhere. */
    dlas_data_iter_free(train);
    ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_VAL, 0, 1, &val), 0);
    ck_assert_int_eq(dlas_data_iter_next(val, &b), 0);
    ck_assert_int_eq(b->indices[0], dlas_data_index(d, DLAS_DATA_VAL, 0));
    dlas_data_iter_free(val);
    dlas_data_close(d);
}
END_TEST

START_TEST(worker_errors_reach_the_consumer)
{
    for (int workers = 0; workers <= 3; workers++) {
        struct fake f = fake_make(1, 2, 2, 40, 0);
        struct dlas_data_options o = opts(4, 5);
        o.shuffle = 0;
        o.workers = workers;
        o.prefetch = 3;
        f.fail_at = 21; /* batch 5 */
        struct dlas_data *d = open_data(&f, &o);
        struct dlas_data_iter *it;
        ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_TRAIN, 0, 1, &it), 0);
        const struct dlas_batch *b;
        for (int k = 0; k < 5; k++) {
            ck_assert_msg(dlas_data_iter_next(it, &b) == 0, "%s", dlas_last_error());
            ck_assert_int_eq(b->index, k);
        }
        for (int again = 0; again < 2; again++) {
            ck_assert_int_eq(dlas_data_iter_next(it, &b), DLAS_ERR_CORRUPT);
            ck_assert_ptr_null(b);
            const char *msg = dlas_last_error();
            ck_assert_msg(strstr(msg, "/data/broken-21.bin") && strstr(msg, "batch 5 of epoch 0"),
                          "workers %d: message '%s'", workers, msg);
        }
        dlas_data_iter_free(it);
        dlas_data_close(d);
    }
}
END_TEST

/* ---- normalisation ---------------------------------------------------------------- */

static void direct_stats(const struct fake *f, double mean[4], double sd[4])
{
    for (int c = 0; c < f->c; c++) {
        double s = 0, q = 0, n = 0;
        for (int64_t i = 0; i < f->n[0]; i++)
            for (int y = 0; y < f->h; y++)
                for (int x = 0; x < f->w; x++) {
                    double v = fake_pixel(0, i, c, y, x);
                    s += v;
                    q += v * v;
                    n++;
                }
        mean[c] = s / n;
        sd[c] = sqrt(q / n - mean[c] * mean[c]);
    }
}

START_TEST(normalisation)
{
    struct fake f = fake_make(3, 5, 4, 300, 20);
    const int64_t pix = 60;
    double m[4], s[4];
    direct_stats(&f, m, s);

    /* compute: the train statistics, from every sample or a spread subset. */
    struct dlas_data_options o = opts(32, 1);
    o.normalise = DLAS_NORM_COMPUTE;
    o.stats_samples = 0;
    o.workers = 2;
    struct dlas_data *d = open_data(&f, &o);
    const struct dlas_dataset_info *in = dlas_data_info(d);
    for (int c = 0; c < 3; c++) {
        ck_assert_msg(fabs(in->mean[c] - m[c]) < 1e-6 && fabs(in->std[c] - s[c]) < 1e-6,
                      "channel %d: %g/%g, expected %g/%g", c, in->mean[c], in->std[c], m[c], s[c]);
    }
    ck_assert(in->mean[3] == 0.0f && in->std[3] == 1.0f);
    /* ... which make the train split zero-mean, unit-variance. */
    struct run r = collect(d, DLAS_DATA_TRAIN, 0, 1);
    for (int c = 0; c < 3; c++) {
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < r.n_samples; i++)
            for (int k = 0; k < 20; k++) {
                double v = r.images[i * pix + c * 20 + k];
                sum += v;
                sq += v * v;
            }
        double n = (double)r.n_samples * 20, mu = sum / n;
        ck_assert_msg(fabs(mu) < 1e-5 && fabs(sqrt(sq / n - mu * mu) - 1.0) < 1e-5,
                      "channel %d: mean %g std %g", c, mu, sqrt(sq / n - mu * mu));
    }
    /* Exactly (x - mean) / std, in test too. */
    float img[60];
    int32_t lab;
    ck_assert_int_eq(dlas_data_read(d, DLAS_DATA_TEST, 7, 1, img, &lab), 0);
    ck_assert_int_eq(lab, fake_label(&f, 1, 7));
    ck_assert(img[20 + 6] == (fake_pixel(1, 7, 1, 1, 2) - in->mean[1]) / in->std[1]);
    run_free(&r);
    dlas_data_close(d);

    o.stats_samples = 50;
    d = open_data(&f, &o);
    for (int c = 0; c < 3; c++)
        ck_assert(fabs(dlas_data_info(d)->mean[c] - m[c]) < 0.05);
    dlas_data_close(d);

    /* auto: the dataset's own figures when it has them, computed otherwise. */
    f.mean[0] = 0.25f, f.mean[1] = 0.5f, f.mean[2] = 0.75f;
    f.std[0] = 0.125f, f.std[1] = 0.25f, f.std[2] = 0.5f;
    o.normalise = DLAS_NORM_AUTO;
    o.stats_samples = 0;
    d = open_data(&f, &o);
    ck_assert(dlas_data_info(d)->mean[2] == 0.75f && dlas_data_info(d)->std[2] == 0.5f);
    dlas_data_close(d);
    f.std[1] = 0.0f; /* one unknown channel: all computed */
    d = open_data(&f, &o);
    ck_assert(fabs(dlas_data_info(d)->mean[2] - m[2]) < 1e-6);
    dlas_data_close(d);

    /* given, and none. */
    o.normalise = DLAS_NORM_GIVEN;
    for (int c = 0; c < 4; c++) {
        o.mean[c] = 0.5f;
        o.std[c] = 0.25f;
    }
    d = open_data(&f, &o);
    ck_assert_int_eq(dlas_data_read(d, DLAS_DATA_TRAIN, 3, 1, img, NULL), 0);
    ck_assert(img[59] == (fake_pixel(0, 3, 2, 4, 3) - 0.5f) / 0.25f);
    dlas_data_close(d);
    o.normalise = DLAS_NORM_NONE;
    d = open_data(&f, &o);
    ck_assert_int_eq(dlas_data_read(d, DLAS_DATA_TRAIN, 3, 1, img, NULL), 0);
    ck_assert(img[59] == fake_pixel(0, 3, 2, 4, 3));
    ck_assert(dlas_data_info(d)->mean[0] == 0.0f && dlas_data_info(d)->std[0] == 1.0f);
    dlas_data_close(d);

    o.normalise = DLAS_NORM_GIVEN;
    o.std[1] = 0.0f;
    struct dlas_data *bad;
    ck_assert_int_eq(dlas_data_open(&fake_ops, &f, &o, &bad), DLAS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "channel 1"));
}
END_TEST

/* ---- augmentation --------------------------------------------------------------- */

/* The (dx, dy, flip) that maps the plain image onto `got`, with zero fill:
 * got(y, x) = plain(y + dy, (flip ? w-1-x : x) + dx). -99 if none. */
static int find_transform(const struct fake *f, int64_t idx, const float *got, int pad, int *dx,
                          int *dy, int *flip)
{
    for (int fl = 0; fl < 2; fl++)
        for (int sy = -pad; sy <= pad; sy++)
            for (int sx = -pad; sx <= pad; sx++) {
                int ok = 1;
                for (int c = 0; c < f->c && ok; c++)
                    for (int y = 0; y < f->h && ok; y++)
                        for (int x = 0; x < f->w && ok; x++) {
                            int yy = y + sy, xx = (fl ? f->w - 1 - x : x) + sx;
                            float want = yy < 0 || yy >= f->h || xx < 0 || xx >= f->w
                                             ? 0.0f
                                             : fake_pixel(0, idx, c, yy, xx);
                            ok = got[(c * f->h + y) * f->w + x] == want;
                        }
                if (ok) {
                    *dx = sx;
                    *dy = sy;
                    *flip = fl;
                    return 0;
                }
            }
    return -99;
}

START_TEST(augmentation_is_exact)
{
    struct fake f = fake_make(2, 7, 6, 120, 10);
    const int64_t pix = 2 * 7 * 6;
    struct {
        int pad, hflip;
    } cases[] = {{0, 1}, {3, 0}, {2, 1}};
    for (int k = 0; k < 3; k++) {
        struct dlas_data_options o = opts(16, 77);
        o.crop_padding = cases[k].pad;
        o.hflip = cases[k].hflip;
        struct dlas_data *d = open_data(&f, &o);
        struct run r = collect(d, DLAS_DATA_TRAIN, 0, 2);
        int flips = 0, shifted = 0, plain = 0;
        int hist_dx[9] = {0};
        for (int64_t i = 0; i < r.n_samples; i++) {
            int dx, dy, fl;
            ck_assert_msg(find_transform(&f, r.indices[i], r.images + i * pix, cases[k].pad, &dx,
                                         &dy, &fl) == 0,
                          "case %d: sample %lld is no crop/flip of its image", k, (long long)i);
            flips += fl;
            shifted += dx || dy;
            plain += !dx && !dy && !fl;
            hist_dx[dx + 4]++;
        }
        if (cases[k].hflip)
            ck_assert_msg(flips > 60 && flips < 180, "case %d: %d flips of 240", k, flips);
        else
            ck_assert_int_eq(flips, 0);
        if (cases[k].pad) {
            ck_assert_msg(shifted > 150, "case %d: only %d shifted", k, shifted);
            for (int s = -cases[k].pad; s <= cases[k].pad; s++)
                ck_assert_msg(hist_dx[s + 4] > 0, "case %d: no shift of %d", k, s);
        } else
            ck_assert_int_eq(shifted, 0);
        ck_assert(plain > 0);
        /* The same sample differs between epochs: a fresh draw each time. */
        int differ = 0;
        for (int64_t i = 0; i < 120; i++)
            for (int64_t j = 120; j < 240; j++)
                if (r.indices[i] == r.indices[j])
                    differ += memcmp(r.images + i * pix, r.images + j * pix, pix * sizeof(float)) != 0;
        ck_assert(differ > 30);
        run_free(&r);

        /* Evaluation splits are never augmented. */
        r = collect(d, DLAS_DATA_TEST, 0, 1);
        for (int64_t i = 0; i < 10; i++)
            ck_assert(r.images[i * pix + 5] == fake_pixel(1, i, 0, 0, 5));
        run_free(&r);
        dlas_data_close(d);
    }

    /* Padding is black before normalisation: (0 - mean) / std after. */
    struct dlas_data_options o = opts(120, 5);
    o.crop_padding = 6; /* as large as the image: some rows are all padding */
    o.normalise = DLAS_NORM_GIVEN;
    o.mean[0] = o.mean[1] = 0.5f;
    o.std[0] = o.std[1] = 0.25f;
    struct dlas_data *d = open_data(&f, &o);
    struct run r = collect(d, DLAS_DATA_TRAIN, 0, 1);
    int found = 0;
    for (int64_t i = 0; i < r.n_samples * pix; i++)
        found += r.images[i] == -2.0f;
    ck_assert(found > 0);
    run_free(&r);
    dlas_data_close(d);
}
END_TEST

START_TEST(plugin_views)
{
    struct fake f = fake_make(1, 2, 2, 30, 4);
    struct dlas_data_options o = opts(8, 11);
    o.views = 1;
    struct dlas_data *d = open_data(&f, &o);
    struct run r = collect(d, DLAS_DATA_TRAIN, 0, 1);
    ck_assert_int_gt(atomic_load(&f.views_calls), 0);
    int shifted = 0;
    for (int64_t i = 0; i < 30; i++)
        shifted += r.images[i * 4] > fake_pixel(0, r.indices[i], 0, 0, 0);
    ck_assert_int_eq(shifted, 30);
    run_free(&r);
    /* Never for evaluation. */
    atomic_store(&f.views_calls, 0);
    r = collect(d, DLAS_DATA_TEST, 0, 1);
    ck_assert(r.images[0] == fake_pixel(1, 0, 0, 0, 0));
    ck_assert_int_eq(atomic_load(&f.views_calls), 0);
    run_free(&r);
    dlas_data_close(d);

    /* views = 0, or an ABI 1.0 plugin without read_views: plain reads. */
    o.views = 0;
    d = open_data(&f, &o);
    r = collect(d, DLAS_DATA_TRAIN, 0, 1);
    ck_assert(r.images[0] == fake_pixel(0, r.indices[0], 0, 0, 0));
    run_free(&r);
    dlas_data_close(d);
    o.views = 1;
    ck_assert_int_eq(dlas_data_open(&fake_ops_v10, &f, &o, &d), 0);
    r = collect(d, DLAS_DATA_TRAIN, 0, 1);
    ck_assert(r.images[0] == fake_pixel(0, r.indices[0], 0, 0, 0));
    run_free(&r);
    dlas_data_close(d);
}
END_TEST

/* ---- the rest of the API ------------------------------------------------------- */

START_TEST(batch_copy_and_bad_labels)
{
    struct fake f = fake_make(1, 2, 3, 10, 0);
    struct dlas_data_options o = opts(4, 2);
    o.shuffle = 0;
    struct dlas_data *d = open_data(&f, &o);
    struct dlas_data_iter *it;
    const struct dlas_batch *b;
    ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_TRAIN, 0, 1, &it), 0);
    struct dlas_tensor t;
    int64_t dims[4] = {6, 1, 2, 3};
    ck_assert_int_eq(dlas_tensor_alloc(&t, DLAS_F32, 4, dims), 0);
    int32_t labels[6];
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(dlas_data_iter_next(it, &b), 0);
        dlas_f32(&t)[35] = 9.0f;
        ck_assert_int_eq(dlas_batch_copy(b, &t, labels), 0);
        ck_assert(!memcmp(t.data, b->images.data, (size_t)b->n * 6 * sizeof(float)));
        ck_assert(dlas_f32(&t)[35] == 0.0f); /* rows past n cleared */
        ck_assert_int_eq(labels[b->n - 1], b->labels[b->n - 1]);
    }
    ck_assert_int_eq(b->n, 2);
    ck_assert(b->last);
    dims[3] = 4;
    struct dlas_tensor wrong;
    ck_assert_int_eq(dlas_tensor_alloc(&wrong, DLAS_F32, 4, dims), 0);
    ck_assert_int_eq(dlas_batch_copy(b, &wrong, NULL), DLAS_ERR_INVALID);
    dlas_tensor_free(&wrong);
    dlas_tensor_free(&t);
    dlas_data_iter_free(it);
    dlas_data_close(d);

    /* A plugin handing out a label beyond its classes is caught. */
    f.classes = 3;
    d = open_data(&f, &o);
    int32_t lab[10];
    ck_assert_int_eq(dlas_data_read(d, DLAS_DATA_TRAIN, 0, 10, NULL, lab), DLAS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(dlas_last_error(), "outside 0..2"));
    ck_assert_int_eq(dlas_data_read(d, DLAS_DATA_TRAIN, 5, 6, NULL, lab), DLAS_ERR_INVALID);
    dlas_data_close(d);
}
END_TEST

START_TEST(options_from_params)
{
    struct dlas_params *p;
    ck_assert_int_eq(dlas_params_defaults(dlas_data_param_spec(), &p), 0);
    struct dlas_data_options o, def;
    o.size = sizeof o;
    o.seed = 99;
    ck_assert_int_eq(dlas_data_options_from_params(p, &o), 0);
    dlas_data_options_default(&def);
    def.seed = 99;
    ck_assert(!memcmp(&o, &def, sizeof o));
    ck_assert_int_eq(dlas_params_set(p, "normalise", "given", "t"), 0);
    ck_assert_int_eq(dlas_params_set(p, "mean", "[0.25]", "t"), 0);
    ck_assert_int_eq(dlas_params_set(p, "std", "[0.5]", "t"), 0);
    ck_assert_int_eq(dlas_params_set(p, "crop_padding", "4", "t"), 0);
    ck_assert_int_eq(dlas_params_set(p, "workers", "2", "t"), 0);
    ck_assert_int_eq(dlas_data_options_from_params(p, &o), 0);
    ck_assert(o.normalise == DLAS_NORM_GIVEN && o.mean[2] == 0.25f && o.std[3] == 0.5f);
    ck_assert(o.crop_padding == 4 && o.workers == 2 && o.seed == 99);
    ck_assert_int_eq(dlas_params_set(p, "std", "[0.5, 0.5]", "t"), 0);
    ck_assert_int_eq(dlas_data_options_from_params(p, &o), DLAS_ERR_INVALID);
    ck_assert_int_ne(dlas_params_set(p, "val_fraction", "1.5", "t"), 0);
    dlas_params_free(p);
}
END_TEST

START_TEST(synthetic_through_the_pipeline)
{
    /* A real plugin, found through the registry, feeds the pipeline. */
    struct dlas_registry *reg = dlas_test_registry("check_data");
    ck_assert_ptr_nonnull(reg);
    struct dlas_data_options o;
    dlas_data_options_default(&o);
    o.batch = 100;
    o.val_fraction = 0.1;
    o.crop_padding = 2;
    o.hflip = 1;
    o.workers = 2;
    struct dlas_test_data syn;
    struct dlas_data *d = dlas_test_data_open(&syn, reg, "synthetic", NULL, &o);
    ck_assert(dlas_data_info(d)->std[0] > 0.0f); /* synthetic has none: computed */
    struct run r = collect(d, DLAS_DATA_TRAIN, 0, 2);
    ck_assert_int_eq(r.n_samples, 2 * (1024 - 102));
    run_free(&r);
    dlas_test_data_close(&syn);
    dlas_registry_free(reg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("data");
    TCase *tc = dlas_test_case(s, "epochs", NULL, NULL, 120);
    tcase_add_test(tc, every_sample_once_per_epoch);
    tcase_add_test(tc, drop_last_and_no_shuffle);
    tcase_add_test(tc, validation_split);
    tc = dlas_test_case(s, "loader", NULL, NULL, 120);
    tcase_add_test(tc, same_seed_same_batches_whatever_the_workers);
    tcase_add_test(tc, two_iterators_at_once_and_early_free);
    tcase_add_test(tc, worker_errors_reach_the_consumer);
    tc = dlas_test_case(s, "transforms", NULL, NULL, 120);
    tcase_add_test(tc, normalisation);
    tcase_add_test(tc, augmentation_is_exact);
    tcase_add_test(tc, plugin_views);
    tc = dlas_test_case(s, "api", NULL, NULL, 120);
    tcase_add_test(tc, batch_copy_and_bad_labels);
    tcase_add_test(tc, options_from_params);
    tcase_add_test(tc, synthetic_through_the_pipeline);
    return dlas_test_run(s);
}
