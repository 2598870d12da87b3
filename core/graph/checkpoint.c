/* The checkpoint file format (see <dlas/checkpoint.h>): a streaming writer
 * that commits through a temporary file, and a reader that checks the whole
 * index on open and each tensor's data as it is read. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include <dlas/checkpoint.h>
#include <dlas/status.h>

static const char MAGIC[8] = {'D', 'L', 'A', 'S', 'C', 'K', 'P', 'T'};
static const char END_MAGIC[8] = {'D', 'L', 'A', 'S', 'E', 'N', 'D', '\0'};
enum { HEADER_BYTES = 24, TRAILER_BYTES = 16, DTYPE_CODES = 5 };

/* ---- byte order and checksums ------------------------------------------ */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* zlib takes lengths as uInt: feed large buffers in pieces. */
static uint32_t crc_update(uint32_t crc, const void *data, uint64_t len)
{
    const unsigned char *p = data;
    while (len) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32(crc, p, n);
        p += n;
        len -= n;
    }
    return crc;
}
static uint32_t crc_of(const void *data, uint64_t len)
{
    return crc_update((uint32_t)crc32(0L, Z_NULL, 0), data, len);
}

/* Elements are stored little-endian; a big-endian host swaps each in place. */
static void to_little_endian(void *data, uint64_t nbytes, size_t es)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    unsigned char *p = data;
    for (uint64_t i = 0; es > 1 && i + es <= nbytes; i += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            unsigned char t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
#else
    (void)data, (void)nbytes, (void)es;
#endif
}

static int full_write(int fd, const void *data, uint64_t len)
{
    const char *p = data;
    while (len) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (uint64_t)w;
    }
    return 0;
}

