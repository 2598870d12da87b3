/* Internal to the blockswap compressor. */
#ifndef BLOCKSWAP_H
#define BLOCKSWAP_H

#include <dlas/distil.h>
#include <dlas/plugin.h>
#include <dlas/train.h>

/* The candidate block types and what each costs in each block. */
struct bs_space {
    int n_blocks, n_types;
    const struct dlas_residual_block *blocks;
    struct dlas_block_type *types;
    int64_t *params;  /* [block * n_types + type]: trunk parameters, -1 if it does not fit */
    int64_t base;     /* parameters outside the blocks' trunks */
    int64_t lo, hi;   /* the budget's window, inclusive */
};

struct bs_sample {
    int *genotype; /* a type index per block */
    int64_t params;
    double fisher;
};

/* Draw n genotypes uniformly (each block's type uniformly among those that
 * fit it) and keep those within [lo, hi], as the authors' generate_archs();
 * at most max_draws draws in all. Returns the number kept (< n when the
 * draws ran out), or a negative status. */
int bs_sample_genotypes(const struct bs_space *sp, struct dlas_rng *rng, int n, int64_t max_draws,
                        struct bs_sample *out, int64_t *draws);
int64_t bs_genotype_params(const struct bs_space *sp, const int *genotype);
/* The genotype written as "S G(4) B(2) ..." into buf. */
const char *bs_genotype_str(const struct bs_space *sp, const int *genotype, char *buf,
                            size_t len);

/* Build genotype on a clone of `teacher` with weights from rng. */
int bs_build(const struct dlas_graph *teacher, const struct bs_space *sp, const int *genotype,
             struct dlas_rng *rng, struct dlas_graph **out);
#endif
