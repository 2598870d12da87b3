/* Building a sampled genotype on the teacher's structure. */
#include <stdlib.h>

#include "blockswap.h"

int bs_build(const struct dlas_graph *teacher, const struct bs_space *sp, const int *genotype,
             struct dlas_rng *rng, struct dlas_graph **out)
{
    struct dlas_graph *g = dlas_graph_clone(teacher);
    if (!g)
        return dlas_error(DLAS_ERR_NOMEM, "blockswap: out of memory");
    int rc = DLAS_OK;
    for (int b = 0; b < sp->n_blocks && !rc; b++)
        rc = dlas_graph_substitute_block(g, &sp->blocks[b], &sp->types[genotype[b]], NULL);
    if (!rc)
        rc = dlas_graph_init_weights(g, rng);
    if (rc) {
        dlas_graph_free(g);
        return rc;
    }
    *out = g;
    return DLAS_OK;
}

