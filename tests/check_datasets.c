/* Dataset plugins, found through the registry: fashion-mnist, cifar and
 * imagefolder read tiny files written here in each format, byte for byte,
 * and refuse damaged ones with a message naming the file (and the offset or
 * record). One test reads the real Fashion-MNIST when Debian's package is
 * installed. */
#define _GNU_SOURCE /* nftw's FTW_DEPTH|FTW_PHYS */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h>
#include <png.h>

#include <dlas/dlas.h>

#include "testutil.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- fixtures: registry, host, a scratch folder ------------------------------ */

static struct dlas_registry *reg;
static struct dlas_rng host_rng;
static struct dlas_host host;
static char last_log[4096], last_warn[4096];
static char tmp[4096];

static void test_log(enum dlas_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_log, sizeof last_log, fmt, ap);
    va_end(ap);
    if (level <= DLAS_LOG_WARN) {
        memcpy(last_warn, last_log, sizeof last_warn);
        fprintf(stderr, "[log] %s\n", last_log);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The largest single allocation a plugin asked for since setup(): a header
 * that claims more than its file holds must not be believed. */
static size_t biggest_alloc;

static void *counting_alloc(size_t bytes)
{
    if (bytes > biggest_alloc)
        biggest_alloc = bytes;
    return dlas_aligned_alloc(bytes);
}

static void setup(void)
{
    memset(&host, 0, sizeof host);
    dlas_rng_seed(&host_rng, 1);
    host.size = sizeof host;
    host.log = test_log;
    host.alloc = counting_alloc;
    biggest_alloc = 0;
    host.free = dlas_aligned_free;
    host.rng = &host_rng;
    host.seed = 1;
    last_log[0] = last_warn[0] = '\0';
    const char *b = getenv("DLAS_BUILDDIR");
    char base[2048];
    snprintf(base, sizeof base, "%s/tests/tmp", b ? b : "/tmp");
    mkdir(base, 0755);
    snprintf(tmp, sizeof tmp, "%s/datasets-XXXXXX", b ? base : "/tmp");
    ck_assert_msg(mkdtemp(tmp) != NULL, "mkdtemp %s: %s", tmp, strerror(errno));
}

static void teardown(void)
{
    if (tmp[0])
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    tmp[0] = '\0';
}

/* tmp/<fmt...>, made into a path. */
static const char *at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *at(const char *fmt, ...)
{
    static char buf[8][8192];
    static int k;
    char *p = buf[k++ % 8];
    int n = snprintf(p, 8192, "%s/", tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p + n, 8192 - (size_t)n, fmt, ap);
    va_end(ap);
    return p;
}

static void mkdirs(const char *path)
{
    char b[8192];
    snprintf(b, sizeof b, "%s", path);
    for (char *s = b + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(b, 0755);
            *s = '/';
        }
    mkdir(b, 0755);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
    gzclose(f);
}

static unsigned char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len + 1);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void truncate_to(const char *path, size_t len)
{
    ck_assert_int_eq(truncate(path, (off_t)len), 0);
}

/* Open a dataset component with name/value overrides; returns the status. */
static int ds_open(const char *name, void **h, int n, ...)
{
    const struct dlas_component *c = dlas_registry_find(reg, DLAS_KIND_DATASET, name);
    ck_assert_msg(c != NULL, "dataset '%s' not found: %s", name, dlas_last_error());
    struct dlas_params *p = NULL;
    ck_assert_int_eq(dlas_params_defaults(c->params, &p), 0);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);
        ck_assert_msg(dlas_params_set(p, k, v, "check_datasets") == 0, "%s = %s: %s", k, v,
                      dlas_last_error());
    }
    va_end(ap);
    *h = NULL;
    dlas_clear_error();
    const struct dlas_dataset_ops *ops = c->ops;
    int rc = ops->open(&host, p, h);
    dlas_params_free(p);
    if (rc)
        ck_assert_ptr_null(*h);
    return rc;
}

static const struct dlas_dataset_ops *ops_of(const char *name)
{
    return dlas_registry_find(reg, DLAS_KIND_DATASET, name)->ops;
}

static const char *quoted(const char *s)
{
    static char buf[4][8200];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 8200, "\"%s\"", s);
    return b;
}

/* The status and message of a refusal: the message must name every needle. */
static void expect_refusal(int rc, int want, int n, ...)
{
    const char *msg = dlas_last_error();
    ck_assert_msg(rc == want, "status %d (%s), expected %d; message: %s", rc,
                  dlas_status_name(rc), want, msg);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *needle = va_arg(ap, const char *);
        ck_assert_msg(strstr(msg, needle) != NULL, "message '%s' does not mention '%s'", msg,
                      needle);
    }
    va_end(ap);
}

/* ---- Fashion-MNIST (IDX) -------------------------------------------------------- */

/* An IDX file image in memory: magic 00 00 08 nd, big-endian dims, data. */
static unsigned char *idx_bytes(int nd, const uint32_t *dims, const unsigned char *data,
                                size_t *len)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= dims[i];
    *len = 4 + 4 * (size_t)nd + n;
    unsigned char *b = malloc(*len);
    b[0] = 0, b[1] = 0, b[2] = 8, b[3] = (unsigned char)nd;
    for (int i = 0; i < nd; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    memcpy(b + 4 + 4 * nd, data, n);
    return b;
}

#define FM_H 5
#define FM_W 4
#define FM_TRAIN 7
#define FM_TEST 3

static unsigned char fm_pixel(int split, int i, int k) { return (unsigned char)((split * 97 + i * 53 + k * 29) % 256); }
static unsigned char fm_label(int split, int i) { return (unsigned char)((split * 3 + i * 7) % 10); }

/* A tiny Fashion-MNIST folder: train compressed, test plain (both forms are
 * read), unless `gz_all`. */
static void write_fmnist(const char *dir, int gz_all)
{
    mkdirs(dir);
    for (int s = 0; s < 2; s++) {
        int n = s ? FM_TEST : FM_TRAIN;
        unsigned char img[FM_TRAIN * FM_H * FM_W], lab[FM_TRAIN];
        for (int i = 0; i < n; i++) {
            lab[i] = fm_label(s, i);
            for (int k = 0; k < FM_H * FM_W; k++)
                img[i * FM_H * FM_W + k] = fm_pixel(s, i, k);
        }
        uint32_t di[3] = {(uint32_t)n, FM_H, FM_W}, dl[1] = {(uint32_t)n};
        size_t li, ll;
        unsigned char *bi = idx_bytes(3, di, img, &li), *bl = idx_bytes(1, dl, lab, &ll);
        char pi[8192], pl[8192];
        const char *stem = s ? "t10k" : "train";
        int gz = gz_all || s == 0;
        snprintf(pi, sizeof pi, "%s/%s-images-idx3-ubyte%s", dir, stem, gz ? ".gz" : "");
        snprintf(pl, sizeof pl, "%s/%s-labels-idx1-ubyte%s", dir, stem, gz ? ".gz" : "");
        if (gz) {
            write_gz(pi, bi, li);
            write_gz(pl, bl, ll);
        } else {
            write_file(pi, bi, li);
            write_file(pl, bl, ll);
        }
        free(bi);
        free(bl);
    }
}

