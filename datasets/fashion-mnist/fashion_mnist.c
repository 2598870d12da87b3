/* Dataset "fashion-mnist": Zalando's Fashion-MNIST (Xiao, Rasul & Vollgraf,
 * 2017) from the IDX files that Debian's dataset-fashion-mnist package
 * installs, so that it works with no configuration.
 *
 * All four files are loaded at open() as bytes (47 MB for the train images):
 * read() is then a table lookup per pixel, needs no lock and cannot fail on
 * I/O half way through an epoch. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <dlas/plugin.h>

#include "idx.h"

#define DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define CLASSES 10
#define FMNIST_MAX_SIDE 4096

struct split {
    int64_t n;
    struct idx images, labels;
};

struct fmnist {
    const struct dlas_host *host;
    int h, w;
    struct split s[2]; /* by enum dlas_split */
    float mean, std;
    float lut[256];    /* byte -> [0,1], exactly k / 255.0f */
};

static const char *const split_file[2] = {"train", "t10k"};
static const char *const split_name[2] = {"train", "test"};

/* "<dir>/<stem>.gz", else "<dir>/<stem>" (an unpacked copy). */
static int find_file(const char *dir, const char *stem, char *path, size_t len)
{
    struct stat st;
    snprintf(path, len, "%s/%s.gz", dir, stem);
    if (stat(path, &st) == 0)
        return DLAS_OK;
    snprintf(path, len, "%s/%s", dir, stem);
    if (stat(path, &st) == 0)
        return DLAS_OK;
    return dlas_error(DLAS_ERR_NOTFOUND, "fashion-mnist: %s/%s(.gz) not found", dir, stem);
}

static int load_split(struct fmnist *f, const char *dir, int k)
{
    char ipath[4096], lpath[4096], stem[64];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", split_file[k]);
    int rc = find_file(dir, stem, ipath, sizeof ipath);
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", split_file[k]);
    if (!rc)
        rc = find_file(dir, stem, lpath, sizeof lpath);
    struct split *s = &f->s[k];
    if (!rc)
        rc = idx_load(f->host, ipath, 3, &s->images);
    if (!rc)
        rc = idx_load(f->host, lpath, 1, &s->labels);
    if (rc)
        return rc;
    if (s->images.dims[0] != s->labels.dims[0])
        return dlas_error(DLAS_ERR_CORRUPT, "fashion-mnist: %s has %u images but %s has %u labels",
                          ipath, s->images.dims[0], lpath, s->labels.dims[0]);
    if (s->images.dims[1] > FMNIST_MAX_SIDE || s->images.dims[2] > FMNIST_MAX_SIDE)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "fashion-mnist: %s: offset 8: images of %u x %u pixels (at most %d a side)",
                          ipath, s->images.dims[1], s->images.dims[2], FMNIST_MAX_SIDE);
    int h = (int)s->images.dims[1], w = (int)s->images.dims[2];
    if (k == DLAS_SPLIT_TRAIN) {
        f->h = h;
        f->w = w;
    } else if (h != f->h || w != f->w)
        return dlas_error(DLAS_ERR_CORRUPT, "fashion-mnist: %s holds %dx%d images, the train set %dx%d",
                          ipath, h, w, f->h, f->w);
    for (uint32_t i = 0; i < s->labels.dims[0]; i++)
        if (s->labels.data[i] >= CLASSES)
            return dlas_error(DLAS_ERR_CORRUPT,
                              "fashion-mnist: %s: offset %u (record %u): label %u is outside 0..%d",
                              lpath, 8 + i, i, s->labels.data[i], CLASSES - 1);
    s->n = s->images.dims[0];
    return DLAS_OK;
}

/* Mean and standard deviation of all train pixels, from a histogram. */
static void train_stats(struct fmnist *f)
{
    const struct idx *im = &f->s[DLAS_SPLIT_TRAIN].images;
    uint64_t hist[256] = {0};
    for (size_t i = 0; i < im->bytes; i++)
        hist[im->data[i]]++;
    double s = 0.0, q = 0.0;
    for (int v = 0; v < 256; v++) {
        double x = f->lut[v];
        s += x * (double)hist[v];
        q += x * x * (double)hist[v];
    }
    double m = s / (double)im->bytes, var = q / (double)im->bytes - m * m;
    f->mean = (float)m;
    f->std = var > 0 ? (float)sqrt(var) : 0.0f;
}

