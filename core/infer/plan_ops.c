/* The inference plan's own operators for the nodes that are not
 * convolutions. The reference operators (ops_ref.c) are the oracle and stay
 * plain and double-precision; at inference these run instead, in float,
 * vectorisable and split over the backend's threads, with the same results
 * up to float rounding and the same NaN behaviour. A node without a fast
 * path here runs the reference operator. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* The library builds at -O2, where GCC 12 vectorises only loops that need
 * no epilogue; these element-wise loops want the full vectoriser. */
#pragma GCC optimize("O3")

#include "plan_ops.h"
#include "../kernels/eltwise.h"

/* Below this many elements a parallel region costs more than it saves. */
#define PAR_MIN 32768

struct elem_job {
    const float *a, *b;
    float *y;
    int64_t n, chunk;
    enum plan_post post;
};

/* The plan's folded activation as the kernels' enum dlas_activation. */
static inline int act_of(enum plan_post post)
{
    return post == PLAN_POST_RELU ? DLAS_ACT_RELU : post == PLAN_POST_RELU6 ? DLAS_ACT_RELU6
                                                                           : DLAS_ACT_NONE;
}

static inline float post_op(float v, enum plan_post post)
{
    ew_act(&v, &v, 1, act_of(post));
    return v;
}

int plan_pass_threads(const struct dlas_backend *be)
{
    return be->ops->parallel_for ? be->ops->threads(be->ctx) : 1;
}

static void parallel(const struct dlas_backend *be, int64_t n, int64_t work, dlas_range_fn fn,
                     void *arg)
{
    if (work < PAR_MIN || plan_pass_threads(be) <= 1)
        fn(arg, 0, n, 0);
    else
        be->ops->parallel_for(be->ctx, n, fn, arg);
}

/* ---- element-wise ---------------------------------------------------------- */

static void post_fn(void *arg, int64_t b, int64_t e, int thread)
{
    struct elem_job *j = arg;
    int64_t lo = b * j->chunk, hi = e * j->chunk < j->n ? e * j->chunk : j->n;
    ew_act(j->y + lo, j->y + lo, hi - lo, act_of(j->post));
}

void plan_post_inplace(const struct dlas_backend *be, float *y, int64_t n, enum plan_post post)
{
    if (post == PLAN_POST_NONE || n <= 0)
        return;
    struct elem_job j = {.y = y, .n = n, .chunk = 8192, .post = post};
    parallel(be, (n + j.chunk - 1) / j.chunk, n, post_fn, &j);
}

static void add_fn(void *arg, int64_t b, int64_t e, int thread)
{
    struct elem_job *j = arg;
    int64_t lo = b * j->chunk, hi = e * j->chunk < j->n ? e * j->chunk : j->n;
    ew_add(j->y + lo, j->a + lo, j->b + lo, hi - lo, act_of(j->post));
}

/* Batchnorm reads each channel plane where it lies: in[0] when its input
 * is a tensor, or in the part of a concatenation that the plan left as a
 * view (chan_src[c] is channel c's plane in image 0, chan_bstride[c] the
 * distance between images in that part). */
struct bn_job {
    const float *const *chan_src;
    const int64_t *chan_bstride;
    float *y;
    const float *scale, *shift;
    int64_t plane, channels;
    int64_t bands; /* items split each plane into this many runs (bn_bands) */
    enum plan_post post;
};

/* Items are (image, band, channel): each plane in `bands` runs of equal
 * length, the band outermost within an image, so that with bands = the
 * thread count each thread takes the same run of every plane. */
static void bn_fn(void *arg, int64_t b, int64_t e, int thread)
{
    const struct bn_job *j = arg;
    const int64_t run = j->plane / j->bands;
    for (int64_t i = b; i < e; i++) {
        const int64_t per_img = j->bands * j->channels, img = i / per_img;
        const int64_t band = i % per_img / j->channels, c = i % j->channels;
        const int64_t at = band * run, n = band == j->bands - 1 ? j->plane - at : run;
        ew_affine(j->y + (img * j->channels + c) * j->plane + at,
                  j->chan_src[c] + img * j->chan_bstride[c] + at, n, j->scale[c], j->shift[c],
                  act_of(j->post));
    }
}

