/* IDX files (the MNIST format: LeCun et al.), gzip-compressed or plain. */
#ifndef FMNIST_IDX_H
#define FMNIST_IDX_H

#include <stddef.h>
#include <stdint.h>

#include <dlas/plugin.h>

#define IDX_MAX_DIMS 4

struct idx {
    int ndim;
    uint32_t dims[IDX_MAX_DIMS];
    uint8_t *data;  /* dims[0] x ... x dims[ndim-1] bytes, from host->alloc */
    size_t bytes;
};

/* Load an IDX file of unsigned bytes with `ndim` dimensions. A wrong magic,
 * a truncated or corrupt stream, or bytes past the data are refused with a
 * message naming the file and the offset. */
int idx_load(const struct dlas_host *host, const char *path, int ndim, struct idx *out);
void idx_free(const struct dlas_host *host, struct idx *x);

#endif
