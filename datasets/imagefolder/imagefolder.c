/* Dataset "imagefolder": ImageNet-style trees (Deng et al., 2009), one folder
 * per class, JPEG or PNG, for users' own ImageNet subsets.
 *
 * open() lists the files (sorted, so sample i is the same file everywhere) and
 * checks each one's header, so that a stray text file or a broken image is
 * reported before training starts rather than hours into it. read() decodes
 * on demand: each call owns its buffers, so any number of threads may read at
 * once. Evaluation view: shorter side resized, centre crop. Training view
 * (read_views): a random-resized crop drawn from the seed the core gives. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <dlas/plugin.h>

#include "decode.h"
#include "resample.h"
#include "scan.h"

enum verify { VERIFY_NONE, VERIFY_HEADER, VERIFY_DECODE };

struct imgf {
    const struct dlas_host *host;
    char dir[2][4096]; /* the split folders */
    struct classes cls;
    struct filelist f[2];
    int size, resize, channels, rrc, skip_bad, imagenet_stats;
    double scale_min, scale_max, ratio_min, ratio_max;
    atomic_llong bad_reads;
};

static const char *const split_name[2] = {"train", "test"};

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *str_param(const struct dlas_params *p, const char *name, const char *def)
{
    const char *s = p ? dlas_param_str(p, name) : NULL;
    return s ? s : def;
}

/* Check every file of a split; drop the bad ones when skip_bad, else refuse
 * the first with its path and reason. */
static int verify_split(struct imgf *g, int k, enum verify how)
{
    struct filelist *f = &g->f[k];
    if (how == VERIFY_NONE || f->n == 0)
        return DLAS_OK;
    unsigned char *keep = malloc((size_t)f->n);
    if (!keep)
        return dlas_error(DLAS_ERR_NOMEM, "imagefolder: out of memory");
    int64_t bad = 0;
    char first[8192] = "";
    for (int64_t i = 0; i < f->n; i++) {
        char path[8192], why[512] = "";
        snprintf(path, sizeof path, "%s/%s", g->dir[k], filelist_name(f, i));
        int w, h, rc;
        if (how == VERIFY_DECODE) {
            struct image im;
            rc = img_decode(path, g->channels, NULL, NULL, &im, why, sizeof why);
            img_free(&im);
        } else
            rc = img_probe(path, &w, &h, why, sizeof why);
        keep[i] = rc == 0;
        if (rc == 0)
            continue;
        if (!g->skip_bad) {
            free(keep);
            return dlas_error(rc == DLAS_ERR_NOMEM ? rc : DLAS_ERR_CORRUPT,
                              "imagefolder: %s: %s (skip_bad = true would leave it out)", path,
                              why);
        }
        if (!bad++)
            snprintf(first, sizeof first, "%.7000s: %s", path, why);
        g->host->log(DLAS_LOG_DEBUG, "imagefolder: skipped %s: %s", path, why);
    }
    if (bad) {
        g->host->log(DLAS_LOG_WARN, "imagefolder: skipped %lld undecodable of %lld %s images (first: %s)",
                     (long long)bad, (long long)f->n, split_name[k], first);
        filelist_filter(f, keep);
    }
    free(keep);
    if (f->n == 0)
        return dlas_error(DLAS_ERR_CORRUPT, "imagefolder: no decodable image in %s", g->dir[k]);
    return DLAS_OK;
}

static void imgf_close(void *handle)
{
    struct imgf *g = handle;
    if (!g)
        return;
    classes_free(&g->cls);
    filelist_free(&g->f[0]);
    filelist_free(&g->f[1]);
    g->host->free(g);
}