/* How many runs a plane is split into: the thread count t where t does not
 * divide the batch and each run is at least BN_BAND_MIN floats, a whole
 * number of cache lines; else 1 (whole planes).
 *
 * Why: split by whole planes at batch 1, each thread takes half of the
 * channels, while the convolutions before and after (Winograd's tiles,
 * direct's row blocks, the pointwise pixel blocks) split the rows, so each
 * thread reads the half of every plane that the other core wrote. Split
 * into runs, a thread reads what it wrote. But it then pays for two
 * boundaries a plane with the other thread's run (a core writing up to the
 * end of its run also fetches the next lines) and starts twice as many
 * short streams. Measured on DenseNet-121 at batch 1 (bench/README-ort.md,
 * twenty-second stop): on 56x56 planes (runs of 1568 floats) the
 * batchnorms took 0.54 of their time when the VM put the two vCPUs apart
 * and 1.46x as long near; on 28x28 and smaller planes (runs under 1024
 * floats, or not whole lines) runs lost on both sides. With this rule the
 * whole network took 0.97 of its time apart and 1.00-1.02 near. */
#define BN_BAND_MIN 1024
static int64_t bn_bands(const struct dlas_backend *be, int64_t batch, int64_t plane)
{
    const int t = plan_pass_threads(be);
    if (t <= 1 || batch % t == 0 || plane % (16 * t) || plane / t < BN_BAND_MIN)
        return 1;
    return t;
}

/* ---- pooling ----------------------------------------------------------------- */

struct pool_job {
    const struct dlas_node *x, *n;
    const float *in;
    float *out;
    enum plan_post post;
};

/* NaN-propagating max, as PyTorch's pooling: a NaN anywhere in a window
 * wins, otherwise the largest value. Associative, so a window may be
 * reduced in any order (rows first, then columns). */
static inline float nanmax(float m, float v) { return (v > m || v != v) ? v : m; }

#if defined(__AVX512F__)
/* nanmax on 16 lanes */
static inline __m512 nanmax16(__m512 m, __m512 v)
{
    const __mmask16 k =
        _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_mov_ps(m, k, v);
}
#elif defined(__AVX2__)
/* The even (odd = 0) or odd (odd = 1) floats of a, then of b, in order:
 * shuffle takes them in 128-bit lanes, the permute puts the lanes in order. */
static inline __m256 pick8(__m256 a, __m256 b, int odd)
{
    const __m256 s = odd ? _mm256_shuffle_ps(a, b, 0xdd) : _mm256_shuffle_ps(a, b, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xd8));
}
/* nanmax on 8 lanes */
static inline __m256 nanmax8(__m256 m, __m256 v)
{
    const __m256 k = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    return _mm256_blendv_ps(m, v, k);
}
#endif

/* h[ow] = the max of row[ow * sw + kx] over kx < kw, for ow < OW, where row
 * is a line of the input padded with -inf on both sides as far as any window
 * reaches (so no window needs clipping: a clipped window's max is the same).
 * The 3-wide stride-2 window of ResNet stems gets an AVX-512 path and an
 * AVX2 one, where the scalar loop's stride-2 reads do not vectorise; the
 * padded line has room for their last full vector's reads. */
static void hmax_row(const float *row, float *h, int64_t OW, int kw, int sw)
{
    int64_t ow = 0;
#if defined(__AVX512F__)
    if (kw == 3 && sw == 2) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
                                               26, 28, 30);
        const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                              29, 31);
        for (; ow < OW; ow += 16) {
            const float *w = row + 2 * ow;
            const __m512 a0 = _mm512_loadu_ps(w), a1 = _mm512_loadu_ps(w + 16);
            const __m512 b0 = _mm512_loadu_ps(w + 2), b1 = _mm512_loadu_ps(w + 18);
            const __m512 m = nanmax16(nanmax16(_mm512_permutex2var_ps(a0, even, a1),
                                               _mm512_permutex2var_ps(a0, odd, a1)),
                                      _mm512_permutex2var_ps(b0, even, b1));
            const __mmask16 k = OW - ow >= 16 ? 0xffff : (__mmask16)((1u << (OW - ow)) - 1);
            _mm512_mask_storeu_ps(h + ow, k, m);
        }
        return;
    }
