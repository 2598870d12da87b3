/* Locating, reading and validating the CIFAR binary files.
 *
 * CIFAR-10 (data_batch_1..5.bin, test_batch.bin): records of 1 label byte and
 * 3072 pixel bytes. CIFAR-100 (train.bin, test.bin): a coarse label byte, a
 * fine label byte, 3072 pixel bytes. A file must hold a whole, non-zero number
 * of records and every label must be in range; anything else is refused with
 * the file, record and offset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/file.h>

#include "cifar.h"

#define CHUNK_RECORDS 1024
/* 15 GB of pixels: far past any CIFAR-format set, short of a runaway. */
#define CIFAR_MAX_IMAGES 5000000

struct layout {
    int version;
    const char *subdir;    /* as unpacked from the official tarball */
    const char *probe;     /* a file that says "this is the folder" */
    int n_train_files;
    const char *train[5];
    const char *test;
    int label_bytes;
};

static const struct layout layouts[2] = {
    {10, "cifar-10-batches-bin", "data_batch_1.bin", 5,
     {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
      "data_batch_5.bin"},
     "test_batch.bin", 1},
    {100, "cifar-100-binary", "train.bin", 1, {"train.bin"}, "test.bin", 2},
};

static int is_file(const char *dir, const char *name)
{
    char path[4600];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where the files of `l` are: dir itself or its tarball subfolder; 0 if neither. */
static int locate(const char *dir, const struct layout *l, char *out, size_t len)
{
    if (is_file(dir, l->probe)) {
        snprintf(out, len, "%s", dir);
        return 1;
    }
    snprintf(out, len, "%s/%s", dir, l->subdir);
    return is_file(out, l->probe);
}

/* Size of a file in records; refuses a partial record, and anything that is
 * not a regular file (a FIFO would block, a device never ends). */
static int count_records(const char *path, size_t rec, int64_t *n)
{
    int fd;
    int64_t len;
    if (dlas_file_open(path, &fd, &len))
        return dlas_error_context("cifar");
    close(fd);
    size_t size = (size_t)len;
    if (size == 0)
        return dlas_error(DLAS_ERR_CORRUPT, "cifar: %s is empty", path);
    if (size % rec)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "cifar: %s: truncated: %zu bytes is not a whole number of %zu-byte "
                          "records; record %zu at offset %zu has only %zu bytes",
                          path, size, rec, size / rec, size / rec * rec, size % rec);
    *n = (int64_t)(size / rec);
    return DLAS_OK;
}

/* Append the records of one file to split s, starting at record `at`. */
static int read_file(struct cifar *c, const char *path, const struct layout *l,
                     struct cifar_split *s, int64_t at, int64_t n)
{
    const size_t rec = (size_t)l->label_bytes + CIFAR_PIX;
    FILE *f;
    int64_t len;
    if (dlas_file_fopen(path, &f, &len))
        return dlas_error_context("cifar");
    if (len != n * (int64_t)rec) {
        fclose(f);
        return dlas_error(DLAS_ERR_CORRUPT, "cifar: %s changed size while being read", path);
    }
    unsigned char *buf = malloc(CHUNK_RECORDS * rec);
    if (!buf) {
        fclose(f);
        return dlas_error(DLAS_ERR_NOMEM, "cifar: out of memory");
    }
    int rc = DLAS_OK;
    static const char *const kind[2] = {"coarse ", "fine "};
    for (int64_t r0 = 0; r0 < n && !rc; r0 += CHUNK_RECORDS) {
        size_t k = (size_t)(n - r0 < CHUNK_RECORDS ? n - r0 : CHUNK_RECORDS);
        size_t got = fread(buf, rec, k, f);
        if (got != k) {
            rc = dlas_error(ferror(f) ? DLAS_ERR_IO : DLAS_ERR_CORRUPT,
                            "cifar: %s: record %lld at offset %lld: %s", path,
                            (long long)(r0 + (int64_t)got), (long long)((r0 + (int64_t)got) * (int64_t)rec),
                            ferror(f) ? strerror(errno) : "the file ended early (changed while read?)");
            break;
        }
        for (size_t i = 0; i < k && !rc; i++) {
            const unsigned char *p = buf + i * rec;
            int64_t r = r0 + (int64_t)i;
            /* Every label byte is checked, including the kind not used. */
            for (int b = 0; b < l->label_bytes; b++) {
                int limit = l->version == 10 ? 10 : b == 0 ? 20 : 100;
                if (p[b] >= limit) {
                    rc = dlas_error(DLAS_ERR_CORRUPT,
                                    "cifar: %s: record %lld at offset %lld: %slabel %d is outside "
                                    "0..%d",
                                    path, (long long)r, (long long)(r * (int64_t)rec + b),
                                    l->version == 10 ? "" : kind[b], p[b], limit - 1);
                    break;
                }
            }
            int which = l->version == 10 ? 0 : c->coarse ? 0 : 1;
            s->labels[at + r] = p[which];
            memcpy(s->pixels + (at + r) * CIFAR_PIX, p + l->label_bytes, CIFAR_PIX);
        }
    }
    free(buf);
    fclose(f);
    return rc;
}

