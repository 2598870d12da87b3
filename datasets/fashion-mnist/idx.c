/* IDX reader. zlib's gz* functions read gzip and plain files alike, so one
 * path serves both the Debian package's .gz files and unpacked copies. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <dlas/file.h>

#include "idx.h"

#define IDX_UBYTE 0x08
/* Large enough for any real IDX image set, small enough to refuse a
 * corrupt header before trying to allocate it. */
#define IDX_MAX_BYTES ((uint64_t)1 << 34)
/* The data buffer starts at this size and doubles as bytes arrive. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)

/* Read exactly len bytes or say why not. `at` is the offset in the
 * (decompressed) stream and `from`, `need` the part of the file being read
 * (of which these bytes are a piece), for the message. */
static int read_part(gzFile f, const char *path, void *buf, size_t len, size_t at, size_t from,
                     size_t need, const char *what)
{
    size_t done = 0;
    while (done < len) {
        size_t want = len - done > (1u << 30) ? (1u << 30) : len - done;
        int got = gzread(f, (unsigned char *)buf + done, (unsigned)want);
        if (got <= 0)
            break;
        done += (size_t)got;
    }
    if (done == len)
        return DLAS_OK;
    int zerr = Z_OK;
    const char *zmsg = gzerror(f, &zerr);
    if (zerr == Z_ERRNO)
        return dlas_error(DLAS_ERR_IO, "%s: read error at offset %zu: %s", path, at + done,
                          strerror(errno));
    if (zerr != Z_OK && zerr != Z_BUF_ERROR)
        return dlas_error(DLAS_ERR_CORRUPT, "%s: corrupt gzip data at offset %zu of %s: %s",
                          path, at + done, what, zmsg);
    return dlas_error(DLAS_ERR_CORRUPT,
                      "%s: truncated: %s needs %zu bytes from offset %zu, the file ends at "
                      "offset %zu%s",
                      path, what, need, from, at + done,
                      zerr == Z_BUF_ERROR ? " (the gzip stream is cut short)" : "");
}

static int read_exact(gzFile f, const char *path, void *buf, size_t len, size_t at,
                      const char *what)
{
    return read_part(f, path, buf, len, at, at, len, what);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The claimed data size, checked dimension by dimension so that the message
 * names the real fault: a zero dimension, or a product past the cap (which
 * names every dimension, not the one where the product happened to cross). */
static int claimed_bytes(const char *path, const unsigned char *head, int ndim, struct idx *out)
{
    uint64_t bytes = 1;
    int over = 0;
    for (int i = 0; i < ndim; i++) {
        out->dims[i] = be32(head + 4 + 4 * i);
        if (out->dims[i] == 0)
            return dlas_error(DLAS_ERR_CORRUPT, "%s: offset %d: dimension %d is 0", path, 4 + 4 * i,
                              i);
        if (!over && bytes > IDX_MAX_BYTES / out->dims[i])
            over = 1;
        else if (!over)
            bytes *= out->dims[i];
    }
    if (over || bytes > IDX_MAX_BYTES) {
        char dims[96];
        int len = 0;
        for (int i = 0; i < ndim; i++)
            len += snprintf(dims + len, sizeof dims - (size_t)len, "%s%u", i ? " x " : "",
                            out->dims[i]);
        return dlas_error(DLAS_ERR_CORRUPT,
                          "%s: offset 4: the header claims %s = more than the %llu bytes an IDX "
                          "file may hold here (%d dimensions: item count first)",
                          path, dims, (unsigned long long)IDX_MAX_BYTES, ndim);
    }
    out->bytes = (size_t)bytes;
    return DLAS_OK;
}

/* The header's claim against the file's real length, before allocating: a
 * plain file must be exactly header + data bytes; a gzip file can hold at most
 * DLAS_GZIP_MAX_RATIO times its size. */
static int check_against_file(const char *path, int gz, int64_t file_size, size_t header,
                              size_t bytes)
{
    if (!gz && (uint64_t)file_size < header + bytes)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "%s: truncated: the header claims %zu data bytes after its %zu, the "
                          "file has %lld bytes",
                          path, bytes, header, (long long)file_size);
    if (!gz && (uint64_t)file_size > header + bytes)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "%s: offset %zu: data continues past the %zu bytes its header announces",
                          path, header + bytes, bytes);
    if (gz && (uint64_t)bytes / DLAS_GZIP_MAX_RATIO > (uint64_t)file_size)
        return dlas_error(DLAS_ERR_CORRUPT,
                          "%s: truncated: the header claims %zu data bytes, more than a %lld-byte "
                          "gzip file can hold",
                          path, bytes, (long long)file_size);
    return DLAS_OK;
}

