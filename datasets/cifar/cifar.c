/* Dataset "cifar": CIFAR-10 and CIFAR-100 (Krizhevsky, 2009) in their
 * official binary formats, from a user-given directory.
 *
 * Both splits are loaded at open() as bytes (150 MB for the train set), so
 * read() is a table lookup per pixel, lock-free and safe from any thread. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cifar.h"

static void stats(struct cifar *c)
{
    const struct cifar_split *s = &c->s[DLAS_SPLIT_TRAIN];
    const int plane = CIFAR_SIDE * CIFAR_SIDE;
    for (int ch = 0; ch < 3; ch++) {
        uint64_t hist[256] = {0};
        for (int64_t i = 0; i < s->n; i++) {
            const uint8_t *p = s->pixels + i * CIFAR_PIX + ch * plane;
            for (int k = 0; k < plane; k++)
                hist[p[k]]++;
        }
        double sum = 0.0, sq = 0.0, count = (double)s->n * plane;
        for (int v = 0; v < 256; v++) {
            sum += c->lut[v] * (double)hist[v];
            sq += (double)c->lut[v] * c->lut[v] * (double)hist[v];
        }
        double m = sum / count, var = sq / count - m * m;
        c->mean[ch] = (float)m;
        c->std[ch] = var > 0 ? (float)sqrt(var) : 0.0f;
    }
}

static void cifar_close(void *handle)
{
    struct cifar *c = handle;
    if (!c)
        return;
    cifar_free_splits(c);
    c->host->free(c);
}

static int cifar_open(const struct dlas_host *host, const struct dlas_params *p, void **handle)
{
    *handle = NULL;
    const char *dir = p ? dlas_param_str(p, "path") : NULL;
    if (!dir || !*dir)
        return dlas_error(DLAS_ERR_INVALID,
                          "cifar: set path to the folder of the binary files (data_batch_1.bin "
                          "... or train.bin, test.bin)");
    const char *version = p ? dlas_param_str(p, "version") : "auto";
    const char *labels = p ? dlas_param_str(p, "labels") : "fine";
    struct cifar *c = host->alloc(sizeof *c);
    if (!c)
        return dlas_error(DLAS_ERR_NOMEM, "cifar: out of memory");
    c->host = host;
    c->coarse = labels && !strcmp(labels, "coarse");
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    for (int v = 0; v < 256; v++)
        c->lut[v] = (float)v / 255.0f;
    int want = version && !strcmp(version, "10") ? 10 : version && !strcmp(version, "100") ? 100 : 0;
    int rc = cifar_load(c, want);
    if (!rc && c->version == 10 && p && dlas_param_given(p, "labels") && c->coarse)
        rc = dlas_error(DLAS_ERR_INVALID,
                        "cifar: labels = \"coarse\" needs CIFAR-100; %s holds CIFAR-10", c->dir);
    if (rc) {
        cifar_close(c);
        return rc;
    }
    stats(c);
    host->log(DLAS_LOG_INFO, "cifar: CIFAR-%d (%d classes): %lld train + %lld test images from %s",
              c->version, c->classes, (long long)c->s[0].n, (long long)c->s[1].n, c->dir);
    *handle = c;
    return DLAS_OK;
}

static int cifar_info(void *handle, struct dlas_dataset_info *info)
{
    const struct cifar *c = handle;
    memset(info, 0, sizeof *info);
    info->channels = 3;
    info->height = CIFAR_SIDE;
    info->width = CIFAR_SIDE;
    info->classes = c->classes;
    info->n_train = c->s[DLAS_SPLIT_TRAIN].n;
    info->n_test = c->s[DLAS_SPLIT_TEST].n;
    for (int ch = 0; ch < 3; ch++) {
        info->mean[ch] = c->mean[ch];
        info->std[ch] = c->std[ch];
    }
    return DLAS_OK;
}

static int cifar_read(void *handle, enum dlas_split split, const int64_t *indices, int64_t n,
                      float *images, int32_t *labels)
{
    const struct cifar *c = handle;
    if (split != DLAS_SPLIT_TRAIN && split != DLAS_SPLIT_TEST)
        return dlas_error(DLAS_ERR_INVALID, "cifar: unknown split %d", (int)split);
    if (n < 0 || (n > 0 && !indices))
        return dlas_error(DLAS_ERR_INVALID, "cifar: read of %lld samples without indices",
                          (long long)n);
    const struct cifar_split *s = &c->s[split];
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= s->n)
            return dlas_error(DLAS_ERR_INVALID, "cifar: index %lld is outside the %s split (0..%lld)",
                              (long long)indices[i], split == DLAS_SPLIT_TRAIN ? "train" : "test",
                              (long long)s->n - 1);
    for (int64_t i = 0; i < n; i++) {
        if (labels)
            labels[i] = s->labels[indices[i]];
        if (!images)
            continue;
        const uint8_t *src = s->pixels + indices[i] * CIFAR_PIX;
        float *dst = images + i * CIFAR_PIX;
        for (int k = 0; k < CIFAR_PIX; k++)
            dst[k] = c->lut[src[k]];
    }
    return DLAS_OK;
}

static const struct dlas_param_spec cifar_params[] = {
    {"path", DLAS_PARAM_STRING, DLAS_PARAM_REQUIRED | DLAS_PARAM_PATH, NULL, 0, 0, NULL,
     "folder of the binary files, or the folder holding cifar-10-batches-bin/ or "
     "cifar-100-binary/"},
    {"version", DLAS_PARAM_ENUM, 0, "auto", 0, 0, "auto|10|100",
     "CIFAR-10 or CIFAR-100; auto: whichever the folder holds"},
    {"labels", DLAS_PARAM_ENUM, 0, "fine", 0, 0, "fine|coarse",
     "CIFAR-100: the 100 fine classes or the 20 coarse superclasses"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_dataset_ops cifar_ops = {
    sizeof(struct dlas_dataset_ops), cifar_open, cifar_info, cifar_read, cifar_close, NULL,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_DATASET, "cifar",
     "CIFAR-10 / CIFAR-100: 50000 + 10000 colour 32x32 images, binary version",
     "A. Krizhevsky. Learning Multiple Layers of Features from Tiny Images. Technical report, "
     "University of Toronto, 2009",
     cifar_params, &cifar_ops},
};

DLAS_PLUGIN("cifar", "0.1.0", "CIFAR-10 and CIFAR-100 from their binary files", components)
