/* The fused stem of stem.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_kernels.h"
#include "pw_kernels.h"
#include "stem.h"

/* The tallest and widest pool window a stem takes (pool_row keeps a
 * window's row pointers on the stack). */
#define ST_MAX_POOL 64

struct st_kernel {
    struct st_desc d;
    int64_t oh, ow;       /* the conv's output */
    int64_t rows, cols;   /* one zero-padded input plane */
    int b, vw;            /* register block: b vectors x vw columns */
    int64_t nv, n_groups; /* output vectors; groups of b of them */
    int ntaps;
    int64_t *tap_off;     /* pc_plane_tap_offsets */
    float *w, *bias;      /* packed for b; bias padded to n_groups * b * 16 */
    int64_t row_floats;   /* one conv row in the ring: [vector][column][16] */
    int64_t thread_floats; /* a thread's ring, its line of window maxima and pooled tile */
};

void st_free(struct st_kernel *k)
{
    if (!k)
        return;
    free(k->tap_off);
    pc_free_floats(k->w);
    pc_free_floats(k->bias);
    free(k);
}

static struct st_kernel *fail(struct st_kernel *k, char *why, size_t len, const char *msg)
{
    st_free(k);
    if (why && len)
        snprintf(why, len, "%s", msg);
    return NULL;
}

/* Every pooled row and column's window starts inside the conv's output
 * (PyTorch's rule for the last window in ceil mode), so none is empty. */
static int windows_inside(int64_t n_out, int stride, int pad, int64_t conv_n)
{
    return (n_out - 1) * stride - pad < conv_n;
}

struct st_kernel *st_prepare(const struct st_desc *d, const float *w, const float *bias,
                             char *why, size_t why_len)
{
    if (d->in_c < 1 || d->in_c > ST_MAX_IN_C)
        return fail(NULL, why, why_len, "not a stem: too many input channels");
    if (d->out_c < 1 || d->out_c > (1 << 16) || d->in_h < 1 || d->in_w < 1 ||
        d->in_h > (1 << 20) || d->in_w > (1 << 20) || d->kh < 1 || d->kw < 1 || d->kh > 64 ||
        d->kw > 64)
        return fail(NULL, why, why_len, "shape out of range");
    if (d->stride_h < 1 || (d->stride_w != 1 && d->stride_w != 2) || d->pad_h < 0 ||
        d->pad_w < 0)
        return fail(NULL, why, why_len, "no kernel for this stride");
    if (d->pkh < 1 || d->pkw < 1 || d->psh < 1 || d->psw < 1 || d->pph < 0 || d->ppw < 0 ||
        d->pph >= d->pkh || d->ppw >= d->pkw || d->pkh > ST_MAX_POOL || d->pkw > ST_MAX_POOL)
        return fail(NULL, why, why_len, "pool shape out of range");
    if (!w)
        return fail(NULL, why, why_len, "missing weights");
    struct st_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return fail(NULL, why, why_len, "out of memory");
    k->d = *d;
    k->oh = (d->in_h + 2 * (int64_t)d->pad_h - d->kh) / d->stride_h + 1;
    k->ow = (d->in_w + 2 * (int64_t)d->pad_w - d->kw) / d->stride_w + 1;
    if (k->oh < 1 || k->ow < 1 || d->ph < 1 || d->pw < 1 ||
        !windows_inside(d->ph, d->psh, d->pph, k->oh) ||
        !windows_inside(d->pw, d->psw, d->ppw, k->ow))
        return fail(k, why, why_len, "pool output does not fit the conv's");
    k->rows = d->in_h + 2 * (int64_t)d->pad_h;
    k->cols = d->in_w + 2 * (int64_t)d->pad_w;
    k->nv = pc_ceil_div(d->out_c, PC_VL);
    k->b = k->nv < PC_AUTO_MAX_B ? (int)k->nv : PC_AUTO_MAX_B;
    const int maxvw = pw_max_vw(k->b);
    if (!maxvw)
        return fail(k, why, why_len, "no kernel for this block");
    k->vw = (int)pc_ceil_div(k->ow, pc_ceil_div(k->ow, maxvw)); /* columns evened over the row */
    if (!pw_conv_kernel(k->vw, k->b, d->stride_w))
        return fail(k, why, why_len, "no kernel for this block");
    k->n_groups = pc_ceil_div(k->nv, k->b);
    k->ntaps = (int)(d->in_c * d->kh * d->kw);
    const int64_t lanes = (int64_t)k->b * PC_VL;
    k->tap_off = malloc((size_t)k->ntaps * sizeof *k->tap_off);
    k->w = pc_alloc_floats(pc_packed_weights_floats(d->out_c, d->in_c, d->kh, d->kw, k->b));
    k->bias = pc_alloc_floats(k->n_groups * lanes);
    if (!k->tap_off || !k->w || !k->bias)
        return fail(k, why, why_len, "out of memory");
    pc_plane_tap_offsets(d->in_c, d->kh, d->kw, 1, 1, k->rows, k->cols, k->tap_off);
    pc_pack_weights(w, d->out_c, d->in_c, d->kh, d->kw, k->b, k->w);
    memset(k->bias, 0, (size_t)(k->n_groups * lanes) * sizeof(float));
    if (bias)
        memcpy(k->bias, bias, (size_t)d->out_c * sizeof(float));
    k->row_floats = k->nv * k->ow * PC_VL;
    k->thread_floats = pc_round_up((d->pkh + 1) * k->row_floats + d->pw * k->nv * PC_VL, PC_VL);
    return k;
}

