/* Primitive "grouped-spatial-pack": grouped and depthwise convolutions as in
 * Grouped Spatial Pack Convolutions (Gibson, Cano, Turner, Crowley, O'Boyle,
 * Storkey, "Optimizing Grouped Convolutions on Edge Devices", ASAP 2020).
 *
 * GEMM-based primitives run a grouped layer as `groups` tiny GEMMs whose
 * shapes (out/groups x in/groups*k*k x pixels) defeat blocking, and
 * vectorising over output channels leaves the lanes of a depthwise layer
 * empty. Here each group is packed on its own: its input channels into
 * zero-padded planes whose rows and columns are split into stride phases, so
 * that every tap of every output position is one constant offset away, and
 * its weights once in prepare() as [group][channel block][in channel][tap]
 * [OCB]. The micro-kernel vectorises along the group's output grid (the
 * output laid over the packed planes' pitch, 16 positions per vector, NV
 * vectors; a vector may span output rows, so small maps still fill the
 * lanes) and blocks OCB output channels of the group in registers,
 * broadcasting each weight; the grid's rows are then copied out, dropping
 * the columns past the output width.
 *
 * Threading: one OpenMP region per run(). Each thread takes whole groups
 * (depthwise layers have hundreds): it packs a group into its own buffer,
 * which stays in L1/L2, and computes it at once. With fewer (image, group)
 * pairs than threads, each group's channel blocks are shared out as well,
 * every thread packing the group's planes for itself. */
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "gsp.h"
#include "../../core/kernels/eltwise.h"

#define NAME "grouped-spatial-pack"

struct gsp_state {
    struct pc_conv conv; /* host, be, d, cpg, opg */
    int64_t n_ob;
    int ocb, nv;
    int64_t hq, wq;  /* a phase plane: hq rows x wq columns */
    int64_t plane;   /* floats of one packed channel (all phases, slack) */
    int64_t grid;    /* out_h * wq positions, rounded up to whole blocks */
    int threads;
    int64_t *tap_off;
    float *w;    /* [g][ob][c][tap][ocb] */
    float *bias; /* [g][ob][ocb] or NULL */
    /* depthwise vectorised over channels (chan = 1) */
    int chan, p;              /* p: pixels per kernel call */
    int pw;                   /* 1x1, stride 1, unpadded: the input planes are used as they are */
    int rows;                 /* depthwise straight from NCHW rows */
    struct pc_window win;     /* the whole padded image, channel-blocked */
    int64_t nblk;             /* 16-channel blocks */
    int64_t *dw_off;          /* taps in the blocked layout */
    float *dw_w;              /* [blk][tap][16] */
    float *dw_b;              /* [blk][16] or NULL */
};

static const struct dlas_param_spec gsp_params[] = {
    {"oc_block", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 8, NULL,
     "output channels of a group computed together (OCB); 0 = chosen from the group size"},
    {"vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 4, NULL,
     "vectors of 16 output positions per block (NV); 0 = chosen from the map size; "
     "oc_block * vectors <= 28"},
    {"vectorize", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|grid|channels|rows",
     "what a vector holds: 16 positions of the packed output grid of one channel (grid); one "
     "position of 16 channels (channels); 16 output columns read straight from the NCHW "
     "rows, padding masked, no packing (rows: stride 1 or 2, no dilation). channels and rows "
     "need a depthwise layer with one output per input channel; auto picks channels for such "
     "layers with at least 16 channels, grid otherwise"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

enum vec { VEC_GRID = 0, VEC_CHANNELS, VEC_ROWS, VEC_REFUSED };

/* How a layer is vectorised (see the `vectorize` parameter); VEC_REFUSED
 * when the parameter asks for a path the layer cannot take. */
static enum vec vec_path(const struct dlas_conv_desc *d, const struct dlas_params *p)
{
    const char *v = p ? dlas_param_str(p, "vectorize") : NULL;
    int depthwise = d->groups > 1 && d->in_c == d->groups && d->out_c == d->groups;
    int rows_ok = depthwise && d->stride_h <= 2 && d->stride_w <= 2 && d->dil_h == 1 &&
                  d->dil_w == 1 && d->kw <= 8;
#if !defined(__AVX512F__)
    rows_ok = 0; /* the row path is written with AVX-512 masked loads */
#endif
    if (v && !strcmp(v, "grid"))
        return VEC_GRID;
    if (v && !strcmp(v, "channels"))
        return depthwise ? VEC_CHANNELS : VEC_REFUSED;
    if (v && !strcmp(v, "rows"))
        return rows_ok ? VEC_ROWS : VEC_REFUSED;
    /* rows avoids the transpositions but measured 2-4x slower than
     * channels on every MobileNet-v2 depthwise layer here: only on request */
    return depthwise && d->groups >= PC_VL ? VEC_CHANNELS : VEC_GRID;
}

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
        int64_t grid = d->out_h * (d->out_w + (int64_t)(d->kw - 1) * d->dil_w / d->stride_w);
        int64_t want = pc_ceil_div(grid, PC_VL);
        /* accumulators the registers hold beside the NV inputs and the
         * broadcast weight: 28 zmm; with AVX2 (the kernels run each half
         * of a vector in turn) 15 ymm less the inputs */
        int cap = PC_NH == 1 ? 28 / *ocb : 15 / (*ocb + 1);
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
#if !defined(__AVX512F__)
    const char *vz = p ? dlas_param_str(p, "vectorize") : NULL;
    if (vz && !strcmp(vz, "rows"))
        return pc_fail(NAME, why, len, DLAS_ERR_UNAVAILABLE,
                       "vectorize = rows is written with AVX-512 masked loads; this build has "
                       "no AVX-512 (configure without --disable-native on such a CPU)");
#endif
    if (vec_path(d, p) == VEC_REFUSED)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "vectorize = %s needs a depthwise layer with one output per input "
                       "channel (this one has %lld in and %lld out per group)%s",
                       dlas_param_str(p, "vectorize"), (long long)(d->in_c / d->groups),
                       (long long)(d->out_c / d->groups),
                       strcmp(dlas_param_str(p, "vectorize"), "rows")
                           ? ""
                           : ", stride 1 or 2, no dilation, kernels up to 8 wide and an "
                             "AVX-512 build");
    int ocb, nv;
    return choose(d, p, &ocb, &nv, why, len);
}

