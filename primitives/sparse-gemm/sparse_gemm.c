/* Primitive "sparse-gemm": the convolution as a sparse x dense matrix
 * product, CSR weights (out_c x in_c/groups*kh*kw) times the im2col'd input
 * (in_c/groups*kh*kw x out_h*out_w), vectorised along the spatial
 * dimension: the GEMM-side counterpart of sparse-direct. Liu et al. (CVPR
 * 2015) run their sparse networks this way, and it is the sparse-matrix x
 * dense-matrix (SpMDM) baseline Park et al. (ICLR 2017) measure direct
 * sparse convolution against.
 *
 * The input is lowered in column bands (a band of output positions, every
 * row of the im2col matrix that some output channel of the group still
 * uses) sized to stay in the L2 cache; each output channel's sparse row is
 * then multiplied with the band by the micro-kernel of primitives/common/
 * sparse.h: up to 28 vectors of 16 output positions in registers, per
 * non-zero one broadcast and one FMA per vector. Rows of the im2col matrix
 * that no output channel uses (input channels or taps pruned in every
 * filter) are never lowered. */
#include <string.h>

#include "../common/prim_common.h"
#include "../common/sparse.h"

#define NAME "sparse-gemm"
#define DEFAULT_MAX_V 24
/* bytes of one im2col band that should stay in L2 (1 MiB a core on Zen 4) */
#define BAND_BYTES (512 * 1024)
#define MIN_BAND 64 /* columns: below 4 vectors the kernel's overhead dominates */
#define MAX_BAND 4096

struct sg_state {
    struct pc_conv conv; /* host, be, d, cpg, opg */
    int64_t K, P;           /* K = cpg*kh*kw, P = out_h*out_w */
    int64_t bw, n_band;     /* band columns (a multiple of 16), bands per image */
    int v;                  /* vectors of one kernel call */
    int threads;            /* band buffers in the workspace */
    int64_t *used;          /* [g][K]: im2col rows of group g in use, in order */
    int64_t *n_used;        /* [g] */
    int64_t max_used;
    struct sc_csr csr;
    float *bias;
};

static const struct dlas_param_spec sg_params[] = {
    {"band", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, MAX_BAND, NULL,
     "output positions of one im2col band (rounded up to 16); 0 = as many as keep the "
     "band within 512 KiB (at least 64, at most the output plane)"},
    {"vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, SC_MAX_V, NULL,
     "vectors of 16 output positions held in registers per kernel call; 0 = as even blocks "
     "of at most 24 as cover a band"},
    SC_MIN_SPARSITY_PARAM,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int64_t band_columns(const struct dlas_conv_desc *d, const struct dlas_params *p)
{
    const int64_t K = d->in_c / d->groups * d->kh * d->kw, P = d->out_h * d->out_w;
    int64_t bw = p ? dlas_param_int(p, "band") : 0;
    if (bw <= 0) {
        bw = BAND_BYTES / (K * (int64_t)sizeof(float));
        bw = bw < MIN_BAND ? MIN_BAND : bw;
    }
    bw = pc_round_up(bw, PC_VL);
    return bw < pc_round_up(P, PC_VL) ? bw : pc_round_up(P, PC_VL);
}

/* ---- supports, prepare --------------------------------------------------------- */

static int sg_supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                       size_t len)
{
    int rc = sc_check_sparsity(NAME, d, p, why, len);
    if (rc)
        return rc;
    const int64_t K = d->in_c / d->groups * d->kh * d->kw;
    if (K * band_columns(d, p) > INT32_MAX)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "an im2col band (%lld rows) exceeds the 32-bit offsets of the sparse rows",
                       (long long)K);
    return DLAS_OK;
}

static void sg_release(void *state)
{
    struct sg_state *s = state;
    if (!s)
        return;
    sc_csr_free(s->conv.host, &s->csr);
    s->conv.host->free(s->used);
    s->conv.host->free(s->n_used);
    s->conv.host->free(s->bias);
    pc_conv_free(&s->conv);
}

/* A weight's offset: its im2col row's place among the rows its group uses,
 * times the band stride. */
struct off_ctx {
    const struct sg_state *s;
    int32_t *slot; /* [g][K]: place among the used rows */
};

static int32_t sg_offset(const void *ctx, int64_t oc, int64_t ic, int ky, int kx)
{
    const struct off_ctx *c = ctx;
    const struct sg_state *s = c->s;
    const int64_t g = oc / s->conv.opg, k = (ic * s->conv.d.kh + ky) * s->conv.d.kw + kx;
    return (int32_t)(c->slot[g * s->K + k] * s->bw);
}

