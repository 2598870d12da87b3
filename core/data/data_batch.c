/* Making one batch: which samples (the epoch's keyed permutation), reading
 * them from the plugin, then crop, flip and normalisation in one pass.
 * Everything here is a pure function of (pipeline, split, epoch, batch), which
 * is what lets any worker make any batch and still give the same bytes. */
#include <stdlib.h>
#include <string.h>

#include <dlas/rng.h>

#include "data_impl.h"

uint64_t dlas_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t dlas_data_seed(uint64_t seed, const char *purpose, uint64_t a, uint64_t b)
{
    uint64_t z = dlas_mix64(seed ^ dlas_rng_hash(purpose));
    z = dlas_mix64(z + 0x9e3779b97f4a7c15ull * (a + 1));
    return dlas_mix64(z + 0xd1b54a32d192ed03ull * (b + 1));
}

/* ---- keyed permutation ---------------------------------------------------- */

#define PERM_ROUNDS 6

void dlas_perm_init(struct dlas_perm *p, uint64_t n, uint64_t key)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    /* An even number of bits >= 2 with 2^bits >= n, so both Feistel halves
     * are equal and cycle walking needs fewer than 4 steps on average. */
    int bits = 2;
    while (bits < 62 && (1ull << bits) < n)
        bits++;
    bits += bits & 1;
    p->half = bits / 2;
    p->mask = (1ull << p->half) - 1;
    for (int r = 0; r < PERM_ROUNDS; r++)
        p->keys[r] = dlas_mix64(key + 0x9e3779b97f4a7c15ull * (uint64_t)(r + 1));
}

static uint64_t feistel(const struct dlas_perm *p, uint64_t x)
{
    uint64_t l = x >> p->half, r = x & p->mask;
    for (int k = 0; k < PERM_ROUNDS; k++) {
        uint64_t t = l ^ (dlas_mix64(r ^ p->keys[k]) & p->mask);
        l = r;
        r = t;
    }
    return (l << p->half) | r;
}

uint64_t dlas_perm_at(const struct dlas_perm *p, uint64_t i)
{
    /* Cycle walking: a bijection on [0, 2^bits) re-applied until it lands in
     * [0, n) is a bijection on [0, n). */
    uint64_t x = feistel(p, i);
    while (x >= p->n)
        x = feistel(p, x);
    return x;
}

/* ---- buffers ------------------------------------------------------------- */

int dlas_batch_scratch_init(const struct dlas_data *d, struct dlas_batch_scratch *s)
{
    memset(s, 0, sizeof *s);
    s->image = dlas_aligned_alloc((size_t)d->info.height * d->info.width * sizeof(float));
    s->views = dlas_aligned_alloc((size_t)d->opt.batch * sizeof(uint64_t));
    if (!s->image || !s->views) {
        dlas_batch_scratch_free(s);
        return dlas_error(DLAS_ERR_NOMEM, "data: cannot allocate loader scratch");
    }
    return DLAS_OK;
}

void dlas_batch_scratch_free(struct dlas_batch_scratch *s)
{
    dlas_aligned_free(s->image);
    dlas_aligned_free(s->views);
    memset(s, 0, sizeof *s);
}

int dlas_batch_slot_init(const struct dlas_data *d, struct dlas_batch_slot *s)
{
    memset(s, 0, sizeof *s);
    size_t b = (size_t)d->opt.batch;
    s->images = dlas_aligned_alloc(b * (size_t)d->pix * sizeof(float));
    s->labels = dlas_aligned_alloc(b * sizeof(int32_t));
    s->indices = dlas_aligned_alloc(b * sizeof(int64_t));
    if (!s->images || !s->labels || !s->indices) {
        dlas_batch_slot_free(s);
        return dlas_error(DLAS_ERR_NOMEM, "data: cannot allocate a batch of %zu x %lld floats",
                          b, (long long)d->pix);
    }
    return DLAS_OK;
}

void dlas_batch_slot_free(struct dlas_batch_slot *s)
{
    dlas_aligned_free(s->images);
    dlas_aligned_free(s->labels);
    dlas_aligned_free(s->indices);
    memset(s, 0, sizeof *s);
}

/* ---- reading and transforming ------------------------------------------------ */

static int64_t plugin_index(const struct dlas_data *d, enum dlas_data_split s, int64_t pos)
{
    if (s == DLAS_DATA_VAL)
        return d->val_idx[pos];
    if (s == DLAS_DATA_TRAIN && d->train_idx)
        return d->train_idx[pos];
    return pos;
}