static void gsp_release(void *state)
{
    struct gsp_state *s = state;
    if (!s)
        return;
    s->conv.host->free(s->tap_off);
    s->conv.host->free(s->w);
    s->conv.host->free(s->bias);
    s->conv.host->free(s->dw_off);
    s->conv.host->free(s->dw_w);
    s->conv.host->free(s->dw_b);
    pc_conv_free(&s->conv);
}

/* The channel-blocked depthwise layout: weights [blk][tap][16], bias
 * [blk][16], taps into the packed image (as `direct` packs it). */
static int prepare_channels(struct gsp_state *s, const float *weight, const float *bias)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const struct dlas_host *host = s->conv.host;
    const int taps = d->kh * d->kw;
    s->nblk = pc_ceil_div(d->in_c, PC_VL);
    /* AVX2: 14 accumulator ymm, the weight and a spare (pc_kernels.h) */
    int64_t n = pc_ceil_div(d->out_w, PC_NH == 1 ? GSP_DW_MAX_P : 14);
    s->p = (int)pc_ceil_div(d->out_w, n);
    s->dw_off = host->alloc((size_t)taps * sizeof *s->dw_off);
    s->dw_w = host->alloc((size_t)(s->nblk * taps * PC_VL) * sizeof(float));
    if (d->has_bias)
        s->dw_b = host->alloc((size_t)(s->nblk * PC_VL) * sizeof(float));
    if (!s->dw_off || !s->dw_w || (d->has_bias && !s->dw_b))
        return dlas_error(DLAS_ERR_NOMEM, NAME ": cannot allocate packed weights");
    pc_direct_window(d, &s->win, s->dw_off);
    for (int64_t b = 0; b < s->nblk; b++)
        for (int t = 0; t < taps; t++)
            for (int l = 0; l < PC_VL; l++) {
                int64_t c = b * PC_VL + l;
                s->dw_w[(b * taps + t) * PC_VL + l] = c < d->in_c ? weight[c * taps + t] : 0.0f;
            }
    if (d->has_bias)
        for (int64_t k = 0; k < s->nblk * PC_VL; k++)
            s->dw_b[k] = k < d->out_c ? bias[k] : 0.0f;
    return DLAS_OK;
}

