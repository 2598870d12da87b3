/* Primitive "cuda-direct": an own tiled direct convolution kernel for the
 * GPU (kernels.cu says how it tiles). Any kernel size, stride, padding,
 * dilation and group count; no workspace. Its knobs (output channels per
 * block, the tile of output positions, input channels per shared-memory
 * stage) are what `dlas tune` searches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>

#include "../common/cuda_prim.h"
#include "kernels.h"

#define NAME "cuda-direct"

struct state {
    struct cp_conv c; /* be, d, stream, w, b */
    struct cdk_geom G;
    struct cdk_cfg cfg;
};

static void geom_of(const struct dlas_conv_desc *d, struct cdk_geom *G)
{
    *G = (struct cdk_geom){d->in_c, d->in_h, d->in_w, d->out_c, d->out_h, d->out_w,
                           (int)(d->in_c / d->groups), (int)(d->out_c / d->groups),
                           d->kh, d->kw, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
                           d->dil_h, d->dil_w, d->activation};
}

static int cfg_of(const struct dlas_params *p, const struct dlas_conv_desc *d, struct cdk_cfg *c,
                  char *why, size_t len)
{
    c->oc_block = p ? (int)dlas_param_int(p, "oc_block") : 16;
    const char *tile = p ? dlas_param_str(p, "tile") : NULL;
    c->ic_chunk = p ? (int)dlas_param_int(p, "ic_chunk") : 8;
    if (!tile)
        tile = "16x8";
    if (sscanf(tile, "%dx%d", &c->tile_w, &c->tile_h) != 2) {
        snprintf(why, len, "tile = \"%s\" is not WxH", tile);
        return DLAS_ERR_INVALID;
    }
    if (c->oc_block != 4 && c->oc_block != 8 && c->oc_block != 16 && c->oc_block != 32) {
        snprintf(why, len, "oc_block = %d is not 4, 8, 16 or 32", c->oc_block);
        return DLAS_ERR_INVALID;
    }
    /* small layers: no wider a block than the output */
    if (c->ic_chunk > d->in_c / d->groups)
        c->ic_chunk = (int)(d->in_c / d->groups);
    return DLAS_OK;
}

static int supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                    size_t len)
{
    int rc = cp_check_desc(d, why, len);
    struct cdk_cfg c;
    if (!rc)
        rc = cfg_of(p, d, &c, why, len);
    if (rc)
        return rc;
    if (d->batch > 65535 || d->groups * ((d->out_c / d->groups + c.oc_block - 1) / c.oc_block) > 65535) {
        snprintf(why, len, "batch or channel blocks beyond the grid's 65535");
        return DLAS_ERR_UNSUPPORTED;
    }
    struct cdk_geom G;
    geom_of(d, &G);
    /* the staged patch must fit in shared memory; 99 KiB is what every
     * GPU since Volta lets a block opt into (the H100/H200 allow 227) */
    size_t need = cdk_shared_bytes(&G, &c), limit = 99 * 1024;
    if (need > limit) {
        snprintf(why, len, "%zu KiB of shared memory for a %dx%d kernel at this tile (limit %zu)",
                 need >> 10, d->kh, d->kw, limit >> 10);
        return DLAS_ERR_UNSUPPORTED;
    }
    return DLAS_OK;
}

static int prepare(const struct dlas_host *host, const struct dlas_backend *be,
                   const struct dlas_conv_desc *d, const float *weight, const float *bias,
                   const struct dlas_params *p, void **out)
{
    *out = NULL;
    struct state *s;
    int rc = cp_conv_new(NAME, supports, be, d, p, sizeof *s, (void **)&s);
    if (rc)
        return rc;
    geom_of(d, &s->G);
    char why[256];
    cfg_of(p, d, &s->cfg, why, sizeof why);
    if (cdk_shared_bytes(&s->G, &s->cfg) > cdk_shared_limit())
        rc = dlas_error(DLAS_ERR_UNSUPPORTED, NAME ": this GPU has %zu KiB of shared memory "
                                                  "per block, the layer needs %zu",
                        cdk_shared_limit() >> 10, cdk_shared_bytes(&s->G, &s->cfg) >> 10);
    const int64_t wn = d->out_c * (d->in_c / d->groups) * d->kh * d->kw;
    if (!rc)
        rc = cp_conv_upload(&s->c, NAME, weight, (size_t)wn, bias);
    return cp_conv_finish(rc, s, cp_conv_release, out);
}

static int run(void *st, int64_t batch, const float *in, float *out, void *ws,
               struct dlas_profile *prof)
{
    struct state *s = st;
    int rc = cp_conv_batch(&s->c, NAME, batch);
    if (rc)
        return rc;
    return cp_cuda(cdk_conv(s->c.stream, &s->G, &s->cfg, batch, in, s->c.w, s->c.b, out), NAME,
                   "direct convolution kernel");
}

static const struct dlas_param_spec params[] = {
    {"oc_block", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "16", 4, 32, NULL,
     "output channels per block, accumulated in registers: 4, 8, 16 or 32"},
    {"tile", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "16x8", 0, 0, "32x4|16x8|8x8|8x16|32x8|16x16",
     "output positions per block, W x H (one thread each)"},
    {"ic_chunk", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "8", 1, 64, NULL,
     "input channels staged in shared memory at a time"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_primitive_ops ops =
    PRIM_CONV_OPS("cuda", supports, prepare, cp_no_workspace, run, cp_conv_release);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "own tiled direct convolution: input patch and weights staged in shared memory, "
     "output channels blocked in registers",
     "Direct convolution, tiled as in X. Zhang et al., High Performance Zero-Memory Overhead "
     "Direct Convolutions, ICML 2018 (adapted to the GPU's shared memory)",
     params, &ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "tiled direct convolution on the GPU", components)