/* Read the data, growing the buffer as bytes actually arrive, so that a
 * header whose claim the (compressed) file does not back costs at most twice
 * what the file really holds. */
static int read_data(const struct dlas_host *host, gzFile f, const char *path, size_t header,
                     struct idx *out)
{
    size_t cap = out->bytes < IDX_FIRST_CHUNK ? out->bytes : IDX_FIRST_CHUNK, done = 0;
    uint8_t *buf = host->alloc(cap);
    if (!buf)
        return dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, cap);
    int rc = DLAS_OK;
    while (!rc && done < out->bytes) {
        if (done == cap) {
            size_t ncap = cap > out->bytes / 2 ? out->bytes : 2 * cap;
            uint8_t *g = host->alloc(ncap);
            if (!g) {
                rc = dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, ncap);
                break;
            }
            memcpy(g, buf, done);
            host->free(buf);
            buf = g;
            cap = ncap;
        }
        rc = read_part(f, path, buf + done, cap - done, header + done, header, out->bytes,
                       "the data");
        done = cap;
    }
    if (rc) {
        host->free(buf);
        return rc;
    }
    out->data = buf;
    return DLAS_OK;
}

int idx_load(const struct dlas_host *host, const char *path, int ndim, struct idx *out)
{
    memset(out, 0, sizeof *out);
    int fd;
    int64_t file_size;
    int rc = dlas_file_open(path, &fd, &file_size);
    if (rc)
        return rc;
    unsigned char magic[2] = {0, 0};
    int gz = pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return dlas_error(DLAS_ERR_NOMEM, "%s: cannot open: out of memory", path);
    }
    gzbuffer(f, 1u << 18);
    unsigned char head[4 + 4 * IDX_MAX_DIMS];
    rc = read_exact(f, path, head, 4, 0, "the IDX magic");
    if (!rc && (head[0] != 0 || head[1] != 0 || head[2] != IDX_UBYTE || head[3] != ndim))
        rc = dlas_error(DLAS_ERR_CORRUPT,
                        "%s: offset 0: magic %02x %02x %02x %02x is not an IDX file of unsigned "
                        "bytes with %d dimensions (expected 00 00 08 %02x)",
                        path, head[0], head[1], head[2], head[3], ndim, ndim);
    if (!rc)
        rc = read_exact(f, path, head + 4, 4 * (size_t)ndim, 4, "the dimensions");
    size_t header = 4 + 4 * (size_t)ndim;
    if (!rc)
        rc = claimed_bytes(path, head, ndim, out);
    if (!rc)
        rc = check_against_file(path, gz, file_size, header, out->bytes);
    if (!rc) {
        out->ndim = ndim;
        rc = read_data(host, f, path, header, out);
    }
    if (!rc) {
        /* Reading on to the end also makes zlib check the gzip CRC. */
        unsigned char extra;
        int got = gzread(f, &extra, 1), zerr = Z_OK;
        const char *zmsg = gzerror(f, &zerr);
        if (got > 0)
            rc = dlas_error(DLAS_ERR_CORRUPT,
                            "%s: offset %zu: data continues past the %zu bytes its header "
                            "announces",
                            path, header + out->bytes, out->bytes);
        else if (got < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
            rc = dlas_error(DLAS_ERR_CORRUPT, "%s: corrupt gzip data after offset %zu: %s", path,
                            header + out->bytes, zmsg);
        else if (zerr == Z_BUF_ERROR)
            rc = dlas_error(DLAS_ERR_CORRUPT, "%s: truncated: the gzip stream is cut short after "
                            "offset %zu", path, header + out->bytes);
    }
    gzclose(f);
    if (rc)
        idx_free(host, out);
    return rc;
}

void idx_free(const struct dlas_host *host, struct idx *x)
{
    host->free(x->data);
    memset(x, 0, sizeof *x);
}
