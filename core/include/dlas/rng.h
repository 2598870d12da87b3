/* The experiment's random number generator (xoshiro256**). All randomness in
 * an experiment is drawn from generators seeded from one experiment seed, so a
 * run is reproducible from its config alone. */
#ifndef DLAS_RNG_H
#define DLAS_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dlas_rng {
    uint64_t s[4];
};

void dlas_rng_seed(struct dlas_rng *r, uint64_t seed);
/* An independent stream derived from r's seed and `stream`, without
 * advancing r: lets each component draw without perturbing the others. */
struct dlas_rng dlas_rng_derive(const struct dlas_rng *r, uint64_t stream);
uint64_t dlas_rng_u64(struct dlas_rng *r);
double dlas_rng_uniform(struct dlas_rng *r);        /* [0, 1) */
uint64_t dlas_rng_below(struct dlas_rng *r, uint64_t n); /* [0, n), unbiased */
float dlas_rng_normal(struct dlas_rng *r);          /* N(0, 1) */
/* Derive a stream id from a name, for dlas_rng_derive. */
uint64_t dlas_rng_hash(const char *name);

#ifdef __cplusplus
}
#endif
#endif
