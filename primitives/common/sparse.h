/* What the sparse convolution primitives (sparse-direct, sparse-gemm) share:
 * compressed sparse rows of a layer's weights and the micro-kernel that
 * multiplies one such row by a dense panel.
 *
 * Both primitives reduce a convolution to, for every output channel oc and
 * every block of output positions p0 .. p0 + 16V,
 *
 *     out[oc][p] = bias[oc] + sum over the non-zeros k of row oc:
 *                             val[k] * panel[off[k] + p]
 *
 * where the panel is the zero-padded input (sparse-direct: off[k] is the
 * input offset of the weight's channel and tap, Park et al. 2017) or a band
 * of the im2col'd input (sparse-gemm: off[k] is the row of the band). The
 * kernel keeps the V accumulators of a block in registers and streams the
 * row's (offset, value) pairs: per non-zero one broadcast and V fused
 * multiply-adds, each reading one vector of the panel. */
#ifndef DLAS_PRIM_SPARSE_H
#define DLAS_PRIM_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "prim_common.h"

/* One non-zero weight: where its inputs start in the panel, and its value. */
struct sc_nz {
    int32_t off;
    float val;
};

/* Compressed sparse rows: row r (an output channel) holds nz[ptr[r] ..
 * ptr[r+1]), in the order of the dense weights (input channel, tap). */
struct sc_csr {
    int64_t rows, nnz;
    int64_t *ptr;     /* rows + 1 */
    struct sc_nz *nz; /* nnz (at least one slot, so never NULL) */
};

/* Offset of weight (ic, tap) of a row of output channel oc; the callback
 * maps a dense weight position to its panel offset. */
typedef int32_t (*sc_offset_fn)(const void *ctx, int64_t oc, int64_t ic, int ky, int kx);

/* Build the rows of weight (out_c x cpg x kh x kw, zeros are the pruned
 * weights) with offsets from off(); memory from host. DLAS_ERR_NOMEM. */
int sc_csr_build(const struct dlas_host *host, const float *weight, int64_t out_c, int64_t cpg,
                 int kh, int kw, sc_offset_fn off, const void *ctx, struct sc_csr *csr);
void sc_csr_free(const struct dlas_host *host, struct sc_csr *csr);

/* The parameter every sparse primitive has: the least weight sparsity of
 * a layer it accepts (sc_check_sparsity). */
#define SC_MIN_SPARSITY_PARAM                                                                  \
    {"min_sparsity", DLAS_PARAM_FLOAT, 0, "0", 0, 1, NULL,                                     \
     "refuse layers whose weights are less sparse than this (the plan falls back to a dense "  \
     "primitive there, and auto cannot bind this one); bench_sparse prints each layer's "      \
     "break-even"}

/* pc_check_desc, and DLAS_ERR_UNSUPPORTED for a layer whose weights are
 * less sparse than the min_sparsity parameter (0 without parameters). */
int sc_check_sparsity(const char *prim, const struct dlas_conv_desc *d,
                      const struct dlas_params *p, char *why, size_t len);

/* Exact zeros among n weights. */
int64_t sc_count_zeros(const float *w, int64_t n);

/* ---- the micro-kernel -------------------------------------------------------- */

#define SC_MAX_V 28 /* accumulator vectors of one block */

/* dst[0 .. 16V) = act(bias + sum_k nz[k].val * x[nz[k].off + 0 .. 16V)).
 * x + off + 16V may run past the valid data (the caller provides slack);
 * dst has room for 16V floats. */
struct sc_kargs {
    const float *x;
    const struct sc_nz *nz;
    int64_t nnz;
    float bias;
    int act;
    float *dst;
    /* the two-row kernels: a second row over the same panel, its results
     * at dst + 16V */
    const struct sc_nz *nz2;
    int64_t nnz2;
    float bias2;
    /* the four-row kernels: rows 3 and 4, results at dst + 32V, + 48V */
    const struct sc_nz *nz3, *nz4;
    int64_t nnz3, nnz4;
    float bias3, bias4;
};
typedef void (*sc_kernel_fn)(const struct sc_kargs *a);

/* The kernel for V vectors (1 .. SC_MAX_V): the AVX-512 instance when the
 * CPU has AVX-512F (checked at run time with cpuid, whatever the build
 * targets), else a portable one. */
sc_kernel_fn sc_kernel(int v);
/* Two rows at once, V = 1 .. SC_MAX_V2 vectors each: twice the
 * independent accumulators where a block is short (small output planes),
 * which one row's V FMAs a non-zero leave latency-bound. */
#define SC_MAX_V2 14
sc_kernel_fn sc_kernel2(int v);
/* Four rows at once, V = 1 .. SC_MAX_V4 each. */
#define SC_MAX_V4 7
sc_kernel_fn sc_kernel4(int v);
/* Four rows of V = 1 .. SC_MAX_V4 - 1 full vectors and a half one (8
 * positions) after them, results at dst + r * 16(V + 1): for planes whose
 * last vector holds at most 8 positions. x + off + 16V + 8 may run past
 * the valid data as for sc_kernel4(V + 1). */
sc_kernel_fn sc_kernel4h(int v);
/* "avx512" or "portable": what sc_kernel() hands out on this CPU. */
const char *sc_kernel_isa(void);

/* Blocks of at most max_v vectors covering n_vec vectors, as even as
 * possible: the number of vectors per block (the last may be shorter). */
int sc_even_block(int64_t n_vec, int max_v);

#endif