static int full_pread(int fd, void *buf, uint64_t len, uint64_t off)
{
    char *p = buf;
    while (len) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t r = pread(fd, p, chunk, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -1 : -2; /* -2: end of file */
        p += r;
        len -= (uint64_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int valid_dims(int ndim, const int64_t *dims, size_t es, uint64_t *nbytes)
{
    uint64_t n = es;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1 || (uint64_t)dims[i] > UINT64_MAX / n)
            return 0;
        n *= (uint64_t)dims[i];
    }
    *nbytes = n;
    return 1;
}

/* ---- writer ------------------------------------------------------------- */

struct dlas_ckpt_writer {
    char *path, *tmp;
    int fd;
    int failed;
    uint32_t count;
    uint32_t index_crc; /* over the record CRCs */
    char **names;
    size_t cap;
};

static void writer_free(struct dlas_ckpt_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    for (uint32_t i = 0; i < w->count; i++)
        free(w->names[i]);
    free(w->names);
    free(w->path);
    free(w->tmp);
    free(w);
}

int dlas_ckpt_writer_open(const char *path, struct dlas_ckpt_writer **out)
{
    if (!path || !*path || !out)
        return dlas_error(DLAS_ERR_INVALID, "checkpoint: NULL path");
    *out = NULL;
    struct dlas_ckpt_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 48;
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n))) {
        if (w)
            free(w->path);
        free(w);
        return dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", path);
    }
    w->fd = -1;
    /* O_EXCL with a fresh name: two writers of one path never share a
     * temporary file, and the umask applies as to any new file */
    static unsigned counter;
    for (int attempt = 0; w->fd < 0 && attempt < 16; attempt++) {
        snprintf(w->tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(),
                 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (w->fd < 0 && errno != EEXIST)
            break;
    }
    if (w->fd < 0) {
        int rc = dlas_error(DLAS_ERR_IO, "checkpoint %s: cannot create %s: %s", path, w->tmp,
                            strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        writer_free(w);
        return rc;
    }
    unsigned char hdr[HEADER_BYTES] = {0}; /* rewritten by commit */
    if (full_write(w->fd, hdr, sizeof hdr)) {
        int rc = dlas_error(DLAS_ERR_IO, "checkpoint %s: cannot write %s: %s", path, w->tmp,
                            strerror(errno));
        writer_free(w);
        return rc;
    }
    w->index_crc = (uint32_t)crc32(0L, Z_NULL, 0);
    *out = w;
    return DLAS_OK;
}

static int writer_fail(struct dlas_ckpt_writer *w, int status, const char *what,
                       const char *name)
{
    w->failed = 1;
    return dlas_error(status, "checkpoint %s: tensor '%s': %s", w->path, name ? name : "",
                      what);
}

int dlas_ckpt_writer_add(struct dlas_ckpt_writer *w, const char *name, enum dlas_dtype dtype,
                         int ndim, const int64_t *dims, const void *data)
{
    if (!w)
        return dlas_error(DLAS_ERR_INVALID, "checkpoint: NULL writer");
    if (w->failed)
        return dlas_error(DLAS_ERR_INVALID, "checkpoint %s: an earlier write failed", w->path);
    size_t len = name ? strlen(name) : 0;
    if (len < 1 || len > DLAS_CKPT_NAME_MAX)
        return writer_fail(w, DLAS_ERR_INVALID, "name must have 1 to 1024 bytes", name);
    if ((unsigned)dtype >= DTYPE_CODES)
        return writer_fail(w, DLAS_ERR_INVALID, "unknown dtype", name);
    uint64_t nbytes;
    if (ndim < 0 || ndim > DLAS_MAX_DIMS || (ndim && !dims) || !data ||
        !valid_dims(ndim, dims, dlas_dtype_size(dtype), &nbytes))
        return writer_fail(w, DLAS_ERR_INVALID, "bad rank, dimensions or data", name);
    if (w->count == UINT32_MAX)
        return writer_fail(w, DLAS_ERR_INVALID, "too many tensors", name);
    for (uint32_t i = 0; i < w->count; i++)
        if (!strcmp(w->names[i], name))
            return writer_fail(w, DLAS_ERR_INVALID, "written twice", name);
    if (w->count == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        char **names = realloc(w->names, cap * sizeof *names);
        if (!names)
            return writer_fail(w, DLAS_ERR_NOMEM, "out of memory", name);
        w->names = names;
        w->cap = cap;
    }
    if (!(w->names[w->count] = strdup(name)))
        return writer_fail(w, DLAS_ERR_NOMEM, "out of memory", name);

    size_t hlen = 4 + len + 4 + 8 * (size_t)ndim + 8 + 4 + 4;
    unsigned char *rec = malloc(hlen);
    if (!rec) {
        free(w->names[w->count]);
        return writer_fail(w, DLAS_ERR_NOMEM, "out of memory", name);
    }
    w->count++;
    unsigned char *p = rec;
    put32(p, (uint32_t)len);
    memcpy(p + 4, name, len);
    p += 4 + len;
    p[0] = (unsigned char)dtype;
    p[1] = (unsigned char)ndim;
    p[2] = p[3] = 0;
    p += 4;
    for (int i = 0; i < ndim; i++, p += 8)
        put64(p, (uint64_t)dims[i]);
    put64(p, nbytes);
    p += 8;

    const size_t es = dlas_dtype_size(dtype);
    const void *le = data;
    void *copy = NULL;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    if (es > 1) {
        if (!(copy = malloc(nbytes))) {
            free(rec);
            return writer_fail(w, DLAS_ERR_NOMEM, "out of memory", name);
        }
        memcpy(copy, data, nbytes);
        to_little_endian(copy, nbytes, es);
        le = copy;
    }
#else
    (void)es;
#endif
    put32(p, crc_of(le, nbytes));
    p += 4;
    uint32_t rcrc = crc_of(rec, (uint64_t)(p - rec));
    put32(p, rcrc);
    unsigned char rb[4];
    put32(rb, rcrc);
    w->index_crc = crc_update(w->index_crc, rb, 4);
    int bad = full_write(w->fd, rec, hlen) || full_write(w->fd, le, nbytes);
    int err = errno;
    free(rec);
    free(copy);
    if (bad) {
        w->failed = 1;
        return dlas_error(DLAS_ERR_IO, "checkpoint %s: tensor '%s': cannot write %s: %s",
                          w->path, name, w->tmp, strerror(err));
    }
    return DLAS_OK;
}

/* Make the rename itself durable. */
static int sync_dir_of(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -1;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int dlas_ckpt_writer_commit(struct dlas_ckpt_writer *w)
{
    if (!w)
        return dlas_error(DLAS_ERR_INVALID, "checkpoint: NULL writer");
    if (w->failed) {
        int rc = dlas_error(DLAS_ERR_INVALID, "checkpoint %s: not written, an earlier write "
                                              "failed", w->path);
        writer_free(w);
        return rc;
    }
    unsigned char tr[TRAILER_BYTES], hdr[HEADER_BYTES];
    memcpy(tr, END_MAGIC, 8);
    put32(tr + 8, w->count);
    put32(tr + 12, w->index_crc);
    memcpy(hdr, MAGIC, 8);
    put32(hdr + 8, DLAS_CKPT_VERSION);
    put32(hdr + 12, w->count);
    put32(hdr + 16, 0);
    put32(hdr + 20, crc_of(hdr, 20));
    int bad = full_write(w->fd, tr, sizeof tr) || pwrite(w->fd, hdr, sizeof hdr, 0) !=
                                                        (ssize_t)sizeof hdr;
    if (!bad)
        bad = fsync(w->fd);
    if (!bad) {
        bad = close(w->fd);
        w->fd = -1;
    }
    if (!bad)
        bad = rename(w->tmp, w->path);
    if (bad) {
        int rc = dlas_error(DLAS_ERR_IO, "checkpoint %s: cannot write %s: %s", w->path, w->tmp,
                            strerror(errno));
        writer_free(w);
        return rc;
    }
    free(w->tmp); /* renamed: nothing to remove */
    w->tmp = NULL;
    int rc = DLAS_OK;
    if (sync_dir_of(w->path))
        rc = dlas_error(DLAS_ERR_IO, "checkpoint %s: written, but its directory cannot be "
                                     "synced: %s", w->path, strerror(errno));
    writer_free(w);
    return rc;
}

void dlas_ckpt_writer_abort(struct dlas_ckpt_writer *w) { writer_free(w); }

/* ---- reader ------------------------------------------------------------- */

struct dlas_ckpt {
    char *path;
    int fd;
    size_t n;
    struct dlas_ckpt_entry *e;
    const struct dlas_ckpt_entry **by_name; /* sorted by name */
};

void dlas_ckpt_close(struct dlas_ckpt *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    for (size_t i = 0; c->e && i < c->n; i++)
        free((char *)c->e[i].name);
    free(c->e);
    free(c->by_name);
    free(c->path);
    free(c);
}

const char *dlas_ckpt_path(const struct dlas_ckpt *c) { return c ? c->path : ""; }
size_t dlas_ckpt_count(const struct dlas_ckpt *c) { return c ? c->n : 0; }

const struct dlas_ckpt_entry *dlas_ckpt_entry_at(const struct dlas_ckpt *c, size_t i)
{
    return c && i < c->n ? &c->e[i] : NULL;
}

static int by_name_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct dlas_ckpt_entry *const *)a)->name,
                  (*(const struct dlas_ckpt_entry *const *)b)->name);
}