#elif defined(__AVX2__)
    if (kw == 3 && sw == 2) {
        for (; ow + 8 <= OW; ow += 8) {
            const float *w = row + 2 * ow;
            const __m256 a0 = _mm256_loadu_ps(w), a1 = _mm256_loadu_ps(w + 8);
            const __m256 b0 = _mm256_loadu_ps(w + 2), b1 = _mm256_loadu_ps(w + 10);
            __m256 m = nanmax8(pick8(a0, a1, 0), pick8(a0, a1, 1));
            _mm256_storeu_ps(h + ow, nanmax8(m, pick8(b0, b1, 0)));
        }
    }
#endif
    for (int64_t o = ow; o < OW; o++) {
        const float *w = row + o * sw;
        float m = w[0];
        for (int kx = 1; kx < kw; kx++)
            m = nanmax(m, w[kx]);
        h[o] = m;
    }
}

/* Max pooling with PyTorch's semantics (windows clipped to the input, NaN
 * wins), separably and rows first: each output row's window rows are
 * reduced into one line (contiguous, vectorised, half the work of reducing
 * columns first: a stride-2 pool has twice as many input rows as output
 * rows), then that line over the window's columns. */
static void maxpool_fn(void *arg, int64_t b, int64_t e, int thread)
{
    const struct pool_job *j = arg;
    const struct dlas_pool_attr *a = &j->n->attr.pool;
    const int64_t IH = j->x->out_shape[1], IW = j->x->out_shape[2];
    const int64_t OH = j->n->out_shape[1], OW = j->n->out_shape[2];
    /* the line: pad_w of -inf, the input's columns, -inf as far as the last
     * window and a vector kernel's reads go (2 * 16 + 2 past a full block) */
    const int64_t len = a->pad_w + IW + (OW + 16) * a->stride_w + a->kw + 34;
    float stack_line[2048];
    float *line = len <= 2048 ? stack_line : malloc((size_t)len * sizeof(float));
    if (!line)
        return;
    for (int64_t i = 0; i < len; i++)
        line[i] = -INFINITY;
    float *v = line + a->pad_w;
    for (int64_t p = b; p < e; p++) {
        const float *xp = j->in + p * IH * IW;
        float *yp = j->out + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * a->stride_h - a->pad_h;
            int64_t h1 = h0 + a->kh < IH ? h0 + a->kh : IH;
            if (h0 < 0)
                h0 = 0;
            float *y = yp + oh * OW;
            if (h0 >= h1) {
                for (int64_t ow = 0; ow < OW; ow++)
                    y[ow] = post_op(-INFINITY, j->post);
                continue;
            }
            /* omp simd: the build's -O2 leaves these loops scalar */
            int64_t ih = h0 + 1;
            if (h1 - h0 >= 3) { /* three rows in one pass */
                const float *r0 = xp + h0 * IW, *r1 = r0 + IW, *r2 = r1 + IW;
#pragma omp simd
                for (int64_t iw = 0; iw < IW; iw++)
                    v[iw] = nanmax(nanmax(r0[iw], r1[iw]), r2[iw]);
                ih = h0 + 3;
            } else
                memcpy(v, xp + h0 * IW, (size_t)IW * sizeof *v);
            for (; ih < h1; ih++) {
                const float *r = xp + ih * IW;
#pragma omp simd
                for (int64_t iw = 0; iw < IW; iw++)
                    v[iw] = nanmax(v[iw], r[iw]);
            }
            hmax_row(line, y, OW, a->kw, a->stride_w);
            ew_act(y, y, OW, act_of(j->post));
        }
    }
    if (line != stack_line)
        free(line);
}