START_TEST(fmnist_reads_gz_and_plain_exactly)
{
    write_fmnist(at("fm"), 0);
    void *h;
    int rc = ds_open("fashion-mnist", &h, 1, "path", quoted(at("fm")));
    ck_assert_msg(rc == 0, "%s", dlas_last_error());
    const struct dlas_dataset_ops *ops = ops_of("fashion-mnist");
    struct dlas_dataset_info in;
    ck_assert_int_eq(ops->info(h, &in), 0);
    ck_assert_int_eq(in.channels, 1);
    ck_assert_int_eq(in.height, FM_H);
    ck_assert_int_eq(in.width, FM_W);
    ck_assert_int_eq(in.classes, 10);
    ck_assert_int_eq(in.n_train, FM_TRAIN);
    ck_assert_int_eq(in.n_test, FM_TEST);
    /* Statistics of the train pixels. */
    double s = 0, q = 0, cnt = FM_TRAIN * FM_H * FM_W;
    for (int i = 0; i < FM_TRAIN; i++)
        for (int k = 0; k < FM_H * FM_W; k++) {
            double v = fm_pixel(0, i, k) / 255.0;
            s += v;
            q += v * v;
        }
    ck_assert(fabs(in.mean[0] - s / cnt) < 1e-6);
    ck_assert(fabs(in.std[0] - sqrt(q / cnt - (s / cnt) * (s / cnt))) < 1e-6);

    for (int sp = 0; sp < 2; sp++) {
        int n = sp ? FM_TEST : FM_TRAIN;
        int64_t idx[FM_TRAIN];
        for (int i = 0; i < n; i++)
            idx[i] = n - 1 - i; /* any order */
        float img[FM_TRAIN * FM_H * FM_W];
        int32_t lab[FM_TRAIN];
        ck_assert_int_eq(ops->read(h, (enum dlas_split)sp, idx, n, img, lab), 0);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(lab[i], fm_label(sp, (int)idx[i]));
            for (int k = 0; k < FM_H * FM_W; k++)
                ck_assert(img[i * FM_H * FM_W + k] == (float)fm_pixel(sp, (int)idx[i], k) / 255.0f);
        }
    }
    int64_t bad = FM_TEST;
    int32_t lab;
    expect_refusal(ops->read(h, DLAS_SPLIT_TEST, &bad, 1, NULL, &lab), DLAS_ERR_INVALID, 1,
                   "index 3");
    ops->close(h);

    /* All compressed, and all plain. */
    write_fmnist(at("fm-gz"), 1);
    ck_assert_int_eq(ds_open("fashion-mnist", &h, 1, "path", quoted(at("fm-gz"))), 0);
    ops->close(h);
}
END_TEST

/* Corrupt one file of a fresh tiny set; expect a refusal naming it. */
static void fm_expect(const char *dir, int want, const char *n1, const char *n2)
{
    void *h;
    int rc = ds_open("fashion-mnist", &h, 1, "path", quoted(dir));
    expect_refusal(rc, want, n2 ? 2 : 1, n1, n2);
}

START_TEST(fmnist_refuses_damaged_files)
{
    void *h;
    /* missing directory */
    expect_refusal(ds_open("fashion-mnist", &h, 1, "path", quoted(at("nowhere"))),
                   DLAS_ERR_NOTFOUND, 2, at("nowhere"), "not found");

    /* a missing file */
    write_fmnist(at("a"), 0);
    remove(at("a/t10k-labels-idx1-ubyte"));
    fm_expect(at("a"), DLAS_ERR_NOTFOUND, "t10k-labels-idx1-ubyte", NULL);

    /* wrong magic: a label file where images belong */
    write_fmnist(at("b"), 0);
    size_t len;
    unsigned char *lab = read_whole(at("b/t10k-labels-idx1-ubyte"), &len);
    write_file(at("b/t10k-images-idx3-ubyte"), lab, len);
    free(lab);
    fm_expect(at("b"), DLAS_ERR_CORRUPT, at("b/t10k-images-idx3-ubyte"), "offset 0: magic 00 00 08 01");

    /* truncated plain file */
    write_fmnist(at("c"), 0);
    truncate_to(at("c/t10k-images-idx3-ubyte"), 16 + FM_TEST * FM_H * FM_W - 5);
    fm_expect(at("c"), DLAS_ERR_CORRUPT, at("c/t10k-images-idx3-ubyte"), "truncated");
    /* truncated header */
    write_fmnist(at("c2"), 0);
    truncate_to(at("c2/t10k-labels-idx1-ubyte"), 6);
    fm_expect(at("c2"), DLAS_ERR_CORRUPT, at("c2/t10k-labels-idx1-ubyte"), "offset 4");

    /* truncated gzip stream */
    write_fmnist(at("d"), 0);
    unsigned char *gz = read_whole(at("d/train-images-idx3-ubyte.gz"), &len);
    write_file(at("d/train-images-idx3-ubyte.gz"), gz, len / 2);
    free(gz);
    fm_expect(at("d"), DLAS_ERR_CORRUPT, at("d/train-images-idx3-ubyte.gz"), "truncated");

    /* corrupt gzip data: flip bytes in the middle of the deflate stream */
    write_fmnist(at("d2"), 0);
    gz = read_whole(at("d2/train-labels-idx1-ubyte.gz"), &len);
    for (size_t i = 12; i < len - 8; i++)
        gz[i] ^= 0x5a;
    write_file(at("d2/train-labels-idx1-ubyte.gz"), gz, len);
    free(gz);
    fm_expect(at("d2"), DLAS_ERR_CORRUPT, at("d2/train-labels-idx1-ubyte.gz"), NULL);

    /* label out of range, at record 2 */
    write_fmnist(at("e"), 0);
    lab = read_whole(at("e/t10k-labels-idx1-ubyte"), &len);
    lab[8 + 2] = 10;
    write_file(at("e/t10k-labels-idx1-ubyte"), lab, len);
    free(lab);
    fm_expect(at("e"), DLAS_ERR_CORRUPT, at("e/t10k-labels-idx1-ubyte"), "offset 10 (record 2): label 10");

    /* data past the announced size */
    write_fmnist(at("f"), 0);
    lab = read_whole(at("f/t10k-labels-idx1-ubyte"), &len);
    lab = realloc(lab, len + 1);
    lab[len] = 1;
    write_file(at("f/t10k-labels-idx1-ubyte"), lab, len + 1);
    free(lab);
    fm_expect(at("f"), DLAS_ERR_CORRUPT, at("f/t10k-labels-idx1-ubyte"), "offset 11");

    /* images and labels disagree on the count */
    write_fmnist(at("g"), 0);
    uint32_t dl[1] = {FM_TEST - 1};
    unsigned char l3[FM_TEST] = {1, 2, 3};
    unsigned char *b = idx_bytes(1, dl, l3, &len);
    write_file(at("g/t10k-labels-idx1-ubyte"), b, len);
    free(b);
    fm_expect(at("g"), DLAS_ERR_CORRUPT, "3 images", "2 labels");

    /* a zero dimension */
    write_fmnist(at("h"), 0);
    b = read_whole(at("h/t10k-images-idx3-ubyte"), &len);
    memset(b + 8, 0, 4);
    write_file(at("h/t10k-images-idx3-ubyte"), b, len);
    free(b);
    fm_expect(at("h"), DLAS_ERR_CORRUPT, at("h/t10k-images-idx3-ubyte"), "offset 8");
}
END_TEST

/* An IDX file in which only the header is written (dims as given) followed
 * by `data` bytes of zeros; gzip-compressed if gz. */