const struct dlas_ckpt_entry *dlas_ckpt_lookup(const struct dlas_ckpt *c, const char *name)
{
    if (!c || !name)
        return NULL;
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(c->by_name[mid]->name, name);
        if (!d)
            return c->by_name[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The tensor a position in the file belongs to, for messages. */
static void where(const struct dlas_ckpt *c, size_t i, char *buf, size_t len)
{
    if (i > 0)
        snprintf(buf, len, "tensor #%zu (after '%s')", i + 1, c->e[i - 1].name);
    else
        snprintf(buf, len, "tensor #1");
}

static int read_record(struct dlas_ckpt *c, size_t i, uint64_t *off, uint64_t size,
                       uint32_t *index_crc)
{
    char at[DLAS_CKPT_NAME_MAX + 64];
    unsigned char fixed[4];
    unsigned char *rec = NULL;
    where(c, i, at, sizeof at);
    int r = full_pread(c->fd, fixed, 4, *off);
    if (r)
        goto short_read;
    uint32_t len = get32(fixed);
    if (len < 1 || len > DLAS_CKPT_NAME_MAX)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "checkpoint %s: %s: name length %u is impossible (the file is "
                          "corrupt)",
                          c->path, at, len);
    /* the rank sits after the name: read name, dtype, rank, reserved */
    rec = malloc(4 + len + 4 + 8 * DLAS_MAX_DIMS + 16);
    if (!rec)
        return dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", c->path);
    memcpy(rec, fixed, 4);
    if ((r = full_pread(c->fd, rec + 4, len + 4, *off + 4)))
        goto short_read;
    unsigned char *p = rec + 4 + len;
    int dtype = p[0], ndim = p[1];
    size_t hlen = 4 + len + 4 + 8 * (size_t)(ndim <= DLAS_MAX_DIMS ? ndim : 0) + 16;
    if (ndim <= DLAS_MAX_DIMS && (r = full_pread(c->fd, p + 4, hlen - (4 + len + 4),
                                                 *off + 4 + len + 4)))
        goto short_read;
    uint32_t stored = get32(rec + hlen - 4);
    if (ndim > DLAS_MAX_DIMS || crc_of(rec, hlen - 4) != stored) {
        int rc = dlas_error(DLAS_ERR_CORRUPT,
                            "checkpoint %s: %s, read as '%.*s': record header CRC mismatch "
                            "(the file is corrupt)",
                            c->path, at, (int)(len < 200 ? len : 200), (const char *)rec + 4);
        free(rec);
        return rc;
    }
    struct dlas_ckpt_entry *e = &c->e[i];
    char *name = malloc(len + 1);
    if (!name) {
        free(rec);
        return dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", c->path);
    }
    memcpy(name, rec + 4, len);
    name[len] = '\0';
    e->name = name;
    c->n = i + 1; /* from here the name is freed with c */
    if (memchr(name, '\0', len)) {
        free(rec);
        return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: %s: the name holds a NUL byte",
                          c->path, at);
    }
    if (dtype >= DTYPE_CODES || p[2] || p[3]) {
        free(rec);
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "checkpoint %s: tensor '%s': dtype code %d (or reserved bytes) not "
                          "known to this dlas",
                          c->path, name, dtype);
    }
    e->dtype = (enum dlas_dtype)dtype;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        e->dims[d] = (int64_t)get64(p + 4 + 8 * d);
    e->nbytes = get64(p + 4 + 8 * ndim);
    e->crc = get32(p + 4 + 8 * ndim + 8);
    free(rec);
    uint64_t want;
    if (!valid_dims(ndim, e->dims, dlas_dtype_size(e->dtype), &want) || want != e->nbytes)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "checkpoint %s: tensor '%s': %llu data bytes do not fit its %s "
                          "shape",
                          c->path, name, (unsigned long long)e->nbytes,
                          dlas_dtype_name(e->dtype));
    unsigned char rb[4];
    put32(rb, stored);
    *index_crc = crc_update(*index_crc, rb, 4);
    e->offset = *off + hlen;
    if (e->offset > size || e->nbytes > size - e->offset)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "checkpoint %s: truncated in the data of tensor '%s' (it needs %llu "
                          "bytes at offset %llu; the file has %llu)",
                          c->path, name, (unsigned long long)e->nbytes,
                          (unsigned long long)e->offset, (unsigned long long)size);
    *off = e->offset + e->nbytes;
    return DLAS_OK;
