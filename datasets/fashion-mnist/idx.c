/* IDX reader. zlib's gz* functions read gzip and plain files alike, so one
 * path serves both the Debian package's .gz files and unpacked copies. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "idx.h"

#define IDX_UBYTE 0x08
/* Large enough for any real IDX image set, small enough to refuse a
 * corrupt header before trying to allocate it. */
#define IDX_MAX_BYTES ((size_t)1 << 34)

/* Read exactly len bytes or say why not. `at` is the offset in the
 * (decompressed) stream, for the message. */
static int read_exact(gzFile f, const char *path, void *buf, size_t len, size_t at,
                      const char *what)
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
                      path, what, len, at, at + done,
                      zerr == Z_BUF_ERROR ? " (the gzip stream is cut short)" : "");
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int idx_load(const struct dlas_host *host, const char *path, int ndim, struct idx *out)
{
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return dlas_error(errno == ENOENT ? DLAS_ERR_NOTFOUND : DLAS_ERR_IO, "%s: cannot open: %s",
                          path, errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1u << 18);
    unsigned char head[4 + 4 * IDX_MAX_DIMS];
    int rc = read_exact(f, path, head, 4, 0, "the IDX magic");
    if (!rc && (head[0] != 0 || head[1] != 0 || head[2] != IDX_UBYTE || head[3] != ndim))
        rc = dlas_error(DLAS_ERR_CORRUPT,
                        "%s: offset 0: magic %02x %02x %02x %02x is not an IDX file of unsigned "
                        "bytes with %d dimensions (expected 00 00 08 %02x)",
                        path, head[0], head[1], head[2], head[3], ndim, ndim);
    if (!rc)
        rc = read_exact(f, path, head + 4, 4 * (size_t)ndim, 4, "the dimensions");
    size_t bytes = 1;
    for (int i = 0; !rc && i < ndim; i++) {
        out->dims[i] = be32(head + 4 + 4 * i);
        if (out->dims[i] == 0 || out->dims[i] > IDX_MAX_BYTES / bytes)
            rc = dlas_error(DLAS_ERR_CORRUPT, "%s: offset %d: dimension %d is %u", path, 4 + 4 * i,
                            i, out->dims[i]);
        else
            bytes *= out->dims[i];
    }
    size_t header = 4 + 4 * (size_t)ndim;
    if (!rc) {
        out->ndim = ndim;
        out->bytes = bytes;
        out->data = host->alloc(bytes);
        if (!out->data)
            rc = dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, bytes);
    }
    if (!rc)
        rc = read_exact(f, path, out->data, bytes, header, "the data");
    if (!rc) {
        /* Reading on to the end also makes zlib check the gzip CRC. */
        unsigned char extra;
        int got = gzread(f, &extra, 1), zerr = Z_OK;
        const char *zmsg = gzerror(f, &zerr);
        if (got > 0)
            rc = dlas_error(DLAS_ERR_CORRUPT,
                            "%s: offset %zu: data continues past the %zu bytes its header "
                            "announces",
                            path, header + bytes, bytes);
        else if (got < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
            rc = dlas_error(DLAS_ERR_CORRUPT, "%s: corrupt gzip data after offset %zu: %s", path,
                            header + bytes, zmsg);
        else if (zerr == Z_BUF_ERROR)
            rc = dlas_error(DLAS_ERR_CORRUPT, "%s: truncated: the gzip stream is cut short after "
                            "offset %zu", path, header + bytes);
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