static int imgf_configure(struct imgf *g, const struct dlas_params *p)
{
    g->size = p ? (int)dlas_param_int(p, "size") : 224;
    int resize = p ? (int)dlas_param_int(p, "resize") : 0;
    /* 256 for 224: the ratio of the usual ImageNet evaluation. */
    g->resize = resize > 0 ? resize : (int)((g->size * 256 + 112) / 224);
    g->channels = p ? (int)dlas_param_int(p, "channels") : 3;
    g->rrc = !strcmp(str_param(p, "train_view", "random-resized"), "random-resized");
    g->scale_min = p ? dlas_param_float(p, "scale_min") : 0.08;
    g->scale_max = p ? dlas_param_float(p, "scale_max") : 1.0;
    g->ratio_min = p ? dlas_param_float(p, "ratio_min") : 3.0 / 4.0;
    g->ratio_max = p ? dlas_param_float(p, "ratio_max") : 4.0 / 3.0;
    g->skip_bad = p ? dlas_param_bool(p, "skip_bad") : 0;
    g->imagenet_stats = p ? dlas_param_bool(p, "imagenet_stats") : 1;
    if (g->channels != 1 && g->channels != 3)
        return dlas_error(DLAS_ERR_INVALID, "imagefolder: channels = %d: 1 (grey) or 3 (RGB)",
                          g->channels);
    if (g->size < 1 || g->resize < g->size)
        return dlas_error(DLAS_ERR_INVALID, "imagefolder: resize = %d is smaller than size = %d",
                          g->resize, g->size);
    if (!(g->scale_min > 0 && g->scale_min <= g->scale_max && g->scale_max <= 1))
        return dlas_error(DLAS_ERR_INVALID,
                          "imagefolder: scale_min = %g, scale_max = %g: need 0 < min <= max <= 1",
                          g->scale_min, g->scale_max);
    if (!(g->ratio_min > 0 && g->ratio_min <= g->ratio_max))
        return dlas_error(DLAS_ERR_INVALID,
                          "imagefolder: ratio_min = %g, ratio_max = %g: need 0 < min <= max",
                          g->ratio_min, g->ratio_max);
    return DLAS_OK;
}

/* The split folders: train must exist; the test folder is optional unless
 * named explicitly (default "val", else "test"). */
static int imgf_folders(struct imgf *g, const struct dlas_params *p, const char *root)
{
    snprintf(g->dir[0], sizeof g->dir[0], "%s/%s", root, str_param(p, "train_dir", "train"));
    if (!is_dir(g->dir[0]))
        return dlas_error(DLAS_ERR_NOTFOUND,
                          "imagefolder: train folder %s not found (set train_dir = \".\" if %s "
                          "holds the class folders itself)",
                          g->dir[0], root);
    const char *test = str_param(p, "test_dir", "val");
    snprintf(g->dir[1], sizeof g->dir[1], "%s/%s", root, test);
    if (is_dir(g->dir[1]))
        return DLAS_OK;
    if (p && dlas_param_given(p, "test_dir"))
        return dlas_error(DLAS_ERR_NOTFOUND, "imagefolder: test folder %s not found", g->dir[1]);
    snprintf(g->dir[1], sizeof g->dir[1], "%s/test", root);
    if (!is_dir(g->dir[1]))
        g->dir[1][0] = '\0';
    return DLAS_OK;
}

