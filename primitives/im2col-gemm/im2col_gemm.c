/* Primitive "im2col-gemm": lower each convolution group to one GEMM by
 * unrolling the receptive fields into a column matrix (Chellapilla, Puri and
 * Simard, 2006), then multiply with OpenBLAS.
 *
 * Per image and group g, with K = in_c/groups * kh * kw and N = out_h * out_w:
 *     out[g] (opg x N) = W[g] (opg x K) * col (K x N)
 * The weights in the usual out_c x in_c/groups x kh x kw layout are already
 * the row-major W[g] blocks one after another, so prepare() only copies them.
 *
 * Threading: with batch >= threads, whole images are spread over the
 * backend's threads (one im2col buffer each, single-threaded GEMMs: OpenBLAS's
 * OpenMP build runs serially inside a parallel region), which avoids the
 * fork/join and packing overhead of threading many small GEMMs. Images left
 * over (batch 1, or the remainder batch % threads) run one at a time: split
 * by groups over the threads when there are enough groups (depthwise), else
 * with a threaded GEMM and a threaded im2col. */
#include <limits.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include <dlas/plugin.h>

#include "../common/prim_common.h"

#define NAME "im2col-gemm"

/* Unrolling fewer elements than this is not worth waking other threads. */
#define PARALLEL_IM2COL_MIN 32768

struct ig_state {
    struct pc_conv conv; /* be.ops NULL: no backend, run on the calling thread */
    int64_t K, N;        /* GEMM inner and column dimensions */
    int64_t in_hw;
    int direct;          /* 1x1, stride 1, no padding: the input is the column matrix */
    float *w;            /* out_c x K */
    float *bias;         /* out_c, or NULL */
};

/* The BLAS takes int dimensions. */
static int check_blas_range(const struct dlas_conv_desc *d, char *why, size_t len)
{
    int64_t K = d->in_c / d->groups * d->kh * d->kw;
    if (K > INT_MAX || d->out_h * d->out_w > INT_MAX || d->out_c / d->groups > INT_MAX)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "a GEMM dimension exceeds the BLAS integer range");
    return DLAS_OK;
}

static int ig_supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                       size_t why_len)
{
    int rc = pc_check_desc(NAME, d, why, why_len); /* clears why first */
    return rc ? rc : check_blas_range(d, why, why_len);
}

static int threads_of(const struct ig_state *s) { return pc_threads(&s->conv.be); }

/* Images run whole on separate threads only when every thread gets one. */
static int64_t parallel_images(const struct ig_state *s, int64_t batch)
{
    int t = threads_of(s);
    return t > 1 && batch >= t ? batch - batch % t : 0;
}

/* An image on its own still splits by groups when they share out evenly
 * enough: depthwise layers are many tiny GEMMs that OpenBLAS cannot thread. */
static int parallel_groups(const struct ig_state *s)
{
    int t = threads_of(s), g = s->conv.d.groups;
    return t > 1 && g >= t && (g % t == 0 || g >= 4 * t);
}

/* Split one image by rows over the threads: when groups do not share out,
 * and each thread gets at least a few rows. */
static int parallel_rows(const struct ig_state *s)
{
    int t = threads_of(s);
    return t > 1 && !parallel_groups(s) && s->conv.d.out_h >= 2 * t;
}

/* output rows per thread */
static int64_t row_band(const struct ig_state *s)
{
    int t = threads_of(s);
    return (s->conv.d.out_h + t - 1) / t;
}

static int64_t col_slots(const struct ig_state *s, int64_t batch)
{
    return parallel_images(s, batch) || parallel_groups(s) ? threads_of(s) : 1;
}