static void fm_close(void *handle);

static int fm_open(const struct dlas_host *host, const struct dlas_params *p, void **handle)
{
    *handle = NULL;
    const char *dir = p ? dlas_param_str(p, "path") : NULL;
    if (!dir || !*dir)
        dir = DEFAULT_DIR;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return dlas_error(DLAS_ERR_NOTFOUND,
                          "fashion-mnist: directory '%s' %s (Debian package dataset-fashion-mnist "
                          "installs the files in " DEFAULT_DIR "; or set path)",
                          dir, stat(dir, &st) != 0 ? "not found" : "is not a directory");
    struct fmnist *f = host->alloc(sizeof *f);
    if (!f)
        return dlas_error(DLAS_ERR_NOMEM, "fashion-mnist: out of memory");
    f->host = host;
    for (int v = 0; v < 256; v++)
        f->lut[v] = (float)v / 255.0f;
    int rc = load_split(f, dir, DLAS_SPLIT_TRAIN);
    if (!rc)
        rc = load_split(f, dir, DLAS_SPLIT_TEST);
    if (rc) {
        fm_close(f);
        return rc;
    }
    train_stats(f);
    host->log(DLAS_LOG_INFO, "fashion-mnist: %lld train + %lld test images of %dx%d from %s",
              (long long)f->s[0].n, (long long)f->s[1].n, f->h, f->w, dir);
    *handle = f;
    return DLAS_OK;
}

static int fm_info(void *handle, struct dlas_dataset_info *info)
{
    const struct fmnist *f = handle;
    memset(info, 0, sizeof *info);
    info->channels = 1;
    info->height = f->h;
    info->width = f->w;
    info->classes = CLASSES;
    info->n_train = f->s[DLAS_SPLIT_TRAIN].n;
    info->n_test = f->s[DLAS_SPLIT_TEST].n;
    info->mean[0] = f->mean;
    info->std[0] = f->std;
    return DLAS_OK;
}

static int fm_read(void *handle, enum dlas_split split, const int64_t *indices, int64_t n,
                   float *images, int32_t *labels)
{
    const struct fmnist *f = handle;
    if (split != DLAS_SPLIT_TRAIN && split != DLAS_SPLIT_TEST)
        return dlas_error(DLAS_ERR_INVALID, "fashion-mnist: unknown split %d", (int)split);
    const struct split *s = &f->s[split];
    if (n < 0 || (n > 0 && !indices))
        return dlas_error(DLAS_ERR_INVALID, "fashion-mnist: read of %lld samples without indices",
                          (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= s->n)
            return dlas_error(DLAS_ERR_INVALID,
                              "fashion-mnist: index %lld is outside the %s split (0..%lld)",
                              (long long)indices[i], split_name[split], (long long)s->n - 1);
    const int64_t pix = (int64_t)f->h * f->w;
    for (int64_t i = 0; i < n; i++) {
        if (labels)
            labels[i] = s->labels.data[indices[i]];
        if (!images)
            continue;
        const uint8_t *src = s->images.data + indices[i] * pix;
        float *dst = images + i * pix;
        for (int64_t k = 0; k < pix; k++)
            dst[k] = f->lut[src[k]];
    }
    return DLAS_OK;
}

static void fm_close(void *handle)
{
    struct fmnist *f = handle;
    if (!f)
        return;
    for (int k = 0; k < 2; k++) {
        idx_free(f->host, &f->s[k].images);
        idx_free(f->host, &f->s[k].labels);
    }
    f->host->free(f);
}

static const struct dlas_param_spec fm_params[] = {
    {"path", DLAS_PARAM_STRING, DLAS_PARAM_PATH, "\"" DEFAULT_DIR "\"", 0, 0, NULL,
     "directory of {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (Debian package "
     "dataset-fashion-mnist)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_dataset_ops fm_ops = {
    sizeof(struct dlas_dataset_ops), fm_open, fm_info, fm_read, fm_close, NULL,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_DATASET, "fashion-mnist",
     "Zalando's Fashion-MNIST: 60000 + 10000 grey 28x28 images of 10 clothing classes",
     "H. Xiao, K. Rasul, R. Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking "
     "Machine Learning Algorithms. arXiv:1708.07747, 2017",
     fm_params, &fm_ops},
};

DLAS_PLUGIN("fashion-mnist", "0.1.0", "Fashion-MNIST from Debian's dataset-fashion-mnist package",
            components)