short_read:
    free(rec);
    if (r == -2)
        return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: truncated in the header of %s",
                          c->path, at);
    return dlas_error(DLAS_ERR_IO, "checkpoint %s: cannot read %s: %s", c->path, at,
                      strerror(errno));
}

static int check_header(struct dlas_ckpt *c, uint32_t *count)
{
    unsigned char h[HEADER_BYTES];
    int r = full_pread(c->fd, h, sizeof h, 0);
    if (r == -2 || (!r && memcmp(h, MAGIC, 8))) {
        /* a short file that starts like a checkpoint was cut short */
        struct stat st;
        size_t have = r == -2 && !fstat(c->fd, &st) ? (size_t)st.st_size : 0;
        if (r == -2 && !have)
            return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: the file is empty", c->path);
        if (r == -2 && !memcmp(h, MAGIC, have < 8 ? have : 8))
            return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: truncated in the file header",
                              c->path);
        return dlas_error(DLAS_ERR_CORRUPT,
                          "%s is not a dlas checkpoint (it does not start with \"DLASCKPT\")",
                          c->path);
    }
    if (r)
        return dlas_error(DLAS_ERR_IO, "checkpoint %s: cannot read: %s", c->path,
                          strerror(errno));
    if (crc_of(h, 20) != get32(h + 20))
        return dlas_error(DLAS_ERR_CORRUPT,
                          "checkpoint %s: file header CRC mismatch (the file is corrupt)",
                          c->path);
    uint32_t version = get32(h + 8);
    if (version != DLAS_CKPT_VERSION)
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "checkpoint %s: format version %u; this dlas reads version %d",
                          c->path, version, DLAS_CKPT_VERSION);
    if (get32(h + 16))
        return dlas_error(DLAS_ERR_UNSUPPORTED,
                          "checkpoint %s: header flags 0x%x not known to this dlas", c->path,
                          get32(h + 16));
    *count = get32(h + 12);
    return DLAS_OK;
}

