/* Dataset "synthetic": seeded, learnable random images for tests and for
 * timing runs that must not depend on downloaded data.
 *
 * Each class has a fixed prototype per channel: a sum of a few random plane
 * waves (smooth, image-like, so convolutions and pooling can pick it up).
 * Sample i of a split is   clamp(0.6 * prototype[label] + 0.4 * U[0,1))
 * with its label and noise drawn from an RNG seeded by (seed, split, i)
 * alone, so any subset can be read in any order, from any thread, and gives
 * the same bytes. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <dlas/plugin.h>

#define WAVES 4            /* plane waves per prototype channel */
#define MAX_CYCLES 3.0     /* highest spatial frequency, in cycles per image */
#define PROTO_WEIGHT 0.6f
#define NOISE_WEIGHT 0.4f
/* Prototypes are computed once at open() when they fit in this much memory,
 * and regenerated per sample otherwise (e.g. 100000 classes of 3x224x224). */
#define PROTO_CACHE_BYTES ((size_t)64 << 20)

struct syn {
    const struct dlas_host *host;
    int c, h, w, classes;
    int64_t n[2];  /* by enum dlas_split */
    int64_t pix;   /* c * h * w */
    uint64_t seed;
    float *protos; /* classes x pix, or NULL */
};

/* splitmix64's finaliser: a bijective mix, so distinct inputs stay distinct. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t stream_seed(uint64_t seed, const char *tag, uint64_t i)
{
    return mix64(mix64(seed ^ dlas_rng_hash(tag)) + 0x9e3779b97f4a7c15ull * (i + 1));
}

/* trig: scratch of 2 * (h + w) floats. */
static void make_prototype(const struct syn *s, int64_t cls, float *dst, float *trig)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, stream_seed(s->seed, "synthetic.prototype", (uint64_t)cls));
    const int h = s->h, w = s->w;
    float *sx = trig, *cx = trig + w, *sy = trig + 2 * w, *cy = trig + 2 * w + h;
    const double two_pi = 6.283185307179586;
    for (int c = 0; c < s->c; c++) {
        float *plane = dst + (int64_t)c * h * w;
        memset(plane, 0, (size_t)h * w * sizeof(float));
        double amp_sum = 0.0;
        for (int k = 0; k < WAVES; k++) {
            double fx = (2.0 * dlas_rng_uniform(&r) - 1.0) * MAX_CYCLES;
            double fy = (2.0 * dlas_rng_uniform(&r) - 1.0) * MAX_CYCLES;
            double phase = two_pi * dlas_rng_uniform(&r);
            double amp = 0.5 + 0.5 * dlas_rng_uniform(&r);
            amp_sum += amp;
            /* sin(a + b) = sin a cos b + cos a sin b keeps this O(h + w) in
             * trigonometry rather than O(h * w). */
            for (int x = 0; x < w; x++) {
                double a = two_pi * fx * x / w;
                sx[x] = (float)sin(a);
                cx[x] = (float)cos(a);
            }
            for (int y = 0; y < h; y++) {
                double b = two_pi * fy * y / h + phase;
                sy[y] = (float)(amp * sin(b));
                cy[y] = (float)(amp * cos(b));
            }
            for (int y = 0; y < h; y++) {
                float *row = plane + (int64_t)y * w;
                for (int x = 0; x < w; x++)
                    row[x] += sx[x] * cy[y] + cx[x] * sy[y];
            }
        }
        float scale = (float)(0.5 / amp_sum);
        for (int64_t i = 0; i < (int64_t)h * w; i++) {
            float v = 0.5f + scale * plane[i];
            plane[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
    }
}

static int64_t param_int(const struct dlas_params *p, const char *name, int64_t def)
{
    return p ? dlas_param_int(p, name) : def;
}

static int syn_open(const struct dlas_host *host, const struct dlas_params *p, void **handle)
{
    *handle = NULL;
    int64_t c = param_int(p, "channels", 1), h = param_int(p, "height", 28),
            w = param_int(p, "width", 28), classes = param_int(p, "classes", 10),
            n_train = param_int(p, "train_size", 1024), n_test = param_int(p, "test_size", 256),
            seed = param_int(p, "seed", 0);
    /* The core validates ranges already; these guard direct callers. */
    if (c < 1 || c > 4)
        return dlas_error(DLAS_ERR_INVALID, "synthetic: channels = %lld is outside 1..4",
                          (long long)c);
    if (h < 1 || h > 4096 || w < 1 || w > 4096)
        return dlas_error(DLAS_ERR_INVALID,
                          "synthetic: image %lldx%lld is outside 1..4096 on a side",
                          (long long)h, (long long)w);
    if (classes < 2 || classes > 100000)
        return dlas_error(DLAS_ERR_INVALID, "synthetic: classes = %lld is outside 2..100000",
                          (long long)classes);
    if (n_train < 1 || n_test < 0)
        return dlas_error(DLAS_ERR_INVALID,
                          "synthetic: train_size must be at least 1 and test_size at least 0");

    struct syn *s = host->alloc(sizeof *s);
    if (!s)
        return dlas_error(DLAS_ERR_NOMEM, "synthetic: cannot allocate the handle");
    s->host = host;
    s->c = (int)c;
    s->h = (int)h;
    s->w = (int)w;
    s->classes = (int)classes;
    s->n[DLAS_SPLIT_TRAIN] = n_train;
    s->n[DLAS_SPLIT_TEST] = n_test;
    s->pix = c * h * w;
    /* seed 0 follows the experiment seed, so sweeping seeds varies the data. */
    s->seed = seed ? (uint64_t)seed : host->seed;

    size_t cache = (size_t)classes * (size_t)s->pix * sizeof(float);
    if (cache <= PROTO_CACHE_BYTES) {
        float *trig = host->alloc(2 * (size_t)(h + w) * sizeof(float));
        s->protos = host->alloc(cache);
        if (!trig || !s->protos) {
            host->free(trig);
            host->free(s->protos);
            host->free(s);
            return dlas_error(DLAS_ERR_NOMEM, "synthetic: cannot allocate %zu bytes of prototypes",
                              cache);
        }
        for (int64_t k = 0; k < classes; k++)
            make_prototype(s, k, s->protos + k * s->pix, trig);
        host->free(trig);
    }
    *handle = s;
    return DLAS_OK;
}

static int syn_info(void *handle, struct dlas_dataset_info *info)
{
    const struct syn *s = handle;
    memset(info, 0, sizeof *info); /* mean/std 0: not known in advance */
    info->channels = s->c;
    info->height = s->h;
    info->width = s->w;
    info->classes = s->classes;
    info->n_train = s->n[DLAS_SPLIT_TRAIN];
    info->n_test = s->n[DLAS_SPLIT_TEST];
    return DLAS_OK;
}

static int syn_read(void *handle, enum dlas_split split, const int64_t *indices, int64_t n,
                    float *images, int32_t *labels)
{
    const struct syn *s = handle;
    if (split != DLAS_SPLIT_TRAIN && split != DLAS_SPLIT_TEST)
        return dlas_error(DLAS_ERR_INVALID, "synthetic: unknown split %d", (int)split);
    if (n < 0 || (n > 0 && !indices))
        return dlas_error(DLAS_ERR_INVALID, "synthetic: read of %lld samples without indices",
                          (long long)n);
    const char *split_name = split == DLAS_SPLIT_TRAIN ? "train" : "test";
    /* Check everything first so that a refused read writes nothing. */
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= s->n[split])
            return dlas_error(DLAS_ERR_INVALID,
                              "synthetic: index %lld is outside the %s split (0..%lld)",
                              (long long)indices[i], split_name, (long long)s->n[split] - 1);

    float *proto_buf = NULL, *trig = NULL;
    if (images && !s->protos) {
        proto_buf = s->host->alloc((size_t)s->pix * sizeof(float));
        trig = s->host->alloc(2 * (size_t)(s->h + s->w) * sizeof(float));
        if (!proto_buf || !trig) {
            s->host->free(proto_buf);
            s->host->free(trig);
            return dlas_error(DLAS_ERR_NOMEM, "synthetic: cannot allocate a prototype buffer");
        }
    }
    const char *tag = split == DLAS_SPLIT_TRAIN ? "synthetic.train" : "synthetic.test";
    for (int64_t i = 0; i < n; i++) {
        struct dlas_rng r;
        dlas_rng_seed(&r, stream_seed(s->seed, tag, (uint64_t)indices[i]));
        int32_t label = (int32_t)dlas_rng_below(&r, (uint64_t)s->classes);
        if (labels)
            labels[i] = label;
        if (!images)
            continue;
        const float *proto = s->protos ? s->protos + (int64_t)label * s->pix : proto_buf;
        if (!s->protos)
            make_prototype(s, label, proto_buf, trig);
        float *img = images + i * s->pix;
        for (int64_t k = 0; k < s->pix; k++) {
            float v = PROTO_WEIGHT * proto[k] + NOISE_WEIGHT * (float)dlas_rng_uniform(&r);
            img[k] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
    }
    s->host->free(proto_buf);
    s->host->free(trig);
    return DLAS_OK;
}

static void syn_close(void *handle)
{
    struct syn *s = handle;
    if (!s)
        return;
    const struct dlas_host *host = s->host;
    host->free(s->protos);
    host->free(s);
}

static const struct dlas_param_spec syn_params[] = {
    {"channels", DLAS_PARAM_INT, 0, "1", 1, 4, NULL, "image channels"},
    {"height", DLAS_PARAM_INT, 0, "28", 1, 4096, NULL, "image height in pixels"},
    {"width", DLAS_PARAM_INT, 0, "28", 1, 4096, NULL, "image width in pixels"},
    {"classes", DLAS_PARAM_INT, 0, "10", 2, 100000, NULL, "number of classes"},
    {"train_size", DLAS_PARAM_INT, 0, "1024", 1, 1e9, NULL, "samples in the train split"},
    {"test_size", DLAS_PARAM_INT, 0, "256", 0, 1e9, NULL, "samples in the test split"},
    {"seed", DLAS_PARAM_INT, 0, "0", 0, 9.007199254740992e15, NULL,
     "data seed; 0 = derive from the experiment seed"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_dataset_ops syn_ops = {
    sizeof(struct dlas_dataset_ops), syn_open, syn_info, syn_read, syn_close, NULL,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_DATASET, "synthetic",
     "seeded learnable random images: per-class wave prototypes plus uniform noise",
     "none: a synthetic benchmark defined by datasets/synthetic/README.md", syn_params,
     &syn_ops},
};

DLAS_PLUGIN("synthetic", "0.1.0", "seeded synthetic image classification data", components)
