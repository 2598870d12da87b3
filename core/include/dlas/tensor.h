/* Dense tensors. Data is 64-byte aligned and row-major; image tensors are NCHW.
 * A parameter tensor may carry a mask (unstructured pruning): mask[i] == 0
 * means element i is pruned, and the invariant kept by every writer is that
 * pruned elements hold exactly 0. */
#ifndef DLAS_TENSOR_H
#define DLAS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DLAS_MAX_DIMS 6

enum dlas_dtype { DLAS_F32 = 0, DLAS_F64, DLAS_I8, DLAS_U8, DLAS_I32 };

struct dlas_tensor {
    enum dlas_dtype dtype;
    int ndim;
    int64_t dims[DLAS_MAX_DIMS];
    void *data;
    uint8_t *mask; /* NULL or one byte per element */
};

size_t dlas_dtype_size(enum dlas_dtype t);
const char *dlas_dtype_name(enum dlas_dtype t);
int64_t dlas_tensor_numel(const struct dlas_tensor *t);
size_t dlas_tensor_bytes(const struct dlas_tensor *t);
/* Allocate zeroed storage; t is overwritten (free it first if it held data). */
int dlas_tensor_alloc(struct dlas_tensor *t, enum dlas_dtype dtype, int ndim,
                      const int64_t *dims);
void dlas_tensor_free(struct dlas_tensor *t);
int dlas_tensor_copy(struct dlas_tensor *dst, const struct dlas_tensor *src);
/* Give t an all-ones mask if it has none. */
int dlas_tensor_mask_ensure(struct dlas_tensor *t);
/* Zero every element whose mask is 0 (restores the invariant after an update). */
void dlas_tensor_mask_apply(struct dlas_tensor *t);
/* Non-zero elements (a pruned element counts as zero). */
int64_t dlas_tensor_nnz(const struct dlas_tensor *t);
static inline float *dlas_f32(const struct dlas_tensor *t) { return (float *)t->data; }

/* 64-byte aligned, zeroed; NULL on failure. 2 MiB and more: on a 2 MiB
 * boundary and advised as huge-page memory (DLAS_HUGEPAGES=0: not). */
void *dlas_aligned_alloc(size_t bytes);
void dlas_aligned_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