static int gsp_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                       const struct dlas_conv_desc *d, const float *weight, const float *bias,
                       const struct dlas_params *p, void **state)
{
    *state = NULL;
    int ocb, nv;
    int rc = pc_check_prepare(NAME, be, d, weight, bias);
    if (rc || (rc = gsp_supports(d, p, NULL, 0)) || (rc = choose(d, p, &ocb, &nv, NULL, 0)))
        return rc;
    struct gsp_state *s = pc_conv_alloc(NAME, host, be, d, sizeof *s);
    if (!s)
        return DLAS_ERR_NOMEM;
    s->ocb = ocb;
    s->nv = nv;
    s->n_ob = pc_ceil_div(s->conv.opg, ocb);
    s->threads = pc_threads(be);
    const int sh = d->stride_h, sw = d->stride_w;
    /* padded rows/columns split into stride phases both ways: tap (ky, kx)
     * of output (oh, ow) is phase ((ky dh) % sh, (kx dw) % sw), position
     * (oh + ky dh / sh, ow + kx dw / sw) */
    s->hq = pc_ceil_div(d->in_h + 2 * (int64_t)d->pad_h, sh);
    int64_t need = d->out_h + (int64_t)(d->kh - 1) * d->dil_h / sh;
    if (need > s->hq)
        s->hq = need;
    s->wq = pc_ceil_div(d->in_w + 2 * (int64_t)d->pad_w, sw);
    need = d->out_w + (int64_t)(d->kw - 1) * d->dil_w / sw;
    if (need > s->wq)
        s->wq = need;
    s->grid = pc_round_up(d->out_h * s->wq, (int64_t)PC_VL * nv);
    /* the last block's vectors read past the last phase plane by at most a
     * row and a block */
    s->plane = pc_round_up((int64_t)sh * sw * s->hq * s->wq + s->wq + (int64_t)PC_VL * nv, PC_VL);

    const int taps = d->kh * d->kw;
    s->tap_off = host->alloc((size_t)taps * sizeof *s->tap_off);
    size_t wn = (size_t)(d->groups * s->n_ob * s->conv.cpg * taps * ocb);
    s->w = host->alloc(wn * sizeof(float));
    if (!s->tap_off || !s->w) {
        gsp_release(s);
        return dlas_error(DLAS_ERR_NOMEM, NAME ": cannot allocate %zu packed weights", wn);
    }
    if ((rc = pc_conv_bias(&s->conv, NAME, bias, s->n_ob * ocb, &s->bias))) {
        gsp_release(s);
        return rc;
    }
    for (int ky = 0; ky < d->kh; ky++)
        for (int kx = 0; kx < d->kw; kx++) {
            int64_t r = (int64_t)ky * d->dil_h, c = (int64_t)kx * d->dil_w;
            s->tap_off[ky * d->kw + kx] =
                (((r % sh) * sw + c % sw) * s->hq + r / sh) * s->wq + c / sw;
        }
    float *o = s->w;
    for (int64_t g = 0; g < d->groups; g++)
        for (int64_t ob = 0; ob < s->n_ob; ob++)
            for (int64_t c = 0; c < s->conv.cpg; c++)
                for (int t = 0; t < taps; t++)
                    for (int k = 0; k < ocb; k++) {
                        int64_t oc = ob * ocb + k;
                        *o++ = oc < s->conv.opg
                                   ? weight[((g * s->conv.opg + oc) * s->conv.cpg + c) * taps + t]
                                   : 0.0f;
                    }
    enum vec vp = vec_path(d, p);
    s->chan = vp == VEC_CHANNELS;
    s->rows = vp == VEC_ROWS;
    if (s->chan && (rc = prepare_channels(s, weight, bias))) {
        gsp_release(s);
        return rc;
    }
    /* a pointwise layer's NCHW input already is the packed layout (no
     * padding, no phases, pitch = width): read it in place */
    s->pw = !s->chan && !s->rows && d->kh == 1 && d->kw == 1 && sh == 1 && sw == 1 &&
            d->pad_h == 0 && d->pad_w == 0;
    *state = s;
    return DLAS_OK;
}

/* per thread: the group's packed planes, then its grid of OCB channels;
 * pointwise: a block of every input channel (the last, partial one) and a
 * block of OCB outputs */
static int64_t thread_floats(const struct gsp_state *s)
{
    if (s->pw)
        return (s->conv.cpg + s->ocb) * s->nv * PC_VL;
    return s->conv.cpg * s->plane + s->ocb * s->grid;
}

static size_t gsp_workspace(void *state, int64_t batch)
{
    const struct gsp_state *s = state;
    if (batch <= 0)
        return 0;
    if (s->rows)
        return 0;
    if (s->chan)
        return (size_t)(s->threads * pc_window_block(&s->win)) * sizeof(float);
    return (size_t)(s->threads * thread_floats(s)) * sizeof(float);
}

#if defined(__AVX512F__)
/* Phase rows of one input row: dst[rx][q] = padded row[q * sw + rx] for q <
 * wq, rx < sw (sw 1 or 2), read with masked loads so the padding costs no
 * branches and no library calls. `in` is the image row (in_w floats). */
