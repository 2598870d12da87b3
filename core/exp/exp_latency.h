/* The latency a compressor may ask for while an experiment point runs its
 * chain (struct dlas_compress_ctx's latency(), ABI 1.3): the point's
 * primitive, fallback, tuning log and backend, the experiment's batch,
 * warm-up and repeat. Not installed. */
#ifndef DLAS_EXP_LATENCY_H
#define DLAS_EXP_LATENCY_H

#include <dlas/plugin.h>
#include <dlas/rng.h>

#include "exp_auto.h"
#include "exp_internal.h"

struct dlas_tunelog;

struct exp_latency {
    const struct dlas_experiment *e;
    const struct point *pt;
    uint64_t seed;
    struct dlas_rng rng_prim, rng_backend;
    struct dlas_host host_prim, host_backend;
    /* made at the first measurement, released by exp_latency_free */
    int ready;
    struct dlas_params *p_backend;
    const struct dlas_backend_ops *bops;
    struct dlas_backend be;
    struct dlas_tunelog *tlog;
    struct exp_candidates cands;          /* the experiment's primitives; [0] the point's own */
    struct dlas_primitive_choice fb;      /* the fallback, if any */
    struct dlas_params *p_fb;
};

/* Set up (nothing is made until the first measurement). */
void exp_latency_init(struct exp_latency *l, const struct dlas_experiment *e,
                      const struct point *pt, const struct dlas_rng *root, uint64_t seed);
void exp_latency_free(struct exp_latency *l);
/* Fill ctx->latency and ctx->latency_state. */
void exp_latency_bind(struct exp_latency *l, struct dlas_compress_ctx *ctx);

#endif