static void write_idx_claim(const char *path, int nd, const uint32_t *dims, size_t data, int gz)
{
    size_t len = 4 + 4 * (size_t)nd + data;
    unsigned char *b = calloc(1, len);
    b[2] = 8, b[3] = (unsigned char)nd;
    for (int i = 0; i < nd; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    if (gz)
        write_gz(path, b, len);
    else
        write_file(path, b, len);
    free(b);
}

/* A header's claim is checked against the file before anything is
 * allocated: an 800-byte file claiming 16 million images costs no
 * gigabytes, a gzip file is read as its bytes arrive, and the message names
 * the real fault. */
START_TEST(fmnist_claims_checked_before_allocating)
{
    /* 16M images of 28x28 claimed by a plain 800-byte file */
    write_fmnist(at("a"), 0);
    uint32_t big[3] = {16000000, 28, 28};
    write_idx_claim(at("a/t10k-images-idx3-ubyte"), 3, big, 800 - 16, 0);
    fm_expect(at("a"), DLAS_ERR_CORRUPT, at("a/t10k-images-idx3-ubyte"), "truncated");
    ck_assert_msg(biggest_alloc < ((size_t)64 << 20), "allocated %zu bytes", biggest_alloc);

    /* the same claim in a small gzip file: more than deflate can expand to */
    write_fmnist(at("b"), 0);
    write_idx_claim(at("b/t10k-images-idx3-ubyte.gz"), 3, big, 784, 1);
    remove(at("b/t10k-images-idx3-ubyte"));
    biggest_alloc = 0;
    fm_expect(at("b"), DLAS_ERR_CORRUPT, at("b/t10k-images-idx3-ubyte.gz"), "more than");
    ck_assert_msg(biggest_alloc < ((size_t)64 << 20), "allocated %zu bytes", biggest_alloc);

    /* a claim deflate could back (80 MB of zeros compresses to ~80 kB) but
     * this file does not: read incrementally, the buffer stays near what
     * arrived */
    write_fmnist(at("c"), 0);
    uint32_t mid[3] = {100000, 28, 28};
    write_idx_claim(at("c/t10k-images-idx3-ubyte.gz"), 3, mid, 3 << 20, 1);
    remove(at("c/t10k-images-idx3-ubyte"));
    biggest_alloc = 0;
    fm_expect(at("c"), DLAS_ERR_CORRUPT, at("c/t10k-images-idx3-ubyte.gz"), "truncated");
    ck_assert_msg(biggest_alloc <= ((size_t)8 << 20), "allocated %zu bytes for 3 MB of data",
                  biggest_alloc);

    /* a count of 2^31 is named as the count, not as a fault of dimension 1 */
    write_fmnist(at("d"), 0);
    uint32_t huge[3] = {2147483648u, 28, 28};
    write_idx_claim(at("d/t10k-images-idx3-ubyte"), 3, huge, 64, 0);
    fm_expect(at("d"), DLAS_ERR_CORRUPT, "2147483648 x 28 x 28", "item count first");
    ck_assert_ptr_null(strstr(dlas_last_error(), "dimension 1"));

    /* a side too large for an image, although the product fits */
    write_fmnist(at("e"), 0);
    uint32_t wide[3] = {FM_TEST, 1, 5000};
    write_idx_claim(at("e/t10k-images-idx3-ubyte"), 3, wide, FM_TEST * 5000, 0);
    fm_expect(at("e"), DLAS_ERR_CORRUPT, at("e/t10k-images-idx3-ubyte"), "1 x 5000 pixels");

    /* a FIFO in place of a file is refused, not read forever */
    write_fmnist(at("f"), 0);
    remove(at("f/t10k-labels-idx1-ubyte"));
    ck_assert_int_eq(mkfifo(at("f/t10k-labels-idx1-ubyte"), 0644), 0);
    fm_expect(at("f"), DLAS_ERR_INVALID, at("f/t10k-labels-idx1-ubyte"), "FIFO");
    /* and a device, through a link */
    write_fmnist(at("g"), 0);
    remove(at("g/t10k-labels-idx1-ubyte"));
    ck_assert_int_eq(symlink("/dev/zero", at("g/t10k-labels-idx1-ubyte")), 0);
    fm_expect(at("g"), DLAS_ERR_INVALID, at("g/t10k-labels-idx1-ubyte"), "character device");
}
END_TEST

START_TEST(fmnist_real_package)
{
    if (access(FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("SKIP: fmnist_real_package: " FMNIST_DIR " is absent (Debian package "
               "dataset-fashion-mnist not installed)\n");
        fprintf(stderr, "SKIP: fmnist_real_package: " FMNIST_DIR " is absent (Debian package "
                        "dataset-fashion-mnist not installed)\n");
        return;
    }
    void *h;
    /* The default path: no configuration at all. */
    ck_assert_msg(ds_open("fashion-mnist", &h, 0) == 0, "%s", dlas_last_error());
    const struct dlas_dataset_ops *ops = ops_of("fashion-mnist");
    struct dlas_dataset_info in;
    ops->info(h, &in);
    ck_assert_int_eq(in.n_train, 60000);
    ck_assert_int_eq(in.n_test, 10000);
    ck_assert(in.channels == 1 && in.height == 28 && in.width == 28 && in.classes == 10);
    /* The published statistics of the train images. */
    ck_assert_msg(fabs(in.mean[0] - 0.2860) < 5e-4 && fabs(in.std[0] - 0.3530) < 5e-4,
                  "mean %g std %g", in.mean[0], in.std[0]);
    for (int sp = 0; sp < 2; sp++) {
        int64_t n = sp ? 10000 : 60000;
        int64_t *idx = malloc((size_t)n * sizeof *idx);
        int32_t *lab = malloc((size_t)n * sizeof *lab);
        for (int64_t i = 0; i < n; i++)
            idx[i] = i;
        ck_assert_int_eq(ops->read(h, (enum dlas_split)sp, idx, n, NULL, lab), 0);
        int64_t count[10] = {0};
        for (int64_t i = 0; i < n; i++)
            count[lab[i]]++;
        for (int c = 0; c < 10; c++)
            ck_assert_msg(count[c] == n / 10, "%s class %d: %lld", sp ? "test" : "train", c,
                          (long long)count[c]);
        /* The first labels as published (9 = ankle boot). */
        static const int32_t first[2][5] = {{9, 0, 0, 3, 0}, {9, 2, 1, 1, 6}};
        for (int i = 0; i < 5; i++)
            ck_assert_int_eq(lab[i], first[sp][i]);
        free(idx);
        free(lab);
    }
    float img[784];
    int64_t zero = 0;
    ck_assert_int_eq(ops->read(h, DLAS_SPLIT_TRAIN, &zero, 1, img, NULL), 0);
    float lo = 1, hi = 0;
    for (int k = 0; k < 784; k++) {
        lo = img[k] < lo ? img[k] : lo;
        hi = img[k] > hi ? img[k] : hi;
    }
    ck_assert(lo == 0.0f && hi == 1.0f);
    ops->close(h);
}
END_TEST

/* ---- CIFAR ------------------------------------------------------------------------ */

#define CPIX 3072

static unsigned char cf_pixel(int file, int rec, int k) { return (unsigned char)((file * 41 + rec * 7 + k * 3 + k / 1024) % 256); }

/* A CIFAR file of n records; label bytes from lab(rec, byte). */
static void write_cifar_file(const char *path, int file, int n, int label_bytes,
                             int (*lab)(int file, int rec, int b))
{
    size_t rec = (size_t)label_bytes + CPIX;
    unsigned char *b = malloc(rec * (size_t)n + 1);
    for (int r = 0; r < n; r++) {
        for (int k = 0; k < label_bytes; k++)
            b[r * rec + k] = (unsigned char)lab(file, r, k);
        for (int k = 0; k < CPIX; k++)
            b[r * rec + (size_t)label_bytes + k] = cf_pixel(file, r, k);
    }
    write_file(path, b, rec * (size_t)n);
    free(b);
}

static int lab10(int file, int rec, int b) { (void)b; return (file * 3 + rec) % 10; }
static int lab100(int file, int rec, int b) { return b == 0 ? (file + rec * 3) % 20 : (file + rec * 11) % 100; }

static const int c10_counts[6] = {2, 1, 3, 1, 2, 2}; /* data_batch_1..5, test_batch */

static void write_cifar10(const char *dir)
{
    mkdirs(dir);
    for (int f = 0; f < 6; f++) {
        char p[8192];
        if (f < 5)
            snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, f + 1);
        else
            snprintf(p, sizeof p, "%s/test_batch.bin", dir);
        write_cifar_file(p, f, c10_counts[f], 1, lab10);
    }
}

static void write_cifar100(const char *dir)
{
    mkdirs(dir);
    char p[8192];
    snprintf(p, sizeof p, "%s/train.bin", dir);
    write_cifar_file(p, 0, 4, 2, lab100);
    snprintf(p, sizeof p, "%s/test.bin", dir);
    write_cifar_file(p, 1, 3, 2, lab100);
}

START_TEST(cifar10_reads_exactly)
{
    write_cifar10(at("c10"));
    void *h;
    ck_assert_msg(ds_open("cifar", &h, 1, "path", quoted(at("c10"))) == 0, "%s", dlas_last_error());
    const struct dlas_dataset_ops *ops = ops_of("cifar");
    struct dlas_dataset_info in;
    ops->info(h, &in);
    ck_assert(in.channels == 3 && in.height == 32 && in.width == 32 && in.classes == 10);
    ck_assert_int_eq(in.n_train, 9);
    ck_assert_int_eq(in.n_test, 2);
    /* Per-channel statistics of the train pixels. */
    for (int c = 0; c < 3; c++) {
        double s = 0, q = 0, n = 0;
        for (int f = 0; f < 5; f++)
            for (int r = 0; r < c10_counts[f]; r++)
                for (int k = c * 1024; k < (c + 1) * 1024; k++) {
                    double v = cf_pixel(f, r, k) / 255.0;
                    s += v, q += v * v, n++;
                }
        ck_assert(fabs(in.mean[c] - s / n) < 1e-6);
        ck_assert(fabs(in.std[c] - sqrt(q / n - s / n * s / n)) < 1e-6);
    }
    /* Train = the five batches in order; the image is the file's bytes. */
    float *img = malloc(9 * CPIX * sizeof(float));
    int32_t lab[9];
    int64_t idx[9];
    for (int i = 0; i < 9; i++)
        idx[i] = 8 - i;
    ck_assert_int_eq(ops->read(h, DLAS_SPLIT_TRAIN, idx, 9, img, lab), 0);
    int i = 8; /* idx[i] = 0 .. 8 walks the files */
    for (int f = 0; f < 5; f++)
        for (int r = 0; r < c10_counts[f]; r++, i--) {
            ck_assert_int_eq(lab[i], lab10(f, r, 0));
            for (int k = 0; k < CPIX; k++)
                ck_assert(img[i * CPIX + k] == (float)cf_pixel(f, r, k) / 255.0f);
        }
    idx[0] = 1;
    ck_assert_int_eq(ops->read(h, DLAS_SPLIT_TEST, idx, 1, img, lab), 0);
    ck_assert_int_eq(lab[0], lab10(5, 1, 0));
    ck_assert(img[CPIX - 1] == (float)cf_pixel(5, 1, CPIX - 1) / 255.0f);
    free(img);
    ops->close(h);

    /* The tarball's folder below path is found too, and version = 10 pins it. */
    write_cifar10(at("up/cifar-10-batches-bin"));
    ck_assert_int_eq(ds_open("cifar", &h, 2, "path", quoted(at("up")), "version", "10"), 0);
    ops->close(h);
    expect_refusal(ds_open("cifar", &h, 2, "path", quoted(at("up")), "version", "100"),
                   DLAS_ERR_NOTFOUND, 2, "train.bin", at("up"));
    expect_refusal(ds_open("cifar", &h, 2, "path", quoted(at("up")), "labels", "coarse"),
                   DLAS_ERR_INVALID, 1, "CIFAR-100");
}
END_TEST

START_TEST(cifar100_fine_and_coarse)
{
    write_cifar100(at("c100/cifar-100-binary"));
    const struct dlas_dataset_ops *ops = ops_of("cifar");
    for (int coarse = 0; coarse < 2; coarse++) {
        void *h;
        int rc = ds_open("cifar", &h, 2, "path", quoted(at("c100")), "labels", coarse ? "coarse" : "fine");
        ck_assert_msg(rc == 0, "%s", dlas_last_error());
        struct dlas_dataset_info in;
        ops->info(h, &in);
        ck_assert_int_eq(in.classes, coarse ? 20 : 100);
        ck_assert(in.n_train == 4 && in.n_test == 3);
        float *img = malloc(4 * CPIX * sizeof(float));
        int32_t lab[4];
        int64_t idx[4] = {0, 1, 2, 3};
        for (int sp = 0; sp < 2; sp++) {
            int n = sp ? 3 : 4;
            ck_assert_int_eq(ops->read(h, (enum dlas_split)sp, idx, n, img, lab), 0);
            for (int r = 0; r < n; r++) {
                ck_assert_int_eq(lab[r], lab100(sp, r, coarse ? 0 : 1));
                for (int k = 0; k < CPIX; k += 97)
                    ck_assert(img[r * CPIX + k] == (float)cf_pixel(sp, r, k) / 255.0f);
            }
        }
        free(img);
        ops->close(h);
    }
}
END_TEST

static int lab_bad10(int file, int rec, int b) { return file == 2 && rec == 2 ? 10 : lab10(file, rec, b); }
static int lab_bad_fine(int file, int rec, int b) { return rec == 1 && b == 1 ? 100 : lab100(file, rec, b); }
static int lab_bad_coarse(int file, int rec, int b) { return rec == 3 && b == 0 ? 20 : lab100(file, rec, b); }

START_TEST(cifar_refuses_damaged_files)
{
    void *h;
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("none"))), DLAS_ERR_NOTFOUND, 1,
                   at("none"));
    mkdirs(at("empty"));
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("empty"))), DLAS_ERR_NOTFOUND, 2,
                   "data_batch_1.bin", "train.bin");

    /* truncated: a partial last record */
    write_cifar10(at("t"));
    truncate_to(at("t/data_batch_3.bin"), 3 * 3073 - 10);
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("t"))), DLAS_ERR_CORRUPT, 3,
                   at("t/data_batch_3.bin"), "record 2 at offset 6146", "truncated");
    /* empty file */
    write_cifar10(at("t0"));
    truncate_to(at("t0/test_batch.bin"), 0);
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("t0"))), DLAS_ERR_CORRUPT, 2,
                   at("t0/test_batch.bin"), "empty");
    /* a batch missing */
    write_cifar10(at("m"));
    remove(at("m/data_batch_4.bin"));
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("m"))), DLAS_ERR_NOTFOUND, 1,
                   at("m/data_batch_4.bin"));

    /* labels out of range: CIFAR-10, CIFAR-100 fine and coarse */
    write_cifar10(at("l"));
    write_cifar_file(at("l/data_batch_3.bin"), 2, 3, 1, lab_bad10);
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("l"))), DLAS_ERR_CORRUPT, 3,
                   at("l/data_batch_3.bin"), "record 2 at offset 6146", "label 10 is outside 0..9");
    write_cifar100(at("lf"));
    write_cifar_file(at("lf/train.bin"), 0, 4, 2, lab_bad_fine);
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("lf"))), DLAS_ERR_CORRUPT, 3,
                   at("lf/train.bin"), "record 1 at offset 3075", "fine label 100");
    write_cifar100(at("lc"));
    write_cifar_file(at("lc/test.bin"), 1, 4, 2, lab_bad_coarse);
    /* the coarse label is checked even when the fine one is used */
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("lc"))), DLAS_ERR_CORRUPT, 3,
                   at("lc/test.bin"), "record 3 at offset 9222", "coarse label 20");

    /* a FIFO in place of a batch: refused, not waited on */
    write_cifar10(at("fifo"));
    remove(at("fifo/data_batch_2.bin"));
    ck_assert_int_eq(mkfifo(at("fifo/data_batch_2.bin"), 0644), 0);
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("fifo"))), DLAS_ERR_INVALID, 2,
                   at("fifo/data_batch_2.bin"), "FIFO");
    /* a sparse file of 16 GB: whole records, but past the cap, refused
     * before a byte of it is allocated */
    write_cifar10(at("sparse"));
    biggest_alloc = 0;
    if (truncate(at("sparse/data_batch_5.bin"), (off_t)5600000 * 3073) == 0) {
        expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("sparse"))), DLAS_ERR_CORRUPT,
                       2, at("sparse"), "more than the");
        ck_assert_msg(biggest_alloc < ((size_t)64 << 20), "allocated %zu bytes", biggest_alloc);
    }
    truncate_to(at("sparse/data_batch_5.bin"), 0);

    /* both kinds in one folder: ambiguous unless told */
    write_cifar10(at("both"));
    write_cifar100(at("both"));
    expect_refusal(ds_open("cifar", &h, 1, "path", quoted(at("both"))), DLAS_ERR_INVALID, 1,
                   "version");
    ck_assert_int_eq(ds_open("cifar", &h, 2, "path", quoted(at("both")), "version", "100"), 0);
    ops_of("cifar")->close(h);
}
END_TEST