static int load_split(struct cifar *c, const char *dir, const struct layout *l, int split)
{
    const char *names[5];
    int nf = split == DLAS_SPLIT_TRAIN ? l->n_train_files : 1;
    for (int i = 0; i < nf; i++)
        names[i] = split == DLAS_SPLIT_TRAIN ? l->train[i] : l->test;
    const size_t rec = (size_t)l->label_bytes + CIFAR_PIX;
    char path[5][4600];
    int64_t count[5], total = 0;
    for (int i = 0; i < nf; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
        int rc = count_records(path[i], rec, &count[i]);
        if (rc)
            return rc;
        total += count[i];
    }
    /* The sizes are the files' real lengths, but a sparse file can claim
     * terabytes: cap what one split may take. */
    if (total > CIFAR_MAX_IMAGES)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "cifar: the %s files in %s hold %lld records, more than the %d this "
                          "reader accepts (CIFAR has 60000)",
                          split == DLAS_SPLIT_TRAIN ? "train" : "test", dir, (long long)total,
                          CIFAR_MAX_IMAGES);
    struct cifar_split *s = &c->s[split];
    s->pixels = c->host->alloc((size_t)total * CIFAR_PIX);
    s->labels = c->host->alloc((size_t)total);
    if (!s->pixels || !s->labels)
        return dlas_error(DLAS_ERR_NOMEM, "cifar: cannot allocate %lld images", (long long)total);
    s->n = total;
    int64_t at = 0;
    for (int i = 0; i < nf; i++) {
        int rc = read_file(c, path[i], l, s, at, count[i]);
        if (rc)
            return rc;
        at += count[i];
    }
    return DLAS_OK;
}

int cifar_load(struct cifar *c, int version)
{
    if (!is_dir(c->dir))
        return dlas_error(DLAS_ERR_NOTFOUND, "cifar: directory '%s' not found", c->dir);
    char where[2][4200];
    int found[2];
    for (int i = 0; i < 2; i++)
        found[i] = (version == 0 || version == layouts[i].version) &&
                   locate(c->dir, &layouts[i], where[i], sizeof where[i]);
    if (!found[0] && !found[1])
        return dlas_error(DLAS_ERR_NOTFOUND,
                          "cifar: no %s in '%s' or its %s folder (the binary version from "
                          "https://www.cs.toronto.edu/~kriz/cifar.html)",
                          version == 100 ? "train.bin (CIFAR-100)"
                          : version == 10 ? "data_batch_1.bin (CIFAR-10)"
                                          : "data_batch_1.bin (CIFAR-10) or train.bin (CIFAR-100)",
                          c->dir,
                          version == 100 ? "cifar-100-binary"
                          : version == 10 ? "cifar-10-batches-bin"
                                          : "cifar-10-batches-bin or cifar-100-binary");
    if (found[0] && found[1])
        return dlas_error(DLAS_ERR_INVALID,
                          "cifar: '%s' holds both CIFAR-10 and CIFAR-100: set version = 10 or 100",
                          c->dir);
    const struct layout *l = &layouts[found[0] ? 0 : 1];
    const char *dir = where[found[0] ? 0 : 1];
    c->version = l->version;
    c->classes = l->version == 10 ? 10 : c->coarse ? 20 : 100;
    int rc = load_split(c, dir, l, DLAS_SPLIT_TRAIN);
    if (!rc)
        rc = load_split(c, dir, l, DLAS_SPLIT_TEST);
    if (!rc)
        snprintf(c->dir, sizeof c->dir, "%s", dir);
    return rc;
}

void cifar_free_splits(struct cifar *c)
{
    for (int k = 0; k < 2; k++) {
        c->host->free(c->s[k].pixels);
        c->host->free(c->s[k].labels);
        memset(&c->s[k], 0, sizeof c->s[k]);
    }
}