static int sg_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                      const struct dlas_conv_desc *d, const float *weight, const float *bias,
                      const struct dlas_params *p, void **state)
{
    *state = NULL;
    int rc = pc_check_prepare(NAME, be, d, weight, bias);
    if (rc || (rc = sg_supports(d, p, NULL, 0)))
        return rc;
    struct sg_state *s = pc_conv_alloc(NAME, host, be, d, sizeof *s);
    if (!s)
        return DLAS_ERR_NOMEM;
    s->K = s->conv.cpg * d->kh * d->kw;
    s->P = d->out_h * d->out_w;
    s->bw = band_columns(d, p);
    s->n_band = pc_ceil_div(s->P, s->bw);
    int v = p ? (int)dlas_param_int(p, "vectors") : 0;
    const int64_t band_vec = s->bw / PC_VL;
    s->v = v > 0 ? (v < band_vec ? v : (int)band_vec) : sc_even_block(band_vec, DEFAULT_MAX_V);
    s->threads = pc_threads(be);

    /* the im2col rows each group uses */
    s->used = host->alloc((size_t)(d->groups * s->K) * sizeof *s->used);
    s->n_used = host->alloc((size_t)d->groups * sizeof *s->n_used);
    int32_t *slot = host->alloc((size_t)(d->groups * s->K) * sizeof *slot);
    if (!s->used || !s->n_used || !slot) {
        host->free(slot);
        sg_release(s);
        return dlas_error(DLAS_ERR_NOMEM, NAME ": cannot allocate the row map");
    }
    for (int64_t g = 0; g < d->groups; g++) {
        int64_t n = 0;
        for (int64_t k = 0; k < s->K; k++) {
            int in_use = 0;
            for (int64_t oc = g * s->conv.opg; oc < (g + 1) * s->conv.opg && !in_use; oc++)
                in_use = weight[oc * s->K + k] != 0.0f;
            slot[g * s->K + k] = in_use ? (int32_t)n : -1;
            if (in_use)
                s->used[g * s->K + n++] = k;
        }
        s->n_used[g] = n;
        s->max_used = n > s->max_used ? n : s->max_used;
    }
    struct off_ctx oc = {s, slot};
    rc = sc_csr_build(host, weight, d->out_c, s->conv.cpg, d->kh, d->kw, sg_offset, &oc, &s->csr);
    host->free(slot);
    if (rc) {
        sg_release(s);
        return dlas_error(rc, NAME ": %s", dlas_last_error());
    }
    if ((rc = pc_conv_bias(&s->conv, NAME, bias, s->conv.opg, &s->bias))) {
        sg_release(s);
        return rc;
    }
    *state = s;
    return DLAS_OK;
}

/* floats of one thread's band buffer (at least one row, so never empty) */
static int64_t band_floats(const struct sg_state *s)
{
    return (s->max_used ? s->max_used : 1) * s->bw;
}

static size_t sg_workspace(void *state, int64_t batch)
{
    const struct sg_state *s = state;
    return batch > 0 ? (size_t)(s->threads * band_floats(s)) * sizeof(float) : 0;
}

/* ---- run ------------------------------------------------------------------------- */

struct run_ctx {
    const struct sg_state *s;
    int64_t batch;
    const float *in;
    float *out;
    float *ws;
    int64_t n_part, part; /* output channels of a group in n_part parts of `part` */
};

/* Lower output positions [p0, p0 + np) of image/group src for the group's
 * used rows into band (rows bw apart; columns past np zeroed). */
static void lower_band(const struct sg_state *s, int64_t g, const float *src, int64_t p0,
                       int64_t np, float *band)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t ow_n = d->out_w, taps = (int64_t)d->kh * d->kw;
    const int sw = d->stride_w;
    for (int64_t j = 0; j < s->n_used[g]; j++) {
        const int64_t k = s->used[g * s->K + j];
        const int64_t ic = k / taps, ky = (k % taps) / d->kw, kx = k % d->kw;
        const float *plane = src + ic * d->in_h * d->in_w;
        float *row = band + j * s->bw;
        /* output columns whose input column is inside the image */
        const int64_t first = d->pad_w - kx * d->dil_w;
        int64_t lo, hi;
        pc_span(first, d->in_w + first, sw, ow_n, &lo, &hi);
        for (int64_t p = p0; p < p0 + np;) {
            const int64_t oh = p / ow_n, ow0 = p % ow_n;
            const int64_t ow1 = ow_n - ow0 < p0 + np - p ? ow_n : ow0 + (p0 + np - p);
            float *o = row + (p - p0);
            const int64_t ih = oh * d->stride_h - d->pad_h + ky * d->dil_h;
            if (ih < 0 || ih >= d->in_h) {
                memset(o, 0, (size_t)(ow1 - ow0) * sizeof(float));
            } else {
                /* output column ow reads image column ow*sw - first */
                const float *irow = plane + ih * d->in_w;
                int64_t a = ow0 > lo ? ow0 : lo, b = ow1 < hi ? ow1 : hi;
                if (a > b)
                    a = b = ow0;
                if (a > ow0)
                    memset(o, 0, (size_t)(a - ow0) * sizeof(float));
                if (sw == 1)
                    memcpy(o + (a - ow0), irow + (a - first), (size_t)(b - a) * sizeof(float));
                else
                    for (int64_t ow = a; ow < b; ow++)
                        o[ow - ow0] = irow[ow * sw - first];
                if (b < ow1)
                    memset(o + (b - ow0), 0, (size_t)(ow1 - b) * sizeof(float));
            }
            p += ow1 - ow0;
        }
        if (np < s->bw)
            memset(row + np, 0, (size_t)(s->bw - np) * sizeof(float));
    }
}