/* Read n samples by plugin index and check what came back. */
static int read_checked(const struct dlas_data *d, enum dlas_data_split s, const int64_t *idx,
                        int64_t n, const uint64_t *views, float *images, int32_t *labels)
{
    enum dlas_split ps = dlas_data_plugin_split(s);
    int rc = views ? d->ops->read_views(d->handle, ps, idx, n, views, images, labels)
                   : d->ops->read(d->handle, ps, idx, n, images, labels);
    if (rc)
        return rc;
    for (int64_t i = 0; labels && i < n; i++)
        if (labels[i] < 0 || labels[i] >= d->info.classes)
            return dlas_error(DLAS_ERR_CORRUPT,
                              "the dataset gave label %d to sample %lld of its %s split, "
                              "outside 0..%d",
                              (int)labels[i], (long long)idx[i],
                              ps == DLAS_SPLIT_TEST ? "test" : "train", d->info.classes - 1);
    return DLAS_OK;
}

static void normalise(const struct dlas_data *d, float *img)
{
    int64_t plane = (int64_t)d->info.height * d->info.width;
    for (int c = 0; c < d->info.channels; c++) {
        const float m = d->info.mean[c], sd = d->info.std[c];
        float *p = img + c * plane;
        for (int64_t k = 0; k < plane; k++)
            p[k] = (p[k] - m) / sd;
    }
}

/* Crop from the zero-padded image at offset (dx, dy) of [0, 2 pad], then
 * mirror if asked; torchvision's RandomCrop(padding) + RandomHorizontalFlip,
 * padding with black before normalisation as it does. */
static void augment(const struct dlas_data *d, float *img, float *plane_buf, int dx, int dy,
                    int flip)
{
    const int h = d->info.height, w = d->info.width, pad = d->opt.crop_padding;
    for (int c = 0; c < d->info.channels; c++) {
        float *p = img + (int64_t)c * h * w;
        const float m = d->info.mean[c], sd = d->info.std[c], zero = (0.0f - m) / sd;
        memcpy(plane_buf, p, (size_t)h * w * sizeof(float));
        for (int y = 0; y < h; y++) {
            float *out = p + (int64_t)y * w;
            int sy = y + dy - pad;
            if (sy < 0 || sy >= h) {
                for (int x = 0; x < w; x++)
                    out[x] = zero;
                continue;
            }
            const float *in = plane_buf + (int64_t)sy * w;
            for (int x = 0; x < w; x++) {
                int sx = (flip ? w - 1 - x : x) + dx - pad;
                out[x] = sx < 0 || sx >= w ? zero : (in[sx] - m) / sd;
            }
        }
    }
}

int64_t dlas_data_epoch_samples(const struct dlas_data *d, enum dlas_data_split s)
{
    int64_t n = d->n[s];
    if (s == DLAS_DATA_TRAIN && d->opt.drop_last)
        n -= n % d->opt.batch;
    return n;
}