static int64_t planes_floats(const struct st_kernel *k)
{
    return pc_round_up(k->d.in_c * k->rows * k->cols, PC_VL);
}

/* A thread's share: its copy of the padded planes (rows at their place in
 * the whole plane, so the tap offsets hold), then its ring, line and tile. */
static int64_t share_floats(const struct st_kernel *k)
{
    return planes_floats(k) + k->thread_floats;
}

size_t st_workspace_floats(const struct st_kernel *k, int64_t batch, int threads)
{
    (void)batch;
    return (size_t)((threads > 0 ? threads : 1) * share_floats(k));
}

/* Bands of pooled rows an image: one, unless the batch leaves threads
 * without an image; then one a thread. */
static int64_t bands(const struct st_kernel *k, int64_t batch, int threads)
{
    int64_t n = batch >= threads ? 1 : pc_ceil_div(threads, batch);
    return n < k->d.ph ? n : k->d.ph;
}

int64_t st_items(const struct st_kernel *k, enum st_phase ph, int64_t batch, int threads)
{
    return ph == ST_MAIN ? batch * bands(k, batch, threads) : 0;
}

/* Conv row y of the image's planes into its ring slot: every group of b
 * vectors, vw columns a call, bias and activation applied in registers. */
static void conv_row(const struct st_kernel *k, const float *planes, int64_t y, float *dst)
{
    const struct st_desc *d = &k->d;
    const int64_t lanes = (int64_t)k->b * PC_VL;
    struct pw_args a = {0};
    a.out_bs = k->ow * PC_VL;
    a.act = d->act;
    a.tap_off = k->tap_off;
    a.ntaps = k->ntaps;
    const float *row = planes + y * d->stride_h * k->cols;
    for (int64_t g = 0; g < k->n_groups; g++) {
        a.w = k->w + g * k->ntaps * lanes;
        a.bias = k->bias + g * lanes;
        a.nb = (int)(k->nv - g * k->b < k->b ? k->nv - g * k->b : k->b);
        for (int64_t x0 = 0; x0 < k->ow; x0 += k->vw) {
            const int nw = k->ow - x0 < k->vw ? (int)(k->ow - x0) : k->vw;
            a.in = row + x0 * d->stride_w;
            a.out = dst + g * k->b * a.out_bs + x0 * PC_VL;
            pw_conv_kernel(nw, k->b, d->stride_w)(&a);
        }
    }
}

/* max as PyTorch's pool takes it: a NaN wins */
static inline pc_vn nanmax(pc_vn m, pc_vn v)
{
    const pc_vni take = (pc_vni)(v > m) | (pc_vni)(v != v);
    return (pc_vn)((take & (pc_vni)v) | (~take & (pc_vni)m));
}

/* Pooled row r from the ring (conv rows y0..y1-1 in slots y % pkh):
 * the window's rows first, into line (as a ring row), then each window's
 * columns into tile ([column][nv * 16]), then to the image's NCHW output.
 * Rows first, each conv value is read once a window row, and the column
 * windows overlap in one line instead of in pkh rows. */