static void phase_row(const float *in, int64_t in_w, int pad_w, int sw, float *dst,
                      int64_t dst_stride, int64_t wq)
{
    for (int64_t q0 = 0; q0 < wq; q0 += PC_VL) {
        int64_t nq = wq - q0 < PC_VL ? wq - q0 : PC_VL;
        __mmask16 mq = (__mmask16)((1u << nq) - 1u);
        if (sw == 1) {
            /* image column of lane l: q0 + l - pad_w */
            int64_t lo = pad_w - q0, hi = in_w + pad_w - q0; /* valid lanes [lo, hi) */
            lo = lo < 0 ? 0 : lo > PC_VL ? PC_VL : lo;
            hi = hi < lo ? lo : hi > PC_VL ? PC_VL : hi;
            __mmask16 m = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
            __m512 v = _mm512_maskz_loadu_ps(m, in + q0 - pad_w);
            _mm512_mask_storeu_ps(dst + q0, mq, v);
            continue;
        }
        /* 32 padded columns 2 q0 .. 2 q0 + 31, image column c - pad_w */
        __m512 v[2];
        for (int k = 0; k < 2; k++) {
            int64_t c0 = 2 * q0 + 16 * k;
            int64_t lo = pad_w - c0, hi = in_w + pad_w - c0;
            lo = lo < 0 ? 0 : lo > PC_VL ? PC_VL : lo;
            hi = hi < lo ? lo : hi > PC_VL ? PC_VL : hi;
            __mmask16 m = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
            v[k] = _mm512_maskz_loadu_ps(m, in + c0 - pad_w);
        }
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
                                               26, 28, 30);
        const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                              29, 31);
        _mm512_mask_storeu_ps(dst + q0, mq, _mm512_permutex2var_ps(v[0], even, v[1]));
        _mm512_mask_storeu_ps(dst + dst_stride + q0, mq, _mm512_permutex2var_ps(v[0], odd, v[1]));
    }
}
#endif

/* One input channel: zero-padded, rows and columns split into stride
 * phases (see gsp_prepare); the slack after it zero too. */
static void pack_plane(const struct gsp_state *s, const float *src, float *dst)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int sh = d->stride_h, sw = d->stride_w;
    const int64_t hq = s->hq, wq = s->wq, phase = hq * wq;
#if defined(__AVX512F__)
    if (sw <= 2) {
        for (int64_t r = 0; r < sh * hq; r++) {
            int ry = (int)(r % sh);
            float *row = dst + (int64_t)ry * sw * phase + r / sh * wq;
            int64_t ih = r - d->pad_h;
            if (ih < 0 || ih >= d->in_h) {
                for (int rx = 0; rx < sw; rx++)
                    for (int64_t q = 0; q < wq; q += PC_VL)
                        _mm512_mask_storeu_ps(
                            row + rx * phase + q,
                            (__mmask16)((1u << (wq - q < PC_VL ? wq - q : PC_VL)) - 1u),
                            _mm512_setzero_ps());
                continue;
            }
            phase_row(src + ih * d->in_w, d->in_w, d->pad_w, sw, row, phase, wq);
        }
        int64_t used = (int64_t)sh * sw * phase;
        memset(dst + used, 0, (size_t)(s->plane - used) * sizeof(float));
        return;
    }
#endif
    for (int ry = 0; ry < sh; ry++)
        for (int rx = 0; rx < sw; rx++) {
            float *ph = dst + ((int64_t)ry * sw + rx) * phase;
            /* columns q whose image column q*sw + rx - pad_w is inside */
            int64_t qlo, qhi;
            pc_span(d->pad_w - rx, d->in_w + d->pad_w - rx, sw, wq, &qlo, &qhi);
            for (int64_t qy = 0; qy < hq; qy++) {
                float *row = ph + qy * wq;
                int64_t ih = qy * sh + ry - d->pad_h;
                if (ih < 0 || ih >= d->in_h || qhi == qlo) {
                    memset(row, 0, (size_t)wq * sizeof(float));
                    continue;
                }
                const float *in = src + ih * d->in_w + qlo * sw + rx - d->pad_w;
                /* the pads are a few floats: loops, not library calls */
                for (int64_t q = 0; q < qlo; q++)
                    row[q] = 0.0f;
                for (int64_t q = 0; q < qhi - qlo; q++)
                    row[qlo + q] = in[q * sw];
                for (int64_t q = qhi; q < wq; q++)
                    row[q] = 0.0f;
            }
        }
    int64_t used = (int64_t)sh * sw * phase;
    memset(dst + used, 0, (size_t)(s->plane - used) * sizeof(float));
}

/* out[0, n) = grid[0, n): rows of an output channel, a few floats each on
 * small maps, where a library call would cost more than the copy */
static inline void copy_row(float *out, const float *grid, int64_t n)
{
#if defined(__AVX512F__)
    for (int64_t i = 0; i < n; i += PC_VL) {
        __mmask16 m = (__mmask16)((1u << (n - i < PC_VL ? n - i : PC_VL)) - 1u);
        _mm512_mask_storeu_ps(out + i, m, _mm512_maskz_loadu_ps(m, grid + i));
    }
#else
    memcpy(out, grid, (size_t)n * sizeof(float));
#endif
}

/* Channel blocks [ob0, ob1) of group g of image n, from its packed planes;
 * grid is this thread's OCB x grid buffer. */
