/* Random networks for the suites' property tests (tests/random_graph.c). */
#ifndef DLAS_TEST_RANDOM_GRAPH_H
#define DLAS_TEST_RANDOM_GRAPH_H

#include <stdint.h>

#include <dlas/dlas.h>

#include "testutil.h"

/* A deterministic generator (splitmix64) and the network it is building. */
struct rg_gen {
    uint64_t s;
    struct dlas_graph *g;
    int cur;       /* the node the next motif reads */
    int c, h, w;   /* its shape */
    int n;         /* nodes named so far */
    int unit;      /* channel counts are multiples of it, plus an odd few */
    char name[32];
    char log[512]; /* the motifs, for a failure's message */
};

/* Uniform in [lo, hi]; 1 with probability 1/n. */
int rg_pick(struct rg_gen *r, int lo, int hi);
int rg_one_in(struct rg_gen *r, int n);
/* Append printf-formatted text to r->log. */
void rg_note(struct rg_gen *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The network of `seed`, its weights set by rg_randomize; r->log says how it
 * was made, and r goes on drawing for the caller. Full size: an input of
 * 1-24 channels and 1-48 pixels a side, 2-6 motifs, channels in multiples
 * of 8 (up to 200). small: 1-5 channels and 1-10 pixels, 2-4 motifs,
 * multiples of 2 (up to 50), for checks that cost a forward per number
 * (finite differences). Fails the calling test if the builder refuses. */
struct dlas_graph *rg_graph(uint64_t seed, int small, struct rg_gen *r);
/* Weights at the model's own scale (dlas_graph_init_weights); batchnorms
 * away from identity, convs' biases nonzero. */
void rg_randomize(struct dlas_graph *g, uint64_t seed);
/* The largest change of g's reference output on x when every parameter and
 * input moves by one float rounding, at random: how far apart two correct
 * float computations of g may be, measured. */
double rg_sensitivity(const struct dlas_graph *g, const struct dlas_tensor *x, uint64_t seed);
/* The largest |a[i] - b[i]| over n values, in double (b NULL: the largest
 * |a[i]|). */
double rg_max_diff(const float *a, const float *b, int64_t n);
/* The cases of a sweep, numbered: case S alone where the environment sets
 * seed_var=S (seed_var may be NULL: no such variable), else count_var=N
 * of them (dflt where unset) from DLAS_RANDOM_FIRST (0). Returns how many
 * ran. */
long rg_sweep(void (*one)(uint64_t), const char *seed_var, const char *count_var, long dflt);

#endif
