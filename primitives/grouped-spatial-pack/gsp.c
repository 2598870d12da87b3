/* Primitive "grouped-spatial-pack": grouped and depthwise convolutions as in
 * Grouped Spatial Pack Convolutions (Gibson, Cano, Turner, Crowley, O'Boyle,
 * Storkey, "Optimizing Grouped Convolutions on Edge Devices", ASAP 2020).
 *
 * GEMM-based primitives run a grouped layer as `groups` tiny GEMMs whose
 * shapes (out/groups x in/groups*k*k x pixels) defeat blocking, and
 * vectorising over output channels leaves the lanes of a depthwise layer
 * empty. Here each group is packed on its own: its input channels into
 * zero-padded planes whose columns are split into stride phases (so that a
 * strided row reads consecutive floats), its weights once in prepare() as
 * [group][channel block][in channel][tap][OCB]. The micro-kernel then
 * vectorises along output columns (16 per vector, NV vectors) and blocks OCB
 * output channels of the group in registers, broadcasting each weight.
 *
 * Threading: when there are many (image, group) pairs (depthwise layers
 * have hundreds) each thread packs a group into its own buffer, which stays
 * in L1/L2, and computes it at once; otherwise all groups are packed first
 * (split by planes) and the output rows are split after a barrier. */
#include <omp.h>
#include <string.h>

#include "gsp.h"

#define NAME "grouped-spatial-pack"

struct gsp_state {
    const struct dlas_host *host;
    struct dlas_backend be;
    struct dlas_conv_desc d;
    int64_t cpg, opg, n_ob;
    int ocb, nv;
    int mode; /* 0 auto, 1 per-group, 2 global */
    int64_t hp, wq, plane; /* packed plane: hp rows x sw phases x wq */
    int threads;
    int64_t *tap_off;
    float *w;    /* [g][ob][c][tap][ocb] */
    float *bias; /* [g][ob][ocb] or NULL */
};

static const struct dlas_param_spec gsp_params[] = {
    {"oc_block", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 8, NULL,
     "output channels of a group computed together (OCB); 0 = chosen from the group size"},
    {"vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 4, NULL,
     "vectors of 16 output columns per block (NV); 0 = chosen from the width; "
     "oc_block * vectors <= 28"},
    {"mode", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|per-group|global",
     "per-group: each thread packs and computes whole groups (many small groups); global: "
     "pack every group, then split output rows (few large groups)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int choose(const struct dlas_conv_desc *d, const struct dlas_params *p, int *ocb,
                  int *nv, char *why, size_t len)
{
    const int64_t opg = d->out_c / d->groups;
    *ocb = p ? (int)dlas_param_int(p, "oc_block") : 0;
    *nv = p ? (int)dlas_param_int(p, "vectors") : 0;
    if (!*ocb) {
        /* the largest block up to 8 that divides the group's channels */
        *ocb = 1;
        for (int k = 8; k >= 1; k--)
            if (opg % k == 0) {
                *ocb = k;
                break;
            }
        if (*ocb < 4 && opg > 8)
            *ocb = 4;
    }
    if (!*nv) {
        int64_t want = pc_ceil_div(d->out_w, PC_VL);
        int cap = 28 / *ocb;
        *nv = (int)(want < cap ? want : cap);
        if (*nv > GSP_MAX_NV)
            *nv = GSP_MAX_NV;
        if (*nv < 1)
            *nv = 1;
    }
    if (!gsp_kernel(*ocb, *nv))
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "no kernel for %d output channels x %d vectors (oc_block * vectors <= "
                       "28)",
                       *ocb, *nv);
    return DLAS_OK;
}

static int gsp_supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                        size_t len)
{
    int rc = pc_check_desc(NAME, d, why, len);
    if (rc)
        return rc;
    int ocb, nv;
    return choose(d, p, &ocb, &nv, why, len);
}