/* ---- imagefolder --------------------------------------------------------------------- */

/* Deterministic test pictures, RGB interleaved. */
static unsigned char pic(int seed, int x, int y, int c) { return (unsigned char)((seed * 59 + x * 37 + y * 71 + c * 113 + x * y) % 256); }

static void write_png(const char *path, int w, int h, int channels, int seed)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    unsigned char *px = malloc((size_t)w * h * channels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                px[(y * w + x) * channels + c] = c == 3 ? (unsigned char)(x * 30) : pic(seed, x, y, c);
    ck_assert_msg(png_image_write_to_file(&im, path, 0, px, 0, NULL), "%s: %s", path, im.message);
    free(px);
}

/* Solid 8x8 blocks, so that JPEG keeps them almost exactly. */
static unsigned char block(int seed, int x, int y, int c) { return (unsigned char)(40 + ((seed + x / 8 * 3 + y / 8 * 5 + c * 7) % 9) * 20); }

static void write_jpeg(const char *path, int w, int h, int channels, int seed, int textured)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = channels;
    ci.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 100, TRUE);
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * channels);
    while (ci.next_scanline < ci.image_height) {
        int y = (int)ci.next_scanline;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                row[x * channels + c] = textured ? pic(seed, x, y, c) : block(seed, x, y, c);
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
    free(row);
}

