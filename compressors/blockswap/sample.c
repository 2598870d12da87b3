/* BlockSwap's random genotypes within a parameter budget. */
#include <stdio.h>
#include <string.h>

#include "blockswap.h"

int64_t bs_genotype_params(const struct bs_space *sp, const int *genotype)
{
    int64_t p = sp->base;
    for (int b = 0; b < sp->n_blocks; b++)
        p += sp->params[b * sp->n_types + genotype[b]];
    return p;
}

const char *bs_genotype_str(const struct bs_space *sp, const int *genotype, char *buf,
                            size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int b = 0; b < sp->n_blocks && at < len; b++) {
        char name[32];
        dlas_block_type_name(&sp->types[genotype[b]], name, sizeof name);
        int w = snprintf(buf + at, len - at, "%s%s", b ? " " : "", name);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return buf;
}

/* One block's type, uniformly among those that fit it. */
static int draw_type(const struct bs_space *sp, int b, struct dlas_rng *rng)
{
    int fit = 0;
    for (int t = 0; t < sp->n_types; t++)
        fit += sp->params[b * sp->n_types + t] >= 0;
    int k = (int)dlas_rng_below(rng, (uint64_t)fit);
    for (int t = 0; t < sp->n_types; t++)
        if (sp->params[b * sp->n_types + t] >= 0 && k-- == 0)
            return t;
    return 0;
}

int bs_sample_genotypes(const struct bs_space *sp, struct dlas_rng *rng, int n, int64_t max_draws,
                        struct bs_sample *out, int64_t *draws)
{
    int kept = 0;
    int64_t d = 0;
    while (kept < n && d < max_draws) {
        int *gt = out[kept].genotype;
        for (int b = 0; b < sp->n_blocks; b++)
            gt[b] = draw_type(sp, b, rng);
        d++;
        int64_t p = bs_genotype_params(sp, gt);
        if (p >= sp->lo && p <= sp->hi) {
            out[kept].params = p;
            out[kept].fisher = 0.0;
            kept++;
        }
    }
    if (draws)
        *draws = d;
    return kept;
}