static void gsp_release(void *state)
{
    struct gsp_state *s = state;
    if (!s)
        return;
    s->host->free(s->tap_off);
    s->host->free(s->w);
    s->host->free(s->bias);
    s->host->free(s);
}

static int gsp_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                       const struct dlas_conv_desc *d, const float *weight, const float *bias,
                       const struct dlas_params *p, void **state)
{
    *state = NULL;
    int ocb, nv;
    int rc = pc_check_prepare(NAME, be, d, weight, bias);
    if (rc || (rc = choose(d, p, &ocb, &nv, NULL, 0)))
        return rc;
    struct gsp_state *s = host->alloc(sizeof *s);
    if (!s)
        return dlas_error(DLAS_ERR_NOMEM, NAME ": cannot allocate state");
    s->host = host;
    if (be && be->ops)
        s->be = *be;
    s->d = *d;
    s->cpg = d->in_c / d->groups;
    s->opg = d->out_c / d->groups;
    s->ocb = ocb;
    s->nv = nv;
    s->n_ob = pc_ceil_div(s->opg, ocb);
    s->threads = pc_threads(be);
    const char *mode = p ? dlas_param_str(p, "mode") : NULL;
    s->mode = !mode || !strcmp(mode, "auto") ? 0 : !strcmp(mode, "per-group") ? 1 : 2;
    const int sw = d->stride_w;
    s->hp = d->in_h + 2 * (int64_t)d->pad_h;
    int64_t need = (d->out_h - 1) * d->stride_h + (int64_t)(d->kh - 1) * d->dil_h + 1;
    if (need > s->hp)
        s->hp = need;
    /* the last block's vectors read up to round_up(out_w, 16 nv) past the
     * farthest tap of a row */
    s->wq = pc_ceil_div(d->in_w + 2 * (int64_t)d->pad_w, sw);
    need = pc_round_up(d->out_w, (int64_t)PC_VL * nv) + (int64_t)(d->kw - 1) * d->dil_w / sw;
    if (need > s->wq)
        s->wq = need;
    s->plane = s->hp * sw * s->wq;

    const int taps = d->kh * d->kw;
    s->tap_off = host->alloc((size_t)taps * sizeof *s->tap_off);
    size_t wn = (size_t)(d->groups * s->n_ob * s->cpg * taps * ocb);
    s->w = host->alloc(wn * sizeof(float));
    if (d->has_bias)
        s->bias = host->alloc((size_t)(d->groups * s->n_ob * ocb) * sizeof(float));
    if (!s->tap_off || !s->w || (d->has_bias && !s->bias)) {
        gsp_release(s);
        return dlas_error(DLAS_ERR_NOMEM, NAME ": cannot allocate %zu packed weights", wn);
    }
    for (int ky = 0; ky < d->kh; ky++)
        for (int kx = 0; kx < d->kw; kx++) {
            int64_t c = (int64_t)kx * d->dil_w;
            s->tap_off[ky * d->kw + kx] =
                (int64_t)ky * d->dil_h * sw * s->wq + (c % sw) * s->wq + c / sw;
        }
    float *o = s->w;
    for (int64_t g = 0; g < d->groups; g++)
        for (int64_t ob = 0; ob < s->n_ob; ob++)
            for (int64_t c = 0; c < s->cpg; c++)
                for (int t = 0; t < taps; t++)
                    for (int k = 0; k < ocb; k++) {
                        int64_t oc = ob * ocb + k;
                        *o++ = oc < s->opg
                                   ? weight[((g * s->opg + oc) * s->cpg + c) * taps + t]
                                   : 0.0f;
                    }
    if (d->has_bias)
        for (int64_t g = 0; g < d->groups; g++)
            for (int64_t k = 0; k < s->n_ob * ocb; k++)
                s->bias[g * s->n_ob * ocb + k] = k < s->opg ? bias[g * s->opg + k] : 0.0f;
    *state = s;
    return DLAS_OK;
}

