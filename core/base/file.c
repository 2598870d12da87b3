/* dlas_file_open: refuse what is not a regular file before reading it.
 *
 * The file is opened with O_NONBLOCK so that opening a FIFO with no writer
 * returns at once (a blocking open would wait forever), then fstat() on the
 * descriptor decides; checking the path with stat() first would leave a
 * window in which the file could be swapped for a FIFO. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/file.h>
#include <dlas/status.h>

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO (named pipe)"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

int dlas_file_open(const char *path, int *fd, int64_t *size)
{
    *fd = -1;
    *size = 0;
    int d = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (d < 0)
        return dlas_error(errno == ENOENT ? DLAS_ERR_NOTFOUND : DLAS_ERR_IO, "%s: cannot open: %s",
                          path, strerror(errno));
    struct stat st;
    if (fstat(d, &st) != 0) {
        int e = errno;
        close(d);
        return dlas_error(DLAS_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(d);
        return dlas_error(DLAS_ERR_INVALID, "%s: is %s, not a regular file; refused", path,
                          kind_of(st.st_mode));
    }
    /* Back to blocking reads (no difference for a regular file, but a
     * reader should not have to think about EAGAIN). */
    int fl = fcntl(d, F_GETFL);
    if (fl >= 0)
        (void)fcntl(d, F_SETFL, fl & ~O_NONBLOCK);
    *fd = d;
    *size = (int64_t)st.st_size;
    return DLAS_OK;
}

int dlas_file_fopen(const char *path, FILE **f, int64_t *size)
{
    *f = NULL;
    int d;
    int rc = dlas_file_open(path, &d, size);
    if (rc)
        return rc;
    FILE *s = fdopen(d, "rb");
    if (!s) {
        int e = errno;
        close(d);
        return dlas_error(DLAS_ERR_NOMEM, "%s: cannot open a stream: %s", path, strerror(e));
    }
    *f = s;
    return DLAS_OK;
}