static int check_trailer(struct dlas_ckpt *c, uint64_t off, uint64_t size, uint32_t index_crc)
{
    char last[DLAS_CKPT_NAME_MAX + 32];
    snprintf(last, sizeof last, c->n ? "after tensor '%s'" : "after the header",
             c->n ? c->e[c->n - 1].name : "");
    unsigned char tr[TRAILER_BYTES];
    int r = full_pread(c->fd, tr, sizeof tr, off);
    if (r == -2)
        return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: truncated: the end marker %s is "
                                            "missing", c->path, last);
    if (r)
        return dlas_error(DLAS_ERR_IO, "checkpoint %s: cannot read: %s", c->path,
                          strerror(errno));
    if (memcmp(tr, END_MAGIC, 8) || get32(tr + 8) != c->n)
        return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: bad end marker %s (the file is "
                                            "corrupt)", c->path, last);
    if (get32(tr + 12) != index_crc)
        return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: index CRC mismatch in the end "
                                            "marker (the file is corrupt)", c->path);
    if (off + TRAILER_BYTES != size)
        return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: %llu unexpected bytes after the "
                                            "end marker", c->path,
                          (unsigned long long)(size - off - TRAILER_BYTES));
    return DLAS_OK;
}

int dlas_ckpt_open(const char *path, struct dlas_ckpt **out)
{
    if (!path || !out)
        return dlas_error(DLAS_ERR_INVALID, "checkpoint: NULL path");
    *out = NULL;
    struct dlas_ckpt *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", path);
    }
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc;
    if (c->fd < 0 || fstat(c->fd, &st)) {
        rc = dlas_error(errno == ENOENT ? DLAS_ERR_NOTFOUND : DLAS_ERR_IO,
                        "cannot open checkpoint %s: %s", path, strerror(errno));
        goto fail;
    }
    uint32_t count = 0;
    if ((rc = check_header(c, &count)))
        goto fail;
    uint64_t size = (uint64_t)st.st_size, off = HEADER_BYTES;
    uint32_t index_crc = (uint32_t)crc32(0L, Z_NULL, 0);
    /* grown as records are read, so a file cut short is reported where it
     * ends rather than by its count */
    size_t cap = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == cap) {
            cap = cap ? 2 * cap : 64;
            struct dlas_ckpt_entry *e = realloc(c->e, cap * sizeof *e);
            if (!e) {
                rc = dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", path);
                goto fail;
            }
            memset(e + i, 0, (cap - i) * sizeof *e);
            c->e = e;
        }
        if ((rc = read_record(c, i, &off, size, &index_crc)))
            goto fail;
    }
    if ((rc = check_trailer(c, off, size, index_crc)))
        goto fail;
    if (!(c->by_name = malloc((c->n ? c->n : 1) * sizeof *c->by_name))) {
        rc = dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < c->n; i++)
        c->by_name[i] = &c->e[i];
    qsort(c->by_name, c->n, sizeof *c->by_name, by_name_cmp);
    for (size_t i = 1; i < c->n; i++)
        if (!strcmp(c->by_name[i]->name, c->by_name[i - 1]->name)) {
            rc = dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: tensor '%s' appears twice", path,
                            c->by_name[i]->name);
            goto fail;
        }
    *out = c;
    return DLAS_OK;
