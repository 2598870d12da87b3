/* The compute of primitive "pointwise": a 1x1 convolution is, per image and
 * group, the product out (M x N) = W (M x K) * x (K x N) of the weights and
 * the input's channel planes (N pixels each, NCHW). It is computed in the
 * manner of BLIS (Van Zee and van de Geijn, 2015): the weights are packed
 * once into panels of PG_MR rows, the pixels into strips of PG_NR
 * (PG_KC channels deep), and a register-blocked micro-kernel multiplies a
 * panel by a strip with the PG_MR x PG_NR outputs held in registers. Pure
 * compute: no plugin, no threads. */
#ifndef DLAS_PW_GEMM_H
#define DLAS_PW_GEMM_H

#include <stdint.h>

#include "../../core/kernels/pc_kernels.h"

/* Rows of a weight panel and pixels of a full strip: 12 accumulators of 8
 * floats with AVX2 (of its 16 registers: 2 for the strip, 1 for the
 * broadcast weight), 24 of 16 floats with AVX-512 (of 32). */
#define PG_MR (PC_NL == 16 ? 12 : 6)
#define PG_NR (2 * PC_NL)
/* Channels per pass: a strip (PG_KC x PG_NR floats, 16 KB with AVX2)
 * stays in L1 while a block of weight panels streams past it from L2. */
#define PG_KC 256
/* Output channels per block of panels: PG_MC x PG_KC weights (192 KB)
 * stay in L2 while the strips of a thread's share stream past them. */
#define PG_MC (16 * PG_MR)

/* Weights (M x K, row-major: the layer's out_c x in_c/groups of one group)
 * into panels: p[(m / PG_MR) * PG_MR * K + k * PG_MR + m % PG_MR], the
 * rows of the last panel past M zero. pg_panel_floats(M, K) floats. */
int64_t pg_panel_floats(int64_t M, int64_t K);
void pg_pack_panels(const float *w, int64_t M, int64_t K, float *p);

/* A strip: b[k * PG_NR + j] = x[k * xs + off[j]] for k < kc, j < nr, and
 * 0 for nr <= j < PG_NR. off NULL: off[j] = j (consecutive pixels). */
void pg_pack_strip(const float *x, int64_t xs, const int64_t *off, int nr, int64_t kc,
                   float *b);

/* One micro-tile: c[i * ldc + j] for i < mr <= PG_MR, j < nr <= PG_NR,
 *
 *   c = (first ? bias[i] + res[i * ldc + j] : c) + sum over k < kc of
 *       a[k * PG_MR + i] * b[k * PG_NR + j],
 *
 * (bias, res: 0 when NULL), then the activation (enum dlas_activation) when
 * last. a: a panel from k0 on; b: a strip. res may be c itself: each
 * element is read before it is written. */
struct pg_tile {
    const float *a, *b;
    int64_t kc;
    float *c;
    int64_t ldc;
    int mr, nr;
    const float *bias;
    const float *res;
    int first, last, act;
};
void pg_tile(const struct pg_tile *t);

#endif