/* train/{cat,dog,eel}, val/{cat,eel}; see imgf_reads_exactly for what is where. */
static void write_tree(const char *root)
{
    char d[8192];
    snprintf(d, sizeof d, "%s/train/cat/sub", root);
    mkdirs(d);
    snprintf(d, sizeof d, "%s/train/dog", root);
    mkdirs(d);
    snprintf(d, sizeof d, "%s/train/eel", root);
    mkdirs(d);
    snprintf(d, sizeof d, "%s/val/cat", root);
    mkdirs(d);
    snprintf(d, sizeof d, "%s/val/eel", root);
    mkdirs(d);
    char p[8192];
#define P(rel) (snprintf(p, sizeof p, "%s/%s", root, rel), p)
    write_png(P("train/cat/a.png"), 8, 8, 3, 1);
    write_png(P("train/cat/b.png"), 8, 12, 3, 2); /* taller: centre crop */
    write_png(P("train/cat/sub/c.png"), 8, 8, 3, 3);
    write_file(P("train/cat/notes.txt"), "not an image", 12);
    write_file(P("train/cat/.hidden.png"), "x", 1);
    write_jpeg(P("train/dog/x.jpg"), 16, 16, 3, 4, 0); /* shrunk 2x while decoding */
    write_jpeg(P("train/dog/y.jpeg"), 8, 8, 1, 5, 0);  /* grey JPEG read as RGB */
    write_png(P("train/eel/z.PNG"), 8, 8, 4, 6);    /* alpha dropped */
    write_png(P("val/cat/v.png"), 8, 8, 3, 7);
    write_png(P("val/eel/w.png"), 8, 8, 3, 8);
#undef P
}

static void expect_png_pixels(const float *img, int w, int h, int x0, int y0, int seed)
{
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                ck_assert_msg(img[(c * h + y) * w + x] == (float)pic(seed, x + x0, y + y0, c) / 255.0f,
                              "seed %d c%d (%d,%d): %g vs %d", seed, c, x, y,
                              img[(c * h + y) * w + x] * 255, pic(seed, x + x0, y + y0, c));
}

START_TEST(imgf_reads_exactly)
{
    write_tree(at("tree"));
    void *h;
    int rc = ds_open("imagefolder", &h, 3, "path", quoted(at("tree")), "size", "8", "resize", "8");
    ck_assert_msg(rc == 0, "%s", dlas_last_error());
    const struct dlas_dataset_ops *ops = ops_of("imagefolder");
    struct dlas_dataset_info in;
    ops->info(h, &in);
    ck_assert(in.channels == 3 && in.height == 8 && in.width == 8 && in.classes == 3);
    ck_assert_int_eq(in.n_train, 6);
    ck_assert_int_eq(in.n_test, 2);
    ck_assert(in.mean[0] == 0.485f && in.std[2] == 0.225f);

    float img[6 * 192];
    int32_t lab[6];
    int64_t idx[6] = {0, 1, 2, 3, 4, 5};
    ck_assert_msg(ops->read(h, DLAS_SPLIT_TRAIN, idx, 6, img, lab) == 0, "%s", dlas_last_error());
    static const int32_t want[6] = {0, 0, 0, 1, 1, 2}; /* cat a, b, sub/c; dog x, y; eel z */
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(lab[i], want[i]);
    expect_png_pixels(img, 8, 8, 0, 0, 1);       /* a.png as it is */
    expect_png_pixels(img + 192, 8, 8, 0, 2, 2); /* b.png 8x12: rows 2..9 */
    expect_png_pixels(img + 384, 8, 8, 0, 0, 3); /* sub/c.png */
    expect_png_pixels(img + 1152 - 192, 8, 8, 0, 0, 6); /* z.PNG without its alpha */
    /* x.jpg: 16x16 of 8x8 blocks, halved: 4x4 blocks, near-exact at q = 100 */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                float v = img[576 + (c * 8 + y) * 8 + x] * 255.0f;
                ck_assert_msg(fabsf(v - block(4, 2 * x, 2 * y, c)) <= 3.0f, "x.jpg c%d (%d,%d): %g vs %d",
                              c, x, y, v, block(4, 2 * x, 2 * y, c));
            }
    /* y.jpeg: grey, so R = G = B */
    for (int k = 0; k < 64; k++) {
        ck_assert(img[768 + k] == img[768 + 64 + k] && img[768 + k] == img[768 + 128 + k]);
        ck_assert(fabsf(img[768 + k] * 255.0f - block(5, k % 8, k / 8, 0)) <= 3.0f);
    }
    ck_assert_int_eq(ops->read(h, DLAS_SPLIT_TEST, idx, 2, img, lab), 0);
    ck_assert(lab[0] == 0 && lab[1] == 2);
    expect_png_pixels(img + 192, 8, 8, 0, 0, 8);

    /* Views: seed 0 is the evaluation view; a seed gives the same crop every
     * time; different seeds give different crops. */
    float v1[192], v2[192], v3[192];
    uint64_t s0 = 0, s1 = 12345, s2 = 999;
    int64_t one = 1;
    ck_assert_int_eq(ops->read_views(h, DLAS_SPLIT_TRAIN, &one, 1, &s0, v1, NULL), 0);
    ck_assert_int_eq(ops->read(h, DLAS_SPLIT_TRAIN, &one, 1, v2, NULL), 0);
    ck_assert(!memcmp(v1, v2, sizeof v1));
    ck_assert_int_eq(ops->read_views(h, DLAS_SPLIT_TRAIN, &one, 1, &s1, v1, NULL), 0);
    ck_assert_int_eq(ops->read_views(h, DLAS_SPLIT_TRAIN, &one, 1, &s1, v2, NULL), 0);
    ck_assert_int_eq(ops->read_views(h, DLAS_SPLIT_TRAIN, &one, 1, &s2, v3, NULL), 0);
    ck_assert(!memcmp(v1, v2, sizeof v1));
    ck_assert(memcmp(v1, v3, sizeof v1) != 0);
    for (int k = 0; k < 192; k++)
        ck_assert(v1[k] >= 0.0f && v1[k] <= 1.0f);
    ops->close(h);

    /* Grey output, and the default resize (size * 256 / 224) on a bigger image. */
    ck_assert_int_eq(ds_open("imagefolder", &h, 3, "path", quoted(at("tree")), "size", "8", "channels", "1"), 0);
    ops->info(h, &in);
    ck_assert(in.channels == 1 && in.std[0] == 0.0f); /* no ImageNet figures for grey */
    ck_assert_int_eq(ops->read(h, DLAS_SPLIT_TRAIN, idx, 6, img, lab), 0);
    for (int k = 0; k < 6 * 64; k++)
        ck_assert(img[k] >= 0.0f && img[k] <= 1.0f);
    ops->close(h);
}
END_TEST