fail:
    dlas_ckpt_close(c);
    return rc;
}

int dlas_ckpt_read(struct dlas_ckpt *c, const struct dlas_ckpt_entry *e, void *buf, size_t len)
{
    if (!c || !e || (!buf && len))
        return dlas_error(DLAS_ERR_INVALID, "checkpoint: NULL argument");
    if ((uint64_t)len != e->nbytes)
        return dlas_error(DLAS_ERR_INVALID,
                          "checkpoint %s: tensor '%s' has %llu bytes, not %zu", c->path,
                          e->name, (unsigned long long)e->nbytes, len);
    int r = full_pread(c->fd, buf, e->nbytes, e->offset);
    if (r)
        return dlas_error(r == -2 ? DLAS_ERR_CORRUPT : DLAS_ERR_IO,
                          "checkpoint %s: tensor '%s': %s", c->path, e->name,
                          r == -2 ? "truncated (the file shrank)" : strerror(errno));
    uint32_t got = crc_of(buf, e->nbytes);
    if (got != e->crc)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "checkpoint %s: tensor '%s': data CRC mismatch (stored 0x%08x, "
                          "computed 0x%08x; the file is corrupt)",
                          c->path, e->name, e->crc, got);
    to_little_endian(buf, e->nbytes, dlas_dtype_size(e->dtype)); /* the swap is its own inverse */
    return DLAS_OK;
}

int dlas_ckpt_read_tensor(struct dlas_ckpt *c, const char *name, struct dlas_tensor *t)
{
    const struct dlas_ckpt_entry *e = dlas_ckpt_lookup(c, name);
    if (!e)
        return dlas_error(DLAS_ERR_NOTFOUND, "checkpoint %s: no tensor '%s'",
                          dlas_ckpt_path(c), name ? name : "");
    int64_t one = 1;
    int rc = dlas_tensor_alloc(t, e->dtype, e->ndim ? e->ndim : 1, e->ndim ? e->dims : &one);
    if (rc)
        return dlas_error_context("checkpoint %s: tensor '%s'", c->path, e->name);
    if ((rc = dlas_ckpt_read(c, e, t->data, dlas_tensor_bytes(t))))
        dlas_tensor_free(t);
    return rc;
}

int dlas_ckpt_verify(struct dlas_ckpt *c)
{
    if (!c)
        return dlas_error(DLAS_ERR_INVALID, "checkpoint: NULL reader");
    uint64_t most = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].nbytes > most)
            most = c->e[i].nbytes;
    void *buf = malloc(most ? (size_t)most : 1);
    if (!buf)
        return dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", c->path);
    int rc = DLAS_OK;
    for (size_t i = 0; i < c->n && !rc; i++)
        rc = dlas_ckpt_read(c, &c->e[i], buf, (size_t)c->e[i].nbytes);
    free(buf);
    return rc;
}
