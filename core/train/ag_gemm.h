/* The trainer's GEMM: always single-threaded inside OpenBLAS.
 *
 * The trainer splits each batch into a fixed number of chunks and sums
 * their parts in a fixed order, so that its results do not depend on the
 * thread count. OpenBLAS's GEMM would break that: its OpenMP build runs its
 * own threads whenever the calling region is inactive, which is exactly the
 * case of a team of one (threads = 1), and a GEMM split over threads sums
 * in another order than the same GEMM on one. Setting the calling task's
 * thread count to 1 for the call makes OpenBLAS run it on that thread alone
 * (it sizes itself by omp_get_max_threads()); the setting is put back, so a
 * call outside any parallel region leaves the program's default alone. */
#ifndef DLAS_AG_GEMM_H
#define DLAS_AG_GEMM_H

#include <cblas.h>
#include <omp.h>

static inline void ag_sgemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k,
                            float alpha, const float *a, int lda, const float *b, int ldb,
                            float beta, float *c, int ldc)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    omp_set_num_threads(saved);
}

#endif