START_TEST(imgf_resizes_and_crops)
{
    /* A constant image stays constant through any resize and crop. */
    mkdirs(at("r/train/k"));
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 50;
    im.height = 30;
    im.format = PNG_FORMAT_RGB;
    unsigned char px[50 * 30 * 3];
    for (int i = 0; i < 50 * 30; i++)
        px[3 * i] = 200, px[3 * i + 1] = 100, px[3 * i + 2] = 7;
    ck_assert(png_image_write_to_file(&im, at("r/train/k/flat.png"), 0, px, 0, NULL));
    void *h;
    ck_assert_int_eq(ds_open("imagefolder", &h, 2, "path", quoted(at("r")), "size", "24"), 0);
    const struct dlas_dataset_ops *ops = ops_of("imagefolder");
    float out[3 * 24 * 24];
    int64_t zero = 0;
    for (uint64_t seed = 0; seed < 20; seed++) {
        ck_assert_int_eq(ops->read_views(h, DLAS_SPLIT_TRAIN, &zero, 1, &seed, out, NULL), 0);
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 576; k++)
                ck_assert(fabsf(out[c * 576 + k] - px[c] / 255.0f) < 1e-5f);
    }
    ops->close(h);

    /* Centre crop geometry: a 40x20 picture, shorter side 20 -> resize 10,
     * crop 10: the middle 20x20 at half scale; the white bars of 10 columns
     * each side are cut off. The antialiasing filter (4 taps of 1/8, 3/8,
     * 3/8, 1/8 at half scale) reaches one source pixel past the crop, so
     * exactly the edge columns see 1/8 of the bars: the crop is centred to
     * the pixel. */
    mkdirs(at("g/train/k"));
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 40;
    im.height = 20;
    im.format = PNG_FORMAT_GRAY;
    unsigned char g[40 * 20];
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 40; x++)
            g[y * 40 + x] = x < 10 || x >= 30 ? 255 : 0;
    ck_assert(png_image_write_to_file(&im, at("g/train/k/bars.png"), 0, g, 0, NULL));
    ck_assert_int_eq(ds_open("imagefolder", &h, 4, "path", quoted(at("g")), "size", "10", "resize",
                             "10", "channels", "1"), 0);
    float o2[100];
    ck_assert_int_eq(ops->read(h, DLAS_SPLIT_TRAIN, &zero, 1, o2, NULL), 0);
    for (int k = 0; k < 100; k++) {
        float want = k % 10 == 0 || k % 10 == 9 ? 0.125f : 0.0f;
        ck_assert_msg(fabsf(o2[k] - want) < 1e-6f, "pixel %d = %g, expected %g", k, o2[k], want);
    }
    ops->close(h);
}
END_TEST

START_TEST(imgf_formats_by_content)
{
    /* A PNG named .JPEG (ImageNet has one) and an Adobe CMYK JPEG. */
    mkdirs(at("f/train/k"));
    write_png(at("f/train/k/a.JPEG"), 8, 8, 3, 9);
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    FILE *f = fopen(at("f/train/k/b.jpg"), "wb");
    ck_assert_ptr_nonnull(f);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = 8;
    ci.image_height = 8;
    ci.input_components = 4;
    ci.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 100, TRUE);
    ck_assert_int_eq(ci.write_Adobe_marker, 1);
    jpeg_start_compress(&ci, TRUE);
    /* Adobe's inverted CMYK: 255 = no ink. */
    unsigned char row[8 * 4];
    for (int x = 0; x < 8; x++)
        row[4 * x] = 200, row[4 * x + 1] = 100, row[4 * x + 2] = 50, row[4 * x + 3] = 255;
    while (ci.next_scanline < 8) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);

    void *h;
    ck_assert_msg(ds_open("imagefolder", &h, 3, "path", quoted(at("f")), "size", "8", "resize", "8") == 0,
                  "%s", dlas_last_error());
    const struct dlas_dataset_ops *ops = ops_of("imagefolder");
    float img[2 * 192];
    int64_t idx[2] = {0, 1};
    ck_assert_msg(ops->read(h, DLAS_SPLIT_TRAIN, idx, 2, img, NULL) == 0, "%s", dlas_last_error());
    expect_png_pixels(img, 8, 8, 0, 0, 9);
    static const float rgb[3] = {200, 100, 50};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 64; k++)
            ck_assert_msg(fabsf(img[192 + c * 64 + k] * 255.0f - rgb[c]) <= 2.0f, "CMYK c%d: %g", c,
                          img[192 + c * 64 + k] * 255.0f);
    ops->close(h);
}
END_TEST

START_TEST(imgf_refuses_bad_trees)
{
    void *h;
    const struct dlas_dataset_ops *ops = ops_of("imagefolder");
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("none"))), DLAS_ERR_NOTFOUND,
                   1, at("none"));
    mkdirs(at("notrain/val/a"));
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("notrain"))),
                   DLAS_ERR_NOTFOUND, 1, at("notrain/train"));
    mkdirs(at("noclass/train"));
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("noclass"))),
                   DLAS_ERR_NOTFOUND, 2, at("noclass/train"), "no class folders");

    /* an empty class folder */
    write_tree(at("e"));
    mkdirs(at("e/train/fox"));
    write_file(at("e/train/fox/readme.txt"), "x", 1);
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("e"))), DLAS_ERR_NOTFOUND, 2,
                   at("e/train/fox"), "no images");

    /* a class in val that train does not have */
    write_tree(at("u"));
    mkdirs(at("u/val/yak"));
    write_png(at("u/val/yak/q.png"), 8, 8, 3, 1);
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("u"))), DLAS_ERR_INVALID, 2,
                   at("u/val/yak"), "'yak'");
    /* an explicit test folder that is missing */
    write_tree(at("t"));
    expect_refusal(ds_open("imagefolder", &h, 2, "path", quoted(at("t")), "test_dir", "nope"),
                   DLAS_ERR_NOTFOUND, 1, at("t/nope"));

    /* garbage named .jpg: refused at open, or skipped and counted */
    write_tree(at("g"));
    write_file(at("g/train/dog/junk.jpg"), "GIF89a garbage bytes", 20);
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("g"))), DLAS_ERR_CORRUPT, 3,
                   at("g/train/dog/junk.jpg"), "not a JPEG or PNG", "offset 0");
    last_warn[0] = '\0';
    ck_assert_int_eq(ds_open("imagefolder", &h, 2, "path", quoted(at("g")), "skip_bad", "true"), 0);
    struct dlas_dataset_info in;
    ops->info(h, &in);
    ck_assert_int_eq(in.n_train, 6);
    ck_assert_msg(strstr(last_warn, "skipped 1 undecodable of 7 train images") &&
                      strstr(last_warn, "junk.jpg"),
                  "log: %s", last_warn);
    ops->close(h);
    /* an empty file */
    write_tree(at("z"));
    write_file(at("z/train/eel/zero.png"), "", 0);
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("z"))), DLAS_ERR_CORRUPT, 2,
                   at("z/train/eel/zero.png"), "empty");

    /* A truncated JPEG passes the header check but not decoding: refused at
     * open with verify = "decode", at read with the default. */
    write_tree(at("j"));
    write_jpeg(at("j/train/dog/x.jpg"), 64, 64, 3, 4, 1); /* mostly scan data */
    size_t len;
    unsigned char *b = read_whole(at("j/train/dog/x.jpg"), &len);
    write_file(at("j/train/dog/x.jpg"), b, len * 2 / 3);
    free(b);
    expect_refusal(ds_open("imagefolder", &h, 2, "path", quoted(at("j")), "verify", "decode"),
                   DLAS_ERR_CORRUPT, 2, at("j/train/dog/x.jpg"), "truncated");
    ck_assert_int_eq(ds_open("imagefolder", &h, 1, "path", quoted(at("j"))), 0);
    float img[2 * 3 * 224 * 224];
    int64_t idx[2] = {2, 3};
    expect_refusal(ops->read(h, DLAS_SPLIT_TRAIN, idx, 2, img, NULL), DLAS_ERR_CORRUPT, 3,
                   at("j/train/dog/x.jpg"), "train sample 3", "truncated");
    ops->close(h);
    /* ... and with skip_bad, a black image and a warning instead. */
    ck_assert_int_eq(ds_open("imagefolder", &h, 2, "path", quoted(at("j")), "skip_bad", "true"), 0);
    ck_assert_int_eq(ops->read(h, DLAS_SPLIT_TRAIN, idx, 2, img, NULL), 0);
    for (int k = 0; k < 3 * 224 * 224; k++)
        ck_assert(img[3 * 224 * 224 + k] == 0.0f);
    ck_assert_ptr_nonnull(strstr(last_warn, "x.jpg"));
    ops->close(h);

    /* A truncated PNG, likewise. */
    write_tree(at("p"));
    b = read_whole(at("p/val/eel/w.png"), &len);
    write_file(at("p/val/eel/w.png"), b, len - 20);
    free(b);
    ck_assert_int_eq(ds_open("imagefolder", &h, 1, "path", quoted(at("p"))), 0);
    idx[0] = 1;
    expect_refusal(ops->read(h, DLAS_SPLIT_TEST, idx, 1, img, NULL), DLAS_ERR_CORRUPT, 2,
                   at("p/val/eel/w.png"), "PNG");
    ops->close(h);
}
END_TEST