/* Average pooling where every window lies inside the input (no padding, no
 * ceil_mode overhang: DenseNet's transitions, most classifiers' heads), so
 * every divisor is kh * kw; other cases run the reference operator. */
static int avgpool_full_windows(const struct dlas_node *x, const struct dlas_node *n)
{
    const struct dlas_pool_attr *a = &n->attr.pool;
    return a->pad_h == 0 && a->pad_w == 0 &&
           (n->out_shape[1] - 1) * a->stride_h + a->kh <= x->out_shape[1] &&
           (n->out_shape[2] - 1) * a->stride_w + a->kw <= x->out_shape[2];
}

#if defined(__AVX512F__)
/* y[ow] = the mean of the 2x2 window at (2 oh, 2 ow) for DenseNet's
 * transitions: columns 16 at a time, the two rows added, then each pair of
 * neighbouring columns (even and odd lanes); the strided scalar loop below
 * does not vectorise. Returns the columns done. */
static int64_t avgpool_2x2s2_row(const float *r0, const float *r1, float *y, int64_t OW)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                          29, 31);
    const __m512 quarter = _mm512_set1_ps(0.25f);
    int64_t ow = 0;
    for (; ow + 16 <= OW; ow += 16) {
        const __m512 lo = _mm512_add_ps(_mm512_loadu_ps(r0 + 2 * ow), _mm512_loadu_ps(r1 + 2 * ow));
        const __m512 hi =
            _mm512_add_ps(_mm512_loadu_ps(r0 + 2 * ow + 16), _mm512_loadu_ps(r1 + 2 * ow + 16));
        const __m512 sum = _mm512_add_ps(_mm512_permutex2var_ps(lo, even, hi),
                                         _mm512_permutex2var_ps(lo, odd, hi));
        _mm512_storeu_ps(y + ow, _mm512_mul_ps(sum, quarter));
    }
    return ow;
}
#endif

static void avgpool_fn(void *arg, int64_t b, int64_t e, int thread)
{
    const struct pool_job *j = arg;
    const struct dlas_pool_attr *a = &j->n->attr.pool;
    const int64_t IH = j->x->out_shape[1], IW = j->x->out_shape[2];
    const int64_t OH = j->n->out_shape[1], OW = j->n->out_shape[2];
    const float div = (float)(a->kh * a->kw);
    for (int64_t p = b; p < e; p++) {
        const float *xp = j->in + p * IH * IW;
        float *yp = j->out + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            float *y = yp + oh * OW;
#if defined(__AVX512F__)
            if (a->kh == 2 && a->kw == 2 && a->stride_h == 2 && a->stride_w == 2) {
                const float *r0 = xp + 2 * oh * IW;
                const int64_t done = avgpool_2x2s2_row(r0, r0 + IW, y, OW);
                for (int64_t ow = done; ow < OW; ow++)
                    y[ow] = ((r0[2 * ow] + r0[IW + 2 * ow]) + (r0[2 * ow + 1] + r0[IW + 2 * ow + 1])) *
                            0.25f;
                ew_act(y, y, OW, act_of(j->post));
                continue;
            }
#endif
            for (int64_t ow = 0; ow < OW; ow++)
                y[ow] = 0.0f;
            for (int r = 0; r < a->kh; r++) {
                const float *row = xp + (oh * a->stride_h + r) * IW;
                for (int kx = 0; kx < a->kw; kx++)
                    for (int64_t ow = 0; ow < OW; ow++)
                        y[ow] += row[ow * a->stride_w + kx];
            }
            for (int64_t ow = 0; ow < OW; ow++)
                y[ow] /= div;
            ew_act(y, y, OW, act_of(j->post));
        }
    }
}