static void compute(const struct gsp_state *s, const float *planes, float *grid, int64_t n,
                    int64_t g, int64_t ob0, int64_t ob1, const float *res, float *out)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t ohw = d->out_h * d->out_w, span = (int64_t)s->nv * PC_VL;
    const gsp_kernel_fn kern = gsp_kernel(s->ocb, s->nv);
    struct gsp_kargs a;
    a.tap_off = s->tap_off;
    a.ntaps = d->kh * d->kw;
    a.cpg = (int)s->conv.cpg;
    a.act = res ? DLAS_ACT_NONE : d->activation; /* after the residual, below */
    a.plane = s->plane;
    a.out_cs = s->grid;
    for (int64_t ob = ob0; ob < ob1; ob++) {
        int64_t oc0 = ob * s->ocb;
        int nout = s->conv.opg - oc0 < s->ocb ? (int)(s->conv.opg - oc0) : s->ocb;
        a.w = s->w + (g * s->n_ob + ob) * s->conv.cpg * a.ntaps * s->ocb;
        a.bias = s->bias ? s->bias + (g * s->n_ob + ob) * s->ocb : NULL;
        for (int64_t p0 = 0; p0 < s->grid; p0 += span) {
            a.in = planes + p0;
            a.out = grid + p0;
            kern(&a);
        }
        /* the grid's columns past out_w are discarded; a residual is added
         * (then the activation) on the way out, each element read just
         * before it is written: res may be out itself */
        const int64_t at = (n * d->out_c + g * s->conv.opg + oc0) * ohw;
        for (int o = 0; o < nout; o++)
            for (int64_t oh = 0; oh < d->out_h; oh++) {
                const int64_t y = at + o * ohw + oh * d->out_w;
                const float *row = grid + o * s->grid + oh * s->wq;
                if (res)
                    ew_add(out + y, row, res + y, d->out_w, d->activation);
                else
                    copy_row(out + y, row, d->out_w);
            }
    }
}

/* Pointwise: pixel blocks [b0, b1) of group g of image n, every channel
 * block, straight from and to NCHW. Blocks outermost, so a block of the
 * input stays in L1 while every output channel of the group is made from
 * it. The last, partial block goes through buf (a zero-padded copy). */
static void compute_pw(const struct gsp_state *s, const float *in, float *buf, int64_t n,
                       int64_t g, int64_t b0, int64_t b1, const float *res, float *out)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t hw = d->out_h * d->out_w, span = (int64_t)s->nv * PC_VL;
    const int64_t full = hw / span;
    const gsp_kernel_fn kern = gsp_kernel(s->ocb, s->nv);
    const float *planes = in + (n * d->in_c + g * s->conv.cpg) * hw;
    float *tail = buf, *grid = buf + s->conv.cpg * span;
    struct gsp_kargs a;
    a.tap_off = s->tap_off; /* one tap, offset 0 */
    a.ntaps = 1;
    a.cpg = (int)s->conv.cpg;
    a.act = res ? DLAS_ACT_NONE : d->activation; /* after the residual, below */
    for (int64_t blk = b0; blk < b1; blk++) {
        const int64_t p0 = blk * span;
        const int64_t np = hw - p0 < span ? hw - p0 : span;
        if (blk < full) {
            a.in = planes + p0;
            a.plane = hw;
        } else {
            for (int64_t c = 0; c < s->conv.cpg; c++) {
                memcpy(tail + c * span, planes + c * hw + p0, (size_t)np * sizeof(float));
                memset(tail + c * span + np, 0, (size_t)(span - np) * sizeof(float));
            }
            a.in = tail;
            a.plane = span;
        }
        for (int64_t ob = 0; ob < s->n_ob; ob++) {
            int64_t oc0 = ob * s->ocb;
            int nout = s->conv.opg - oc0 < s->ocb ? (int)(s->conv.opg - oc0) : s->ocb;
            const int64_t at = (n * d->out_c + g * s->conv.opg + oc0) * hw + p0;
            float *dst = out + at;
            a.w = s->w + (g * s->n_ob + ob) * s->conv.cpg * s->ocb;
            a.bias = s->bias ? s->bias + (g * s->n_ob + ob) * s->ocb : NULL;
            if (res)
                pc_prefetch_tile(res + at, nout, 1, (int)np, hw, 0);
            if (nout == s->ocb && np == span && !res) {
                a.out = dst;
                a.out_cs = hw;
                kern(&a);
                continue;
            }
            a.out = grid;
            a.out_cs = span;
            kern(&a);
            /* a residual (then the activation) on the way out of the grid, each
             * element read just before it is written: res may be out itself */
            for (int o = 0; o < nout; o++)
                if (res)
                    ew_add(dst + o * hw, grid + o * span, res + at + o * hw, np, d->activation);
                else
                    memcpy(dst + o * hw, grid + o * span, (size_t)np * sizeof(float));
        }
    }
}

/* Items [i0, i1) of (image, group, channel-block chunk); a thread packs a
 * group's planes once for consecutive items of the same group. */