static int ig_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                      const struct dlas_conv_desc *d, const float *weight, const float *bias,
                      const struct dlas_params *p, void **state)
{
    *state = NULL;
    int rc = pc_check_prepare(NAME, be, d, weight, bias); /* pc_check_desc included */
    if (!rc)
        rc = check_blas_range(d, NULL, 0);
    if (rc)
        return rc;
    struct ig_state *s = pc_conv_alloc(NAME, host, be, d, sizeof *s);
    if (!s)
        return DLAS_ERR_NOMEM;
    s->K = s->conv.cpg * d->kh * d->kw;
    s->N = d->out_h * d->out_w;
    s->in_hw = d->in_h * d->in_w;
    s->direct = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 &&
                d->pad_h == 0 && d->pad_w == 0;

    size_t wn = (size_t)(d->out_c * s->K);
    s->w = host->alloc(wn * sizeof(float));
    if (d->has_bias)
        s->bias = host->alloc((size_t)d->out_c * sizeof(float));
    if (!s->w || (d->has_bias && !s->bias)) {
        host->free(s->w);
        host->free(s->bias);
        host->free(s);
        return dlas_error(DLAS_ERR_NOMEM, "im2col-gemm: cannot allocate %zu weights", wn);
    }
    memcpy(s->w, weight, wn * sizeof(float));
    if (d->has_bias)
        memcpy(s->bias, bias, (size_t)d->out_c * sizeof(float));
    *state = s;
    return DLAS_OK;
}

static size_t ig_workspace(void *state, int64_t batch)
{
    const struct ig_state *s = state;
    if (s->direct || batch <= 0)
        return 0;
    size_t need = (size_t)col_slots(s, batch) * (size_t)(s->K * s->N) * sizeof(float);
    if (parallel_rows(s)) {
        size_t rows = (size_t)threads_of(s) * (size_t)(s->K * row_band(s) * s->conv.d.out_w) *
                      sizeof(float);
        if (rows > need)
            need = rows;
    }
    return need;
}

/* Unroll channels [c0, c1) of one group's input (src: cpg x in_h x in_w),
 * output rows [oh0, oh1) only, into their rows of col (K x ld: column j is
 * output pixel oh0 * out_w + j). Out-of-image taps are written as 0. */
static void im2col_block(const struct ig_state *s, const float *src, float *col, int64_t c0,
                         int64_t c1, int64_t oh0, int64_t oh1, int64_t ld)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t ih_n = d->in_h, iw_n = d->in_w, ow_n = d->out_w;
    const int sh = d->stride_h, sw = d->stride_w;
    for (int64_t c = c0; c < c1; c++) {
        const float *plane = src + c * s->in_hw;
        for (int ki = 0; ki < d->kh; ki++) {
            for (int kj = 0; kj < d->kw; kj++) {
                float *dst = col + ((c * d->kh + ki) * d->kw + kj) * ld;
                /* iw = ow * sw + iw0; [lo, hi) are the ow whose iw is inside. */
                int64_t iw0 = (int64_t)kj * d->dil_w - d->pad_w;
                int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
                int64_t hi = iw_n - 1 - iw0 < 0 ? 0 : (iw_n - 1 - iw0) / sw + 1;
                if (hi > ow_n)
                    hi = ow_n;
                if (lo > hi)
                    lo = hi;
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    float *drow = dst + (oh - oh0) * ow_n;
                    int64_t ih = oh * sh - d->pad_h + (int64_t)ki * d->dil_h;
                    if (ih < 0 || ih >= ih_n) {
                        memset(drow, 0, (size_t)ow_n * sizeof(float));
                        continue;
                    }
                    const float *srow = plane + ih * iw_n + iw0;
                    for (int64_t ow = 0; ow < lo; ow++)
                        drow[ow] = 0.0f;
                    if (sw == 1) {
                        memcpy(drow + lo, srow + lo, (size_t)(hi - lo) * sizeof(float));
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++)
                            drow[ow] = srow[ow * sw];
                    }
                    for (int64_t ow = hi; ow < ow_n; ow++)
                        drow[ow] = 0.0f;
                }
            }
        }
    }
}

static void im2col_channels(const struct ig_state *s, const float *src, float *col, int64_t c0,
                            int64_t c1)
{
    im2col_block(s, src, col, c0, c1, 0, s->conv.d.out_h, s->N);
}

/* out (opg x ncols, leading dimension ldc) of group g = W[g] * B (K x ncols,
 * leading dimension ldb), plus bias: a band of output columns. */