/* ---- plugins through the pipeline ------------------------------------------------------- */

/* Patch a JPEG's frame header (SOF0..SOF2) to claim w x h. */
static void jpeg_claim(unsigned char *b, size_t len, unsigned w, unsigned h)
{
    for (size_t i = 2; i + 9 < len; i++)
        if (b[i] == 0xFF && b[i + 1] >= 0xC0 && b[i + 1] <= 0xC2) {
            b[i + 5] = (unsigned char)(h >> 8), b[i + 6] = (unsigned char)h;
            b[i + 7] = (unsigned char)(w >> 8), b[i + 8] = (unsigned char)w;
            return;
        }
    ck_abort_msg("no SOF marker");
}

/* Patch a PNG's IHDR to claim w x h, with a valid CRC. */
static void png_claim(unsigned char *b, unsigned w, unsigned h)
{
    for (int k = 0; k < 4; k++) {
        b[16 + k] = (unsigned char)(w >> (24 - 8 * k));
        b[20 + k] = (unsigned char)(h >> (24 - 8 * k));
    }
    uLong c = crc32(0L, b + 12, 17);
    for (int k = 0; k < 4; k++)
        b[29 + k] = (unsigned char)(c >> (24 - 8 * k));
}

static int64_t imgf_count(const char *root, int follow, int expect_rc)
{
    void *h;
    int rc = ds_open("imagefolder", &h, 2, "path", quoted(root), "follow_links",
                     follow ? "true" : "false");
    ck_assert_msg(rc == expect_rc, "open %s: %d %s", root, rc, dlas_last_error());
    if (rc)
        return -1;
    struct dlas_dataset_info in;
    ops_of("imagefolder")->info(h, &in);
    ops_of("imagefolder")->close(h);
    return in.n_train;
}

/* Hostile trees and images: a header claiming 23000x23000 with 64x48 pixels
 * of data, corrupt data that libjpeg only warns about, links that would
 * multiply or relabel the tree, a FIFO named .png. */
START_TEST(imgf_hostile_inputs)
{
    void *h;
    size_t len;
    /* a JPEG and a PNG of 64x48 whose headers claim 23000x23000 */
    write_tree(at("big"));
    write_jpeg(at("big/train/dog/x.jpg"), 64, 48, 3, 4, 1);
    unsigned char *b = read_whole(at("big/train/dog/x.jpg"), &len);
    jpeg_claim(b, len, 23000, 23000);
    write_file(at("big/train/dog/x.jpg"), b, len);
    free(b);
    biggest_alloc = 0;
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("big"))), DLAS_ERR_CORRUPT, 3,
                   at("big/train/dog/x.jpg"), "claims 23000x23000", "can hold");
    write_tree(at("bigp"));
    write_png(at("bigp/train/cat/a.png"), 64, 48, 3, 1);
    b = read_whole(at("bigp/train/cat/a.png"), &len);
    png_claim(b, 23000, 23000);
    write_file(at("bigp/train/cat/a.png"), b, len);
    free(b);
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("bigp"))), DLAS_ERR_CORRUPT, 2,
                   at("bigp/train/cat/a.png"), "claims 23000x23000");
    /* a claim the file could back but does not: decoding stops where the data
     * does, and the buffer grows only with the rows decoded */
    write_tree(at("tall"));
    write_jpeg(at("tall/train/dog/x.jpg"), 64, 48, 3, 4, 1);
    b = read_whole(at("tall/train/dog/x.jpg"), &len);
    jpeg_claim(b, len, 64, 8000);
    write_file(at("tall/train/dog/x.jpg"), b, len);
    free(b);
    expect_refusal(ds_open("imagefolder", &h, 2, "path", quoted(at("tall")), "verify", "decode"),
                   DLAS_ERR_CORRUPT, 2, at("tall/train/dog/x.jpg"), "premature end");

    /* corrupt data libjpeg only warns about (extraneous bytes before a
     * marker): a bad file, refused or skipped, never decoded silently */
    write_tree(at("warn"));
    write_jpeg(at("warn/train/dog/x.jpg"), 64, 64, 3, 4, 1);
    b = read_whole(at("warn/train/dog/x.jpg"), &len);
    ck_assert(b[len - 2] == 0xFF && b[len - 1] == 0xD9);
    unsigned char *c = malloc(len + 5);
    memcpy(c, b, len - 2);
    memcpy(c + len - 2, "\x01\x02\x03\x04\x05\xFF\xD9", 7);
    write_file(at("warn/train/dog/x.jpg"), c, len + 5);
    free(b);
    free(c);
    expect_refusal(ds_open("imagefolder", &h, 2, "path", quoted(at("warn")), "verify", "decode"),
                   DLAS_ERR_CORRUPT, 3, at("warn/train/dog/x.jpg"), "corrupt data",
                   "extraneous");
    ck_assert_int_eq(ds_open("imagefolder", &h, 3, "path", quoted(at("warn")), "verify", "decode",
                             "skip_bad", "true"),
                     0);
    struct dlas_dataset_info in;
    ops_of("imagefolder")->info(h, &in);
    ck_assert_int_eq(in.n_train, 5);
    ops_of("imagefolder")->close(h);

    /* a PNG whose deflate stream holds more than its rows: libpng only warns
     * ("Too much image data"); a bad file all the same */
    write_tree(at("pw"));
    {
        unsigned char raw[8 * 25 + 30] = {0}, z[1024], png[2048];
        uLongf zl = sizeof z;
        ck_assert_int_eq(compress(z, &zl, raw, sizeof raw), Z_OK);
        size_t n = 0;
        memcpy(png, "\x89PNG\r\n\x1a\n", 8);
        n = 8;
        const unsigned char ihdr[13] = {0, 0, 0, 8, 0, 0, 0, 8, 8, 2, 0, 0, 0};
        const struct { const char *type; const unsigned char *d; size_t len; } ch[3] = {
            {"IHDR", ihdr, 13}, {"IDAT", z, zl}, {"IEND", NULL, 0}};
        for (int k = 0; k < 3; k++) {
            for (int q = 0; q < 4; q++)
                png[n++] = (unsigned char)(ch[k].len >> (24 - 8 * q));
            memcpy(png + n, ch[k].type, 4);
            if (ch[k].len)
                memcpy(png + n + 4, ch[k].d, ch[k].len);
            uLong crc = crc32(0L, png + n, (uInt)(4 + ch[k].len));
            n += 4 + ch[k].len;
            for (int q = 0; q < 4; q++)
                png[n++] = (unsigned char)(crc >> (24 - 8 * q));
        }
        write_file(at("pw/val/eel/w.png"), png, n);
    }
    expect_refusal(ds_open("imagefolder", &h, 2, "path", quoted(at("pw")), "verify", "decode"),
                   DLAS_ERR_CORRUPT, 2, at("pw/val/eel/w.png"), "Too much image data");

    /* links: to ".", from one class into another, to a folder outside */
    write_tree(at("ln"));
    ck_assert_int_eq(imgf_count(at("ln"), 0, 0), 6);
    ck_assert_int_eq(symlink(".", at("ln/train/cat/loop")), 0);
    ck_assert_int_eq(symlink("../../cat", at("ln/train/cat/sub/up")), 0);
    ck_assert_int_eq(symlink("../cat", at("ln/train/dog/cats")), 0);
    last_warn[0] = '\0';
    ck_assert_int_eq(imgf_count(at("ln"), 0, 0), 6);
    ck_assert_msg(strstr(last_warn, "left out 3 symbolic links"), "log: %s", last_warn);
    /* links within the tree are not followed even when links are */
    ck_assert_int_eq(imgf_count(at("ln"), 1, 0), 6);
    mkdirs(at("outside/more"));
    write_png(at("outside/more/o.png"), 8, 8, 3, 9);
    ck_assert_int_eq(symlink(at("outside"), at("ln/train/eel/ext")), 0);
    ck_assert_int_eq(symlink(at("outside/more"), at("ln/train/eel/ext2")), 0);
    ck_assert_int_eq(imgf_count(at("ln"), 0, 0), 6);
    /* followed: the outside folder once, however many links lead to it */
    ck_assert_int_eq(imgf_count(at("ln"), 1, 0), 7);

    /* a FIFO named .png: refused (or skipped), never opened for reading */
    write_tree(at("fifo"));
    ck_assert_int_eq(mkfifo(at("fifo/train/eel/pipe.png"), 0644), 0);
    expect_refusal(ds_open("imagefolder", &h, 1, "path", quoted(at("fifo"))), DLAS_ERR_CORRUPT, 2,
                   at("fifo/train/eel/pipe.png"), "FIFO");
    ck_assert_int_eq(ds_open("imagefolder", &h, 3, "path", quoted(at("fifo")), "skip_bad", "true",
                             "verify", "none"),
                     0);
    float img[3 * 224 * 224];
    int64_t idx[1] = {5};
    ops_of("imagefolder")->info(h, &in);
    ck_assert_int_eq(in.n_train, 7);
    ck_assert_int_eq(ops_of("imagefolder")->read(h, DLAS_SPLIT_TRAIN, idx, 1, img, NULL), 0);
    ck_assert_msg(strstr(last_warn, "pipe.png"), "log: %s", last_warn);
    ops_of("imagefolder")->close(h);
}
END_TEST