static void work(const struct gsp_state *s, const float *in, const float *res, float *out,
                 float *buf, int64_t chunks, int64_t i0, int64_t i1)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t ihw = d->in_h * d->in_w;
    float *planes = buf, *grid = buf + s->conv.cpg * s->plane;
    int64_t packed = -1;
    for (int64_t i = i0; i < i1; i++) {
        int64_t ig = i / chunks, ch = i % chunks;
        int64_t n = ig / d->groups, g = ig % d->groups;
        if (ig != packed) {
            for (int64_t c = 0; c < s->conv.cpg; c++)
                pack_plane(s, in + (n * d->in_c + g * s->conv.cpg + c) * ihw,
                           planes + c * s->plane);
            packed = ig;
        }
        int64_t b, e;
        pc_split(s->n_ob, (int)ch, (int)chunks, &b, &e);
        compute(s, planes, grid, n, g, b, e, res, out);
    }
}

/* ---- the channel-blocked depthwise path ----------------------------------------- */

/* Items (image, 16-channel block): the block's padded image is packed into
 * this thread's buffer (small maps: it stays in L1) and every output row of
 * the block computed from it at once. */
static void dw_items(const struct gsp_state *s, const float *in, const float *res, float *out,
                     float *buf, int64_t i0, int64_t i1)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t ihw = d->in_h * d->in_w, ohw = d->out_h * d->out_w;
    const int64_t row_stride = d->stride_h * pc_window_rowlen(&s->win);
    float tile[GSP_DW_MAX_P * PC_VL] __attribute__((aligned(64)));
    struct gsp_dw_args a;
    a.tap_off = s->dw_off;
    a.ntaps = d->kh * d->kw;
    a.out = tile;
    for (int64_t it = i0; it < i1; it++) {
        int64_t b = it % s->nblk, n = it / s->nblk;
        int64_t nc = d->out_c - b * PC_VL < PC_VL ? d->out_c - b * PC_VL : PC_VL;
        pc_pack_window(in + (n * d->in_c + b * PC_VL) * ihw, nc, d->in_h, d->in_w, d->pad_h,
                       d->pad_w, &s->win, buf, 0, 1);
        a.w = s->dw_w + b * a.ntaps * PC_VL;
        a.bias = s->dw_b ? s->dw_b + b * PC_VL : NULL;
        const int64_t at = (n * d->out_c + b * PC_VL) * ohw;
        float *dst = out + at;
        for (int64_t oh = 0; oh < d->out_h; oh++)
            for (int64_t ow0 = 0; ow0 < d->out_w; ow0 += s->p) {
                int np = d->out_w - ow0 < s->p ? (int)(d->out_w - ow0) : s->p;
                a.in = buf + oh * row_stride + ow0 * PC_VL;
                gsp_dw_kernel(np)(&a);
                pc_scatter_tile(tile, PC_VL, 1, np, 1, np, nc, dst + oh * d->out_w + ow0,
                                res ? res + at + oh * d->out_w + ow0 : NULL, ohw, d->out_w,
                                d->activation);
            }
    }
}

/* One run's arguments for the workers of pc_run_items: each worker's buffer
 * is ws + id * per_thread floats. */
struct gsp_job {
    const struct gsp_state *s;
    const float *in;
    const float *res; /* a residual laid out as out, or NULL */
    float *out;
    float *ws;
    int64_t per_thread, blocks, chunks;
};

static void dw_job(const void *ctx, int64_t b, int64_t e, int id)
{
    const struct gsp_job *j = ctx;
    dw_items(j->s, j->in, j->res, j->out, j->ws + id * j->per_thread, b, e);
}

static int dw_run(const struct gsp_state *s, int64_t batch, const float *in, const float *res,
                  float *out, float *ws, struct dlas_profile *prof)
{
    const int64_t items = batch * s->nblk, blk = pc_window_block(&s->win);
    int t = pc_threads(&s->conv.be);
    if (t > s->threads)
        t = s->threads;
    double t0 = prof ? pc_now(&s->conv.be) : 0;
    const struct gsp_job job = {s, in, res, out, ws, blk, 0, 0};
    pc_run_items(&s->conv.be, t, items, dw_job, &job);
    if (prof)
        pc_prof_add(prof, "pack+compute", pc_now(&s->conv.be) - t0);
    return DLAS_OK;
}

/* ---- depthwise straight from NCHW rows ------------------------------------------- */

