/* The dataset readers, through their plugins as a run would open them. The
 * first byte picks the reader and the file the rest of the input becomes;
 * the other files of the set are small valid ones, so that the reader gets
 * as far as the fuzzed file can take it:
 *   0..3  fashion-mnist: train/test images/labels (gzip when it starts so)
 *   4..5  cifar: data_batch_1.bin, test_batch.bin
 *   6     imagefolder: one image (JPEG or PNG), decoded at open and read */
#include <sys/stat.h>

#include "fuzz_common.h"

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A valid IDX file: n items of 4x4 (images) or labels. */
static void idx_file(const char *name, int images, uint32_t n)
{
    uint8_t b[16 + 8 * 16];
    b[0] = b[1] = 0, b[2] = 8, b[3] = images ? 3 : 1;
    put_be32(b + 4, n);
    size_t h = 8;
    if (images) {
        put_be32(b + 8, 4);
        put_be32(b + 12, 4);
        h = 16;
    }
    size_t len = h + n * (images ? 16 : 1);
    for (size_t i = h; i < len; i++)
        b[i] = (uint8_t)(i % 10);
    fz_write(name, b, len);
}

/* Open `plugin` with path = dir and the given key/value pairs, read one
 * sample, close. */
static int open_with(const char *plugin, const char *dir, const char *const *kv)
{
    const struct dlas_component *c = dlas_registry_find(fz_registry(), DLAS_KIND_DATASET, plugin);
    if (!c)
        abort();
    struct dlas_params *p = NULL;
    if (dlas_params_defaults(c->params, &p))
        abort();
    char q[1100];
    snprintf(q, sizeof q, "\"%s\"", dir);
    dlas_params_set(p, "path", q, "fuzz");
    for (; kv && kv[0]; kv += 2)
        dlas_params_set(p, kv[0], kv[1], "fuzz");
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    const struct dlas_dataset_ops *ops = c->ops;
    void *h = NULL;
    if (ops->open(&host, p, &h) == DLAS_OK) {
        struct dlas_dataset_info in;
        ops->info(h, &in);
        if (in.n_train > 0) {
            int64_t idx = 0;
            size_t pix = (size_t)in.channels * in.height * in.width;
            float *img = malloc(pix * sizeof *img);
            int32_t lab;
            if (img)
                ops->read(h, DLAS_SPLIT_TRAIN, &idx, 1, img, &lab);
            free(img);
        }
        ops->close(h);
    }
    dlas_params_free(p);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] % 7;
    data++, size--;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", fz_scratch());
    /* start from a clean folder each time */
    static const char *const all[] = {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "data_batch_1.bin",
        "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
        "test_batch.bin", "train/a/x.img.jpg", "train/b/y.png", "train/a", "train/b", "train"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/%s", dir, all[i]);
        remove(p);
    }
    if (which < 4) {
        static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
        for (int k = 0; k < 4; k++)
            if (k != which)
                idx_file(names[k], !(k & 1), k < 2 ? 6 : 3);
        char name[64];
        int gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
        snprintf(name, sizeof name, "%s%s", names[which], gz ? ".gz" : "");
        fz_write(name, data, size);
        return open_with("fashion-mnist", dir, NULL);
    }
    if (which < 6) {
        uint8_t rec[2 * 3073];
        for (size_t i = 0; i < sizeof rec; i++)
            rec[i] = (uint8_t)(i % 7);
        rec[0] = 3, rec[3073] = 5;
        static const char *const files[6] = {"data_batch_1.bin", "data_batch_2.bin",
                                             "data_batch_3.bin", "data_batch_4.bin",
                                             "data_batch_5.bin", "test_batch.bin"};
        for (int k = 0; k < 6; k++)
            fz_write(files[k], rec, sizeof rec);
        fz_write(which == 4 ? "data_batch_1.bin" : "test_batch.bin", data, size);
        return open_with("cifar", dir, NULL);
    }
    char p[1100];
    snprintf(p, sizeof p, "%s/train", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/train/a", dir);
    mkdir(p, 0700);
    fz_write("train/a/x.img.jpg", data, size);
    static const char *const kv[] = {"verify", "decode", "size", "16", "resize", "20", NULL};
    return open_with("imagefolder", dir, kv);
}