static int imgf_open(const struct dlas_host *host, const struct dlas_params *p, void **handle)
{
    *handle = NULL;
    const char *root = str_param(p, "path", "");
    if (!*root)
        return dlas_error(DLAS_ERR_INVALID, "imagefolder: set path to the root of the image tree");
    if (!is_dir(root))
        return dlas_error(DLAS_ERR_NOTFOUND, "imagefolder: directory '%s' not found", root);
    struct imgf *g = host->alloc(sizeof *g);
    if (!g)
        return dlas_error(DLAS_ERR_NOMEM, "imagefolder: out of memory");
    g->host = host;
    atomic_init(&g->bad_reads, 0);
    const char *v = str_param(p, "verify", "header");
    enum verify how = !strcmp(v, "none") ? VERIFY_NONE : !strcmp(v, "decode") ? VERIFY_DECODE
                                                                              : VERIFY_HEADER;
    int rc = imgf_configure(g, p);
    if (!rc)
        rc = imgf_folders(g, p, root);
    struct scan_opts so;
    memset(&so, 0, sizeof so);
    if (!rc)
        rc = scan_opts_init(&so, root, p ? dlas_param_bool(p, "follow_links") : 0);
    if (!rc)
        rc = scan_classes(g->dir[0], &so, &g->cls);
    if (!rc)
        rc = scan_split(g->dir[0], &g->cls, &so, &g->f[0]);
    if (!rc && g->dir[1][0])
        rc = scan_split(g->dir[1], &g->cls, &so, &g->f[1]);
    if (!rc && so.links_skipped)
        host->log(DLAS_LOG_WARN,
                  "imagefolder: left out %lld symbolic link%s to folders under %s (links to folders "
                  "are not followed; follow_links = true follows those leading outside the tree, "
                  "each folder once)",
                  (long long)so.links_skipped, so.links_skipped == 1 ? "" : "s", root);
    scan_opts_free(&so);
    if (!rc)
        rc = verify_split(g, 0, how);
    if (!rc)
        rc = verify_split(g, 1, how);
    if (rc) {
        imgf_close(g);
        return rc;
    }
    host->log(DLAS_LOG_INFO, "imagefolder: %d classes, %lld train images in %s, %lld test images%s%s",
              g->cls.n, (long long)g->f[0].n, g->dir[0], (long long)g->f[1].n,
              g->dir[1][0] ? " in " : " (no test folder)", g->dir[1]);
    *handle = g;
    return DLAS_OK;
}

static int imgf_info(void *handle, struct dlas_dataset_info *info)
{
    const struct imgf *g = handle;
    memset(info, 0, sizeof *info);
    info->channels = g->channels;
    info->height = g->size;
    info->width = g->size;
    info->classes = g->cls.n;
    info->n_train = g->f[0].n;
    info->n_test = g->f[1].n;
    if (g->imagenet_stats && g->channels == 3) {
        /* The ImageNet statistics every torchvision recipe uses. */
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        memcpy(info->mean, mean, sizeof mean);
        memcpy(info->std, std, sizeof std);
    }
    return DLAS_OK;
}

struct view {
    const struct imgf *g;
    uint64_t seed; /* 0: evaluation view */
    struct box box;
};

static int choose_view(void *arg, int w, int h)
{
    struct view *v = arg;
    const struct imgf *g = v->g;
    if (v->seed && g->rrc)
        v->box = box_random_resized(w, h, v->seed, g->scale_min, g->scale_max, g->ratio_min,
                                    g->ratio_max);
    else
        v->box = box_center(w, h, g->size, g->resize);
    return box_shrink(v->box, g->size);
}

static int imgf_read_views(void *handle, enum dlas_split split, const int64_t *indices, int64_t n,
                           const uint64_t *views, float *images, int32_t *labels)
{
    struct imgf *g = handle;
    if (split != DLAS_SPLIT_TRAIN && split != DLAS_SPLIT_TEST)
        return dlas_error(DLAS_ERR_INVALID, "imagefolder: unknown split %d", (int)split);
    if (n < 0 || (n > 0 && !indices))
        return dlas_error(DLAS_ERR_INVALID, "imagefolder: read of %lld samples without indices",
                          (long long)n);
    const struct filelist *f = &g->f[split];
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= f->n)
            return dlas_error(DLAS_ERR_INVALID, "imagefolder: index %lld is outside the %s split (0..%lld)",
                              (long long)indices[i], split_name[split], (long long)f->n - 1);
    const int64_t pix = (int64_t)g->channels * g->size * g->size;
    for (int64_t i = 0; i < n; i++) {
        if (labels)
            labels[i] = f->label[indices[i]];
        if (!images)
            continue;
        char path[8192], why[512] = "";
        snprintf(path, sizeof path, "%s/%s", g->dir[split], filelist_name(f, indices[i]));
        struct view v = {g, views ? views[i] : 0, {0, 0, 0, 0}};
        struct image im;
        int rc = img_decode(path, g->channels, choose_view, &v, &im, why, sizeof why);
        if (!rc && resample(&im, v.box, g->size, images + i * pix)) {
            rc = DLAS_ERR_NOMEM;
            snprintf(why, sizeof why, "out of memory resampling");
        }
        img_free(&im);
        if (!rc)
            continue;
        if (!g->skip_bad || rc == DLAS_ERR_NOMEM)
            return dlas_error(rc, "imagefolder: %s (%s sample %lld): %s", path, split_name[split],
                              (long long)indices[i], why);
        /* The header was fine at open but the data is not: keep the epoch's
         * shape and say so. */
        long long k = atomic_fetch_add(&g->bad_reads, 1) + 1;
        g->host->log(DLAS_LOG_WARN, "imagefolder: %s: %s; given as a black image (%lld so far)",
                     path, why, k);
        memset(images + i * pix, 0, (size_t)pix * sizeof(float));
    }
    return DLAS_OK;
}