static void gemm_cols(const struct ig_state *s, int64_t g, const float *B, int64_t ldb,
                      float *out, int64_t ldc, int64_t ncols)
{
    float beta = 0.0f;
    if (s->bias) {
        /* Start from the bias and accumulate: one pass over the output. */
        for (int64_t o = 0; o < s->conv.opg; o++) {
            float b = s->bias[g * s->conv.opg + o];
            float *row = out + o * ldc;
            for (int64_t j = 0; j < ncols; j++)
                row[j] = b;
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->conv.opg, (int)ncols, (int)s->K,
                1.0f, s->w + g * s->conv.opg * s->K, (int)s->K, B, (int)ldb, beta, out, (int)ldc);
}

/* out (opg x N) of group g = W[g] * B, plus bias. */
static void gemm_group(const struct ig_state *s, int64_t g, const float *B, float *out)
{
    gemm_cols(s, g, B, s->N, out, s->N, s->N);
}

/* One image on the calling thread, with whatever BLAS threading is in force. */
static void conv_image(const struct ig_state *s, const float *in, float *out, float *col)
{
    for (int64_t g = 0; g < s->conv.d.groups; g++) {
        const float *src = in + g * s->conv.cpg * s->in_hw;
        if (!s->direct)
            im2col_channels(s, src, col, 0, s->conv.cpg);
        gemm_group(s, g, s->direct ? src : col, out + g * s->conv.opg * s->N);
    }
}

struct image_job {
    const struct ig_state *s;
    const float *in;
    float *out;
    float *ws;
};

static void image_range(void *arg, int64_t begin, int64_t end, int thread)
{
    const struct image_job *j = arg;
    const struct ig_state *s = j->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    float *col = s->direct ? NULL : j->ws + (int64_t)thread * s->K * s->N;
    for (int64_t n = begin; n < end; n++)
        conv_image(s, j->in + n * d->in_c * s->in_hw, j->out + n * d->out_c * s->N, col);
}

struct group_job {
    const struct ig_state *s;
    const float *in; /* one image */
    float *out;
    float *ws;
};

static void group_range(void *arg, int64_t begin, int64_t end, int thread)
{
    const struct group_job *j = arg;
    const struct ig_state *s = j->s;
    float *col = s->direct ? NULL : j->ws + (int64_t)thread * s->K * s->N;
    for (int64_t g = begin; g < end; g++) {
        const float *src = j->in + g * s->conv.cpg * s->in_hw;
        if (!s->direct)
            im2col_channels(s, src, col, 0, s->conv.cpg);
        gemm_group(s, g, s->direct ? src : col, j->out + g * s->conv.opg * s->N);
    }
}

/* One image split by output rows: thread i unrolls its band of rows into
 * its own column buffer and multiplies it with a single-threaded GEMM (the
 * OpenMP OpenBLAS runs serially inside a parallel region). OpenBLAS's own
 * split of one GEMM scaled 1.55-1.66x on two threads on 56x56 and 28x28
 * layers; bands of the output are independent and scale like the cores. */
struct rows_job {
    const struct ig_state *s;
    const float *in; /* one image */
    float *out;
    float *ws;
    int64_t band; /* output rows per thread */
};

static void rows_range(void *arg, int64_t begin, int64_t end, int thread)
{
    const struct rows_job *j = arg;
    const struct ig_state *s = j->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t ow = d->out_w;
    for (int64_t b = begin; b < end; b++) {
        int64_t oh0 = b * j->band, oh1 = oh0 + j->band < d->out_h ? oh0 + j->band : d->out_h;
        if (oh0 >= oh1)
            continue;
        int64_t ncols = (oh1 - oh0) * ow;
        float *col = s->direct ? NULL : j->ws + (int64_t)thread * s->K * j->band * ow;
        for (int64_t g = 0; g < d->groups; g++) {
            const float *src = j->in + g * s->conv.cpg * s->in_hw;
            float *o = j->out + g * s->conv.opg * s->N + oh0 * ow;
            if (s->direct) /* 1x1, stride 1, unpadded: the input is the column matrix */
                gemm_cols(s, g, src + oh0 * ow, s->N, o, s->N, ncols);
            else {
                im2col_block(s, src, col, 0, s->conv.cpg, oh0, oh1, ncols);
                gemm_cols(s, g, col, ncols, o, s->N, ncols);
            }
        }
    }
}

struct col_job {
    const struct ig_state *s;
    const float *src;
    float *col;
};

static void col_range(void *arg, int64_t begin, int64_t end, int thread)
{
    const struct col_job *j = arg;
    im2col_channels(j->s, j->src, j->col, begin, end);
}

static double now(const struct ig_state *s) { return pc_now(&s->conv.be); }

static int ig_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                  struct dlas_profile *prof)
{
    const struct ig_state *s = state;
    if (!s || batch < 0 || (batch && (!in || !out)))
        return dlas_error(DLAS_ERR_INVALID, "im2col-gemm: run() needs state, input and output");
    const struct dlas_conv_desc *d = &s->conv.d;
    if (!s->direct && batch && !ws)
        return dlas_error(DLAS_ERR_INVALID,
                          "im2col-gemm: no workspace given (%zu bytes needed)",
                          ig_workspace(state, batch));
    const int t = threads_of(s);
    const int64_t in_img = d->in_c * s->in_hw, out_img = d->out_c * s->N;
    const int64_t n_par = parallel_images(s, batch);
    double t0 = prof ? now(s) : 0.0;

    if (n_par) {
        struct image_job job = {s, in, out, ws};
        s->conv.be.ops->parallel_for(s->conv.be.ctx, n_par, image_range, &job);
        if (prof) {
            double t1 = now(s);
            pc_prof_add(prof, "im2col+gemm", t1 - t0);
            t0 = t1;
        }
    }
    if (n_par == batch)
        return DLAS_OK;

    /* The rest, one image at a time: OpenBLAS follows omp_get_max_threads()
     * of this thread, which another backend instance may have changed. */
    if (omp_get_max_threads() != t || openblas_get_num_threads() != t)
        openblas_set_num_threads(t);
    float *col = ws;
    for (int64_t n = n_par; n < batch; n++) {
        const float *img = in + n * in_img;
        float *o = out + n * out_img;
        if (parallel_rows(s)) {
            struct rows_job rj = {s, img, o, ws, row_band(s)};
            s->conv.be.ops->parallel_for(s->conv.be.ctx, threads_of(s), rows_range, &rj);
            if (prof) {
                double t1 = now(s);
                pc_prof_add(prof, "im2col+gemm", t1 - t0);
                t0 = t1;
            }
            continue;
        }
        if (parallel_groups(s)) {
            struct group_job gj = {s, img, o, ws};
            s->conv.be.ops->parallel_for(s->conv.be.ctx, d->groups, group_range, &gj);
            if (prof) {
                double t1 = now(s);
                pc_prof_add(prof, "im2col+gemm", t1 - t0);
                t0 = t1;
            }
            continue;
        }
        for (int64_t g = 0; g < d->groups; g++) {
            const float *src = img + g * s->conv.cpg * s->in_hw;
            if (!s->direct) {
                if (t > 1 && s->conv.cpg > 1 && s->K * s->N >= PARALLEL_IM2COL_MIN) {
                    struct col_job cj = {s, src, col};
                    s->conv.be.ops->parallel_for(s->conv.be.ctx, s->conv.cpg, col_range, &cj);
                } else {
                    im2col_channels(s, src, col, 0, s->conv.cpg);
                }
            }
            double t1 = prof ? now(s) : 0.0;
            gemm_group(s, g, s->direct ? src : col, o + g * s->conv.opg * s->N);
            if (prof) {
                double t2 = now(s);
                pc_prof_add(prof, "im2col", t1 - t0);
                pc_prof_add(prof, "gemm", t2 - t1);
                t0 = t2;
            }
        }
    }
    return DLAS_OK;
}