static int per_group_mode(const struct gsp_state *s, int64_t batch, int t)
{
    if (s->mode)
        return s->mode == 1;
    return batch * s->d.groups >= 4LL * t;
}

static size_t gsp_workspace(void *state, int64_t batch)
{
    const struct gsp_state *s = state;
    if (batch <= 0)
        return 0;
    int64_t a = s->threads * s->cpg * s->plane, b = batch * s->d.in_c * s->plane;
    return (size_t)((a > b ? a : b) + 64) * sizeof(float);
}

/* One input plane, zero-padded, its columns split into stride phases. */
static void pack_plane(const struct gsp_state *s, const float *src, float *dst)
{
    const struct dlas_conv_desc *d = &s->d;
    const int sw = d->stride_w;
    const int64_t wq = s->wq;
    for (int64_t r = 0; r < s->hp; r++) {
        float *row = dst + r * sw * wq;
        int64_t ih = r - d->pad_h;
        if (ih < 0 || ih >= d->in_h) {
            memset(row, 0, (size_t)(sw * wq) * sizeof(float));
            continue;
        }
        const float *in = src + ih * d->in_w;
        if (sw == 1) {
            memset(row, 0, (size_t)d->pad_w * sizeof(float));
            memcpy(row + d->pad_w, in, (size_t)d->in_w * sizeof(float));
            int64_t tail = wq - d->pad_w - d->in_w;
            if (tail > 0)
                memset(row + d->pad_w + d->in_w, 0, (size_t)tail * sizeof(float));
            continue;
        }
        for (int ph = 0; ph < sw; ph++) {
            float *o = row + ph * wq;
            for (int64_t q = 0; q < wq; q++) {
                int64_t iw = q * sw + ph - d->pad_w;
                o[q] = iw >= 0 && iw < d->in_w ? in[iw] : 0.0f;
            }
        }
    }
}

/* Output rows [r0, r1) of channel blocks [ob0, ob1) of group g of image n,
 * whose packed planes start at planes. */
static void compute(const struct gsp_state *s, const float *planes, int64_t n, int64_t g,
                    int64_t ob0, int64_t ob1, int64_t r0, int64_t r1, float *out)
{
    const struct dlas_conv_desc *d = &s->d;
    const int taps = d->kh * d->kw, span = s->nv * PC_VL;
    const int64_t ohw = d->out_h * d->out_w, rowlen = d->stride_w * s->wq;
    struct gsp_kargs a;
    a.tap_off = s->tap_off;
    a.ntaps = taps;
    a.cpg = (int)s->cpg;
    a.plane = s->plane;
    a.out_cs = ohw;
    for (int64_t ob = ob0; ob < ob1; ob++) {
        int64_t oc0 = ob * s->ocb;
        a.nout = s->opg - oc0 < s->ocb ? (int)(s->opg - oc0) : s->ocb;
        a.w = s->w + (g * s->n_ob + ob) * s->cpg * taps * s->ocb;
        a.bias = s->bias ? s->bias + (g * s->n_ob + ob) * s->ocb : NULL;
        float *oc = out + (n * d->out_c + g * s->opg + oc0) * ohw;
        for (int64_t oh = r0; oh < r1; oh++) {
            const float *row = planes + oh * d->stride_h * rowlen;
            for (int64_t ow0 = 0; ow0 < d->out_w; ow0 += span) {
                int64_t left = d->out_w - ow0;
                int nv = left >= span ? s->nv : (int)pc_ceil_div(left, PC_VL);
                a.in = row + ow0;
                a.out = oc + oh * d->out_w + ow0;
                a.ncols = (int)(left < span ? left : span);
                gsp_kernel(s->ocb, nv)(&a);
            }
        }
    }
}