int plan_avgpool_full(const struct dlas_graph *g, int pool)
{
    const struct dlas_node *n = dlas_graph_node(g, pool);
    return n->op == DLAS_OP_AVGPOOL && n->n_inputs == 1 && n->out_ndim == 3 &&
           avgpool_full_windows(dlas_graph_node(g, n->inputs[0]), n);
}

void plan_avgpool_planes(const struct dlas_graph *g, int pool, int64_t planes, const float *in,
                         float *out, const struct dlas_backend *be)
{
    const struct dlas_node *n = dlas_graph_node(g, pool), *x = dlas_graph_node(g, n->inputs[0]);
    struct pool_job j = {x, n, in, out, PLAN_POST_NONE};
    parallel(be, planes, planes * x->out_shape[1] * x->out_shape[2], avgpool_fn, &j);
}

static void gap_fn(void *arg, int64_t b, int64_t e, int thread)
{
    const struct pool_job *j = arg;
    const int64_t S = j->x->out_shape[1] * j->x->out_shape[2];
    for (int64_t p = b; p < e; p++)
        j->out[p] = post_op(ew_mean(j->in + p * S, S), j->post);
}

static int64_t numel(const struct dlas_node *n)
{
    int64_t m = 1;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

/* ---- batchnorm ----------------------------------------------------------------- */

static int f32_ready(const struct dlas_tensor *t) { return t->data && t->dtype == DLAS_F32; }

int plan_bn_f32(const struct dlas_node *n)
{
    return f32_ready(&n->weight) && f32_ready(&n->bias) && f32_ready(&n->running_mean) &&
           f32_ready(&n->running_var);
}

int plan_part_channels(const struct dlas_node *n, const struct plan_part *parts, int n_parts,
                       const float **src, int64_t *bstride)
{
    const int64_t C = n->out_shape[0], plane = numel(n) / C;
    int64_t c = 0;
    for (int k = 0; k < n_parts; k++)
        for (int64_t ck = 0; ck < parts[k].channels && c < C; ck++, c++) {
            src[c] = parts[k].data + ck * plane;
            bstride[c] = parts[k].channels * plane;
        }
    if (c != C)
        return dlas_error(DLAS_ERR_INTERNAL, "plan: batchnorm '%s' given %lld of %lld channels",
                          n->name, (long long)c, (long long)C);
    return DLAS_OK;
}

void plan_bn_coefficients(const struct dlas_node *n, float *scale, float *shift)
{
    const float *gam = dlas_f32(&n->weight), *bet = dlas_f32(&n->bias);
    const float *mean = dlas_f32(&n->running_mean), *var = dlas_f32(&n->running_var);
    for (int64_t c = 0; c < n->out_shape[0]; c++) {
        double inv = 1.0 / sqrt((double)var[c] + (double)n->attr.bn.eps);
        ew_bn_coeffs(gam[c], bet[c], mean[c], inv, &scale[c], &shift[c]);
    }
}

int plan_batchnorm(const struct dlas_graph *g, int id, int64_t batch,
                   const struct plan_part *parts, int n_parts, float *out, enum plan_post post,
                   const struct dlas_backend *be)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    if (!plan_bn_f32(n))
        return DLAS_ERR_UNSUPPORTED;
    const int64_t C = n->out_shape[0], plane = numel(n) / C;
    /* one allocation: scale, shift, each channel's source and image stride */
    char *mem = malloc((size_t)C * (2 * sizeof(float) + sizeof(float *) + sizeof(int64_t)));
    if (!mem)
        return dlas_error(DLAS_ERR_NOMEM, "plan: out of memory for batchnorm '%s'", n->name);
    const float **src = (const float **)mem;
    int64_t *bstride = (int64_t *)(src + C);
    float *scale = (float *)(bstride + C), *shift = scale + C;
    int rc = plan_part_channels(n, parts, n_parts, src, bstride);
    if (rc) {
        free(mem);
        return rc;
    }
    plan_bn_coefficients(n, scale, shift);
    struct bn_job j = {src, bstride, out, scale, shift, plane, C, bn_bands(be, batch, plane),
                       post};
    parallel(be, batch * j.bands * C, batch * C * plane, bn_fn, &j);
    free(mem);
    return DLAS_OK;
}