int dlas_data_fill(const struct dlas_data *d, enum dlas_data_split s, int64_t epoch,
                   int64_t index, struct dlas_batch_slot *slot, struct dlas_batch_scratch *sc)
{
    const struct dlas_data_options *o = &d->opt;
    int64_t total = dlas_data_epoch_samples(d, s), start = index * o->batch;
    int64_t n = total - start < o->batch ? total - start : o->batch;
    if (index < 0 || n <= 0)
        return dlas_error(DLAS_ERR_INTERNAL, "data: batch %lld is outside the %s epoch",
                          (long long)index, dlas_data_split_name(s));
    const int train = s == DLAS_DATA_TRAIN;
    struct dlas_perm perm;
    if (train && o->shuffle)
        dlas_perm_init(&perm, (uint64_t)d->n[s], dlas_data_seed(o->seed, "shuffle", (uint64_t)epoch, 0));
    for (int64_t j = 0; j < n; j++) {
        int64_t pos = start + j;
        if (train && o->shuffle)
            pos = (int64_t)dlas_perm_at(&perm, (uint64_t)pos);
        slot->indices[j] = plugin_index(d, s, pos);
    }

    const uint64_t *views = NULL;
    if (train && o->views && d->has_views) {
        for (int64_t j = 0; j < n; j++) {
            uint64_t v = dlas_data_seed(o->seed, "views", (uint64_t)epoch, (uint64_t)slot->indices[j]);
            sc->views[j] = v ? v : 1; /* 0 would ask for the evaluation view */
        }
        views = sc->views;
    }
    int rc = read_checked(d, s, slot->indices, n, views, slot->images, slot->labels);
    if (rc)
        return dlas_error_context("%s batch %lld of epoch %lld", dlas_data_split_name(s),
                                  (long long)index, (long long)epoch);

    const int aug = train && (o->crop_padding > 0 || o->hflip);
    for (int64_t j = 0; j < n; j++) {
        float *img = slot->images + j * d->pix;
        if (!aug) {
            normalise(d, img);
            continue;
        }
        struct dlas_rng r;
        dlas_rng_seed(&r, dlas_data_seed(o->seed, "augment", (uint64_t)epoch,
                                         (uint64_t)slot->indices[j]));
        int span = 2 * o->crop_padding + 1;
        int dx = (int)dlas_rng_below(&r, (uint64_t)span), dy = (int)dlas_rng_below(&r, (uint64_t)span);
        int flip = o->hflip && (dlas_rng_u64(&r) >> 63);
        augment(d, img, sc->image, dx, dy, flip);
    }

    struct dlas_batch *b = &slot->b;
    b->epoch = epoch;
    b->index = index;
    b->n = n;
    b->last = start + n >= total;
    b->labels = slot->labels;
    b->indices = slot->indices;
    memset(&b->images, 0, sizeof b->images);
    b->images.dtype = DLAS_F32;
    b->images.ndim = 4;
    b->images.dims[0] = n;
    b->images.dims[1] = d->info.channels;
    b->images.dims[2] = d->info.height;
    b->images.dims[3] = d->info.width;
    b->images.data = slot->images;
    return DLAS_OK;
}

int dlas_data_read(const struct dlas_data *d, enum dlas_data_split s, int64_t first, int64_t n,
                   float *images, int32_t *labels)
{
    if ((unsigned)s > DLAS_DATA_TEST)
        return dlas_error(DLAS_ERR_INVALID, "data: unknown split %d", (int)s);
    if (first < 0 || n < 0 || first > d->n[s] - n)
        return dlas_error(DLAS_ERR_INVALID, "data: samples %lld..%lld are outside the %s split (%lld)",
                          (long long)first, (long long)(first + n - 1), dlas_data_split_name(s),
                          (long long)d->n[s]);
    if (n == 0)
        return DLAS_OK;
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    if (!idx)
        return dlas_error(DLAS_ERR_NOMEM, "data: cannot allocate %lld indices", (long long)n);
    for (int64_t j = 0; j < n; j++)
        idx[j] = plugin_index(d, s, first + j);
    int rc = read_checked(d, s, idx, n, NULL, images, labels);
    free(idx);
    if (rc)
        return dlas_error_context("%s samples %lld..%lld", dlas_data_split_name(s),
                                  (long long)first, (long long)(first + n - 1));
    for (int64_t j = 0; images && j < n; j++)
        normalise(d, images + j * d->pix);
    return DLAS_OK;
}

int dlas_batch_copy(const struct dlas_batch *b, struct dlas_tensor *images, int32_t *labels)
{
    if (!b || !images || images->dtype != DLAS_F32 || images->ndim != 4 || !images->data)
        return dlas_error(DLAS_ERR_INVALID, "batch copy: the destination is not a 4-D F32 tensor");
    for (int k = 1; k < 4; k++)
        if (images->dims[k] != b->images.dims[k])
            return dlas_error(DLAS_ERR_INVALID,
                              "batch copy: destination is %lldx%lldx%lld per sample, the batch %lldx%lldx%lld",
                              (long long)images->dims[1], (long long)images->dims[2],
                              (long long)images->dims[3], (long long)b->images.dims[1],
                              (long long)b->images.dims[2], (long long)b->images.dims[3]);
    if (images->dims[0] < b->n)
        return dlas_error(DLAS_ERR_INVALID, "batch copy: destination holds %lld samples, the batch %lld",
                          (long long)images->dims[0], (long long)b->n);
    size_t per = (size_t)(b->images.dims[1] * b->images.dims[2] * b->images.dims[3]);
    memcpy(images->data, b->images.data, (size_t)b->n * per * sizeof(float));
    memset((float *)images->data + (size_t)b->n * per, 0,
           (size_t)(images->dims[0] - b->n) * per * sizeof(float));
    if (labels)
        memcpy(labels, b->labels, (size_t)b->n * sizeof *labels);
    return DLAS_OK;
}