static void ig_release(void *state)
{
    struct ig_state *s = state;
    if (!s)
        return;
    s->conv.host->free(s->w);
    s->conv.host->free(s->bias);
    pc_conv_free(&s->conv);
}

static const struct dlas_primitive_ops ig_ops = {
    sizeof(struct dlas_primitive_ops),
    "conv2d",
    "cpu",
    ig_supports,
    ig_prepare,
    ig_workspace,
    ig_run,
    ig_release,
    0, /* activations: the plan runs them after the GEMM */
    NULL, /* run_int8: fp32 only */
    NULL, /* run_residual: the plan adds residuals */
    NULL, /* takes_prologue */
    NULL, /* run_prologue: the plan runs a batchnorm before it as a pass */
    NULL, /* set_layouts: NCHW only */
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, "im2col-gemm",
     "convolution as im2col + OpenBLAS SGEMM, per group; any stride, padding, dilation",
     "K. Chellapilla, S. Puri, P. Simard. High Performance Convolutional Neural Networks for "
     "Document Processing. 10th Int. Workshop on Frontiers in Handwriting Recognition, 2006",
     NULL, &ig_ops},
};

DLAS_PLUGIN("im2col-gemm", "0.1.0", "im2col + GEMM convolution (OpenBLAS)", components)