static void per_group(const struct gsp_state *s, const float *in, float *out, float *buf,
                      int64_t i0, int64_t i1)
{
    const struct dlas_conv_desc *d = &s->d;
    const int64_t ihw = d->in_h * d->in_w;
    for (int64_t i = i0; i < i1; i++) {
        int64_t n = i / d->groups, g = i % d->groups;
        for (int64_t c = 0; c < s->cpg; c++)
            pack_plane(s, in + (n * d->in_c + g * s->cpg + c) * ihw, buf + c * s->plane);
        compute(s, buf, n, g, 0, s->n_ob, 0, d->out_h, out);
    }
}

/* Items (image, group, channel block, row) after every plane is packed. */
static void global_items(const struct gsp_state *s, const float *packed, float *out,
                         int64_t i0, int64_t i1)
{
    const struct dlas_conv_desc *d = &s->d;
    const int64_t per_g = s->n_ob * d->out_h;
    while (i0 < i1) {
        int64_t ig = i0 / per_g, k = i0 % per_g;
        int64_t ob = k / d->out_h, r = k % d->out_h;
        int64_t end = i1 - i0 < d->out_h - r ? r + (i1 - i0) : d->out_h;
        int64_t n = ig / d->groups, g = ig % d->groups;
        compute(s, packed + (n * d->in_c + g * s->cpg) * s->plane, n, g, ob, ob + 1, r, end,
                out);
        i0 += end - r;
    }
}

static int gsp_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                   struct dlas_profile *prof)
{
    const struct gsp_state *s = state;
    if (!s || batch < 0 || (batch && (!in || !out || !ws)))
        return dlas_error(DLAS_ERR_INVALID,
                          NAME ": run() needs state, input, output and workspace");
    if (!batch)
        return DLAS_OK;
    const struct dlas_conv_desc *d = &s->d;
    int t = pc_threads(&s->be);
    if (t > s->threads)
        t = s->threads; /* per-thread buffers were sized in prepare() */
    float *buf = ws;
    double t0 = prof ? pc_now(&s->be) : 0;
    const int64_t pairs = batch * d->groups;
    if (per_group_mode(s, batch, t)) {
        if (t <= 1)
            per_group(s, in, out, buf, 0, pairs);
        else {
#pragma omp parallel num_threads(t)
            {
                int id = omp_get_thread_num(), nt = omp_get_num_threads();
                int64_t b, e;
                pc_split(pairs, id, nt, &b, &e);
                per_group(s, in, out, buf + id * s->cpg * s->plane, b, e);
            }
        }
        if (prof)
            pc_prof_add(prof, "pack+compute", pc_now(&s->be) - t0);
        return DLAS_OK;
    }
    const int64_t planes = batch * d->in_c, ihw = d->in_h * d->in_w;
    const int64_t items = pairs * s->n_ob * d->out_h;
    double t1 = 0;
#pragma omp parallel num_threads(t) if (t > 1)
    {
        int id = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t b, e;
        pc_split(planes, id, nt, &b, &e);
        for (int64_t k = b; k < e; k++)
            pack_plane(s, in + k * ihw, buf + k * s->plane);
#pragma omp barrier
        if (prof && id == 0)
            t1 = pc_now(&s->be);
        pc_split(items, id, nt, &b, &e);
        global_items(s, buf, out, b, e);
    }
    if (prof) {
        pc_prof_add(prof, "pack", t1 - t0);
        pc_prof_add(prof, "compute", pc_now(&s->be) - t1);
    }
    return DLAS_OK;
}

static const struct dlas_primitive_ops gsp_ops = {
    sizeof(struct dlas_primitive_ops),
    "conv2d",
    "cpu",
    gsp_supports,
    gsp_prepare,
    gsp_workspace,
    gsp_run,
    gsp_release,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "grouped and depthwise convolution: each group packed on its own, vectorised along "
     "output columns with output channels of the group blocked in registers",
     "P. Gibson, J. Cano, J. Turner, E. J. Crowley, M. O'Boyle, A. Storkey. Optimizing "
     "Grouped Convolutions on Edge Devices. ASAP 2020",
     gsp_params, &gsp_ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "grouped spatial pack convolution (grouped, depthwise)", components)