START_TEST(plugins_feed_the_pipeline)
{
    /* imagefolder's random-resized views reach training batches; evaluation
     * batches are its centre crops. */
    write_tree(at("tree"));
    const struct dlas_component *c = dlas_registry_find(reg, DLAS_KIND_DATASET, "imagefolder");
    struct dlas_params *p;
    ck_assert_int_eq(dlas_params_defaults(c->params, &p), 0);
    ck_assert_int_eq(dlas_params_set(p, "path", quoted(at("tree")), NULL), 0);
    ck_assert_int_eq(dlas_params_set(p, "size", "8", NULL), 0);
    ck_assert_int_eq(dlas_params_set(p, "resize", "8", NULL), 0);
    struct dlas_data_options o;
    dlas_data_options_default(&o);
    o.batch = 4;
    o.normalise = DLAS_NORM_NONE;
    o.workers = 2;
    o.seed = 3;
    struct dlas_data *d;
    ck_assert_msg(dlas_data_open_component(c, &host, p, &o, &d) == 0, "%s", dlas_last_error());
    dlas_params_free(p);
    struct dlas_data_iter *it;
    const struct dlas_batch *b;
    ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_TRAIN, 0, 1, &it), 0);
    int differ = 0;
    while (dlas_data_iter_next(it, &b) == 0 && b)
        for (int64_t i = 0; i < b->n; i++) {
            float plain[192];
            ck_assert_int_eq(dlas_data_read(d, DLAS_DATA_TRAIN, b->indices[i], 1, plain, NULL), 0);
            differ += memcmp(plain, dlas_f32(&b->images) + i * 192, sizeof plain) != 0;
        }
    ck_assert_int_gt(differ, 3);
    dlas_data_iter_free(it);
    ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_TEST, 0, 1, &it), 0);
    ck_assert_int_eq(dlas_data_iter_next(it, &b), 0);
    expect_png_pixels(dlas_f32(&b->images), 8, 8, 0, 0, 7);
    dlas_data_iter_free(it);
    dlas_data_close(d);

    /* A broken image met by a background worker: the consumer gets the
     * plugin's message naming the file. */
    write_tree(at("j"));
    size_t len;
    unsigned char *bytes = read_whole(at("j/train/eel/z.PNG"), &len);
    write_file(at("j/train/eel/z.PNG"), bytes, len - 30);
    free(bytes);
    ck_assert_int_eq(dlas_params_defaults(c->params, &p), 0);
    ck_assert_int_eq(dlas_params_set(p, "path", quoted(at("j")), NULL), 0);
    ck_assert_int_eq(dlas_params_set(p, "size", "8", NULL), 0);
    o.shuffle = 0;
    ck_assert_int_eq(dlas_data_open_component(c, &host, p, &o, &d), 0);
    dlas_params_free(p);
    ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_TRAIN, 0, 1, &it), 0);
    ck_assert_int_eq(dlas_data_iter_next(it, &b), 0); /* samples 0..3 */
    expect_refusal(dlas_data_iter_next(it, &b), DLAS_ERR_CORRUPT, 3, at("j/train/eel/z.PNG"),
                   "train batch 1 of epoch 0", "train sample 5");
    dlas_data_iter_free(it);
    dlas_data_close(d);

    /* CIFAR with the usual augmentation, and Fashion-MNIST's own statistics. */
    write_cifar10(at("c10"));
    c = dlas_registry_find(reg, DLAS_KIND_DATASET, "cifar");
    ck_assert_int_eq(dlas_params_defaults(c->params, &p), 0);
    ck_assert_int_eq(dlas_params_set(p, "path", quoted(at("c10")), NULL), 0);
    dlas_data_options_default(&o);
    o.batch = 4;
    o.crop_padding = 4;
    o.hflip = 1;
    ck_assert_int_eq(dlas_data_open_component(c, &host, p, &o, &d), 0);
    dlas_params_free(p);
    ck_assert_int_eq(dlas_data_batches(d, DLAS_DATA_TRAIN), 3);
    ck_assert_int_eq(dlas_data_iter_new(d, DLAS_DATA_TRAIN, 0, 2, &it), 0);
    int n = 0;
    while (dlas_data_iter_next(it, &b) == 0 && b)
        n += (int)b->n;
    ck_assert_int_eq(n, 18);
    dlas_data_iter_free(it);
    dlas_data_close(d);
}
END_TEST

int main(void)
{
    if (!(reg = dlas_test_registry("check_datasets")))
        return 1;
    Suite *s = suite_create("datasets");
    TCase *tc = dlas_test_case(s, "fashion-mnist", setup, teardown, 120);
    tcase_add_test(tc, fmnist_reads_gz_and_plain_exactly);
    tcase_add_test(tc, fmnist_refuses_damaged_files);
    tcase_add_test(tc, fmnist_claims_checked_before_allocating);
    tcase_add_test(tc, fmnist_real_package);
    tc = dlas_test_case(s, "cifar", setup, teardown, 120);
    tcase_add_test(tc, cifar10_reads_exactly);
    tcase_add_test(tc, cifar100_fine_and_coarse);
    tcase_add_test(tc, cifar_refuses_damaged_files);
    tc = dlas_test_case(s, "imagefolder", setup, teardown, 120);
    tcase_add_test(tc, imgf_reads_exactly);
    tcase_add_test(tc, imgf_resizes_and_crops);
    tcase_add_test(tc, imgf_formats_by_content);
    tcase_add_test(tc, imgf_refuses_bad_trees);
    tcase_add_test(tc, imgf_hostile_inputs);
    tc = dlas_test_case(s, "pipeline", setup, teardown, 120);
    tcase_add_test(tc, plugins_feed_the_pipeline);
    int failed = dlas_test_run(s);
    dlas_registry_free(reg);
    return failed;
}