static void pool_row(const struct st_kernel *k, const float *ring, int64_t y0, int64_t y1,
                     int64_t r, float *line, float *tile, float *out)
{
    const struct st_desc *d = &k->d;
    const float *rows[ST_MAX_POOL];
    const int n = (int)(y1 - y0);
    const int64_t len = k->row_floats;
    for (int i = 0; i < n; i++)
        rows[i] = ring + ((y0 + i) % d->pkh) * len;
    for (int64_t i = 0; i < len; i += PC_NL) {
        pc_vn m = pc_loadn(rows[0] + i);
        for (int y = 1; y < n; y++)
            m = nanmax(m, pc_loadn(rows[y] + i));
        pc_storen(line + i, m);
    }
    const int64_t ps = k->nv * PC_VL;
    for (int64_t j = 0; j < d->pw; j++) {
        int64_t x0 = j * d->psw - d->ppw, x1 = x0 + d->pkw;
        x0 = x0 < 0 ? 0 : x0;
        x1 = x1 < k->ow ? x1 : k->ow;
        for (int64_t v = 0; v < k->nv; v++)
            for (int h = 0; h < PC_NH; h++) {
                const float *src = line + (v * k->ow + x0) * PC_VL + h * PC_NL;
                pc_vn m = pc_loadn(src);
                for (int64_t x = 1; x < x1 - x0; x++)
                    m = nanmax(m, pc_loadn(src + x * PC_VL));
                pc_storen(tile + j * ps + v * PC_VL + h * PC_NL, m);
            }
    }
    const int64_t plane = d->ph * d->pw;
    for (int64_t j0 = 0; j0 < d->pw; j0 += PC_VL) {
        const int nw = d->pw - j0 < PC_VL ? (int)(d->pw - j0) : PC_VL;
        pc_scatter_tile(tile + j0 * ps, ps, 1, nw, 1, nw, d->out_c, out + r * d->pw + j0, NULL,
                        plane, d->pw, DLAS_ACT_NONE);
    }
}

/* The padded rows of the image's planes that conv rows [y0, y1) read, into
 * the thread's planes, each at its place in the whole plane. */
static void pack_rows(const struct st_kernel *k, const float *image, int64_t y0, int64_t y1,
                      float *planes)
{
    const struct st_desc *d = &k->d;
    const int64_t first = y0 * d->stride_h, end = (y1 - 1) * d->stride_h + d->kh;
    for (int64_t c = 0; c < d->in_c; c++)
        for (int64_t row = first; row < end; row++)
            pc_pad_row(image + c * d->in_h * d->in_w, d->in_h, d->in_w, d->pad_h, d->pad_w, row,
                       k->cols, planes + (c * k->rows + row) * k->cols);
}

/* The first conv row pooled row r's window reaches, and the row after its
 * last. */
static void window_rows(const struct st_kernel *k, int64_t r, int64_t *y0, int64_t *y1)
{
    const struct st_desc *d = &k->d;
    const int64_t top = r * d->psh - d->pph;
    *y0 = top < 0 ? 0 : top;
    *y1 = top + d->pkh < k->oh ? top + d->pkh : k->oh;
}

/* Pooled rows [r0, r1) of one image: the input rows their windows reach
 * packed by this thread (in its own L2, and nobody waits for a packing
 * phase), then each conv row computed once into the ring, then the pool. */
static void band(const struct st_kernel *k, const float *image, int64_t r0, int64_t r1,
                 float *planes, float *ring, float *line, float *tile, float *out)
{
    const struct st_desc *d = &k->d;
    int64_t first, last, unused;
    window_rows(k, r0, &first, &unused);
    window_rows(k, r1 - 1, &unused, &last);
    pack_rows(k, image, first, last, planes);
    int64_t next = 0; /* the first conv row not in the ring */
    for (int64_t r = r0; r < r1; r++) {
        int64_t y0, y1;
        window_rows(k, r, &y0, &y1);
        if (r == r0 || next < y0)
            next = y0;
        for (; next < y1; next++)
            conv_row(k, planes, next, ring + (next % d->pkh) * k->row_floats);
        pool_row(k, ring, y0, y1, r, line, tile, out);
    }
}

void st_run(const struct st_kernel *k, enum st_phase ph, int64_t batch, const float *in,
            float *out, float *ws, int threads, int64_t i0, int64_t i1, int thread)
{
    if (ph != ST_MAIN)
        return;
    const struct st_desc *d = &k->d;
    const int64_t nb = bands(k, batch, threads);
    float *planes = ws + (int64_t)thread * share_floats(k);
    float *ring = planes + planes_floats(k);
    float *line = ring + d->pkh * k->row_floats, *tile = line + k->row_floats;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t n = it / nb, j = it % nb;
        band(k, in + n * d->in_c * d->in_h * d->in_w, j * d->ph / nb, (j + 1) * d->ph / nb, planes,
             ring, line, tile, out + n * d->out_c * d->ph * d->pw);
    }
}