#if defined(__AVX512F__)
static inline __mmask16 lanes_in(int64_t first, int64_t n)
{
    /* lanes l with 0 <= first + l < n */
    int64_t lo = -first, hi = n - first;
    lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
    hi = hi < lo ? lo : hi > 16 ? 16 : hi;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

#define ROWS_R 4 /* output rows per band */
#define ROWS_C 2 /* vectors of 16 columns per band */

/* Channels [c0, c1) (over images x channels) of a depthwise layer, in bands
 * of ROWS_R output rows x ROWS_C vectors of 16 columns (8 independent
 * accumulators: one would serialise on the FMA latency). Each input row of
 * a band is loaded once per tap column, one masked load (stride 1) or two
 * and an even-lane permutation (stride 2), and used for every output row of
 * the band it feeds; the padding is the lanes the masks leave 0. */
static void rows_channels(const struct gsp_state *s, const float *in, const float *res,
                          float *out, int64_t c0, int64_t c1)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int sh = d->stride_h, sw = d->stride_w, kh = d->kh, kw = d->kw;
    const int64_t H = d->in_h, W = d->in_w, OH = d->out_h, OW = d->out_w;
    const int64_t npair = pc_ceil_div(OW, PC_VL * ROWS_C);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    for (int64_t nc = c0; nc < c1; nc++) {
        const int64_t c = nc % d->in_c;
        const float *x = in + nc * H * W;
        float *y = out + nc * OH * OW;
        const float *ry = res ? res + nc * OH * OW : NULL;
        /* the group's one output channel: lane 0 of its [tap][ocb] weights */
        const float *w = s->w + c * kh * kw * s->ocb;
        const __m512 b = s->bias ? _mm512_set1_ps(s->bias[c * s->ocb]) : _mm512_setzero_ps();
        for (int64_t pr = 0; pr < npair; pr++) {
            /* load masks of each vector and tap column, and the store masks */
            __mmask16 mlo[ROWS_C][8], mhi[ROWS_C][8], st[ROWS_C];
            int64_t base[ROWS_C][8];
            for (int v = 0; v < ROWS_C; v++) {
                int64_t ow0 = (pr * ROWS_C + v) * PC_VL;
                st[v] = ow0 < OW ? lanes_in(0, OW - ow0) : 0;
                for (int kx = 0; kx < kw; kx++) {
                    int64_t iw0 = ow0 * sw - d->pad_w + kx;
                    base[v][kx] = iw0;
                    mlo[v][kx] = st[v] ? lanes_in(iw0, W) : 0;
                    mhi[v][kx] = st[v] ? lanes_in(iw0 + 16, W) : 0;
                }
            }
            for (int64_t oh0 = 0; oh0 < OH; oh0 += ROWS_R) {
                const int nr = OH - oh0 < ROWS_R ? (int)(OH - oh0) : ROWS_R;
                __m512 acc[ROWS_R][ROWS_C];
#pragma GCC unroll 4
                for (int j = 0; j < ROWS_R; j++)
#pragma GCC unroll 2
                    for (int v = 0; v < ROWS_C; v++)
                        acc[j][v] = b;
                const int64_t ih0 = oh0 * sh - d->pad_h, ih1 = (oh0 + nr - 1) * sh - d->pad_h + kh;
                for (int64_t ih = ih0 < 0 ? 0 : ih0; ih < ih1 && ih < H; ih++) {
                    const float *r = x + ih * W;
                    for (int kx = 0; kx < kw; kx++) {
                        __m512 xv[ROWS_C];
#pragma GCC unroll 2
                        for (int v = 0; v < ROWS_C; v++) {
                            const float *p = r + base[v][kx];
                            if (sw == 1)
                                xv[v] = _mm512_maskz_loadu_ps(mlo[v][kx], p);
                            else
                                xv[v] = _mm512_permutex2var_ps(
                                    _mm512_maskz_loadu_ps(mlo[v][kx], p), even,
                                    _mm512_maskz_loadu_ps(mhi[v][kx], p + 16));
                        }
#pragma GCC unroll 4
                        for (int j = 0; j < ROWS_R; j++) {
                            int64_t ky = ih - (oh0 + j) * sh + d->pad_h;
                            if (j >= nr || ky < 0 || ky >= kh)
                                continue;
                            const __m512 wv = _mm512_set1_ps(w[(ky * kw + kx) * s->ocb]);
#pragma GCC unroll 2
                            for (int v = 0; v < ROWS_C; v++)
                                acc[j][v] = _mm512_fmadd_ps(xv[v], wv, acc[j][v]);
                        }
                    }
                }
                for (int j = 0; j < nr; j++)
#pragma GCC unroll 2
                    for (int v = 0; v < ROWS_C; v++) {
                        if (!st[v])
                            continue;
                        __m512 r = acc[j][v];
                        const int64_t at = (oh0 + j) * OW + (pr * ROWS_C + v) * PC_VL;
                        if (ry)
                            r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(st[v], ry + at));
                        if (d->activation != DLAS_ACT_NONE) /* NaN passes, as torch.relu */
                            r = _mm512_max_ps(_mm512_setzero_ps(), r);
                        if (d->activation == DLAS_ACT_RELU6)
                            r = _mm512_min_ps(_mm512_set1_ps(6.0f), r);
                        _mm512_mask_storeu_ps(y + at, st[v], r);
                    }
            }
        }
    }
}