/* ---- dispatch ------------------------------------------------------------------ */

int plan_fast_forward(const struct dlas_graph *g, int id, int64_t batch,
                      const float *const *in, float *out, enum plan_post post,
                      const struct dlas_backend *be)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    const struct dlas_node *x = n->n_inputs ? dlas_graph_node(g, n->inputs[0]) : NULL;
    const int64_t m = numel(n), total = batch * m;
    switch (n->op) {
    case DLAS_OP_RELU:
    case DLAS_OP_RELU6: {
        enum plan_post self = n->op == DLAS_OP_RELU ? PLAN_POST_RELU : PLAN_POST_RELU6;
        if (out != in[0])
            memcpy(out, in[0], (size_t)total * sizeof *out);
        plan_post_inplace(be, out, total, self);
        plan_post_inplace(be, out, total, post);
        return DLAS_OK;
    }
    case DLAS_OP_ADD: {
        struct elem_job j = {.a = in[0], .b = in[1], .y = out, .n = total, .chunk = 8192,
                           .post = post};
        parallel(be, (total + j.chunk - 1) / j.chunk, total, add_fn, &j);
        return DLAS_OK;
    }
    case DLAS_OP_BATCHNORM: {
        const int64_t C = n->out_shape[0];
        const struct plan_part whole = {in[0], C};
        int rc = plan_batchnorm(g, id, batch, &whole, 1, out, post, be);
        if (rc != DLAS_ERR_UNSUPPORTED)
            return rc;
        break;
    }
    case DLAS_OP_MAXPOOL: {
        struct pool_job j = {x, n, in[0], out, post};
        parallel(be, batch * x->out_shape[0], total * n->attr.pool.kh * n->attr.pool.kw,
                 maxpool_fn, &j);
        return DLAS_OK;
    }
    case DLAS_OP_AVGPOOL: {
        if (!avgpool_full_windows(x, n))
            break;
        struct pool_job j = {x, n, in[0], out, post};
        parallel(be, batch * x->out_shape[0], batch * numel(x), avgpool_fn, &j);
        return DLAS_OK;
    }
    case DLAS_OP_GLOBAL_AVGPOOL: {
        struct pool_job j = {x, n, in[0], out, post};
        parallel(be, batch * x->out_shape[0], batch * numel(x), gap_fn, &j);
        return DLAS_OK;
    }
    case DLAS_OP_LINEAR: {
        if (n->weight.dtype != DLAS_F32 || !n->weight.data ||
            (n->attr.linear.bias && (n->bias.dtype != DLAS_F32 || !n->bias.data)))
            break;
        /* (not I/O: cblas.h brings complex.h, whose I is a macro) */
        const int64_t fin = x->out_shape[0], fout = m;
        if (fin > 0x7fffffff || fout > 0x7fffffff || batch > 0x7fffffff)
            break;
        const float *bias = n->attr.linear.bias ? dlas_f32(&n->bias) : NULL;
        for (int64_t b = 0; b < batch; b++)
            for (int64_t o = 0; o < fout; o++)
                out[b * fout + o] = bias ? bias[o] : 0.0f;
        /* out (batch x fout) += in (batch x fin) * W^T (W: fout x fin). A
         * batch of one is a matrix-vector product: sgemm would repack all of W
         * for one row, sgemv streams it once. */
        if (batch == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)fout, (int)fin, 1.0f,
                        dlas_f32(&n->weight), (int)fin, in[0], 1, 1.0f, out, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)fout,
                        (int)fin, 1.0f, in[0], (int)fin, dlas_f32(&n->weight), (int)fin, 1.0f,
                        out, (int)fout);
        plan_post_inplace(be, out, total, post);
        return DLAS_OK;
    }
    default:
        break;
    }
    int rc = dlas_ref_node_forward(g, id, batch, in, out);
    if (!rc)
        plan_post_inplace(be, out, total, post);
    return rc;
}
