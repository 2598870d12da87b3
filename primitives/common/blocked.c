/* The operands of the register-blocked micro-kernel that prepare() makes
 * once for direct and spatial-pack: packed weights, padded bias and room
 * for the taps' offsets. Compiled only into the primitives that link the
 * kernels (pc_pack_weights). */
#include <string.h>

#include "prim_common.h"

int pc_blocked_new(const struct pc_conv *c, const char *prim, const float *weight,
                   const float *bias, int b, struct pc_blocked *k)
{
    const struct dlas_conv_desc *d = &c->d;
    const int taps = d->kh * d->kw;
    memset(k, 0, sizeof *k);
    k->b = b;
    k->nblk = pc_ceil_div(c->cpg, PC_VL);
    k->n_ob = pc_ceil_div(c->opg, (int64_t)b * PC_VL);
    k->ob_floats = c->cpg * taps * b * PC_VL;
    k->tap_off = c->host->alloc((size_t)taps * sizeof *k->tap_off);
    if (!k->tap_off)
        return dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate the tap offsets", prim);
    const size_t n = (size_t)(d->groups * k->n_ob * k->ob_floats);
    k->w = c->host->alloc(n * sizeof(float));
    if (!k->w)
        return dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate %zu packed weights", prim, n);
    for (int g = 0; g < d->groups; g++)
        pc_pack_weights(weight + g * c->opg * c->cpg * taps, c->opg, c->cpg, d->kh, d->kw, b,
                        k->w + g * k->n_ob * k->ob_floats);
    return pc_conv_bias(c, prim, bias, k->n_ob * b * PC_VL, &k->bias);
}

void pc_blocked_free(const struct pc_conv *c, struct pc_blocked *k)
{
    c->host->free(k->tap_off);
    c->host->free(k->w);
    c->host->free(k->bias);
}