/* Items: (image, group, band, part of the group's output channels); each
 * thread lowers its bands into its own buffer. */
static void compute_team(const void *ctx, const float *packed, int id, int nt)
{
    (void)packed; /* nothing packed before: each thread lowers its own bands */
    const struct run_ctx *c = ctx;
    const struct sg_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    float tile[SC_MAX_V * PC_VL] __attribute__((aligned(64)));
    float *band = c->ws + id * band_floats(s);
    const int64_t per_ig = s->n_band * c->n_part;
    int64_t i0, i1;
    pc_split(c->batch * d->groups * per_ig, id, nt, &i0, &i1);
    const int64_t *ptr = s->csr.ptr;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t ig = it / per_ig, k = it % per_ig, bi = k / c->n_part, part = k % c->n_part;
        const int64_t n = ig / d->groups, g = ig % d->groups;
        const int64_t p0 = bi * s->bw, np = s->P - p0 < s->bw ? s->P - p0 : s->bw;
        lower_band(s, g, c->in + (n * d->in_c + g * s->conv.cpg) * d->in_h * d->in_w, p0, np, band);
        int64_t oc0 = g * s->conv.opg + part * c->part;
        int64_t oc1 = oc0 + c->part < (g + 1) * s->conv.opg ? oc0 + c->part : (g + 1) * s->conv.opg;
        const int64_t nvec = pc_ceil_div(np, PC_VL);
        for (int64_t oc = oc0; oc < oc1; oc++) {
            float *dst = c->out + (n * d->out_c + oc) * s->P + p0;
            struct sc_kargs a;
            memset(&a, 0, sizeof a);
            a.nz = s->csr.nz + ptr[oc];
            a.nnz = ptr[oc + 1] - ptr[oc];
            a.bias = s->bias ? s->bias[oc] : 0.0f;
            a.act = d->activation;
            for (int64_t v0 = 0; v0 < nvec; v0 += s->v) {
                const int vn = nvec - v0 < s->v ? (int)(nvec - v0) : s->v;
                const int64_t q0 = v0 * PC_VL, q1 = q0 + vn * PC_VL;
                a.x = band + q0;
                /* a full block goes straight to the output; the last one
                 * through the tile, so nothing is written past the plane */
                a.dst = q1 <= np ? dst + q0 : tile;
                sc_kernel(vn)(&a);
                if (q1 > np)
                    memcpy(dst + q0, tile, (size_t)(np - q0) * sizeof(float));
            }
        }
    }
}

static int sg_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                  struct dlas_profile *prof)
{
    const struct sg_state *s = state;
    int rc = pc_check_run(NAME, s, batch, in, out, ws);
    if (rc || !batch)
        return rc;
    const struct dlas_conv_desc *d = &s->conv.d;
    /* split a group's output channels only when the bands alone leave
     * threads without a few items (each part lowers its band again) */
    const int64_t want = 2 * (int64_t)s->threads, have = batch * d->groups * s->n_band;
    int64_t n_part = have >= want ? 1 : pc_ceil_div(want, have);
    if (n_part > s->conv.opg)
        n_part = s->conv.opg;
    const int64_t part = pc_ceil_div(s->conv.opg, n_part);
    struct run_ctx c = {s, batch, in, out, ws, pc_ceil_div(s->conv.opg, part), part};
    struct pc_phases ph = {&c, NULL, 0, 0, 0, NULL, NULL, compute_team, "lower+multiply"};
    pc_run_phases(&s->conv.be, s->threads, &ph, prof);
    return DLAS_OK;
}

static const struct dlas_primitive_ops sg_ops =
    PRIM_CONV_OPS("cpu", sg_supports, sg_prepare, sg_workspace, sg_run, sg_release);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "sparse x dense GEMM: CSR weights times column bands of the im2col'd input, vectorised "
     "along the output positions (AVX-512 when the CPU has it); any stride, padding, "
     "dilation, groups",
     "B. Liu, M. Wang, H. Foroosh, M. Tappen, M. Pensky. Sparse Convolutional Neural "
     "Networks. CVPR 2015 (sparse x dense product of the lowered input; the SpMDM baseline of "
     "Park et al., ICLR 2017)",
     sg_params, &sg_ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "sparse x dense GEMM convolution (CSR x im2col)", components)