static int imgf_read(void *handle, enum dlas_split split, const int64_t *indices, int64_t n,
                     float *images, int32_t *labels)
{
    return imgf_read_views(handle, split, indices, n, NULL, images, labels);
}

static const struct dlas_param_spec imgf_params[] = {
    {"path", DLAS_PARAM_STRING, DLAS_PARAM_REQUIRED | DLAS_PARAM_PATH, NULL, 0, 0, NULL,
     "root of the tree: <path>/<train_dir>/<class>/<image>"},
    {"train_dir", DLAS_PARAM_STRING, 0, "\"train\"", 0, 0, NULL,
     "train folder under path (\".\": path holds the class folders)"},
    {"test_dir", DLAS_PARAM_STRING, 0, "\"val\"", 0, 0, NULL,
     "test folder under path; if absent and not given, \"test\", else no test split"},
    {"size", DLAS_PARAM_INT, 0, "224", 8, 2048, NULL, "output height and width"},
    {"resize", DLAS_PARAM_INT, 0, "0", 0, 8192, NULL,
     "evaluation: shorter side before the centre crop; 0 = size * 256 / 224"},
    {"channels", DLAS_PARAM_INT, 0, "3", 1, 3, NULL, "3 (RGB) or 1 (grey)"},
    {"train_view", DLAS_PARAM_ENUM, 0, "random-resized", 0, 0, "random-resized|center",
     "training view when the core asks for one: random-resized crop, or the evaluation view"},
    {"scale_min", DLAS_PARAM_FLOAT, 0, "0.08", 0.001, 1, NULL,
     "random-resized crop: smallest share of the image area"},
    {"scale_max", DLAS_PARAM_FLOAT, 0, "1.0", 0.001, 1, NULL,
     "random-resized crop: largest share of the image area"},
    {"ratio_min", DLAS_PARAM_FLOAT, 0, "0.75", 0.01, 100, NULL,
     "random-resized crop: smallest aspect ratio (width / height)"},
    {"ratio_max", DLAS_PARAM_FLOAT, 0, "1.3333333333", 0.01, 100, NULL,
     "random-resized crop: largest aspect ratio"},
    {"verify", DLAS_PARAM_ENUM, 0, "header", 0, 0, "header|decode|none",
     "at open, check each image's header, decode each fully, or check nothing"},
    {"follow_links", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "follow symbolic links to folders that lead outside the tree (each folder once); links "
     "within the tree are never followed"},
    {"skip_bad", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "leave out images that fail verification (counted in the log) instead of refusing"},
    {"imagenet_stats", DLAS_PARAM_BOOL, 0, "true", 0, 0, NULL,
     "report ImageNet's mean/std for normalisation (RGB only); false: let the core compute them"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_dataset_ops imgf_ops = {
    sizeof(struct dlas_dataset_ops), imgf_open, imgf_info, imgf_read, imgf_close, imgf_read_views,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_DATASET, "imagefolder",
     "class-per-folder JPEG/PNG trees (ImageNet layout): resize + centre crop, random-resized "
     "crop for training",
     "J. Deng, W. Dong, R. Socher, L.-J. Li, K. Li, L. Fei-Fei. ImageNet: A Large-Scale "
     "Hierarchical Image Database. CVPR 2009",
     imgf_params, &imgf_ops},
};

DLAS_PLUGIN("imagefolder", "0.1.0", "ImageNet-style image folders", components)