static void rows_job(const void *ctx, int64_t b, int64_t e, int id)
{
    const struct gsp_job *j = ctx;
    rows_channels(j->s, j->in, j->res, j->out, b, e);
}
#endif

static int rows_run(const struct gsp_state *s, int64_t batch, const float *in,
                    const float *res, float *out, struct dlas_profile *prof)
{
#if defined(__AVX512F__)
    const int64_t items = batch * s->conv.d.in_c;
    int t = pc_threads(&s->conv.be);
    double t0 = prof ? pc_now(&s->conv.be) : 0;
    const struct gsp_job job = {s, in, res, out, NULL, 0, 0, 0};
    pc_run_items(&s->conv.be, t, items, rows_job, &job);
    if (prof)
        pc_prof_add(prof, "compute", pc_now(&s->conv.be) - t0);
    return DLAS_OK;
#else
    return dlas_error(DLAS_ERR_INTERNAL, NAME ": the row path needs an AVX-512 build");
#endif
}

/* items (image, group, pixel block) of a 1x1 layer */
static void pw_job(const void *ctx, int64_t b, int64_t e, int id)
{
    const struct gsp_job *j = ctx;
    const struct gsp_state *s = j->s;
    float *buf = j->ws + id * j->per_thread;
    while (b < e) {
        int64_t ig = b / j->blocks, k = b % j->blocks;
        int64_t end = e - b < j->blocks - k ? k + (e - b) : j->blocks;
        compute_pw(s, j->in, buf, ig / s->conv.d.groups, ig % s->conv.d.groups, k, end, j->res,
                   j->out);
        b += end - k;
    }
}

static void group_job(const void *ctx, int64_t b, int64_t e, int id)
{
    const struct gsp_job *j = ctx;
    work(j->s, j->in, j->res, j->out, j->ws + id * j->per_thread, j->chunks, b, e);
}

static int gsp_run_residual(void *state, int64_t batch, const float *in, const float *res,
                            float *out, void *ws, struct dlas_profile *prof)
{
    const struct gsp_state *s = state;
    if (!s || batch < 0 || (batch && (!in || !out || (!ws && !s->rows))))
        return dlas_error(DLAS_ERR_INVALID,
                          NAME ": run() needs state, input, output and workspace");
    if (!batch)
        return DLAS_OK;
    if (s->rows)
        return rows_run(s, batch, in, res, out, prof);
    if (s->chan)
        return dw_run(s, batch, in, res, out, ws, prof);
    int t = pc_threads(&s->conv.be);
    if (t > s->threads)
        t = s->threads; /* per-thread buffers were sized in prepare() */
    double t0 = prof ? pc_now(&s->conv.be) : 0;
    /* whole groups per thread when there are enough of them (depthwise has
     * hundreds); otherwise each group's channel blocks are shared out too,
     * every thread packing the group's planes for itself */
    const int64_t pairs = batch * s->conv.d.groups;
    if (s->pw) {
        /* items: (image, group, pixel block) */
        const int64_t blocks =
            pc_ceil_div(s->conv.d.out_h * s->conv.d.out_w, (int64_t)s->nv * PC_VL);
        const struct gsp_job job = {s, in, res, out, ws, thread_floats(s), blocks, 0};
        pc_run_items(&s->conv.be, t, pairs * blocks, pw_job, &job);
        if (prof)
            pc_prof_add(prof, "compute", pc_now(&s->conv.be) - t0);
        return DLAS_OK;
    }
    int64_t chunks = pairs >= t ? 1 : (s->n_ob < t ? s->n_ob : t);
    const struct gsp_job job = {s, in, res, out, ws, thread_floats(s), 0, chunks};
    pc_run_items(&s->conv.be, t, pairs * chunks, group_job, &job);
    if (prof)
        pc_prof_add(prof, "pack+compute", pc_now(&s->conv.be) - t0);
    return DLAS_OK;
}

static int gsp_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                   struct dlas_profile *prof)
{
    return gsp_run_residual(state, batch, in, NULL, out, ws, prof);
}

static const struct dlas_primitive_ops gsp_ops =
    PRIM_CONV_OPS_RESIDUAL("cpu", gsp_supports, gsp_prepare, gsp_workspace, gsp_run,
                           gsp_release, gsp_run_residual);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "grouped and depthwise convolution: each group packed on its own, vectorised along "
     "its output grid with output channels of the group blocked in registers",
     "P. Gibson, J. Cano, J. Turner, E. J. Crowley, M. O'Boyle, A. Storkey. Optimizing "
     "Grouped Convolutions on Edge Devices. ASAP 2020",
     gsp_params, &gsp_ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "grouped spatial pack convolution (grouped, depthwise)", components)
